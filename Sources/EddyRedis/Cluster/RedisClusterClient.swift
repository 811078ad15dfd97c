/// A client of a Redis Cluster: the slot map, one ``RedisConnection`` per master, and routed
/// pipelines (``pipeline(count:keyIndex:_:)``, ``evalshaPipeline(_:count:_:)``,
/// ``fcallPipeline(_:count:isMissing:reload:_:)``).
///
/// A routed pipeline builds each command (by index) into a reused buffer, computes the
/// ``HashSlot`` of its key, appends it to the connection of the slot's master, writes every
/// master's pipeline to its socket, and only then reads the replies, which it hands back in the
/// caller's order. Redirections are followed without the caller noticing:
/// - `MOVED`: the map entry is corrected at once, the whole map refreshed (`CLUSTER SLOTS`) after
///   the round, and the command resent to the new owner;
/// - `ASK`: the command is resent once to the named node, preceded by `ASKING`, map unchanged;
/// - `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN` and connection failures: after a backoff
///   (``retryPolicy``) and a map refresh, the command is resent (this is how a failover or a
///   restarted master is survived).
///
/// A resent command is rebuilt by calling the caller's `build` closure again with its index, so
/// `build` must be repeatable, and commands must be safe to apply twice (a command whose reply was
/// lost with its connection may have run): reads, absolute writes, fenced script calls. Resent
/// commands run after the rest of the batch, so commands of one pipeline must not depend on each
/// other's order. After ``retryPolicy``'s attempts the last error is thrown.
///
/// Like ``RedisConnection``, a client is used by one thread at a time and is not `Sendable`.
public final class RedisClusterClient {
    /// The seeds and credentials.
    public let url: RedisClusterURL
    /// Settings of every node connection; ``RedisConnection/Options/onConnect`` runs on each.
    public let options: RedisConnection.Options
    /// Rounds and backoff of one routed pipeline (redirections, `TRYAGAIN`, failovers).
    public var retryPolicy: RetryPolicy
    /// The slot map in use.
    public private(set) var slotMap = ClusterSlotMap()
    /// What the routed pipelines met so far, for logs and tests.
    public internal(set) var statistics = Statistics()

    /// Counters of the redirections and retries met by the routed pipelines.
    public struct Statistics: Sendable, Hashable {
        /// `MOVED` replies followed.
        public var moved = 0
        /// `ASK` replies followed.
        public var asked = 0
        /// Commands resent after `TRYAGAIN`/`CLUSTERDOWN`/... or a connection failure.
        public var retried = 0
        /// Commands resent after the node lacked a script or function (then loaded there).
        public var reloaded = 0
        /// Slot map refreshes (the first fetch included).
        public var refreshes = 0
    }

    /// Every node talked to: the masters of the map and `ASK` targets.
    var nodes: [Node] = []
    /// Per slot, the index in ``nodes`` of its master, or -1: the routing fast path.
    var slotNodes: [Int32] = Array(repeating: -1, count: HashSlot.count)
    /// Reused by the routed pipelines to build one command at a time.
    var scratchCommand = RedisCommandBuilder()
    /// Reused by the routed `EVALSHA`/`FCALL` pipelines.
    var scratchCall = RedisScriptCall()
    /// Reused routing state (indices to send, to resend, nodes used in a round).
    var pending: [Int] = []
    var resend: [Int] = []
    var usedNodes: [Int] = []
    /// Commands to send with `ASKING` to a node in the next round: command index -> node index.
    var askTargets: [Int: Int] = [:]

    /// One node and its connection.
    final class Node {
        let endpoint: RedisURL.Endpoint
        var connection: RedisConnection?
        /// Commands appended this round: `index << 1 | asking`.
        var routed: [Int] = []
        /// Set when the node's connection failed this round.
        var failed = false
        /// Set when a reply showed the node lacks the script or function.
        var needsReload = false

        init(endpoint: RedisURL.Endpoint) { self.endpoint = endpoint }

        var host: String {
            if case let .tcp(host, _) = endpoint { return host }
            return ""
        }
    }

    /// Fetches the slot map from the first seed that answers `CLUSTER SLOTS`.
    ///
    /// - Throws: ``RedisError/connectionFailed(endpoint:reason:)`` when no seed answers, or the
    ///   seed's error (e.g. `ERR This instance has cluster support disabled`).
    public init(url: RedisClusterURL, options: RedisConnection.Options = RedisConnection.Options(),
                retryPolicy: RetryPolicy = RedisClusterClient.defaultRetryPolicy) throws(RedisError) {
        self.url = url
        self.options = options
        self.retryPolicy = retryPolicy
        try refreshSlotMap()
    }

    deinit {
        for node in nodes { node.connection?.close() }
        scratchCommand.deallocate()
        scratchCall.deallocate()
    }

    /// About 7 s of rounds (20 ms doubling to 1 s): longer than a failover with the default
    /// `cluster-node-timeout` of a test cluster, shorter than a stuck caller would like.
    public static let defaultRetryPolicy = RetryPolicy(maxAttempts: 12, initialDelay: .milliseconds(20),
                                                       maxDelay: .seconds(1), multiplier: 2, jitter: 0.2)

