import CXXHash
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The kinds of SEMANTICS.md's "More aggregations" over a window (tiles of
/// varying size) or the lifetime (one tile at start 0); the layout is on
/// `TiledLayout`. `time_since` is here too (a fixed 8-byte section).
enum TiledOperator {
    /// Applies the current event to the section at `offset`, first dropping
    /// tiles that start at or before `dropThrough`. Returns the offset just
    /// past the section. `text` is scratch for a canonical number text.
    @inline(__always)
    static func apply(
        _ store: StateStore, _ slot: Int32, _ offset: Int, _ f: CompiledFeature,
        passes: Bool, decoder: EventDecoder, ts: Int64, dropThrough: Int64?, text: UnsafeMutablePointer<UInt8>
    ) -> Int {
        var b = store.blob(slot)
        var payload = Int(b.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        let tiles = offset + TiledLayout.header

        if let limit = dropThrough, payload > 0, b.loadUnaligned(fromByteOffset: tiles, as: Int64.self) <= limit {
            var c = tiles
            let end = tiles + payload
            while c < end, b.loadUnaligned(fromByteOffset: c, as: Int64.self) <= limit {
                c += TiledLayout.tileHeader + Int(b.loadUnaligned(fromByteOffset: c + 8, as: UInt32.self))
            }
            b = store.resize(slot, at: tiles, by: tiles - c)
            payload -= c - tiles
            b.storeBytes(of: UInt32(payload), toByteOffset: offset, as: UInt32.self)
        }
        guard passes else { return tiles + payload }

        // The event's value for this kind, or skip it.
        var number = 0.0
        var bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        var tag: UInt8 = 0
        switch f.tiled {
        case .percentile, .variance, .stddev:
            let s = decoder.field(f.field)
            guard s.kind == .number, !s.number.isNaN else { return tiles + payload }
            number = s.number
        case .distinctCount, .countBy:
            guard let t = CanonicalText.of(decoder, f.field, scratch: text), t.count < Int(UInt16.max) else {
                return tiles + payload
            }
            bytes = t
        case .first, .last:
            let s = decoder.field(f.field)
            switch s.kind {
            case .string: tag = UInt8(ascii: "s"); bytes = UnsafeRawBufferPointer(decoder.fieldBytes(f.field))
            case .number: tag = UInt8(ascii: "n"); bytes = UnsafeRawBufferPointer(decoder.fieldBytes(f.field))
            case .bool: tag = s.boolValue ? UInt8(ascii: "t") : UInt8(ascii: "f")
            case .missing, .null, .object, .array: return tiles + payload
            }
            guard bytes.count < Int(UInt16.max) else { return tiles + payload }
        }

        let start = f.isLifetime ? 0 : floorDiv(ts, f.hopMs) * f.hopMs
        var c = tiles
        let end = tiles + payload
        while c < end, b.loadUnaligned(fromByteOffset: c, as: Int64.self) < start {
            c += TiledLayout.tileHeader + Int(b.loadUnaligned(fromByteOffset: c + 8, as: UInt32.self))
        }
        var t = Tile(store: store, slot: slot, section: offset, at: c)
        if c < end, b.loadUnaligned(fromByteOffset: c, as: Int64.self) == start {
            switch f.tiled {
            case .distinctCount: addDistinct(&t, f, hash: hash(bytes))
            case .percentile: addPercentile(&t, key: bucketKey(number, f))
            case .first, .last:
                let stored = t.blob.loadUnaligned(fromByteOffset: t.payload, as: Int64.self)
                if f.tiled == .first ? ts < stored : ts >= stored { setValue(&t, ts: ts, tag: tag, bytes) }
            case .variance, .stddev:
                let p = t.blob + t.payload
                let n = p.loadUnaligned(as: Int64.self) + 1
                var mean = p.loadUnaligned(fromByteOffset: 8, as: Double.self)
                var m2 = p.loadUnaligned(fromByteOffset: 16, as: Double.self)
                let delta = number - mean
                mean += delta / Double(n)
                m2 += delta * (number - mean)
                p.storeBytes(of: n, as: Int64.self)
                p.storeBytes(of: mean, toByteOffset: 8, as: Double.self)
                p.storeBytes(of: m2, toByteOffset: 16, as: Double.self)
            case .countBy: addCount(&t, f, bytes)
            }
        } else {
            // A new tile.
            let size: Int
            switch f.tiled {
            case .distinctCount: size = f.exactLimit >= 1 ? 10 : 2 + (1 << f.precision)
            case .percentile: size = 12
            case .first, .last: size = 9 + bytes.count
            case .variance, .stddev: size = 24
            case .countBy: size = 12 + bytes.count
            }
            b = store.resize(slot, at: c, by: TiledLayout.tileHeader + size)
            payload += TiledLayout.tileHeader + size
            b.storeBytes(of: UInt32(payload), toByteOffset: offset, as: UInt32.self)
            b.storeBytes(of: start, toByteOffset: c, as: Int64.self)
            b.storeBytes(of: UInt32(size), toByteOffset: c + 8, as: UInt32.self)
            let p = b + c + TiledLayout.tileHeader
            switch f.tiled {
            case .distinctCount:
                let h = hash(bytes)
                if f.exactLimit >= 1 {
                    p.storeBytes(of: UInt16(1), as: UInt16.self)
                    p.storeBytes(of: h, toByteOffset: 2, as: UInt64.self)
                } else {
                    p.storeBytes(of: TiledLayout.registersMark, as: UInt16.self)
                    memset(p + 2, 0, 1 << f.precision)
                    addRegister(p + 2, f.precision, h)
                }
            case .percentile:
                p.storeBytes(of: UInt32(1), as: UInt32.self)
                p.storeBytes(of: bucketKey(number, f), toByteOffset: 4, as: Int32.self)
                p.storeBytes(of: UInt32(1), toByteOffset: 8, as: UInt32.self)
            case .first, .last:
                p.storeBytes(of: ts, as: Int64.self)
                p.storeBytes(of: tag, toByteOffset: 8, as: UInt8.self)
                if bytes.count > 0 { memcpy(p + 9, bytes.baseAddress!, bytes.count) }
            case .variance, .stddev:
                p.storeBytes(of: Int64(1), as: Int64.self)
                p.storeBytes(of: number, toByteOffset: 8, as: Double.self)
                p.storeBytes(of: 0.0, toByteOffset: 16, as: Double.self)
            case .countBy:
                p.storeBytes(of: UInt32(0), as: UInt32.self)
                p.storeBytes(of: UInt16(1), toByteOffset: 4, as: UInt16.self)
                p.storeBytes(of: UInt32(1), toByteOffset: 6, as: UInt32.self)
                p.storeBytes(of: UInt16(bytes.count), toByteOffset: 10, as: UInt16.self)
                if bytes.count > 0 { memcpy(p + 12, bytes.baseAddress!, bytes.count) }
            }
            return tiles + payload
        }
        return tiles + Int(store.blob(slot).loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A tile being updated: where it is, and how to grow or shrink it
    /// (which also updates its size and the section's payload).
    struct Tile {
        let store: StateStore
        let slot: Int32
        let section: Int
        let at: Int
        var blob: UnsafeMutableRawPointer
        var payload: Int { at + TiledLayout.tileHeader }
        var size: Int { Int(blob.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self)) }

        init(store: StateStore, slot: Int32, section: Int, at: Int) {
            self.store = store; self.slot = slot; self.section = section; self.at = at
            self.blob = store.blob(slot)
        }

        /// Opens (`delta > 0`) or closes a gap at blob offset `offset` inside the tile.
        @inline(__always)
        mutating func resize(at offset: Int, by delta: Int) {
            blob = store.resize(slot, at: offset, by: delta)
            let size = blob.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self)
            blob.storeBytes(of: UInt32(Int(size) + delta), toByteOffset: at + 8, as: UInt32.self)
            let payload = blob.loadUnaligned(fromByteOffset: section, as: UInt32.self)
            blob.storeBytes(of: UInt32(Int(payload) + delta), toByteOffset: section, as: UInt32.self)
        }
    }

    // MARK: distinct_count

    /// XXH64 (seed 0) of a canonical text.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH64(bytes.baseAddress, bytes.count, 0)
    }

