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

    /// Applies one event; in rows mode also writes its row to `out`.
    @inline(__always)
    public func consume(_ message: UnsafeRawBufferPointer, into out: inout JSONWriter) {
        lineNumber += 1
        if let reason = engine.decode(message) {
            summary.invalid[reason, default: 0] += 1
            onReject?(lineNumber, reason, message)
            return
        }
        let slot = engine.slotForCurrentKey(create: true)
        let ts = engine.decoder.timestamp
        if engine.isLate(slot, ts: ts) {
            summary.late += 1
            onReject?(lineNumber, .late, message)
            return
        }
        summary.accepted += 1
        if let labels { labels.emitBefore(slot: slot, ts: ts, engine: engine) }
        if emit == .rows && labels == nil {
            out.raw("{\"key\":")
            out.string(UnsafeRawBufferPointer(engine.decoder.key))
            out.raw(",\"ts\":")
            out.int(ts)
            out.raw(UInt8(ascii: ","))
            engine.writeFeatures(slot, at: ts, into: &out)
            out.raw("}\n")
        }
        engine.apply(slot)
    }

    /// Writes what is written at the end: final lines or label rows.
    public func finish(to output: OutputFile) throws(ReplayError) {
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
