import EddyCore
import EddyDevKit
import EddyKafka
import EddyRedis
import Foundation
import Testing

/// Backfills end to end, with real processes: `eddy replay --from-kafka`
/// over a mock cluster (which answers every timestamp lookup with the end
/// offset), `--emit redis` into a real `redis-server`, `eddy verify`,
/// `eddy get`, and a worker that continues where a backfill stopped.
@Suite(.serialized) struct BackfillTests {
    // MARK: Helpers

    /// Runs `eddy args` with extra environment; stdout and stderr apart.
    func eddy(_ args: [String], dir: URL, env: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        try Harness.capture(args, in: dir, environment: env)
    }

    /// Runs `eddy args`, expecting success; returns stderr.
    @discardableResult
    func ok(_ args: [String], dir: URL, env: [String: String] = [:]) throws -> String {
        let r = try eddy(args, dir: dir, env: env)
        #expect(r.status == 0, "eddy \(args.joined(separator: " ")) failed:\n\(r.err)")
        return r.err
    }

    func generate(_ count: Int, users: Int, seed: Int, dir: URL) throws -> (path: String, lines: [[UInt8]]) {
        let path = dir.appendingPathComponent("events-\(seed).jsonl").path
        try ok(["dev", "generate", "--count", "\(count)", "--users", "\(users)", "--seed", "\(seed)", "--out", path], dir: dir)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { Array($0.utf8) }
        return (path, lines)
    }

    func write(_ lines: some Sequence<[UInt8]>, to name: String, dir: URL) -> String {
        let path = dir.appendingPathComponent(name).path
        var data: [UInt8] = []
        for l in lines { data += l; data.append(0x0A) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(data))
        return path
    }

    /// Produces `lines` keyed by the clickstream key (user_id), with the
    /// given Kafka timestamps (nil: now).
    func produce(_ lines: [[UInt8]], timestamps: [Int64]?, kafka: KafkaFixture, topic: String? = nil) throws {
        let producer = try KafkaProducer(config: ["bootstrap.servers": kafka.brokers, "compression.type": "lz4", "linger.ms": "5"])
        let engine = FeatureEngine(topology: try Harness.topology())
        for (i, line) in lines.enumerated() {
            try line.withUnsafeBytes { value in
                let key: [UInt8]? = engine.decode(value) == nil ? Array(engine.decoder.key) : nil
                let k = key
                if let k {
                    try k.withUnsafeBytes { try producer.produce(topic: topic ?? kafka.topic, key: $0, value: value, timestampMs: timestamps?[i]) }
                } else {
                    try producer.produce(topic: topic ?? kafka.topic, key: nil, value: value, timestampMs: timestamps?[i])
                }
            }
        }
        try producer.flush(timeoutMs: 30_000)
    }

