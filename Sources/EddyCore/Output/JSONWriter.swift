/// Appends JSON text to a reusable byte buffer.
public struct JSONWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 1 << 16) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always)
    public mutating func raw(_ b: UInt8) { bytes.append(b) }

    @inline(__always)
    public mutating func raw(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    @inline(__always)
    public mutating func raw<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }

    /// A JSON string with the needed escapes.
    @inline(__always)
    public mutating func string<C: Collection>(_ s: C) where C.Element == UInt8 {
        let done: Bool? = s.withContiguousStorageIfAvailable { buf in
            for c in buf where c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return false }
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: buf)
            bytes.append(UInt8(ascii: "\""))
            return true
        }
        if done != true { escapedString(s) }
    }

    mutating func escapedString<C: Collection>(_ s: C) where C.Element == UInt8 {
        bytes.append(UInt8(ascii: "\""))
        for c in s {
            switch c {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0..<0x20:
                raw("\\u00")
                bytes.append(hexDigit(c >> 4)); bytes.append(hexDigit(c & 0xF))
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func string(_ s: String) { var s = s; s.withUTF8 { string($0) } }

    public mutating func string(_ s: UnsafeRawBufferPointer) {
        string(UnsafeBufferPointer(start: s.baseAddress?.assumingMemoryBound(to: UInt8.self), count: s.count))
    }

    /// `"name":`
    @inline(__always)
    public mutating func key(_ name: [UInt8]) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func int(_ v: Int64) {
        if v == 0 { bytes.append(UInt8(ascii: "0")); return }
        var x = v.magnitude
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of digits
        let n = withUnsafeMutableBytes(of: &tmp) { buf -> Int in
            var i = 24
            while x > 0 { i -= 1; buf[i] = UInt8(48 + x % 10); x /= 10 }
            // As a buffer, not a slice: a slice took Array's generic append
            // (~160 instructions per number).
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<24]))
            return 24 - i
        }
        _ = n
    }

    /// A number: integral values print without a fraction; a value that
    /// overflowed to infinity (a huge sum) is not a JSON number: `null`.
    public mutating func double(_ v: Double) {
        if !v.isFinite {
            null()
        } else if v == v.rounded(), abs(v) < 1e15 {
            int(Int64(v))
        } else {
            bytes.append(contentsOf: v.description.utf8)
        }
    }

    public mutating func bool(_ v: Bool) { v ? raw("true") : raw("false") }
    public mutating func null() { raw("null") }
}

@inline(__always)
private func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 87 + v }

/// The text `JSONWriter.double` writes.
public func formatNumber(_ v: Double) -> String {
    var w = JSONWriter(capacity: 32)
    w.double(v)
    return String(decoding: w.bytes, as: UTF8.self)
}
