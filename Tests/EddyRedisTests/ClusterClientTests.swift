import EddyDevKit
import EddyRedis
import Foundation
import Testing

/// The routed client against a real 3-master cluster on loopback (`RedisClusterProcess`).
@Suite(.serialized) struct ClusterClientTests {
    static func keys(_ n: Int, prefix: String = "k:") -> [String] { (0..<n).map { "\(prefix)\($0)" } }

    /// The value each key's owner holds, read with one plain connection per master.
    static func directGet(_ keys: [String], cluster: RedisClusterProcess) throws -> [RedisReply] {
        let seed = try RedisConnection(url: cluster.servers[0].url)
        let map = try ClusterSlotMap.parse(clusterSlots: try seed.command("CLUSTER", "SLOTS"), askedHost: "127.0.0.1")
        var connections: [RedisURL.Endpoint: RedisConnection] = [:]
        return try keys.map { key in
            let owner = try #require(map.owner(ofSlot: HashSlot.of(key)))
            let c = try connections[owner] ?? RedisConnection(url: RedisURL(endpoint: owner))
            connections[owner] = c
            return try c.command("GET", key)
        }
    }

    @Test("slots equal CLUSTER KEYSLOT for plain, tagged and odd keys")
    func slotsMatchServer() throws {
        let cluster = try RedisClusterProcess()
        let c = try RedisConnection(url: cluster.servers[0].url)
        var keys = Self.keys(300, prefix: "clickstream:u")
        keys += ["", "{", "}", "{}", "{}x", "a{b}c", "a{b", "{{x}}", "x{}{y}", "é{ü}", "\u{0}bin\u{1}", "{user1000}.followers"]
        for key in keys {
            let server = try c.command("CLUSTER", "KEYSLOT", key).checked().integer
            #expect(server == Int64(HashSlot.of(key)), "\(key)")
        }
    }

    @Test("a routed pipeline over many keys equals per-key reads, spread over every master")
    func routedPipelineEqualsPerKey() throws {
        let cluster = try RedisClusterProcess()
        let client = try RedisClusterClient(url: cluster.url)
        #expect(client.masters.count == 3)
        let keys = Self.keys(3000)
        let written = try client.pipeline(count: keys.count) { i, b in
            b.add("SET"); b.add(keys[i]); b.add("v\(i)")
        }
        #expect(written.allSatisfy { $0 == .status("OK") })
        let read = try client.pipeline(count: keys.count) { i, b in b.add("GET"); b.add(keys[i]) }
        #expect(read == keys.indices.map { .bulk(Array("v\($0)".utf8)) })
        #expect(read == (try Self.directGet(keys, cluster: cluster)))
        for server in cluster.servers {
            let size = try RedisConnection(url: server.url).command("DBSIZE").integer ?? 0
            #expect(size > 800, "keys spread over the masters: \(size) on \(server.port)")
        }
        #expect(client.statistics.moved == 0 && client.statistics.asked == 0)
        // Error replies are the commands' own answers, in place.
        let mixed = try client.pipeline(count: 3) { i, b in
            if i == 1 { b.add("HGET"); b.add(keys[1]); b.add("f") } else { b.add("GET"); b.add(keys[i]) }
        }
        #expect(mixed[0] == .bulk(Array("v0".utf8)) && mixed[2] == .bulk(Array("v2".utf8)))
        #expect(mixed[1].errorMessage?.hasPrefix("WRONGTYPE") == true)
    }

    @Test("MOVED after slots were resharded: the map is refreshed and commands resent")
    func movedAfterReshard() throws {
        let cluster = try RedisClusterProcess()
        let client = try RedisClusterClient(url: cluster.url)
        let keys = Self.keys(2000)
        _ = try client.pipeline(count: keys.count) { i, b in b.add("SET"); b.add(keys[i]); b.add("v\(i)") }
        // Move 200 of master 0's slots that hold keys to master 2.
        let slots = Set(keys.map(HashSlot.of)).filter { RedisClusterProcess.slotRange(of: 0, masters: 3).contains($0) }
        let moved = Array(slots.sorted().prefix(200))
        for slot in moved { try cluster.migrate(slot: slot, from: 0, to: 2) }
        #expect(try cluster.owner(ofSlot: moved[0]) == 2)
        let read = try client.pipeline(count: keys.count) { i, b in b.add("GET"); b.add(keys[i]) }
        #expect(read == keys.indices.map { .bulk(Array("v\($0)".utf8)) })
        #expect(client.statistics.moved > 0, "\(client.statistics)")
        #expect(client.slotMap.owner(ofSlot: moved[0]) == .tcp(host: "127.0.0.1", port: cluster.servers[2].port))
        // The refreshed map routes straight: no more redirections.
        let before = client.statistics.moved
        _ = try client.pipeline(count: keys.count) { i, b in b.add("GET"); b.add(keys[i]) }
        #expect(client.statistics.moved == before)
    }

