import EddyCore
import EddyDevKit
import EddyKafka
import EddyRedis
import EddyStore
import Foundation
import Testing

/// Issue 19, the worker: item features (`parts: per_partition`) and user
/// features from one user-keyed topic with 8 partitions, written by three
/// workers of one group through two SIGKILLs and the rebalances they and
/// a join cause. Redis must equal `eddy replay --from-kafka` for every item
/// (its parts merged as SEMANTICS.md says) and every user.
@Suite(.serialized) struct EntitiesWorkerTests {
    static let topologyText = """
        name: shop
        source:
          brokers: "127.0.0.1:1"
          topic: clickstream
          group: shop
          format: json
          properties:
            session.timeout.ms: "4000"
            heartbeat.interval.ms: "400"
        time: {field: ts, unit: ms}
        allowed_lateness: 5m
        sink: {redis: "redis://127.0.0.1:1", prefix: "shop:", flush_interval: 5ms}
        dead_letter: {topic: clickstream.dlq}
        entities:
          - name: users
            key: user_id
            parts: one
            features:
              - {name: clicks_1h, kind: count, window: 1h, hop: 5m, where: event == "click"}
              - {name: last_items, kind: last_n, field: item_id, n: 5}
          - name: items
            key: item_id
            features:
              - {name: views_1h, kind: count, window: 1h, hop: 5m, where: event == "view"}
              - {name: viewers_1h, kind: distinct_count, field: user_id, window: 1h, hop: 5m}
              - {name: last_viewers, kind: last_n, field: user_id, n: 4}
              - {name: s, kind: session, gap: 10m}
              - {name: first_viewer, kind: first, field: user_id}
            derived:
              - {name: views_per_viewer, expr: "views_1h / viewers_1h"}
        """

