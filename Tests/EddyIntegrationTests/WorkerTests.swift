import EddyCore
import EddyDevKit
import EddyKafka
import EddyRedis
import Foundation
import Testing

/// The stream worker end to end: events produced through Kafka (mock
/// cluster over TCP) into a real `eddy run` process writing a real Redis.
@Suite(.serialized) struct WorkerTests {
    func produce(_ events: String, kafka: KafkaFixture, dir: URL) throws {
        let r = try Harness.run(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers, "--input", events], in: dir)
        #expect(r.status == 0, "produce failed: \(r.stderr)")
    }

    func startWorker(kafka: KafkaFixture, redis: RedisServerProcess, group: String, dir: URL, name: String) throws -> Background {
        try Background(["run", "clickstream", "--brokers", kafka.brokers, "--redis", redis.url.description, "--group", group,
                        "--stats-interval", "1"], in: dir, name: name)
    }

    /// Generated events produced before a worker with `/metrics` starts;
    /// returns once the worker has committed all of them.
    struct Drained {
        let dir: URL
        let redis: RedisServerProcess
        let kafka: KafkaFixture
        let events: String
        let port: Int
        let worker: Background
    }

    func drain(count: Int, users: Int, seed: Int, group: String, extra: [String] = []) throws -> Drained {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", String(count), "--users", String(users), "--seed", String(seed),
                         "--out", events], in: dir)
        try produce(events, kafka: kafka, dir: dir)
        let port = try #require(FreePort.find())
        let worker = try Background(["run", "clickstream", "--brokers", kafka.brokers, "--redis", redis.url.description,
                                     "--group", group, "--stats-interval", "1", "--http", "127.0.0.1:\(port)"] + extra,
                                    in: dir, name: "worker")
        #expect(try kafka.waitUntilCommitted(group: group, timeout: 120), "worker log:\n\(worker.log)")
        return Drained(dir: dir, redis: redis, kafka: kafka, events: events, port: port, worker: worker)
    }

    @Test func workerStateEqualsReplay() throws {
        let run = try drain(count: 100_000, users: 5000, seed: 3, group: "g-equal")
        let (dir, redis, events, port, worker) = (run.dir, run.redis, run.events, run.port, run.worker)
        // Every event is in the latency histograms: consumed -> handed to the
        // shard, then applied -> written (the pipeline's part), and Kafka
        // timestamp -> written.
        let m = try scrapeMetrics(port: port)
        let consumed = m["eddy_worker_events_consumed_total{topic=\"clickstream\"}"] ?? -1
        let applied = m["eddy_worker_events_applied_total{topic=\"clickstream\"}"] ?? -1
        #expect(consumed == 100_000 && applied > 90_000)
        #expect(m["eddy_worker_kafka_consume_delay_seconds_count"] == consumed)
        #expect(m["eddy_worker_pipeline_latency_seconds_count"] == applied)
        #expect(m["eddy_worker_kafka_freshness_seconds_count"] == applied)
        #expect((m["eddy_worker_pipeline_latency_seconds_sum"] ?? -1) > 0)
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 5) == 0, "SIGTERM: exit 0 within 5 s\n\(worker.log)")
        let (keys, mismatches) = try compareRedisWithReplay(events: events, redis: redis.url, dir: dir)
        #expect(keys == 5000)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(3))")
        // Point features are plain hash fields.
        let conn = try RedisConnection(url: redis.url)
        let fields = try conn.command("HGETALL", "clickstream:u0000042").array?.compactMap(\.string) ?? []
        #expect(fields.contains("last_items") && fields.contains("session_events") && fields.contains("_K"))
        let ttl = try conn.command("PTTL", "clickstream:u0000042").integer ?? -1
        // ttl 7d plus the re-arm slack (TTLPolicy): 7d + 7d/64.
        #expect(ttl > 7 * 86_400_000 - 60_000 && ttl <= 7 * 86_400_000 + 7 * 86_400_000 / 64)
    }

    /// A backlog read in waves of partitions: every wave ends with a flush
    /// of its keys, and the state equals the replay's.
    @Test func backlogIsReadInWavesOfPartitions() throws {
        let run = try drain(count: 60_000, users: 4000, seed: 5, group: "g-waves",
                            extra: ["--catch-up-backlog", "10000", "--catch-up-waves", "4"])
        let (dir, redis, events, port, worker) = (run.dir, run.redis, run.events, run.port, run.worker)
        let m = try scrapeMetrics(port: port)
        #expect(m["eddy_worker_catch_up_waves_total"] == 4, "\(worker.log.suffix(3000))")
        #expect((m["eddy_worker_flushes_total"] ?? 0) >= 4)
        // Each user is in one partition, so its key is written about once.
        let written = m["eddy_worker_entities_written_total"] ?? 0
        #expect(written >= 4000 && written < 4400, "entity writes: \(written)")
        #expect(worker.log.contains("in 4 waves of partitions") && worker.log.contains("caught up in waves"))
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 5) == 0, "\(worker.log.suffix(3000))")
        let (keys, mismatches) = try compareRedisWithReplay(events: events, redis: redis.url, dir: dir)
        #expect(keys == 4000)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(3))")
    }

    @Test func malformedInputIsDeadLetteredAndNothingElseLost() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        let generated = dir.appendingPathComponent("generated.jsonl").path
        try Harness.run(["dev", "generate", "--count", "30000", "--users", "2000", "--seed", "5", "--out", generated], in: dir)
        // Every 100th event is replaced by one of five kinds of bad input.
        var lines = try String(contentsOfFile: generated, encoding: .utf8).split(separator: "\n").map { Array($0.utf8) }
        let bigKey = "{\"user_id\":\"" + String(repeating: "k", count: 200_000) + "\",\"ts\":1767225600000,\"event\":\"view\"}"
        for i in stride(from: 50, to: lines.count, by: 100) {
            switch (i / 100) % 5 {
            case 0: lines[i] = Array(lines[i].prefix(lines[i].count / 2))  // truncated JSON
            case 1: lines[i] = Array("{\"ts\":1767225600000,\"event\":\"view\",\"item_id\":\"i1\"}".utf8)  // no key
            case 2: lines[i] = Array("{\"user_id\":\"u0000001\",\"ts\":\"yesterday\",\"event\":\"view\"}".utf8)  // wrong type
            case 3: lines[i] = (0..<64).map { UInt8(truncatingIfNeeded: ($0 * 37 + i) % 250) | 0x80 }  // binary
            default: lines[i] = Array(bigKey.utf8)  // a 200 KB key
            }
        }
        let events = dir.appendingPathComponent("events.jsonl").path
        FileManager.default.createFile(atPath: events, contents: Data(lines.joined(separator: [0x0A]) + [0x0A]))
        try produce(events, kafka: kafka, dir: dir)

        let worker = try startWorker(kafka: kafka, redis: redis, group: "g-bad", dir: dir, name: "worker")
        #expect(try kafka.waitUntilCommitted(group: "g-bad", timeout: 120), "worker log:\n\(worker.log)")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 5) == 0, "\(worker.log)")

        let (_, mismatches) = try compareRedisWithReplay(events: events, redis: redis.url, dir: dir)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(3))")

        // The dead-letter topic holds every rejected event, with its reason,
        // exactly as replay rejects them.
        let rejects = dir.appendingPathComponent("rejects.jsonl").path
        try Harness.run(["replay", "--topology", "clickstream", "--input", events, "--out", "/dev/null", "--dead-letter", rejects], in: dir)
        var expected: [String: Int] = [:]
        for line in try String(contentsOfFile: rejects, encoding: .utf8).split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            expected[obj["reason"] as! String, default: 0] += 1
        }
        var got: [String: Int] = [:]
        let dlq = try kafka.readAll(topic: "clickstream.dlq")
        for record in dlq {
            got[record.headers["eddy.reason"] ?? "?", default: 0] += 1
            #expect(record.headers["eddy.topic"] == "clickstream" && record.headers["eddy.offset"] != nil)
        }
        // 300 bad lines, 60 of each kind; binary bytes are not JSON at all.
        #expect(expected["not_json"] == 120 && expected["missing_key"] == 60 && expected["bad_ts"] == 60)
        #expect(expected["key_too_long"] == 60 && expected["late", default: 0] > 0)
        #expect(got == expected, "dead letters by reason: got \(got), replay rejected \(expected)")
        // The original bytes travel with the record.
        #expect(dlq.contains { $0.value.count > 200_000 && $0.headers["eddy.reason"] == "key_too_long" })
    }

    /// A worker that has committed every generated event, then its only
    /// broker taken down: the stop that follows cannot leave the group.
    func workerThenBrokerGone(count: Int, users: Int, seed: Int, group: String) throws
        -> (worker: Background, redis: RedisServerProcess, kafka: KafkaFixture, events: String, dir: URL)
    {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", "\(count)", "--users", "\(users)", "--seed", "\(seed)", "--out", events],
                        in: dir)
        try produce(events, kafka: kafka, dir: dir)
        let worker = try startWorker(kafka: kafka, redis: redis, group: group, dir: dir, name: "worker")
        #expect(try kafka.waitUntilCommitted(group: group, timeout: 120), "worker log:\n\(worker.log)")
        try kafka.cluster.setBrokerDown(1)
        usleep(500_000)
        return (worker, redis, kafka, events, dir)
    }

    /// SIGTERM with the broker gone: librdkafka would wait out the 45 s
    /// session timeout to leave the group (and a synchronous commit forever);
    /// the worker gives up after 25 s with status 1 and a message instead.
    @Test func sigtermWithKafkaGoneStillExits() throws {
        let (worker, redis, kafka, events, dir) = try workerThenBrokerGone(count: 5000, users: 500, seed: 9, group: "g-gone")
        defer { withExtendedLifetime(kafka) {} }
        worker.signal(SIGTERM)
        let status = worker.wait(seconds: 40)
        #expect(status != nil, "still running 40 s after SIGTERM\n\(worker.log)")
        if status == 1 { #expect(worker.log.contains("stopping did not finish (timed out")) }
        #expect(status == 0 || status == 1)
        // What was written before stays: every key is in Redis, equal to replay.
        let (keys, mismatches) = try compareRedisWithReplay(events: events, redis: redis.url, dir: dir)
        #expect(keys == 500 && mismatches.isEmpty, "\(mismatches.prefix(3))")
    }

    /// A second SIGTERM while the stop hangs (here on the departed broker)
    /// exits at once with status 1 and says why.
    @Test func secondSignalDuringAStuckStopExitsAtOnce() throws {
        let (worker, redis, kafka, _, _) = try workerThenBrokerGone(count: 2000, users: 200, seed: 3, group: "g-twice")
        defer { withExtendedLifetime((redis, kafka)) {} }
        worker.signal(SIGTERM)
        usleep(2_000_000)
        try #require(worker.wait(seconds: 0) == nil, "the stop was expected to hang on the departed broker\n\(worker.log)")
        worker.signal(SIGTERM)
        let status = worker.wait(seconds: 5)
        #expect(status == 1, "a second SIGTERM: exit 1 at once\n\(worker.log)")
        #expect(worker.log.contains("stopping did not finish (second signal"), "\(worker.log)")
    }

    @Test func sigtermMidStreamThenRestartIsExact() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", "120000", "--users", "20000", "--seed", "9", "--out", events], in: dir)
        try produce(events, kafka: kafka, dir: dir)
        let first = try startWorker(kafka: kafka, redis: redis, group: "g-restart", dir: dir, name: "first")
        // Stop it part-way: once it has written something.
        let conn = try RedisConnection(url: redis.url)
        let deadline = Date().addingTimeInterval(60)
        while (try conn.command("DBSIZE").integer ?? 0) < 2000 && Date() < deadline { usleep(20_000) }
        first.signal(SIGTERM)
        #expect(first.wait(seconds: 5) == 0, "\(first.log)")
        let committed = try kafka.committed(group: "g-restart").values.reduce(0, +)
        #expect(committed > 0 && committed < 120_000, "stopped mid-stream (committed \(committed))")

        let second = try startWorker(kafka: kafka, redis: redis, group: "g-restart", dir: dir, name: "second")
        #expect(try kafka.waitUntilCommitted(group: "g-restart", timeout: 120), "\(second.log)")
        second.signal(SIGTERM)
        #expect(second.wait(seconds: 5) == 0)
        let (_, mismatches) = try compareRedisWithReplay(events: events, redis: redis.url, dir: dir)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(3))")
    }
}
