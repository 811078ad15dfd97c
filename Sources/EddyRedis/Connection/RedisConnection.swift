import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking connection to one Redis server, with hand-made pipelining over hiredis.
///
/// Commands are *appended* to an output buffer (``append(_:)``, ``append(building:)``) and their
/// replies *read* in order (``readReply()``, ``pipeline(count:)``, ``drain(count:)``); the buffer
/// is written to the socket when the first reply is read. Appending encodes the command straight
/// into a reused wire-format buffer: no heap allocation per command or argument. ``command(_:)`` does both for one command.
///
/// Not thread-safe, and deliberately not `Sendable`: create it on (or hand it to) the one thread
/// that uses it, e.g. a writer stage's thread.
///
/// After a connection-level error (``RedisError/isConnectionError``) every call throws until
/// ``reconnect()`` succeeds; ``withRetry(_:_:)`` automates that with backoff.
public final class RedisConnection {
    /// The address, credentials and database this connection uses (also for ``reconnect()``).
    public let url: RedisURL
    /// The settings this connection uses (also for ``reconnect()``).
    public let options: Options
    /// Number of appended commands whose replies have not been read yet.
    public private(set) var pendingReplyCount = 0

    private var context: Hiredis.Context?
    /// Commands appended but not yet handed to hiredis, already in wire format.
    private var staged = RESPEncoder()
    private var builder = RedisCommandBuilder()
    private var scriptCall = RedisScriptCall()
    private static let stagingFlushThreshold = 64 * 1024

    /// Connects, then authenticates, selects the database, sets the client name and runs
    /// ``Options/onConnect`` as configured.
    ///
    /// - Throws: ``RedisError/connectionFailed(endpoint:reason:)``,
    ///   ``RedisError/authenticationFailed(message:)`` or the error of a failing setup command.
    public init(url: RedisURL, options: Options = Options()) throws(RedisError) {
        self.url = url
        self.options = options
        try open()
    }

    deinit {
        if let context { redisFree(context) }
        staged.deallocate()
        builder.deallocate()
        scriptCall.deallocate()
    }

    /// `false` once the connection is closed or has failed; it then needs ``reconnect()``.
    /// A server that vanished silently is noticed only by the next read or write.
    public var isConnected: Bool {
        guard let context else { return false }
        return context.pointee.err == 0
    }

    /// Drops the current socket (if any) and connects again with the same URL and options.
    /// Unread replies of the old connection are lost.
    public func reconnect() throws(RedisError) {
        close()
        try open()
    }

    /// Closes the socket; further calls throw until ``reconnect()``.
    public func close() {
        if let context { redisFree(context) }
        context = nil
        staged.removeAll()
        pendingReplyCount = 0
    }

    // MARK: Appending

    /// Appends one command given as its arguments, e.g. `append("HSET", key, field, 42)`.
    /// Nothing is sent until a reply is read. Allocation-free once the internal buffers have grown.
    public func append<each Argument: RedisArgument>(_ arguments: repeat each Argument) throws(RedisError) {
        _ = try usableContext()
        guard staged.command(repeat each arguments) else { throw .invalidUsage("empty command") }
        try didStageCommand()
    }

    /// Appends one command whose arguments `build` adds to a reused ``RedisCommandBuilder``;
    /// suits commands with a variable number of arguments. `build` must not use this connection.
    public func append(building build: (inout RedisCommandBuilder) -> Void) throws(RedisError) {
        _ = try usableContext()
        builder.removeAll()
        build(&builder)
        guard staged.command(builder) else { throw .invalidUsage("empty command") }
        try didStageCommand()
    }

    /// Appends `command name numkeys keys... arguments...` (EVALSHA / FCALL shape), with the keys
    /// and arguments added by `build` to a reused ``RedisScriptCall``.
    func appendInvocation<Name: RedisArgument>(_ command: StaticString, _ name: Name,
                                               _ build: (inout RedisScriptCall) -> Void) throws(RedisError) {
        _ = try usableContext()
        scriptCall.removeAll()
        build(&scriptCall)
        staged.invocation(command, name, scriptCall)
        try didStageCommand()
    }

