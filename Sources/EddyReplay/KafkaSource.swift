import EddyCore
import EddyKafka
import EddyPipeline
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which part of a topic a Kafka replay reads.
public struct KafkaRange: Sendable, Equatable {
    public enum Start: Sendable, Equatable {
        /// The oldest retained message of each partition.
        case earliest
        /// The first message whose Kafka timestamp is >= this (epoch ms).
        case time(Int64)
    }

    public enum End: Sendable, Equatable {
        /// The high watermarks when the replay starts.
        case now
        /// Up to (not including) the first message whose Kafka timestamp is
        /// >= this (epoch ms).
        case time(Int64)
    }

    /// A start offset for one partition; `topic` nil means every topic.
    public struct StartOffset: Sendable, Equatable {
        public var topic: String?
        public var partition: Int32
        public var offset: Int64
        public init(topic: String?, partition: Int32, offset: Int64) {
            self.topic = topic
            self.partition = partition
            self.offset = offset
        }
    }

    public var start: Start
    public var end: End
    /// Explicit start offsets; they win over `start` for their partitions.
    public var startOffsets: [StartOffset]

    public init(start: Start = .earliest, end: End = .now, startOffsets: [StartOffset] = []) {
        self.start = start
        self.end = end
        self.startOffsets = startOffsets
    }

    /// Parses `P:O,P:O` or `TOPIC:P:O,...`.
    public static func parseStartOffsets(_ text: String) -> [StartOffset]? {
        var out: [StartOffset] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 || parts.count >= 3 else { return nil }
            let offsetText = parts[parts.count - 1], partitionText = parts[parts.count - 2]
            guard let p = Int32(partitionText), p >= 0, let o = Int64(offsetText), o >= 0 else { return nil }
            let topic = parts.count >= 3 ? parts[0..<(parts.count - 2)].joined(separator: ":") : nil
            out.append(StartOffset(topic: topic, partition: p, offset: o))
        }
        return out.isEmpty ? nil : out
    }
}

/// One partition of a Kafka replay: where it starts and ends, fixed when
/// the replay starts.
public struct PartitionPlan: Sendable, CustomStringConvertible {
    public let topic: String
    public let partition: Int32
    /// Watermarks when the replay started.
    public let low: Int64, high: Int64
    /// The first offset to read.
    public var start: Int64
    /// The offset to stop before.
    public var end: Int64
    /// For a broker that cannot look up timestamps: read from `start`, skip
    /// messages until the first one whose timestamp is >= this.
    public var skipBeforeMs: Int64?
    /// For such a broker: stop at the first message whose timestamp is >= this.
    public var stopAtMs: Int64?

    /// `topic:partition`, as the fences name it.
    public var name: String { "\(topic):\(partition)" }
    public var description: String {
        var s = "\(topic)[\(partition)] \(start)..<\(end)"
        if let skipBeforeMs { s += " from ts \(skipBeforeMs)" }
        if let stopAtMs { s += " until ts \(stopAtMs)" }
        return s
    }
}

/// A bounded replay of a topology's topics: a group-less consumer assigned
/// explicit start offsets, reading until every partition reaches the end
/// offset fixed when it started. Arrival order within a partition is offset
/// order, and one key lives in one partition, so every key's events reach
/// the session in order (different keys' events interleave as partitions
/// arrive).
///
/// Start and end times are looked up with `offsetsForTimes`. A broker that
/// answers every lookup with the end offset (librdkafka's mock cluster)
/// is detected with a probe at timestamp 0, and then the replay reads from
/// the beginning and finds the same offsets by the messages' timestamps:
/// it starts at the first message with timestamp >= start and stops at the
/// first with timestamp >= end, as a broker's time index would.
public final class KafkaReplaySource {
    public let topics: [String]
    public let brokers: String
    public private(set) var plans: [PartitionPlan] = []
    /// What the user should know about the plan (printed by the CLI).
    public private(set) var notes: [String] = []
    /// Whether timestamp lookups were done by reading (see the type's docs).
    public private(set) var timeLookupFallback = false
    /// Messages skipped before the start time (fallback only).
    public private(set) var skipped = 0
    /// Messages read and applied to the session (updated by `run` after each batch).
    public private(set) var delivered = 0
    /// Kafka errors reported while reading (printed once each).
    public var onError: ((String) -> Void)?
    /// How long reading may make no progress before it fails.
    public var stallTimeoutSeconds = 120.0

