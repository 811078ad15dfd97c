#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reusable buffers for reading the "More aggregations" at `T`, so a read
/// allocates nothing once they have grown. One per engine (one thread).
final class ReadScratch {
    var hashes: [UInt64] = []
    var registers: [UInt8] = []
    /// Percentile buckets as `(key + 2^31) << 32 | count`, sortable by key.
    var buckets: [UInt64] = []
    var texts: [TextCount] = []

    init() {
        hashes.reserveCapacity(256)
        buckets.reserveCapacity(256)
        texts.reserveCapacity(64)
    }
}

/// One count_by text (pointing into a blob) and its count.
struct TextCount {
    var text: UnsafeRawPointer
    var length: Int
    var count: Int64

    /// Bytewise order, a shorter prefix first.
    @inline(__always)
    static func textLess(_ a: TextCount, _ b: TextCount) -> Bool {
        let n = Swift.min(a.length, b.length)
        let c = n == 0 ? 0 : memcmp(a.text, b.text, n)
        return c != 0 ? c < 0 : a.length < b.length
    }
}

/// `__other__`, the text count_by counts overflowing values under.
nonisolated(unsafe) let otherText: UnsafeRawBufferPointer = {
    let bytes = Array("__other__".utf8)
    let p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 1)
    p.copyMemory(from: bytes, byteCount: bytes.count)
    return UnsafeRawBufferPointer(start: p, count: bytes.count)
}()

extension TiledOperator {
    /// Calls `body` with each tile's payload and size that a read at `t`
    /// folds, ascending by start: every tile of a lifetime aggregate, else
    /// those with `floor(T/H)*H - W < start <= floor(T/H)*H`.
    @inline(__always)
    static func forEachTile(
        _ p: UnsafeRawPointer, _ f: CompiledFeature, at t: Int64, _ body: (UnsafeRawPointer, Int) -> Void
    ) {
        let payload = Int(p.loadUnaligned(as: UInt32.self))
        var lo = Int64.min, hi = Int64.max
        if !f.isLifetime {
            hi = floorDiv(t, f.hopMs) * f.hopMs
            lo = hi - f.windowMs
        }
        var c = TiledLayout.header
        let end = TiledLayout.header + payload
        while c < end {
            let s = p.loadUnaligned(fromByteOffset: c, as: Int64.self)
            let size = Int(p.loadUnaligned(fromByteOffset: c + 8, as: UInt32.self))
            if s > lo, s <= hi { body(p + c + TiledLayout.tileHeader, size) }
            c += TiledLayout.tileHeader + size
        }
    }

    /// The section's size in bytes.
    @inline(__always)
    static func sectionSize(_ p: UnsafeRawPointer) -> Int {
        TiledLayout.header + Int(p.loadUnaligned(as: UInt32.self))
    }

    /// Writes column `column` of the feature read at `t`. For percentile,
    /// `prepare` must have been called for this section and `t` first.
    static func write(
        _ p: UnsafeRawPointer, _ f: CompiledFeature, column: Int, quantiles: [Double], at t: Int64,
        scratch: ReadScratch, into w: inout JSONWriter
    ) {
        switch f.tiled {
        case .distinctCount: w.int(distinctCount(p, f, at: t, scratch: scratch))
        case .percentile:
            guard let v = quantile(quantiles[column], f, scratch: scratch) else { w.null(); return }
            w.double(v)
        case .first, .last:
            var value: UnsafeRawBufferPointer?
            forEachTile(p, f, at: t) { tile, size in
                if f.tiled == .last || value == nil {
                    value = UnsafeRawBufferPointer(start: tile + 8, count: size - 8)
                }
            }
            guard let value else { w.null(); return }
            LastNOperator.writeValue(value, into: &w)
        case .variance, .stddev:
            guard let (n, _, m2) = moments(p, f, at: t) else { w.null(); return }
            let variance = m2 / n
            w.double(f.tiled == .variance ? variance : variance.squareRoot())
        case .countBy: writeCountBy(p, f, at: t, scratch: scratch, into: &w)
        }
    }