    /// Counts the staged command and hands large batches to hiredis early, bounding the staging buffer.
    private func didStageCommand() throws(RedisError) {
        pendingReplyCount += 1
        if staged.count >= Self.stagingFlushThreshold {
            try flushStaged()
        }
    }

    /// Moves the staged commands into hiredis's output buffer (one copy, no system call).
    private func flushStaged() throws(RedisError) {
        guard !staged.isEmpty else { return }
        let context = try usableContext()
        let bytes = staged.buffer.allBytes
        let status = redisAppendFormattedCommand(
            context, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
        staged.removeAll()
        guard status == REDIS_OK else {
            throw Hiredis.error(of: context, errno: errno)
        }
    }

    // MARK: Reading

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
        var summary = PipelineSummary()
        for _ in 0..<count {
            let reply = try nextRawReply()
            if let message = Hiredis.errorMessage(reply) {
                summary.recordError(message)
            }
            freeReplyObject(reply)
            summary.replyCount += 1
        }
        return summary
    }

    func nextRawReply() throws(RedisError) -> UnsafeMutablePointer<redisReply> {
        let context = try usableContext()
        guard pendingReplyCount > 0 else {
            throw .invalidUsage("reading a reply with no command pending")
        }
        try flushStaged()
        var raw: UnsafeMutableRawPointer?
        let status = redisGetReply(context, &raw)
        let savedErrno = errno
        guard status == REDIS_OK, let raw else {
            if let raw { freeReplyObject(raw) }
            throw Hiredis.error(of: context, errno: savedErrno)
        }
        pendingReplyCount -= 1
        return raw.assumingMemoryBound(to: redisReply.self)
    }

    // MARK: State checks

    private func usableContext() throws(RedisError) -> Hiredis.Context {
        guard let context else {
            throw .connectionLost(reason: "connection is closed; call reconnect()")
        }
        guard context.pointee.err == 0 else {
            throw .connectionLost(
                reason: "connection unusable after an earlier error (\(Hiredis.errorString(context))); call reconnect()")
        }
        return context
    }

    func requireNoPendingReplies() throws(RedisError) {
        _ = try usableContext()
        guard pendingReplyCount == 0 else {
            throw .invalidUsage("\(pendingReplyCount) pipelined replies are unread; read them before command()")
        }
    }

    private func requirePending(_ count: Int) throws(RedisError) {
        _ = try usableContext()
        guard count >= 0, count <= pendingReplyCount else {
            throw .invalidUsage("asked for \(count) replies but \(pendingReplyCount) are pending")
        }
    }

    // MARK: Connection setup

    private func open() throws(RedisError) {
        context = try Hiredis.connect(to: url.endpoint, options: options)
        pendingReplyCount = 0
        do {
            try handshake()
        } catch {
            close()
            if error.isConnectionError, case .connectionFailed = error {
                throw error
            } else if error.isConnectionError {
                throw .connectionFailed(endpoint: url.endpoint.description, reason: "during setup: \(error)")
            }
            throw error
        }
    }

    private func handshake() throws(RedisError) {
        if let password = url.password {
            let reply: RedisReply
            if let username = url.username {
                reply = try command("AUTH", username, password)
            } else {
                reply = try command("AUTH", password)
            }
            if case let .error(message) = reply {
                throw .authenticationFailed(message: message)
            }
        }
        if url.database != 0 {
            try command("SELECT", url.database).checked()
        }
        if let clientName = options.clientName {
            try command("CLIENT", "SETNAME", clientName).checked()
        }
        try options.onConnect?(self)
    }
}

@available(*, unavailable, message: "RedisConnection is used by one thread at a time; give each thread its own")
extension RedisConnection: Sendable {}
