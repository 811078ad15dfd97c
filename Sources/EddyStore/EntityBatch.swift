import EddyCore

/// Entities to write, packed for `EntityWriter`: each entity's Redis key,
/// its fence (partition name and offset), whether the write re-arms its
/// expiry, and its hash fields, as ranges of one byte buffer that keeps its
/// capacity from batch to batch (no allocation per entity once warm).
///
/// Owned by one thread at a time.
public final class EntityBatch {
    public struct Entity {
        public var keyStart: Int
        public var keyLength: Int
        /// The fence's offset: that of the last event applied to the entity.
        public var offset: Int64
        /// The fence's partition name, `topic:partition`, in `bytes`.
        public var partitionStart: Int
        public var partitionLength: Int
        /// Whether this write re-arms the key's expiry (`TTLPolicy`).
        public var rearmTTL: Bool
        /// Hash field/value pairs (ranges in `fieldRanges`), `_state` first.
        public var fieldsStart: Int
        public var fieldCount: Int
    }

    public private(set) var entities: [Entity] = []
    /// (start, length) ranges of field names and values in `bytes`.
    public private(set) var fieldRanges: [(Int, Int)] = []
    public private(set) var bytes = BatchBytes(capacity: 1 << 20)

    public init() {
        entities.reserveCapacity(4096)
    }

    public var count: Int { entities.count }
    public var isEmpty: Bool { entities.isEmpty }

    /// Above this many bytes of capacity, a batch that used less than a
    /// quarter of it gives the memory back: a catch-up flush of every key
    /// grows a batch to tens of MB, a lag spike of a second to a few MB,
    /// and steady flushes need a fraction of that. Kept, such high-water
    /// marks made the worker's memory creep up over a long run.
    static let retainedBytes = 2 << 20

    /// Empties the batch, keeping its capacity unless it was far too big
    /// (`retainedBytes`). Returns whether it gave memory back.
    @discardableResult
    public func reset() -> Bool {
        let shrink = bytes.capacity > Self.retainedBytes && bytes.count < bytes.capacity / 4
        if shrink {
            bytes.shrink(to: 1 << 20)
            entities = []
            entities.reserveCapacity(4096)
            fieldRanges = []
        }
        entities.removeAll(keepingCapacity: true)
        fieldRanges.removeAll(keepingCapacity: true)
        bytes.removeAll()
        return shrink
    }

    /// Appends the live key in `slot` of `fields`' engine, which must have a
    /// key time: Redis key `prefix` + key, the fence `partition`/`offset`,
    /// and the stored fields (`EntityFields`, `_state` first).
    @inline(__always)
    public func append(slot: Int32, prefix: [UInt8], fields: inout EntityFields, partition: [UInt8], offset: Int64,
                       rearmTTL: Bool) {
        let key = fields.engine.store.keyBytes(slot)
        let keyStart = store(prefix).0
        _ = store(key)
        let fieldsStart = fieldRanges.count
        fields.forEach(slot: slot) { name, value in
            fieldRanges.append(store(name))
            fieldRanges.append(store(value))
        }
        finishEntity(keyStart: keyStart, keyLength: prefix.count + key.count, fieldsStart: fieldsStart,
                     partition: partition, offset: offset, rearmTTL: rearmTTL)
    }

    /// Appends the part in `slot` of a `parts: per_partition` entity, whose
    /// store key is a `PartKey`: Redis key `prefix` + the entity key, field
    /// `_p:<partition>` = the part's blob with the entity key in its header,
    /// `_fp` = `fingerprint`, fenced by `partition`/`offset`.
    @inline(__always)
    public func appendPart(slot: Int32, of states: StateStore, prefix: [UInt8], fingerprint: [UInt8], partition: [UInt8],
                           offset: Int64, rearmTTL: Bool) {
        let entityKey = PartKey.entityKey(of: states.keyBytes(slot))
        let keyStart = store(prefix).0
        _ = store(entityKey)
        let fieldsStart = fieldRanges.count
        let nameStart = bytes.count
        EntityLayout.Bytes.partFieldPrefix.withUnsafeBytes { bytes.append($0) }
        partition.withUnsafeBytes { bytes.append($0) }
        fieldRanges.append((nameStart, bytes.count - nameStart))
        // The blob with the entity key's header: what replay and the Function read.
        let valueStart = bytes.count
        PartKey.rewriteHeader(UnsafeRawBufferPointer(start: states.blob(slot), count: states.length(slot)),
                              key: entityKey) { bytes.append($0) }
        fieldRanges.append((valueStart, bytes.count - valueStart))
        fieldRanges.append(store(EntityLayout.Bytes.fingerprintField))
        fieldRanges.append(store(fingerprint))
        finishEntity(keyStart: keyStart, keyLength: prefix.count + entityKey.count, fieldsStart: fieldsStart,
                     partition: partition, offset: offset, rearmTTL: rearmTTL)
    }

