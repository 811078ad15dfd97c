import EddyRedis

/// A real Redis Cluster of ``RedisServerProcess`` masters on loopback, for tests and benchmarks.
///
/// Each master runs with `cluster-enabled yes` (its `nodes.conf` in its own temporary directory,
/// its bus on a free `cluster-port`);
/// the initializer gives master `i` the `i`-th of equal slot ranges (as `redis-cli --cluster
/// create --cluster-replicas 0` does), joins them with `CLUSTER MEET` and returns once every node
/// reports `cluster_state:ok` and sees the full slot map. Deinitialisation kills the servers.
///
/// With `replicas: 1` every master gets a replica (`CLUSTER REPLICATE`), and
/// ``failOver(master:by:waitForPromotion:timeout:)`` promotes it, gracefully (`CLUSTER FAILOVER`)
/// or after a crash of the master (`SIGKILL`; detected within `cluster-node-timeout`, 2000 ms
/// unless `options` say otherwise).
///
/// Slots move with ``migrate(slot:from:to:)`` (the same `SETSLOT IMPORTING/MIGRATING`, `MIGRATE`,
/// `SETSLOT NODE` steps as `redis-cli --cluster reshard`), or step by step to observe `ASK`.
public final class RedisClusterProcess: Sendable {
    /// The masters, in slot order.
    public let servers: [RedisServerProcess]
    /// Node id per master (`CLUSTER MYID`).
    public let nodeIDs: [String]
    /// The replicas: `replicas[i]` replicated `servers[i]` at creation (empty without replicas).
    /// After a failover the replica is a master and serves the slots (see ``failOver(master:by:waitForPromotion:timeout:)``).
    public let replicas: [RedisServerProcess]
    /// Node id per replica.
    public let replicaNodeIDs: [String]

    /// Every node: the masters at creation, then the replicas.
    public var nodes: [RedisServerProcess] { servers + replicas }

    /// Starts `masters` cluster-enabled servers (extra `options` for each) and forms the cluster;
    /// with `replicas: 1`, one more server per master replicates it.
    public init(masters: Int = 3, replicas: Int = 0, options: [String: String] = [:],
                timeout: Duration = .seconds(20)) throws {
        precondition(masters >= 1 && masters <= 64)
        precondition(replicas == 0 || replicas == 1, "one replica per master at most")
        var clusterOptions = ["cluster-enabled": "yes", "cluster-config-file": "nodes.conf",
                              "cluster-node-timeout": "2000"]
        if replicas > 0 {
            // A replica's first sync otherwise waits 5 s for more replicas to share the transfer.
            clusterOptions["repl-diskless-sync-delay"] = "0"
        }
        clusterOptions.merge(options) { _, given in given }
        func startNode() throws -> RedisServerProcess {
            // The bus port defaults to port + 10000, which may exceed 65535 for a free port.
            var serverOptions = clusterOptions
            if serverOptions["cluster-port"] == nil, let busPort = FreePort.find() {
                serverOptions["cluster-port"] = String(busPort)
            }
            // With TLS settings, each node also listens for TLS on a port of its own.
            if serverOptions["tls-cert-file"] != nil, serverOptions["tls-port"] == nil, let tlsPort = FreePort.find() {
                serverOptions["tls-port"] = String(tlsPort)
            }
            return try RedisServerProcess(options: serverOptions)
        }
        var servers: [RedisServerProcess] = []
        for _ in 0..<masters { servers.append(try startNode()) }
        self.servers = servers
        var replicaServers: [RedisServerProcess] = []
        for _ in 0..<(masters * replicas) { replicaServers.append(try startNode()) }
        self.replicas = replicaServers
        var ids: [String] = []
        for (i, server) in servers.enumerated() {
            let c = try RedisConnection(url: server.url)
            defer { c.close() }
            guard let id = try c.command("CLUSTER", "MYID").checked().string else {
                throw RedisError.unexpectedReply(command: "CLUSTER MYID", reply: "not a string")
            }
            ids.append(id)
            let range = Self.slotRange(of: i, masters: masters)
            try c.command("CLUSTER", "SET-CONFIG-EPOCH", i + 1).checked()
            try c.command("CLUSTER", "ADDSLOTSRANGE", range.lowerBound, range.upperBound).checked()
        }
        nodeIDs = ids
        var replicaIDs: [String] = []
        for replica in replicaServers {
            let c = try RedisConnection(url: replica.url)
            defer { c.close() }
            guard let id = try c.command("CLUSTER", "MYID").checked().string else {
                throw RedisError.unexpectedReply(command: "CLUSTER MYID", reply: "not a string")
            }
            replicaIDs.append(id)
        }
        replicaNodeIDs = replicaIDs
        let first = try RedisConnection(url: servers[0].url)
        defer { first.close() }
        for server in servers.dropFirst() + replicaServers {
            let busPort = server.configuration.options["cluster-port"].flatMap { Int($0) } ?? server.port + 10_000
            try first.command("CLUSTER", "MEET", server.host, server.port, busPort).checked()
        }
        if !replicaServers.isEmpty {
            let deadline = ContinuousClock.now + timeout
            for (i, replica) in replicaServers.enumerated() {
                try Self.makeReplica(replica, of: ids[i], deadline: deadline, timeout: timeout)
            }
            for replica in replicaServers {
                try Self.waitForMasterLink(replica, deadline: deadline, timeout: timeout)
            }
        }
        try waitUntilStable(timeout: timeout)
    }

