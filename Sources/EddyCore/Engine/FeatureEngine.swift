/// Applies events to per-key state and reads features at a time `T`,
/// exactly as SEMANTICS.md defines them. No I/O, no clocks, no threads:
/// the stream worker and the replay tool drive the same engine.
///
/// Use from one thread. The usual sequence per message is `decode`,
/// `slotForCurrentKey`, `isLate`, optionally a read, then `apply`.
public final class FeatureEngine {
    public let topology: Topology
    public let decoder: EventDecoder
    public let store: StateStore
    let features: [CompiledFeature]
    let filters: [CompiledFilter?]
    let latenessMs: Int64
    /// `K` plus every feature's empty section: appended to a key header to
    /// make a new key's blob.
    let emptyState: [UInt8]
    /// A whole blob for an unseen key with an empty key, for reads.
    let emptyBlob: [UInt8]
    var scratch: [UInt8] = []
    /// Every column's JSON key (`"name":`, escaped once), over all
    /// features in column order, in one allocation that lives as long as
    /// the engine: `forEachColumn` hands its body a buffer. (Handing it the
    /// `[UInt8]` of a nested array cost a retain and a release per column
    /// per read: per entity the worker writes and per replay row.)
    let columnKeyStorage: UnsafeMutableRawBufferPointer
    /// Every column's key, a buffer in `columnKeyStorage`, in column order.
    let columnKeys: UnsafeMutableBufferPointer<UnsafeRawBufferPointer>
    /// Per feature, the index in `columnKeys` of its first column, then the
    /// column count: feature i's columns are `firstColumn[i]..<firstColumn[i + 1]`.
    public let firstColumn: [Int]
    /// Per feature: its percentile quantiles (empty for other kinds).
    let quantiles: [[Double]]
    /// Reusable buffers of the "More aggregations" reads.
    let readScratch = ReadScratch()
    /// Scratch for a canonical number text (distinct_count, count_by).
    let textScratch: UnsafeMutablePointer<UInt8>
    /// The derived columns, written after the feature columns; nil when
    /// the topology has none.
    public let derived: DerivedColumns?

