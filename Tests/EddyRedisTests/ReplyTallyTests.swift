import EddyDevKit
@testable import EddyRedis
import Foundation
import Testing

/// `drain(count:)` and `readExecReply()` read replies by tallying them in
/// hiredis' reader instead of building reply objects: the counts and first
/// messages are what the built replies said, the connection reads normally
/// afterwards, and a reply cut off half way leaves nothing the reader would
/// try to free.
@Suite("Replies tallied instead of built")
struct ReplyTallyTests {
    @Test func drainCountsTopLevelErrors() throws {
        try withRedis { _, redis throws in
            try redis.append("SET", "s", "text")
            try redis.append("INCR", "s")                              // error
            try redis.append("GET", "missing")                         // nil
            try redis.append("RPUSH", "l", "a", "b")                   // integer
            try redis.append("LRANGE", "l", 0, -1)                     // array
            try redis.append("EVAL", "return {1, redis.error_reply('inner')}", 0)  // array holding an error
            try redis.append("NOSUCHCOMMAND")                          // error
            let summary = try redis.drain(count: 7)
            #expect(summary.replyCount == 7)
            #expect(summary.errorCount == 2)
            #expect(summary.firstError?.hasPrefix("ERR value is not an integer") == true, "\(summary.firstError ?? "nil")")
            // The reader builds replies again.
            #expect(try redis.command("PING") == .status("PONG"))
            #expect(try redis.command("LRANGE", "l", 0, -1) == .array([.bulk("a"), .bulk("b")]))
            #expect(try redis.drain(count: 0).replyCount == 0)
        }
    }

    @Test func execOutcomes() throws {
        try withRedis { server, redis throws in
            // Executed, one element failing when run.
            try redis.append("SET", "s", "text")
            try redis.append("MULTI")
            try redis.append("INCR", "n")
            try redis.append("LPUSH", "s", "x")
            try redis.append("INCR", "n")
            try redis.append("EXEC")
            let queued = try redis.drain(count: 5)
            #expect(queued.errorCount == 0 && queued.replyCount == 5)
            guard case .executed(let summary) = try redis.readExecReply() else { Issue.record("not executed"); return }
            #expect(summary.replyCount == 3 && summary.errorCount == 1)
            #expect(summary.firstError?.hasPrefix("WRONGTYPE") == true)
            #expect(try redis.command("GET", "n") == .bulk("2"))

            // Aborted: a watched key changed.
            let other = try RedisConnection(url: server.url)
            _ = try redis.command("WATCH", "w")
            _ = try other.command("SET", "w", "1")
            try redis.append("MULTI")
            try redis.append("SET", "w", "2")
            try redis.append("EXEC")
            _ = try redis.drain(count: 2)
            #expect(try redis.readExecReply() == .aborted)
            #expect(try redis.command("GET", "w") == .bulk("1"))

            // Failed: a command refused when queued.
            try redis.append("MULTI")
            try redis.append("NOSUCHCOMMAND")
            try redis.append("EXEC")
            #expect(try redis.drain(count: 2).errorCount == 1)
            guard case .failed(let message) = try redis.readExecReply() else { Issue.record("not failed"); return }
            #expect(message.hasPrefix("EXECABORT"), "\(message)")
            #expect(try redis.command("PING") == .status("PONG"))
        }
    }

    /// A reply cut off half way (a server that sends the head of an array
    /// and then nothing, the read timing out) leaves placeholders in the
    /// reader; they are dropped, so closing the connection does not hand them
    /// to hiredis' `freeReplyObject`.
    @Test func cutOffReplyIsDropped() throws {
        let server = try CutOffServer(answer: Array("*3\r\n:1\r\n$5\r\nab".utf8))
        let redis = try RedisConnection(url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: server.port)),
                                        options: .init(commandTimeout: .milliseconds(300)))
        try redis.append("PING")
        #expect(throws: RedisError.self) { try redis.drain(count: 1) }
        #expect(!redis.readerHoldsPartialReply, "a tallied placeholder was left in the reader")
        redis.close()
    }
}

/// A TCP server on 127.0.0.1 that answers the first bytes of one connection
/// with `answer` and then keeps it open, silent, for two seconds.
final class CutOffServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32

    init(answer: [UInt8]) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, p, &length) == 0
            }
        }
        guard fd >= 0, bound else { throw CocoaError(.fileWriteUnknown) }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 256)
            _ = recv(client, &buffer, buffer.count, 0)
            _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) }
            Thread.sleep(forTimeInterval: 2)
            close(client)
        }.start()
    }

    deinit { close(listener) }
}
