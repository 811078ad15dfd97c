/// A Lua script identified by its SHA-1, for `EVALSHA`.
///
/// The digest is computed locally, so a script can be invoked with `EVALSHA` right away;
/// the helpers on ``RedisConnection`` load it (`SCRIPT LOAD`) when the server answers `NOSCRIPT`.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// Lowercase hexadecimal SHA-1 of ``source``, as returned by `SCRIPT LOAD`.
    public let sha1: String

    /// Wraps a Lua source text.
    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(source.utf8)
    }
}

/// The keys and arguments of one `EVALSHA` or `FCALL` invocation, added to two builders that the
/// connection reuses (like ``RedisCommandBuilder``, it is lent to a closure, never created by callers).
///
/// ```swift
/// try connection.appendEvalsha(script) { call in
///     call.keys.addJoined("feature:user:", userID)
///     call.arguments.add(windowEnd)
/// }
/// ```
public struct RedisScriptCall: ~Copyable {
    /// The `KEYS` of the invocation.
    public var keys = RedisCommandBuilder()
    /// The `ARGV` of the invocation.
    public var arguments = RedisCommandBuilder()

    init() {}

    mutating func removeAll() {
        keys.removeAll()
        arguments.removeAll()
    }

    /// Frees the storage (called once by the owning connection).
    mutating func deallocate() {
        keys.deallocate()
        arguments.deallocate()
    }
}
