/// A real Redis Cluster of ``RedisServerProcess`` masters on loopback, for tests and benchmarks.
///
/// Each master runs with `cluster-enabled yes` (its `nodes.conf` in its own temporary directory,
/// its bus on a free `cluster-port`);
/// the initializer gives master `i` the `i`-th of equal slot ranges (as `redis-cli --cluster
/// create --cluster-replicas 0` does), joins them with `CLUSTER MEET` and returns once every node
/// reports `cluster_state:ok` and sees the full slot map. Deinitialisation kills the servers.
///
/// Slots move with ``migrate(slot:from:to:)`` (the same `SETSLOT IMPORTING/MIGRATING`, `MIGRATE`,
/// `SETSLOT NODE` steps as `redis-cli --cluster reshard`), or step by step to observe `ASK`.
public final class RedisClusterProcess: Sendable {
    /// The masters, in slot order.
    public let servers: [RedisServerProcess]
    /// Node id per master (`CLUSTER MYID`).
    public let nodeIDs: [String]

    /// Starts `masters` cluster-enabled servers (extra `options` for each) and forms the cluster.
    public init(masters: Int = 3, options: [String: String] = [:], timeout: Duration = .seconds(20)) throws {
        precondition(masters >= 1 && masters <= 64)
        var clusterOptions = ["cluster-enabled": "yes", "cluster-config-file": "nodes.conf",
                              "cluster-node-timeout": "2000"]
        clusterOptions.merge(options) { _, given in given }
        var servers: [RedisServerProcess] = []
        for _ in 0..<masters {
            // The bus port defaults to port + 10000, which may exceed 65535 for a free port.
            var serverOptions = clusterOptions
            if serverOptions["cluster-port"] == nil, let busPort = FreePort.find() {
                serverOptions["cluster-port"] = String(busPort)
            }
            servers.append(try RedisServerProcess(options: serverOptions))
        }
        self.servers = servers
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
        let first = try RedisConnection(url: servers[0].url)
        defer { first.close() }
        for server in servers.dropFirst() {
            let busPort = server.configuration.options["cluster-port"].flatMap { Int($0) } ?? server.port + 10_000
            try first.command("CLUSTER", "MEET", server.host, server.port, busPort).checked()
        }
        try waitUntilStable(timeout: timeout)
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

    /// The `redis+cluster://` URL text (with the password, if any, unredacted).
    public var urlString: String {
        let auth = servers[0].configuration.options["requirepass"].map { ":\($0)@" } ?? ""
        return "redis+cluster://" + auth + servers.map { "\($0.host):\($0.port)" }.joined(separator: ",")
    }

    /// Waits until every running node reports `cluster_state:ok`, knows every node and agrees on
    /// the owner of every slot.
    public func waitUntilStable(timeout: Duration = .seconds(20)) throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            do {
                var maps: [ClusterSlotMap] = []
                var ok = true
                for server in servers where server.isRunning {
                    let c = try RedisConnection(url: server.url)
                    defer { c.close() }
                    let info = try c.command("CLUSTER", "INFO").checked().string ?? ""
                    if !info.contains("cluster_state:ok") || !info.contains("cluster_known_nodes:\(servers.count)") {
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

    /// Total keys over all masters (`DBSIZE` summed).
    public func keyCount() throws -> Int {
        var total = 0
        for server in servers {
            let c = try RedisConnection(url: server.url)
            defer { c.close() }
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
