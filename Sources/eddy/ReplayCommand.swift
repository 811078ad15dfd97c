import ArgumentParser
import EddyCore
import EddyFormats
import EddyKafka
import EddyRedis
import EddyReplay
import EddyStore
import Foundation

extension EmitMode: ExpressibleByArgument {}
extension OutputFormat: ExpressibleByArgument {}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a topology's operators over historical events: JSON Lines files or a range of its Kafka topic.",
        discussion: """
            Sources: --input FILE (repeatable; JSON Lines in arrival order, gzip-compressed files are recognized; \
            - for standard input), or --from-kafka: a group-less consumer reads the topology's topics from --start \
            (earliest, or a time: the first message with Kafka timestamp >= it) up to --end (now: the high \
            watermarks when the replay starts, or a time), then stops. Per partition, arrival order is offset order.

            --emit rows: one point-in-time row per accepted event, with every feature read at T = event ts \
            from the key's state before the event. --emit final: one line per key with its key time and every \
            feature read at T = key time. --labels FILE: one row per label {"key":..., "ts":...}, the label \
            object extended with the features at T = ts. --emit redis: write every key's \
            state into Redis with the worker's fenced writes, under --prefix (default: the topology's); \
            from Kafka the fence _o:<topic>:<partition> is the offset of the key's last applied event, from \
            files _o:file:0 is its line number over all the inputs (re-running the same files is fenced; a \
            worker must not take over a prefix written from files, as it would apply the topic's events again).

            --brokers and --redis (or EDDY_BROKERS and EDDY_REDIS_URL) override the topology file. Progress and \
            a summary go to standard error.
            """
    )

    @Option(name: .long, help: "Topology file (or name under Topologies/).")
    var topology: String

    @OptionGroup var source: EventSourceOptions

    @Option(name: .long, help: "rows, final or redis.")
    var emit: EmitMode = .final

    @Option(name: .long, help: "Labels file (JSON Lines of {\"key\":..., \"ts\":...}).")
    var labels: String?

    @Option(name: .long, help: "Output file; - for standard output. A name ending in .gz is written gzip-compressed.")
    var out: String = "-"

    @Option(name: .long, help: "jsonl or csv (default: csv when --out ends in .csv or .csv.gz, else jsonl).")
    var format: OutputFormat?

    @Option(name: .long, help: "Write rejected events here, one JSON line each: where it came from (line, or topic/partition/offset), reason, and the original text as \"event\" (or \"event_base64\" when it is not UTF-8).")
    var deadLetter: String?

    @Option(name: .long, help: "--emit redis: Redis URL (overrides the file and EDDY_REDIS_URL).")
    var redis: String?

    @OptionGroup var redisCredentials: RedisCredentialOptions

    @Option(name: .long, help: "--emit redis: key prefix to write under (default: the topology's sink prefix).")
    var prefix: String?

    @Option(name: .long, help: "--emit redis: after the writes, commit the range's end offsets for this consumer group, so `eddy run` with that group starts where the backfill ended. Use a group no worker is running in.")
    var commitGroup: String?

    @Flag(name: .long, help: "With a topology whose key is hashed (key.hash): write the raw keys in rows, final lines and label rows instead of their HMACs. The output then holds personal data.")
    var rawKeys = false

    @Flag(inversion: .prefixedNo, help: "Show progress on standard error (default: on).")
    var progress = true

    @Option(name: .long, help: "The entity to replay, in a topology with `entities:` (required there).")
    var entity: String?

    @Option(name: .long, help: "Files: the field holding each event's source partition, for an entity with `parts: per_partition` (a missing or non-integer value: partition 0). Without it every line is partition 0.")
    var partitionField: String?

    func validate() throws {
        try source.validate()
        if partitionField != nil && source.fromKafka {
            throw ValidationError("--partition-field is for files; Kafka events carry their partition")
        }
        if emit == .redis {
            if labels != nil { throw ValidationError("--labels writes training rows; it cannot go with --emit redis") }
            if commitGroup != nil && !source.fromKafka {
                throw ValidationError("--commit-group commits Kafka offsets; it goes with --from-kafka")
            }
            if format != nil || out != "-" { throw ValidationError("--emit redis writes to Redis; --out and --format do not apply") }
        } else if prefix != nil || commitGroup != nil {
            throw ValidationError("--prefix and --commit-group go with --emit redis")
        }
    }

    func run() throws {
        var t = try selectEntity(try loadTopology(topology), entity, command: "eddy replay")
        if t.parts == .perPartition { return try runParts(t) }
        if let partitionField {
            printError("note: --partition-field \(partitionField) has no effect: entity \(t.entityName ?? t.name) keeps one part per key (parts: one)")
        }
        if let p = prefix { t.sink.keyPrefix = p }
        let labelSet = try labels.map { path in
            do { return try LabelSet(path: path) } catch { throw CLIError("\(path): \(error)") }
        }
        let messages = try source.fromKafka ? MessageFormat.kafka(t) : MessageFormat.files(t, inputs: source.input)
        if rawKeys, t.keyHashing == nil {
            throw CLIError("--raw-keys: topology \(t.name) does not hash its keys (no key.hash); its output holds the raw keys already")
        }
        if rawKeys, emit == .redis { throw CLIError("--raw-keys does not apply to --emit redis: Redis always holds the hashed keys") }
        let session = ReplaySession(topology: t, emit: emit, labels: labelSet, trackOffsets: emit == .redis, binary: messages.binary,
                                    rawKeys: rawKeys)
        var backfill: RedisBackfill?
        if emit == .redis {
            let url = try resolveRedisURL(redis, topology: t, credentials: redisCredentials)
            let b = RedisBackfill(target: url, topology: t)
            try b.prepare()  // fail before reading anything when Redis is down
            backfill = b
        }
        let output = emit == .redis ? nil : try OutputFile(path: out)
        if let output, (format ?? defaultFormat) == .csv { output.csv = CSVConverter(header: session.columns) }
        let dlq = try deadLetter.map { try OutputFile(path: $0) }

        if emit == .redis, !source.fromKafka, prefix == nil {
            printError("""
                warning: --emit redis from files writes under the topology's own prefix "\(t.sink.keyPrefix)"; \
                its keys carry the fence _o:file:0, not Kafka offsets, so a worker on this prefix would apply the \
                topic's events on top of them. Give --prefix for a backfilled copy.
                """)
        }
        if emit == .redis, try source.range().start != .earliest || !source.range().startOffsets.isEmpty {
            printError("""
                warning: --emit redis with --start or --start-offsets writes states built from part of the topic; \
                a key written here carries a newer offset than a complete state and wins over it (and a worker loads it). \
                Backfill a new --prefix with the whole retained topic unless that is what you want.
                """)
        }
        let start = monotonicSeconds()
        let kafka = try source.replay(topology: t, into: session, output: output, deadLetters: dlq, progress: progress,
                                      label: "replay \(t.name)", commitGroup: commitGroup, format: messages)
        if emit == .redis, let kafka, kafka.plans.contains(where: { $0.low > 0 }) {
            let trimmed = kafka.plans.filter { $0.low > 0 }.count
            printError("warning: \(trimmed) partition(s) no longer hold their oldest offsets (retention); the states written are built from the retained events only")
        }
        if let output {
            try session.finish(to: output)
            try output.close()
        } else {
            var none = JSONWriter(capacity: 0)
            session.endOfInput(into: &none)
        }
        try dlq?.close()
        session.setSeconds(monotonicSeconds() - start)
        printError("replay \(t.name): \(session.summary.description)")
        if let kafka {
            var s = "kafka: \(kafka.plans.count) partitions, \(kafka.delivered) messages read"
            if kafka.timeLookupFallback { s += ", \(kafka.skipped) skipped before --start (timestamp scan)" }
            printError(s)
        }
        if let backfill {
            let keys = session.summary.keys
            let meter = ProgressMeter(label: "redis \(t.sink.keyPrefix)", total: Int64(keys), unit: "keys")
            meter.enabled = progress
            let wStart = monotonicSeconds()
            let fenceNames = kafka?.plans.map(\.name) ?? ["file:0"]
            let counts = try backfill.write(session, partitionNames: fenceNames) { done in
                meter.update(done: Int64(done), events: done)
            }
            meter.finish()
            backfill.close()
            let seconds = monotonicSeconds() - wStart
            printError("redis \(backfill.url) prefix \"\(t.sink.keyPrefix)\": \(counts.written) keys written, \(counts.fenced) fenced (Redis held the same or a newer offset for the key), \(counts.failed) failed, \(String(format: "%.2f", seconds)) s")
            if counts.failed > 0 {
                throw CLIError("\(counts.failed) writes failed in Redis; first: \(counts.firstError ?? "?")")
            }
            if commitGroup != nil {
                try kafka?.commitEndOffsets()
                printError("committed the end offsets for group \(commitGroup!)")
            }
        }
        kafka?.close()
    }

    /// An entity whose keys are spread over partitions: parts per source
    /// partition, merged at every read (`PartsReplaySession`).
    func runParts(_ t: Topology) throws {
        var t = t
        if let p = prefix { t.sink.keyPrefix = p }
        if emit == .redis, !source.fromKafka, prefix == nil {
            printError("""
                warning: --emit redis from files writes parts _p:file:<partition> under the entity's own prefix \
                "\(t.sink.keyPrefix)"; a worker on this prefix would add its own _p:<topic>:<partition> parts beside \
                them (counted twice). Give --prefix for a backfilled copy.
                """)
        }
        var backfill: RedisBackfill?
        if emit == .redis {
            let url = try resolveRedisURL(redis, topology: t, credentials: redisCredentials)
            let b = RedisBackfill(target: url, topology: t)
            try b.prepare()  // fail before reading anything when Redis is down
            backfill = b
        }
        let labelSet = try labels.map { path in
            do { return try LabelSet(path: path) } catch { throw CLIError("\(path): \(error)") }
        }
        let messages = try source.fromKafka ? MessageFormat.kafka(t) : MessageFormat.files(t, inputs: source.input)
        if messages.containerFiles { throw CLIError("Avro container files are not supported yet for parts: per_partition entities") }
        let session = PartsReplaySession(topology: t, emit: emit, labels: labelSet,
                                         partitionField: partitionField.map { FieldPath(dotted: $0) }, binary: messages.binary)
        let dlq = try deadLetter.map { try OutputFile(path: $0) }
        let start = monotonicSeconds()
        let kafka = try source.replayParts(topology: t, into: session, deadLetters: dlq, group: commitGroup,
                                           progress: progress, label: "replay \(t.name)", format: messages)
        if let backfill {
            let parts = session.finalParts()
            try dlq?.close()
            session.setSeconds(monotonicSeconds() - start)
            printError("replay \(t.name) (parts per partition): \(session.summary.description)")
            let wStart = monotonicSeconds()
            let counts = try backfill.writeParts(parts, partitionNames: kafka?.plans.map(\.name) ?? [])
            backfill.close()
            printError("redis \(backfill.url) prefix \"\(t.sink.keyPrefix)\": \(counts.written) parts written, \(counts.fenced) fenced (Redis held the same or a newer offset for the part), \(counts.failed) failed, \(String(format: "%.2f", monotonicSeconds() - wStart)) s")
            if counts.failed > 0 {
                throw CLIError("\(counts.failed) writes failed in Redis; first: \(counts.firstError ?? "?")")
            }
            if let kafka {
                if commitGroup != nil {
                    try kafka.commitEndOffsets()
                    printError("committed the end offsets for group \(commitGroup!)")
                }
                kafka.close()
            }
            return
        }
        let output = try OutputFile(path: out)
        if (format ?? defaultFormat) == .csv { output.csv = CSVConverter(header: session.columns) }
        try session.finish(to: output)
        try output.close()
        try dlq?.close()
        session.setSeconds(monotonicSeconds() - start)
        printError("replay \(t.name) (parts per partition): \(session.summary.description)")
        if let kafka {
            printError("kafka: \(kafka.plans.count) partitions, \(kafka.delivered) messages read")
            kafka.close()
        }
    }

    var defaultFormat: OutputFormat {
        out.hasSuffix(".csv") || out.hasSuffix(".csv.gz") ? .csv : .jsonl
    }
}

