import EddyDevKit
import EddyRedis
import Testing

@Suite("Command round trips against a real redis-server")
struct ReplyRoundTripTests {
    @Test("status, integer, bulk, null, error and array replies")
    func everyReplyType() throws {
        try withRedis { _, redis throws in
            #expect(try redis.command("PING") == .status("PONG"))
            #expect(try redis.command("SET", "k", "v") == .status("OK"))
            #expect(try redis.command("GET", "k") == .bulk("v"))
            #expect(try redis.command("GET", "missing") == .null)
            #expect(try redis.command("INCR", "n") == .integer(1))
            #expect(try redis.command("INCRBY", "n", Int64(-5)) == .integer(-4))
            #expect(try redis.command("RPUSH", "l", "a", "b", "c") == .integer(3))
            #expect(try redis.command("LRANGE", "l", 0, -1) == .array([.bulk("a"), .bulk("b"), .bulk("c")]))
            #expect(try redis.command("LRANGE", "nothing", 0, -1) == .array([]))

            let unknown = try redis.command("NOSUCHCOMMAND", "x")
            #expect(unknown.errorMessage?.hasPrefix("ERR unknown command") == true)
            // An error reply leaves the connection usable.
            #expect(try redis.command("PING") == .status("PONG"))
        }
    }

    @Test("nested arrays, status and null inside arrays (via EVAL)")
    func nestedArrays() throws {
        try withRedis { _, redis throws in
            let reply = try redis.command(
                "EVAL", "return {1, {2, 'x'}, redis.status_reply('fine'), false}", 0)
            #expect(reply == .array([.integer(1), .array([.integer(2), .bulk("x")]), .status("fine"), .null]))
        }
    }

    @Test("checked() turns error replies into RedisError.server with its code")
    func checkedErrors() throws {
        try withRedis { _, redis throws in
            _ = try redis.command("SET", "s", "text").checked()
            let error = caughtError { () throws(RedisError) in try redis.command("LPUSH", "s", "x").checked() }
            #expect(error?.serverErrorCode == "WRONGTYPE")
            #expect(error?.isConnectionError == false)
            #expect(redis.isConnected)
        }
    }

    @Test("binary-safe keys and values: every byte 0...255")
    func binarySafe() throws {
        try withRedis { _, redis throws in
            let allBytes = (0...255).map { UInt8($0) }
            let key: [UInt8] = [0, 13, 10, 36, 42, 255]   // NUL, CR, LF, '$', '*', 0xFF
            #expect(try redis.command("SET", key, allBytes) == .status("OK"))
            #expect(try redis.command("GET", key) == .bulk(allBytes))
            #expect(try redis.command("STRLEN", key) == .integer(256))
            #expect(try redis.command("SET", "empty", "") == .status("OK"))
            #expect(try redis.command("GET", "empty") == .bulk([]))
        }
    }

