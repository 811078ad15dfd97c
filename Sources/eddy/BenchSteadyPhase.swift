import EddyCore
import EddyDevKit
import EddyKafka
import EddyRedis
import EddyReplay
import EddyTopology
import Foundation

/// The worker bench's steady phase: an `eddy run` child process (so that
/// its resident memory is the worker's alone, not the in-process mock
/// broker's growing log) consumes a topic fed at a steady rate; freshness
/// comes from its `/metrics` histogram, memory from `/proc/PID/status`.
///
/// The phase has a topic of its own (`topic`, created empty by the caller
/// with its dead-letter topic) and writes under its own key prefix: the
/// generator's event times restart, so on the drained state its events
/// would be late. Few partitions keep the mock broker cheap: it finds a
/// fetch's offset by walking a partition's stored batches from the oldest.
struct SteadyPhase {
    var brokers: String, redisURL: String, topic: String
    /// Events per second, for `seconds`, over `users` users.
    var rate: Int, seconds: Int, users: Int
    /// Seconds at the rate before measuring (keys still loading, catch-up ending).
    var warmUpSeconds = 5
    /// The producer's `linger.ms` (librdkafka's default is 5).
    var lingerMs = ProcessInfo.processInfo.environment["EDDY_BENCH_LINGER_MS"] ?? "5"

    struct Result {
        /// Kafka timestamp -> Redis ack of the phase's events, from the
        /// child's histogram (bucket upper bounds, seconds).
        var freshness: PrometheusHistogram
        /// Kafka timestamp -> handed to the worker's shard: the part of
        /// `freshness` before the worker's pipeline.
        var consumeDelay: PrometheusHistogram
        /// VmRSS samples of the measured seconds, the first fifth left out.
        var rss: [Int]
    }

    /// The clickstream topology reading `topic`, writing under `steady:`.
    func topologyText() throws -> String {
        try clickstreamTopologyText(replacing: [
            ("  topic: clickstream\n", "  topic: \(topic)\n"),
            ("  prefix: \"clickstream:\"\n", "  prefix: \"steady:\"\n"),
            ("  topic: clickstream.dlq\n", "  topic: \(topic).dlq\n"),
        ])
    }

    func run() throws -> Result {
        let dir = NSTemporaryDirectory() + "eddy-bench-steady-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/steady.yaml"
        try topologyText().write(toFile: path, atomically: true, encoding: .utf8)
        let topology = try loadTopology(path)
        guard let port = FreePort.find() else { throw CLIError("steady phase: no free port for the worker's /metrics") }
        let child = try WorkerProcess(arguments: [
            "run", path, "--brokers", brokers, "--redis", redisURL,
            "--group", "bench-steady-\(UInt32.random(in: 0...UInt32.max))", "--stats-interval", "1",
            "--http", "127.0.0.1:\(port)",
        ])
        defer {
            kill(child.pid, SIGTERM)
            child.waitForExit()
        }
        let deadline = monotonicSeconds() + 60
        while child.assignedAt == nil, child.isRunning, monotonicSeconds() < deadline { usleep(50_000) }
        guard child.isRunning, child.assignedAt != nil else { throw CLIError("steady phase: the worker got no partitions") }
        var before: PrometheusHistogram?
        var delayBefore: PrometheusHistogram?

        let producer = try KafkaProducer(config: ["bootstrap.servers": brokers, "compression.type": "lz4", "linger.ms": lingerMs])
        var gen = ClickstreamGenerator(seed: 77, users: users)
        let engine = FeatureEngine(topology: topology, expectedKeys: 16)
        var buf: [UInt8] = []
        var rss: [Int] = []
        let start = monotonicSeconds()
        var sent = 0
        var nextSample = start + 1
        // Warm-up: the first seconds at the rate are not measured.
        while monotonicSeconds() - start < Double(seconds + warmUpSeconds) {
            if before == nil, monotonicSeconds() - start >= Double(warmUpSeconds) {
                let text = try scrape(port: port)
                before = try PrometheusHistogram(text, name: "eddy_worker_kafka_freshness_seconds")
                delayBefore = try PrometheusHistogram(text, name: "eddy_worker_kafka_consume_delay_seconds")
                nextSample = monotonicSeconds()
            }
            let due = Int((monotonicSeconds() - start) * Double(rate))
            while sent < due {
                buf.removeAll(keepingCapacity: true)
                gen.next(into: &buf)
                try buf.withUnsafeBytes { line in
                    _ = engine.decode(line)
                    try producer.produce(topic: topic, key: engine.decoder.key, value: line)
                }
                sent += 1
            }
            producer.poll(timeoutMs: 0)
            if before != nil, monotonicSeconds() >= nextSample {
                rss.append(residentBytes(pid: child.pid))
                nextSample += max(1, Double(seconds) / 60)
            }
            usleep(500)
        }
        _ = try? producer.flush(timeoutMs: 10_000)
        sleep(1)
        printError("steady phase: produced \(sent) events in \(warmUpSeconds) + \(seconds) s; the worker consumed \(child.consumed) of them")
        let text = try scrape(port: port)
        let after = try PrometheusHistogram(text, name: "eddy_worker_kafka_freshness_seconds")
        let delayAfter = try PrometheusHistogram(text, name: "eddy_worker_kafka_consume_delay_seconds")
        // State keeps growing for a while (last_n lists fill, window tiles
        // open): memory flatness is judged after the first fifth.
        return Result(freshness: after.subtracting(before!), consumeDelay: delayAfter.subtracting(delayBefore!),
                      rss: Array(rss.dropFirst(rss.count / 5)))
    }

    func scrape(port: Int) throws -> String {
        try HTTPGet.body(host: "127.0.0.1", port: port, path: "/metrics", connectAttempts: 50)
    }
}

/// A Prometheus histogram read from a text exposition: cumulative counts
/// per upper bound.
struct PrometheusHistogram {
    var buckets: [(le: Double, count: Double)] = []

    init(buckets: [(le: Double, count: Double)]) { self.buckets = buckets }

    init(_ text: String, name: String) throws {
        let prefix = name + "_bucket{le=\""
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            let rest = line.dropFirst(prefix.count)
            guard let quote = rest.firstIndex(of: "\""), let space = rest.lastIndex(of: " "),
                  let count = Double(rest[rest.index(after: space)...]) else { continue }
            let le = rest[..<quote] == "+Inf" ? Double.infinity : Double(rest[..<quote]) ?? .nan
            buckets.append((le, count))
        }
        guard !buckets.isEmpty else { throw CLIError("no histogram \(name) in the scrape") }
    }

    func subtracting(_ earlier: PrometheusHistogram) -> PrometheusHistogram {
        PrometheusHistogram(buckets: zip(buckets, earlier.buckets).map { ($0.le, $0.count - $1.count) })
    }

    var total: Double { buckets.last?.count ?? 0 }

    /// The share of observations at or below `bound`.
    func share(atMost bound: Double) -> Double {
        guard total > 0 else { return 0 }
        return (buckets.last { $0.le <= bound }?.count ?? 0) / total
    }

    /// The `q` quantile, interpolated linearly inside its bucket.
    func quantile(_ q: Double) -> Double? {
        guard total > 0 else { return nil }
        let rank = q * total
        var lower = 0.0, below = 0.0
        for b in buckets {
            if b.count >= rank {
                guard b.le.isFinite else { return lower }
                let inBucket = b.count - below
                return inBucket > 0 ? lower + (b.le - lower) * (rank - below) / inBucket : b.le
            }
            lower = b.le
            below = b.count
        }
        return nil
    }
}
