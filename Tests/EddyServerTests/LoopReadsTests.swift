import EddyCore
import EddyDevKit
import EddyRedis
@testable import EddyServer
import EddyStore
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Reads on an event loop's own Redis connection (`LoopReads`), and the
/// RESP decoder under them, against a real redis-server.
@Suite("Event-loop Redis reads", .serialized)
struct LoopReadsTests {
    static let t0: Int64 = 1_767_225_600_000

    @Test("RESP replies: bulk, null, status, error; integers and nested arrays read whole; partial input waits")
    func decoder() throws {
        let wire = "$5\r\nhello\r\n$-1\r\n+OK\r\n-ERR Function not found\r\n:42\r\n*2\r\n*1\r\n$1\r\na\r\n:1\r\n$0\r\n\r\n"
        var buffer = ByteBuffer(string: wire)
        var replies: [LoopReply] = []
        while let reply = try RESPReplyDecoder.parse(&buffer) { replies.append(reply) }
        #expect(replies == [.bulk(Array("hello".utf8)), .null, .status("OK"), .error("ERR Function not found"),
                            .other, .other, .bulk([])])
        #expect(buffer.readableBytes == 0)
        // Every proper prefix of a reply is "need more data".
        let one = "*2\r\n$3\r\nabc\r\n$2\r\nde\r\n"
        for n in 0..<one.utf8.count {
            var partial = ByteBuffer(bytes: Array(one.utf8.prefix(n)))
            #expect(try RESPReplyDecoder.parse(&partial) == nil, "prefix of \(n) bytes")
        }
        var bad = ByteBuffer(string: "?what\r\n")
        #expect(throws: RESPReplyDecoder.ProtocolError.self) { try RESPReplyDecoder.parse(&bad) }
    }

    /// `fcall` on `loop`, waiting (up to 5 s) for its connection when it has none yet.
    static func read(_ reads: LoopReads, _ loop: any EventLoop, function: String, key: String, at: Int64?) async throws
        -> [UInt8]?
    {
        for _ in 0..<500 {
            let future = try await loop.submit { reads.fcall(function, key: key, at: at, on: loop) }.get()
            if let future { return try await future.get() }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure("no connection on \(loop)")
    }

    static func settings(_ url: RedisURL) -> LoopReads.Settings {
        .init(url: url, connectTimeout: .milliseconds(500), commandTimeout: .seconds(2), clientName: "eddy-test",
              cooldown: .milliseconds(200))
    }

    @Test("objects and nulls exactly as FCALL answers them, on every loop; an error reply fails (the caller falls back)")
    func readsLikeFcall() async throws {
        let redis = try RedisServerProcess()
        let t = try exampleTopology("clickstream")
        let connection = try RedisConnection(url: redis.url)
        try store(engine(t, clickstreamEvents(users: 5, perUser: 4, start: Self.t0)), on: connection)
        let library = FunctionLibrary(topology: t)
        let client = FeatureClient(connection: connection, topology: t)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { group.shutdownGracefully { _ in } }
        let reads = LoopReads(settings: Self.settings(redis.url), group: group)
        let at = Self.t0 + 120_000

        // Not installed yet: "function not found" is a failure, not a null.
        let loop = group.next()
        await #expect(throws: LoopReads.Fallback.self) {
            _ = try await Self.read(reads, loop, function: library.functionName, key: "clickstream:u1", at: at)
        }
        _ = try library.install(on: connection)
        for loop in group.makeIterator() {
            for key in ["u0", "u3", "nobody"] {
                let direct = try client.features(keys: [key], at: at)[0]
                let viaLoop = try await Self.read(reads, loop, function: library.functionName, key: "clickstream:\(key)", at: at)
                #expect(viaLoop == direct, "\(key)")
            }
            // Without T: Redis's clock.
            #expect(try await Self.read(reads, loop, function: library.functionName, key: "clickstream:u2", at: nil) != nil)
        }
        // Commands sent in one loop tick leave in one write; each still gets its own reply.
        let keys = (0..<60).map { i in i % 7 == 6 ? "nobody\(i)" : "u\(i % 5)" }
        let expected = try client.features(keys: keys, at: at)
        let first = group.next()
        let futures = try await first.submit {
            keys.map { reads.fcall(library.functionName, key: "clickstream:\($0)", at: at, on: first)! }
        }.get()
        var got: [[UInt8]?] = []
        for f in futures { got.append(try await f.get()) }
        #expect(got == expected)
        let clients = try #require(try connection.command("CLIENT", "LIST").string)
        #expect(clients.components(separatedBy: "name=eddy-test ").count - 1 == 2, "\(clients)")
    }

    @Test("Redis gone: reads fail and connecting waits out the cooldown; Redis back: the loop connects again")
    func reconnects() async throws {
        let redis = try RedisServerProcess()
        let t = try exampleTopology("clickstream")
        let library = FunctionLibrary(topology: t)
        _ = try library.install(on: RedisConnection(url: redis.url))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let loop = group.next()
        let reads = LoopReads(settings: Self.settings(redis.url), group: group)
        #expect(try await Self.read(reads, loop, function: library.functionName, key: "clickstream:u1", at: nil) == nil)

        redis.stop(.kill)
        // The connection's loss is seen by a read or by the close; either way no answer comes from it.
        var failed = false
        for _ in 0..<100 where !failed {
            let future = try await loop.submit { reads.fcall(library.functionName, key: "clickstream:u1", at: nil, on: loop) }.get()
            if let future {
                do { _ = try await future.get() } catch { failed = true }
            } else {
                failed = true
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(failed)

        try redis.start()
        _ = try library.install(on: RedisConnection(url: redis.url))
        #expect(try await Self.read(reads, loop, function: library.functionName, key: "clickstream:u1", at: nil) == nil)
    }
}
