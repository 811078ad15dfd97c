import EddyRedis
import Testing

@Suite("Credentials given apart from the URL")
struct RedisCredentialTests {
    @Test("a URL's own password wins; otherwise the given user and password fill it, single and cluster")
    func filling() throws {
        let bare = try RedisTarget(parsing: "redis://cache:6380/2")
        let filled = bare.fillingCredentials(username: "eddy", password: "pw")
        #expect(filled.username == "eddy" && filled.password == "pw")
        let own = try RedisTarget(parsing: "redis://me:mine@cache")
        #expect(own.fillingCredentials(username: "eddy", password: "pw") == own)
        #expect(bare.fillingCredentials(username: "eddy", password: nil) == bare)
        let cluster = try RedisTarget(parsing: "redis+cluster://a:7000,b:7001").fillingCredentials(username: nil, password: "pw")
        #expect(cluster.username == nil && cluster.password == "pw")
    }

    @Test("urlTextWithCredentials parses back to the same target, odd password bytes included; description hides it",
          arguments: ["redis://cache:6380/2", "unix:///run/redis.sock?db=3", "redis+cluster://a:7000,[::1]:7001", "redis://[::1]"])
    func roundTrip(text: String) throws {
        let target = try RedisTarget(parsing: text).fillingCredentials(username: "us er", password: "p@ss:w/o%rd?#é")
        let again = try RedisTarget(parsing: target.urlTextWithCredentials)
        #expect(again == target)
        #expect(again.password == "p@ss:w/o%rd?#é" && again.username == "us er")
        #expect(!target.description.contains("p@ss") && target.description.contains("***"))
    }

    @Test("a URL without a scheme is not quoted when it may hold a password")
    func missingSchemeHidesCredentials() {
        #expect(throws: RedisURLError.self) { try RedisTarget(parsing: "user:hunter2@cache:6379") }
        do { _ = try RedisTarget(parsing: "user:hunter2@cache:6379") } catch {
            #expect(!error.description.contains("hunter2"))
        }
        do { _ = try RedisTarget(parsing: "cache:6379") } catch {
            #expect(error.description.contains("'cache:6379'"))
        }
    }
}

@Suite("TLS URLs")
struct RedisTLSURLTests {
    @Test("rediss:// and rediss+cluster:// parse their TLS settings and print them back")
    func parsing() throws {
        let single = try RedisURL(parsing: "rediss://u:p@cache:6380/2?ca=/etc/ca%20x.pem&cert=/c.pem&key=/k.pem&sni=db.example&insecure=true")
        #expect(single.scheme == .rediss && single.database == 2)
        #expect(single.tls == RedisTLS(caFile: "/etc/ca x.pem", certFile: "/c.pem", keyFile: "/k.pem", serverName: "db.example", insecure: true))
        #expect(try RedisURL(parsing: "rediss://cache").tls == RedisTLS())
        #expect(try RedisURL(parsing: "redis://cache").tls == nil)
        let cluster = try RedisTarget(parsing: "rediss+cluster://a:7000,b:7001?ca=/ca.pem")
        guard case let .cluster(c) = cluster else { Issue.record("not a cluster"); return }
        #expect(c.tls?.caFile == "/ca.pem" && c.url(for: c.seeds[1]).tls?.caFile == "/ca.pem")
        #expect(cluster.description == "rediss+cluster://a:7000,b:7001?ca=/ca.pem")
        #expect(try RedisTarget(parsing: cluster.urlTextWithCredentials) == cluster)
        let filled = try RedisTarget(parsing: "rediss://cache").fillingTLS(RedisTLS(caFile: "/env-ca.pem"))
        #expect(filled.tls?.caFile == "/env-ca.pem")
        #expect(try RedisTarget(parsing: "redis://cache").fillingTLS(RedisTLS(caFile: "/x")).tls == nil)
    }
}