    @Test("ASK during a migration: ASKING + resend to the importing node, map unchanged")
    func askDuringMigration() throws {
        let cluster = try RedisClusterProcess()
        let client = try RedisClusterClient(url: cluster.url)
        // 40 keys in one slot (hash tag), owned by master 0.
        var tag = 0
        while !RedisClusterProcess.slotRange(of: 0, masters: 3).contains(HashSlot.of("{t\(tag)}")) { tag += 1 }
        let keys = (0..<40).map { "{t\(tag)}:\($0)" }
        let slot = HashSlot.of(keys[0])
        _ = try client.pipeline(count: keys.count) { i, b in b.add("SET"); b.add(keys[i]); b.add("v\(i)") }
        try cluster.beginMigration(slot: slot, from: 0, to: 1)
        #expect(try cluster.migrateKeys(slot: slot, from: 0, to: 1, count: 15) == 15)
        let read = try client.pipeline(count: keys.count) { i, b in b.add("GET"); b.add(keys[i]) }
        #expect(read == keys.indices.map { .bulk(Array("v\($0)".utf8)) })
        #expect(client.statistics.asked == 15, "\(client.statistics)")
        #expect(client.statistics.moved == 0)
        #expect(client.slotMap.owner(ofSlot: slot) == .tcp(host: "127.0.0.1", port: cluster.servers[0].port))
        // A new key of the migrating slot is created on the importing node.
        _ = try client.pipeline(count: 1) { _, b in b.add("SET"); b.add("{t\(tag)}:new"); b.add("n") }
        let onTarget = try RedisConnection(url: cluster.servers[1].url)
        try onTarget.command("ASKING").checked()
        #expect(try onTarget.command("GET", "{t\(tag)}:new") == .bulk(Array("n".utf8)))
        // Scripts with several keys of the slot: TRYAGAIN while they are split, then fine.
        let script = RedisScript("return #KEYS")
        while try cluster.migrateKeys(slot: slot, from: 0, to: 1, count: 100) > 0 {}
        try cluster.finishMigration(slot: slot, to: 1)
        let replies = try client.evalshaPipeline(script, count: 2) { i, call in
            call.keys.add(keys[i]); call.keys.add(keys[i + 10])
        }
        #expect(replies == [.integer(2), .integer(2)])
        #expect(client.statistics.moved > 0)
        #expect(client.slotMap.owner(ofSlot: slot) == .tcp(host: "127.0.0.1", port: cluster.servers[1].port))
    }

    @Test("EVALSHA: the script is loaded on each master that answers NOSCRIPT; CROSSSLOT is the caller's")
    func scriptsPerMaster() throws {
        let cluster = try RedisClusterProcess()
        let client = try RedisClusterClient(url: cluster.url)
        let script = RedisScript("redis.call('SET', KEYS[1], ARGV[1]); return ARGV[1]")
        let keys = Self.keys(500)
        let replies = try client.evalshaPipeline(script, count: keys.count) { i, call in
            call.keys.add(keys[i]); call.arguments.add(i)
        }
        #expect(replies == keys.indices.map { .bulk(Array(String($0).utf8)) })
        #expect(client.statistics.reloaded > 0)
        for server in cluster.servers {
            let exists = try RedisConnection(url: server.url).command("SCRIPT", "EXISTS", script.sha1)
            #expect(exists == .array([.integer(1)]))
        }
        #expect(try Self.directGet(keys, cluster: cluster) == keys.indices.map { .bulk(Array(String($0).utf8)) })
        // Keys of two slots in one call: the node's own answer.
        var other = 1
        while HashSlot.of("x\(other)") == HashSlot.of("x0") { other += 1 }
        let cross = try client.evalshaPipeline(script, count: 1) { _, call in
            call.keys.add("x0"); call.keys.add("x\(other)"); call.arguments.add(1)
        }
        #expect(cross[0].errorMessage?.hasPrefix("CROSSSLOT") == true, "\(cross)")
    }

