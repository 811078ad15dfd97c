/// Splits the text of one JSON object into its top-level members without
/// building values: each member's name and the byte range of its value's
/// text. For CSV output and for comparing feature objects column by column.
public enum JSONMembers {
    /// Calls `body(name, valueRange)` for each member of the object in
    /// `text`, in order; `name` is the member name's unescaped bytes (valid
    /// during the call), `valueRange` the range of the raw value text in
    /// `text`. Returns false when `text` is not a well-formed object.
    @discardableResult
    public static func forEach(_ text: UnsafeRawBufferPointer,
                               _ body: (UnsafeRawBufferPointer, Range<Int>) throws -> Void) rethrows -> Bool {
        let b = text.bindMemory(to: UInt8.self)
        var i = skipSpace(b, 0)
        guard i < b.count, b[i] == UInt8(ascii: "{") else { return false }
        i = skipSpace(b, i + 1)
        if i < b.count, b[i] == UInt8(ascii: "}") { return true }
        var unescaped: [UInt8] = []
        while i < b.count {
            guard b[i] == UInt8(ascii: "\"") else { return false }
            guard let nameEnd = stringEnd(b, i) else { return false }
            let nameRange = (i + 1)..<(nameEnd - 1)
            i = skipSpace(b, nameEnd)
            guard i < b.count, b[i] == UInt8(ascii: ":") else { return false }
            i = skipSpace(b, i + 1)
            guard let valueEnd = valueEnd(b, i) else { return false }
            let valueRange = i..<valueEnd
            let raw = UnsafeRawBufferPointer(rebasing: text[nameRange])
            if raw.contains(UInt8(ascii: "\\")) {
                unescaped.removeAll(keepingCapacity: true)
                unescapeString(raw, into: &unescaped)
                try unescaped.withUnsafeBytes { try body($0, valueRange) }
            } else {
                try body(raw, valueRange)
            }
            i = skipSpace(b, valueEnd)
            guard i < b.count else { return false }
            if b[i] == UInt8(ascii: "}") { return true }
            guard b[i] == UInt8(ascii: ",") else { return false }
            i = skipSpace(b, i + 1)
        }
        return false
    }

    /// The members as (name, raw value text) pairs.
    public static func members(_ text: [UInt8]) -> [(name: String, value: [UInt8])]? {
        var out: [(name: String, value: [UInt8])] = []
        let ok = text.withUnsafeBytes { t in
            forEach(t) { name, range in
                out.append((String(decoding: name, as: UTF8.self), Array(t[range])))
            }
        }
        return ok ? out : nil
    }

    @inline(__always)
    static func skipSpace(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> Int {
        var i = i
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        return i
    }

    /// The index after the closing quote of the string starting at `i`.
    @inline(__always)
    static func stringEnd(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> Int? {
        var j = i + 1
        while j < b.count {
            switch b[j] {
            case UInt8(ascii: "\\"): j += 2
            case UInt8(ascii: "\""): return j + 1
            default: j += 1
            }
        }
        return nil
    }

    /// The index after the value starting at `i`.
    static func valueEnd(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> Int? {
        guard i < b.count else { return nil }
        switch b[i] {
        case UInt8(ascii: "\""):
            return stringEnd(b, i)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var j = i
            while j < b.count {
                switch b[j] {
                case UInt8(ascii: "\""):
                    guard let e = stringEnd(b, j) else { return nil }
                    j = e
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return j + 1 }
                default: break
                }
                j += 1
            }
            return nil
        default:
            var j = i
            while j < b.count {
                let c = b[j]
                if c == UInt8(ascii: ",") || c == UInt8(ascii: "}") || c == UInt8(ascii: "]")
                    || c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { break }
                j += 1
            }
            return j > i ? j : nil
        }
    }

    /// Appends the UTF-8 bytes a JSON string's content (without quotes) stands for.
    public static func unescapeString(_ s: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        var i = 0
        var pendingHigh: UInt32?
        func appendScalar(_ v: UInt32) {
            guard let u = Unicode.Scalar(v) else { out.append(contentsOf: [0xEF, 0xBF, 0xBD]); return }
            out.append(contentsOf: Array(String(Character(u)).utf8))
        }
        while i < s.count {
            let c = s[i]
            guard c == UInt8(ascii: "\\"), i + 1 < s.count else {
                if let h = pendingHigh { appendScalar(h); pendingHigh = nil }
                out.append(c)
                i += 1
                continue
            }
            let e = s[i + 1]
            i += 2
            if e != UInt8(ascii: "u"), let h = pendingHigh { appendScalar(h); pendingHigh = nil }
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var v: UInt32 = 0
                var n = 0
                while n < 4, i < s.count, let d = hexValue(s[i]) { v = v << 4 | d; n += 1; i += 1 }
                if (0xD800..<0xDC00).contains(v) {
                    if let h = pendingHigh { appendScalar(h) }
                    pendingHigh = v
                } else if (0xDC00..<0xE000).contains(v), let h = pendingHigh {
                    appendScalar(0x10000 + ((h - 0xD800) << 10) + (v - 0xDC00))
                    pendingHigh = nil
                } else {
                    if let h = pendingHigh { appendScalar(h); pendingHigh = nil }
                    appendScalar(v)
                }
            default: out.append(e)  // \" \\ \/
            }
        }
        if let h = pendingHigh { appendScalar(h) }
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case 48...57: return UInt32(c - 48)
        case 65...70: return UInt32(c - 55)
        case 97...102: return UInt32(c - 87)
        default: return nil
        }
    }
}