/// Where replayed events come from: files, or a range of the topology's
/// Kafka topics. Shared by `eddy replay` and `eddy verify`.
struct EventSourceOptions: ParsableArguments {
    @Option(name: .long, help: "Events, JSON Lines in arrival order (repeatable; gzip recognized), or Avro object container files (.avro: null or deflate codec); - for standard input.")
    var input: [String] = []

    @Flag(name: .long, help: "Read the topology's topics from Kafka instead of files.")
    var fromKafka = false

    @Option(name: .long, help: "--from-kafka: earliest, or a time (epoch ms, RFC 3339, now-2h): start at each partition's first message with Kafka timestamp >= it.")
    var start: String?

    @Option(name: .long, help: "--from-kafka: now (the high watermarks at start), or a time: stop before each partition's first message with Kafka timestamp >= it.")
    var end: String?

    @Option(name: .long, help: "--from-kafka: start offsets P:O,... (or TOPIC:P:O); other partitions follow --start.")
    var startOffsets: String?

    @Option(name: .long, help: "Kafka bootstrap servers (overrides the file and EDDY_BROKERS).")
    var brokers: String?

    func validate() throws {
        if fromKafka == !input.isEmpty {
            throw ValidationError("give --input FILE (or - for standard input), or --from-kafka")
        }
        if !fromKafka, start != nil || end != nil || startOffsets != nil {
            throw ValidationError("--start, --end and --start-offsets go with --from-kafka")
        }
        _ = try range()
    }