    // MARK: distinct_count

    /// The estimate at `t` (SEMANTICS.md): the union's size when every tile
    /// holds a set, else the HyperLogLog estimate of the union's registers.
    static func distinctCount(_ p: UnsafeRawPointer, _ f: CompiledFeature, at t: Int64, scratch: ReadScratch) -> Int64 {
        var allSets = true
        scratch.hashes.removeAll(keepingCapacity: true)
        forEachTile(p, f, at: t) { tile, _ in
            let count = Int(tile.loadUnaligned(as: UInt16.self))
            if count == Int(TiledLayout.registersMark) { allSets = false; return }
            for i in 0..<count { scratch.hashes.append(tile.loadUnaligned(fromByteOffset: 2 + i * 8, as: UInt64.self)) }
        }
        if allSets {
            guard !scratch.hashes.isEmpty else { return 0 }
            scratch.hashes.sort()
            var distinct: Int64 = 1
            for i in 1..<scratch.hashes.count where scratch.hashes[i] != scratch.hashes[i - 1] { distinct += 1 }
            return distinct
        }
        let m = 1 << f.precision
        scratch.registers.removeAll(keepingCapacity: true)
        scratch.registers.append(contentsOf: repeatElement(0, count: m))
        scratch.registers.withUnsafeMutableBytes { regs in
            let r = regs.baseAddress!
            for h in scratch.hashes { addRegister(r, f.precision, h) }
            forEachTile(p, f, at: t) { tile, _ in
                guard tile.loadUnaligned(as: UInt16.self) == TiledLayout.registersMark else { return }
                for j in 0..<m {
                    let v = tile.load(fromByteOffset: 2 + j, as: UInt8.self)
                    if v > regs[j] { regs[j] = v }
                }
            }
        }
        return hllEstimate(scratch.registers, precision: f.precision)
    }

    /// `floor(E + 0.5)` with `E = a*m^2 / sum(2^-M[j])` (summed in ascending
    /// j), `a = 0.7213/(1 + 1.079/m)`, and `E = m*ln(m/V)` when `E <= 2.5m`
    /// and `V > 0` registers are 0.
    static func hllEstimate(_ registers: [UInt8], precision: Int) -> Int64 {
        let m = Double(1 << precision)
        var sum = 0.0
        var zeros = 0
        for r in registers {
            sum += Double(sign: .plus, exponent: -Int(r), significand: 1)
            if r == 0 { zeros += 1 }
        }
        let alpha = 0.7213 / (1 + 1.079 / m)
        var e = alpha * m * m / sum
        if e <= 2.5 * m, zeros > 0 { e = m * log(m / Double(zeros)) }
        return Int64((e + 0.5).rounded(.down))
    }

    // MARK: percentile

    /// Gathers the buckets of the tiles read at `t`, sorted by key.
    static func prepare(_ p: UnsafeRawPointer, _ f: CompiledFeature, at t: Int64, scratch: ReadScratch) {
        scratch.buckets.removeAll(keepingCapacity: true)
        forEachTile(p, f, at: t) { tile, _ in
            let n = Int(tile.loadUnaligned(as: UInt32.self))
            for i in 0..<n {
                let key = tile.loadUnaligned(fromByteOffset: 4 + i * 8, as: Int32.self)
                let count = tile.loadUnaligned(fromByteOffset: 8 + i * 8, as: UInt32.self)
                scratch.buckets.append(UInt64(UInt32(bitPattern: key) ^ 0x8000_0000) << 32 | UInt64(count))
            }
        }
        scratch.buckets.sort()
    }

