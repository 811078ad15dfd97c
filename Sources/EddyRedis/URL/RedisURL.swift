/// Where and how to connect to a Redis server.
///
/// Accepted forms (see ``init(parsing:)``):
/// - `redis://[user:password@]host[:port][/db]`, port defaulting to 6379, IPv6 hosts in brackets;
/// - `unix://[user:password@]/absolute/path[?db=N]`.
///
/// A Redis Cluster is addressed by `redis+cluster://host:port[,host:port...]`, a
/// ``RedisClusterURL``: ``RedisTarget/init(parsing:)`` parses all three forms, while this
/// initializer rejects the cluster form with ``RedisURLError/clusterURL``.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    /// The port used when a `redis://` URL names none.
    public static let defaultPort = 6379

    /// The URL scheme, i.e. the kind of deployment addressed.
    public enum Scheme: String, Sendable, Hashable {
        /// A single server over TCP.
        case redis
        /// A single server over TCP with TLS.
        case rediss
        /// A single server over a Unix domain socket.
        case unix
    }

    /// A single server address.
    public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
        /// A TCP host (name, IPv4 or IPv6 literal without brackets) and port.
        case tcp(host: String, port: Int)
        /// A Unix domain socket path.
        case unix(path: String)

        /// `host:port` (`[v6]:port`) or the socket path.
        public var description: String {
            switch self {
            case let .tcp(host, port):
                return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case let .unix(path):
                return path
            }
        }
    }

    /// The server to connect to.
    public var endpoint: Endpoint
    /// ACL user name for `AUTH user password`; `nil` uses `AUTH password` (the default user).
    public var username: String?
    /// Password for `AUTH`; `nil` skips authentication.
    public var password: String?
    /// Logical database selected with `SELECT` after connecting (0 skips the command).
    public var database: Int
    /// TLS settings (`rediss://`); `nil` for plaintext.
    public var tls: RedisTLS?

    /// The scheme matching ``endpoint``.
    public var scheme: Scheme {
        switch endpoint {
        case .tcp: return tls == nil ? .redis : .rediss
        case .unix: return .unix
        }
    }

    /// Creates a URL from its parts.
    public init(endpoint: Endpoint, username: String? = nil, password: String? = nil, database: Int = 0,
                tls: RedisTLS? = nil) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// A TCP URL for `host:port`.
    public static func tcp(host: String, port: Int = RedisURL.defaultPort, database: Int = 0) -> RedisURL {
        RedisURL(endpoint: .tcp(host: host, port: port), database: database)
    }

    /// Parses a URL string; see the type's documentation for the accepted forms.
    ///
    /// - Throws: ``RedisURLError`` naming the malformed component.
    public init(parsing text: String) throws(RedisURLError) {
        self = try RedisURLParser.parse(text)
    }

    /// The URL in canonical form with the password replaced by `***`.
    public var description: String {
        var credentials = ""
        if password != nil {
            credentials = "\(username ?? ""):***@"
        }
        switch endpoint {
        case .tcp:
            let db = database == 0 ? "" : "/\(database)"
            let query = tls.map { $0.queryItems.isEmpty ? "" : "?" + $0.queryItems.joined(separator: "&") } ?? ""
            return "\(scheme.rawValue)://\(credentials)\(endpoint)\(db)\(query)"
        case let .unix(path):
            let db = database == 0 ? "" : "?db=\(database)"
            return "unix://\(credentials)\(path)\(db)"
        }
    }
}
