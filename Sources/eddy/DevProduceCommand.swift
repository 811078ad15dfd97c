import ArgumentParser
import EddyCore
import EddyDevKit
import EddyKafka
import EddyReplay
import Foundation

struct DevProduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Produce events to the topology's topic, keyed by the topology's key (lz4-compressed).",
        discussion: """
            Events come from a JSON Lines file or from the seeded clickstream generator. Events whose key \
            cannot be read are produced without a key (the worker dead-letters them).
            """
    )

    @Option(help: "Topology file or name.") var topology: String
    @Option(help: "Kafka bootstrap servers (overrides the file and EDDY_BROKERS).") var brokers: String?
    @Option(help: "Events file (JSON Lines); - for standard input.") var input: String?
    @Option(help: "Generate this many clickstream events instead.") var generate: Int?
    @Option(help: "Users for --generate.") var users = 100_000
    @Option(help: "Seed for --generate.") var seed: UInt64 = 42
    @Option(help: "Events per second (0: as fast as possible).") var rate: Double = 0
    @Option(help: "Topic (default: the topology's first).") var topic: String?
    @Option(help: "Compression codec.") var compression = "lz4"
    @Option(help: "How long the producer waits to fill a batch (librdkafka linger.ms); lower it to measure freshness.")
    var lingerMs = 10

    func validate() throws {
        if (input == nil) == (generate == nil) { throw ValidationError("give exactly one of --input FILE or --generate N") }
    }

    func run() throws {
        let t = try loadTopology(topology)
        let env = ProcessInfo.processInfo.environment
        let servers = brokers ?? env["EDDY_BROKERS"].flatMap { $0.isEmpty ? nil : $0 } ?? t.source.brokers
        let target = topic ?? t.source.topics[0]
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(config: [
                "bootstrap.servers": servers, "compression.type": compression, "linger.ms": "\(lingerMs)",
                "batch.num.messages": "10000", "queue.buffering.max.messages": "1000000",
            ])
        } catch {
            throw CLIError("cannot create a producer for \(servers): \(error)")
        }
        let engine = FeatureEngine(topology: t, expectedKeys: 16)
        let start = monotonicSeconds()
        var sent = 0, keyless = 0
        func send(_ line: UnsafeRawBufferPointer) throws {
            let ok = engine.decode(line) == nil
            if !ok { keyless += 1 }
            try producer.produce(topic: target, key: ok ? engine.decoder.key : nil, value: line)
            sent += 1
            if rate > 0 {
                // Sleep once a millisecond ahead, not after every event: at
                // 50k events/s a sleep per event (each rounded up by the
                // kernel) is 50k context switches a second, which slowed
                // a worker sharing the machine.
                let ahead = start + Double(sent) / rate - monotonicSeconds()
                if ahead >= 0.001 { usleep(useconds_t(ahead * 1_000_000)) }
            }
        }
        if let n = generate {
            var gen = ClickstreamGenerator(seed: seed, users: users)
            var buf: [UInt8] = []
            for _ in 0..<n {
                buf.removeAll(keepingCapacity: true)
                gen.next(into: &buf)
                try buf.withUnsafeBytes { try send($0) }
            }
        } else if let input {
            let reader = try LineReader(path: input)
            try reader.forEachLine { line in
                if !line.isEmpty { try send(line) }
                return true
            }
        }
        let stats: DeliveryStats
        do { stats = try producer.flush(timeoutMs: 60_000) } catch {
            throw CLIError("not every event was delivered to \(target) at \(servers): \(error)")
        }
        let seconds = monotonicSeconds() - start
        printError("produced \(sent) events to \(target) at \(servers) (\(keyless) without a readable key) in \(String(format: "%.2f", seconds)) s, \(Int(Double(sent) / max(seconds, 1e-9))) events/s; delivered \(stats.delivered), failed \(stats.failed)")
        if stats.failed > 0 { throw ExitCode(1) }
    }
}
