import EddyDevKit
import EddyRedis
import Testing

@Suite("Pipelining")
struct PipelineTests {
    @Test("100,000 pipelined HSETs, then read back")
    func hundredThousandHSETs() throws {
        try withRedis { _, redis throws in
            let total = 100_000
            let hashes = 100
            for index in 0..<total {
                try redis.append { command in
                    command.add("HSET")
                    command.addJoined("eddy:pipe:", index % hashes)
                    command.addJoined("f", index)
                    command.add(index)
                }
            }
            #expect(redis.pendingReplyCount == total)
            let summary = try redis.drain(count: total)
            #expect(summary.replyCount == total)
            #expect(summary.errorCount == 0)
            #expect(redis.pendingReplyCount == 0)

            for hash in 0..<hashes {
                try redis.append("HLEN", "eddy:pipe:\(hash)")
            }
            #expect(try redis.pipeline(count: hashes) == Array(repeating: .integer(Int64(total / hashes)), count: hashes))

            for index in stride(from: 0, to: total, by: 7) {
                try redis.append("HGET", "eddy:pipe:\(index % hashes)", "f\(index)")
            }
            let values = try redis.pipeline(count: redis.pendingReplyCount)
            #expect(values == stride(from: 0, to: total, by: 7).map { .bulk(String($0)) })

            try redis.append("HGETALL", "eddy:pipe:3")
            let all = try #require(try redis.readReply().array)
            #expect(all.count == 2 * total / hashes)
            var fields: [String: String] = [:]
            for pair in stride(from: 0, to: all.count, by: 2) {
                fields[all[pair].string ?? ""] = all[pair + 1].string
            }
            #expect(fields.count == total / hashes)
            #expect(fields["f3"] == "3")
            #expect(fields["f99903"] == "99903")
        }
    }

    @Test("error replies keep their place in the pipeline")
    func errorsInPipeline() throws {
        try withRedis { _, redis throws in
            try redis.append("SET", "a", 1)
            try redis.append("LPUSH", "a", "x")
            try redis.append("GET", "a")
            try redis.append("BOGUS")
            let replies = try redis.pipeline(count: 4)
            #expect(replies[0] == .status("OK"))
            #expect(replies[1].errorMessage?.hasPrefix("WRONGTYPE") == true)
            #expect(replies[2] == .bulk("1"))
            #expect(replies[3].errorMessage?.hasPrefix("ERR unknown command") == true)

            try redis.append("LPUSH", "a", "x")
            try redis.append("SET", "b", 2)
            try redis.append("LPUSH", "b", "y")
            let summary = try redis.drain(count: 3)
            #expect(summary.replyCount == 3)
            #expect(summary.errorCount == 2)
            #expect(summary.firstError?.hasPrefix("WRONGTYPE") == true)
            #expect(caughtError { () throws(RedisError) in try summary.check() }?.serverErrorCode == "WRONGTYPE")
        }
    }

    @Test("partial reads: pipeline(count:) takes only what is asked")
    func partialReads() throws {
        try withRedis { _, redis throws in
            for index in 0..<10 { try redis.append("ECHO", index) }
            #expect(try redis.pipeline(count: 3) == [.bulk("0"), .bulk("1"), .bulk("2")])
            #expect(redis.pendingReplyCount == 7)
            #expect(caughtError { () throws(RedisError) in _ = try redis.pipeline(count: 8) }
                == .invalidUsage("asked for 8 replies but 7 are pending"))
            #expect(try redis.drain(count: 7).replyCount == 7)
        }
    }

    @Test("benchmark entry point writes every key")
    func benchmark() throws {
        try withRedis { server, redis throws in
            let rate = try RedisBenchmark.pipelinedSet(url: server.url, count: 5_000, pipelineDepth: 512)
            #expect(rate > 0)
            #expect(try redis.command("DBSIZE") == .integer(5_000))
            #expect(try redis.command("GET", "eddy:bench:4999").bytes?.count == 32)
        }
    }
}
