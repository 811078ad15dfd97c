import ArgumentParser
import EddyCore
import EddyDevKit
import EddyFormats
import EddyReplay
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks, reported as ratios against baselines measured in the same run.",
        subcommands: [ReplayBench.self, WorkerBench.self, ReplayKafkaBench.self, RecoveryBench.self]
    )
}

struct ReplayBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "replay --emit final over generated clickstream events, on one core.",
        discussion: """
            Generates the events in memory first (seeded, reproducible), then times the replay. \
            Baselines on the same bytes: a bare line split (memchr), and Foundation's JSONSerialization \
            parsing the same events (the naive way). Memory: resident set growth over the run divided by keys.
            """
    )

    @Option(help: "Topology file (or name under Topologies/).") var topology = "clickstream"
    @Option(help: "Events to generate.") var events = 1_000_000
    @Option(help: "Distinct users.") var users = 100_000
    @Option(help: "Generator seed.") var seed: UInt64 = 42
    @Option(help: "Timed repetitions (the median is reported).") var repeats = 3
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Option(help: "Message format: json, or avro / protobuf (the same events encoded, Confluent-framed, schema id 1; JSON is timed beside it).")
    var format = "json"

    func validate() throws {
        if !["json", "avro", "protobuf"].contains(format) { throw ValidationError("--format is json, avro or protobuf") }
    }

    /// The events in `format`, Confluent-framed, and the schema table for them.
    func encoded(_ data: [UInt8], topology t: Topology) throws -> (bytes: [UInt8], ends: [Int], binary: BinarySource) {
        let table = SchemaTable(format: format == "avro" ? .avro : .protobuf, topology: t)
        let fields = TopologyFields(t)
        let avro = try AvroSchemaParser.parse(ClickstreamSchemas.avro)
        let proto = try ProtoDescriptors.schema(files: [ClickstreamSchemas.protobufFile])
        table.add(1, SchemaEntry(plans: [(path: format == "avro" ? [] : [0],
                                          plan: format == "avro" ? fields.avroPlan(avro) : fields.protobufPlan(proto, root: 0))]))
        var out: [UInt8] = [], ends: [Int] = []
        out.reserveCapacity(data.count)
        try forEachLine(data) { line in
            let obj = try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
            Transcoder.frame(id: 1, protobuf: format == "protobuf", into: &out)
            if format == "avro" { try Transcoder.avro(obj, avro, into: &out) } else { try Transcoder.protobuf(obj, proto, message: 0, into: &out) }
            ends.append(out.count)
        }
        return (out, ends, BinarySource(table: table))
    }

    /// One replay of the encoded events: events/s wall and per CPU-second.
    func timeBinary(_ e: (bytes: [UInt8], ends: [Int], binary: BinarySource), topology t: Topology) throws -> (Double, Double, String) {
        let session = ReplaySession(topology: t, emit: .final, binary: e.binary)
        var out = JSONWriter(capacity: 1 << 20)
        let start = monotonicSeconds()
        let cpuStart = threadCPUSeconds()
        e.bytes.withUnsafeBytes { buf in
            var from = 0
            for end in e.ends {
                session.consume(UnsafeRawBufferPointer(rebasing: buf[from..<end]), into: &out)
                from = end
            }
        }
        try session.finish(to: try OutputFile(path: "/dev/null"))
        let seconds = monotonicSeconds() - start
        let cpu = threadCPUSeconds() - cpuStart
        session.setSeconds(seconds)
        return (Double(e.ends.count) / seconds, Double(e.ends.count) / cpu, session.summary.description)
    }

    func run() throws {
        let t = try loadTopology(topology)
        var data: [UInt8] = []
        data.reserveCapacity(events * 110)
        var gen = ClickstreamGenerator(seed: seed, users: users)
        for _ in 0..<events { gen.next(into: &data); data.append(0x0A) }
        if format != "json" {
            let e = try encoded(data, topology: t)
            var binary: [(Double, Double)] = [], plain: [Double] = [], plainCPU: [Double] = [], summary = ""
            for _ in 0..<repeats {
                // Alternately: the encoded events, then the same events as JSON.
                let (rate, cpuRate, s) = try timeBinary(e, topology: t)
                binary.append((rate, cpuRate)); summary = s
                let session = ReplaySession(topology: t, emit: .final)
                var out = JSONWriter(capacity: 1 << 20)
                let start = monotonicSeconds()
                let cpuStart = threadCPUSeconds()
                forEachLine(data) { session.consume($0, into: &out) }
                try session.finish(to: try OutputFile(path: "/dev/null"))
                plain.append(Double(events) / (monotonicSeconds() - start))
                plainCPU.append(Double(events) / (threadCPUSeconds() - cpuStart))
            }
            let rate = median(binary.map(\.0)), cpuRate = median(binary.map(\.1)), jsonRate = median(plain)
            let jsonCPU = median(plainCPU)
            let bytes = Double(e.bytes.count) / Double(events), jsonBytes = Double(data.count - events) / Double(events)
            if json {
                print("""
                    {"bench":"replay","format":"\(format)","events":\(events),"events_per_s":\(Int(rate)),"events_per_cpu_s":\(Int(cpuRate)),\
                    "json_events_per_s":\(Int(jsonRate)),"json_events_per_cpu_s":\(Int(jsonCPU)),"ratio_vs_json":\(String(format: "%.3f", rate / jsonRate)),\
                    "cpu_ratio_vs_json":\(String(format: "%.3f", cpuRate / jsonCPU)),\
                    "bytes_per_event":\(String(format: "%.1f", bytes)),"json_bytes_per_event":\(String(format: "%.1f", jsonBytes))}
                    """)
            } else {
                print("replay --emit final, \(t.name), \(events) events as \(format) (Confluent-framed) and as JSON, median of \(repeats), alternating")
                print("  \(format.padding(toLength: 9, withPad: " ", startingAt: 0))  \(fmt(rate)) events/s wall, \(fmt(cpuRate)) per CPU-second; \(String(format: "%.1f", bytes)) bytes/event")
                print("  json       \(fmt(jsonRate)) events/s wall, \(fmt(jsonCPU)) per CPU-second; \(String(format: "%.1f", jsonBytes)) bytes/event")
                print("  ratio      \(String(format: "%.3f", rate / jsonRate)) wall, \(String(format: "%.3f", cpuRate / jsonCPU)) per CPU-second (target >= 1)")
                print("  \(summary)")
            }
            return
        }

        // Baseline 1: split lines only.
        let splitRate = try median((0..<repeats).map { _ in try timeLines(data) { _ in } })

        // Baseline 2: Foundation JSONSerialization on a sample.
        let sample = min(events, 100_000)
        var sampleLines: [Data] = []
        forEachLine(data) { line in
            if sampleLines.count < sample { sampleLines.append(Data(line)) }
        }
        let fStart = monotonicSeconds()
        var parsed = 0
        for l in sampleLines { if (try? JSONSerialization.jsonObject(with: l)) != nil { parsed += 1 } }
        let foundationRate = Double(parsed) / (monotonicSeconds() - fStart)

        // The replay itself; memory measured on the first run.
        var rates: [Double] = []
        var cpuRates: [Double] = []
        var bytesPerKey = 0.0, arenaPerKey = 0.0, keys = 0, summary = ""
        for r in 0..<repeats {
            let rss0 = residentBytes()
            let session = ReplaySession(topology: t, emit: .final)
            var out = JSONWriter(capacity: 1 << 20)
            let start = monotonicSeconds()
            let cpuStart = threadCPUSeconds()
            forEachLine(data) { line in
                session.consume(line, into: &out)
            }
            let sink = try OutputFile(path: "/dev/null")
            try session.finish(to: sink)
            let seconds = monotonicSeconds() - start
            cpuRates.append(Double(events) / (threadCPUSeconds() - cpuStart))
            session.setSeconds(seconds)
            rates.append(Double(events) / seconds)
            if r == 0 {
                keys = session.summary.keys
                bytesPerKey = Double(residentBytes() - rss0) / Double(max(keys, 1))
                arenaPerKey = Double(session.engine.store.allocatedBytes) / Double(max(keys, 1))
                summary = session.summary.description
            }
        }
        let rate = median(rates)
        let cpuRate = median(cpuRates)
        if json {
            print("""
                {"bench":"replay","events":\(events),"keys":\(keys),"events_per_s":\(Int(rate)),"events_per_cpu_s":\(Int(cpuRate)),\
                "split_lines_per_s":\(Int(splitRate)),"foundation_json_per_s":\(Int(foundationRate)),\
                "ratio_vs_foundation":\(String(format: "%.2f", rate / foundationRate)),\
                "rss_bytes_per_key":\(Int(bytesPerKey)),"store_bytes_per_key":\(Int(arenaPerKey))}
                """)
        } else {
            print("replay --emit final, \(t.name), \(events) events, \(keys) keys, median of \(repeats)")
            print("  eddy replay            \(fmt(rate)) events/s wall, \(fmt(cpuRate)) per CPU-second of this thread (target >= 1.5M on one core)")
            print("  baseline: split lines \(fmt(splitRate)) lines/s  (replay is \(String(format: "%.1f%%", 100 * rate / splitRate)) of it)")
            print("  baseline: Foundation   \(fmt(foundationRate)) events/s parsed by JSONSerialization (replay is \(String(format: "%.1fx", rate / foundationRate)))")
            print("  memory                 \(Int(bytesPerKey)) bytes/key resident growth, \(Int(arenaPerKey)) bytes/key allocated by the state store (target <= 300)")
            print("  first run: \(summary)")
        }
    }

    func fmt(_ r: Double) -> String { String(format: "%10.0f", r) }

    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    func timeLines(_ data: [UInt8], _ body: (UnsafeRawBufferPointer) -> Void) throws -> Double {
        let start = monotonicSeconds()
        var n = 0
        forEachLine(data) { body($0); n += 1 }
        return Double(n) / (monotonicSeconds() - start)
    }
}

/// Splits an in-memory buffer into lines.
func forEachLine(_ data: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
    try data.withUnsafeBytes { buf in
        guard let base = buf.baseAddress else { return }
        var start = 0
        while start < buf.count {
            let nl = memchr(base + start, 0x0A, buf.count - start)
            let end = nl.map { base.distance(to: UnsafeRawPointer($0)) } ?? buf.count
            try body(UnsafeRawBufferPointer(start: base + start, count: end - start))
            start = end + 1
        }
    }
}