    let consumer: KafkaConsumer
    let range: KafkaRange

    /// Connects and fixes the plan: watermarks, start and end offsets.
    /// - Parameters:
    ///   - properties: extra librdkafka properties (the topology's); group
    ///     settings are dropped unless `group` is given.
    ///   - group: a consumer group whose id the consumer uses (for
    ///     `commitEndOffsets()`); nil for a private one.
    public init(brokers: String, topics: [String], properties: [String: String] = [:], range: KafkaRange,
                group: String? = nil) throws(ReplayError) {
        self.brokers = brokers
        self.topics = topics
        self.range = range
        var config = Self.consumerProperties
        for (k, v) in properties where !k.hasPrefix("group.") && !k.hasPrefix("partition.assignment") {
            config[k] = v
        }
        config["bootstrap.servers"] = brokers
        config["enable.auto.commit"] = "false"
        config["auto.offset.reset"] = "earliest"
        if let group { config["group.id"] = group }
        do {
            consumer = try KafkaConsumer(config: config, topics: [], partitionEOF: true)
        } catch {
            throw .kafka("cannot create a Kafka consumer for \(brokers): \(error)")
        }
        try makePlan()
    }

    /// The consumer tuning of a replay (the topology's properties go over it).
    ///
    /// librdkafka 2.0 compares queued.min.messages with the length of the
    /// one consumer queue all partitions feed; above it every partition
    /// stops fetching and backs off (fetch.error.backoff.ms, 500 ms). A
    /// replay slower than the fetcher then idled ~40% of the time (measured
    /// with the mock). The prefetch is bounded by bytes instead (256 MB),
    /// and a backoff ends sooner.
    public static let consumerProperties: [String: String] = [
        "fetch.wait.max.ms": "20",
        "queued.min.messages": "10000000",
        "queued.max.messages.kbytes": "262144",
        "fetch.error.backoff.ms": "20",
        "fetch.max.bytes": "67108864",
        "max.partition.fetch.bytes": "4194304",
        "log_level": "3",
    ]

    /// The sum of every partition's range, in offsets.
    public var totalOffsets: Int64 { plans.reduce(0) { $0 + max($1.end - $1.start, 0) } }

    /// Offsets of the range behind the read position of the records applied
    /// so far (for progress; updated by `run` after each batch).
    public private(set) var consumedOffsets: Int64 = 0

    // MARK: Planning

