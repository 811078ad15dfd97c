/// A value's canonical text (SEMANTICS.md, "More aggregations"): what
/// distinct_count hashes and count_by counts. A string is its UTF-8 bytes, a
/// boolean `true`/`false`, and a number is read as a double and written as
/// ECMAScript's `Number::toString` writes it (shortest round-trip digits;
/// `-0` is `0`).
public enum CanonicalText {
    /// Bytes `number` may write (the longest is `-1.2345678901234567e-308`).
    public static let capacity = 40

    /// The canonical text of a JSON number whose source is `text` and whose
    /// value is `value`: a JSON integer of at most 15 digits is its own
    /// canonical text (JSON allows no leading zeros; `-0` becomes `0`), so
    /// the common case copies it; others are formatted from the double.
    @inline(__always)
    public static func number(
        text: UnsafePointer<UInt8>, length: Int, value: Double, into out: UnsafeMutablePointer<UInt8>
    ) -> Int {
        if length <= 16 {
            var i = text[0] == UInt8(ascii: "-") ? 1 : 0
            let digitsStart = i
            while i < length, text[i] &- 48 < 10 { i += 1 }
            if i == length, length - digitsStart <= 15, length > digitsStart {
                if value == 0 { out[0] = UInt8(ascii: "0"); return 1 }
                out.update(from: text, count: length)
                return length
            }
        }
        return number(value, into: out)
    }

    /// ECMAScript `Number::toString(v)` of a finite double.
    public static func number(_ v: Double, into out: UnsafeMutablePointer<UInt8>) -> Int {
        if v == 0 { out[0] = UInt8(ascii: "0"); return 1 }
        var n = 0
        var x = v
        if x < 0 { out[0] = UInt8(ascii: "-"); n = 1; x = -x }
        // Integers below 2^53: their decimal digits are the shortest.
        if x < 9_007_199_254_740_992, x == x.rounded(.towardZero) {
            var u = UInt64(x)
            var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
            return withUnsafeMutableBytes(of: &tmp) { buf in
                var i = 24
                while u > 0 { i -= 1; buf[i] = UInt8(48 + u % 10); u /= 10 }
                for j in i..<24 { out[n] = buf[j]; n += 1 }
                return n
            }
        }
        // Shortest round-trip digits, from Swift's description (which has
        // them, in another layout): `d.ddd`, `d.ddde±x`, `0.000ddd`.
        var digits: [UInt8] = []
        digits.reserveCapacity(20)
        var pointAt = -1, exponent = 0
        var text = x.description.utf8.makeIterator()
        var inExponent = false, expNegative = false
        while let c = text.next() {
            if inExponent {
                if c == UInt8(ascii: "-") { expNegative = true } else if c &- 48 < 10 { exponent = exponent * 10 + Int(c - 48) }
            } else if c == UInt8(ascii: ".") {
                pointAt = digits.count
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                inExponent = true
            } else if c &- 48 < 10 {
                digits.append(c)
            }
        }
        if expNegative { exponent = -exponent }
        if pointAt < 0 { pointAt = digits.count }
        // value = 0.d1d2...dk * 10^e10
        var lead = 0
        while lead < digits.count - 1, digits[lead] == UInt8(ascii: "0") { lead += 1 }
        var end = digits.count
        while end > lead + 1, digits[end - 1] == UInt8(ascii: "0") { end -= 1 }
        let d = Array(digits[lead..<end])
        let k = d.count
        let e10 = pointAt - lead + exponent
        func put(_ c: UInt8) { out[n] = c; n += 1 }
        if k <= e10, e10 <= 21 {
            for c in d { put(c) }
            for _ in 0..<(e10 - k) { put(UInt8(ascii: "0")) }
        } else if 0 < e10, e10 <= 21 {
            for (i, c) in d.enumerated() {
                if i == e10 { put(UInt8(ascii: ".")) }
                put(c)
            }
        } else if -6 < e10, e10 <= 0 {
            put(UInt8(ascii: "0")); put(UInt8(ascii: "."))
            for _ in 0..<(-e10) { put(UInt8(ascii: "0")) }
            for c in d { put(c) }
        } else {
            put(d[0])
            if k > 1 {
                put(UInt8(ascii: "."))
                for c in d[1...] { put(c) }
            }
            put(UInt8(ascii: "e"))
            let e = e10 - 1
            put(e < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            var m = e.magnitude
            var tmp: [UInt8] = []
            repeat { tmp.append(UInt8(48 + m % 10)); m /= 10 } while m > 0
            for c in tmp.reversed() { put(c) }
        }
        return n
    }

    /// The canonical text of a string, number or boolean field as bytes,
    /// written into `scratch` when it is not the field's own bytes; nil for
    /// a missing field, null, object or array (skipped by every kind that
    /// takes canonical texts).
    @inline(__always)
    static func of(
        _ decoder: EventDecoder, _ field: Int, scratch: UnsafeMutablePointer<UInt8>
    ) -> UnsafeRawBufferPointer? {
        let s = decoder.field(field)
        switch s.kind {
        case .string:
            return UnsafeRawBufferPointer(decoder.fieldBytes(field))
        case .number:
            let b = decoder.fieldBytes(field)
            guard !s.number.isNaN else {
                // Beyond a double's range: read as a double it is infinite.
                var n = 0
                if b[0] == UInt8(ascii: "-") { scratch[0] = UInt8(ascii: "-"); n = 1 }
                for c in "Infinity".utf8 { scratch[n] = c; n += 1 }
                return UnsafeRawBufferPointer(start: scratch, count: n)
            }
            let n = number(text: b.baseAddress!, length: b.count, value: s.number, into: scratch)
            return UnsafeRawBufferPointer(start: scratch, count: n)
        case .bool:
            if s.boolValue {
                scratch[0] = UInt8(ascii: "t"); scratch[1] = UInt8(ascii: "r"); scratch[2] = UInt8(ascii: "u")
                scratch[3] = UInt8(ascii: "e")
                return UnsafeRawBufferPointer(start: scratch, count: 4)
            }
            scratch[0] = UInt8(ascii: "f"); scratch[1] = UInt8(ascii: "a"); scratch[2] = UInt8(ascii: "l")
            scratch[3] = UInt8(ascii: "s"); scratch[4] = UInt8(ascii: "e")
            return UnsafeRawBufferPointer(start: scratch, count: 5)
        case .missing, .null, .object, .array:
            return nil
        }
    }
}
