import Foundation

import EddyCore

/// What `eddy replay` writes.
public enum EmitMode: String, Sendable, CaseIterable {
    /// One point-in-time row per accepted event (features before it).
    case rows
    /// One line per key: features read at `T = K` after all events.
    case final
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
    var lineNumber = 0

    public init(topology: Topology, emit: EmitMode, labels: LabelSet? = nil, expectedKeys: Int = 1 << 16) {
        self.engine = FeatureEngine(topology: topology, expectedKeys: expectedKeys)
        self.emit = emit
        self.labels = labels
        labels?.attach(to: engine)
    }

    /// One event on its way through the lookahead pipeline: its own copy of
    /// the bytes and its own decoder, so several can be in flight.
    struct InFlight {
        unowned(unsafe) let decoder: EventDecoder  // kept alive by `decoders`
        var bytes: UnsafeMutableRawPointer
        var capacity: Int
        var length = 0
        var line = 0
        var rejected: RejectReason?

        var message: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: length) }
    }

    /// Events are decoded three steps before they are applied. Key lookups
    /// are memory-latency bound, so each step starts one load for a later
    /// event: its index entry, then its slot record, then its state blob;
    /// the apply then finds all three in cache.
    static let depth = 4
    lazy var decoders: [EventDecoder] = (0..<Self.depth).map { _ in engine.makeDecoder() }
    lazy var inFlight: UnsafeMutablePointer<InFlight> = {
        let p = UnsafeMutablePointer<InFlight>.allocate(capacity: Self.depth)
        for i in 0..<Self.depth {
            p.advanced(by: i).initialize(to: InFlight(
                decoder: decoders[i], bytes: .allocate(byteCount: 4096, alignment: 16), capacity: 4096))
        }
        return p
    }()
    var pending = 0
    var head = 0

    deinit {
        if pending >= 0, decoders.count == Self.depth {
            for i in 0..<Self.depth { inFlight[i].bytes.deallocate() }
            inFlight.deinitialize(count: Self.depth)
            inFlight.deallocate()
        }
    }

    /// Applies one event (`depth - 1` events later); in rows mode also
    /// writes rows to `out`. Call `finish` after the last event.
    @inline(__always)
    public func consume(_ message: UnsafeRawBufferPointer, into out: inout JSONWriter) {
        lineNumber += 1
        let depth = Self.depth
        let e = inFlight + head
        if message.count > e.pointee.capacity {
            e.pointee.bytes.deallocate()
            e.pointee.capacity = message.count * 2
            e.pointee.bytes = .allocate(byteCount: e.pointee.capacity, alignment: 16)
        }
        if message.count > 0 { e.pointee.bytes.copyMemory(from: message.baseAddress!, byteCount: message.count) }
        e.pointee.length = message.count
        e.pointee.line = lineNumber
        e.pointee.rejected = e.pointee.decoder.decode(e.pointee.message)
        if e.pointee.rejected == nil { engine.prefetchIndex(for: e.pointee.decoder) }
        if pending >= 1 {
            let p = inFlight + (head + depth - 1) % depth
            if p.pointee.rejected == nil { engine.prefetchSlot(for: p.pointee.decoder) }
        }
        if pending >= 2 {
            let p = inFlight + (head + depth - 2) % depth
            if p.pointee.rejected == nil { engine.prefetchState(for: p.pointee.decoder) }
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
            onReject?(e.line, reason, e.message)
            return
        }
        let d = e.decoder
        let slot = engine.slot(for: d, create: true)
        let ts = d.timestamp
        if engine.isLate(slot, ts: ts) {
            summary.late += 1
            onReject?(e.line, .late, e.message)
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
    }

    /// Writes what is written at the end: final lines or label rows.
    public func finish(to output: OutputFile) throws(ReplayError) {
        drain(into: &output.writer)
        summary.keys = engine.store.count - (labels?.unseenKeys(engine: engine) ?? 0)
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
