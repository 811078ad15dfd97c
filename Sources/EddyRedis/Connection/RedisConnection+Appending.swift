import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Appending commands: encoded into the staging buffer, handed to hiredis in batches.
extension RedisConnection {
    /// Appends one command given as its arguments, e.g. `append("HSET", key, field, 42)`.
    /// Small pipelines are sent when a reply is read; a large one is written to the socket as it
    /// grows (every 64 KB), so Redis executes it while the rest is being encoded.
    /// Allocation-free once the internal buffers have grown.
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

    /// Appends one command of exactly `argumentCount` arguments, each encoded
    /// into the staging buffer as `encode` adds it. Why beside
    /// `append(building:)`: the builder copies every argument once more and
    /// keeps their ends: ~300 instructions per argument of the worker's
    /// entity writes (~20 each), ~257 this way (callgrind); for callers that
    /// know the count. Adding a different number throws `invalidUsage` and
    /// appends nothing.
    public func append(
        argumentCount: Int, encoding encode: (inout RedisArgumentEncoder) -> Void
    ) throws(RedisError) {
        _ = try usableContext()
        guard argumentCount > 0 else { throw .invalidUsage("empty command") }
        let start = staged.count
        staged.header(argumentCount)
        var encoder = RedisArgumentEncoder(connection: self)
        encode(&encoder)
        guard encoder.added == argumentCount else {
            staged.truncate(to: start)
            throw .invalidUsage("a command of \(argumentCount) arguments was given \(encoder.added)")
        }
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

    /// Counts the staged command; past the threshold, writes what is staged to the socket, which
    /// bounds the buffers and lets Redis start on a long pipeline before it is complete. (Redis
    /// keeps reading while its replies wait, so writing before reading cannot deadlock.)
    func didStageCommand() throws(RedisError) {
        pendingReplyCount += 1
        if staged.count >= Self.stagingFlushThreshold {
            try send()
        }
    }

    /// Moves the staged commands into hiredis's output buffer (one copy, no system call).
    func flushStaged() throws(RedisError) {
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
}

/// Adds the arguments of one command straight to its connection's staging
/// buffer (`RedisConnection.append(argumentCount:encoding:)`); valid only
/// inside that call.
public struct RedisArgumentEncoder: ~Copyable {
    unowned(unsafe) let connection: RedisConnection
    /// Arguments added so far.
    var added = 0

    init(connection: RedisConnection) { self.connection = connection }

    /// One argument: these bytes.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        connection.staged.argument(bytes)
        added += 1
    }

    /// One argument: two byte ranges back to back.
    public mutating func addJoined(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) {
        connection.staged.argument(joining: first, second)
        added += 1
    }

    /// One argument: an integer's decimal text.
    public mutating func add(_ value: Int64) {
        withDecimalBytes(value) { connection.staged.argument($0) }
        added += 1
    }
}
