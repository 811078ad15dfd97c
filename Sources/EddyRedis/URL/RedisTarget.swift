/// What a Redis URL addresses: one server (`redis://`, `unix://`) or a Redis Cluster
/// (`redis+cluster://`). ``RedisClient/init(_:options:)`` connects to either.
///
/// ```swift
/// let target = try RedisTarget(parsing: "redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
/// let client = try RedisClient(target)
/// ```
public enum RedisTarget: Sendable, Hashable, CustomStringConvertible {
    /// A single server.
    case single(RedisURL)
    /// A Redis Cluster, found through its seed nodes.
    case cluster(RedisClusterURL)

    /// Parses any of the accepted forms:
    /// - `redis://[user:password@]host[:port][/db]`
    /// - `unix://[user:password@]/absolute/path[?db=N]`
    /// - `redis+cluster://[user:password@]host[:port][,host[:port]...]`
    ///
    /// - Throws: ``RedisURLError`` naming the malformed component.
    public init(parsing text: String) throws(RedisURLError) {
        self = try RedisURLParser.parseTarget(text)
    }

    /// `true` for a Redis Cluster.
    public var isCluster: Bool {
        if case .cluster = self { return true }
        return false
    }

    /// The URL in canonical form with the password replaced by `***`.
    public var description: String {
        switch self {
        case let .single(url): return url.description
        case let .cluster(url): return url.description
        }
    }
}
