import EddyRedis
import Testing

@Suite("Lua scripts and Redis 7 functions")
struct ScriptTests {
    static let upsert = RedisScript("""
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        return redis.call('HLEN', KEYS[1])
        """)

    @Test("local SHA-1 matches known digests and SCRIPT LOAD")
    func sha1() throws {
        #expect(RedisScript("").sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(RedisScript("abc").sha1 == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(RedisScript(String(repeating: "a", count: 1000)).sha1 == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
        try withRedis { _, redis throws in
            #expect(try redis.scriptLoad(Self.upsert.source) == Self.upsert.sha1)
            try redis.scriptLoad(Self.upsert)
        }
    }

    @Test("EVALSHA of a script the server never saw loads it (NOSCRIPT handled)")
    func evalshaLoadsOnDemand() throws {
        try withRedis { _, redis throws in
            #expect(try redis.command("SCRIPT", "EXISTS", Self.upsert.sha1) == .array([.integer(0)]))
            #expect(try redis.evalsha(Self.upsert, keys: ["h"], arguments: ["f", 1]) == .integer(1))
            #expect(try redis.command("SCRIPT", "EXISTS", Self.upsert.sha1) == .array([.integer(1)]))
        }
    }

    @Test("pipelined EVALSHA after SCRIPT FLUSH: every invocation applied, replies in order")
    func pipelineAfterFlush() throws {
        try withRedis { _, redis throws in
            try redis.scriptLoad(Self.upsert)
            _ = try redis.command("SCRIPT", "FLUSH").checked()
            let replies = try redis.evalshaPipeline(Self.upsert, count: 1_000) { index, call in
                call.keys.add("eddy:script")
                call.arguments.addJoined("f", index)
                call.arguments.add(index)
            }
            #expect(replies == (1...1_000).map { .integer(Int64($0)) })

            _ = try redis.command("SCRIPT", "FLUSH").checked()
            let summary = try redis.evalshaPipelineDrain(Self.upsert, count: 500) { index, call in
                call.keys.addJoined("eddy:drain:", index % 10)
                call.arguments.add(index)
                call.arguments.add("v")
            }
            #expect(summary == PipelineSummary(replyCount: 500))
            #expect(try redis.command("HLEN", "eddy:drain:7") == .integer(50))
        }
    }

    @Test("script errors come back as error replies, in place")
    func scriptErrors() throws {
        let failing = RedisScript("if ARGV[1] == 'bad' then return redis.error_reply('BAD input') end return ARGV[1]")
        try withRedis { _, redis throws in
            let replies = try redis.evalshaPipeline(failing, count: 3) { index, call in
                call.arguments.add(index == 1 ? "bad" : "ok")
            }
            #expect(replies == [.bulk("ok"), .error("BAD input"), .bulk("ok")])
            let summary = try redis.evalshaPipelineDrain(failing, count: 2) { index, call in
                call.arguments.add(index == 1 ? "bad" : "ok")
            }
            #expect(summary.errorCount == 1)
            #expect(summary.firstError == "BAD input")
        }
    }

    static let library = """
        #!lua name=eddylib
        redis.register_function('eddy_put', function(keys, args)
          redis.call('HSET', keys[1], args[1], args[2])
          return redis.call('HLEN', keys[1])
        end)
        redis.register_function{function_name='eddy_get', callback=function(keys, args)
          return redis.call('HGET', keys[1], args[1])
        end, flags={'no-writes'}}
        """

    @Test("FUNCTION LOAD (REPLACE) and FCALL, single and pipelined")
    func functions() throws {
        try withRedis { _, redis throws in
            #expect(try redis.functionLoad(Self.library) == "eddylib")
            #expect(try redis.functionLoad(Self.library, replace: true) == "eddylib")
            let duplicate = caughtError { () throws(RedisError) in try redis.functionLoad(Self.library, replace: false) }
            #expect(duplicate?.serverErrorCode == "ERR")
            #expect(duplicate?.description.contains("already exists") == true)

            #expect(try redis.fcall("eddy_put", keys: ["fh"], arguments: ["a", 1]) == .integer(1))
            #expect(try redis.fcall("eddy_get", keys: ["fh"], arguments: ["a"]) == .bulk("1"))
            for index in 0..<1_000 {
                try redis.appendFcall("eddy_put") { call in
                    call.keys.add("fh")
                    call.arguments.addJoined("k", index)
                    call.arguments.add(index)
                }
            }
            let summary = try redis.drain(count: 1_000)
            #expect(summary.errorCount == 0)
            #expect(try redis.command("HLEN", "fh") == .integer(1_001))
            #expect(try redis.fcall("nope").errorMessage?.contains("Function not found") == true)
        }
    }
}

extension PipelineSummary {
    init(replyCount: Int) {
        self.init()
        self.replyCount = replyCount
    }
}
