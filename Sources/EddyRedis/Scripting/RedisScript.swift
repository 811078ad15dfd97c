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

/// The keys and arguments of one `EVALSHA` or `FCALL` invocation, added to two reused builders.
///
/// ```swift
/// try connection.appendEvalsha(script) { call in
///     call.keys.addJoined("feature:user:", userID)
///     call.arguments.add(windowEnd)
/// }
/// ```
public struct RedisScriptCall {
    /// The `KEYS` of the invocation.
    public var keys = RedisCommandBuilder()
    /// The `ARGV` of the invocation.
    public var arguments = RedisCommandBuilder()

    /// An empty call.
    public init() {}

    mutating func removeAll() {
        keys.removeAll()
        arguments.removeAll()
    }
}
