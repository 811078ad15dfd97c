import EddyCore

/// The hash fields Eddy stores for an entity (besides the fence), in one
/// place: `_state`, `_fp`, `_K`, then the point columns read at the key time
/// (see `EntityLayout`); with `sink.layout: lean`, only `_state` and `_fp`. The worker's flush, the backfill and `eddy verify`
/// all go through it, so they cannot drift apart.
///
/// Reuses its buffers; use one per thread.
public struct EntityFields {
    let engine: FeatureEngine
    let features: [FeatureSpec]
    let stateName = Array(EntityLayout.stateField.utf8)
    let fingerprintName = Array(EntityLayout.fingerprintField.utf8)
    let keyTimeName = Array(EntityLayout.keyTimeField.utf8)
    /// This topology's fingerprint, the value of `_fp`.
    public let fingerprint: [UInt8]
    /// `sink.layout: lean`: no `_K` and no point columns.
    let lean: Bool
    /// Per column over all features (`forEachColumn`'s index): whether it
    /// is stored (`EntityLayout.isStoredColumn`, decided once here: asking
    /// it per column copied the feature's spec, with its reference counts,
    /// on every write) and its name's range in `names`.
    let isStored: [Bool]
    let names: [UInt8]
    let nameRanges: [Range<Int>]
    var values = JSONWriter(capacity: 4096)
    /// Per stored column written by the last `forEach`: its index and where
    /// its value starts in `values` (filled by index, not appended).
    var written: [(column: Int, start: Int)]

    public init(engine: FeatureEngine) {
        self.engine = engine
        self.features = engine.topology.features
        self.fingerprint = Array(EntityLayout.fingerprint(engine.topology).utf8)
        self.lean = engine.topology.sink.layout == .lean
        var stored: [Bool] = [], names: [UInt8] = [], ranges: [Range<Int>] = []
        for f in features {
            for (c, name) in f.outputNames.enumerated() {
                stored.append(EntityLayout.isStoredColumn(f, column: c))
                let start = names.count
                names.append(contentsOf: name.utf8)
                ranges.append(start..<names.count)
            }
        }
        self.isStored = stored
        self.names = names
        self.nameRanges = ranges
        self.written = Array(repeating: (0, 0), count: stored.count)
    }

    /// Calls `body(name, value)` for every stored field of the live key in
    /// `slot`, which must have a key time. The buffers are valid only
    /// during the call.
    public mutating func forEach(
        slot: Int32, _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void
    ) {
        let store = engine.store
        let k = engine.keyTime(slot)!
        let blob = UnsafeRawPointer(store.blob(slot))
        if lean {
            // Nothing rendered: the lean layout's whole point.
            stateName.withUnsafeBytes { body($0, UnsafeRawBufferPointer(start: blob, count: store.length(slot))) }
            fingerprintName.withUnsafeBytes { n in fingerprint.withUnsafeBytes { body(n, $0) } }
            return
        }
        // Take the buffers out (not copy), so reuse does not reallocate.
        var w = JSONWriter(capacity: 0)
        var cols: [(column: Int, start: Int)] = []
        swap(&w, &values)
        swap(&cols, &written)
        w.reset()
        w.int(k)
        let stored = isStored
        var n = 0
        engine.forEachColumn(blob: blob, at: k, into: &w) { w, column, _ in
            guard stored[column] else { return false }
            cols[n] = (column, w.bytes.count)
            n += 1
            return true
        }
        let keyTimeEnd = n > 0 ? cols[0].start : w.bytes.count
        stateName.withUnsafeBytes { body($0, UnsafeRawBufferPointer(start: blob, count: store.length(slot))) }
        fingerprintName.withUnsafeBytes { n in fingerprint.withUnsafeBytes { body(n, $0) } }
        w.bytes.withUnsafeBytes { all in
            keyTimeName.withUnsafeBytes { body($0, UnsafeRawBufferPointer(rebasing: all[0..<keyTimeEnd])) }
            names.withUnsafeBytes { names in
                // Columns are written back to back: each ends where the next starts.
                for i in 0..<n {
                    let end = i + 1 < n ? cols[i + 1].start : all.count
                    body(UnsafeRawBufferPointer(rebasing: names[nameRanges[cols[i].column]]),
                         UnsafeRawBufferPointer(rebasing: all[cols[i].start..<end]))
                }
            }
        }
        values = w
        written = cols
    }
}