    /// - Parameter binary: how to read Avro or Protobuf messages (plans
    ///   compiled for `FeatureEngine.fieldTable(of: topology).paths`); nil
    ///   for JSON.
    /// - Parameter keysParts: key the store by (key, source partition)
    ///   (`EventDecoder.keysParts`): the worker's `parts: per_partition` entities.
    public init(topology: Topology, expectedKeys: Int = 1024, binary: BinarySource? = nil, keysParts: Bool = false) {
        self.topology = topology
        let fields = Self.fieldTable(of: topology)
        self.decoder = EventDecoder(topology: topology, fields: fields, binary: binary, keysParts: keysParts)
        self.store = StateStore(expectedKeys: expectedKeys)
        self.features = topology.features.map { CompiledFeature($0, fields: fields) }
        self.filters = topology.features.map { $0.filter.map { CompiledFilter($0, fields: fields) } }
        self.latenessMs = topology.allowedLatenessMs
        var empty: [UInt8] = []
        withUnsafeBytes(of: noKeyTime.littleEndian) { empty.append(contentsOf: $0) }
        for f in features {
            switch f.kind {
            case .session: empty.append(contentsOf: repeatElement(0, count: SessionLayout.size))
            case .window: empty.append(contentsOf: repeatElement(0, count: 4))
            case .lastN: empty.append(contentsOf: repeatElement(0, count: LastNLayout.header))
            case .tiled: empty.append(contentsOf: repeatElement(0, count: TiledLayout.header))
            case .timeSince: withUnsafeBytes(of: noKeyTime.littleEndian) { empty.append(contentsOf: $0) }
            }
        }
        self.emptyState = empty
        self.emptyBlob = [0, 0] + empty
        var keyWriter = JSONWriter(capacity: 256)
        var keyEnds: [Int] = []
        var first: [Int] = []
        for f in topology.features {
            first.append(keyEnds.count)
            for name in f.outputNames {
                keyWriter.key(Array(name.utf8))
                keyEnds.append(keyWriter.bytes.count)
            }
        }
        self.firstColumn = first + [keyEnds.count]
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(keyWriter.bytes.count, 1), alignment: 1)
        keyWriter.bytes.withUnsafeBytes { storage.copyMemory(from: $0) }
        self.columnKeyStorage = storage
        let keys = UnsafeMutableBufferPointer<UnsafeRawBufferPointer>.allocate(capacity: max(keyEnds.count, 1))
        var start = 0
        for (i, end) in keyEnds.enumerated() {
            keys[i] = UnsafeRawBufferPointer(rebasing: storage[start..<end])
            start = end
        }
        self.columnKeys = keys
        self.quantiles = topology.features.map {
            if case .tiled(.percentile(let q, _), _, _, _) = $0.kind { return q }
            return []
        }
        self.textScratch = .allocate(capacity: CanonicalText.capacity + 8)
        self.derived = DerivedColumns(topology: topology)
        scratch.reserveCapacity(1024)
    }

    deinit {
        textScratch.deallocate()
        columnKeyStorage.deallocate()
        columnKeys.deallocate()
    }

    /// The fields the engine's decoders extract, in slot order.
    public static func fieldTable(of t: Topology) -> FieldTable { FieldTable(paths: fieldPaths(of: t)) }

    /// Every field path the topology reads: key, time, feature fields, filters.
    public static func fieldPaths(of t: Topology) -> [FieldPath] {
        var paths: [FieldPath] = []
        paths.append(contentsOf: t.key.paths)
        if case .field(let p, _) = t.time { paths.append(p) }
        for f in t.features {
            switch f.kind {
            case .lastN(let p, _, _): paths.append(p)
            case .window(_, let p?, _, _): paths.append(p)
            case .tiled(_, let p, _, _): paths.append(p)
            default: break
            }
            if let filter = f.filter { paths.append(contentsOf: filter.fieldPaths) }
        }
        return paths
    }

    // MARK: Events

    /// Decodes a message; see `EventDecoder.decode`.
    @inline(__always)
    public func decode(
        _ message: UnsafeRawBufferPointer, messageKey: UnsafeRawBufferPointer? = nil, messageTimestamp: Int64 = 0
    ) -> RejectReason? {
        decoder.decode(message, messageKey: messageKey, messageTimestamp: messageTimestamp)
    }

    /// Another decoder for this topology, for pipelines that hold several
    /// decoded events at once (see `prefetchIndex(for:)`).
    public func makeDecoder() -> EventDecoder {
        EventDecoder(topology: topology, fields: decoder.fields, binary: decoder.binary, keysParts: decoder.keysParts)
    }

    /// The slot of the decoded event's key, created empty if `create`, else -1.
    @inline(__always)
    public func slotForCurrentKey(create: Bool) -> Int32 {
        slot(for: decoder, create: create)
    }

    /// The slot of `d`'s event key, created empty if `create`, else -1.
    @inline(__always)
    public func slot(for d: EventDecoder, create: Bool) -> Int32 {
        let key = d.key
        let hash = d.keyHash
        let slot = store.lookup(key, hash: hash)
        if slot >= 0 || !create { return slot }
        return insertEmpty(key, hash: hash)
    }

    /// Memory-latency hiding, step 1: start loading the index entry of the
    /// event decoded in `d` (a few events before it is applied).
    @inline(__always)
    public func prefetchIndex(for d: EventDecoder) { store.prefetchIndex(hash: d.keyHash) }

    /// Step 2, an event later: start loading the key's slot record.
    @inline(__always)
    public func prefetchSlot(for d: EventDecoder) { store.prefetchSlot(d.key, hash: d.keyHash) }

    /// Step 3, an event later: start loading the key's state blob.
    @inline(__always)
    public func prefetchState(for d: EventDecoder) { store.prefetchBlob(d.key, hash: d.keyHash) }

    /// Adds `key` with empty state.
    public func insertEmpty(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int32 {
        scratch.removeAll(keepingCapacity: true)
        withUnsafeBytes(of: UInt16(key.count).littleEndian) { scratch.append(contentsOf: $0) }
        scratch.append(contentsOf: key)
        scratch.append(contentsOf: emptyState)
        return scratch.withUnsafeBytes { store.insert(key, hash: hash, initial: $0) }
    }

    /// The key time `K` of a live slot, or nil before its first event.
    @inline(__always)
    public func keyTime(_ slot: Int32) -> Int64? {
        let b = store.blob(slot)
        let k = b.loadUnaligned(fromByteOffset: 2 + Int(b.loadUnaligned(as: UInt16.self)), as: Int64.self)
        return k == noKeyTime ? nil : k
    }

    /// Whether an event at `ts` is late for `slot` (-1: unseen key, never late).
    @inline(__always)
    public func isLate(_ slot: Int32, ts: Int64) -> Bool {
        guard slot >= 0, let k = keyTime(slot) else { return false }
        return ts < k - latenessMs
    }

    /// Applies the decoded event, which must not be late, to `slot`.
    @inline(__always)
    public func apply(_ slot: Int32) { apply(slot, from: decoder) }

    /// Applies the event decoded in `decoder`, which must not be late.
    public func apply(_ slot: Int32, from decoder: EventDecoder) {
        let ts = decoder.timestamp
        var b = store.blob(slot)
        let kOffset = 2 + Int(b.loadUnaligned(as: UInt16.self))
        let oldK = b.loadUnaligned(fromByteOffset: kOffset, as: Int64.self)
        let advanced = ts > oldK
        if advanced { b.storeBytes(of: ts, toByteOffset: kOffset, as: Int64.self) }
        let k = advanced ? ts : oldK
        var offset = kOffset + 8
        features.withUnsafeBufferPointer { fs in
            for i in 0..<fs.count {
                let f = fs[i]
                let passes = !f.hasFilter || filters[i]!.matches(decoder)
                switch f.kind {
                case .session:
                    if passes { SessionOperator.apply(b + offset, ts: ts, gap: f.gapMs) }
                    offset += SessionLayout.size
                case .window:
                    offset = WindowOperator.apply(
                        store, slot, offset, f, passes: passes, decoder: decoder, ts: ts,
                        dropThrough: advanced && !f.isLifetime ? k - latenessMs - f.windowMs : nil)
                    b = store.blob(slot)
                case .tiled:
                    offset = TiledOperator.apply(
                        store, slot, offset, f, passes: passes, decoder: decoder, ts: ts,
                        dropThrough: advanced && !f.isLifetime ? k - latenessMs - f.windowMs : nil, text: textScratch)
                    b = store.blob(slot)
                case .timeSince:
                    if passes { TiledOperator.applyTimeSince(b + offset, ts: ts) }
                    offset += 8
                case .lastN:
                    offset = LastNOperator.apply(store, slot, offset, f, passes: passes, decoder: decoder, ts: ts)
                    b = store.blob(slot)
                }
            }
        }
    }

    /// Outcome of `process`.
    public enum Outcome: Equatable, Sendable {
        case accepted(Int32)
        case rejected(RejectReason)
    }

    /// Decode, lateness check and apply in one call.
    @inline(__always)
    public func process(
        _ message: UnsafeRawBufferPointer, messageKey: UnsafeRawBufferPointer? = nil, messageTimestamp: Int64 = 0
    ) -> Outcome {
        if let reason = decode(message, messageKey: messageKey, messageTimestamp: messageTimestamp) {
            return .rejected(reason)
        }
        let slot = slotForCurrentKey(create: true)
        if isLate(slot, ts: decoder.timestamp) { return .rejected(.late) }
        apply(slot)
        return .accepted(slot)
    }

    // MARK: Reads

    /// Writes every feature read at `T` as JSON members (`"name":value,...`,
    /// no braces) for `slot`, or for an unseen key when `slot` is -1.
    public func writeFeatures(_ slot: Int32, at t: Int64, into w: inout JSONWriter) {
        if slot < 0 {
            emptyBlob.withUnsafeBytes { writeFeatures(blob: UnsafeRawPointer($0.baseAddress!), at: t, into: &w) }
        } else {
            writeFeatures(blob: UnsafeRawPointer(store.blob(slot)), at: t, into: &w)
        }
    }

    /// Writes features read at `T` from a state blob, then the derived
    /// columns computed from them.
    public func writeFeatures(blob b: UnsafeRawPointer, at t: Int64, into w: inout JSONWriter) {
        var first = true
        guard let derived else {
            forEachColumn(blob: b, at: t, into: &w) { w, _, key in
                if !first { w.raw(UInt8(ascii: ",")) }
                first = false
                w.raw(key)
                return true
            }
            return
        }
        var column = 0
        forEachColumn(blob: b, at: t, into: &w) { w, _, key in
            if column > 0 { derived.end(column: column - 1, at: w.bytes.count) }
            if !first { w.raw(UInt8(ascii: ",")) }
            first = false
            w.raw(key)
            derived.begin(column: column, at: w.bytes.count)
            column += 1
            return true
        }
        derived.write(into: &w, end: w.bytes.count, first: first)
    }

    /// The derived columns read at `T` from a state blob, in file order
    /// (NaN: null); empty when the topology has none. Writes the features
    /// into `scratch` on the way; the values are valid until the next read.
    public func derivedValues(blob b: UnsafeRawPointer, at t: Int64, scratch w: inout JSONWriter) -> UnsafeBufferPointer<Double> {
        guard let derived else { return UnsafeBufferPointer(start: nil, count: 0) }
        w.reset()
        writeFeatures(blob: b, at: t, into: &w)
        return UnsafeBufferPointer(start: derived.values + derived.featureColumnCount, count: derived.programs.count)
    }

    /// Calls `begin` before each column's JSON value is written into `w`;
    /// `begin` gets the column's index over all features' columns, in output
    /// order (`Topology.outputColumns` without the derived ones), and its
    /// JSON key (`"name":`, valid as long as the engine), and returns whether
    /// to write that column.
    public func forEachColumn(
        blob b: UnsafeRawPointer, at t: Int64, into w: inout JSONWriter,
        _ begin: (inout JSONWriter, Int, UnsafeRawBufferPointer) -> Bool
    ) {
        var offset = 2 + Int(b.loadUnaligned(as: UInt16.self)) + 8
        let keys = columnKeys
        for (i, f) in features.enumerated() {
            let k = firstColumn[i]
            switch f.kind {
            case .session:
                for c in 0..<5 where begin(&w, k + c, keys[k + c]) {
                    SessionOperator.writeColumn(b + offset, column: c, at: t, gap: f.gapMs, into: &w)
                }
                offset += SessionLayout.size
            case .window:
                if begin(&w, k, keys[k]) { WindowOperator.write(b + offset, f, at: t, into: &w) }
                offset += 4 + Int(b.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) * f.tileSize
            case .lastN:
                if begin(&w, k, keys[k]) { LastNOperator.write(b + offset, into: &w) }
                offset += LastNLayout.header + Int(b.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            case .tiled:
                let p = b + offset
                if f.tiled == .percentile {
                    TiledOperator.prepare(p, f, at: t, scratch: readScratch)
                }
                for column in k..<firstColumn[i + 1] where begin(&w, column, keys[column]) {
                    TiledOperator.write(p, f, column: column - k, quantiles: quantiles[i], at: t, scratch: readScratch, into: &w)
                }
                offset += TiledOperator.sectionSize(p)
            case .timeSince:
                if begin(&w, k, keys[k]) { TiledOperator.writeTimeSince(b + offset, at: t, into: &w) }
                offset += 8
            }
        }
    }
}
