import EddyCore
import EddyDevKit
import EddyKafka
import EddyRedis
import Foundation
import Testing

/// Issue 19 end to end: `eddy replay --entity` of item features on a
/// user-keyed topic with 8 partitions. Kafka replay (real partitions)
/// equals a file replay told each event's partition (`--partition-field`).
@Suite(.serialized) struct EntitiesReplayTests {
    let topologyText = """
        name: shop
        source: {brokers: "127.0.0.1:1", topic: clickstream}
        time: {field: ts, unit: ms}
        allowed_lateness: 5m
        sink: {redis: "redis://127.0.0.1:1", prefix: "shop:"}
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
              - {name: spend, kind: sum, field: price}
              - {name: last_buyer, kind: last, field: user_id, window: 1h, hop: 5m}
            derived:
              - {name: views_per_viewer, expr: "views_1h / viewers_1h"}
        """

    func run(_ args: [String], dir: URL) throws -> (Int32, String) {
        let r = try Harness.run(args, in: dir)
        return (r.status, r.stderr)
    }

    @discardableResult
    func ok(_ args: [String], dir: URL) throws -> String {
        let (status, err) = try run(args, dir: dir)
        #expect(status == 0, "eddy \(args.joined(separator: " ")) failed:\n\(err)")
        return err
    }

    /// Runs `eddy args`; stdout and stderr apart.
    func capture(_ args: [String], dir: URL) throws -> (status: Int32, out: String, err: String) {
        try Harness.capture(args, in: dir)
    }

