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
    var values = JSONWriter(capacity: 4096)
    var columns: [(name: [UInt8], start: Int)] = []

    public init(engine: FeatureEngine) {
        self.engine = engine
        self.features = engine.topology.features
        self.fingerprint = Array(EntityLayout.fingerprint(engine.topology).utf8)
        self.lean = engine.topology.sink.layout == .lean
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
        var cols: [(name: [UInt8], start: Int)] = []
        swap(&w, &values)
        swap(&cols, &columns)
        w.reset()
        cols.removeAll(keepingCapacity: true)
        w.int(k)
        let features = self.features
        engine.forEachColumn(blob: blob, at: k, into: &w) { w, f, c, name in
            guard EntityLayout.isStoredColumn(features[f], column: c) else { return false }
            cols.append((name, w.bytes.count))
            return true
        }
        let keyTimeEnd = cols.first?.start ?? w.bytes.count
        stateName.withUnsafeBytes { body($0, UnsafeRawBufferPointer(start: blob, count: store.length(slot))) }
        fingerprintName.withUnsafeBytes { n in fingerprint.withUnsafeBytes { body(n, $0) } }
        w.bytes.withUnsafeBytes { all in
            keyTimeName.withUnsafeBytes { body($0, UnsafeRawBufferPointer(rebasing: all[0..<keyTimeEnd])) }
            // Columns are written back to back: each ends where the next starts.
            for (i, column) in cols.enumerated() {
                let end = i + 1 < cols.count ? cols[i + 1].start : all.count
                column.name.withUnsafeBytes { body($0, UnsafeRawBufferPointer(rebasing: all[column.start..<end])) }
            }
        }
        values = w
        columns = cols
    }
}
