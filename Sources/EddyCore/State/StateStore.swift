import CEddySupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every key's state as one compact byte blob, in one arena, found through
/// an open-addressing index. About 25 bytes per key of bookkeeping plus the
/// blob, with no per-key heap object; a blob is also the exact bytes stored
/// in Redis, so loading and saving a key is a copy.
///
/// A blob starts with `u16 keyLength, key bytes`; the rest belongs to
/// `FeatureEngine`. Blob pointers stay valid only until the next call that
/// can allocate (`insert`, `resize`, `replace`).
public final class StateStore {
    // Arena: size-classed blocks, addressed in 16-byte units.
    private var arena: UnsafeMutableRawPointer
    private var arenaCapacity: Int
    private var arenaUsed = 0
    private var freeBlocks: [[UInt32]]
    /// Bytes in freed blocks, waiting for reuse.
    private var freeBytes = 0

    // Slots: one per live key.
    private var blockOffset: UnsafeMutablePointer<UInt32>
    private var blobLength: UnsafeMutablePointer<UInt32>
    private var blockClass: UnsafeMutablePointer<UInt8>
    private var slotCapacity: Int
    /// Slots handed out so far (live or freed); slot ids are below this.
    public private(set) var slotLimit = 0
    private var freeSlots: [Int32] = []
    /// Live keys.
    public private(set) var count = 0

    // Index: linear probing; entry = hash high 32 bits << 32 | (slot + 1).
    private var table: UnsafeMutablePointer<UInt64>
    private var tableMask: Int

    public init(expectedKeys: Int = 1024) {
        arenaCapacity = max(64 * 1024, expectedKeys * 128)
        arena = LargeAllocation.allocate(arenaCapacity)
        freeBlocks = Array(repeating: [], count: 256)
        slotCapacity = max(64, expectedKeys)
        blockOffset = .allocate(capacity: slotCapacity)
        blobLength = .allocate(capacity: slotCapacity)
        blockClass = .allocate(capacity: slotCapacity)
        var cap = 64
        while cap * 3 < expectedKeys * 4 { cap *= 2 }
        table = LargeAllocation.allocate(cap * 8).bindMemory(to: UInt64.self, capacity: cap)  // zero-filled
        tableMask = cap - 1
    }

    deinit {
        LargeAllocation.free(arena, arenaCapacity)
        blockOffset.deallocate(); blobLength.deallocate(); blockClass.deallocate()
        LargeAllocation.free(table, (tableMask + 1) * 8)
    }

    // MARK: Index