    @Test("a master killed and restarted mid-pipeline: the client reconnects and resends")
    func masterRestart() throws {
        let cluster = try RedisClusterProcess()
        let client = try RedisClusterClient(url: cluster.url)
        let keys = Self.keys(1500)
        _ = try client.pipeline(count: keys.count) { i, b in b.add("SET"); b.add(keys[i]); b.add("a\(i)") }
        let victim = cluster.servers[1]
        victim.stop(.kill)
        let restarter = Thread { Thread.sleep(forTimeInterval: 0.6); try? victim.start() }
        restarter.start()
        let written = try client.pipeline(count: keys.count) { i, b in b.add("SET"); b.add(keys[i]); b.add("b\(i)") }
        #expect(written.allSatisfy { $0 == .status("OK") })
        #expect(client.statistics.retried > 0, "\(client.statistics)")
        try cluster.waitUntilStable()
        #expect(try Self.directGet(keys, cluster: cluster) == keys.indices.map { .bulk(Array("b\($0)".utf8)) })
    }

    @Test("replica failover: a master SIGKILLed mid-run, its replica promoted, routed pipelines carry on without an error")
    func replicaFailoverAfterKill() throws {
        // cluster-node-timeout 1500 ms: failure detection plus election took ~4.4 s with 2000 ms,
        // too close to the client's ~6-7 s retry budget on a loaded machine.
        let cluster = try RedisClusterProcess(masters: 3, replicas: 1, options: ["cluster-node-timeout": "1500"])
        let client = try RedisClient(try RedisTarget(parsing: cluster.urlString))
        guard case let .cluster(routed) = client else {
            Issue.record("redis+cluster:// gave \(client)")
            return
        }
        let victim = 1
        let victimEndpoint = RedisURL.Endpoint.tcp(host: "127.0.0.1", port: cluster.servers[victim].port)
        let promotedEndpoint = RedisURL.Endpoint.tcp(host: "127.0.0.1", port: cluster.replicas[victim].port)
        let victimSlot = RedisClusterProcess.slotRange(of: victim, masters: 3).lowerBound
        #expect(routed.slotMap.owner(ofSlot: victimSlot) == victimEndpoint)
        let batches = 8, perBatch = 600
        let keys = Self.keys(batches * perBatch, prefix: "fo:")
        var failoverBatch: Duration = .zero
        for batch in 0..<batches {
            let base = batch * perBatch
            if batch == batches / 2 {
                // Replication is asynchronous: let the replica acknowledge every write so far, so a
                // lost value could only be the client's fault. Then crash the master.
                let c = try RedisConnection(url: cluster.servers[victim].url)
                #expect(try c.command("WAIT", 1, 5000).integer == 1)
                c.close()
                cluster.servers[victim].stop(.kill)
            }
            let started = ContinuousClock.now
            // Neither pipeline may throw: the client must retry through the failover.
            let written = try client.pipeline(count: perBatch) { i, b in
                b.add("SET"); b.add(keys[base + i]); b.add("v\(base + i)")
            }
            #expect(written.allSatisfy { $0 == .status("OK") }, "batch \(batch)")
            // Everything written so far reads back, including the keys written before the crash.
            let upTo = base + perBatch
            let read = try client.pipeline(count: upTo) { i, b in b.add("GET"); b.add(keys[i]) }
            #expect(read == (0..<upTo).map { .bulk(Array("v\($0)".utf8)) }, "batch \(batch)")
            if batch == batches / 2 { failoverBatch = ContinuousClock.now - started }
        }
        print("replicaFailoverAfterKill: first batch after the SIGKILL took \(failoverBatch); \(routed.statistics)")
        #expect(routed.statistics.retried > 0, "\(routed.statistics)")
        // The promoted replica serves the dead master's slots, for the client and the cluster.
        #expect(routed.slotMap.owner(ofSlot: victimSlot) == promotedEndpoint)
        #expect(routed.masters.count == 3 && !routed.masters.contains(victimEndpoint), "\(routed.masters)")
        try cluster.waitForPromotion(ofReplica: victim)
        #expect(try cluster.node(servingSlot: victimSlot) === cluster.replicas[victim])
        let onPromoted = try RedisConnection(url: cluster.replicas[victim].url)
        #expect(try onPromoted.command("ROLE").array?.first?.string == "master")
        #expect(try onPromoted.command("DBSIZE").integer ?? 0 > 1000)
        #expect(try Self.directGet(keys, cluster: cluster) == keys.indices.map { .bulk(Array("v\($0)".utf8)) })
        #expect(try cluster.keyCount() == keys.count)
    }

