import Foundation

import EddyCore

/// What `eddy replay` writes.
public enum EmitMode: String, Sendable, CaseIterable {
    /// One point-in-time row per accepted event (features before it).
    case rows
    /// One line per key: features read at `T = K` after all events.
    case final
    /// Every key's final state written to Redis with the worker's fenced
    /// writes (Kafka sources only: the fences are Kafka offsets).
    case redis
}

/// Counts a replay reports in its summary.
public struct ReplaySummary: Sendable, Equatable {
    public var accepted = 0
    public var late = 0
    public var invalid: [RejectReason: Int] = [:]
    public var keys = 0
    public var seconds = 0.0

    public var invalidTotal: Int { invalid.values.reduce(0, +) }
    public var events: Int { accepted + late + invalidTotal }

    public var description: String {
        let rate = seconds > 0 ? Double(events) / seconds : 0
        var s = "events \(events), accepted \(accepted), late \(late), invalid \(invalidTotal), keys \(keys), "
        s += "\(String(format: "%.3f", seconds)) s, \(Int(rate)) events/s"
        let reasons = invalid.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }
        if !reasons.isEmpty { s += " (invalid: \(reasons.joined(separator: ", ")))" }
        return s
    }
}

/// Drives a `FeatureEngine` over events in arrival order and writes rows,
/// final features or label rows as JSON Lines. The same engine code as the
/// stream worker, so backfills match online values.
public final class ReplaySession {
    public let engine: FeatureEngine
    public let emit: EmitMode
    public private(set) var summary = ReplaySummary()
    let labels: LabelSet?
    /// Rejected events, for a dead-letter file: (line number, reason).
    public var onReject: ((Int, RejectReason, UnsafeRawBufferPointer) -> Void)?
    /// Rejected Kafka events: (source, offset, reason, value), where source
    /// is the number the caller gave with the event.
    public var onKafkaReject: ((Int32, Int64, RejectReason, UnsafeRawBufferPointer) -> Void)?
    var lineNumber = 0
    /// Whether each key's last applied (source, offset) is kept, for fenced
    /// writes to Redis.
    let tracksOffsets: Bool
    var appliedSource: [Int32] = []
    var appliedOffset: [Int64] = []
    /// Whether decoding needs the Kafka message key (`key: kafka`).
    let usesMessageKey: Bool
    /// With `key: {hash: ...}`: write the raw keys (`--raw-keys`) instead of their HMACs.
    let writesRawKeys: Bool
    /// With `writesRawKeys` and emit final: each slot's raw key.
    var rawKeyOfSlot: [Int32: [UInt8]] = [:]

    /// - Parameter trackOffsets: keep each key's last applied Kafka
    ///   (source, offset) (see `lastApplied(_:)`); for file lines, source 0
    ///   and the line number over every input.
    /// - Parameter binary: Avro or Protobuf messages (nil: JSON).
    public init(topology: Topology, emit: EmitMode, labels: LabelSet? = nil, expectedKeys: Int = 1 << 16,
                trackOffsets: Bool = false, binary: BinarySource? = nil, rawKeys: Bool = false) {
        let engine = FeatureEngine(topology: topology, expectedKeys: expectedKeys, binary: binary)
        self.engine = engine
        self.applier = LookaheadApplier(engine: engine) { InFlight(bytes: .allocate(byteCount: 4096, alignment: 16), capacity: 4096) }
        self.emit = emit
        self.labels = labels
        self.tracksOffsets = trackOffsets
        if case .messageKey = topology.key { usesMessageKey = true } else { usesMessageKey = false }
        writesRawKeys = rawKeys && topology.keyHashing != nil
        labels?.attach(to: engine, rawKeys: writesRawKeys)
    }

    /// The column names of every row, in order, as the JSON Lines hold them
    /// (for a CSV header): the feature columns, then the derived columns.
    public var columns: [String] {
        let features = engine.topology.outputColumns
        if let labels { return labels.fieldNames() + features }
        switch emit {
        case .rows: return ["key", "ts"] + features
        case .final, .redis: return ["key", "key_time"] + features
        }
    }

