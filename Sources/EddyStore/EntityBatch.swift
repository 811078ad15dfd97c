import EddyCore
import EddyRedis

/// Entities to write, packed for `EntityWriter`: each entity's Redis key,
/// its fence (partition name and offset), whether the write re-arms its
/// expiry, and its hash fields, in one byte buffer that keeps its capacity
/// from batch to batch (no allocation per entity once warm).
///
/// The fields are kept framed as Redis command arguments (`RESPArgument`),
/// so the writer copies an entity's ~18 names and values into its `HSET` as
/// one block. Why: encoding them one by one in the writer cost ~170
/// instructions per argument, ~3k per entity write (callgrind), where
/// framing them here as they are rendered costs a header each.
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
        /// The same partition's index in `partitions`.
        public var partition: Int32
        /// Whether this write re-arms the key's expiry (`TTLPolicy`).
        public var rearmTTL: Bool
        /// Hash field/value pairs, `_state` first, framed (`RESPArgument`)
        /// back to back in `bytes`; `fieldCount` names and values.
        public var fieldsStart: Int
        public var fieldsLength: Int
        public var fieldCount: Int
        /// The `_state` value's bytes (inside the fields).
        public var stateStart: Int
        public var stateLength: Int
    }

    public private(set) var entities: [Entity] = []
    /// The batch's distinct fence partitions, first seen first
    /// (`Entity.partition`). Why: the epoch-fenced writer groups a flush's
    /// entities by partition, and hashing each entity's partition name cost
    /// ~650 instructions per entity write (callgrind); the shard hands every
    /// key of a partition the same array, so telling them apart here is
    /// mostly a pointer compare.
    public private(set) var partitions: [[UInt8]] = []
    private var lastPartition = -1
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
        }
        entities.removeAll(keepingCapacity: true)
        partitions.removeAll(keepingCapacity: true)
        lastPartition = -1
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
        let fieldsStart = bytes.count
        var fieldCount = 0, stateStart = 0, stateLength = 0
        fields.forEach(slot: slot) { name, value in
            bytes.appendFramed(name)
            let start = bytes.appendFramed(value)
            if fieldCount == 0 { (stateStart, stateLength) = (start, value.count) }  // `_state` comes first
            fieldCount += 2
        }
        finishEntity(keyStart: keyStart, keyLength: prefix.count + key.count, fieldsStart: fieldsStart, fieldCount: fieldCount,
                     state: (stateStart, stateLength), partition: partition, offset: offset, rearmTTL: rearmTTL)
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
        let fieldsStart = bytes.count
        bytes.appendFramed(joining: EntityLayout.Bytes.partFieldPrefix, partition)
        // The blob with the entity key's header: what replay and the Function read.
        let blob = UnsafeRawBufferPointer(start: states.blob(slot), count: states.length(slot))
        let stateLength = PartKey.rewrittenLength(blob, key: entityKey)
        let state = bytes.beginFramed(length: stateLength)
        PartKey.rewriteHeader(blob, key: entityKey) { bytes.append($0) }
        bytes.endFramed(start: state, length: stateLength)
        bytes.appendFramed(EntityLayout.Bytes.fingerprintField)
        bytes.appendFramed(fingerprint)
        finishEntity(keyStart: keyStart, keyLength: prefix.count + entityKey.count, fieldsStart: fieldsStart, fieldCount: 4,
                     state: (state, stateLength), partition: partition, offset: offset, rearmTTL: rearmTTL)
    }

    /// Ends an entity whose key and fields are stored: its fence and entry.
    @inline(__always)
    func finishEntity(keyStart: Int, keyLength: Int, fieldsStart: Int, fieldCount: Int, state: (Int, Int),
                      partition: [UInt8], offset: Int64, rearmTTL: Bool) {
        let fieldsLength = bytes.count - fieldsStart
        let partitionRange = store(partition)
        entities.append(Entity(
            keyStart: keyStart, keyLength: keyLength, offset: offset,
            partitionStart: partitionRange.0, partitionLength: partitionRange.1, partition: partitionIndex(partition),
            rearmTTL: rearmTTL, fieldsStart: fieldsStart, fieldsLength: fieldsLength, fieldCount: fieldCount,
            stateStart: state.0, stateLength: state.1))
    }

    /// Appends an entity with explicit fields, the first value its state
    /// (`withStates`); a part of a `parts: per_partition` entity in the
    /// backfill: `_p:<topic>:<partition>` and `_fp`.
    public func append(redisKey: [UInt8], fields: [([UInt8], [UInt8])], partition: [UInt8], offset: Int64, rearmTTL: Bool) {
        let keyRange = store(redisKey)
        let fieldsStart = bytes.count
        var state = (0, 0)
        for (i, (name, value)) in fields.enumerated() {
            name.withUnsafeBytes { bytes.appendFramed($0) }
            let start = value.withUnsafeBytes { bytes.appendFramed($0) }
            if i == 0 { state = (start, value.count) }
        }
        finishEntity(keyStart: keyRange.0, keyLength: keyRange.1, fieldsStart: fieldsStart, fieldCount: 2 * fields.count,
                     state: state, partition: partition, offset: offset, rearmTTL: rearmTTL)
    }

    /// Calls `body` with a function giving the state blob (`_state`) of
    /// entity `i`, valid only during the call.
    public func withStates<R>(_ body: ((Int) -> UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { bytes in
            try body { i in
                let e = entities[i]
                return UnsafeRawBufferPointer(rebasing: bytes[e.stateStart..<(e.stateStart + e.stateLength)])
            }
        }
    }

    /// Calls `body` with each field name and value of `e`, in order.
    public func forEachField(of e: Entity, in bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        let n = RESPArgument.forEach(in: UnsafeRawBufferPointer(rebasing: bytes[e.fieldsStart..<(e.fieldsStart + e.fieldsLength)]), body)
        assert(n == e.fieldCount, "an entity's fields are framed arguments")
    }

    /// `name`'s index in `partitions`, added if new: the same array as the
    /// last entity's or an earlier one's first, then equal bytes.
    @inline(__always)
    func partitionIndex(_ name: [UInt8]) -> Int32 {
        if lastPartition >= 0, Self.sameStorage(partitions[lastPartition], name) { return Int32(lastPartition) }
        return slowPartitionIndex(name)
    }

    @inline(never)
    func slowPartitionIndex(_ name: [UInt8]) -> Int32 {
        let i = partitions.firstIndex { Self.sameStorage($0, name) } ?? partitions.firstIndex(of: name) ?? {
            partitions.append(name)
            return partitions.count - 1
        }()
        lastPartition = i
        return Int32(i)
    }

    @inline(__always)
    static func sameStorage(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { $0.baseAddress == x.baseAddress && $0.count == x.count } }
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

    /// Appends `b` framed as a command argument (`RESPArgument`); returns
    /// where its bytes start.
    @inline(__always) @discardableResult
    mutating func appendFramed(_ b: UnsafeRawBufferPointer) -> Int {
        if count + b.count + RESPArgument.maxOverhead > capacity { grow(to: count + b.count + RESPArgument.maxOverhead) }
        let start = base + count
        let end = RESPArgument.write(b, at: start)
        count += end - start
        return count - b.count - 2
    }

    @inline(__always) @discardableResult
    mutating func appendFramed(_ b: [UInt8]) -> Int {
        b.withUnsafeBytes { appendFramed($0) }
    }

    /// Appends two byte ranges framed as one argument.
    @inline(__always)
    mutating func appendFramed(joining first: [UInt8], _ second: [UInt8]) {
        let length = first.count + second.count
        if count + length + RESPArgument.maxOverhead > capacity { grow(to: count + length + RESPArgument.maxOverhead) }
        let start = base + count
        let end = first.withUnsafeBytes { f in second.withUnsafeBytes { RESPArgument.write(joining: f, $0, at: start) } }
        count += end - start
    }

    /// Starts an argument of `length` bytes, to be appended next (`append`)
    /// and ended by `endFramed` (which checks the length in debug builds);
    /// returns where its bytes start.
    mutating func beginFramed(length: Int) -> Int {
        if count + length + RESPArgument.maxOverhead > capacity { grow(to: count + length + RESPArgument.maxOverhead) }
        count += RESPArgument.header(length: length, at: base + count) - (base + count)
        return count
    }

    mutating func endFramed(start: Int, length: Int) {
        assert(count == start + length, "a framed argument got other than the length its header says")
        if count + 2 > capacity { grow(to: count + 2) }
        count += RESPArgument.crlf(at: base + count) - (base + count)
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