    func range() throws -> KafkaRange {
        var r = KafkaRange()
        if let start, start != "earliest" {
            guard let t = parseTime(start) else {
                throw ValidationError("--start '\(start)': give earliest, epoch milliseconds, RFC 3339 (2026-01-01T00:00:00Z) or now-DURATION")
            }
            r.start = .time(t)
        }
        if let end, end != "now" {
            guard let t = parseTime(end) else {
                throw ValidationError("--end '\(end)': give now, epoch milliseconds, RFC 3339 (2026-01-01T00:00:00Z) or now-DURATION")
            }
            r.end = .time(t)
        }
        if let startOffsets {
            guard let list = KafkaRange.parseStartOffsets(startOffsets) else {
                throw ValidationError("--start-offsets '\(startOffsets)': give PARTITION:OFFSET,... (or TOPIC:PARTITION:OFFSET)")
            }
            r.startOffsets = list
        }
        if case .time(let a) = r.start, case .time(let b) = r.end, b < a {
            throw ValidationError("--end is before --start")
        }
        return r
    }

    /// Reads the source into a `parts: per_partition` session (Kafka with
    /// real partitions, or the input files); rejected events go to `dlq`.
    /// Returns the Kafka source (for its partitions' names and ends), nil
    /// for files.
    func replayParts(topology t: Topology, into session: PartsReplaySession, deadLetters dlq: OutputFile?,
                     group: String? = nil, progress: Bool, label: String, format messages: MessageFormat) throws
        -> KafkaReplaySource?
    {
        guard fromKafka else {
            if let dlq {
                session.onReject = { line, reason, bytes in
                    dlq.writer.raw("{\"line\":")
                    dlq.writer.int(Int64(line))
                    writeRejected(dlq, reason, bytes)
                }
            }
            var none = JSONWriter(capacity: 0)
            for path in input {
                let reader: LineReader
                do { reader = try LineReader(path: path) } catch { throw CLIError("\(error)") }
                try reader.forEachLine { line in
                    if !line.isEmpty { session.consume(line, into: &none) }
                    return true
                }
            }
            return nil
        }
        let k = try kafkaSource(t, group: group, format: messages)
        if let dlq { session.onKafkaReject = Self.kafkaRejectWriter(dlq, plans: k.plans) }
        try Self.withMeter(k, label: label, progress: progress) { tick in try k.run(into: session, output: nil, progress: tick) }
        return k
    }

