import EddyRedis
import Testing

@Suite("RedisURL parsing")
struct RedisURLTests {
    @Test("host only: default port 6379, database 0, no credentials")
    func hostOnly() throws {
        let url = try RedisURL(parsing: "redis://localhost")
        #expect(url.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(url.database == 0)
        #expect(url.username == nil)
        #expect(url.password == nil)
        #expect(url.scheme == .redis)
    }

    @Test("host, port and database")
    func hostPortDatabase() throws {
        let url = try RedisURL(parsing: "redis://127.0.0.1:6380/3")
        #expect(url.endpoint == .tcp(host: "127.0.0.1", port: 6380))
        #expect(url.database == 3)
    }

    @Test("password only, user and password, percent-encoding")
    func credentials() throws {
        let passwordOnly = try RedisURL(parsing: "redis://:s3cret@cache:1/0")
        #expect(passwordOnly.username == nil)
        #expect(passwordOnly.password == "s3cret")
        let both = try RedisURL(parsing: "redis://eddy:p%40ss%3Aword@cache")
        #expect(both.username == "eddy")
        #expect(both.password == "p@ss:word")
        #expect(both.endpoint == .tcp(host: "cache", port: 6379))
    }

    @Test("IPv6 literal in brackets")
    func ipv6() throws {
        let url = try RedisURL(parsing: "redis://[::1]:7000/1")
        #expect(url.endpoint == .tcp(host: "::1", port: 7000))
        #expect(url.database == 1)
        #expect(url.description == "redis://[::1]:7000/1")
    }

    @Test("scheme is case-insensitive; trailing slash means database 0")
    func schemeCase() throws {
        let url = try RedisURL(parsing: "REDIS://host/")
        #expect(url.endpoint == .tcp(host: "host", port: 6379))
        #expect(url.database == 0)
    }

    @Test("unix socket paths, with database and credentials")
    func unixSocket() throws {
        let plain = try RedisURL(parsing: "unix:///run/redis/redis.sock")
        #expect(plain.endpoint == .unix(path: "/run/redis/redis.sock"))
        #expect(plain.scheme == .unix)
        let withDB = try RedisURL(parsing: "unix:///tmp/r.sock?db=2")
        #expect(withDB.database == 2)
        let withAuth = try RedisURL(parsing: "unix://:pw@/tmp/r.sock")
        #expect(withAuth.password == "pw")
        #expect(withAuth.endpoint == .unix(path: "/tmp/r.sock"))
    }

    @Test("description redacts the password")
    func redaction() throws {
        let url = try RedisURL(parsing: "redis://user:hunter2@h:6379/2")
        #expect(url.description == "redis://user:***@h:6379/2")
        #expect(!url.description.contains("hunter2"))
    }

    static let badURLs: [(String, RedisURLError, String)] = [
        ("", .empty, "empty"),
        ("localhost:6379", .missingScheme("localhost:6379"), "no scheme"),
        ("http://h", .unsupportedScheme("http"), "supported are redis://, rediss:// (TLS), unix://"),
        // rediss:// is TLS now (issue 18); its settings are checked instead.
        ("rediss://h?insecure=maybe", .invalidTLSParameter(name: "insecure", reason: "expected true or false, got 'maybe'"), "true or false"),
        ("redis://h?ca=/x.pem", .invalidTLSParameter(name: "ca", reason: "TLS settings need a rediss:// or rediss+cluster:// URL"), "need a rediss://"),
        ("redis+cluster://a:1,b:2", .clusterURL, "names a Redis Cluster"),
        ("redis://", .missingHost, "no host"),
        ("redis://:6379", .missingHost, "no host"),
        ("redis://h:0", .invalidPort("0"), "1...65535"),
        ("redis://h:70000", .invalidPort("70000"), "1...65535"),
        ("redis://h:abc", .invalidPort("abc"), "invalid port 'abc'"),
        ("redis://h:", .invalidPort(""), "invalid port"),
        ("redis://h:+1", .invalidPort("+1"), "invalid port"),
        ("redis://h/x", .invalidDatabase("x"), "non-negative integer"),
        ("redis://h/-1", .invalidDatabase("-1"), "invalid database '-1'"),
        ("redis://h/1/2", .invalidDatabase("1/2"), "invalid database"),
        ("redis://[::1", .invalidHost("[::1"), "brackets"),
        ("redis://::1:6379", .invalidHost("::1:6379"), "brackets"),
        ("redis://user@h", .invalidUserInfo(
            "'user@' without a password; use redis://:password@host or redis://user:password@host"), "without a password"),
        ("redis://:@h", .invalidUserInfo("empty password"), "empty password"),
        ("redis://:%zzsecret@h", .invalidPercentEncoding(component: "password"), "percent-encoding in the password"),
        ("redis://h?timeout=1", .unsupportedQueryParameter("timeout"), "only 'db'"),
        ("unix://", .invalidSocketPath(""), "absolute path"),
        ("unix://relative/path", .invalidSocketPath("relative/path"), "absolute path"),
        ("unix:///tmp/dir/", .invalidSocketPath("/tmp/dir/"), "absolute path"),
    ]

    @Test("malformed URLs are rejected with a precise error and message", arguments: badURLs)
    func rejects(text: String, expected: RedisURLError, messageFragment: String) {
        let error = caughtError { () throws(RedisURLError) in _ = try RedisURL(parsing: text) }
        #expect(error == expected)
        #expect(error?.description.contains(messageFragment) == true, "\(String(describing: error))")
    }

    @Test("error messages never echo the password")
    func messagesHidePassword() {
        let error = caughtError { () throws(RedisURLError) in _ = try RedisURL(parsing: "redis://:topsecret@h:99999") }
        #expect(error == .invalidPort("99999"))
        #expect(error?.description.contains("topsecret") == false)
    }
}