    @Test func itemPartsThroughKillsAndRebalancesEqualReplay() throws {
        let dir = try Harness.tempDir()
        let path = { (name: String) in dir.appendingPathComponent(name).path }
        let topology = path("shop.yaml")
        try Self.topologyText.write(toFile: topology, atomically: true, encoding: .utf8)
        // Popular items: each is viewed by many users, so its events come
        // from every partition; a few hundred events have no item (invalid
        // for items only).
        let events = path("events.jsonl")
        let gen = try Harness.run(["dev", "generate", "--count", "60000", "--users", "5000", "--seed", "19",
                                   "--population", "realistic", "--items", "3000", "--out", events], in: dir)
        #expect(gen.status == 0, "\(gen.stderr)")
        var lines = try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n").map { Array($0.utf8) }
        for i in stride(from: 97, to: lines.count, by: 211) {
            lines[i] = Array(String(decoding: lines[i], as: UTF8.self).replacingOccurrences(of: "\"item_id\"", with: "\"no_item\"").utf8)
        }
        let noItem = lines.filter { !String(decoding: $0, as: UTF8.self).contains("\"item_id\"") }.count
        try (lines.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n") + "\n")
            .write(toFile: events, atomically: true, encoding: .utf8)

        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture(partitions: 8)
        // Keyed by user (the topology's first entity's key), 20 s of events.
        let producer = EventProducer(lines: lines[...], brokers: kafka.brokers, topologyPath: topology, rate: 3_000)
        let group = "g-entities"
        func worker(_ name: String, extra: [String] = []) throws -> Background {
            try Background(["run", topology, "--brokers", kafka.brokers, "--redis", redis.url.description,
                            "--group", group, "--stats-interval", "1"] + extra, in: dir, name: name)
        }
        func committed() throws -> Int64 { try kafka.committed(group: group).values.reduce(0) { $0 + max($1, 0) } }
        func waitCommitted(_ n: Int64, _ w: Background) throws {
            let deadline = Date().addingTimeInterval(120)
            while try committed() < n, Date() < deadline { usleep(100_000) }
            #expect(try committed() >= n, "no progress to \(n)\n\(w.log.suffix(3000))")
        }
        let a = try worker("a")
        try waitCommitted(8_000, a)
        let b = try worker("b")  // joins: a rebalance
        try waitCommitted(25_000, b)
        a.signal(SIGKILL)
        _ = a.wait()
        // Few keys in memory: parts are evicted and reloaded one by one.
        let c = try worker("c", extra: ["--max-keys", "600"])
        try waitCommitted(42_000, c)
        usleep(150_000)
        b.signal(SIGKILL)
        _ = b.wait()
        #expect(producer.wait(), "\(producer.failure ?? "")")
        #expect(try kafka.waitUntilCommitted(group: group, timeout: 180), "\(c.log.suffix(3000))")
        c.signal(SIGTERM)
        #expect(c.wait(seconds: 15) == 0, "\(c.log.suffix(3000))")
        #expect(a.log.contains("of entity items"), "\(a.log.prefix(2000))")
        #expect(Rig.counter(c.log, "evicted") > 1_000, "\(c.log.suffix(1500))")

        // Items: every item's parts, merged, equal the Kafka replay (real partitions).
        let full = try Harness.topology(path: topology)
        let items = full.entity(named: "items")!, users = full.entity(named: "users")!
        let conn = try RedisConnection(url: redis.url)
        let itemFinal = path("items-final.jsonl")
        let r = try Harness.run(["replay", "--topology", topology, "--entity", "items", "--from-kafka", "--brokers", kafka.brokers,
                                 "--emit", "final", "--out", itemFinal, "--no-progress"], in: dir)
        #expect(r.status == 0 && r.stderr.contains("invalid \(noItem),"), "\(r.stderr)")
        let itemEngine = FeatureEngine(topology: items)
        var itemKeys = 0, multiPart = 0, mismatches: [String] = []
        for line in try String(contentsOfFile: itemFinal, encoding: .utf8).split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let key = obj["key"] as! String, kt = (obj["key_time"] as! NSNumber).int64Value
            let all = try conn.command("HGETALL", "shop:items:" + key).array ?? []
            var parts: [(Int32, [UInt8])] = [], fences = 0
            for i in stride(from: 0, to: all.count - 1, by: 2) {
                let name = all[i].string ?? ""
                if name.hasPrefix("_p:clickstream:") { parts.append((Int32(name.dropFirst(15))!, all[i + 1].bytes ?? [])) }
                if name.hasPrefix("_o:clickstream:") { fences += 1 }
                #expect(name != "_state", "an item part written as a single state: \(key)")
            }
            itemKeys += 1
            if parts.count > 1 { multiPart += 1 }
            guard !parts.isEmpty, fences == parts.count else { mismatches.append("\(key): \(parts.count) parts, \(fences) fences"); continue }
            let got = finalLine(itemEngine, key: key, keyTime: kt, blob: itemEngine.mergeParts(key: Array(key.utf8), parts))
            if got != String(line) { mismatches.append("\(key):\n  redis  \(got)\n  replay \(line)") }
        }
        #expect(itemKeys > 500 && multiPart > 200, "\(itemKeys) items, \(multiPart) with several parts")
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(itemKeys) items differ, first: \(mismatches.prefix(3))")

        // The Function (eddy get) merges the same parts: a few of the busiest items.
        let some = try String(contentsOfFile: itemFinal, encoding: .utf8).split(separator: "\n").prefix(3)
        for line in some {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let key = obj["key"] as! String, kt = (obj["key_time"] as! NSNumber).int64Value
            let g = try Harness.capture(["get", "--topology", topology, "--entity", "items", "--redis", redis.url.description,
                                         "--at", "\(kt)", key], in: dir)
            #expect(g.status == 0 && g.out == String(line) + "\n", "\(g.out) vs \(line)\n\(g.err)")
        }

        // eddy serve serves each entity as <topology>_<entity>: the same objects over HTTP.
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", topology, "--redis", redis.url.description,
                                    "--listen", "127.0.0.1:\(port)", "--no-console"], in: dir, name: "serve")
        var ready = false
        for _ in 0..<200 where !ready {
            ready = (try? ClusterTests.get("http://127.0.0.1:\(port)/readyz"))?.status == 200
            if !ready { usleep(50_000) }
        }
        #expect(ready, "\(serve.log)")
        for line in some {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let key = obj["key"] as! String, kt = (obj["key_time"] as! NSNumber).int64Value
            let (status, body) = try ClusterTests.get("http://127.0.0.1:\(port)/v1/features/shop_items/\(key)?at=\(kt)")
            #expect(status == 200 && body == String(line), "\(key): \(status) \(body)")
        }
        #expect(try ClusterTests.get("http://127.0.0.1:\(port)/v1/features/shop_items/nothing").status == 404)
        serve.signal(SIGTERM)
        _ = serve.wait(seconds: 10)
        // The least-privilege users cover every entity's prefix.
        let acl = try Harness.capture(["acl", topology, "--role", "worker"], in: dir)
        #expect(acl.status == 0 && acl.out.contains("~shop:users:* ~shop:items:*"), "\(acl.out)\(acl.err)")

        // Users (parts: one): the single-key layout, equal to the replay.
        let userFinal = path("users-final.jsonl")
        let u = try Harness.run(["replay", "--topology", topology, "--entity", "users", "--input", events,
                                 "--emit", "final", "--out", userFinal, "--no-progress"], in: dir)
        #expect(u.status == 0, "\(u.stderr)")
        let userEngine = FeatureEngine(topology: users)
        var userKeys = 0
        mismatches = []
        for line in try String(contentsOfFile: userFinal, encoding: .utf8).split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let key = obj["key"] as! String, kt = (obj["key_time"] as! NSNumber).int64Value
            guard let blob = try conn.command("HGET", "shop:users:" + key, "_state").bytes else {
                mismatches.append("\(key): missing"); continue
            }
            if finalLine(userEngine, key: key, keyTime: kt, blob: blob) != String(line) { mismatches.append("\(key)") }
            userKeys += 1
        }
        #expect(userKeys > 1000)
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(userKeys) users differ, first: \(mismatches.prefix(3))")
        let size = try conn.command("DBSIZE").integer ?? 0
        // One partition epoch per partition written (the worker's fence: PartitionEpochs).
        let epochs = Int64(try conn.command("KEYS", "*" + PartitionEpochs.keyInfix + "*").array?.count ?? 0)
        #expect(epochs > 0 && epochs <= 8)
        #expect(size - epochs == Int64(userKeys + itemKeys), "Redis holds \(size) keys (\(epochs) partition epochs), replay \(userKeys) users + \(itemKeys) items")

        // eddy verify per entity, read at the last event's time: every item's
        // merged parts and per-part fences, every user; then a part deleted is found.
        let lastTs = lines.compactMap { line -> Int64? in
            let text = String(decoding: line, as: UTF8.self)
            return text.range(of: "\"ts\":").flatMap { Int64(text[$0.upperBound...].prefix { $0.isNumber }) }
        }.max()!
        let verifyItems = ["verify", "--topology", topology, "--entity", "items", "--from-kafka", "--brokers", kafka.brokers,
                           "--redis", redis.url.description, "--at", "\(lastTs)", "--no-progress"]
        var v = try Harness.capture(verifyItems, in: dir)
        #expect(v.status == 0 && v.err.contains("keys checked \(itemKeys), equal \(itemKeys), different 0, missing in Redis 0, extra in Redis 0"),
                "\(v.err)\n\(v.out.prefix(2000))")
        v = try Harness.capture(["verify", "--topology", topology, "--entity", "users", "--input", events,
                                 "--redis", redis.url.description, "--at", "\(lastTs)", "--no-progress"], in: dir)
        #expect(v.status == 0 && v.err.contains("keys checked \(userKeys), equal \(userKeys), different 0"), "\(v.err)")
        let busy = try String(contentsOfFile: itemFinal, encoding: .utf8).split(separator: "\n").compactMap { line -> String? in
            let key = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["key"] as? String
            return key
        }.first { key in ((try? conn.command("HKEYS", "shop:items:" + key).array) ?? []).filter { $0.string?.hasPrefix("_p:") == true }.count > 2 }!
        let dropped = try conn.command("HKEYS", "shop:items:" + busy).array!.compactMap(\.string).first { $0.hasPrefix("_p:") }!
        _ = try conn.command("HDEL", "shop:items:" + busy, dropped)
        v = try Harness.capture(verifyItems, in: dir)
        #expect(v.status == 1 && v.err.contains("different 1,") && v.out.contains("\"key\":\"\(busy)\""), "\(v.err)\n\(v.out.prefix(2000))")

        // Events without an item: dead-lettered for the items entity only, each once.
        // (Redelivered after a SIGKILL, a dead letter may come twice: counted by position.)
        let letters = try kafka.readAll(topic: "clickstream.dlq").filter { $0.headers["eddy.reason"] == "missing_key" }
        let distinct = Set(letters.map { "\($0.headers["eddy.partition"] ?? ""):\($0.headers["eddy.offset"] ?? "")" })
        #expect(distinct.count == noItem && letters.allSatisfy { $0.headers["eddy.entity"] == "items" },
                "\(distinct.count) missing-key dead letters, \(noItem) events without an item")
    }
}