    /// The Kafka source of a replay over `range()`: its notes printed, the
    /// schema resolver and the error log set.
    func kafkaSource(_ t: Topology, group: String?, format: MessageFormat) throws -> KafkaReplaySource {
        let servers = resolveBrokers(brokers, topology: t)
        let k: KafkaReplaySource
        do {
            k = try KafkaReplaySource(brokers: servers, topics: t.source.topics, properties: t.source.properties,
                                      range: try range(), group: group)
        } catch let e as ReplayError {
            throw CLIError("\(e). Start Kafka or pass --brokers LIST (or EDDY_BROKERS).")
        }
        for note in k.notes { printError("kafka: \(note)") }
        if format.resolver != nil { k.resolveSchema = { format.resolveBlocking($0) } }
        k.onError = { printError("kafka: \($0)") }
        return k
    }

    /// Writes a Kafka event a session rejected as a dead-letter line.
    static func kafkaRejectWriter(_ dlq: OutputFile, plans: [PartitionPlan])
        -> (Int32, Int64, RejectReason, UnsafeRawBufferPointer) -> Void
    {
        { source, offset, reason, bytes in
            let p = plans[Int(source)]
            dlq.writer.raw("{\"topic\":")
            dlq.writer.string(p.topic)
            dlq.writer.raw(",\"partition\":")
            dlq.writer.int(Int64(p.partition))
            dlq.writer.raw(",\"offset\":")
            dlq.writer.int(offset)
            writeRejected(dlq, reason, bytes)
        }
    }

