/// A feature read that Redis answered with an error or an unexpected reply.
/// Connection failures are thrown as `RedisError` instead.
public enum ServingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The read function failed for `key`, e.g. `EDDYSTATE` when the entity
    /// was written for other features, or `WRONGTYPE` when the Redis key is
    /// not an entity hash.
    case readFailed(key: String, message: String)
    /// The reply for `key` was neither a JSON text nor nil.
    case unexpectedReply(key: String, reply: String)

    /// A one-line description naming the key.
    public var description: String {
        switch self {
        case let .readFailed(key, message): return "reading \(key) failed: \(message)"
        case let .unexpectedReply(key, reply): return "unexpected reply reading \(key): \(reply)"
        }
    }
}
