import CEddyRedisTLS
import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing appended commands to the socket without reading, so that several connections'
/// pipelines can all be on the wire before any reply is awaited (``RedisClusterClient``).
extension RedisConnection {
    /// Writes every appended command to the socket, blocking until hiredis's output buffer is
    /// empty; replies stay unread. Reading a reply would send them anyway: this only moves the
    /// write earlier.
    public func send() throws(RedisError) {
        try flushStaged()
        let context = try usableContext()
        var done: Int32 = 0
        while done == 0 {
            let status = tlsSession.map { eddy_tls_buffer_write(UnsafeMutableRawPointer(context), $0, &done) }
                ?? redisBufferWrite(context, &done)
            if status != REDIS_OK {
                throw Hiredis.error(of: context, errno: errno)
            }
        }
    }

    /// Appends the command held by `builder` (encoded as it is, no copy of the builder).
    func appendEncoded(_ builder: borrowing RedisCommandBuilder) throws(RedisError) {
        _ = try usableContext()
        guard staged.command(builder) else { throw .invalidUsage("empty command") }
        try didStageCommand()
    }

    /// Appends `command name numkeys keys... arguments...` from an already built `call`.
    func appendInvocationEncoded<Name: RedisArgument>(_ command: StaticString, _ name: Name,
                                                      _ call: borrowing RedisScriptCall) throws(RedisError) {
        _ = try usableContext()
        staged.invocation(command, name, call)
        try didStageCommand()
    }
}
