import EddyDevKit
@testable import EddyRedis
import Testing

/// `RedisConnection.append(argumentCount:encoding:)`: arguments encoded as
/// they are added must be the bytes the builder path sends, and a wrong
/// count must leave nothing behind.
@Suite("Commands encoded as their arguments are added")
struct ArgumentEncoderTests {
    @Test("the same bytes as the builder, at every length edge, with joined and integer arguments")
    func sameBytesAsTheBuilder() throws {
        try withRedis { _, redis throws in
            let lengths = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1_000, 9_999, 10_000, 65_000, 100_000]
            for n in lengths {
                let value = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                let prefix = Array("p:".utf8), key = Array("k\(n)".utf8)
                let numbers: [Int64] = [0, -1, 9, 10, Int64.max, Int64.min]
                try redis.append { b in
                    b.add("HSET")
                    prefix.withUnsafeBytes { p in key.withUnsafeBytes { b.addJoined(p, $0) } }
                    b.add("f")
                    value.withUnsafeBytes { b.add($0) }
                    for (i, x) in numbers.enumerated() { b.add("n\(i)"); b.add(x) }
                    // Joined with an empty part, either side.
                    b.add("e")
                    prefix.withUnsafeBytes { p in b.addJoined(p, UnsafeRawBufferPointer(start: nil, count: 0)) }
                }
                // Below the staging threshold the command is still staged:
                // take its bytes and drop it (above, it went to hiredis and
                // only the round trip below checks the encoding).
                let staged = n < RedisConnection.stagingFlushThreshold
                let built = Array(redis.staged.buffer.allBytes)
                if staged {
                    // Dropped, and the buffer's memory scribbled over, so a
                    // byte the encoder leaves unwritten cannot match by luck.
                    redis.staged.removeAll()
                    [UInt8](repeating: 0xEE, count: built.count + 64).withUnsafeBytes { redis.staged.argument($0) }
                    redis.staged.removeAll()
                    redis.pendingReplyCount -= 1
                }
                try redis.append(argumentCount: 6 + 2 * numbers.count, encoding: { e in
                    Array("HSET".utf8).withUnsafeBytes { e.add($0) }
                    prefix.withUnsafeBytes { p in key.withUnsafeBytes { e.addJoined(p, $0) } }
                    Array("f".utf8).withUnsafeBytes { e.add($0) }
                    value.withUnsafeBytes { e.add($0) }
                    for (i, x) in numbers.enumerated() {
                        Array("n\(i)".utf8).withUnsafeBytes { e.add($0) }
                        e.add(x)
                    }
                    Array("e".utf8).withUnsafeBytes { e.add($0) }
                    prefix.withUnsafeBytes { p in e.addJoined(UnsafeRawBufferPointer(start: nil, count: 0), p) }
                })
                if staged { #expect(Array(redis.staged.buffer.allBytes) == built, "length \(n)") }
                // And Redis reads it: the hash holds what was sent.
                let replies = try redis.pipeline(count: staged ? 1 : 2)
                #expect(replies.last == .integer(staged ? Int64(2 + numbers.count) : 0), "length \(n)")
                #expect(try redis.command("HGET", "p:k\(n)", "f") == .bulk(value), "length \(n)")
                #expect(try redis.command("HGET", "p:k\(n)", "n5") == .bulk(Array("\(Int64.min)".utf8)))
                #expect(try redis.command("HGET", "p:k\(n)", "e") == .bulk(prefix))
            }
        }
    }

    @Test("a command given the wrong number of arguments throws and leaves the pipeline as it was")
    func wrongCountAppendsNothing() throws {
        try withRedis { _, redis throws in
            try redis.append("SET", "a", "1")
            let before = Array(redis.staged.buffer.allBytes)
            for declared in [1, 3, 0] {
                let error = caughtError { () throws(RedisError) in
                    try redis.append(argumentCount: declared, encoding: { e in
                        Array("SET".utf8).withUnsafeBytes { e.add($0) }
                        Array("b".utf8).withUnsafeBytes { e.add($0) }
                    })
                }
                #expect(error != nil, "declared \(declared)")
                #expect(Array(redis.staged.buffer.allBytes) == before, "declared \(declared)")
            }
            try redis.append("GET", "a")
            let replies = try redis.pipeline(count: 2)
            #expect(replies == [.status("OK"), .bulk("1")])
            #expect(try redis.command("EXISTS", "b") == .integer(0))
        }
    }
}