    /// `CLUSTER REPLICATE masterID` on `replica`, retried until the replica has learnt of the
    /// master through the bus (`ERR Unknown node` until then).
    private static func makeReplica(_ replica: RedisServerProcess, of masterID: String,
                                    deadline: ContinuousClock.Instant, timeout: Duration) throws {
        try poll(replica, until: deadline, failure: "CLUSTER REPLICATE on \(replica.port) failed within \(timeout)") { c in
            try c.command("CLUSTER", "REPLICATE", masterID).errorMessage
        }
    }

    /// Waits until `replica` reports `master_link_status:up` (initial sync done).
    private static func waitForMasterLink(_ replica: RedisServerProcess,
                                          deadline: ContinuousClock.Instant, timeout: Duration) throws {
        try poll(replica, until: deadline, failure: "replica \(replica.port) not linked within \(timeout)") { c in
            let info = try c.command("INFO", "replication").checked().string ?? ""
            return info.contains("role:slave") && info.contains("master_link_status:up") ? nil : info
        }
    }

    /// Runs `attempt` on a new connection to `server` every 50 ms until it
    /// returns nil (done); past `deadline`, throws `failure` with the last
    /// reason it returned (or error it threw).
    private static func poll(_ server: RedisServerProcess, until deadline: ContinuousClock.Instant, failure: String,
                             _ attempt: (RedisConnection) throws -> String?) throws {
        var last = ""
        while true {
            do {
                let c = try RedisConnection(url: server.url)
                defer { c.close() }
                guard let reason = try attempt(c) else { return }
                last = reason
            } catch {
                last = "\(error)"
            }
            guard ContinuousClock.now < deadline else { throw RedisError.server(message: "\(failure): \(last)") }
            RetryPolicy.sleep(.milliseconds(50))
        }
    }

    /// The slots master `index` of `masters` gets at creation: equal consecutive ranges.
    public static func slotRange(of index: Int, masters: Int) -> ClosedRange<Int> {
        let lower = index * HashSlot.count / masters
        let upper = (index + 1) * HashSlot.count / masters - 1
        return lower...upper
    }

    /// Every master as a seed, credentials from the servers' `requirepass`.
    public var url: RedisClusterURL {
        RedisClusterURL(seeds: servers.map { .tcp(host: $0.host, port: $0.port) },
                        password: servers[0].configuration.options["requirepass"])
    }

    /// Every master's TLS port as a seed (`rediss+cluster://`), with `tls`; nil without TLS.
    public func tlsURL(_ tls: RedisTLS) -> RedisClusterURL? {
        let ports = servers.compactMap(\.tlsPort)
        guard ports.count == servers.count else { return nil }
        return RedisClusterURL(seeds: zip(servers, ports).map { .tcp(host: $0.host, port: $1) },
                               password: servers[0].configuration.options["requirepass"], tls: tls)
    }

