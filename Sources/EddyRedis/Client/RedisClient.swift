/// One Redis deployment, a single server or a cluster, behind the same pipelined calls: the seam
/// the worker, the serving path, backfills and verification use.
///
/// An enum rather than a protocol existential: a `switch` per pipeline (never per command)
/// picks the single connection's unchanged fast path or the cluster's routed one.
///
/// ```swift
/// let client = try RedisClient(RedisTarget(parsing: url))
/// let replies = try client.pipeline(count: keys.count) { i, command in
///     command.add("HGET"); command.add(keys[i]); command.add("_state")
/// }
/// ```
///
/// Not `Sendable`: like its connections, a client is used by one thread at a time.
public enum RedisClient {
    /// One server, one connection.
    case single(RedisConnection)
    /// A Redis Cluster: a connection per master, commands routed by hash slot.
    case cluster(RedisClusterClient)

    /// Connects to `target`: a ``RedisConnection`` for a single server; for a cluster, the slot
    /// map is fetched from a seed and masters are connected on first use, each with `options`.
    public init(_ target: RedisTarget, options: RedisConnection.Options = RedisConnection.Options()) throws(RedisError) {
        switch target {
        case let .single(url): self = .single(try RedisConnection(url: url, options: options))
        case let .cluster(url): self = .cluster(try RedisClusterClient(url: url, options: options))
        }
    }

    /// What this client is connected to.
    public var target: RedisTarget {
        switch self {
        case let .single(connection): return .single(connection.url)
        case let .cluster(cluster): return .cluster(cluster.url)
        }
    }

    /// `false` once a connection failed (a cluster: any master's); pipelines reconnect a cluster's
    /// masters by themselves, a single connection needs ``RedisConnection/reconnect()``.
    public var isConnected: Bool {
        switch self {
        case let .single(connection): return connection.isConnected
        case let .cluster(cluster): return cluster.isConnected
        }
    }

    /// Closes every connection.
    public func close() {
        switch self {
        case let .single(connection): connection.close()
        case let .cluster(cluster): cluster.close()
        }
    }

    /// Sends `count` commands built by `build(i, &command)` and returns their replies in order.
    /// On a cluster each goes to the master of the slot of its argument `keyIndex` (see
    /// ``RedisClusterClient/pipeline(count:keyIndex:_:)``). `build` may run again for a resent
    /// command, so it must be repeatable.
    public func pipeline(count: Int, keyIndex: Int = 1,
                         _ build: (_ index: Int, _ command: inout RedisCommandBuilder) -> Void) throws(RedisError) -> [RedisReply] {
        switch self {
        case let .single(connection):
            for index in 0..<count {
                try connection.append(building: { build(index, &$0) })
            }
            return try connection.pipeline(count: count)
        case let .cluster(cluster):
            return try cluster.pipeline(count: count, keyIndex: keyIndex, build)
        }
    }

    /// Pipelines `count` `EVALSHA` invocations of `script`, loading it where the server answers
    /// `NOSCRIPT`; on a cluster, routed by each invocation's first key (all its keys must share a
    /// slot). Replies in invocation order.
    public func evalshaPipeline(_ script: RedisScript, count: Int,
                                _ build: (_ index: Int, _ call: inout RedisScriptCall) -> Void) throws(RedisError) -> [RedisReply] {
        switch self {
        case let .single(connection): return try connection.evalshaPipeline(script, count: count, build)
        case let .cluster(cluster): return try cluster.evalshaPipeline(script, count: count, build)
        }
    }

    /// Pipelines `count` `FCALL_RO`s of `function` (a `no-writes` function: Eddy's reads, which a
    /// read-only ACL user may call); calls answered with an error for which
    /// `isMissing` holds are resent once `reload` ran on that server (on a cluster: that node).
    /// Replies in call order.
    public func fcallPipeline(_ function: String, count: Int,
                              isMissing: (String) -> Bool = { _ in false },
                              reload: (RedisConnection) throws(RedisError) -> Void = { _ in },
                              _ build: (_ index: Int, _ call: inout RedisScriptCall) -> Void) throws(RedisError) -> [RedisReply] {
        switch self {
        case let .single(connection):
            for index in 0..<count {
                try connection.appendFcall(function, readOnly: true) { build(index, &$0) }
            }
            var replies = try connection.pipeline(count: count)
            let missing = replies.indices.filter { replies[$0].errorMessage.map(isMissing) ?? false }
            guard !missing.isEmpty else { return replies }
            try reload(connection)
            for index in missing {
                try connection.appendFcall(function, readOnly: true) { build(index, &$0) }
            }
            for index in missing {
                replies[index] = try connection.readReply()
            }
            return replies
        case let .cluster(cluster):
            return try cluster.fcallPipeline(function, count: count, isMissing: isMissing, reload: reload, build)
        }
    }

    /// Runs `body` on the single connection, or on every master's connection of a cluster
    /// (loading scripts and function libraries, `SCAN`, `DBSIZE`, `PING`, ...).
    public func forEachMaster(_ body: (RedisConnection) throws(RedisError) -> Void) throws(RedisError) {
        switch self {
        case let .single(connection): try body(connection)
        case let .cluster(cluster): try cluster.forEachMaster(body)
        }
    }

    /// The single connection, or a connection to every master of a cluster (connecting them).
    public func masterConnections() throws(RedisError) -> [RedisConnection] {
        var connections: [RedisConnection] = []
        try forEachMaster { (connection: RedisConnection) throws(RedisError) in connections.append(connection) }
        return connections
    }

    /// Loads `script` on the server, or on every master of a cluster.
    public func scriptLoad(_ script: RedisScript) throws(RedisError) {
        try forEachMaster { (connection: RedisConnection) throws(RedisError) in try connection.scriptLoad(script) }
    }
}

@available(*, unavailable, message: "RedisClient is used by one thread at a time; give each thread its own")
extension RedisClient: Sendable {}
