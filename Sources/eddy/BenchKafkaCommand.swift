import ArgumentParser
import EddyCore
import EddyDevKit
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
        try refuseMultiEntity(t, command: "eddy bench")
        let topic = t.source.topics[0]
        let cluster = try MockCluster(brokers: 1, topics: [(topic, partitions)])
        let brokers = cluster.bootstrapServers

        let pStart = monotonicSeconds()
        let stats = try preloadClickstream(t, topic: topic, brokers: brokers, events: events, users: users, seed: seed)
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
        var rawCPU: [CPUTimes] = []
        var touched = 0
        for _ in 0..<repeats {
            let before = CPUTimes.now()
            let (rate, n) = try rawLoop(brokers: brokers, topic: topic, ends: ends, lows: lows)
            rawRates.append(rate)
            rawCPU.append(CPUTimes.now() - before)
            touched = n
        }

        // (b) The replay.
        var replayRates: [Double] = []
        var replayCPU: [CPUTimes] = []
        var summary = ""
        for _ in 0..<repeats {
            let session = ReplaySession(topology: t, emit: .final)
            let output = try OutputFile(path: "/dev/null")
            let before = CPUTimes.now()
            let start = monotonicSeconds()
            let source = try KafkaReplaySource(brokers: brokers, topics: [topic], properties: t.source.properties,
                                               range: KafkaRange())
            try source.run(into: session, output: output)
            try session.finish(to: output)
            try output.close()
            let seconds = monotonicSeconds() - start
            session.setSeconds(seconds)
            source.close()
            replayRates.append(Double(source.delivered) / seconds)
            replayCPU.append(CPUTimes.now() - before)
            summary = session.summary.description
        }
        let raw = median(rawRates), replay = median(replayRates)
        let n = Double(max(touched, 1))
        let rawProcess = median(rawCPU.map(\.process)) / n * 1e6, rawMain = median(rawCPU.map(\.thread)) / n * 1e6
        let repProcess = median(replayCPU.map(\.process)) / n * 1e6, repMain = median(replayCPU.map(\.thread)) / n * 1e6
        if json {
            print("""
                {"bench":"replay-kafka","events":\(events),"retained":\(retained),"partitions":\(partitions),\
                "raw_consume_per_s":\(Int(raw)),"replay_per_s":\(Int(replay)),"ratio":\(String(format: "%.3f", replay / raw)),\
                "raw_cpu_us":\(String(format: "%.3f", rawProcess)),"raw_main_cpu_us":\(String(format: "%.3f", rawMain)),\
                "replay_cpu_us":\(String(format: "%.3f", repProcess)),"replay_main_cpu_us":\(String(format: "%.3f", repMain))}
                """)
        } else {
            print("replay --from-kafka --emit final, \(t.name), \(events) events produced (lz4) to \(partitions) partitions of an in-process mock cluster, median of \(repeats)")
            print("  produced in \(String(format: "%.1f", produceSeconds)) s (delivered \(stats.delivered), failed \(stats.failed)); the mock retained \(retained)")
            print("  (a) raw consume loop     \(fmt(raw)) messages/s  (\(touched) messages touched)")
            print("  (b) replay --from-kafka  \(fmt(replay)) events/s")
            print("  ratio (b)/(a)            \(String(format: "%.2f", replay / raw))")
            print("  CPU per message, µs      (a) \(us(rawProcess)) process, \(us(rawMain)) polling thread;  (b) \(us(repProcess)) process, \(us(repMain)) replay thread")
            print("                           (process = every thread, the in-process mock broker's too; a busy machine shows in the rates, less in CPU)")
            print("  last replay: \(summary)")
        }
        cluster.shutdown()
    }

    /// Produces the generated events, keyed by user (the producer is gone
    /// when this returns).
    /// Assigns every partition from its low watermark and polls until each
    /// reached its high watermark, touching every message's bytes.
    func rawLoop(brokers: String, topic: String, ends: [Int32: Int64], lows: [Int32: Int64]) throws -> (Double, Int) {
        let start = monotonicSeconds()
        var config = KafkaReplaySource.consumerProperties  // the same tuning as the replay
        config["bootstrap.servers"] = brokers
        let consumer = try KafkaConsumer(config: config, topics: [], partitionEOF: true)
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
    func us(_ v: Double) -> String { String(format: "%.2f", v) }

    /// CPU seconds of the whole process and of the calling thread.
    struct CPUTimes {
        var process: Double
        var thread: Double

        static func now() -> CPUTimes {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let p = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return CPUTimes(process: p, thread: Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9)
        }

        static func - (a: CPUTimes, b: CPUTimes) -> CPUTimes {
            CPUTimes(process: a.process - b.process, thread: a.thread - b.thread)
        }
    }
    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
}