    /// The slot of `key`, or -1.
    @inline(__always)
    public func lookup(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int32 {
        let tag = hash >> 32
        var i = Int(truncatingIfNeeded: hash) & tableMask
        while true {
            let e = table[i]
            if e == 0 { return -1 }
            if e >> 32 == tag {
                let slot = Int32(truncatingIfNeeded: e & 0xFFFF_FFFF) - 1
                if keyEquals(slot, key) { return slot }
            }
            i = (i + 1) & tableMask
        }
    }

    /// Starts loading the index entry for `hash`.
    @inline(__always)
    public func prefetchIndex(hash: UInt64) {
        eddy_prefetch(table + (Int(truncatingIfNeeded: hash) & tableMask))
    }

    /// The slot a lookup would most likely find for `hash` (tag match, no
    /// key comparison), or -1; only for prefetching.
    @inline(__always)
    private func probableSlot(hash: UInt64) -> Int {
        let tag = hash >> 32
        var i = Int(truncatingIfNeeded: hash) & tableMask
        for _ in 0..<4 {
            let e = table[i]
            if e == 0 { return -1 }
            if e >> 32 == tag { return Int(truncatingIfNeeded: e & 0xFFFF_FFFF) - 1 }
            i = (i + 1) & tableMask
        }
        return -1
    }

    /// Once the index entry is at hand: starts loading the slot record.
    @inline(__always)
    public func prefetchSlot(_ key: UnsafeRawBufferPointer, hash: UInt64) {
        let slot = probableSlot(hash: hash)
        if slot >= 0 { eddy_prefetch(blockOffset + slot) }
    }

    /// Once the slot record is at hand: starts loading the blob.
    @inline(__always)
    public func prefetchBlob(_ key: UnsafeRawBufferPointer, hash: UInt64) {
        let slot = probableSlot(hash: hash)
        if slot >= 0 { eddy_prefetch(arena + Int(blockOffset[slot]) * 16) }
    }

    @inline(__always)
    private func keyEquals(_ slot: Int32, _ key: UnsafeRawBufferPointer) -> Bool {
        let b = blob(slot)
        let n = Int(b.loadUnaligned(as: UInt16.self))
        guard n == key.count else { return false }
        return n == 0 || memcmp(b + 2, key.baseAddress!, n) == 0
    }

    /// Adds a new key whose blob is `initial` (which must start with the
    /// key header). The key must not be present.
    public func insert(_ key: UnsafeRawBufferPointer, hash: UInt64, initial: UnsafeRawBufferPointer) -> Int32 {
        if (count + 1) * 4 > (tableMask + 1) * 3 { growTable() }
        let slot: Int32
        if let s = freeSlots.popLast() { slot = s } else {
            if slotLimit == slotCapacity { growSlots() }
            slot = Int32(slotLimit)
            slotLimit += 1
        }
        let (offset, cls) = allocateBlock(initial.count)
        blockOffset[Int(slot)] = offset
        blockClass[Int(slot)] = cls
        blobLength[Int(slot)] = UInt32(initial.count)
        memcpy(arena + Int(offset) * 16, initial.baseAddress!, initial.count)
        place(hash: hash, slot: slot)
        count += 1
        return slot
    }

    private func place(hash: UInt64, slot: Int32) {
        var i = Int(truncatingIfNeeded: hash) & tableMask
        while table[i] != 0 { i = (i + 1) & tableMask }
        table[i] = (hash >> 32) << 32 | UInt64(UInt32(slot + 1))
    }

    /// Forgets a key and frees its blob (eviction).
    public func remove(_ slot: Int32) {
        let key = keyBytes(slot)
        let hash = hashKey(key)
        var i = Int(truncatingIfNeeded: hash) & tableMask
        let want = UInt64(UInt32(slot + 1))
        while table[i] & 0xFFFF_FFFF != want { i = (i + 1) & tableMask }
        // Backward-shift deletion keeps probe chains intact without tombstones.
        var hole = i
        var j = (i + 1) & tableMask
        while table[j] != 0 {
            let s = Int32(truncatingIfNeeded: table[j] & 0xFFFF_FFFF) - 1
            let home = Int(truncatingIfNeeded: hashKey(keyBytes(s))) & tableMask
            // Move j into the hole if its home is not in (hole, j].
            let between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if !between { table[hole] = table[j]; hole = j }
            j = (j + 1) & tableMask
        }
        table[hole] = 0
        freeBlock(blockOffset[Int(slot)], blockClass[Int(slot)])
        blobLength[Int(slot)] = 0
        freeSlots.append(slot)
        count -= 1
    }

    private func growTable() {
        let old = table
        let oldCap = tableMask + 1
        let cap = oldCap * 2
        table = LargeAllocation.allocate(cap * 8).bindMemory(to: UInt64.self, capacity: cap)
        tableMask = cap - 1
        for i in 0..<oldCap where old[i] != 0 {
            let slot = Int32(truncatingIfNeeded: old[i] & 0xFFFF_FFFF) - 1
            place(hash: hashKey(keyBytes(slot)), slot: slot)
        }
        LargeAllocation.free(old, oldCap * 8)
    }

    private func growSlots() {
        let cap = slotCapacity * 2
        func grow<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
            let n = UnsafeMutablePointer<T>.allocate(capacity: cap)
            n.moveInitialize(from: p, count: slotCapacity)
            p.deallocate()
            return n
        }
        blockOffset = grow(blockOffset); blobLength = grow(blobLength); blockClass = grow(blockClass)
        slotCapacity = cap
    }

    // MARK: Blobs

    /// Whether `slot` holds a live key.
    @inline(__always)
    public func isLive(_ slot: Int32) -> Bool { slot >= 0 && Int(slot) < slotLimit && blobLength[Int(slot)] > 0 }

    /// The blob of `slot`; valid until the next allocating call.
    @inline(__always)
    public func blob(_ slot: Int32) -> UnsafeMutableRawPointer { arena + Int(blockOffset[Int(slot)]) * 16 }

    @inline(__always)
    public func length(_ slot: Int32) -> Int { Int(blobLength[Int(slot)]) }

    /// The key of `slot`.
    @inline(__always)
    public func keyBytes(_ slot: Int32) -> UnsafeRawBufferPointer {
        let b = blob(slot)
        return UnsafeRawBufferPointer(start: b + 2, count: Int(b.loadUnaligned(as: UInt16.self)))
    }

    /// Opens (`delta > 0`) or closes (`delta < 0`) a gap at `offset` in the
    /// blob of `slot`, moving the bytes after it. Returns the blob's address.
    @inline(__always)
    public func resize(_ slot: Int32, at offset: Int, by delta: Int) -> UnsafeMutableRawPointer {
        let s = Int(slot)
        let oldLength = Int(blobLength[s])
        let newLength = oldLength + delta
        var b = blob(slot)
        if delta > 0, newLength > Self.classSize(blockClass[s]) {
            let (newOffset, cls) = allocateBlock(newLength)
            b = blob(slot)  // the arena may have moved
            let nb = arena + Int(newOffset) * 16
            memcpy(nb, b, offset)
            memcpy(nb + offset + delta, b + offset, oldLength - offset)
            freeBlock(blockOffset[s], blockClass[s])
            blockOffset[s] = newOffset
            blockClass[s] = cls
            b = nb
        } else if delta > 0 {
            memmove(b + offset + delta, b + offset, oldLength - offset)
        } else if delta < 0 {
            memmove(b + offset, b + offset - delta, oldLength - offset + delta)
        }
        blobLength[s] = UInt32(newLength)
        return b
    }