    func makePlan() throws(ReplayError) {
        var partitions: [TopicPartition] = []
        for topic in topics {
            let count: Int
            do { count = try consumer.partitionCount(topic: topic, timeoutMs: 10_000) } catch {
                throw .kafka("cannot read the partitions of topic \"\(topic)\" at \(brokers): \(error)")
            }
            partitions += (0..<Int32(count)).map { TopicPartition(topic: topic, partition: $0) }
        }
        // One batched lookup rather than a round trip per partition (32
        // sequential queries took up to 45 ms against the in-process mock).
        var marks: [TopicPartition: (low: Int64, high: Int64)] = [:]
        if !partitions.isEmpty {
            do { marks = try consumer.watermarks(partitions) } catch {
                throw .kafka("cannot read the offsets of \(topics.joined(separator: ", ")) at \(brokers): \(error)")
            }
        }
        let nonEmpty = partitions.filter { marks[$0]!.low < marks[$0]!.high }

        // Can the broker look up timestamps? Every message has a timestamp
        // >= 0, so a lookup at 0 must answer a non-empty partition with an
        // offset below its high watermark.
        var timeIndex: [TopicPartition: Bool] = [:]
        let needsTimes: Bool = {
            if case .time = range.start { return true }
            if case .time = range.end { return true }
            return false
        }()
        if needsTimes, !nonEmpty.isEmpty {
            let probe = try lookup(nonEmpty, at: 0)
            for tp in nonEmpty {
                let o = probe[tp] ?? KafkaOffset.end
                timeIndex[tp] = o >= 0 && o < marks[tp]!.high
            }
        }
        var startAt: [TopicPartition: Int64] = [:]
        var endAt: [TopicPartition: Int64] = [:]
        if case .time(let t) = range.start {
            let usable = nonEmpty.filter { timeIndex[$0] == true }
            for (tp, o) in try lookup(usable, at: t) { startAt[tp] = o < 0 ? marks[tp]!.high : o }
        }
        if case .time(let t) = range.end {
            let usable = nonEmpty.filter { timeIndex[$0] == true }
            for (tp, o) in try lookup(usable, at: t) { endAt[tp] = o < 0 ? marks[tp]!.high : o }
        }

        var fallbacks = 0
        var explicit = 0
        for tp in partitions {
            let (low, high) = marks[tp]!
            var plan = PartitionPlan(topic: tp.topic, partition: tp.partition, low: low, high: high,
                                     start: low, end: high)
            let fallback = low < high && timeIndex[tp] == false
            if let given = range.startOffsets.last(where: { $0.partition == tp.partition && ($0.topic == nil || $0.topic == tp.topic) }) {
                explicit += 1
                plan.start = given.offset
                if given.offset < low {
                    notes.append("\(tp): start offset \(given.offset) is no longer retained (oldest is \(low)); reading from \(low)")
                    plan.start = low
                }
            } else if case .time(let t) = range.start {
                if fallback { plan.skipBeforeMs = t } else { plan.start = startAt[tp] ?? high }
            }
            if case .time(let t) = range.end {
                if fallback { plan.stopAtMs = t } else { plan.end = endAt[tp] ?? high }
            }
            if fallback && (plan.skipBeforeMs != nil || plan.stopAtMs != nil) { fallbacks += 1 }
            plan.start = min(plan.start, high)
            plans.append(plan)
        }
        if fallbacks > 0 {
            timeLookupFallback = true
            notes.append("""
                the broker at \(brokers) answered timestamp lookups with the end offset for \(fallbacks) partition(s) \
                (librdkafka's mock cluster does); reading them from the beginning and selecting messages by their \
                Kafka timestamp instead (from the first message with timestamp >= --start, until the first with \
                timestamp >= --end)
                """)
        }
        if explicit < range.startOffsets.count {
            let known = Set(partitions.map(\.partition))
            for s in range.startOffsets where !known.contains(s.partition) || (s.topic.map { !topics.contains($0) } ?? false) {
                notes.append("--start-offsets names \(s.topic.map { "\($0):" } ?? "")\(s.partition), which is not a partition of \(topics.joined(separator: ", "))")
            }
        }
    }

    func lookup(_ tps: [TopicPartition], at t: Int64) throws(ReplayError) -> [TopicPartition: Int64] {
        guard !tps.isEmpty else { return [:] }
        do {
            var out: [TopicPartition: Int64] = [:]
            for r in try consumer.offsetsForTimes(tps, timestampMs: t) { out[r.topicPartition] = r.offset }
            return out
        } catch {
            throw .kafka("offsets-for-times lookup at \(t) failed at \(brokers): \(error)")
        }
    }

    // MARK: Reading

    /// Per partition while reading.
    struct Cursor {
        var end: Int64
        /// The end planned at the start (progress accounting).
        var plannedEnd: Int64
        var position: Int64
        /// Kafka timestamps: messages before `skipBeforeMs` are skipped
        /// (while `skipping`); from `stopAtMs` on the partition is done.
        var skipBeforeMs: Int64, stopAtMs: Int64
        var skipping: Bool, done: Bool
    }

    /// Batches in flight between the polling thread and the applying one:
    /// the poller fills one while up to three wait or are being applied.
    static let batchCount = 4
    /// Messages per `poll`, and so per batch.
    static let pollBatch = 4096

    /// Reads the whole range into `session`, writing rows into `out`.
    /// Calls `progress` after every batch of messages.
    ///
    /// Kafka is read on a helper thread (`replay-poll`), which owns the
    /// consumer until `run` returns: it selects the records in range and
    /// copies them into batches that the calling thread applies to
    /// `session`. Consuming (librdkafka's batch call, freeing its messages)
    /// thus overlaps decoding and applying on another core. `session`, `out`,
    /// the session's callbacks, `onError` and `progress` are only used on
    /// the calling thread.
    /// Registry topics: called with each schema id of a batch before the
    /// batch is applied, to put it in the session's schema table (it
    /// returns once the id is known, retrying while the registry is down).
    public var resolveSchema: ((UInt32) -> Void)?

    public func run(into session: ReplaySession, output out: OutputFile?, progress: (() -> Void)? = nil) throws {
        try runInto(session, output: out, progress: progress)
    }

