/// Why a Redis URL string was rejected by ``RedisURL/init(parsing:)``.
///
/// Messages name the offending component but never echo a password.
public enum RedisURLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The string was empty.
    case empty
    /// No `scheme://` prefix was found.
    case missingScheme(String)
    /// The scheme is not one this client supports.
    case unsupportedScheme(String)
    /// A `redis://` URL had no host.
    case missingHost
    /// The host part was malformed (e.g. an unterminated IPv6 bracket).
    case invalidHost(String)
    /// The port was not an integer in 1...65535.
    case invalidPort(String)
    /// The database was not a non-negative integer.
    case invalidDatabase(String)
    /// A `unix://` URL had no absolute socket path.
    case invalidSocketPath(String)
    /// The `user:password@` part was malformed; the associated text says why.
    case invalidUserInfo(String)
    /// A `%XX` escape in the named component was malformed.
    case invalidPercentEncoding(component: String)
    /// A query parameter other than `db` was given.
    case unsupportedQueryParameter(String)
    /// A `redis+cluster://` URL had an empty seed (e.g. `host:7000,,host:7001` or a trailing comma).
    case emptyClusterSeed(String)
    /// A `redis+cluster://` URL named a database other than 0 (a cluster has only database 0).
    case clusterDatabase(String)
    /// A `redis+cluster://` URL was given where only a single server is accepted
    /// (``RedisURL/init(parsing:)``); ``RedisTarget/init(parsing:)`` accepts both.
    case clusterURL
    /// A TLS query parameter (`ca`, `cert`, `key`, `sni`, `insecure`) was malformed, or given
    /// without `rediss://`.
    case invalidTLSParameter(name: String, reason: String)

    /// A human-readable description of the problem.
    public var description: String {
        switch self {
        case .empty:
            return "empty Redis URL"
        case let .missingScheme(text):
            // Quoted only when it holds no credentials (no '@'): the text did not parse, so
            // where a password would start is unknown.
            let quoted = text.contains("@") ? "" : " '\(text)'"
            return "Redis URL\(quoted) has no scheme: expected redis://host[:port][/db] or unix:///path"
        case let .unsupportedScheme(scheme):
            return "unsupported Redis URL scheme '\(scheme)': supported are redis://, rediss:// (TLS), unix://, redis+cluster:// and rediss+cluster://"
        case .missingHost:
            return "Redis URL has no host: expected redis://host[:port][/db]"
        case let .invalidHost(host):
            return "invalid host '\(host)' in Redis URL (IPv6 addresses go in brackets: redis://[::1]:6379)"
        case let .invalidPort(port):
            return "invalid port '\(port)' in Redis URL: expected an integer in 1...65535"
        case let .invalidDatabase(db):
            return "invalid database '\(db)' in Redis URL: expected a non-negative integer, as in redis://host:6379/2"
        case let .invalidSocketPath(path):
            return "invalid socket path '\(path)' in Redis URL: expected an absolute path, as in unix:///run/redis.sock"
        case let .invalidUserInfo(reason):
            return "invalid credentials in Redis URL: \(reason)"
        case let .invalidPercentEncoding(component):
            return "invalid percent-encoding in the \(component) of the Redis URL"
        case let .unsupportedQueryParameter(name):
            return "unsupported query parameter '\(name)' in Redis URL: only 'db' is recognised, and with rediss:// the TLS settings ca, cert, key, sni and insecure (redis+cluster:// takes no db)"
        case let .emptyClusterSeed(hosts):
            return "empty seed in Redis Cluster URL hosts '\(hosts)': expected redis+cluster://host:port[,host:port...]"
        case let .clusterDatabase(db):
            return "invalid database '\(db)' in Redis Cluster URL: a cluster has only database 0"
        case .clusterURL:
            return "a redis+cluster:// URL names a Redis Cluster, but a single server (redis:// or unix://) is needed here"
        case let .invalidTLSParameter(name, reason):
            return "invalid TLS setting '\(name)' in Redis URL: \(reason)"
        }
    }
}
