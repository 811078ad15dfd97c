import EddyCore
import EddyDevKit
import EddyKafka
import EddyRedis
import Foundation
import Testing

/// Avro and Protobuf topics end to end: `eddy dev produce --format`
/// through a dev schema registry and the mock Kafka cluster into a real
/// `eddy run` writing a real Redis.
@Suite(.serialized) struct FormatTests {
    /// clickstream.yaml with `format` and the registry's URL.
    func topology(format: String, registry: String, dir: URL) throws -> String {
        let text = try String(contentsOfFile: Harness.root.appendingPathComponent("Topologies/clickstream.yaml").path, encoding: .utf8)
        let variant = text.replacingOccurrences(of: "  format: json", with: "  format: \(format)\n  schema_registry: {url: \"\(registry)\"}")
        #expect(variant != text)
        let path = dir.appendingPathComponent("clickstream-\(format).yaml").path
        try variant.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct Setup {
        let dir: URL, redis: RedisServerProcess, kafka: KafkaFixture, registry: DevRegistry, events: String, topology: String
    }

    func setup(format: String, count: Int, users: Int) throws -> Setup {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        let registry = try DevRegistry(port: 0)
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", String(count), "--users", String(users), "--seed", "9", "--out", events], in: dir)
        let topo = try topology(format: format, registry: registry.url, dir: dir)
        let r = try Harness.run(["dev", "produce", "--topology", topo, "--brokers", kafka.brokers, "--input", events,
                                 "--format", format], in: dir)
        #expect(r.status == 0, "produce failed: \(r.stderr)")
        return Setup(dir: dir, redis: redis, kafka: kafka, registry: registry, events: events, topology: topo)
    }

    /// The worker's state for an Avro (and a Protobuf) topic equals the
    /// state for the same events as JSON.
    @Test(arguments: ["avro", "protobuf"])
    func stateEqualsTheJSONState(format: String) throws {
        let s = try setup(format: format, count: 20_000, users: 1500)
        let worker = try Background(["run", s.topology, "--brokers", s.kafka.brokers, "--redis", s.redis.url.description,
                                     "--group", "g-\(format)"], in: s.dir, name: "worker")
        #expect(try s.kafka.waitUntilCommitted(group: "g-\(format)", timeout: 120), "worker log:\n\(worker.log)")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 10) == 0, "\(worker.log.suffix(2000))")
        // The JSON topology replaying the JSON events.
        let (keys, mismatches) = try compareRedisWithReplay(events: s.events, redis: s.redis.url, dir: s.dir)
        #expect(keys == 1500)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(3))")
        #expect(s.registry.requests.filter { $0.hasPrefix("GET /schemas/ids/") }.count == 1, "one fetch per id: \(s.registry.requests)")
        // Only the generator's late events are dead letters.
        let dead = try s.kafka.readAll(topic: "clickstream.dlq")
        #expect(dead.allSatisfy { $0.headers["eddy.reason"] == "late" }, "\(Set(dead.map { $0.headers["eddy.reason"] ?? "" }))")
    }

    /// A registry that is unreachable, then failing (503), then back:
    /// consumption is held (readyz says why), nothing is dead-lettered as
    /// unknown, and the state in the end equals the JSON state.
    @Test func registryDownAndBack() throws {
        let s = try setup(format: "avro", count: 10_000, users: 800)
        let port = try #require(FreePort.find())
        s.registry.stop()
        let worker = try Background(["run", s.topology, "--brokers", s.kafka.brokers, "--redis", s.redis.url.description,
                                     "--group", "g-down", "--http", "127.0.0.1:\(port)"], in: s.dir, name: "worker")
        // Unreachable: held.
        var ready = ""
        for _ in 0..<100 {
            ready = (try? HTTPGet.body(host: "127.0.0.1", port: port, path: "/readyz", connectAttempts: 50)) ?? ""
            if ready.contains("consumption held") { break }
            usleep(100_000)
        }
        #expect(ready.contains("schema_registry") && ready.contains("consumption held"), "readyz: \(ready)\n\(worker.log.suffix(2000))")
        #expect(try s.kafka.committed(group: "g-down").values.reduce(0, +) <= 0)
        // Back, but failing with 503: still held.
        s.registry.failing = true
        try s.registry.start()
        usleep(1_500_000)
        #expect(try s.kafka.committed(group: "g-down").values.reduce(0, +) <= 0)
        let m = try scrapeMetrics(port: port)
        #expect((m["eddy_worker_schema_registry_errors_total"] ?? 0) > 0)
        // Healthy again: everything is applied.
        s.registry.failing = false
        #expect(try s.kafka.waitUntilCommitted(group: "g-down", timeout: 120), "worker log:\n\(worker.log.suffix(3000))")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 10) == 0, "\(worker.log.suffix(2000))")
        let (keys, mismatches) = try compareRedisWithReplay(events: s.events, redis: s.redis.url, dir: s.dir)
        #expect(keys == 800)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(3))")
        let dead = try s.kafka.readAll(topic: "clickstream.dlq")
        #expect(dead.allSatisfy { $0.headers["eddy.reason"] == "late" }, "\(Set(dead.map { $0.headers["eddy.reason"] ?? "" }))")
        #expect(worker.log.contains("holding consumption"))
    }

    /// `eddy replay --input F.avro` (fastavro's container files, null and
    /// deflate codecs) gives exactly the rows of the same events as JSON.
    @Test(arguments: ["null", "deflate"])
    func replayOfAvroContainerFilesEqualsJSON(codec: String) throws {
        let dir = try Harness.tempDir()
        let fixtures = Harness.root.appendingPathComponent("Tests/EddyFormatsTests/Fixtures").path
        let json = dir.appendingPathComponent("json.jsonl").path, avro = dir.appendingPathComponent("avro.jsonl").path
        for (input, out) in [("Topologies/clickstream.sample.jsonl", json), ("\(fixtures)/clickstream.\(codec).avro", avro)] {
            let r = try Harness.run(["replay", "--topology", "clickstream", "--input", input, "--emit", "rows", "--out", out], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let a = try String(contentsOfFile: json, encoding: .utf8), b = try String(contentsOfFile: avro, encoding: .utf8)
        #expect(!a.isEmpty && a == b)
    }

    /// `eddy replay --from-kafka` on an Avro topic (schemas from the
    /// registry) gives the final features of the same events as JSON.
    @Test func replayFromKafkaEqualsJSONReplay() throws {
        let s = try setup(format: "avro", count: 5000, users: 300)
        let kafkaOut = s.dir.appendingPathComponent("kafka.jsonl").path, jsonOut = s.dir.appendingPathComponent("json.jsonl").path
        let r1 = try Harness.run(["replay", "--topology", s.topology, "--from-kafka", "--brokers", s.kafka.brokers, "--out", kafkaOut], in: s.dir)
        #expect(r1.status == 0, "\(r1.stderr)")
        let r2 = try Harness.run(["replay", "--topology", "clickstream", "--input", s.events, "--out", jsonOut], in: s.dir)
        #expect(r2.status == 0, "\(r2.stderr)")
        // Kafka's arrival order differs across partitions, but each key's
        // events stay in order, so each key's final line is the same.
        let a = try String(contentsOfFile: kafkaOut, encoding: .utf8).split(separator: "\n").sorted()
        let b = try String(contentsOfFile: jsonOut, encoding: .utf8).split(separator: "\n").sorted()
        #expect(a.count == 300 && a == b)
    }

    /// A schema id the registry does not know (404) is a dead letter,
    /// `unknown_schema`; the worker goes on.
    @Test func unknownSchemaIsADeadLetter() throws {
        let s = try setup(format: "avro", count: 2000, users: 100)
        // Append a message written with schema id 77, which the registry lacks.
        let producer = try KafkaProducer(config: ["bootstrap.servers": s.kafka.brokers])
        let bad: [UInt8] = [0, 0, 0, 0, 77, 2, 0x41]
        try bad.withUnsafeBytes { v in try Array("u1".utf8).withUnsafeBytes { k in try producer.produce(topic: "clickstream", key: k, value: v) } }
        _ = try producer.flush(timeoutMs: 10_000)
        let worker = try Background(["run", s.topology, "--brokers", s.kafka.brokers, "--redis", s.redis.url.description,
                                     "--group", "g-unknown"], in: s.dir, name: "worker")
        #expect(try s.kafka.waitUntilCommitted(group: "g-unknown", timeout: 120), "worker log:\n\(worker.log)")
        worker.signal(SIGTERM)
        _ = worker.wait(seconds: 10)
        let dead = try s.kafka.readAll(topic: "clickstream.dlq")
        #expect(dead.filter { $0.headers["eddy.reason"] == "unknown_schema" }.count == 1)
        #expect(dead.contains { $0.value == bad })
    }
}