    /// Like `run(into:output:progress:)` for an entity whose keys are spread
    /// over partitions: each event goes to its partition's part.
    public func run(into session: PartsReplaySession, output out: OutputFile?, progress: (() -> Void)? = nil) throws {
        session.partitionOfSource = plans.map(\.partition)
        try runInto(session, output: out, progress: progress)
    }

    /// Specialized for each session type (internal, in this module), so the
    /// per-event call is direct.
    func runInto<S: KafkaReplaySink>(_ session: S, output out: OutputFile?, progress: (() -> Void)?) throws {
        let reader = Reader(consumer: consumer, plans: plans, copyKeys: session.usesMessageKey,
                            stallTimeoutSeconds: stallTimeoutSeconds)
        guard !reader.assignment.isEmpty else { return }
        do { try consumer.assign(reader.assignment) } catch { throw ReplayError.kafka("assign failed: \(error)") }
        reader.rebuildTable()

        let batches = (0..<Self.batchCount).map { _ in
            RecordBatch(recordCapacity: Self.pollBatch, byteCapacity: Self.pollBatch * 256, info: PollReport())
        }
        // Full batches go to this thread, applied ones back; each batch is
        // touched by one thread at a time (the rings order the hand-over).
        let full = SPSCRing<Int>(capacity: Self.batchCount), free = SPSCRing<Int>(capacity: Self.batchCount)
        for i in batches.indices { _ = free.tryPush(i) }
        let handoff = Handoff(reader: reader, batches: batches, full: full, free: free)
        let poller = StageThread(name: "replay-poll") { stop in
            handoff.reader.read(handoff.batches, full: handoff.full, free: handoff.free, stop: stop)
        }
        defer {
            poller.requestStop()
            poller.join()
            plans = reader.plans  // ends found by timestamp
            try? consumer.unassign()
        }
        var reported: Set<String> = []
        var scratch = JSONWriter(capacity: 0)
        while true {
            guard let index = full.popBlocking(timeout: nil) else { continue }
            let batch = batches[index]
            if let resolve = resolveSchema {
                var last: UInt32 = .max
                for r in 0..<batch.count {
                    if let id = BinarySource.schemaID(batch.value(batch.records[r])), id != last { last = id; resolve(id) }
                }
            }
            if let out { apply(batch, to: session, into: &out.writer) } else { apply(batch, to: session, into: &scratch) }
            delivered = batch.info.delivered
            consumedOffsets = batch.info.consumedOffsets
            skipped = batch.info.skipped
            for message in batch.info.errors where reported.insert(message).inserted { onError?(message) }
            let isLast = batch.info.isLast, failure = batch.info.failure
            _ = free.tryPush(index)
            if let failure { throw failure }
            if let out { try out.flushIfNeeded() }
            progress?()
            if isLast { break }
        }
    }

    @inline(__always)
    func apply<S: KafkaReplaySink>(_ batch: RecordBatch<PollReport>, to session: S, into out: inout JSONWriter) {
        for r in 0..<batch.count {
            let record = batch.records[r]
            session.consume(batch.value(record), key: batch.key(record), timestampMs: record.timestampMs,
                            source: record.source, offset: record.offset, into: &out)
        }
    }

    /// What the polling thread is given. `@unchecked`: the consumer and
    /// reader are handed over, not shared; the caller uses neither between
    /// starting the thread and joining it (both synchronize), and each batch
    /// is used by one side at a time, passed on through the rings.
    struct Handoff: @unchecked Sendable {
        let reader: Reader
        let batches: [RecordBatch<PollReport>]
        let full: SPSCRing<Int>
        let free: SPSCRing<Int>
    }

    /// What the polling thread reports with each batch of records (a
    /// `RecordBatch`: values, and keys if the session reads them, copied
    /// into one buffer, so librdkafka's messages are freed on the polling
    /// thread right away; a record's `source` is its partition plan's index).
    struct PollReport {
        var errors: [String] = []
        /// The reader's counters after this batch.
        var consumedOffsets: Int64 = 0, delivered = 0, skipped = 0
        /// Whether reading ended with this batch (done or failed).
        var isLast = false
        var failure: ReplayError?
    }

