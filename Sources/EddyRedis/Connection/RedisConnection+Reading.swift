import CEddyRedisTLS
import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading replies, singly or by pipeline batches.
extension RedisConnection {
    /// Sends any buffered commands and reads the next reply. Error replies are returned as
    /// ``RedisReply/error(_:)``; only connection and protocol failures throw.
    public func readReply() throws(RedisError) -> RedisReply {
        let reply = try nextRawReply()
        defer { freeReplyObject(reply) }
        return try Hiredis.decode(reply)
    }

    /// Appends one command and reads its reply. Requires that no pipelined replies are unread.
    public func command<each Argument: RedisArgument>(_ arguments: repeat each Argument) throws(RedisError) -> RedisReply {
        try requireNoPendingReplies()
        try append(repeat each arguments)
        return try readReply()
    }

    /// Builds one command (see ``append(building:)``) and reads its reply.
    public func command(building build: (inout RedisCommandBuilder) -> Void) throws(RedisError) -> RedisReply {
        try requireNoPendingReplies()
        try append(building: build)
        return try readReply()
    }

    /// Reads the replies of the next `count` pipelined commands, in order.
    public func pipeline(count: Int) throws(RedisError) -> [RedisReply] {
        try requirePending(count)
        var replies: [RedisReply] = []
        replies.reserveCapacity(count)
        for _ in 0..<count {
            replies.append(try readReply())
        }
        return replies
    }

    /// Reads and discards the replies of the next `count` pipelined commands without decoding
    /// them, counting error replies. The fast path for write pipelines.
    @discardableResult
    public func drain(count: Int) throws(RedisError) -> PipelineSummary {
        try requirePending(count)
        guard count > 0 else { return PipelineSummary() }
        return try withTallyingReader { (t) throws(RedisError) -> PipelineSummary in
            for _ in 0..<count { try skipTalliedReply(t) }
            var summary = PipelineSummary()
            summary.replyCount = count
            summary.errorCount = t.pointee.topErrors
            summary.firstError = t.pointee.firstTopError
            return summary
        }
    }

    func nextRawReply() throws(RedisError) -> UnsafeMutablePointer<redisReply> {
        let context = try usableContext()
        guard pendingReplyCount > 0 else {
            throw .invalidUsage("reading a reply with no command pending")
        }
        try flushStaged()
        var raw: UnsafeMutableRawPointer?
        let status = tlsSession.map { eddy_tls_get_reply(UnsafeMutableRawPointer(context), $0, &raw) }
            ?? redisGetReply(context, &raw)
        let savedErrno = errno
        guard status == REDIS_OK, let raw else {
            if let raw { freeReplyObject(raw) }
            throw Hiredis.error(of: context, errno: savedErrno)
        }
        pendingReplyCount -= 1
        return raw.assumingMemoryBound(to: redisReply.self)
    }
}

/// What `EXEC` answered (``RedisConnection/readExecReply()``).
public enum ExecOutcome: Sendable, Hashable {
    /// The transaction ran: one reply per queued command, summarized
    /// (`replyCount` commands, of which `errorCount` failed).
    case executed(PipelineSummary)
    /// A `WATCH`ed key changed before `EXEC` (a nil array): nothing ran.
    case aborted
    /// `EXEC` itself failed (`EXECABORT`: a command was refused when queued;
    /// nothing ran).
    case failed(String)
}

extension RedisConnection {
    /// Reads the reply of a pipelined `EXEC` without decoding the replies of
    /// its commands, counting the error replies among them (a worker's
    /// transaction of hundreds of writes answers hundreds of integers).
    public func readExecReply() throws(RedisError) -> ExecOutcome {
        try withTallyingReader { (t) throws(RedisError) -> ExecOutcome in
            try skipTalliedReply(t)
            let tally = t.pointee
            if tally.topErrors > 0 { return .failed(tally.firstTopError ?? "") }
            if tally.topType == REDIS_REPLY_NIL { return .aborted }
            guard tally.topType == REDIS_REPLY_ARRAY else {
                throw .unexpectedReply(command: "EXEC", reply: "type \(tally.topType)")
            }
            var summary = PipelineSummary()
            summary.replyCount = tally.topElements
            summary.errorCount = tally.nestedErrors
            summary.firstError = tally.firstNestedError
            return .executed(summary)
        }
    }
}
