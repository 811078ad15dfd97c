import ArgumentParser
import EddyCore
import EddyDevKit
import EddyKafka
import EddyMetrics
import EddyRedis
import EddyReplay
import EddyWorker
import Foundation
import Logging

struct WorkerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "The stream worker end to end: mock Kafka -> eddy worker -> redis-server, all on this machine.",
        discussion: """
            Starts a redis-server and an in-process mock Kafka cluster, preloads clickstream events \
            (lz4, 32 partitions), then measures in the same run: (1) a bare librdkafka consume loop \
            touching every message (the baseline), (2) the worker draining the same topic into Redis, \
            (3) freshness (Kafka timestamp -> Redis write acknowledged) at a steady produce rate, with \
            the worker's resident memory sampled over that phase: an `eddy run --http` child process, \
            freshness read from its /metrics histogram. With --cluster, (4) a second consumer group drains \
            the same topic into a 3-master Redis Cluster the bench starts (redis+cluster://), reported \
            as a ratio to (2).
            """
    )

    @Option(help: "Events to preload.") var events = 1_000_000
    @Option(help: "Distinct users.") var users = 100_000
    @Option(help: ArgumentHelp("How events pick users: uniform over --users, or realistic (the heavy-tailed sessions of `eddy dev generate --population realistic`: most users seen once or twice, so nearly every event is a new entity write).", valueName: "uniform|realistic"))
    var distribution = "uniform"
    @Option(help: "Partitions.") var partitions = 32
    @Option(help: "Steady-phase produce rate, events/s.") var rate = 50_000
    @Option(help: "Steady-phase length in seconds (600 for the memory-flatness run).") var steadySeconds = 20
    @Option(help: "Partitions of the steady phase's topic.") var steadyPartitions = 4
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(name: .customLong("cluster"), help: "Also drain the events into a 3-master Redis Cluster and compare with the single Redis.")
    var clusterToo = false
    @Flag(name: .customLong("compare-unfenced"), help: "Also drain the events with at-least-once writes (plain HSET, no fence) and with fenced writes again, each into an emptied Redis, and report the ratio (the fences' cost).")
    var compareUnfenced = false
    @Flag(name: .customLong("compare-layouts"), help: "Also drain the events with sink.layout full and lean, alternately, twice each, each into an emptied Redis, and report events/s, Redis CPU per entity write (INFO cpu and INFO commandstats), the worker's CPU per 1M events and Redis bytes per entity.")
    var compareLayouts = false
    @Flag(name: .customLong("compare-fences"), help: "Also drain the events with the per-entity offset script (--fence entity) and with partition epochs (--fence partition), alternately, twice each, each into an emptied Redis, and report events/s, Redis CPU per entity write (INFO cpu and INFO commandstats), the worker's CPU per 1M events and Redis bytes per entity.")
    var compareFences = false
    @Flag(name: .customLong("compare-entities"), help: "Also drain the events with Topologies/recommendations.yaml's user entity alone and with its user and item entities (items: parts per_partition), alternately, twice each, each into an emptied Redis, and report events/s, entity writes, Redis CPU per write, the worker's CPU per 1M events and Redis bytes.")
    var compareEntities = false
    @Flag(name: .customLong("compare-waves"), help: "Also drain the events with every partition read at once (--catch-up-waves 1) and in waves again, each into an emptied Redis, and report the ratio.")
    var compareWaves = false
    @Option(name: .customLong("property"), help: "Extra consumer property k=v (repeatable).") var properties: [String] = []
    @Flag(name: .customLong("tls"), help: "Also drain the events over TLS (rediss://, a CA made with the openssl CLI) and over plaintext again, alternately, twice each, each into an emptied Redis, and report the ratio (target >= 85%).")
    var compareTLS = false

    var fetchProperties: [String: String] {
        var out: [String: String] = [:]
        for p in properties { let kv = p.split(separator: "=", maxSplits: 1); if kv.count == 2 { out[String(kv[0])] = String(kv[1]) } }
        return out
    }

    func validate() throws {
        guard distribution == "uniform" || distribution == "realistic" else {
            throw ValidationError("--distribution is uniform or realistic, not \(distribution)")
        }
        // The steady phase reads its histograms once warmed up, then at the end: it needs a second.
        if steadySeconds < 1 { throw ValidationError("--steady-seconds must be at least 1") }
    }

    func run() throws {
        logToStandardError(level: .warning)
        // Entity hashes hold values over 64 bytes (the state blob); a larger
        // listpack limit keeps them compact and cheaper to write (Deploy/README.md, sizing).
        var redisOptions = ["hash-max-listpack-value": "1024"]
        let certificates = compareTLS
            ? try TestCertificates(directory: FileManager.default.temporaryDirectory.appendingPathComponent(
                "eddy-bench-tls-\(UInt32.random(in: 0...UInt32.max))").path)
            : nil
        if let certificates { redisOptions.merge(certificates.redisOptions()) { mine, _ in mine } }
        let redis = try RedisServerProcess(options: redisOptions)
        let cluster = try MockCluster(brokers: 1, topics: [
            ("clickstream", partitions), ("clickstream.dlq", partitions),
            ("clickstream-steady", steadyPartitions), ("clickstream-steady.dlq", steadyPartitions),
        ])
        let brokers = cluster.bootstrapServers
        var topology = try loadTopology("clickstream")
        topology.source.group = "bench-\(UInt32.random(in: 0...UInt32.max))"
        for (k, v) in fetchProperties { topology.source.properties[k] = v }
        printError("preloading \(events) events into \(partitions) partitions (lz4)...")
        try preloadClickstream(topology, topic: "clickstream", brokers: brokers, events: events, users: users, seed: 42,
                               population: distribution == "realistic" ? RealisticPopulation.Parameters(users: users) : nil)

        // 1. Baseline: a bare consume loop over the same topic.
        let rawRate = try rawConsume(brokers: brokers)

        // 2. The worker draining the preloaded topic.
        var config = WorkerConfig(topology: topology, brokers: brokers, redisURL: redis.url.description)
        config.batchesInFlight = 8
        let worker = StreamWorker(config: config, logger: Logger(label: "bench"))
        try worker.start()
        let c = worker.counters
        let (workerRate, written) = try measureDrain(worker)
        let drainSeconds = Double(events) / workerRate
        let batchCount = c.batches.load(ordering: .relaxed), flushCount = c.flushes.load(ordering: .relaxed)
        printError("drained in \(drainSeconds) s: \(batchCount) batches, \(flushCount) flushes, \(written) entity writes")
        func ms(_ h: LatencyHistogram) -> String {
            "n \(h.total.load(ordering: .relaxed)) mean \(h.sumMicros.load(ordering: .relaxed) / max(h.total.load(ordering: .relaxed), 1) / 1000) ms p50 \(Double(h.quantile(0.5) ?? 0) / 1000) p99 \(Double(h.quantile(0.99) ?? 0) / 1000)"
        }
        printError("  batches: \(ms(c.batchLatency)); loads: \(ms(c.loadLatency)); flushes: \(ms(c.flushLatency)); keys loaded \(c.keysLoaded.load(ordering: .relaxed))")

        // 2b. Fenced vs at-least-once writes: both drain the whole topic
        // again (new groups) into an emptied Redis, unfenced first, while
        // the topic holds only the preload (before the steady phase).
        /// Drains the whole topic again (a new group) into an emptied Redis.
        func drainAgain(_ label: String, group: String, redisURL: String? = nil,
                        _ configure: (inout WorkerConfig) -> Void = { _ in }) throws -> Double {
            _ = try RedisConnection(url: redis.url).command("FLUSHALL").checked()
            var t = topology
            t.source.group += group
            var config = WorkerConfig(topology: t, brokers: brokers, redisURL: redisURL ?? redis.url.description)
            config.batchesInFlight = 8
            configure(&config)
            let (rate, written) = try drain(config)
            printError("\(label) drain: \(Int(rate)) events/s, \(written) entity writes")
            return rate
        }
        var fenceComparison: (unfenced: Double, fenced: Double)?
        if compareUnfenced {
            fenceComparison = (try drainAgain("at-least-once", group: "-unfenced") { $0.fencedWrites = false },
                               try drainAgain("fenced", group: "-fenced") { $0.fencedWrites = true })
        }

        // 2b'. The lean layout against the full one, alternately, with the
        // cost of each drain in Redis and in this process.
        var layoutComparison: [(layout: StoredLayout, cost: DrainCost)] = []
        if compareLayouts {
            for round in 1...2 {
                for layout in [StoredLayout.full, .lean] {
                    _ = try RedisConnection(url: redis.url).command("FLUSHALL").checked()
                    var t = topology
                    t.source.group += "-\(layout.rawValue)\(round)"
                    t.sink.layout = layout
                    var config = WorkerConfig(topology: t, brokers: brokers, redisURL: redis.url.description)
                    config.batchesInFlight = 8
                    let cost = try DrainCost.measure(redis: redis.url, events: events) { try drain(config) }
                    printError("layout \(layout.rawValue) \(round): \(cost.summary)")
                    layoutComparison.append((layout, cost))
                }
            }
        }

        // 2b-fence. The per-entity offset script against partition epochs,
        // alternately, with the cost of each drain in Redis and in this process.
        var fenceCosts: [(fence: WorkerConfig.Fence, cost: DrainCost)] = []
        if compareFences {
            for round in 1...2 {
                for fence in [WorkerConfig.Fence.perEntity, .partitionEpochs] {
                    _ = try RedisConnection(url: redis.url).command("FLUSHALL").checked()
                    var t = topology
                    t.source.group += "-fence-\(fence.rawValue)\(round)"
                    var config = WorkerConfig(topology: t, brokers: brokers, redisURL: redis.url.description)
                    config.batchesInFlight = 8
                    config.fence = fence
                    let cost = try DrainCost.measure(redis: redis.url, events: events) { try drain(config) }
                    printError("fence \(fence.rawValue) \(round): \(cost.summary)")
                    fenceCosts.append((fence, cost))
                }
            }
        }

        // 2b''. Users alone against users and items from one consumer, alternately.
        var entityComparison: [(both: Bool, cost: DrainCost)] = []
        if compareEntities {
            let recommendations = try loadTopology("recommendations")
            for round in 1...2 {
                for both in [false, true] {
                    _ = try RedisConnection(url: redis.url).command("FLUSHALL").checked()
                    var t = both ? recommendations : recommendations.entity(named: "users")!
                    t.source = topology.source
                    t.source.group += both ? "-entities\(round)" : "-users\(round)"
                    var config = WorkerConfig(topology: t, brokers: brokers, redisURL: redis.url.description)
                    config.batchesInFlight = 8
                    let cost = try DrainCost.measure(redis: redis.url, events: events) { try drain(config) }
                    printError("\(both ? "users+items" : "users alone") \(round): \(cost.summary)")
                    entityComparison.append((both, cost))
                }
            }
        }

        // 2c. Catch-up in waves against every partition at once, the same way.
        var waveComparison: (allAtOnce: Double, waves: Double)?
        if compareWaves {
            let waves = WorkerConfig.defaultCatchUpWaves
            waveComparison = (try drainAgain("all-partitions-at-once", group: "-waves1") { $0.catchUpWaves = 1 },
                              try drainAgain("\(waves)-wave", group: "-waves\(waves)") { $0.catchUpWaves = waves })
        }

        // 2d. TLS against plaintext, alternately (the machine's speed drifts).
        var tlsComparison: (plain: [Double], tls: [Double])?
        if let certificates, let tlsURL = redis.tlsURL(certificates.clientTLS) {
            var plain: [Double] = [], tls: [Double] = []
            for round in 1...2 {
                plain.append(try drainAgain("plaintext \(round)", group: "-plain\(round)"))
                tls.append(try drainAgain("TLS \(round)", group: "-tls\(round)",
                                          redisURL: RedisTarget.single(tlsURL).urlTextWithCredentials))
            }
            tlsComparison = (plain, tls)
        }

        worker.stop()

        // 4. The same drain into a Redis Cluster (a new group reads it all again).
        var clusterRate: Double?
        var clusterWritten = 0
        if clusterToo {
            let redisCluster = try RedisClusterProcess(masters: 3, options: ["hash-max-listpack-value": "1024"])
            var clusterTopology = topology
            clusterTopology.source.group += "-cluster"
            var clusterConfig = WorkerConfig(topology: clusterTopology, brokers: brokers, redisURL: redisCluster.urlString)
            clusterConfig.batchesInFlight = 8
            let (rate, written) = try drain(clusterConfig)
            clusterRate = rate
            clusterWritten = written
            printError("cluster drain: \(Int(rate)) events/s, \(written) entity writes")
        }

        // 3. Steady rate: freshness and memory, the worker in a child process.
        let steady = try SteadyPhase(brokers: brokers, redisURL: redis.url.description, topic: "clickstream-steady",
                                     rate: rate, seconds: steadySeconds, users: users).run()
        cluster.shutdown()
        let f = steady.freshness
        let p50 = f.quantile(0.5).map { $0 * 1000 } ?? -1
        let p99 = f.quantile(0.99).map { $0 * 1000 } ?? -1
        let within10 = f.share(atMost: 0.01)
        let d50 = steady.consumeDelay.quantile(0.5).map { $0 * 1000 } ?? -1
        let d99 = steady.consumeDelay.quantile(0.99).map { $0 * 1000 } ?? -1
        let observed = Int(f.total)
        let rssMin = steady.rss.min() ?? 0, rssMax = steady.rss.max() ?? 0
        let growth = rssMin > 0 ? Double(rssMax - rssMin) / Double(rssMin) : 0
        if json {
            print("""
                {"bench":"worker","events":\(events),"raw_consume_per_s":\(Int(rawRate)),"worker_per_s":\(Int(workerRate)),\
                "ratio":\(String(format: "%.3f", workerRate / rawRate)),"entities_written":\(written),\
                "steady_rate":\(rate),"steady_seconds":\(steadySeconds),"freshness_p50_ms":\(p50),"freshness_p99_ms":\(p99),"consume_delay_p50_ms":\(d50),"consume_delay_p99_ms":\(d99),\
                "freshness_events":\(observed),"freshness_within_10ms":\(String(format: "%.3f", within10)),"rss_min":\(rssMin),"rss_max":\(rssMax),"rss_growth":\(String(format: "%.3f", growth))\
                \(waveComparison.map { ",\"all_at_once_per_s\":\(Int($0.allAtOnce)),\"waves_again_per_s\":\(Int($0.waves)),\"waves_ratio\":\(String(format: "%.3f", $0.waves / $0.allAtOnce))" } ?? "")\(tlsComparison.map { ",\"tls_per_s\":\($0.tls.map { Int($0) }),\"plain_again_per_s\":\($0.plain.map { Int($0) }),\"tls_ratio\":\(String(format: "%.3f", $0.tls.reduce(0, +) / $0.plain.reduce(0, +)))" } ?? "")\(fenceComparison.map { ",\"unfenced_per_s\":\(Int($0.unfenced)),\"fenced_again_per_s\":\(Int($0.fenced)),\"fence_ratio\":\(String(format: "%.3f", $0.fenced / $0.unfenced))" } ?? "")\(clusterRate.map { ",\"cluster_per_s\":\(Int($0)),\"cluster_ratio\":\(String(format: "%.3f", $0 / workerRate)),\"cluster_entities_written\":\(clusterWritten)" } ?? "")}
                """)
        } else {
            print("worker, clickstream, \(events) events preloaded in \(partitions) partitions, \(users) users (\(distribution))")
            print("  baseline: bare consume loop \(Int(rawRate)) events/s")
            print("  eddy worker end to end       \(Int(workerRate)) events/s = \(String(format: "%.0f%%", 100 * workerRate / rawRate)) of the baseline (target >= 50% and >= 500k/s); \(written) entity writes")
            print("  freshness at \(rate) events/s for \(steadySeconds) s, worker in its own process (Kafka timestamp -> Redis ack, \(observed) events): p50 \(String(format: "%.1f", p50)) ms, p99 \(String(format: "%.1f", p99)) ms, \(String(format: "%.1f%%", within10 * 100)) within 10 ms (target p99 <= 10 ms; quantiles interpolated in the histogram's buckets)")
            print("    of which before the worker's pipeline (Kafka timestamp -> handed to the shard: producer linger, broker, fetch): p50 \(String(format: "%.1f", d50)) ms, p99 \(String(format: "%.1f", d99)) ms")
            print("  worker resident memory over the steady phase after warm-up: \(rssMin / 1_048_576)-\(rssMax / 1_048_576) MiB (\(String(format: "%.1f%%", growth * 100)) spread; target <= 10%)")
            if let f = fenceComparison {
                print("  fenced writes \(Int(f.fenced)) events/s vs at-least-once writes \(Int(f.unfenced)) events/s = \(String(format: "%.0f%%", 100 * f.fenced / f.unfenced)) (target >= 80%)")
            }
            for fence in [WorkerConfig.Fence.perEntity, .partitionEpochs] {
                let runs = fenceCosts.filter { $0.fence == fence }.map(\.cost)
                guard !runs.isEmpty else { continue }
                print("  fence \(fence.rawValue): " + runs.map(\.summary).joined(separator: " | "))
            }
            for layout in [StoredLayout.full, .lean] {
                let runs = layoutComparison.filter { $0.layout == layout }.map(\.cost)
                guard !runs.isEmpty else { continue }
                print("  layout \(layout.rawValue): " + runs.map(\.summary).joined(separator: " | "))
            }
            for both in [false, true] {
                let runs = entityComparison.filter { $0.both == both }.map(\.cost)
                guard !runs.isEmpty else { continue }
                print("  \(both ? "users+items (recommendations)" : "users alone (recommendations)"): " + runs.map(\.summary).joined(separator: " | "))
            }
            if let t = tlsComparison {
                let plain = t.plain.reduce(0, +) / Double(t.plain.count), tls = t.tls.reduce(0, +) / Double(t.tls.count)
                print("  writes over TLS \(t.tls.map { String(Int($0)) }.joined(separator: ", ")) events/s vs plaintext \(t.plain.map { String(Int($0)) }.joined(separator: ", ")) (alternating): means \(Int(tls)) vs \(Int(plain)) = \(String(format: "%.0f%%", 100 * tls / plain)) (target >= 85%)")
            }
            if let w = waveComparison {
                print("  catch-up in \(WorkerConfig.defaultCatchUpWaves) waves of partitions \(Int(w.waves)) events/s vs every partition at once \(Int(w.allAtOnce)) events/s = \(String(format: "%.0f%%", 100 * w.waves / w.allAtOnce))")
            }
            if let clusterRate {
                print("  eddy worker into a 3-master Redis Cluster \(Int(clusterRate)) events/s = \(String(format: "%.0f%%", 100 * clusterRate / workerRate)) of the single-Redis worker (target >= 70%); \(clusterWritten) entity writes")
            }
        }
    }

    /// Runs a worker over the whole preloaded topic; events/s from its
    /// first consumed event to the acknowledgement of its last flush.
    func drain(_ config: WorkerConfig) throws -> (rate: Double, written: Int) {
        let worker = StreamWorker(config: config, logger: Logger(label: "bench-drain"))
        try worker.start()
        defer { worker.stop() }
        return try measureDrain(worker)
    }

    /// Events/s of a started worker over the whole preloaded topic, from its
    /// first consumed event to the acknowledgement of its last flush.
    func measureDrain(_ worker: StreamWorker) throws -> (rate: Double, written: Int) {
        let c = worker.counters
        var firstSeen: Double?
        let deadline = monotonicSeconds() + 300
        var nextReport = monotonicSeconds() + 10
        while c.consumed.load(ordering: .relaxed) < events && monotonicSeconds() < deadline {
            if firstSeen == nil, c.consumed.load(ordering: .relaxed) > 0 { firstSeen = monotonicSeconds() }
            if monotonicSeconds() >= nextReport {
                printError("  still draining: \(worker.summary), assigned partitions \(c.assignedPartitions.load(ordering: .relaxed)), kafka errors \(c.kafkaErrors.load(ordering: .relaxed))")
                nextReport += 10
            }
            usleep(1000)
        }
        guard c.consumed.load(ordering: .relaxed) >= events else {
            throw CLIError("a drain did not finish in 300 s: \(worker.summary)")
        }
        // Done when the last flush is acknowledged: no new flush for 5 s
        // (the final flush of a catch-up writes every key: over a second).
        let lastFlush = waitForLastFlush(c)
        let seconds = lastFlush - (firstSeen ?? lastFlush)
        return (Double(events) / seconds, c.entitiesWritten.load(ordering: .relaxed))
    }

    /// Waits until no flush was acknowledged for 5 s (the shard flushes
    /// every few ms while anything is dirty or uncommitted, and a catch-up's
    /// final flush takes seconds at most) and returns when the last one was seen.
    func waitForLastFlush(_ c: WorkerCounters) -> Double {
        var count = c.flushes.load(ordering: .relaxed)
        var changedAt = monotonicSeconds()
        while monotonicSeconds() - changedAt < 5 {
            usleep(500)
            let now = c.flushes.load(ordering: .relaxed)
            if now != count {
                count = now
                changedAt = monotonicSeconds()
            }
        }
        return changedAt
    }

    /// Consumes the whole topic with a bare loop that touches every byte.
    func rawConsume(brokers: String) throws -> Double {
        let consumer = try KafkaConsumer(config: ["bootstrap.servers": brokers, "fetch.wait.max.ms": "5",
                                                  "queued.max.messages.kbytes": "65536"], topics: [], partitionEOF: true)
        try consumer.assign((0..<Int32(partitions)).map { TopicPartitionOffset(topic: "clickstream", partition: $0, offset: KafkaOffset.beginning) })
        var count = 0, checksum = 0
        var eof = Set<Int32>()
        var first: Double?
        while eof.count < partitions {
            try consumer.poll(maxMessages: 4096, timeoutMs: 100) { event in
                switch event {
                case .message(let m):
                    if first == nil { first = monotonicSeconds() }
                    count += 1
                    if let p = m.payload { for b in p { checksum &+= Int(b) } }
                case .partitionEOF(let e): eof.insert(e.partition)
                case .error: break
                }
            }
        }
        let seconds = monotonicSeconds() - (first ?? monotonicSeconds())
        try? consumer.close()
        if checksum == 42 { printError("") }  // keep the loop's work observable
        return Double(count) / seconds
    }
}
