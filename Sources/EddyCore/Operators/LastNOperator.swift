#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `last_n` feature (SEMANTICS.md): the `n` values with the greatest
/// `(ts, arrival)`, newest first, optionally distinct.
///
/// A new event always has the greatest arrival, so it goes before every
/// entry with `ts <= its ts`; the arrival itself need not be stored.
enum LastNOperator {
    /// Returns the offset just past the section.
    @inline(__always)
    static func apply(
        _ store: StateStore, _ slot: Int32, _ offset: Int, _ f: CompiledFeature,
        passes: Bool, decoder: EventDecoder, ts: Int64
    ) -> Int {
        var b = store.blob(slot)
        var payload = Int(b.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        let sectionEnd = offset + LastNLayout.header + payload
        guard passes else { return sectionEnd }

        let s = decoder.field(f.field)
        let tag: UInt8
        switch s.kind {
        case .missing, .null: return sectionEnd
        case .string: tag = UInt8(ascii: "s")
        case .number: tag = UInt8(ascii: "n")
        case .bool: tag = s.boolValue ? UInt8(ascii: "t") : UInt8(ascii: "f")
        case .object, .array: tag = UInt8(ascii: "r")
        }
        let bytes = s.kind == .bool ? UnsafeBufferPointer(start: nil, count: 0) : decoder.fieldBytes(f.field)
        let valueLength = 1 + bytes.count
        guard valueLength <= Int(UInt16.max) else { return sectionEnd }  // too large to keep

        var count = Int(b.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self))
        let entries = offset + LastNLayout.header

        // One walk: the insert position (first entry with ts <= new ts) and,
        // for distinct, the entry holding the same value.
        var position = -1, positionOffset = sectionEnd
        var match = -1, matchOffset = 0, matchSize = 0
        var cursor = entries
        for i in 0..<count {
            let ets = b.loadUnaligned(fromByteOffset: cursor, as: Int64.self)
            let elen = Int(b.loadUnaligned(fromByteOffset: cursor + 8, as: UInt16.self))
            if position < 0, ets <= ts { position = i; positionOffset = cursor }
            if f.distinct, match < 0, elen == valueLength,
                equalValue(b + cursor + LastNLayout.entryHeader, tag, bytes)
            {
                match = i; matchOffset = cursor; matchSize = LastNLayout.entryHeader + elen
            }
            cursor += LastNLayout.entryHeader + elen
        }
        if position < 0 { position = count }

        if match >= 0 {
            if match < position { return sectionEnd }  // the stored one is newer
            b = store.resize(slot, at: matchOffset, by: -matchSize)
            payload -= matchSize
            count -= 1
        } else if position >= f.n {
            return sectionEnd
        }

        let entrySize = LastNLayout.entryHeader + valueLength
        b = store.resize(slot, at: positionOffset, by: entrySize)
        b.storeBytes(of: ts, toByteOffset: positionOffset, as: Int64.self)
        b.storeBytes(of: UInt16(valueLength), toByteOffset: positionOffset + 8, as: UInt16.self)
        b.storeBytes(of: tag, toByteOffset: positionOffset + LastNLayout.entryHeader, as: UInt8.self)
        if bytes.count > 0 {
            memcpy(b + positionOffset + LastNLayout.entryHeader + 1, bytes.baseAddress!, bytes.count)
        }
        payload += entrySize
        count += 1

        if count > f.n {
            // Drop the oldest entry: walk to the n-th entry's end.
            var c = entries
            for _ in 0..<f.n { c += LastNLayout.entryHeader + Int(b.loadUnaligned(fromByteOffset: c + 8, as: UInt16.self)) }
            let tail = entries + payload - c
            b = store.resize(slot, at: c, by: -tail)
            payload -= tail
            count = f.n
        }
        b.storeBytes(of: UInt32(payload), toByteOffset: offset, as: UInt32.self)
        b.storeBytes(of: UInt16(count), toByteOffset: offset + 4, as: UInt16.self)
        return entries + payload
    }

    @inline(__always)
    static func equalValue(_ p: UnsafeMutableRawPointer, _ tag: UInt8, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard p.load(as: UInt8.self) == tag else { return false }
        return bytes.count == 0 || memcmp(p + 1, bytes.baseAddress!, bytes.count) == 0
    }

    /// Writes the values as a JSON array, newest first.
    static func write(_ p: UnsafeRawPointer, into w: inout JSONWriter) {
        let count = Int(p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        var cursor = LastNLayout.header
        w.raw(UInt8(ascii: "["))
        for i in 0..<count {
            if i > 0 { w.raw(UInt8(ascii: ",")) }
            let length = Int(p.loadUnaligned(fromByteOffset: cursor + 8, as: UInt16.self))
            let value = UnsafeRawBufferPointer(start: p + cursor + LastNLayout.entryHeader, count: length)
            writeValue(value, into: &w)
            cursor += LastNLayout.entryHeader + length
        }
        w.raw(UInt8(ascii: "]"))
    }

    /// Writes one tagged value as JSON.
    static func writeValue(_ v: UnsafeRawBufferPointer, into w: inout JSONWriter) {
        let body = UnsafeRawBufferPointer(rebasing: v[1...])
        switch v[0] {
        case UInt8(ascii: "s"): w.string(body)
        case UInt8(ascii: "t"): w.raw("true")
        case UInt8(ascii: "f"): w.raw("false")
        default: w.raw(body)
        }
    }
}
