import EddyDevKit
@testable import EddyRedis
import Testing

/// `withNextPooledReply`: hiredis builds each reply in the connection's
/// `ReplyPool` instead of allocating it; read back, every reply shape must
/// equal what the default path decodes, and the connection must read
/// normally before and after.
@Suite("Replies built in the connection's pool")
struct PooledReplyTests {
    @Test("every reply shape equals the default path's, small and big, and the pool gives big chunks back")
    func sameAsDefault() throws {
        try withRedis { _, redis throws in
            let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            _ = try redis.command("SET", "big", big).checked()
            _ = try redis.command("SET", "bytes", (0...255).map { UInt8($0) }).checked()
            _ = try redis.command("HSET", "h", "_state", [1, 0, 13, 10, 36], "_fp", "abc", "_o:t:3", "77").checked()
            let commands: [[String]] = [
                ["PING"],
                ["GET", "missing"],
                ["GET", "bytes"],
                ["GET", "big"],
                ["STRLEN", "bytes"],
                ["NOSUCHCOMMAND", "x"],
                ["HMGET", "h", "_state", "_fp", "_o:t:3", "absent"],
                ["HMGET", "nokey", "_state", "_fp", "_o:t:3"],
                ["EVAL", "return {1, {2, 'x', {}}, redis.status_reply('fine'), false, redis.error_reply('E bad')}", "0"],
                ["EVAL", "return {}", "0"],
                // Thousands of elements: more than one chunk of elements.
                ["EVAL", "local t = {} for i = 1, 5000 do t[i] = {i, tostring(i)} end return t", "0"],
                ["EVAL", "return {redis.call('GET', 'big'), redis.call('GET', 'big')}", "0"],
            ]
            for round in 0..<2 {
                for command in commands {
                    try redis.append(building: { b in for a in command { b.add(a) } })
                    try redis.append(building: { b in for a in command { b.add(a) } })
                    let expected = try redis.readReply()
                    let pooled = try redis.withNextPooledReply { view throws(RedisError) in try Hiredis.decode(view.reply) }
                    #expect(pooled == expected, "\(command.joined(separator: " ").prefix(60)) round \(round)")
                    #expect(redis.replyPool.chunkCount == 1, "\(command.first!): chunks kept after the reply")
                }
            }
            // Pooled replies back to back in one pipeline, then the default path again.
            for i in 0..<100 { try redis.append("HMGET", "h\(i)", "_state", "_fp") }
            for _ in 0..<100 {
                let nils = try redis.withNextPooledReply { view in (0..<view.count).allSatisfy { view[$0]?.isNull == true } }
                #expect(nils)
            }
            #expect(try redis.command("GET", "bytes") == .bulk((0...255).map { UInt8($0) }))
            #expect(!redis.readerHoldsPartialReply)
        }
    }

    @Test("the pool never moves what it handed out and gives back all but its first chunk")
    func poolChunks() {
        let pool = ReplyPool()
        var blocks: [(UnsafeMutableRawPointer, Int)] = []
        for (i, size) in [1, 48, 16_000, 48, 40_000, 3, ReplyPool.chunkSize, 0].enumerated() {
            let p = pool.allocate(size)
            #expect(Int(bitPattern: p) % 16 == 0)
            p.initializeMemory(as: UInt8.self, repeating: UInt8(i), count: size)
            blocks.append((p, size))
        }
        #expect(pool.chunkCount > 1)
        for (i, (p, size)) in blocks.enumerated() {
            let bytes = UnsafeRawBufferPointer(start: p, count: size)
            #expect(bytes.allSatisfy { $0 == UInt8(i) }, "block \(i) was overwritten")
        }
        pool.reset()
        #expect(pool.chunkCount == 1)
        let again = pool.allocate(32)
        #expect(again == blocks[0].0, "after a reset the first chunk is reused from its start")
    }
}