    /// `M[j] = max(M[j], rho)` with `j = h >> (64 - p)` and `rho` the
    /// leading zeros of `h << p` plus one (at most `64 - p + 1`).
    @inline(__always)
    static func addRegister(_ registers: UnsafeMutableRawPointer, _ p: Int, _ h: UInt64) {
        let j = Int(h >> UInt64(64 - p))
        let w = h << UInt64(p)
        let rho = UInt8(Swift.min(w.leadingZeroBitCount + 1, 64 - p + 1))
        let r = registers.load(fromByteOffset: j, as: UInt8.self)
        if rho > r { registers.storeBytes(of: rho, toByteOffset: j, as: UInt8.self) }
    }

    @inline(__always)
    static func addDistinct(_ t: inout Tile, _ f: CompiledFeature, hash h: UInt64) {
        let p = t.blob + t.payload
        let count = Int(p.loadUnaligned(as: UInt16.self))
        if count == Int(TiledLayout.registersMark) {
            addRegister(p + 2, f.precision, h)
            return
        }
        for i in 0..<count where p.loadUnaligned(fromByteOffset: 2 + i * 8, as: UInt64.self) == h { return }
        if count < f.exactLimit {
            t.resize(at: t.payload + 2 + count * 8, by: 8)
            let q = t.blob + t.payload
            q.storeBytes(of: h, toByteOffset: 2 + count * 8, as: UInt64.self)
            q.storeBytes(of: UInt16(count + 1), as: UInt16.self)
            return
        }
        // One member too many: the set becomes registers with its members.
        let m = 1 << f.precision
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: count) { members in
            for i in 0..<count { members[i] = p.loadUnaligned(fromByteOffset: 2 + i * 8, as: UInt64.self) }
            t.resize(at: t.payload + 2, by: m - count * 8)
            let q = t.blob + t.payload
            q.storeBytes(of: TiledLayout.registersMark, as: UInt16.self)
            memset(q + 2, 0, m)
            for i in 0..<count { addRegister(q + 2, f.precision, members[i]) }
            addRegister(q + 2, f.precision, h)
        }
    }

    // MARK: percentile

    /// The bucket of `x` (|x| clamped to 1e15) as an ordered key (`TiledLayout`).
    @inline(__always)
    static func bucketKey(_ x: Double, _ f: CompiledFeature) -> Int32 {
        let a = Swift.min(abs(x), 1e15)
        if a < 1e-9 { return 0 }
        let i = Int32((log(a) / f.lnGamma).rounded(.up))
        return x > 0 ? TiledLayout.bucketBias + i : -TiledLayout.bucketBias - i
    }

    @inline(__always)
    static func addPercentile(_ t: inout Tile, key: Int32) {
        let p = t.blob + t.payload
        let n = Int(p.loadUnaligned(as: UInt32.self))
        var i = 0
        while i < n {
            let k = p.loadUnaligned(fromByteOffset: 4 + i * 8, as: Int32.self)
            if k == key {
                let c = p.loadUnaligned(fromByteOffset: 8 + i * 8, as: UInt32.self)
                p.storeBytes(of: c + 1, toByteOffset: 8 + i * 8, as: UInt32.self)
                return
            }
            if k > key { break }
            i += 1
        }
        t.resize(at: t.payload + 4 + i * 8, by: 8)
        let q = t.blob + t.payload
        q.storeBytes(of: key, toByteOffset: 4 + i * 8, as: Int32.self)
        q.storeBytes(of: UInt32(1), toByteOffset: 8 + i * 8, as: UInt32.self)
        q.storeBytes(of: UInt32(n + 1), as: UInt32.self)
    }

    // MARK: first, last

    @inline(__always)
    static func setValue(_ t: inout Tile, ts: Int64, tag: UInt8, _ bytes: UnsafeRawBufferPointer) {
        let delta = 9 + bytes.count - t.size
        if delta != 0 { t.resize(at: t.payload + 8, by: delta) }
        let p = t.blob + t.payload
        p.storeBytes(of: ts, as: Int64.self)
        p.storeBytes(of: tag, toByteOffset: 8, as: UInt8.self)
        if bytes.count > 0 { memcpy(p + 9, bytes.baseAddress!, bytes.count) }
    }

    // MARK: count_by

    @inline(__always)
    static func addCount(_ t: inout Tile, _ f: CompiledFeature, _ bytes: UnsafeRawBufferPointer) {
        let p = t.blob + t.payload
        let entries = Int(p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        var c = 6
        for _ in 0..<entries {
            let length = Int(p.loadUnaligned(fromByteOffset: c + 4, as: UInt16.self))
            if length == bytes.count, length == 0 || memcmp(p + c + 6, bytes.baseAddress!, length) == 0 {
                p.storeBytes(of: p.loadUnaligned(fromByteOffset: c, as: UInt32.self) + 1, toByteOffset: c, as: UInt32.self)
                return
            }
            c += 6 + length
        }
        if entries >= f.maxValues {
            p.storeBytes(of: p.loadUnaligned(as: UInt32.self) + 1, as: UInt32.self)
            return
        }
        t.resize(at: t.payload + c, by: 6 + bytes.count)
        let q = t.blob + t.payload
        q.storeBytes(of: UInt32(1), toByteOffset: c, as: UInt32.self)
        q.storeBytes(of: UInt16(bytes.count), toByteOffset: c + 4, as: UInt16.self)
        if bytes.count > 0 { memcpy(q + c + 6, bytes.baseAddress!, bytes.count) }
        q.storeBytes(of: UInt16(entries + 1), toByteOffset: 4, as: UInt16.self)
    }

    // MARK: time_since

    @inline(__always)
    static func applyTimeSince(_ p: UnsafeMutableRawPointer, ts: Int64) {
        if ts > p.loadUnaligned(as: Int64.self) { p.storeBytes(of: ts, as: Int64.self) }
    }

    static func writeTimeSince(_ p: UnsafeRawPointer, at t: Int64, into w: inout JSONWriter) {
        let ts = p.loadUnaligned(as: Int64.self)
        ts == Int64.min ? w.null() : w.int(t &- ts)
    }
}