    /// Runs `body` (a read of `k`) with a progress meter it ticks.
    static func withMeter(_ k: KafkaReplaySource, label: String, progress: Bool,
                          _ body: (_ tick: @escaping () -> Void) throws -> Void) throws {
        let meter = ProgressMeter(label: label, total: k.totalOffsets, unit: "offsets")
        meter.enabled = progress
        try body { meter.update(done: k.consumedOffsets, events: k.delivered) }
        meter.finish()
    }

    /// Reads every event into `session`, writing rows to `output`; returns
    /// the Kafka source when reading Kafka (for its plan and counts).
    func replay(topology t: Topology, into session: ReplaySession, output: OutputFile?, deadLetters dlq: OutputFile?,
                progress: Bool, label: String, commitGroup: String? = nil, format: MessageFormat = MessageFormat()) throws -> KafkaReplaySource? {
        if fromKafka {
            let kafka = try kafkaSource(t, group: commitGroup, format: format)
            if let dlq { session.onKafkaReject = Self.kafkaRejectWriter(dlq, plans: kafka.plans) }
            try Self.withMeter(kafka, label: label, progress: progress) { tick in
                try kafka.run(into: session, output: output) {
                    tick()
                    try? dlq?.flushIfNeeded()
                }
            }
            return kafka
        }

        if let dlq {
            session.onReject = { line, reason, bytes in
                dlq.writer.raw("{\"line\":")
                dlq.writer.int(Int64(line))
                writeRejected(dlq, reason, bytes)
            }
        }
        if format.containerFiles {
            var events = 0
            let out = try output ?? OutputFile(path: "/dev/null")
            for path in input {
                do {
                    let file = try AvroContainerReader(path: path)
                    try file.forEachDatum { datum in
                        session.consume(datum, into: &out.writer)
                        try out.flushIfNeeded()
                        events &+= 1
                    }
                } catch let e as SchemaError { throw CLIError("\(path): \(e)") }
            }
            return nil
        }
        let readers = try input.map { path in
            do { return try LineReader(path: path) } catch { throw CLIError("\(error)") }
        }
        let sizes = readers.map(\.fileSize)
        let total: Int64? = sizes.contains(where: { $0 == nil }) ? nil : Int64(sizes.reduce(0) { $0 + $1! })
        let meter = ProgressMeter(label: label, total: total, unit: "bytes")
        meter.enabled = progress
        var before = 0
        var events = 0
        let out = try output ?? OutputFile(path: "/dev/null")  // verify: no rows are written
        for reader in readers {
            try reader.forEachLine { line in
                if line.isEmpty { return true }
                session.consume(line, into: &out.writer)
                try out.flushIfNeeded()
                events &+= 1
                if events & 0xFFFF == 0 { meter.update(done: Int64(before + reader.position), events: events) }
                return true
            }
            before += reader.position
        }
        meter.finish()
        return nil
    }
}

/// The rest of a dead-letter line: reason and the original bytes.
func writeRejected(_ dlq: OutputFile, _ reason: RejectReason, _ bytes: UnsafeRawBufferPointer) {
    dlq.writer.raw(",\"reason\":")
    dlq.writer.string(reason.rawValue)
    if String(validating: bytes, as: UTF8.self) != nil {
        dlq.writer.raw(",\"event\":")
        dlq.writer.string(bytes)
    } else {
        dlq.writer.raw(",\"event_base64\":")
        dlq.writer.string(Data(bytes).base64EncodedString())
    }
    dlq.writer.raw("}\n")
    try? dlq.flushIfNeeded()
}

/// `--brokers`, else `EDDY_BROKERS`, else the topology's.
func resolveBrokers(_ flag: String?, topology t: Topology) -> String {
    let env = ProcessInfo.processInfo.environment["EDDY_BROKERS"].flatMap { $0.isEmpty ? nil : $0 }
    return flag ?? env ?? t.source.brokers
}

/// Epoch milliseconds, RFC 3339, `now`, or `now-<n><ms|s|m|h|d>`.
func parseTime(_ text: String) -> Int64? {
    let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
    if text == "now" { return nowMs }
    if text.hasPrefix("now-") {
        let spec = text.dropFirst(4)
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, scale) in units where spec.hasSuffix(suffix) {
            if let n = Int64(spec.dropLast(suffix.count)), n >= 0 { return nowMs - n * scale }
        }
        return nil
    }
    return ReadTime.parse(text)
}
