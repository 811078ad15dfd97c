/// Where and how to reach a Redis Cluster: a few seed nodes and the credentials every node shares.
///
/// Written `redis+cluster://[user:password@]host[:port][,host[:port]...]` (see
/// ``RedisTarget/init(parsing:)``); ports default to 6379, IPv6 hosts go in brackets. The seeds
/// are only where the slot map is first fetched from (`CLUSTER SLOTS`): every master is then
/// found from the map, so one reachable seed is enough. A cluster has only database 0, so the
/// URL has no database part.
public struct RedisClusterURL: Sendable, Hashable, CustomStringConvertible {
    /// Seed nodes, in the order given; never empty.
    public var seeds: [RedisURL.Endpoint]
    /// ACL user name for `AUTH user password` on every node; `nil` uses the default user.
    public var username: String?
    /// Password for `AUTH` on every node; `nil` skips authentication.
    public var password: String?
    /// TLS settings for every node (`rediss+cluster://`); `nil` for plaintext.
    public var tls: RedisTLS?

    /// Creates a cluster URL from its parts.
    public init(seeds: [RedisURL.Endpoint], username: String? = nil, password: String? = nil, tls: RedisTLS? = nil) {
        precondition(!seeds.isEmpty, "a Redis Cluster URL needs at least one seed")
        self.seeds = seeds
        self.username = username
        self.password = password
        self.tls = tls
    }

    /// The single-server URL of one node of this cluster (its credentials, database 0).
    public func url(for endpoint: RedisURL.Endpoint) -> RedisURL {
        RedisURL(endpoint: endpoint, username: username, password: password, tls: tls)
    }

    /// The URL in canonical form with the password replaced by `***`.
    public var description: String {
        let credentials = password != nil ? "\(username ?? ""):***@" : ""
        let query = tls.map { $0.queryItems.isEmpty ? "" : "?" + $0.queryItems.joined(separator: "&") } ?? ""
        return "\(tls == nil ? "redis" : "rediss")+cluster://\(credentials)\(seeds.map(\.description).joined(separator: ","))\(query)"
    }
}
