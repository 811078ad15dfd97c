import ArgumentParser
import EddyCore
import EddyRedis
import EddyReplay
import EddyStore
import Foundation

/// `eddy verify`: the online store against a replay of the same events.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check entities in Redis against a replay of the topic (or of files), read at the same time T.",
        discussion: """
            Replays the events (--from-kafka with the replay's range options, or --input FILE...), then reads \
            --sample N of the replayed keys (all by default) from Redis through the serving path (FCALL of the \
            topology's Function library at T, which folds the stored _state) and compares every column with the \
            replay read at T. It also compares the stored fields that HGETALL users see (_K and the point \
            columns) and, for Kafka, each key's fence _o:<topic>:<partition> with the offset of its last applied \
            event. A key Redis holds at a newer offset (a worker applied events after the replay's range) is \
            counted as newer and not compared. Without --sample, a SCAN of the prefix finds keys Redis holds that \
            the replay does not (extra).

            Prints one JSON line per differing column on standard output: {"key","column","redis","replay"} \
            (values as JSON text), then a summary on standard error. Exit status 1 when any key differs, is \
            missing from Redis, or is extra.
            """
    )

    @Option(name: .long, help: "Topology file (or name under Topologies/).")
    var topology: String

    @OptionGroup var source: EventSourceOptions

    @Option(name: .long, help: "Check this many keys, chosen at random (default: all).")
    var sample: Int?

    @Option(name: .long, help: "Seed for --sample.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Read time T: epoch ms, RFC 3339 or now-DURATION (default: now).")
    var at: String?

    @Option(name: .long, help: "Redis URL (overrides the file and EDDY_REDIS_URL).")
    var redis: String?

    @OptionGroup var redisCredentials: RedisCredentialOptions

    @Option(name: .long, help: "Key prefix to check (default: the topology's sink prefix).")
    var prefix: String?

    @Flag(inversion: .prefixedNo, help: "SCAN the prefix for keys the replay does not have (default: on unless --sample).")
    var scan: Bool?

    @Option(name: .long, help: "Print at most this many differences (all are counted).")
    var maxReport = 100

    @Flag(inversion: .prefixedNo, help: "Show progress on standard error (default: on).")
    var progress = true

    @Option(name: .long, help: "The entity to check, in a topology with `entities:` (its prefix and Function; parts merged).")
    var entity: String?

    @Option(name: .long, help: "Files: the field holding each event's source partition, for an entity with `parts: per_partition` (as eddy replay).")
    var partitionField: String?

    func validate() throws {
        try source.validate()
        if let at, parseTime(at) == nil {
            throw ValidationError("--at '\(at)': give epoch milliseconds, RFC 3339 (2026-01-01T00:00:00Z) or now-DURATION")
        }
        if let sample, sample <= 0 { throw ValidationError("--sample must be positive") }
        if partitionField != nil && source.fromKafka {
            throw ValidationError("--partition-field is for files; Kafka events carry their partition")
        }
    }

    func run() throws {
        var t = try selectEntity(try loadTopology(topology), entity, command: "eddy verify")
        if let prefix { t.sink.keyPrefix = prefix }
        let readTime = at.flatMap(parseTime) ?? Int64(Date().timeIntervalSince1970 * 1000)
        let url = try resolveRedisURL(redis, topology: t, credentials: redisCredentials)
        let connection = try connectRedis(url, clientName: "eddy-verify", connectTimeout: .seconds(5),
                                          commandTimeout: .seconds(60))
        if t.parts == .perPartition {
            try finish(t, report: try verifyParts(t, connection: connection, url: url, at: readTime), at: readTime)
            return
        }

        let messages = try source.fromKafka ? MessageFormat.kafka(t) : MessageFormat.files(t, inputs: source.input)
        let session = ReplaySession(topology: t, emit: .final, trackOffsets: source.fromKafka, binary: messages.binary)
        let start = monotonicSeconds()
        let kafka = try source.replay(topology: t, into: session, output: nil, deadLetters: nil, progress: progress,
                                      label: "verify \(t.name): replay", format: messages)
        var none = JSONWriter(capacity: 0)
        session.endOfInput(into: &none)
        session.setSeconds(monotonicSeconds() - start)
        printError("replay \(t.name): \(session.summary.description)")
        kafka?.close()

        let verifier = Verifier(session: session, topology: t, prefix: t.sink.keyPrefix, client: connection, at: readTime,
                                partitionNames: kafka?.plans.map(\.name), endOffsets: kafka?.plans.map(\.end))
        verifier.maxReported = maxReport
        let report: Verifier.Report
        do {
            report = try verifier.run(sample: sample, seed: seed, scan: scan ?? (sample == nil))
        } catch {
            throw CLIError("reading Redis at \(url) failed: \(error)")
        }
        try finish(t, report: report, at: readTime)
    }

    /// Replays a `parts: per_partition` entity and checks its keys (`PartsVerifier`).
    func verifyParts(_ t: Topology, connection: RedisClient, url: RedisTarget, at readTime: Int64) throws -> Verifier.Report {
        let messages = try source.fromKafka ? MessageFormat.kafka(t) : MessageFormat.files(t, inputs: source.input)
        if messages.containerFiles { throw CLIError("Avro container files are not supported yet for parts: per_partition entities") }
        let session = PartsReplaySession(topology: t, emit: .final, partitionField: partitionField.map { FieldPath(dotted: $0) },
                                         binary: messages.binary)
        let start = monotonicSeconds()
        let kafka = try source.replayParts(topology: t, into: session, deadLetters: nil, progress: progress,
                                           label: "verify \(t.name): replay", format: messages)
        let parts = session.finalParts()
        session.setSeconds(monotonicSeconds() - start)
        printError("replay \(t.name) (parts per partition): \(session.summary.description)")
        kafka?.close()
        let verifier = PartsVerifier(session: session, parts: parts, topology: t, prefix: t.sink.keyPrefix, client: connection,
                                     at: readTime, partitionNames: kafka?.plans.map(\.name), endOffsets: kafka?.plans.map(\.end))
        verifier.maxReported = maxReport
        do {
            return try verifier.run(sample: sample, seed: seed, scan: scan ?? (sample == nil))
        } catch {
            throw CLIError("reading Redis at \(url) failed: \(error)")
        }
    }

    /// Prints the differences (standard output) and the summary; exit 1 when any.
    func finish(_ t: Topology, report: Verifier.Report, at readTime: Int64) throws {
        var out = JSONWriter(capacity: 1 << 16)
        for m in report.mismatches {
            out.raw("{\"key\":")
            out.string(m.key)
            out.raw(",\"column\":")
            out.string(m.column)
            out.raw(",\"redis\":")
            jsonValue(m.redis, into: &out)
            out.raw(",\"replay\":")
            jsonValue(m.replay, into: &out)
            out.raw("}\n")
        }
        for key in report.missingKeys {
            out.raw("{\"key\":")
            out.string(key)
            out.raw(",\"missing_in_redis\":true}\n")
        }
        for key in report.extraKeys {
            out.raw("{\"key\":")
            out.string(key)
            out.raw(",\"extra_in_redis\":true}\n")
        }
        FileHandle.standardOutput.write(Data(out.bytes))

        var s = "verify \(t.name) prefix \"\(t.sink.keyPrefix)\" at T=\(readTime): keys checked \(report.checked), "
        s += "equal \(report.equal), different \(report.different), missing in Redis \(report.missing), "
        s += report.scanned ? "extra in Redis \(report.extra)" : "extra in Redis not checked (--sample)"
        if report.newer > 0 { s += ", newer in Redis than the replay \(report.newer) (not compared)" }
        if !report.columnCounts.isEmpty {
            let cols = report.columnCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            s += "; differing columns (keys): \(cols.joined(separator: ", "))"
        }
        if report.mismatchCount > report.mismatches.count {
            s += "; printed \(report.mismatches.count) of \(report.mismatchCount) differences"
        }
        printError(s)
        if report.failed { throw ExitCode(1) }
    }

    /// Writes `text` as is when it is JSON text, else as a JSON string.
    func jsonValue(_ text: String, into w: inout JSONWriter) {
        if let data = text.data(using: .utf8),
            (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil {
            w.raw(Array(text.utf8))
        } else {
            w.string(text)
        }
    }
}
