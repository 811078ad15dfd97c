/// The tiled window aggregations (SEMANTICS.md, Window aggregations).
///
/// A section holds the live tiles in ascending start order; an event lands
/// in tile `floor(ts/H)*H`, and a read at `T` folds the tiles with
/// `floor(T/H)*H - W < start <= floor(T/H)*H`.
enum WindowOperator {
    /// Applies the current event to a window section starting at `offset`,
    /// first dropping tiles that start at or before `dropThrough` (set when
    /// the key time advanced). Returns the offset just past the section.
    @inline(__always)
    static func apply(
        _ store: StateStore, _ slot: Int32, _ offset: Int, _ f: CompiledFeature,
        passes: Bool, decoder: EventDecoder, ts: Int64, dropThrough: Int64?
    ) -> Int {
        var b = store.blob(slot)
        var n = Int(b.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        let tiles = offset + 4
        let size = f.tileSize

        if let limit = dropThrough, n > 0, b.loadUnaligned(fromByteOffset: tiles, as: Int64.self) <= limit {
            var d = 1
            while d < n, b.loadUnaligned(fromByteOffset: tiles + d * size, as: Int64.self) <= limit { d += 1 }
            b = store.resize(slot, at: tiles, by: -d * size)
            n -= d
            b.storeBytes(of: UInt32(n), toByteOffset: offset, as: UInt32.self)
        }

        guard passes else { return tiles + n * size }
        var value = 0.0
        if f.aggregation != .count || f.field >= 0 {
            let s = decoder.field(f.field)
            if f.aggregation == .count {
                guard s.kind != .missing && s.kind != .null else { return tiles + n * size }
            } else {
                guard s.kind == .number, !s.number.isNaN else { return tiles + n * size }
                value = s.number
            }
        }

        let start = f.isLifetime ? 0 : floorDiv(ts, f.hopMs) * f.hopMs
        var j = n - 1
        while j >= 0, b.loadUnaligned(fromByteOffset: tiles + j * size, as: Int64.self) > start { j -= 1 }
        if j >= 0, b.loadUnaligned(fromByteOffset: tiles + j * size, as: Int64.self) == start {
            update(b + tiles + j * size + 8, f.aggregation, value)
        } else {
            let at = tiles + (j + 1) * size
            b = store.resize(slot, at: at, by: size)
            b.storeBytes(of: start, toByteOffset: at, as: Int64.self)
            initialize(b + at + 8, f.aggregation, value)
            n += 1
            b.storeBytes(of: UInt32(n), toByteOffset: offset, as: UInt32.self)
        }
        return tiles + n * size
    }

    @inline(__always)
    static func initialize(_ p: UnsafeMutableRawPointer, _ a: Aggregation, _ v: Double) {
        switch a {
        case .count: p.storeBytes(of: Int64(1), as: Int64.self)
        case .sum, .min, .max: p.storeBytes(of: v, as: Double.self)
        case .avg:
            p.storeBytes(of: v, as: Double.self)
            p.storeBytes(of: Int64(1), toByteOffset: 8, as: Int64.self)
        }
    }

    @inline(__always)
    static func update(_ p: UnsafeMutableRawPointer, _ a: Aggregation, _ v: Double) {
        switch a {
        case .count: p.storeBytes(of: p.loadUnaligned(as: Int64.self) + 1, as: Int64.self)
        case .sum: p.storeBytes(of: p.loadUnaligned(as: Double.self) + v, as: Double.self)
        case .min: p.storeBytes(of: Swift.min(p.loadUnaligned(as: Double.self), v), as: Double.self)
        case .max: p.storeBytes(of: Swift.max(p.loadUnaligned(as: Double.self), v), as: Double.self)
        case .avg:
            p.storeBytes(of: p.loadUnaligned(as: Double.self) + v, as: Double.self)
            p.storeBytes(of: p.loadUnaligned(fromByteOffset: 8, as: Int64.self) + 1, toByteOffset: 8, as: Int64.self)
        }
    }

    /// The window's value at `t`: count and sum are 0 when empty; min, max
    /// and avg are null.
    static func read(_ p: UnsafeRawPointer, _ f: CompiledFeature, at t: Int64) -> (count: Int64, value: Double) {
        let n = Int(p.loadUnaligned(as: UInt32.self))
        let hi = f.isLifetime ? Int64.max : floorDiv(t, f.hopMs) * f.hopMs
        let lo = f.isLifetime ? Int64.min : hi - f.windowMs
        var count: Int64 = 0
        var acc = 0.0
        for j in 0..<n {
            let tile = p + 4 + j * f.tileSize
            let s = tile.loadUnaligned(as: Int64.self)
            guard s > lo, s <= hi else { continue }
            switch f.aggregation {
            case .count: count += tile.loadUnaligned(fromByteOffset: 8, as: Int64.self)
            case .sum: acc += tile.loadUnaligned(fromByteOffset: 8, as: Double.self); count += 1
            case .min:
                let v = tile.loadUnaligned(fromByteOffset: 8, as: Double.self)
                acc = count == 0 ? v : Swift.min(acc, v); count += 1
            case .max:
                let v = tile.loadUnaligned(fromByteOffset: 8, as: Double.self)
                acc = count == 0 ? v : Swift.max(acc, v); count += 1
            case .avg:
                acc += tile.loadUnaligned(fromByteOffset: 8, as: Double.self)
                count += tile.loadUnaligned(fromByteOffset: 16, as: Int64.self)
            }
        }
        return (count, acc)
    }

    static func write(_ p: UnsafeRawPointer, _ f: CompiledFeature, at t: Int64, into w: inout JSONWriter) {
        let (count, acc) = read(p, f, at: t)
        switch f.aggregation {
        case .count: w.int(count)
        case .sum: w.double(acc)
        case .min, .max: count == 0 ? w.null() : w.double(acc)
        case .avg: count == 0 ? w.null() : w.double(acc / Double(count))
        }
    }
}