    @Test("graceful CLUSTER FAILOVER: MOVED to the promoted replica, nothing lost")
    func gracefulFailover() throws {
        let cluster = try RedisClusterProcess(masters: 3, replicas: 1)
        let client = try RedisClusterClient(url: cluster.url)
        let keys = Self.keys(1500, prefix: "gf:")
        _ = try client.pipeline(count: keys.count) { i, b in b.add("SET"); b.add(keys[i]); b.add("a\(i)") }
        try cluster.failOver(master: 2, by: .graceful)
        let slot = RedisClusterProcess.slotRange(of: 2, masters: 3).lowerBound
        #expect(try cluster.node(servingSlot: slot) === cluster.replicas[2])
        let written = try client.pipeline(count: keys.count) { i, b in b.add("SET"); b.add(keys[i]); b.add("b\(i)") }
        #expect(written.allSatisfy { $0 == .status("OK") })
        #expect(client.statistics.moved > 0, "\(client.statistics)")
        #expect(client.slotMap.owner(ofSlot: slot) == .tcp(host: "127.0.0.1", port: cluster.replicas[2].port))
        let read = try client.pipeline(count: keys.count) { i, b in b.add("GET"); b.add(keys[i]) }
        #expect(read == keys.indices.map { .bulk(Array("b\($0)".utf8)) })
        #expect(try cluster.keyCount() == keys.count)
    }

    @Test("a seed list with dead seeds still finds the cluster; a non-cluster server is a clear error")
    func seeds() throws {
        let cluster = try RedisClusterProcess(masters: 3)
        let dead = RedisURL.Endpoint.tcp(host: "127.0.0.1", port: 1)
        let client = try RedisClusterClient(url: RedisClusterURL(seeds: [dead, .tcp(host: "127.0.0.1", port: cluster.servers[2].port)]))
        #expect(client.masters.count == 3)
        let plain = try RedisServerProcess()
        let error = caughtError { () throws(RedisError) in
            _ = try RedisClusterClient(url: RedisClusterURL(seeds: [.tcp(host: "127.0.0.1", port: plain.port)]))
        }
        #expect(error?.description.contains("cluster support disabled") == true, "\(String(describing: error))")
        let none = caughtError { () throws(RedisError) in
            _ = try RedisClusterClient(url: RedisClusterURL(seeds: [dead]))
        }
        #expect(none?.description.contains("no node answered CLUSTER SLOTS") == true, "\(String(describing: none))")
    }

    @Test("RedisClient: the same calls on a single server and on a cluster give the same replies")
    func seam() throws {
        let cluster = try RedisClusterProcess()
        let single = try RedisServerProcess()
        let keys = Self.keys(700)
        var results: [[RedisReply]] = []
        for target in [RedisTarget.single(single.url), try RedisTarget(parsing: cluster.urlString)] {
            let client = try RedisClient(target)
            let script = RedisScript("redis.call('HSET', KEYS[1], 'f', ARGV[1]); return redis.call('HLEN', KEYS[1])")
            try client.scriptLoad(script)
            _ = try client.evalshaPipeline(script, count: keys.count) { i, call in call.keys.add(keys[i]); call.arguments.add(i) }
            results.append(try client.pipeline(count: keys.count) { i, b in b.add("HGET"); b.add(keys[i]); b.add("f") })
            var total: Int64 = 0
            try client.forEachMaster { c throws(RedisError) in total += try c.command("DBSIZE").integer ?? 0 }
            #expect(total == Int64(keys.count))
        }
        #expect(results[0] == results[1])
        #expect(results[0][5] == .bulk(Array("5".utf8)))
    }
}
