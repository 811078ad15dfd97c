import ArgumentParser
import EddyCore
import EddyDevKit
import EddyFormats
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
    @OptionGroup var population: PopulationOptions
    @Option(help: "Events per second (0: as fast as possible).") var rate: Double = 0
    @Option(help: "Topic (default: the topology's first).") var topic: String?
    @Option(help: "Compression codec.") var compression = "lz4"
    @Option(help: "How long the producer waits to fill a batch (librdkafka linger.ms); lower it to measure freshness.")
    var lingerMs = 10
    @Option(help: "Message format: json, or avro / protobuf (the JSON events encoded, the schema registered in --registry; Confluent wire format).")
    var format = "json"
    @Option(help: "Schema registry URL for --format avro|protobuf (default: the topology's schema_registry.url).")
    var registry: String?
    @Option(help: "Avro schema (.avsc) for --format avro (default: the clickstream events' schema).")
    var schema: String?

    func validate() throws {
        if (input == nil) == (generate == nil) { throw ValidationError("give exactly one of --input FILE or --generate N") }
        if !["json", "avro", "protobuf"].contains(format) { throw ValidationError("--format is json, avro or protobuf") }
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
        var jsonTopology = t
        jsonTopology.source.format = "json"
        let engine = FeatureEngine(topology: jsonTopology, expectedKeys: 16)
        let encoder = try BinaryEncoder(format: format, topic: target, registry: registry ?? t.source.schemaRegistry?.url,
                                        settings: t.source.schemaRegistry, schemaFile: schema)
        var encoded: [UInt8] = []
        let start = monotonicSeconds()
        var sent = 0, keyless = 0
        func send(_ line: UnsafeRawBufferPointer) throws {
            let ok = engine.decode(line) == nil
            if !ok { keyless += 1 }
            if let encoder {
                encoded.removeAll(keepingCapacity: true)
                try encoder.encode(line, into: &encoded)
                try encoded.withUnsafeBytes { try producer.produce(topic: target, key: ok ? engine.decoder.key : nil, value: $0) }
            } else {
                try producer.produce(topic: target, key: ok ? engine.decoder.key : nil, value: line)
            }
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
            var gen = ClickstreamGenerator(seed: seed, users: users, population: population.parameters(users: users))
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

/// `--format avro|protobuf`: registers the schema (subject TOPIC-value)
/// and encodes each JSON event, framed the Confluent way.
final class BinaryEncoder {
    let protobuf: Bool
    let id: UInt32
    let avro: AvroSchema?
    let proto: ProtoSchema?

    init?(format: String, topic: String, registry: String?, settings: SchemaRegistrySettings?, schemaFile: String?) throws {
        guard format != "json" else { return nil }
        guard let registry else { throw CLIError("--format \(format) needs --registry URL (or the topology's schema_registry)") }
        var s = settings ?? SchemaRegistrySettings(url: registry)
        s.url = registry
        let client = SchemaRegistryClient(settings: s)
        protobuf = format == "protobuf"
        do {
            if protobuf {
                let file = ClickstreamSchemas.protobufFile
                proto = try ProtoDescriptors.schema(files: [file])
                avro = nil
                id = try client.register(subject: topic + "-value", schema: (try file.serializedBytes() as Data).base64EncodedString(),
                                         schemaType: "PROTOBUF")
            } else {
                let text = try schemaFile.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? ClickstreamSchemas.avro
                avro = try AvroSchemaParser.parse(text)
                proto = nil
                id = try client.register(subject: topic + "-value", schema: text, schemaType: "AVRO")
            }
        } catch let e as CLIError { throw e } catch { throw CLIError("\(error)") }
        printError("schema registered at \(registry) as id \(id) (subject \(topic)-value)")
    }

    func encode(_ json: UnsafeRawBufferPointer, into out: inout [UInt8]) throws {
        Transcoder.frame(id: id, protobuf: protobuf, into: &out)
        guard let obj = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            out.append(contentsOf: json)  // not JSON: sent as it is (a dead letter)
            return
        }
        if let avro { try Transcoder.avro(obj, avro, into: &out) } else { try Transcoder.protobuf(obj, proto!, message: 0, into: &out) }
    }
}