    /// Ends an entity whose key and fields are stored: its fence and entry.
    @inline(__always)
    func finishEntity(keyStart: Int, keyLength: Int, fieldsStart: Int, partition: [UInt8], offset: Int64, rearmTTL: Bool) {
        let partitionRange = store(partition)
        entities.append(Entity(
            keyStart: keyStart, keyLength: keyLength, offset: offset,
            partitionStart: partitionRange.0, partitionLength: partitionRange.1,
            rearmTTL: rearmTTL, fieldsStart: fieldsStart, fieldCount: fieldRanges.count - fieldsStart))
    }

    /// Appends an entity with explicit fields (a part of a
    /// `parts: per_partition` entity: `_p:<topic>:<partition>` and `_fp`).
    public func append(redisKey: [UInt8], fields: [([UInt8], [UInt8])], partition: [UInt8], offset: Int64, rearmTTL: Bool) {
        let keyRange = store(redisKey)
        let fieldsStart = fieldRanges.count
        for (name, value) in fields {
            fieldRanges.append(store(name))
            fieldRanges.append(store(value))
        }
        finishEntity(keyStart: keyRange.0, keyLength: keyRange.1, fieldsStart: fieldsStart,
                     partition: partition, offset: offset, rearmTTL: rearmTTL)
    }

    /// Calls `body` with a function giving the state blob (`_state`) of
    /// entity `i`, valid only during the call.
    public func withStates<R>(_ body: ((Int) -> UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { bytes in
            try body { i in
                // Field pairs start with `_state`, <blob> (`EntityFields`).
                let (start, length) = fieldRanges[entities[i].fieldsStart + 1]
                return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
            }
        }
    }

    /// Appends bytes and returns their range.
    @inline(__always)
    func store(_ b: UnsafeRawBufferPointer) -> (Int, Int) {
        let start = bytes.count
        bytes.append(b)
        return (start, b.count)
    }

    @inline(__always)
    func store(_ b: [UInt8]) -> (Int, Int) {
        let start = bytes.count
        b.withUnsafeBytes { bytes.append($0) }
        return (start, b.count)
    }

    deinit { bytes.deallocate() }
}

/// The bytes of an `EntityBatch`: manually managed, so that appending the
/// many short names and values of a flush is a bounds check and a `memcpy`
/// (`Array.append(contentsOf:)` took ~100 instructions per call, about a
/// fifth of rendering an entity's fields). Freed by the batch's `deinit`.
public struct BatchBytes {
    var base: UnsafeMutableRawPointer
    public private(set) var count = 0
    public private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(byteCount: self.capacity, alignment: 16)
    }

    @inline(__always)
    mutating func append(_ b: UnsafeRawBufferPointer) {
        guard let source = b.baseAddress, b.count > 0 else { return }
        if count + b.count > capacity { grow(to: count + b.count) }
        (base + count).copyMemory(from: source, byteCount: b.count)
        count += b.count
    }

    @inline(never)
    mutating func grow(to minimum: Int) {
        var c = capacity * 2
        while c < minimum { c *= 2 }
        let new = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 16)
        new.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = new
        capacity = c
    }

    /// Empties it and gives back all but `capacity` bytes of memory.
    mutating func shrink(to capacity: Int) {
        base.deallocate()
        self.capacity = max(capacity, 64)
        base = .allocate(byteCount: self.capacity, alignment: 16)
        count = 0
    }

    mutating func removeAll() { count = 0 }

    func deallocate() { base.deallocate() }

    /// Calls `body` with the bytes, valid only during the call.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}