    /// The masters of the current slot map.
    public var masters: [RedisURL.Endpoint] { slotMap.masters }

    /// `false` when some master's connection has failed (it reconnects on next use).
    public var isConnected: Bool {
        nodes.allSatisfy { $0.connection?.isConnected ?? true }
    }

    /// Closes every node connection; the next pipeline reconnects.
    public func close() {
        for node in nodes {
            node.connection?.close()
            node.connection = nil
        }
    }

    // MARK: Slot map

    /// Fetches `CLUSTER SLOTS` from a known master or, failing that, a seed, and routes by it.
    ///
    /// - Throws: ``RedisError/connectionFailed(endpoint:reason:)`` naming the last failure when no
    ///   node answers with a map that serves at least one slot.
    public func refreshSlotMap() throws(RedisError) {
        statistics.refreshes += 1
        var candidates = slotMap.masters.filter { endpoint in
            nodes.contains { $0.endpoint == endpoint && $0.connection?.isConnected == true }
        }
        for endpoint in slotMap.masters + url.seeds where !candidates.contains(endpoint) {
            candidates.append(endpoint)
        }
        var lastFailure = "no node to ask"
        for endpoint in candidates {
            let node = nodes[nodeIndex(for: endpoint)]
            do {
                let connection = try self.connection(node)
                let reply = try connection.command("CLUSTER", "SLOTS")
                let map = try ClusterSlotMap.parse(clusterSlots: reply, askedHost: node.host)
                guard map.coveredSlotCount > 0 else {
                    lastFailure = "\(endpoint) serves no slot yet (cluster not set up?)"
                    continue
                }
                install(map)
                return
            } catch {
                if case .server = error, candidates.count == 1 { throw error }
                node.connection?.close()
                node.connection = nil
                lastFailure = "\(endpoint): \(error)"
            }
        }
        throw .connectionFailed(endpoint: url.description, reason: "no node answered CLUSTER SLOTS (\(lastFailure))")
    }

    /// Routes by `map`; closes connections of nodes that are no longer masters.
    private func install(_ map: ClusterSlotMap) {
        slotMap = map
        var indexOfMaster: [Int32] = []
        for endpoint in map.masters { indexOfMaster.append(Int32(nodeIndex(for: endpoint))) }
        for slot in 0..<HashSlot.count {
            slotNodes[slot] = map.masterIndex(ofSlot: slot).map { indexOfMaster[$0] } ?? -1
        }
        for node in nodes where !map.masters.contains(node.endpoint) {
            node.connection?.close()
            node.connection = nil
        }
    }

    /// Records a `MOVED` answer in the map right away.
    func assign(slot: Int, to endpoint: RedisURL.Endpoint) {
        slotMap.assign(slot: slot, to: endpoint)
        slotNodes[slot] = Int32(nodeIndex(for: endpoint))
    }

    /// The index in ``nodes`` of `endpoint`, added if new.
    func nodeIndex(for endpoint: RedisURL.Endpoint) -> Int {
        if let index = nodes.firstIndex(where: { $0.endpoint == endpoint }) { return index }
        nodes.append(Node(endpoint: endpoint))
        return nodes.count - 1
    }

    /// The node's open connection, connecting (with ``options``) if needed.
    func connection(_ node: Node) throws(RedisError) -> RedisConnection {
        if let connection = node.connection, connection.isConnected { return connection }
        node.connection?.close()
        node.connection = nil
        let connection = try RedisConnection(url: url.url(for: node.endpoint), options: options)
        node.connection = connection
        return connection
    }

    // MARK: Per master

    /// Runs `body` on the connection of every master (e.g. to load a script or function library
    /// everywhere). On a connection failure the map is refreshed and every master visited again,
    /// up to ``retryPolicy``'s attempts, so `body` must be idempotent.
    public func forEachMaster(_ body: (RedisConnection) throws(RedisError) -> Void) throws(RedisError) {
        try retryPolicy.run(shouldRetry: { (error: RedisError) in error.isTransient }) { (attempt: Int) throws(RedisError) in
            if attempt > 1 { try refreshSlotMap() }
            for endpoint in slotMap.masters {
                let node = nodes[nodeIndex(for: endpoint)]
                do throws(RedisError) {
                    try body(try connection(node))
                } catch {
                    if error.isConnectionError {
                        node.connection?.close()
                        node.connection = nil
                    }
                    throw error
                }
            }
        }
    }

    /// The connection of the master serving `slot` (for commands the routed pipelines do not
    /// cover); `nil` while no master serves it.
    public func connection(forSlot slot: Int) throws(RedisError) -> RedisConnection? {
        let index = slotNodes[slot]
        guard index >= 0 else { return nil }
        return try connection(nodes[Int(index)])
    }
}

@available(*, unavailable, message: "RedisClusterClient is used by one thread at a time; give each thread its own")
extension RedisClusterClient: Sendable {}
