import ArgumentParser
import EddyCore
import EddyDevKit
import EddyFormats
import EddyRedis
import EddyReplay
import EddyStore
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
        abstract: "replay --emit final over generated clickstream (or card) events, on one core.",
        discussion: """
            Generates the events in memory first (seeded, reproducible), then times the replay. \
            Baselines on the same bytes: a bare line split (memchr), and Foundation's JSONSerialization \
            parsing the same events (the naive way). Memory: resident set growth over the run divided by keys, \
            and the bytes of each key's stored hash fields. Card transactions (card_id, amount, merchant_id, \
            status, reason) are generated for the fraud topology, clickstream events otherwise. With --redis, \
            the final state is also written there (the backfill path), and the bench reports Redis's MEMORY \
            USAGE per key and the Redis time per FCALL read at the last event time (INFO commandstats).
            """
    )

    @Option(help: "Topology file (or name under Topologies/).") var topology = "clickstream"
    @Option(help: "Events to generate.") var events = 1_000_000
    @Option(help: "Distinct users.") var users = 100_000
    @Option(help: "Generator seed.") var seed: UInt64 = 42
    @Option(help: "Timed repetitions (the median is reported).") var repeats = 3
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Option(help: "Events: clickstream or cards (default: cards for a topology keyed by card_id).") var generator: String?
    @Option(help: "Also write the state to this Redis (emptied first!) and measure MEMORY USAGE and FCALL time.")
    var redis: String?
    @Option(help: "With --redis: FCALL reads to time.") var reads = 20_000
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
        try refuseMultiEntity(t, command: "eddy bench")
        var data: [UInt8] = []
        data.reserveCapacity(events * 120)
        let cards = generator == "cards" || (generator == nil && t.key == .field(FieldPath(["card_id"])))
        if cards {
            var gen = CardGenerator(seed: seed, cards: users)
            for _ in 0..<events { gen.next(into: &data); data.append(0x0A) }
        } else {
            var gen = ClickstreamGenerator(seed: seed, users: users)
            for _ in 0..<events { gen.next(into: &data); data.append(0x0A) }
        }
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
        var stateBytesPerKey = 0.0, hashBytesPerKey = 0.0
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
                (stateBytesPerKey, hashBytesPerKey) = storedBytes(session.engine)
            }
        }
        var redisResult = ""
        if let redis {
            redisResult = try measureRedis(t, data: data, url: redis)
        }
        let rate = median(rates)
        let cpuRate = median(cpuRates)
        if json {
            print("""
                {"bench":"replay","events":\(events),"keys":\(keys),"events_per_s":\(Int(rate)),"events_per_cpu_s":\(Int(cpuRate)),\
                "split_lines_per_s":\(Int(splitRate)),"foundation_json_per_s":\(Int(foundationRate)),\
                "ratio_vs_foundation":\(String(format: "%.2f", rate / foundationRate)),\
                "rss_bytes_per_key":\(Int(bytesPerKey)),"store_bytes_per_key":\(Int(arenaPerKey)),\
                "state_bytes_per_key":\(Int(stateBytesPerKey)),"hash_bytes_per_key":\(Int(hashBytesPerKey))\(redisResult)}
                """)
        } else {
            print("replay --emit final, \(t.name), \(events) events, \(keys) keys, median of \(repeats)")
            print("  eddy replay            \(fmt(rate)) events/s wall, \(fmt(cpuRate)) per CPU-second of this thread (target >= 1.5M on one core)")
            print("  baseline: split lines \(fmt(splitRate)) lines/s  (replay is \(String(format: "%.1f%%", 100 * rate / splitRate)) of it)")
            print("  baseline: Foundation   \(fmt(foundationRate)) events/s parsed by JSONSerialization (replay is \(String(format: "%.1fx", rate / foundationRate)))")
            print("  memory                 \(Int(bytesPerKey)) bytes/key resident growth, \(Int(arenaPerKey)) bytes/key allocated by the state store (target <= 300)")
            print("  stored per key         \(Int(stateBytesPerKey)) bytes of _state, \(Int(hashBytesPerKey)) bytes of hash fields and values")
            if !redisResult.isEmpty { print("  redis                 \(redisResult)") }
            print("  first run: \(summary)")
        }
    }

    /// Average `_state` bytes and hash field+value bytes per key (what the worker writes).
    func storedBytes(_ engine: FeatureEngine) -> (Double, Double) {
        var fields = EntityFields(engine: engine)
        var state = 0, hash = 0, keys = 0
        let store = engine.store
        for s in 0..<Int32(store.slotLimit) where store.isLive(s) && engine.keyTime(s) != nil {
            keys += 1
            state += store.length(s)
            fields.forEach(slot: s) { name, value in hash += name.count + value.count }
        }
        return (Double(state) / Double(max(keys, 1)), Double(hash) / Double(max(keys, 1)))
    }

    /// Writes the final state to Redis (the backfill path), then Redis's
    /// own numbers: MEMORY USAGE per key (a sample of 2000) and the time
    /// per FCALL read at the last event time (INFO commandstats).
    func measureRedis(_ t: Topology, data: [UInt8], url: String) throws -> String {
        let target = try resolveRedisURL(url, topology: t)
        guard case .single(let redisURL) = target else { throw ValidationError("--redis: a single server") }
        let connection = try RedisConnection(url: redisURL)
        _ = try connection.command("FLUSHALL")
        let session = ReplaySession(topology: t, emit: .final, trackOffsets: true)
        var out = JSONWriter(capacity: 1 << 20)
        var offset: Int64 = 0
        forEachLine(data) { line in
            session.consume(line, key: nil, timestampMs: 0, source: 0, offset: offset, into: &out)
            offset += 1
        }
        try session.finish(to: try OutputFile(path: "/dev/null"))
        let backfill = RedisBackfill(target: target, topology: t)
        try backfill.prepare()
        let counts = try backfill.write(session, partitionNames: ["bench:0"])
        backfill.close()
        let engine = session.engine
        var keys: [[UInt8]] = []
        var maxK = Int64.min
        for s in 0..<Int32(engine.store.slotLimit) where engine.store.isLive(s) {
            guard let k = engine.keyTime(s) else { continue }
            maxK = max(maxK, k)
            keys.append(Array(t.sink.keyPrefix.utf8) + Array(engine.store.keyBytes(s)))
        }
        let sample = Array(keys.prefix(2000))
        for k in sample { try connection.append("MEMORY", "USAGE", k, "SAMPLES", "0") }
        let usage = try connection.pipeline(count: sample.count).compactMap(\.integer).reduce(0, +)
        let library = FunctionLibrary(topology: t)
        try library.install(on: .single(connection))
        _ = try connection.command("CONFIG", "RESETSTAT")
        var done = 0
        while done < reads {
            let n = min(500, reads - done)
            for i in 0..<n {
                try connection.appendFcall(library.functionName) { call in
                    call.keys.add(keys[(done + i) % keys.count])
                    call.arguments.add(maxK)
                }
            }
            _ = try connection.pipeline(count: n)
            done += n
        }
        let info = try connection.command("INFO", "commandstats").string ?? ""
        let fcall = info.split(separator: "\r\n").first { $0.hasPrefix("cmdstat_fcall:") } ?? ""
        let usec = fcall.split(separator: ",").first { $0.hasPrefix("usec_per_call=") }.map { String($0.dropFirst(14)) } ?? "0"
        return ",\"redis_keys_written\":\(counts.written),\"redis_memory_usage_per_key\":\(Int(usage) / max(sample.count, 1)),"
            + "\"fcall_usec_per_call\":\(usec),\"fcall_reads\":\(reads)"
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
