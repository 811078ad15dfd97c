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

    /// Framed arguments (`RESPArgument.write`) for `values`, back to back.
    static func framed(_ values: [[UInt8]]) -> [UInt8] {
        let size = values.reduce(0) { $0 + $1.count + RESPArgument.maxOverhead }
        var out = [UInt8](repeating: 0xEE, count: size)
        let used = out.withUnsafeMutableBytes { o in
            var end = o.baseAddress!
            for v in values { end = v.withUnsafeBytes { RESPArgument.write($0, at: end) } }
            return end - o.baseAddress!
        }
        return Array(out[0..<used])
    }

    @Test("framed arguments copied as one block are the bytes of adding each, and read back one by one")
    func framedBlockSameBytes() throws {
        try withRedis { _, redis throws in
            let lengths = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1_000, 9_999, 10_000]
            let values = lengths.map { n in (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) } }
            var fieldsAndValues: [[UInt8]] = []
            for (i, v) in values.enumerated() { fieldsAndValues.append(Array("f\(i)".utf8)); fieldsAndValues.append(v) }
            let block = Self.framed(fieldsAndValues)
            // Parsed back: the same arguments, in order.
            var parsed: [[UInt8]] = []
            let count = block.withUnsafeBytes { RESPArgument.forEach(in: $0) { parsed.append(Array($0)) } }
            #expect(count == fieldsAndValues.count)
            #expect(parsed == fieldsAndValues)

            try redis.append(argumentCount: 2 + fieldsAndValues.count, encoding: { e in
                Array("HSET".utf8).withUnsafeBytes { e.add($0) }
                Array("k".utf8).withUnsafeBytes { e.add($0) }
                for v in fieldsAndValues { v.withUnsafeBytes { e.add($0) } }
            })
            let oneByOne = Array(redis.staged.buffer.allBytes)
            redis.staged.removeAll()
            redis.pendingReplyCount -= 1
            try redis.append(argumentCount: 2 + fieldsAndValues.count, encoding: { e in
                Array("HSET".utf8).withUnsafeBytes { e.add($0) }
                Array("k".utf8).withUnsafeBytes { e.add($0) }
                block.withUnsafeBytes { e.addFramed($0, count: fieldsAndValues.count) }
            })
            #expect(Array(redis.staged.buffer.allBytes) == oneByOne)
            // And Redis reads it.
            #expect(try redis.pipeline(count: 1) == [.integer(Int64(values.count))])
            for (i, v) in values.enumerated() {
                #expect(try redis.command("HGET", "k", "f\(i)") == .bulk(v), "length \(v.count)")
            }
        }
    }

    @Test("bytes that are not framed arguments are refused where they stop being so")
    func malformedBlocksRefused() {
        let good = Self.framed([Array("ab".utf8), []])
        #expect(good == Array("$2\r\nab\r\n$0\r\n\r\n".utf8))
        let bad: [String] = [
            "2\r\nab\r\n",        // no `$`
            "$\r\nab\r\n",        // no length
            "$x\r\nab\r\n",       // not a digit
            "$2\nab\r\n",          // no CR after the length
            "$3\r\nab\r\n",       // longer than the bytes
            "$1\r\nab\r\n",       // shorter: no CRLF after it
            "$2\r\nab",             // no CRLF at the end
            "$2\r\nab\r\n$",      // a trailing `$`
            "$9999999999999999999\r\n",   // 19 digits: more than an Int holds
            "$99999999999999999999\r\n",  // 20 digits
        ]
        for text in bad {
            var seen = 0
            let n = Array(text.utf8).withUnsafeBytes { RESPArgument.forEach(in: $0) { _ in seen += 1 } }
            #expect(n == nil, "\(text.debugDescription)")
            #expect(seen == (text.hasPrefix("$2\r\nab\r\n$") ? 1 : 0), "\(text.debugDescription)")
        }
    }
}
