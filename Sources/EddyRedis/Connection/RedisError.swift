/// Errors raised by ``RedisConnection`` and the helpers built on it.
///
/// Connection-level failures (`connectionFailed`, `connectionLost`, `timedOut`) leave the
/// connection unusable until ``RedisConnection/reconnect()`` succeeds; a `server` error is an
/// ordinary error reply and leaves the connection healthy.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The connection could not be established (refused, unreachable, DNS, handshake I/O).
    case connectionFailed(endpoint: String, reason: String)
    /// An established connection broke (peer closed it, reset, or an earlier error left it
    /// unusable). Commands pipelined but not yet answered may or may not have been applied.
    case connectionLost(reason: String)
    /// A read or write exceeded ``RedisConnection/Options/commandTimeout``; the connection
    /// is unusable afterwards because the reply stream is out of step.
    case timedOut(reason: String)
    /// The server answered with an error reply, e.g. `"WRONGTYPE Operation against ..."`.
    case server(message: String)
    /// `AUTH` was rejected during connection setup.
    case authenticationFailed(message: String)
    /// The reply stream could not be parsed.
    case protocolError(reason: String)
    /// A helper received a reply of a type it cannot use (e.g. `SCRIPT LOAD` not returning a string).
    case unexpectedReply(command: String, reply: String)
    /// The API was used incorrectly (empty command, reading with nothing pending, ...).
    case invalidUsage(String)

    /// A human-readable description of the error.
    public var description: String {
        switch self {
        case let .connectionFailed(endpoint, reason):
            return "Redis connection to \(endpoint) failed: \(reason)"
        case let .connectionLost(reason):
            return "Redis connection lost: \(reason)"
        case let .timedOut(reason):
            return "Redis operation timed out: \(reason)"
        case let .server(message):
            return "Redis server error: \(message)"
        case let .authenticationFailed(message):
            return "Redis authentication failed: \(message)"
        case let .protocolError(reason):
            return "Redis protocol error: \(reason)"
        case let .unexpectedReply(command, reply):
            return "Unexpected reply to \(command): \(reply)"
        case let .invalidUsage(message):
            return "Invalid use of the Redis client: \(message)"
        }
    }

    /// The first word of a server error message (`"NOSCRIPT"`, `"WRONGTYPE"`, `"ERR"`, ...),
    /// or `nil` for errors that are not server error replies.
    public var serverErrorCode: String? {
        guard case let .server(message) = self else { return nil }
        return RedisError.code(ofServerMessage: message)
    }

    /// `true` for failures that concern the connection itself and need a reconnect.
    public var isConnectionError: Bool {
        switch self {
        case .connectionFailed, .connectionLost, .timedOut: return true
        default: return false
        }
    }

    /// `true` when the server refused the credentials or this user's ACL does not allow the
    /// command or key: `AUTH` failed, or a `NOPERM`, `NOAUTH` or `WRONGPASS` reply. Retrying
    /// does not help; the user or its ACL must change.
    public var isPermissionDenied: Bool {
        if case .authenticationFailed = self { return true }
        switch serverErrorCode {
        case "NOPERM", "NOAUTH", "WRONGPASS": return true
        default: return false
        }
    }

    /// `true` when retrying the operation later may succeed: connection errors, and the server
    /// errors `LOADING`, `BUSY`, `TRYAGAIN`, `MASTERDOWN` and `CLUSTERDOWN`.
    public var isTransient: Bool {
        if isConnectionError { return true }
        switch serverErrorCode {
        case "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN": return true
        default: return false
        }
    }

    package static func code(ofServerMessage message: String) -> String {
        String(message.prefix { $0 != " " })
    }
}