    /// One event on its way through the lookahead pipeline: its own copy of
    /// the bytes (a file's line buffer is reused before it is applied).
    struct InFlight {
        var bytes: UnsafeMutableRawPointer
        var capacity: Int
        var length = 0
        var line = 0
        /// Kafka events: the caller's source number (-1 for file lines) and offset.
        var source: Int32 = -1
        var offset: Int64 = -1

        init(bytes: UnsafeMutableRawPointer, capacity: Int) {
            self.bytes = bytes
            self.capacity = capacity
        }

        var message: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: length) }

        /// Makes room for `count` bytes.
        @inline(__always)
        mutating func reserve(_ count: Int) {
            guard count > capacity else { return }
            bytes.deallocate()
            capacity = count * 2
            bytes = .allocate(byteCount: capacity, alignment: 16)
        }
    }

    /// Decodes each event a few events before applying it, prefetching its
    /// key's state (see `LookaheadApplier`).
    let applier: LookaheadApplier<InFlight>

    deinit {
        applier.forEachEvent { $0.bytes.deallocate() }
    }

    /// Applies one event (`depth - 1` events later); in rows mode also
    /// writes rows to `out`. Call `finish` after the last event.
    @inline(__always)
    public func consume(_ message: UnsafeRawBufferPointer, into out: inout JSONWriter) {
        lineNumber += 1
        let line = lineNumber
        withHooks(&out) { hooks in
            applier.push(&hooks) { e, decoder in
                e.reserve(message.count)
                if message.count > 0 { e.bytes.copyMemory(from: message.baseAddress!, byteCount: message.count) }
                e.length = message.count
                e.line = line
                return decoder.decode(e.message)
            }
        }
    }

    /// Like `consume(_:into:)` for a Kafka message: its key and timestamp
    /// (used when the topology reads `key: kafka` / `time: kafka`), and a
    /// caller-chosen source number (>= 0, e.g. a partition index) and offset
    /// that dead letters and, with `trackOffsets`, `lastApplied` report.
    /// One session takes events from one kind of source.
    @inline(__always)
    public func consume(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer?, timestampMs: Int64,
                        source: Int32, offset: Int64, into out: inout JSONWriter) {
        let usesMessageKey = self.usesMessageKey
        withHooks(&out) { hooks in
            applier.push(&hooks) { e, decoder in
                let keyCount = usesMessageKey ? (key?.count ?? 0) : 0
                e.reserve(message.count + keyCount)
                if message.count > 0 { e.bytes.copyMemory(from: message.baseAddress!, byteCount: message.count) }
                var messageKey: UnsafeRawBufferPointer? = nil
                if usesMessageKey, let key {
                    if keyCount > 0 { (e.bytes + message.count).copyMemory(from: key.baseAddress!, byteCount: keyCount) }
                    messageKey = UnsafeRawBufferPointer(start: e.bytes + message.count, count: keyCount)
                }
                e.length = message.count
                e.source = source
                e.offset = offset
                return decoder.decode(e.message, messageKey: messageKey, messageTimestamp: timestampMs)
            }
        }
    }

    @inline(__always)
    func withHooks(_ out: inout JSONWriter, _ body: (inout Hooks) -> Void) {
        withUnsafeMutablePointer(to: &out) { out in
            var hooks = Hooks(session: .passUnretained(self), out: out)
            body(&hooks)
        }
    }

    /// Replay's side of each apply (`willApply`, `finished`). Unmanaged,
    /// used through `_withUnsafeGuaranteedRef`: the session outlives every
    /// call, and reaching it costs no retain/release per event.
    struct Hooks: ApplyHooks {
        let session: Unmanaged<ReplaySession>
        let out: UnsafeMutablePointer<JSONWriter>

        var createsKeys: Bool { true }

        @inline(__always)
        func willApply(_ e: InFlight, slot: Int32, decoded d: EventDecoder) {
            session._withUnsafeGuaranteedRef { $0.willApply(slot, decoded: d, into: &out.pointee) }
        }

        @inline(__always)
        func finished(_ e: InFlight, _ outcome: ApplyOutcome, decoded: EventDecoder) {
            session._withUnsafeGuaranteedRef { $0.finished(e, outcome) }
        }
    }

    /// Counts the event and, for rows or labels, reads the state before it.
    @inline(__always)
    func willApply(_ slot: Int32, decoded d: EventDecoder, into out: inout JSONWriter) {
        let ts = d.timestamp
        summary.accepted += 1
        if let labels { labels.emitBefore(slot: slot, ts: ts, engine: engine) }
        if writesRawKeys, emit == .final, labels == nil, rawKeyOfSlot[slot] == nil { rawKeyOfSlot[slot] = Array(d.rawKey) }
        if emit == .rows && labels == nil {
            out.raw("{\"key\":")
            out.string(writesRawKeys ? d.rawKey : d.key)
            out.raw(",\"ts\":")
            out.int(ts)
            out.raw(UInt8(ascii: ","))
            engine.writeFeatures(slot, at: ts, into: &out)
            out.raw("}\n")
        }
    }

    /// Counts and dead-letters refused events; keeps applied offsets.
    @inline(__always)
    func finished(_ e: InFlight, _ outcome: ApplyOutcome) {
        switch outcome {
        case .applied(let slot):
            // File lines count as one source whose offsets are line numbers
            // (over every input file, from 1): a file backfill's fence.
            if tracksOffsets { recordApplied(slot, source: max(e.source, 0), offset: e.source >= 0 ? e.offset : Int64(e.line)) }
        case .late:
            summary.late += 1
            reject(e, .late)
        case .invalid(let reason):
            summary.invalid[reason, default: 0] += 1
            reject(e, reason)
        case .skipped, .deferred:
            preconditionFailure("replay creates every key and skips no event")
        }
    }

    func reject(_ e: InFlight, _ reason: RejectReason) {
        if e.source >= 0 {
            onKafkaReject?(e.source, e.offset, reason, e.message)
        } else {
            onReject?(e.line, reason, e.message)
        }
    }

    func recordApplied(_ slot: Int32, source: Int32, offset: Int64) {
        let i = Int(slot)
        if i >= appliedOffset.count {
            let grow = max(i + 1 - appliedOffset.count, appliedOffset.count)
            appliedOffset.append(contentsOf: repeatElement(-1, count: grow))
            appliedSource.append(contentsOf: repeatElement(-1, count: grow))
        }
        appliedSource[i] = source
        appliedOffset[i] = offset
    }

    /// The (source, offset) of the last event applied to `slot`, for a
    /// session made with `trackOffsets`; nil if none.
    public func lastApplied(_ slot: Int32) -> (source: Int32, offset: Int64)? {
        let i = Int(slot)
        guard i >= 0, i < appliedOffset.count, appliedSource[i] >= 0 else { return nil }
        return (appliedSource[i], appliedOffset[i])
    }

    /// Applies the events still in the lookahead pipeline (rows go to
    /// `out`) and counts keys. `finish(to:)` does this first; call it
    /// directly to read the engine's final state without writing it.
    public func endOfInput(into out: inout JSONWriter) {
        withHooks(&out) { applier.drain(&$0) }
        summary.keys = engine.store.count - (labels?.unseenKeys(engine: engine) ?? 0)
    }

    /// Writes what is written at the end: final lines or label rows.
    public func finish(to output: OutputFile) throws(ReplayError) {
        endOfInput(into: &output.writer)
        if let labels {
            labels.emitRemaining(engine: engine)
            try labels.write(to: output)
            return
        }
        guard emit == .final else { return }
        let store = engine.store
        for s in 0..<Int32(store.slotLimit) where store.isLive(s) {
            guard let k = engine.keyTime(s) else { continue }
            output.writer.raw("{\"key\":")
            if writesRawKeys, let raw = rawKeyOfSlot[s] {
                raw.withUnsafeBytes { output.writer.string($0) }
            } else {
                output.writer.string(store.keyBytes(s))
            }
            output.writer.raw(",\"key_time\":")
            output.writer.int(k)
            output.writer.raw(UInt8(ascii: ","))
            engine.writeFeatures(s, at: k, into: &output.writer)
            output.writer.raw("}\n")
            try output.flushIfNeeded()
        }
    }

    public func setSeconds(_ s: Double) { summary.seconds = s }
}
