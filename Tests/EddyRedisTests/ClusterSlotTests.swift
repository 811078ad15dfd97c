import EddyRedis
import Testing

/// Hash slots and `redis+cluster://` URLs, without a server.
@Suite struct ClusterSlotTests {
    @Test("CRC16/XMODEM check value and the spec's examples")
    func crc16() {
        #expect(CRC16.xmodem(Array("123456789".utf8)) == 0x31C3)
        #expect(CRC16.xmodem([UInt8]()) == 0)
        // Values `CLUSTER KEYSLOT` answers.
        #expect(HashSlot.of("foo") == 12_182)
        #expect(HashSlot.of("bar") == 5_061)
        #expect(HashSlot.of("hello") == 866)
        #expect(HashSlot.of("") == 0)
    }

    @Test("hash tags: only the first {...} with content is hashed")
    func hashTags() {
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("{user1000}.followers"))
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("user1000"))
        #expect(HashSlot.of("foo{}{bar}") == HashSlot.of(Array("foo{}{bar}".utf8)))   // `{}`: whole key
        #expect(HashSlot.of("foo{}{bar}") != HashSlot.of("bar"))
        #expect(HashSlot.of("foo{{bar}}zap") == HashSlot.of("{bar"))                 // first { to first }
        #expect(HashSlot.of("foo{bar}{zap}") == HashSlot.of("bar"))
        #expect(HashSlot.of("foo{bar") == HashSlot.of(Array("foo{bar".utf8)))        // no closing }
        #expect(HashSlot.of("a}b{c}") == HashSlot.of("c"))
    }

    @Test("redis+cluster:// URLs: seeds, default port, credentials, IPv6")
    func clusterURLs() throws {
        let plain = try RedisTarget(parsing: "redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002")
        guard case let .cluster(url) = plain else { Issue.record("not a cluster: \(plain)"); return }
        #expect(url.seeds == [.tcp(host: "10.0.0.1", port: 7000), .tcp(host: "10.0.0.2", port: 6379),
                              .tcp(host: "::1", port: 7002)])
        #expect(url.username == nil && url.password == nil)
        #expect(url.description == "redis+cluster://10.0.0.1:7000,10.0.0.2:6379,[::1]:7002")

        let auth = try RedisTarget(parsing: "REDIS+CLUSTER://app:s%40cret@h1:1,h2:2/")
        guard case let .cluster(withAuth) = auth else { Issue.record("not a cluster"); return }
        #expect(withAuth.username == "app" && withAuth.password == "s@cret")
        #expect(withAuth.seeds.count == 2)
        #expect(auth.description == "redis+cluster://app:***@h1:1,h2:2")
        #expect(withAuth.url(for: .tcp(host: "h3", port: 3)) == RedisURL(endpoint: .tcp(host: "h3", port: 3),
                                                                         username: "app", password: "s@cret"))
        #expect(try RedisTarget(parsing: "redis+cluster://h:1/0").isCluster)
        // Duplicates are dropped.
        guard case let .cluster(dup) = try RedisTarget(parsing: "redis+cluster://h:1,h:1") else { return }
        #expect(dup.seeds.count == 1)

        // The single-server forms still parse as before.
        #expect(try RedisTarget(parsing: "redis://h:6380/2") == .single(.tcp(host: "h", port: 6380, database: 2)))
        #expect(try RedisTarget(parsing: "unix:///tmp/r.sock") == .single(RedisURL(endpoint: .unix(path: "/tmp/r.sock"))))
    }

    static let badClusterURLs: [(String, RedisURLError, String)] = [
        ("redis+cluster://", .missingHost, "no host"),
        ("redis+cluster://h:1,,h:2", .emptyClusterSeed("h:1,,h:2"), "empty seed"),
        ("redis+cluster://h:1,", .emptyClusterSeed("h:1,"), "empty seed"),
        ("redis+cluster://h:1/2", .clusterDatabase("2"), "only database 0"),
        ("redis+cluster://h:1/x", .invalidDatabase("x"), "invalid database"),
        ("redis+cluster://h:99999", .invalidPort("99999"), "1...65535"),
        ("redis+cluster://h:1,[::1", .invalidHost("[::1"), "brackets"),
        ("redis+cluster://h:1?db=0", .unsupportedQueryParameter("db"), "redis+cluster:// takes no db"),
        ("redis+cluster://user@h:1", .invalidUserInfo(
            "'user@' without a password; use redis://:password@host or redis://user:password@host"), "without a password"),
        // rediss+cluster:// is TLS now (issue 18); a TLS setting it cannot parse is refused.
        ("rediss+cluster://h:1?sni=", .invalidTLSParameter(name: "sni", reason: "no value given"), "no value given"),
    ]

    @Test("malformed cluster URLs are rejected with a precise error", arguments: badClusterURLs)
    func rejects(text: String, expected: RedisURLError, fragment: String) {
        let error = caughtError { () throws(RedisURLError) in _ = try RedisTarget(parsing: text) }
        #expect(error == expected)
        #expect(error?.description.contains(fragment) == true, "\(String(describing: error))")
    }

    @Test("a cluster URL where a single server is needed says so")
    func clusterWhereSingleNeeded() {
        let error = caughtError { () throws(RedisURLError) in _ = try RedisURL(parsing: "redis+cluster://h:1") }
        #expect(error == .clusterURL)
        #expect(error?.description.contains("Redis Cluster") == true)
    }
}