    /// The polling side of `run`: the consumer, each partition's cursor and
    /// counters. Used only by the polling thread while `run` runs.
    final class Reader {
        let consumer: KafkaConsumer
        var plans: [PartitionPlan]
        /// Whether record keys are copied (the session reads them).
        let copyKeys: Bool
        let stallTimeoutSeconds: Double
        let cursors: UnsafeMutablePointer<Cursor>
        /// consumer topic index * tableWidth + partition -> plan index (-1:
        /// not ours). Flat memory: no array retains per record.
        var table = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        var tableTopics = 0, tableWidth = 0
        var remaining = 0
        var newlyDone: [Int] = []
        var consumedOffsets: Int64 = 0
        var delivered = 0
        var skipped = 0

        init(consumer: KafkaConsumer, plans: [PartitionPlan], copyKeys: Bool, stallTimeoutSeconds: Double) {
            self.consumer = consumer
            self.plans = plans
            self.copyKeys = copyKeys
            self.stallTimeoutSeconds = stallTimeoutSeconds
            cursors = .allocate(capacity: max(plans.count, 1))
            for (i, p) in plans.enumerated() {
                (cursors + i).initialize(to: Cursor(
                    end: p.end, plannedEnd: p.end, position: p.start, skipBeforeMs: p.skipBeforeMs ?? .min,
                    stopAtMs: p.stopAtMs ?? .max, skipping: p.skipBeforeMs != nil, done: p.start >= p.end))
                if !cursors[i].done { remaining += 1 }
            }
        }

        deinit {
            cursors.deallocate()
            table.deallocate()
        }

        var assignment: [TopicPartitionOffset] {
            plans.indices.filter { !cursors[$0].done }.map {
                TopicPartitionOffset(topic: plans[$0].topic, partition: plans[$0].partition, offset: plans[$0].start)
            }
        }

        /// Polls until every partition is done (or reading fails, or `stop`),
        /// filling batches from `free` and handing them over through `full`.
        func read(_ batches: [RecordBatch<PollReport>], full: SPSCRing<Int>, free: SPSCRing<Int>, stop: StopToken) {
            var lastProgress = monotonicSeconds()
            var lastConsumed: Int64 = -1
            var handedOver: Int64 = -1
            var index = -1
            while !stop.isStopRequested {
                if index < 0 {
                    if let i = free.tryPop() {
                        index = i
                    } else {
                        guard let i = free.popBlocking(timeout: .milliseconds(100)) else { continue }
                        index = i
                        lastProgress = monotonicSeconds()  // waiting for the session is no stall
                    }
                    batches[index].reset(PollReport())
                }
                let batch = batches[index]
                var sink = Sink(reader: self, batch: batch)
                do {
                    try consumer.poll(into: &sink, maxMessages: KafkaReplaySource.pollBatch, timeoutMs: 100)
                } catch {
                    batch.info.failure = .kafka("Kafka poll failed: \(error)")
                }
                if !newlyDone.isEmpty {
                    let tps = newlyDone.map { TopicPartition(topic: plans[$0].topic, partition: plans[$0].partition) }
                    newlyDone.removeAll()
                    try? consumer.pause(tps)
                }
                let now = monotonicSeconds()
                if consumedOffsets != lastConsumed {
                    lastConsumed = consumedOffsets
                    lastProgress = now
                } else if batch.info.failure == nil, now - lastProgress > stallTimeoutSeconds {
                    let stuck = plans.indices.filter { !cursors[$0].done }.map {
                        "\(plans[$0].topic)[\(plans[$0].partition)] at \(cursors[$0].position) of \(cursors[$0].end)"
                    }
                    batch.info.failure = .kafka("no progress for \(Int(stallTimeoutSeconds)) s; unfinished: \(stuck.prefix(10).joined(separator: ", "))")
                }
                batch.info.consumedOffsets = consumedOffsets
                batch.info.delivered = delivered
                batch.info.skipped = skipped
                batch.info.isLast = remaining == 0 || batch.info.failure != nil
                // An idle poll keeps filling the same batch.
                if batch.count > 0 || !batch.info.errors.isEmpty || batch.info.isLast || consumedOffsets != handedOver {
                    handedOver = consumedOffsets
                    _ = full.pushBlocking(index, timeout: nil)  // never waits: it holds every batch
                    index = -1
                    if batch.info.isLast { return }
                }
            }
        }