    /// A copy of clickstream.yaml with text replaced, in `dir`.
    func topology(_ replacements: [(String, String)], name: String, dir: URL) throws -> String {
        var text = try String(contentsOf: Harness.root.appendingPathComponent("Topologies/clickstream.yaml"), encoding: .utf8)
        for (a, b) in replacements {
            #expect(text.contains(a), "clickstream.yaml has no \(a)")
            text = text.replacingOccurrences(of: a, with: b)
        }
        let path = dir.appendingPathComponent("\(name).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    func sortedLines(_ text: String) -> [Substring] { text.split(separator: "\n").sorted() }

    /// Rows grouped by key, each key's rows in order.
    func rowsByKey(_ text: String) -> [Substring: [Substring]] {
        var out: [Substring: [Substring]] = [:]
        for line in text.split(separator: "\n") {
            let key = line.dropFirst(8).prefix { $0 != "\"" }  // {"key":"<key>",...
            out[key, default: []].append(line)
        }
        return out
    }

    // MARK: Tests

    @Test func kafkaReplayEqualsFileReplay() throws {
        let dir = try Harness.tempDir()
        let kafka = try KafkaFixture()
        let (events, lines) = try generate(20_000, users: 1500, seed: 11, dir: dir)
        try ok(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers, "--input", events], dir: dir)

        // Two input files equal one, and gzip input equals plain.
        let a = write(lines[..<7000], to: "a.jsonl", dir: dir)
        let b = write(lines[7000...], to: "b.jsonl", dir: dir)
        let gz = Process()
        gz.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gz.arguments = ["-k", b]
        try gz.run()
        gz.waitUntilExit()
        let out = { (name: String) in dir.appendingPathComponent(name).path }
        try ok(["replay", "--topology", "clickstream", "--input", events, "--emit", "rows", "--out", out("file-rows.jsonl")], dir: dir)
        try ok(["replay", "--topology", "clickstream", "--input", events, "--out", out("file-final.jsonl")], dir: dir)
        try ok(["replay", "--topology", "clickstream", "--input", a, "--input", b + ".gz", "--emit", "rows",
                "--out", out("split-rows.jsonl")], dir: dir)
        #expect(try read(out("split-rows.jsonl")) == read(out("file-rows.jsonl")))

        let err = try ok(["replay", "--topology", "clickstream", "--from-kafka", "--brokers", kafka.brokers, "--emit", "rows",
                          "--out", out("kafka-rows.jsonl"), "--no-progress"], dir: dir)
        #expect(err.contains("events 20000, accepted"), "\(err)")
        // EDDY_BROKERS overrides the file (whose brokers are unreachable here).
        let unreachable = try topology([("${EDDY_BROKERS:-localhost:9092}", "127.0.0.1:1")], name: "far", dir: dir)
        try ok(["replay", "--topology", unreachable, "--from-kafka", "--out", out("kafka-final.jsonl")], dir: dir,
               env: ["EDDY_BROKERS": kafka.brokers])

        let fileRows = try read(out("file-rows.jsonl")), kafkaRows = try read(out("kafka-rows.jsonl"))
        #expect(fileRows.split(separator: "\n").count == kafkaRows.split(separator: "\n").count)
        let byKeyFile = rowsByKey(fileRows), byKeyKafka = rowsByKey(kafkaRows)
        #expect(byKeyFile.count > 1000 && byKeyFile == byKeyKafka)
        #expect(sortedLines(try read(out("file-final.jsonl"))) == sortedLines(try read(out("kafka-final.jsonl"))))
    }

    @Test func timeRangeOverTheMockEqualsFilteredFile() throws {
        let dir = try Harness.tempDir()
        let kafka = try KafkaFixture(partitions: 4)
        let (_, lines) = try generate(12_000, users: 800, seed: 12, dir: dir)
        let base: Int64 = 1_700_000_000_000
        try produce(lines, timestamps: (0..<Int64(lines.count)).map { base + $0 * 10 }, kafka: kafka)
        let selected = write(lines[3000..<9000], to: "selected.jsonl", dir: dir)
        let out = { (name: String) in dir.appendingPathComponent(name).path }
        let range = ["--start", "\(base + 30_000)", "--end", "\(base + 90_000)"]
        for emit in ["rows", "final"] {
            try ok(["replay", "--topology", "clickstream", "--input", selected, "--emit", emit, "--out", out("file-\(emit).jsonl")], dir: dir)
            let err = try ok(["replay", "--topology", "clickstream", "--from-kafka", "--brokers", kafka.brokers, "--emit", emit]
                             + range + ["--out", out("kafka-\(emit).jsonl")], dir: dir)
            // The mock answered the lookups with the end offset: detected, said, and worked around.
            #expect(err.contains("answered timestamp lookups with the end offset"), "\(err)")
            #expect(err.contains("events 6000,") && err.contains("3000 skipped before --start"), "\(err)")
        }
        #expect(rowsByKey(try read(out("file-rows.jsonl"))) == rowsByKey(try read(out("kafka-rows.jsonl"))))
        #expect(sortedLines(try read(out("file-final.jsonl"))) == sortedLines(try read(out("kafka-final.jsonl"))))

        // RFC 3339 times work the same; --start-offsets win over --start for their partitions.
        let ends = try kafka.endOffsets()
        let r = try eddy(["replay", "--topology", "clickstream", "--from-kafka", "--brokers", kafka.brokers,
                          "--start-offsets", "0:\(ends[0]!)", "--out", "/dev/null", "--no-progress"], dir: dir)
        #expect(r.status == 0 && r.err.contains("events \(lines.count - Int(ends[0]!)),"), "\(r.err)")
    }

    @Test func kafkaKeyAndTimestampTopology() throws {
        // key: kafka, time: kafka read the message key and timestamp: the
        // same as the file replay when they carry the same values.
        let dir = try Harness.tempDir()
        let kafka = try KafkaFixture(partitions: 4)
        let (events, lines) = try generate(8000, users: 500, seed: 13, dir: dir)
        let engine = FeatureEngine(topology: try Harness.topology())
        let times = lines.map { l in l.withUnsafeBytes { _ = engine.decode($0); return engine.decoder.timestamp } }
        try produce(lines, timestamps: times, kafka: kafka)
        let kt = try topology([("key: user_id", "key: kafka"), ("time:\n  field: ts\n  unit: ms", "time: kafka")], name: "kt", dir: dir)
        let out = { (name: String) in dir.appendingPathComponent(name).path }
        try ok(["replay", "--topology", "clickstream", "--input", events, "--out", out("file.jsonl")], dir: dir)
        let err = try ok(["replay", "--topology", kt, "--from-kafka", "--brokers", kafka.brokers, "--out", out("kafka.jsonl")], dir: dir)
        #expect(err.contains("late ") && !err.contains("late 0,"), "late events by Kafka timestamp: \(err)")
        #expect(sortedLines(try read(out("file.jsonl"))) == sortedLines(try read(out("kafka.jsonl"))))
    }

    @Test func labelsFromKafka() throws {
        let dir = try Harness.tempDir()
        let kafka = try KafkaFixture(topic: "lbl", partitions: 2, extraTopics: [])
        let topologyPath = dir.appendingPathComponent("lbl.yaml").path
        try """
            name: lbl
            source: {brokers: "127.0.0.1:1", topic: lbl}
            key: user_id
            time: {field: ts, unit: ms}
            allowed_lateness: 5m
            sink: {redis: "redis://127.0.0.1:1"}
            features:
              - {name: items, kind: last_n, field: item, n: 5}
              - {name: clicks, kind: count, window: 1h, hop: 5m, where: kind == "click"}
            """.write(toFile: topologyPath, atomically: true, encoding: .utf8)
        let producer = try KafkaProducer(config: ["bootstrap.servers": kafka.brokers])
        func send(_ key: String?, _ value: String) throws {
            try producer.produce(topic: "lbl", key: key.map { Array($0.utf8) }, value: Array(value.utf8))
        }
        try send("u1", #"{"user_id":"u1","ts":1000,"kind":"view","item":"a"}"#)
        try send("u2", #"{"user_id":"u2","ts":500,"kind":"view","item":"z"}"#)
        try send("u1", #"{"user_id":"u1","ts":2000,"kind":"view","item":"b"}"#)
        try send("u1", #"{"user_id":"u1","ts":5000,"kind":"click","item":"c"}"#)
        try send(nil, "garbage")
        try send("u2", #"{"user_id":"u2","ts":700,"kind":"click","item":"y"}"#)
        try send("u1", #"{"user_id":"u1","ts":3000,"kind":"view","item":"d"}"#)
        try producer.flush(timeoutMs: 10_000)
        let labels = dir.appendingPathComponent("labels.jsonl").path
        try """
            {"key":"u1","ts":4000,"label":1}
            {"key":"u1","ts":1500}
            {"key":"u3","ts":0,"label":0}
            {"key":"u1","ts":10000,"label":"x"}
            {"key":"u2","ts":600}
            {"key":"u2","ts":800,"label":0}
            """.write(toFile: labels, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("train.jsonl").path
        let err = try ok(["replay", "--topology", topologyPath, "--from-kafka", "--brokers", kafka.brokers, "--labels", labels,
                          "--emit", "rows", "--out", out], dir: dir)
        #expect(err.contains("accepted 6, late 0, invalid 1, keys 2"), "\(err)")
        // By hand: a label at T gets the key's state before its first event with ts > T.
        #expect(try read(out) == """
            {"key":"u1","ts":4000,"label":1,"items":["b","a"],"clicks":0}
            {"key":"u1","ts":1500,"items":["a"],"clicks":0}
            {"key":"u3","ts":0,"label":0,"items":[],"clicks":0}
            {"key":"u1","ts":10000,"label":"x","items":["c","d","b","a"],"clicks":1}
            {"key":"u2","ts":600,"items":["z"],"clicks":0}
            {"key":"u2","ts":800,"label":0,"items":["y","z"],"clicks":1}

            """)
        // The same as CSV, gzip-compressed.
        let csv = dir.appendingPathComponent("train.csv.gz").path
        try ok(["replay", "--topology", topologyPath, "--from-kafka", "--brokers", kafka.brokers, "--labels", labels,
                "--emit", "rows", "--out", csv], dir: dir)
        let gunzip = Process()
        gunzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gunzip.arguments = ["-d", csv]
        try gunzip.run()
        gunzip.waitUntilExit()
        #expect(try read(String(csv.dropLast(3))) == #"""
            key,ts,label,items,clicks
            u1,4000,1,"[""b"",""a""]",0
            u1,1500,,"[""a""]",0
            u3,0,0,[],0
            u1,10000,x,"[""c"",""d"",""b"",""a""]",1
            u2,600,,"[""z""]",0
            u2,800,0,"[""y"",""z""]",1

            """#)
    }

    @Test func verifyAfterBackfillThenFindsPlantedDifferences() throws {
        let dir = try Harness.tempDir()
        let kafka = try KafkaFixture(partitions: 4)
        let redis = try RedisServerProcess()
        let (events, lines) = try generate(16_000, users: 1000, seed: 14, dir: dir)
        let base: Int64 = 1_700_000_000_000
        try produce(lines, timestamps: (0..<Int64(lines.count)).map { base + $0 }, kafka: kafka)
        let k = ["--topology", "clickstream", "--from-kafka", "--brokers", kafka.brokers]
        // EDDY_REDIS_URL stands in for --redis.
        let env = ["EDDY_REDIS_URL": redis.url.description]
        let err = try ok(["replay"] + k + ["--emit", "redis", "--prefix", "v2:"], dir: dir, env: env)
        #expect(err.contains("1000 keys written, 0 fenced"), "\(err)")

        var r = try eddy(["verify"] + k + ["--prefix", "v2:", "--no-progress"], dir: dir, env: env)
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        #expect(r.err.contains("keys checked 1000, equal 1000, different 0, missing in Redis 0, extra in Redis 0"), "\(r.err)")
        // A replay of the file agrees with the store too.
        r = try eddy(["verify", "--topology", "clickstream", "--input", events, "--prefix", "v2:", "--redis", redis.url.description,
                      "--at", "2026-01-01T01:00:00Z"], dir: dir)
        #expect(r.status == 0 && r.err.contains("different 0"), "\(r.out)\n\(r.err)")

        // Plant differences: one key's _state from an older backfill (the
        // first half of the range), one changed point column, one stray key.
        try ok(["replay"] + k + ["--end", "\(base + 8000)", "--emit", "redis", "--prefix", "old:"], dir: dir, env: env)
        let conn = try RedisConnection(url: redis.url)
        var edited: String?
        func user(_ line: [UInt8]) -> String { String(decoding: line.dropFirst(12).prefix(8), as: UTF8.self) }  // {"user_id":"u0000123"
        for line in lines.prefix(200) {
            let user = user(line)
            let old = try conn.command("HGET", "old:" + user, "_state").bytes
            let new = try conn.command("HGET", "v2:" + user, "_state").bytes
            if let old, let new, old != new {
                _ = try conn.command("HSET", "v2:" + user, "_state", old)
                edited = user
                break
            }
        }
        let stateKey = try #require(edited)
        let columnKey = try #require(lines.map(user).first { $0 != stateKey })
        _ = try conn.command("HSET", "v2:" + columnKey, "last_items", #"["bogus"]"#)
        _ = try conn.command("HSET", "v2:ghost", "_K", "1")

        r = try eddy(["verify"] + k + ["--prefix", "v2:", "--redis", redis.url.description], dir: dir)
        #expect(r.status == 1, "\(r.out)\n\(r.err)")
        #expect(r.err.contains("different 2,") && r.err.contains("extra in Redis 1"), "\(r.err)")
        let reported = r.out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let columns = Set(reported.compactMap { o in (o["key"] as? String).flatMap { k in (o["column"] as? String).map { "\(k) \($0)" } } })
        #expect(columns.contains { $0.hasPrefix(stateKey + " ") }, "\(r.out)")  // folded from the edited _state
        #expect(columns.contains("\(columnKey) last_items"), "\(r.out)")
        #expect(reported.contains { $0["key"] as? String == "ghost" && $0["extra_in_redis"] as? Bool == true })
        // A sample sees only what it samples, and skips the scan.
        r = try eddy(["verify"] + k + ["--prefix", "v2:", "--redis", redis.url.description, "--sample", "10"], dir: dir)
        #expect(r.err.contains("keys checked 10,") && r.err.contains("not checked (--sample)"), "\(r.err)")
    }

    @Test func backfillNewPrefixThenServeThenWorkerContinues() throws {
        let dir = try Harness.tempDir()
        let kafka = try KafkaFixture()
        let redis = try RedisServerProcess()
        let (events, lines) = try generate(20_000, users: 1200, seed: 15, dir: dir)
        let first = write(lines[..<12_000], to: "first.jsonl", dir: dir)
        try ok(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers, "--input", first], dir: dir)

        // Backfill a new prefix (a new feature version would be a topology
        // with its own name and prefix), and hand the worker group its start.
        let v2 = try topology([("prefix: \"clickstream:\"", "prefix: \"v2:\"")], name: "v2", dir: dir)
        let err = try ok(["replay", "--topology", v2, "--from-kafka", "--brokers", kafka.brokers, "--emit", "redis",
                          "--redis", redis.url.description, "--commit-group", "g-v2"], dir: dir)
        #expect(err.contains("committed the end offsets for group g-v2"), "\(err)")
        #expect(try kafka.committed(group: "g-v2") == kafka.endOffsets())  // the next offset to read
        let conn = try RedisConnection(url: redis.url)
        #expect(try conn.command("KEYS", "clickstream:*").array?.count == 0)  // the live prefix is untouched

        // Served reads of the new prefix equal the replay at each key's key time.
        let final = dir.appendingPathComponent("final.jsonl").path
        try ok(["replay", "--topology", "clickstream", "--input", first, "--out", final], dir: dir)
        for line in try read(final).split(separator: "\n").prefix(15) {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let key = obj["key"] as! String, kt = (obj["key_time"] as! NSNumber).int64Value
            let got = try eddy(["get", "--topology", v2, "--redis", redis.url.description, "--at", "\(kt)", key], dir: dir)
            #expect(got.status == 0 && got.out == line + "\n", "\(got.out) vs \(line)\n\(got.err)")
        }

        // The worker of the new version starts at the committed end and
        // carries on from the backfilled state: exactly the replay of all events.
        try ok(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers,
                "--input", write(lines[12_000...], to: "second.jsonl", dir: dir)], dir: dir)
        let worker = try Background(["run", v2, "--brokers", kafka.brokers, "--redis", redis.url.description, "--group", "g-v2",
                                     "--stats-interval", "1"], in: dir, name: "worker")
        #expect(try kafka.waitUntilCommitted(group: "g-v2", timeout: 90), "\(worker.log)")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 10) == 0, "\(worker.log)")
        let (keys, mismatches) = try compareRedisWithReplay(events: events, redis: redis.url, dir: dir, prefix: "v2:")
        #expect(keys == 1200)
        let r = try eddy(["verify", "--topology", v2, "--from-kafka", "--brokers", kafka.brokers, "--redis", redis.url.description],
                         dir: dir)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(3))")
        #expect(r.status == 0 && r.err.contains("equal 1200, different 0"), "\(r.err)")
    }

    /// A backfill from files: the fence is _o:file:0 = the key's last line
    /// number, so a re-run is fenced key by key and the store equals replay.
    @Test func emitRedisFromFilesThenVerifyThenRerunIsFenced() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let (events, lines) = try generate(8_000, users: 500, seed: 21, dir: dir)
        let user = String(decoding: lines[0].dropFirst(12).prefix(8), as: UTF8.self)  // {"user_id":"u0000123"
        let r0 = ["replay", "--topology", "clickstream", "--input", events, "--emit", "redis", "--redis", redis.url.description,
                  "--no-progress"]
        var err = try ok(r0 + ["--prefix", "fb:"], dir: dir)
        #expect(err.contains(" keys written, 0 fenced (") && err.contains(", 0 failed,"), "\(err)")
        // The users the file holds, as the summary counts them.
        let written = try #require(err.split(separator: "\n").first { $0.contains(" keys written") }
            .flatMap { $0.split(separator: ": ").last?.split(separator: " ").first }.flatMap { Int($0) })
        #expect(written > 300, "\(err)")
        let conn = try RedisConnection(url: redis.url)
        let fence = try conn.command("HGET", "fb:" + user, "_o:file:0").string
        #expect(fence.flatMap(Int.init).map { $0 > 0 && $0 <= 8_000 } == true, "\(String(describing: fence))")
        let v = try eddy(["verify", "--topology", "clickstream", "--input", events, "--prefix", "fb:", "--redis", redis.url.description,
                          "--no-progress"], dir: dir)
        #expect(v.status == 0 && v.err.contains("keys checked \(written), equal \(written), different 0, missing in Redis 0, extra in Redis 0"), "\(v.err)")
        // The same files again: every key already holds that line.
        err = try ok(r0 + ["--prefix", "fb:"], dir: dir)
        #expect(err.contains(": 0 keys written, \(written) fenced"), "\(err)")
        // The topology's own prefix is allowed, with a warning.
        err = try ok(r0, dir: dir)
        #expect(err.contains("warning: --emit redis from files writes under the topology's own prefix"), "\(err)")
    }

    @Test func emitRedisRefusesCommitGroupFromFilesAndFailsFastWithoutRedis() throws {
        let dir = try Harness.tempDir()
        var r = try eddy(["replay", "--topology", "clickstream", "--input", "Topologies/clickstream.sample.jsonl", "--emit", "redis",
                          "--commit-group", "g"], dir: dir)
        #expect(r.status != 0 && r.err.contains("--commit-group commits Kafka offsets; it goes with --from-kafka"), "\(r.err)")
        r = try eddy(["replay", "--topology", "clickstream", "--input", "Topologies/clickstream.sample.jsonl", "--emit", "redis",
                      "--redis", "redis://127.0.0.1:1"], dir: dir)
        #expect(r.status != 0 && r.err.contains("cannot reach Redis"), "\(r.err)")
        r = try eddy(["replay", "--topology", "clickstream", "--from-kafka", "--brokers", "127.0.0.1:1", "--emit", "redis",
                      "--redis", "redis://127.0.0.1:1"], dir: dir)
        #expect(r.status != 0 && r.err.contains("cannot reach Redis"), "\(r.err)")
    }
}
