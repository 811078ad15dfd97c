/// One reply from the server (RESP2), decoded into Swift values.
public enum RedisReply: Sendable, Hashable, CustomStringConvertible {
    /// A simple string such as `OK` or `PONG`.
    case status(String)
    /// An error reply such as `ERR unknown command`. Reading it does not break the connection.
    case error(String)
    /// An integer reply.
    case integer(Int64)
    /// A bulk string: arbitrary bytes.
    case bulk([UInt8])
    /// An array (multi-bulk) reply.
    case array([RedisReply])
    /// The nil bulk string or nil array (RESP `$-1` / `*-1`).
    case null

    /// Status text, or a bulk string decoded as UTF-8 (invalid sequences repaired); else `nil`.
    public var string: String? {
        switch self {
        case let .status(text): return text
        case let .bulk(bytes): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// The bytes of a bulk string; else `nil`.
    public var bytes: [UInt8]? {
        if case let .bulk(bytes) = self { return bytes }
        return nil
    }

    /// The value of an integer reply; else `nil`.
    public var integer: Int64? {
        if case let .integer(value) = self { return value }
        return nil
    }

    /// The elements of an array reply; else `nil`.
    public var array: [RedisReply]? {
        if case let .array(elements) = self { return elements }
        return nil
    }

    /// The message of an error reply; else `nil`.
    public var errorMessage: String? {
        if case let .error(message) = self { return message }
        return nil
    }

    /// `true` for ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Returns `self`, or throws ``RedisError/server(message:)`` if this is an error reply.
    @discardableResult
    public func checked() throws(RedisError) -> RedisReply {
        if case let .error(message) = self { throw .server(message: message) }
        return self
    }

    /// A compact, `redis-cli`-like rendering (bulk strings shown as UTF-8, truncated).
    public var description: String {
        switch self {
        case let .status(text): return text
        case let .error(message): return "(error) \(message)"
        case let .integer(value): return "(integer) \(value)"
        case let .bulk(bytes):
            let shown = String(decoding: bytes.prefix(64), as: UTF8.self)
            return bytes.count > 64 ? "\"\(shown)...\" (\(bytes.count) bytes)" : "\"\(shown)\""
        case let .array(elements):
            return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        case .null: return "(nil)"
        }
    }
}
