#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One source partition's part of a key's state (SEMANTICS.md, Keys spread
/// over partitions): a state blob built from the key's events of that
/// partition only, in offset order.
public struct PartState {
    public var partition: Int32
    /// A blob of this engine's layout (its own key header is skipped).
    public var blob: UnsafeRawPointer

    public init(partition: Int32, blob: UnsafeRawPointer) {
        self.partition = partition
        self.blob = blob
    }
}

extension FeatureEngine {
    /// `mergeParts` of parts held as byte arrays: (partition, state blob).
    public func mergeParts(key: [UInt8], _ parts: [(Int32, [UInt8])]) -> [UInt8] {
        var states: [PartState] = []
        func go(_ i: Int) -> [UInt8] {
            if i == parts.count { return key.withUnsafeBytes { mergeParts(key: $0, states) } }
            return parts[i].1.withUnsafeBytes { b in
                states.append(PartState(partition: parts[i].0, blob: b.baseAddress!))
                return go(i + 1)
            }
        }
        return go(0)
    }

    /// Merges the parts of one key into one state blob whose reads at any
    /// `T` (`writeFeatures(blob:at:into:)`) are the merged reads of
    /// SEMANTICS.md, "Keys spread over partitions". Pure: it reads the
    /// parts and allocates the result; not for the hot path.
    ///
    /// - `K` and `time_since`: the greatest over the parts.
    /// - Window and "More aggregations" tiles: every part's tiles, ordered
    ///   by start, ties by ascending partition, so a read folds them in
    ///   `(start, partition)` order (the order SEMANTICS gives variance; the
    ///   same order for sums, whose doubles depend on it). Lifetime
    ///   accumulators are tiles at start 0. `first`/`last` tiles of one
    ///   start are combined into the one with the least / greatest
    ///   `(ts, partition)`, since their read takes the last tile's value.
    /// - `last_n`: entries ordered by `(ts, partition, arrival)`, greatest
    ///   first, the first `n` (with `distinct`, a value at its newest place).
    /// - `session`: from the part whose session has the greatest `last`
    ///   (ties: greater `start`, then greater partition), absorbing every
    ///   other part's session overlapping `[start - gap, last + gap]`, ends
    ///   included, until none does.
    ///
    /// With one part the result reads exactly as that part. Parts may come
    /// in any order; two parts must not share a partition.
    public func mergeParts(key: UnsafeRawBufferPointer, _ parts: [PartState]) -> [UInt8] {
        let parts = parts.sorted { $0.partition < $1.partition }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        func append<T>(_ v: T) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
        func appendBytes(_ p: UnsafeRawPointer, _ n: Int) {
            out.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
        }
        append(UInt16(key.count).littleEndian)
        out.append(contentsOf: key)
        // Cursors: each part's offset of its current section.
        var offsets = parts.map { 2 + Int($0.blob.loadUnaligned(as: UInt16.self)) }
        var k = noKeyTime
        for (i, p) in parts.enumerated() {
            k = max(k, p.blob.loadUnaligned(fromByteOffset: offsets[i], as: Int64.self))
            offsets[i] += 8
        }
        append(k.littleEndian)

        for f in features {
            switch f.kind {
            case .session:
                var sessions: [(start: Int64, last: Int64, events: Int64, partition: Int32)] = []
                for (i, p) in parts.enumerated() {
                    let s = p.blob + offsets[i]
                    let events = s.loadUnaligned(fromByteOffset: 16, as: Int64.self)
                    if events > 0 {
                        sessions.append((s.loadUnaligned(as: Int64.self), s.loadUnaligned(fromByteOffset: 8, as: Int64.self), events, p.partition))
                    }
                    offsets[i] += SessionLayout.size
                }
                let merged = Self.mergeSessions(sessions, gap: f.gapMs)
                append(merged.start.littleEndian)
                append(merged.last.littleEndian)
                append(merged.events.littleEndian)

            case .window:
                var tiles: [(start: Int64, partition: Int32, at: UnsafeRawPointer)] = []
                for (i, p) in parts.enumerated() {
                    let s = p.blob + offsets[i]
                    let n = Int(s.loadUnaligned(as: UInt32.self))
                    for j in 0..<n {
                        let t = s + 4 + j * f.tileSize
                        tiles.append((t.loadUnaligned(as: Int64.self), p.partition, t))
                    }
                    offsets[i] += 4 + n * f.tileSize
                }
                tiles.sort { ($0.start, $0.partition) < ($1.start, $1.partition) }
                append(UInt32(tiles.count).littleEndian)
                for t in tiles { appendBytes(t.at, f.tileSize) }

            case .tiled:
                var tiles: [(start: Int64, partition: Int32, at: UnsafeRawPointer, size: Int)] = []
                for (i, p) in parts.enumerated() {
                    let s = p.blob + offsets[i]
                    let payload = Int(s.loadUnaligned(as: UInt32.self))
                    var c = TiledLayout.header
                    while c < TiledLayout.header + payload {
                        let size = Int(s.loadUnaligned(fromByteOffset: c + 8, as: UInt32.self))
                        tiles.append((s.loadUnaligned(fromByteOffset: c, as: Int64.self), p.partition, s + c, TiledLayout.tileHeader + size))
                        c += TiledLayout.tileHeader + size
                    }
                    offsets[i] += TiledLayout.header + payload
                }
                tiles.sort { ($0.start, $0.partition) < ($1.start, $1.partition) }
                if f.tiled == .first || f.tiled == .last {
                    // One tile per start: the least (first) or greatest
                    // (last) (ts, partition); tiles are in ascending partition.
                    var kept: [(start: Int64, partition: Int32, at: UnsafeRawPointer, size: Int)] = []
                    for t in tiles {
                        if let prev = kept.last, prev.start == t.start {
                            let a = prev.at.loadUnaligned(fromByteOffset: TiledLayout.tileHeader, as: Int64.self)
                            let b = t.at.loadUnaligned(fromByteOffset: TiledLayout.tileHeader, as: Int64.self)
                            if f.tiled == .first ? b < a : b >= a { kept[kept.count - 1] = t }
                        } else {
                            kept.append(t)
                        }
                    }
                    tiles = kept
                }
                append(UInt32(tiles.reduce(0) { $0 + $1.size }).littleEndian)
                for t in tiles { appendBytes(t.at, t.size) }

            case .lastN:
                // Each part's entries are newest first by (ts, arrival).
                var entries: [(ts: Int64, partition: Int32, rank: Int, at: UnsafeRawPointer, size: Int)] = []
                for (i, p) in parts.enumerated() {
                    let s = p.blob + offsets[i]
                    let payload = Int(s.loadUnaligned(as: UInt32.self))
                    let count = Int(s.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
                    var c = LastNLayout.header
                    for r in 0..<count {
                        let len = Int(s.loadUnaligned(fromByteOffset: c + 8, as: UInt16.self))
                        entries.append((s.loadUnaligned(fromByteOffset: c, as: Int64.self), p.partition, r, s + c, LastNLayout.entryHeader + len))
                        c += LastNLayout.entryHeader + len
                    }
                    offsets[i] += LastNLayout.header + payload
                }
                // Greatest (ts, partition, arrival) first; a smaller rank in a part is a later arrival.
                entries.sort { a, b in
                    if a.ts != b.ts { return a.ts > b.ts }
                    if a.partition != b.partition { return a.partition > b.partition }
                    return a.rank < b.rank
                }
                var taken: [(at: UnsafeRawPointer, size: Int)] = []
                for e in entries where taken.count < f.n {
                    if f.distinct, taken.contains(where: { $0.size == e.size
                        && memcmp($0.at + LastNLayout.entryHeader, e.at + LastNLayout.entryHeader, e.size - LastNLayout.entryHeader) == 0 }) {
                        continue
                    }
                    taken.append((e.at, e.size))
                }
                append(UInt32(taken.reduce(0) { $0 + $1.size }).littleEndian)
                append(UInt16(taken.count).littleEndian)
                for t in taken { appendBytes(t.at, t.size) }

            case .timeSince:
                var latest = noKeyTime
                for (i, p) in parts.enumerated() {
                    latest = max(latest, p.blob.loadUnaligned(fromByteOffset: offsets[i], as: Int64.self))
                    offsets[i] += 8
                }
                append(latest.littleEndian)
            }
        }
        return out
    }

    /// The session rule of "Keys spread over partitions"; `(0, 0, 0)` when
    /// no part has a session.
    static func mergeSessions(
        _ sessions: [(start: Int64, last: Int64, events: Int64, partition: Int32)], gap: Int64
    ) -> (start: Int64, last: Int64, events: Int64) {
        guard var base = sessions.indices.max(by: { a, b in
            let x = sessions[a], y = sessions[b]
            return (x.last, x.start, x.partition) < (y.last, y.start, y.partition)
        }) .map({ sessions[$0] }) else { return (0, 0, 0) }
        var absorbed = Set([base.partition])
        var changed = true
        while changed {
            changed = false
            for s in sessions where !absorbed.contains(s.partition) {
                if s.last >= base.start &- gap && s.start <= base.last &+ gap {
                    base.start = min(base.start, s.start)
                    base.last = max(base.last, s.last)
                    base.events += s.events
                    absorbed.insert(s.partition)
                    changed = true
                }
            }
        }
        return (base.start, base.last, base.events)
    }

    /// Merges the parts and writes every feature read at `T` (see
    /// `writeFeatures(blob:at:into:)`).
    public func writeMergedFeatures(key: UnsafeRawBufferPointer, _ parts: [PartState], at t: Int64, into w: inout JSONWriter) {
        let merged = mergeParts(key: key, parts)
        merged.withUnsafeBytes { writeFeatures(blob: $0.baseAddress!, at: t, into: &w) }
    }
}