    func sortedLines(_ path: String) throws -> [Substring] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").sorted()
    }

    /// Events produced keyed by user to 8 partitions (our own choice of
    /// partition), also written to events.jsonl, and to events-p.jsonl with
    /// their partition as the field `p`. Returns the topology file.
    func setUp(_ dir: URL, kafka: KafkaFixture) throws -> String {
        let path = { (name: String) in dir.appendingPathComponent(name).path }
        let topology = path("shop.yaml")
        try topologyText.write(toFile: topology, atomically: true, encoding: .utf8)
        try ok(["dev", "generate", "--count", "6000", "--users", "200", "--seed", "19", "--out", path("events.jsonl")], dir: dir)
        let lines = try String(contentsOfFile: path("events.jsonl"), encoding: .utf8).split(separator: "\n").map { String($0) }
        let producer = try KafkaProducer(config: ["bootstrap.servers": kafka.brokers, "linger.ms": "5"])
        var withPartition: [String] = []
        for line in lines {
            let user = line.range(of: "\"user_id\":\"").map { line[$0.upperBound...].prefix { $0 != "\"" } } ?? ""
            let p = Int32(user.utf8.reduce(UInt32(7)) { $0 &* 31 &+ UInt32($1) } % 8)
            try Array(line.utf8).withUnsafeBytes { value in
                try Array(user.utf8).withUnsafeBytes { key in
                    try producer.produce(topic: kafka.topic, partition: p, key: key, value: value)
                }
            }
            withPartition.append("{\"p\":\(p)," + line.dropFirst())
        }
        try producer.flush(timeoutMs: 30_000)
        try (withPartition.joined(separator: "\n") + "\n").write(toFile: path("events-p.jsonl"), atomically: true, encoding: .utf8)
        return topology
    }

    @Test func kafkaPartitionsEqualFilesWithPartitionField() throws {
        let dir = try Harness.tempDir()
        let path = { (name: String) in dir.appendingPathComponent(name).path }
        let kafka = try KafkaFixture(partitions: 8)
        let topology = try setUp(dir, kafka: kafka)

        for emit in ["rows", "final"] {
            let err = try ok(["replay", "--topology", topology, "--entity", "items", "--from-kafka", "--brokers", kafka.brokers,
                              "--emit", emit, "--out", path("kafka-\(emit).jsonl"), "--no-progress"], dir: dir)
            #expect(err.contains("events 6000,") && err.contains("parts per partition"), "\(err)")
            try ok(["replay", "--topology", topology, "--entity", "items", "--input", path("events-p.jsonl"),
                    "--partition-field", "p", "--emit", emit, "--out", path("file-\(emit).jsonl"), "--no-progress"], dir: dir)
            let k = try sortedLines(path("kafka-\(emit).jsonl")), f = try sortedLines(path("file-\(emit).jsonl"))
            #expect(k.count > (emit == "rows" ? 5000 : 20))
            #expect(k == f)
        }
        // The user entity (parts: one) replays like a single-key topology.
        try ok(["replay", "--topology", topology, "--entity", "users", "--from-kafka", "--brokers", kafka.brokers,
                "--out", path("users-kafka.jsonl"), "--no-progress"], dir: dir)
        try ok(["replay", "--topology", topology, "--entity", "users", "--input", path("events.jsonl"),
                "--out", path("users-file.jsonl"), "--no-progress"], dir: dir)
        #expect(try sortedLines(path("users-kafka.jsonl")) == sortedLines(path("users-file.jsonl")))
    }

    /// Parts backfilled into Redis (a field per partition, fenced per
    /// partition) and read through the generated Function, which merges
    /// them: equal to the replay's final lines at each key's key time.
    @Test func partsInRedisReadThroughTheFunction() throws {
        let dir = try Harness.tempDir()
        let path = { (name: String) in dir.appendingPathComponent(name).path }
        let kafka = try KafkaFixture(partitions: 8)
        let topology = try setUp(dir, kafka: kafka)
        let redis = try RedisServerProcess()
        let backfill = ["replay", "--topology", topology, "--entity", "items", "--from-kafka", "--brokers", kafka.brokers,
                        "--emit", "redis", "--redis", redis.url.description, "--no-progress"]
        var err = try ok(backfill, dir: dir)
        #expect(err.contains(" parts written, 0 fenced"), "\(err)")
        try ok(["replay", "--topology", topology, "--entity", "items", "--from-kafka", "--brokers", kafka.brokers,
                "--emit", "final", "--out", path("final.jsonl"), "--no-progress"], dir: dir)
        let finals = try String(contentsOfFile: path("final.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(finals.count > 20)
        // Every key's hash: a part and a fence per partition, no _state.
        let conn = try RedisConnection(url: redis.url)
        var multi: [Substring] = [], single: [Substring] = []
        for line in finals {
            let key = (try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])["key"] as! String
            let fields = try conn.command("HKEYS", "shop:items:" + key).array?.compactMap(\.string) ?? []
            let parts = fields.filter { $0.hasPrefix("_p:clickstream:") }
            #expect(!parts.isEmpty && !fields.contains("_state") && fields.contains("_fp"))
            #expect(Set(parts.map { $0.dropFirst(3) }) == Set(fields.filter { $0.hasPrefix("_o:") }.map { $0.dropFirst(3) }))
            if parts.count > 1 { multi.append(line) } else { single.append(line) }
        }
        #expect(multi.count >= 10, "\(multi.count) items with several parts")
        // Reads through the Function (parts merged) equal the replay.
        for line in multi.prefix(30) + single.prefix(5) {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let key = obj["key"] as! String, kt = (obj["key_time"] as! NSNumber).int64Value
            let r = try capture(["get", "--topology", topology, "--entity", "items", "--redis", redis.url.description,
                                 "--at", "\(kt)", key], dir: dir)
            #expect(r.status == 0 && r.out == line + "\n", "\(r.out) vs \(line)\n\(r.err)")
        }
        // Again: every part is fenced off (Redis holds the same offsets).
        err = try ok(backfill, dir: dir)
        #expect(err.contains(" 0 parts written,") || err.contains(": 0 parts written"), "\(err)")
    }

    /// A backfill of a `per_partition` entity from files: parts
    /// `_p:file:<partition>` fenced by the line number of each part's last
    /// event; reads through the Function equal the file replay; a re-run
    /// is fenced part by part.
    @Test func partsFromFilesWithPartitionFieldGoToRedis() throws {
        let dir = try Harness.tempDir()
        let path = { (name: String) in dir.appendingPathComponent(name).path }
        let topology = path("shop.yaml")
        try topologyText.write(toFile: topology, atomically: true, encoding: .utf8)
        // Generated events spread over 4 partitions by a field.
        try ok(["dev", "generate", "--count", "6000", "--users", "200", "--seed", "23", "--out", path("raw.jsonl")], dir: dir)
        let raw = try String(contentsOfFile: path("raw.jsonl"), encoding: .utf8).split(separator: "\n")
        let lines = raw.enumerated().map { i, line in "{\"p\":\(i % 4)," + line.dropFirst() }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path("events.jsonl"), atomically: true, encoding: .utf8)
        let redis = try RedisServerProcess()
        let backfill = ["replay", "--topology", topology, "--entity", "items", "--input", path("events.jsonl"),
                        "--partition-field", "p", "--emit", "redis", "--redis", redis.url.description, "--no-progress"]
        var err = try ok(backfill, dir: dir)
        #expect(err.contains(" parts written, 0 fenced") && err.contains("warning: --emit redis from files writes parts"), "\(err)")
        try ok(["replay", "--topology", topology, "--entity", "items", "--input", path("events.jsonl"), "--partition-field", "p",
                "--emit", "final", "--out", path("final.jsonl"), "--no-progress"], dir: dir)
        let finals = try String(contentsOfFile: path("final.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(finals.count > 20)
        let conn = try RedisConnection(url: redis.url)
        var multi: [Substring] = [], single: [Substring] = []
        for line in finals {
            let key = (try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])["key"] as! String
            let fields = try conn.command("HKEYS", "shop:items:" + key).array?.compactMap(\.string) ?? []
            let parts = fields.filter { $0.hasPrefix("_p:file:") }
            #expect(!parts.isEmpty && parts.count == fields.filter { $0.hasPrefix("_o:file:") }.count && !fields.contains("_state"), "\(fields)")
            if parts.count > 1 { multi.append(line) } else { single.append(line) }
        }
        #expect(multi.count >= 10, "\(multi.count) items with several parts")
        // Reads through the Function (parts merged) equal the replay.
        for line in multi.prefix(30) + single.prefix(5) {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let key = obj["key"] as! String, kt = (obj["key_time"] as! NSNumber).int64Value
            let r = try capture(["get", "--topology", topology, "--entity", "items", "--redis", redis.url.description,
                                 "--at", "\(kt)", key], dir: dir)
            #expect(r.status == 0 && r.out == line + "\n", "\(r.out) vs \(line)\n\(r.err)")
        }
        err = try ok(backfill, dir: dir)
        #expect(err.contains(": 0 parts written,"), "a re-run is fenced: \(err)")
    }

    @Test func commandsSayWhatIsNotSupported() throws {
        let dir = try Harness.tempDir()
        let topology = dir.appendingPathComponent("shop.yaml").path
        try topologyText.write(toFile: topology, atomically: true, encoding: .utf8)
        let (s1, e1) = try run(["replay", "--topology", topology, "--input", "Topologies/clickstream.sample.jsonl"], dir: dir)
        #expect(s1 != 0 && e1.contains("choose one with --entity NAME"), "\(e1)")
        let (s2, e2) = try run(["replay", "--topology", topology, "--entity", "nope", "--input", "Topologies/clickstream.sample.jsonl"], dir: dir)
        #expect(s2 != 0 && e2.contains("has no entity 'nope' (entities: users, items)"), "\(e2)")
        let (s3, e3) = try run(["drift", "--topology", topology, "--redis", "redis://127.0.0.1:1", "--save-baseline", dir.appendingPathComponent("b.json").path], dir: dir)
        #expect(s3 != 0 && e3.contains("choose one with --entity NAME for eddy drift"), "\(e3)")
        let (s5, e5) = try run(["bench", "replay", "--topology", topology, "--events", "10"], dir: dir)
        #expect(s5 != 0 && e5.contains("does not support the entities form yet"), "\(e5)")
        let (s4, e4) = try run(["check", topology], dir: dir)
        #expect(s4 == 0, "\(e4)")
    }
}