    /// Replaces the whole blob of `slot` (for example with state loaded
    /// from Redis). `bytes` must start with the same key header.
    public func replace(_ slot: Int32, with bytes: UnsafeRawBufferPointer) {
        let s = Int(slot)
        if bytes.count > Self.classSize(blockClass[s]) {
            let (newOffset, cls) = allocateBlock(bytes.count)
            freeBlock(blockOffset[s], blockClass[s])
            blockOffset[s] = newOffset
            blockClass[s] = cls
        }
        memcpy(blob(slot), bytes.baseAddress!, bytes.count)
        blobLength[s] = UInt32(bytes.count)
    }

    // MARK: Arena

    /// Bytes of a size class: 16-byte steps to 512 (typical blobs waste at
    /// most 15 bytes), then four steps per doubling (at most 25% slack).
    @inline(__always)
    static func classSize(_ c: UInt8) -> Int {
        let c = Int(c)
        if c < 32 { return (c + 1) * 16 }
        let base = 512 << ((c - 32) / 4)
        return base + ((c - 32) % 4 + 1) * (base / 4)
    }

    @inline(__always)
    static func sizeClass(for size: Int) -> UInt8 {
        if size <= 512 { return UInt8(max(size - 1, 0) / 16) }
        var c: UInt8 = 32
        while classSize(c) < size { c += 1 }
        return c
    }

    private func allocateBlock(_ size: Int) -> (UInt32, UInt8) {
        let cls = Self.sizeClass(for: size)
        if let offset = freeBlocks[Int(cls)].popLast() {
            freeBytes -= Self.classSize(cls)
            return (offset, cls)
        }
        let bytes = Self.classSize(cls)
        if freeBytes * 8 > arenaUsed, arenaUsed >= Self.compactionFloor {
            // Blobs change class as they grow and shrink and leave blocks
            // behind that only their own class reuses: pack the live ones
            // once an eighth is free, not only when the arena is full, so
            // the memory in use stays within a seventh above the live state
            // (instead of creeping up to the arena's doubled capacity).
            compact()
        }
        if arenaUsed + bytes > arenaCapacity {
            var cap = arenaCapacity * 2
            while arenaUsed + bytes > cap { cap *= 2 }
            precondition(cap / 16 <= Int(UInt32.max), "state arena over 64 GiB")
            arena = LargeAllocation.grow(arena, from: arenaCapacity, to: cap, used: arenaUsed)
            arenaCapacity = cap
        }
        let offset = UInt32(arenaUsed / 16)
        arenaUsed += bytes
        return (offset, cls)
    }

    private func freeBlock(_ offset: UInt32, _ cls: UInt8) {
        freeBlocks[Int(cls)].append(offset)
        freeBytes += Self.classSize(cls)
    }

    /// Below this many arena bytes in use, freed blocks are not worth a compaction.
    static let compactionFloor = 1 << 20

    /// Packs every live blob towards the arena's start, in place and in
    /// address order (each moves down, never over one not yet moved), then
    /// gives the pages past the packed end back to the kernel. In place, so
    /// a compaction never holds two arenas at once.
    private func compact() {
        var order: [UInt64] = []  // offset << 32 | slot
        order.reserveCapacity(count)
        for s in 0..<slotLimit where blobLength[s] > 0 {
            order.append(UInt64(blockOffset[s]) << 32 | UInt64(s))
        }
        order.sort()
        var used = 0
        for entry in order {
            let s = Int(entry & 0xFFFF_FFFF)
            let cls = Self.sizeClass(for: Int(blobLength[s]))
            let from = Int(blockOffset[s]) * 16
            if from != used { memmove(arena + used, arena + from, Int(blobLength[s])) }
            blockOffset[s] = UInt32(used / 16)
            blockClass[s] = cls
            used += Self.classSize(cls)
        }
        LargeAllocation.release(arena, from: used, to: arenaUsed)
        arenaUsed = used
        freeBytes = 0
        for c in freeBlocks.indices { freeBlocks[c].removeAll() }
    }

    /// Memory this store holds: arena, slot arrays and index.
    public var allocatedBytes: Int {
        arenaCapacity + slotCapacity * 9 + (tableMask + 1) * 8
    }

    /// Arena bytes in use by live and freed blocks.
    public var arenaBytesUsed: Int { arenaUsed }
}