        func rebuildTable() {
            let topics = consumer.topics
            tableTopics = topics.count
            tableWidth = (plans.map { Int($0.partition) }.max() ?? -1) + 1
            table.deallocate()
            table = .allocate(capacity: max(tableTopics * tableWidth, 1))
            table.initialize(repeating: -1, count: max(tableTopics * tableWidth, 1))
            for (i, p) in plans.enumerated() {
                if let t = topics.firstIndex(of: p.topic) { table[t * tableWidth + Int(p.partition)] = Int32(i) }
            }
        }

        @inline(__always)
        func planIndex(_ topicIndex: Int, _ partition: Int32) -> Int {
            if topicIndex >= tableTopics { rebuildTable() }
            guard topicIndex >= 0, topicIndex < tableTopics, partition >= 0, Int(partition) < tableWidth else { return -1 }
            return Int(table[topicIndex * tableWidth + Int(partition)])
        }

        func markDone(_ i: Int) {
            guard !cursors[i].done else { return }
            cursors[i].done = true
            consumedOffsets += max(cursors[i].plannedEnd - cursors[i].position, 0)
            cursors[i].position = max(cursors[i].position, cursors[i].end)
            remaining -= 1
            newlyDone.append(i)
        }

        /// Selects the records in range into `batch`.
        @inline(__always)
        func receive(_ event: KafkaConsumerEvent, into batch: RecordBatch<PollReport>) {
            switch event {
            case .message(let m):
                let i = planIndex(m.topicIndex, m.partition)
                guard i >= 0 else { return }
                let c = cursors + i
                if c.pointee.done { return }
                if m.offset >= c.pointee.end {
                    markDone(i)
                    return
                }
                if c.pointee.skipping {
                    if m.timestampMs < c.pointee.skipBeforeMs {
                        consumedOffsets += m.offset + 1 - c.pointee.position
                        c.pointee.position = m.offset + 1
                        skipped += 1
                        if c.pointee.position >= c.pointee.end { markDone(i) }
                        return
                    }
                    c.pointee.skipping = false
                }
                if m.timestampMs >= c.pointee.stopAtMs {
                    plans[i].end = m.offset
                    c.pointee.end = m.offset
                    markDone(i)
                    return
                }
                batch.append(source: Int32(i), partition: m.partition, offset: m.offset, timestampMs: m.timestampMs,
                             key: copyKeys ? m.key : nil, value: m.payload)
                delivered += 1
                consumedOffsets += m.offset + 1 - c.pointee.position
                c.pointee.position = m.offset + 1
                if c.pointee.position >= c.pointee.end { markDone(i) }
            case .partitionEOF(let eof):
                let i = planIndex(eof.topicIndex, eof.partition)
                guard i >= 0, !cursors[i].done else { return }
                if eof.nextOffset >= cursors[i].end { markDone(i) }
                // A fallback end time never reached: the range ends at the
                // high watermark fixed at the start.
            case .error(let e):
                batch.info.errors.append("\(e)")
            }
        }
    }

    struct Sink: KafkaEventSink {
        // Unmanaged, used through _withUnsafeGuaranteedRef: both outlive the
        // poll, and handing them on costs no retain/release per record.
        let reader: Unmanaged<Reader>
        let batch: Unmanaged<RecordBatch<PollReport>>

        init(reader: Reader, batch: RecordBatch<PollReport>) {
            self.reader = .passUnretained(reader)
            self.batch = .passUnretained(batch)
        }

        @inline(__always)
        mutating func receive(_ event: KafkaConsumerEvent) {
            reader._withUnsafeGuaranteedRef { r in batch._withUnsafeGuaranteedRef { b in r.receive(event, into: b) } }
        }
    }

    /// Commits each partition's end offset for the consumer's group (the
    /// `group` given at init), so a worker of that group starts where this
    /// replay ended.
    public func commitEndOffsets() throws(ReplayError) {
        let offsets = plans.map { TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: $0.end) }
        do { try consumer.commit(offsets: offsets) } catch {
            throw .kafka("committing the end offsets failed: \(error)")
        }
    }

    /// Closes the consumer.
    public func close() {
        try? consumer.close()
    }

}

private func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// What a Kafka replay hands its messages to.
protocol KafkaReplaySink: AnyObject {
    var usesMessageKey: Bool { get }
    func consume(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer?, timestampMs: Int64,
                 source: Int32, offset: Int64, into out: inout JSONWriter)
}

extension ReplaySession: KafkaReplaySink {}
extension PartsReplaySession: KafkaReplaySink {}