    /// Quantile `q` of the prepared buckets; nil when empty.
    static func quantile(_ q: Double, _ f: CompiledFeature, scratch: ReadScratch) -> Double? {
        var n: Int64 = 0
        for b in scratch.buckets { n += Int64(b & 0xFFFF_FFFF) }
        guard n > 0 else { return nil }
        let rank = (q * Double(n - 1)).rounded(.down)
        var cumulative: Int64 = 0
        for b in scratch.buckets {
            cumulative += Int64(b & 0xFFFF_FFFF)
            if Double(cumulative) > rank { return bucketValue(Int32(bitPattern: UInt32(b >> 32) ^ 0x8000_0000), f) }
        }
        return nil  // not reached: the last bucket's cumulative count is n > rank
    }

    /// `2g^i/(g + 1)`, negated for a negative bucket, 0 for the zero bucket.
    static func bucketValue(_ key: Int32, _ f: CompiledFeature) -> Double {
        if key == 0 { return 0 }
        let g = f.gamma
        if key > 0 { return 2 * pow(g, Double(key - TiledLayout.bucketBias)) / (g + 1) }
        return -(2 * pow(g, Double(-TiledLayout.bucketBias - key)) / (g + 1))
    }

    // MARK: variance, stddev

    /// `(n, mean, M2)` of the tiles read at `t`, folded in ascending start;
    /// nil when empty.
    static func moments(_ p: UnsafeRawPointer, _ f: CompiledFeature, at t: Int64) -> (Double, Double, Double)? {
        var n = 0.0, mean = 0.0, m2 = 0.0
        var any = false
        forEachTile(p, f, at: t) { tile, _ in
            let nb = Double(tile.loadUnaligned(as: Int64.self))
            let mb = tile.loadUnaligned(fromByteOffset: 8, as: Double.self)
            let m2b = tile.loadUnaligned(fromByteOffset: 16, as: Double.self)
            if !any {
                n = nb; mean = mb; m2 = m2b; any = true
                return
            }
            let na = n
            let total = na + nb
            let d = mb - mean
            mean = mean + d * nb / total
            m2 = m2 + m2b + d * d * na * nb / total
            n = total
        }
        return any ? (n, mean, m2) : nil
    }

    // MARK: count_by

    static func writeCountBy(
        _ p: UnsafeRawPointer, _ f: CompiledFeature, at t: Int64, scratch: ReadScratch, into w: inout JSONWriter
    ) {
        scratch.texts.removeAll(keepingCapacity: true)
        forEachTile(p, f, at: t) { tile, _ in
            let other = tile.loadUnaligned(as: UInt32.self)
            if other > 0 { scratch.texts.append(TextCount(text: otherText.baseAddress!, length: otherText.count, count: Int64(other))) }
            let entries = Int(tile.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
            var c = 6
            for _ in 0..<entries {
                let count = tile.loadUnaligned(fromByteOffset: c, as: UInt32.self)
                let length = Int(tile.loadUnaligned(fromByteOffset: c + 4, as: UInt16.self))
                scratch.texts.append(TextCount(text: tile + c + 6, length: length, count: Int64(count)))
                c += 6 + length
            }
        }
        // Sum per text, then order by count descending, text ascending.
        scratch.texts.sort(by: TextCount.textLess)
        var merged = 0
        for i in scratch.texts.indices {
            if merged > 0, !TextCount.textLess(scratch.texts[merged - 1], scratch.texts[i]) {
                scratch.texts[merged - 1].count += scratch.texts[i].count
            } else {
                scratch.texts[merged] = scratch.texts[i]
                merged += 1
            }
        }
        scratch.texts.removeLast(scratch.texts.count - merged)
        scratch.texts.sort { a, b in a.count != b.count ? a.count > b.count : TextCount.textLess(a, b) }
        w.raw(UInt8(ascii: "{"))
        for i in 0..<Swift.min(f.top, scratch.texts.count) {
            if i > 0 { w.raw(UInt8(ascii: ",")) }
            let e = scratch.texts[i]
            w.string(UnsafeRawBufferPointer(start: e.text, count: e.length))
            w.raw(UInt8(ascii: ":"))
            w.int(e.count)
        }
        w.raw(UInt8(ascii: "}"))
    }
}