    /// The `redis+cluster://` URL text (with the password, if any, unredacted).
    public var urlString: String {
        let auth = servers[0].configuration.options["requirepass"].map { ":\($0)@" } ?? ""
        return "redis+cluster://" + auth + servers.map { "\($0.host):\($0.port)" }.joined(separator: ",")
    }

    /// Waits until every running node (replicas included) reports `cluster_state:ok`, knows every
    /// node and agrees on the owner of every slot.
    public func waitUntilStable(timeout: Duration = .seconds(20)) throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        let nodes = self.nodes
        while ContinuousClock.now < deadline {
            do {
                var maps: [ClusterSlotMap] = []
                var ok = true
                for server in nodes where server.isRunning {
                    let c = try RedisConnection(url: server.url)
                    defer { c.close() }
                    let info = try c.command("CLUSTER", "INFO").checked().string ?? ""
                    if !info.contains("cluster_state:ok") || !info.contains("cluster_known_nodes:\(nodes.count)") {
                        ok = false
                        last = info
                        break
                    }
                    maps.append(try ClusterSlotMap.parse(clusterSlots: try c.command("CLUSTER", "SLOTS"), askedHost: server.host))
                }
                if ok, let map = maps.first, map.coveredSlotCount == HashSlot.count, maps.allSatisfy({ $0 == map }) {
                    return
                }
                if ok { last = "nodes disagree on the slot map" }
            } catch {
                last = "\(error)"
            }
            RetryPolicy.sleep(.milliseconds(50))
        }
        throw RedisError.server(message: "Redis Cluster not stable within \(timeout): \(last)")
    }

    // MARK: Failover

    /// How ``failOver(master:by:waitForPromotion:timeout:)`` replaces a master by its replica.
    public enum FailoverMode: Sendable {
        /// `CLUSTER FAILOVER` on the replica: the master hands over, then replicates the new master.
        case graceful
        /// `SIGKILL` of the master: the other masters mark it failed after `cluster-node-timeout`
        /// and elect its replica.
        case kill
    }

    /// Replaces master `index` (as created) by its replica `replicas[index]`; with
    /// `waitForPromotion` returns once the replica is a master and the cluster is stable again.
    public func failOver(master index: Int, by mode: FailoverMode, waitForPromotion: Bool = true,
                         timeout: Duration = .seconds(20)) throws {
        precondition(replicas.indices.contains(index), "master \(index) has no replica")
        switch mode {
        case .graceful:
            try requestManualFailover(ofReplica: index)
        case .kill:
            servers[index].stop(.kill)
        }
        if waitForPromotion { try self.waitForPromotion(ofReplica: index, timeout: timeout, graceful: mode == .graceful) }
    }

    /// `CLUSTER FAILOVER` on `replicas[index]`.
    private func requestManualFailover(ofReplica index: Int) throws {
        let c = try RedisConnection(url: replicas[index].url)
        defer { c.close() }
        try c.command("CLUSTER", "FAILOVER").checked()
    }

    /// Waits until `replicas[index]` reports `role:master` and the cluster is stable.
    /// `graceful`: a manual failover Redis gave up on (it allows 5 s for the master to
    /// hand over, which a loaded machine can miss) is requested again every 6 s.
    public func waitForPromotion(ofReplica index: Int, timeout: Duration = .seconds(20), graceful: Bool = false) throws {
        let deadline = ContinuousClock.now + timeout
        var requestedAt = ContinuousClock.now
        try Self.poll(replicas[index], until: deadline,
                      failure: "replica \(replicas[index].port) not promoted within \(timeout)") { c in
            let info = try c.command("INFO", "replication").checked().string ?? ""
            if info.contains("role:master") { return nil }
            if graceful, ContinuousClock.now - requestedAt >= .seconds(6) {
                requestedAt = ContinuousClock.now
                try? requestManualFailover(ofReplica: index)
            }
            return info
        }
        try waitUntilStable(timeout: max(deadline - ContinuousClock.now, .milliseconds(1)))
    }

    /// The node (master or promoted replica) serving `slot`, per the first running master's view.
    public func node(servingSlot slot: Int) throws -> RedisServerProcess? {
        guard let asked = nodes.first(where: { $0.isRunning }) else { return nil }
        let c = try RedisConnection(url: asked.url)
        defer { c.close() }
        let map = try ClusterSlotMap.parse(clusterSlots: try c.command("CLUSTER", "SLOTS"), askedHost: asked.host)
        guard let endpoint = map.owner(ofSlot: slot) else { return nil }
        return nodes.first { RedisURL.Endpoint.tcp(host: $0.host, port: $0.port) == endpoint }
    }

    // MARK: Moving slots

    /// Moves `slot` with all its keys from master `from` to master `to`, as `redis-cli --cluster
    /// reshard` does: IMPORTING/MIGRATING, `MIGRATE` in batches, then `SETSLOT NODE` everywhere.
    public func migrate(slot: Int, from: Int, to: Int, batch: Int = 100) throws {
        try beginMigration(slot: slot, from: from, to: to)
        while try migrateKeys(slot: slot, from: from, to: to, count: batch) > 0 {}
        try finishMigration(slot: slot, to: to)
    }

    /// Moves every slot of `slots` (see ``migrate(slot:from:to:batch:)``).
    public func migrate(slots: ClosedRange<Int>, from: Int, to: Int) throws {
        for slot in slots { try migrate(slot: slot, from: from, to: to) }
    }

    /// Marks `slot` IMPORTING on `to` and MIGRATING on `from`: from now on `from` answers `ASK`
    /// for keys of the slot it no longer holds.
    public func beginMigration(slot: Int, from: Int, to: Int) throws {
        try command(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", nodeIDs[from])
        try command(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", nodeIDs[to])
    }

    /// `MIGRATE`s up to `count` keys of `slot` from `from` to `to`; returns how many moved.
    @discardableResult
    public func migrateKeys(slot: Int, from: Int, to: Int, count: Int) throws -> Int {
        let c = try RedisConnection(url: servers[from].url)
        defer { c.close() }
        let keys = try c.command("CLUSTER", "GETKEYSINSLOT", slot, count).checked().array ?? []
        guard !keys.isEmpty else { return 0 }
        let target = servers[to]
        let password = target.configuration.options["requirepass"]
        try c.command(building: { b in
            b.add("MIGRATE"); b.add(target.host); b.add(target.port); b.add(""); b.add(0); b.add(10_000)
            if let password { b.add("AUTH"); b.add(password) }
            b.add("KEYS")
            for key in keys { b.add(key.bytes ?? []) }
        }).checked()
        return keys.count
    }

    /// Assigns `slot` to `to` on every node (the target first), ending a migration.
    public func finishMigration(slot: Int, to: Int) throws {
        try command(to, "CLUSTER", "SETSLOT", slot, "NODE", nodeIDs[to])
        for index in servers.indices where index != to && servers[index].isRunning {
            try command(index, "CLUSTER", "SETSLOT", slot, "NODE", nodeIDs[to])
        }
    }

    /// Index of the master that currently serves `slot`, per master 0's view.
    public func owner(ofSlot slot: Int) throws -> Int? {
        let c = try RedisConnection(url: servers[0].url)
        defer { c.close() }
        let map = try ClusterSlotMap.parse(clusterSlots: try c.command("CLUSTER", "SLOTS"), askedHost: servers[0].host)
        guard let endpoint = map.owner(ofSlot: slot) else { return nil }
        return servers.firstIndex { RedisURL.Endpoint.tcp(host: $0.host, port: $0.port) == endpoint }
    }

    /// Total keys over all masters (`DBSIZE` summed; replicas' copies not counted, a promoted
    /// replica counted instead of its dead master).
    public func keyCount() throws -> Int {
        var total = 0
        // Without replicas every master counts (a dead one is an error, as before).
        let counted = replicas.isEmpty ? servers : nodes.filter { $0.isRunning }
        for server in counted {
            let c = try RedisConnection(url: server.url)
            defer { c.close() }
            if !replicas.isEmpty, try c.command("ROLE").checked().array?.first?.string != "master" { continue }
            total += Int(try c.command("DBSIZE").checked().integer ?? 0)
        }
        return total
    }

    private func command<each A: RedisArgument>(_ index: Int, _ arguments: repeat each A) throws {
        let c = try RedisConnection(url: servers[index].url)
        defer { c.close() }
        try c.command(repeat each arguments).checked()
    }
}
