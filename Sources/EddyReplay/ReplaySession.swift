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

    /// - Parameter trackOffsets: keep each key's last applied Kafka
    ///   (source, offset) (see `lastApplied(_:)`); for `consume(_:key:...)`.
    public init(topology: Topology, emit: EmitMode, labels: LabelSet? = nil, expectedKeys: Int = 1 << 16,
                trackOffsets: Bool = false) {
        let engine = FeatureEngine(topology: topology, expectedKeys: expectedKeys)
        self.engine = engine
        let decoders = (0..<Self.depth).map { _ in engine.makeDecoder() }
        self.decoders = decoders
        let inFlight = UnsafeMutablePointer<InFlight>.allocate(capacity: Self.depth)
        for i in 0..<Self.depth {
            (inFlight + i).initialize(to: InFlight(
                decoder: .passUnretained(decoders[i]), bytes: .allocate(byteCount: 4096, alignment: 16), capacity: 4096))
        }
        self.inFlight = inFlight
        self.emit = emit
        self.labels = labels
        self.tracksOffsets = trackOffsets
        if case .messageKey = topology.key { usesMessageKey = true } else { usesMessageKey = false }
        labels?.attach(to: engine)
    }

    /// The column names of every row, in order, as the JSON Lines hold them
    /// (for a CSV header).
    public var columns: [String] {
        let features = engine.topology.features.flatMap(\.outputNames)
        if let labels { return labels.fieldNames() + features }
        switch emit {
        case .rows: return ["key", "ts"] + features
        case .final, .redis: return ["key", "key_time"] + features
        }
    }

    /// One event on its way through the lookahead pipeline: its own copy of
    /// the bytes and its own decoder, so several can be in flight.
    struct InFlight {
        /// Kept alive by `decoders`. Unmanaged: used through
        /// `_withUnsafeGuaranteedRef`, handing it to the engine costs no
        /// retain/release per event.
        let decoder: Unmanaged<EventDecoder>
        var bytes: UnsafeMutableRawPointer
        var capacity: Int
        var length = 0
        var line = 0
        var rejected: RejectReason?
        /// Kafka events: the caller's source number (-1 for file lines) and offset.
        var source: Int32 = -1
        var offset: Int64 = -1

        var message: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: length) }
    }

    /// Events are decoded three steps before they are applied. Key lookups
    /// are memory-latency bound, so each step starts one load for a later
    /// event: its index entry, then its slot record, then its state blob;
    /// the apply then finds all three in cache.
    static let depth = 4
    let decoders: [EventDecoder]
    let inFlight: UnsafeMutablePointer<InFlight>
    var pending = 0
    var head = 0

    deinit {
        for i in 0..<Self.depth { inFlight[i].bytes.deallocate() }
        inFlight.deinitialize(count: Self.depth)
        inFlight.deallocate()
    }

    /// Applies one event (`depth - 1` events later); in rows mode also
    /// writes rows to `out`. Call `finish` after the last event.
    @inline(__always)
    public func consume(_ message: UnsafeRawBufferPointer, into out: inout JSONWriter) {
        lineNumber += 1
        let e = inFlight + head
        if message.count > e.pointee.capacity {
            e.pointee.bytes.deallocate()
            e.pointee.capacity = message.count * 2
            e.pointee.bytes = .allocate(byteCount: e.pointee.capacity, alignment: 16)
        }
        if message.count > 0 { e.pointee.bytes.copyMemory(from: message.baseAddress!, byteCount: message.count) }
        e.pointee.length = message.count
        e.pointee.line = lineNumber
        e.pointee.rejected = e.pointee.decoder._withUnsafeGuaranteedRef { $0.decode(e.pointee.message) }
        advance(into: &out)
    }

    /// Like `consume(_:into:)` for a Kafka message: its key and timestamp
    /// (used when the topology reads `key: kafka` / `time: kafka`), and a
    /// caller-chosen source number (>= 0, e.g. a partition index) and offset
    /// that dead letters and, with `trackOffsets`, `lastApplied` report.
    ///
    /// The same lookahead pipeline as `consume(_:into:)`, kept separate so
    /// the file path stays as it is. One session takes events from one kind
    /// of source.
    @inline(__always)
    public func consume(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer?, timestampMs: Int64,
                        source: Int32, offset: Int64, into out: inout JSONWriter) {
        let e = inFlight + head
        let keyCount = usesMessageKey ? (key?.count ?? 0) : 0
        let need = message.count + keyCount
        if need > e.pointee.capacity {
            e.pointee.bytes.deallocate()
            e.pointee.capacity = need * 2
            e.pointee.bytes = .allocate(byteCount: e.pointee.capacity, alignment: 16)
        }
        if message.count > 0 { e.pointee.bytes.copyMemory(from: message.baseAddress!, byteCount: message.count) }
        var messageKey: UnsafeRawBufferPointer? = nil
        if usesMessageKey, let key {
            if keyCount > 0 { (e.pointee.bytes + message.count).copyMemory(from: key.baseAddress!, byteCount: keyCount) }
            messageKey = UnsafeRawBufferPointer(start: e.pointee.bytes + message.count, count: keyCount)
        }
        e.pointee.length = message.count
        e.pointee.source = source
        e.pointee.offset = offset
        e.pointee.rejected = e.pointee.decoder._withUnsafeGuaranteedRef {
            $0.decode(e.pointee.message, messageKey: messageKey, messageTimestamp: timestampMs)
        }
        advance(into: &out)
    }

    /// The event just decoded at `head` enters the pipeline: one prefetch
    /// step for each event in flight, then the oldest is applied.
    @inline(__always)
    func advance(into out: inout JSONWriter) {
        let depth = Self.depth
        let engine = self.engine
        if inFlight[head].rejected == nil {
            inFlight[head].decoder._withUnsafeGuaranteedRef { engine.prefetchIndex(for: $0) }
        }
        if pending >= 1 {
            let p = inFlight + (head + depth - 1) % depth
            if p.pointee.rejected == nil { p.pointee.decoder._withUnsafeGuaranteedRef { engine.prefetchSlot(for: $0) } }
        }
        if pending >= 2 {
            let p = inFlight + (head + depth - 2) % depth
            if p.pointee.rejected == nil { p.pointee.decoder._withUnsafeGuaranteedRef { engine.prefetchState(for: $0) } }
        }
        head = (head + 1) % depth
        pending += 1
        if pending == depth {
            complete(inFlight + head, into: &out)
            pending -= 1
        }
    }

    /// Applies the events still in flight.
    func drain(into out: inout JSONWriter) {
        while pending > 0 {
            complete(inFlight + (head + Self.depth - pending) % Self.depth, into: &out)
            pending -= 1
        }
    }

    @inline(__always)
    func complete(_ p: UnsafeMutablePointer<InFlight>, into out: inout JSONWriter) {
        let e = p.pointee
        if let reason = e.rejected {
            summary.invalid[reason, default: 0] += 1
            reject(e, reason)
            return
        }
        e.decoder._withUnsafeGuaranteedRef { complete(e, decoded: $0, into: &out) }
    }

    @inline(__always)
    func complete(_ e: InFlight, decoded d: EventDecoder, into out: inout JSONWriter) {
        let slot = engine.slot(for: d, create: true)
        let ts = d.timestamp
        if engine.isLate(slot, ts: ts) {
            summary.late += 1
            reject(e, .late)
            return
        }
        summary.accepted += 1
        if let labels { labels.emitBefore(slot: slot, ts: ts, engine: engine) }
        if emit == .rows && labels == nil {
            out.raw("{\"key\":")
            out.string(d.key)
            out.raw(",\"ts\":")
            out.int(ts)
            out.raw(UInt8(ascii: ","))
            engine.writeFeatures(slot, at: ts, into: &out)
            out.raw("}\n")
        }
        engine.apply(slot, from: d)
        if tracksOffsets { recordApplied(slot, source: e.source, offset: e.offset) }
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
        drain(into: &out)
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
            output.writer.string(store.keyBytes(s))
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
