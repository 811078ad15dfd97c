import ArgumentParser
import EddyCore
import EddyKafka
import EddyReplay
import Foundation

/// `eddy bench replay-kafka`: replay from Kafka against a bare consume loop
/// over the same messages, in one run.
struct ReplayKafkaBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay-kafka",
        abstract: "replay --from-kafka --emit final against a raw consume loop, over an in-process mock cluster.",
        discussion: """
            Hosts librdkafka's mock cluster in this process, produces generated clickstream events (seeded, \
            lz4, keyed by user) to a topic with --partitions partitions, then times (a) a consume loop that \
            assigns every partition and touches every message (KafkaConsumer assign + poll) and (b) the replay \
            (the same consumer setup, decoding and applying every event, final features written to /dev/null). \
            The mock keeps about 5 MB per partition; the retained count is printed. Rates are messages/s; \
            the ratio is (b)/(a).
            """
    )

    @Option(help: "Topology file (or name under Topologies/).") var topology = "clickstream"
    @Option(help: "Events to produce.") var events = 1_000_000
    @Option(help: "Distinct users.") var users = 100_000
    @Option(help: "Partitions of the topic.") var partitions = 32
    @Option(help: "Generator seed.") var seed: UInt64 = 42
    @Option(help: "Timed repetitions of each measurement (the median is reported).") var repeats = 3
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let t = try loadTopology(topology)
        let topic = t.source.topics[0]
        let cluster = try MockCluster(brokers: 1, topics: [(topic, partitions)])
        let brokers = cluster.bootstrapServers

        // Preload.
        let pStart = monotonicSeconds()
        let producer = try KafkaProducer(config: [
            "bootstrap.servers": brokers, "compression.type": "lz4", "linger.ms": "20",
            "batch.num.messages": "10000", "batch.size": "1000000", "queue.buffering.max.messages": "2000000",
            "queue.buffering.max.kbytes": "1048576",
        ])
        let engine = FeatureEngine(topology: t, expectedKeys: 16)
        var gen = ClickstreamGenerator(seed: seed, users: users)
        var buf: [UInt8] = []
        for _ in 0..<events {
            buf.removeAll(keepingCapacity: true)
            gen.next(into: &buf)
            try buf.withUnsafeBytes { line in
                let ok = engine.decode(line) == nil
                try producer.produce(topic: topic, key: ok ? engine.decoder.key : nil, value: line)
            }
        }
        let stats = try producer.flush(timeoutMs: 120_000)
        let produceSeconds = monotonicSeconds() - pStart

        // What the mock kept.
        let probe = try KafkaConsumer(config: ["bootstrap.servers": brokers], topics: [])
        var retained: Int64 = 0
        var ends: [Int32: Int64] = [:]
        var lows: [Int32: Int64] = [:]
        for p in 0..<Int32(partitions) {
            let (low, high) = try probe.watermarks(topic: topic, partition: p)
            retained += high - low
            ends[p] = high
            lows[p] = low
        }
        try probe.close()

        // (a) Raw consume loop.
        var rawRates: [Double] = []
        var touched = 0
        for _ in 0..<repeats {
            let (rate, n) = try rawLoop(brokers: brokers, topic: topic, ends: ends, lows: lows)
            rawRates.append(rate)
            touched = n
        }

        // (b) The replay.
        var replayRates: [Double] = []
        var summary = ""
        for _ in 0..<repeats {
            let session = ReplaySession(topology: t, emit: .final)
            let output = try OutputFile(path: "/dev/null")
            let start = monotonicSeconds()
            let source = try KafkaReplaySource(brokers: brokers, topics: [topic], properties: t.source.properties,
                                               range: KafkaRange())
            let planned = monotonicSeconds()
            try source.run(into: session, output: output)
            printError("DEBUG plan \(planned - start) s, read \(monotonicSeconds() - planned) s")
            try session.finish(to: output)
            try output.close()
            let seconds = monotonicSeconds() - start
            session.setSeconds(seconds)
            source.close()
            replayRates.append(Double(source.delivered) / seconds)
            summary = session.summary.description
        }
        let raw = median(rawRates), replay = median(replayRates)
        if json {
            print("""
                {"bench":"replay-kafka","events":\(events),"retained":\(retained),"partitions":\(partitions),\
                "raw_consume_per_s":\(Int(raw)),"replay_per_s":\(Int(replay)),"ratio":\(String(format: "%.3f", replay / raw))}
                """)
        } else {
            print("replay --from-kafka --emit final, \(t.name), \(events) events produced (lz4) to \(partitions) partitions of an in-process mock cluster, median of \(repeats)")
            print("  produced in \(String(format: "%.1f", produceSeconds)) s (delivered \(stats.delivered), failed \(stats.failed)); the mock retained \(retained)")
            print("  (a) raw consume loop     \(fmt(raw)) messages/s  (\(touched) messages touched)")
            print("  (b) replay --from-kafka  \(fmt(replay)) events/s")
            print("  ratio (b)/(a)            \(String(format: "%.2f", replay / raw))")
            print("  last replay: \(summary)")
        }
        cluster.shutdown()
    }

    /// Assigns every partition from its low watermark and polls until each
    /// reached its high watermark, touching every message's bytes.
    func rawLoop(brokers: String, topic: String, ends: [Int32: Int64], lows: [Int32: Int64]) throws -> (Double, Int) {
        let start = monotonicSeconds()
        let consumer = try KafkaConsumer(config: [
            "bootstrap.servers": brokers, "fetch.wait.max.ms": "20", "queued.max.messages.kbytes": "131072",
            "fetch.max.bytes": "67108864", "max.partition.fetch.bytes": "4194304",
        ], topics: [], partitionEOF: true)
        try consumer.assign(ends.keys.sorted().map { TopicPartitionOffset(topic: topic, partition: $0, offset: lows[$0]!) })
        var sink = RawSink(ends: ends)
        while sink.done.count < ends.filter({ $0.value > lows[$0.key]! }).count {
            try consumer.poll(into: &sink, maxMessages: 4096, timeoutMs: 100)
        }
        let seconds = monotonicSeconds() - start
        try consumer.close()
        if sink.checksum == 42 { printError("") }  // keep the touch loop
        return (Double(sink.count) / seconds, sink.count)
    }

    struct RawSink: KafkaEventSink {
        let ends: [Int32: Int64]
        var done: Set<Int32> = []
        var count = 0
        var checksum = 0

        mutating func receive(_ event: KafkaConsumerEvent) {
            switch event {
            case .message(let m):
                count += 1
                if let p = m.payload, let first = p.first { checksum &+= Int(first) &+ p.count &+ Int(p[p.count - 1]) }
                checksum &+= m.key?.count ?? 0
                if m.offset + 1 >= ends[m.partition] ?? 0 { done.insert(m.partition) }
            case .partitionEOF(let e):
                if e.nextOffset >= ends[e.partition] ?? 0 { done.insert(e.partition) }
            case .error:
                break
            }
        }
    }

    func fmt(_ r: Double) -> String { String(format: "%10.0f", r) }
    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
}