    @Test("argument lengths at every digit-count edge, built and variadic")
    func argumentLengths() throws {
        try withRedis { _, redis throws in
            let lengths = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1_000, 9_999, 10_000, 65_535, 100_000, 1_000_000]
            for n in lengths {
                let value = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                let key = Array("len:\(n)".utf8)
                try redis.append { b in
                    b.add("SET")
                    b.add(key)
                    b.add(value)
                }
                try redis.append("STRLEN", key)
                try redis.append("GET", key)
                let replies = try redis.pipeline(count: 3)
                #expect(replies[0] == .status("OK"), "length \(n)")
                #expect(replies[1] == .integer(Int64(n)), "length \(n)")
                #expect(replies[2] == .bulk(value), "length \(n)")
            }
        }
    }

    @Test("a 1 MB value round-trips byte for byte")
    func oneMegabyte() throws {
        try withRedis { _, redis throws in
            var generator = SystemRandomNumberGenerator()
            let value = (0..<1_048_576).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(try redis.command("SET", "big", value) == .status("OK"))
            #expect(try redis.command("STRLEN", "big") == .integer(1_048_576))
            #expect(try redis.command("GET", "big").bytes == value)
        }
    }

    @Test("argument kinds: integers, doubles, substrings, slices, static strings, joined arguments")
    func argumentKinds() throws {
        try withRedis { _, redis throws in
            #expect(try redis.command("SET", "min", Int64.min) == .status("OK"))
            #expect(try redis.command("GET", "min") == .bulk("-9223372036854775808"))
            #expect(try redis.command("SET", "i32", Int32(-42)) == .status("OK"))
            #expect(try redis.command("INCRBY", "i32", UInt32(44)) == .integer(2))
            #expect(try redis.command("INCRBYFLOAT", "f", 1.5) == .bulk("1.5"))
            #expect(try redis.command("INCRBYFLOAT", "f", 0.25) == .bulk("1.75"))
            let text = "prefix:sub:suffix"
            let sub = text.split(separator: ":")[1]
            #expect(try redis.command("SET", sub, [UInt8](repeating: 120, count: 4)[1...]) == .status("OK"))
            #expect(try redis.command("GET", "sub") == .bulk("xxx"))
            let name: StaticString = "static"
            #expect(try redis.command("SET", name, 7) == .status("OK"))
            let reply = try redis.command { command in
                command.add("HSET")
                command.addJoined("feature:user:", 42)
                command.add(contentsOf: ["clicks", "3", "views", "9"])
            }
            #expect(reply == .integer(2))
            #expect(try redis.command("HGET", "feature:user:42", "views") == .bulk("9"))
        }
    }

    @Test("misuse is reported, not deadlocked")
    func misuse() throws {
        try withRedis { _, redis throws in
            #expect(caughtError { () throws(RedisError) in _ = try redis.readReply() }
                == .invalidUsage("reading a reply with no command pending"))
            #expect(caughtError { () throws(RedisError) in try redis.append(building: { _ in }) }
                == .invalidUsage("empty command"))
            try redis.append("PING")
            let error = caughtError { () throws(RedisError) in _ = try redis.command("PING") }
            if case .invalidUsage = error {} else { Issue.record("expected invalidUsage, got \(String(describing: error))") }
            #expect(try redis.readReply() == .status("PONG"))
            #expect(redis.pendingReplyCount == 0)
        }
    }

    @Test("URL database and credentials are applied on connect")
    func authAndSelect() throws {
        let server = try RedisServerProcess(options: ["requirepass": "pa ss"])
        var url = server.url
        #expect(url.password == "pa ss")
        url.database = 3
        let db3 = try RedisConnection(url: url, options: .init(clientName: "eddy-test"))
        _ = try db3.command("SET", "where", "db3").checked()
        #expect(try db3.command("CLIENT", "GETNAME") == .bulk("eddy-test"))
        url.database = 0
        let db0 = try RedisConnection(url: url)
        #expect(try db0.command("GET", "where") == .null)

        url.password = "wrong"
        let rejected = caughtError { () throws(RedisError) in _ = try RedisConnection(url: url) }
        if case .authenticationFailed = rejected {} else { Issue.record("got \(String(describing: rejected))") }

        url.password = nil
        let anonymous = try RedisConnection(url: url)
        #expect(try anonymous.command("GET", "where").errorMessage?.hasPrefix("NOAUTH") == true)
    }

    @Test("unix domain socket URL")
    func unixSocket() throws {
        // A relative `unixsocket` resolves against `dir`, the server's working directory.
        let server = try RedisServerProcess(options: ["unixsocket": "redis.sock", "unixsocketperm": "700"])
        let redis = try RedisConnection(url: RedisURL(parsing: "unix://\(server.directory)/redis.sock?db=1"))
        #expect(try redis.command("PING") == .status("PONG"))
        #expect(redis.url.scheme == .unix)
    }
}
