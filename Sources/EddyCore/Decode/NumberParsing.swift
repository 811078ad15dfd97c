// strtod only, on the rare slow path.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Powers of ten that are exact in a Double (Clinger's fast path).
private let exactPowersOfTen: [Double] = (0...22).map { pow(10.0, Double($0)) }

/// Parses a JSON number that the scanner already validated.
///
/// Decimal numbers with at most 15 significant digits and a small exponent
/// take an exact fast path; everything else goes through `strtod`, which
/// rounds correctly. Returns NaN when the value is not finite.
@inline(__always)
func parseJSONNumber(_ p: UnsafePointer<UInt8>, _ length: Int) -> Double {
    var i = 0
    var negative = false
    if p[0] == UInt8(ascii: "-") { negative = true; i = 1 }
    var mantissa: UInt64 = 0
    var digits = 0
    var scale = 0
    while i < length, p[i] &- 48 < 10 {
        mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48); digits += 1; i += 1
    }
    if i < length, p[i] == UInt8(ascii: ".") {
        i += 1
        while i < length, p[i] &- 48 < 10 {
            mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48); digits += 1; scale -= 1; i += 1
        }
    }
    if i == length, digits <= 15 {
        let value = Double(mantissa)
        let result = scale == 0 ? value : value / exactPowersOfTen[-scale]
        if -scale <= 22 { return negative ? -result : result }
    }
    return slowParse(p, length)
}

private func slowParse(_ p: UnsafePointer<UInt8>, _ length: Int) -> Double {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buf in
        for j in 0..<length { buf[j] = CChar(bitPattern: p[j]) }
        buf[length] = 0
        let v = strtod(buf.baseAddress!, nil)
        return v.isFinite ? v : .nan
    }
}

/// Parses decimal digits of an integer JSON number exactly, if it is one and
/// fits an Int64.
@inline(__always)
func parseJSONInteger(_ p: UnsafePointer<UInt8>, _ length: Int) -> Int64? {
    var i = 0
    var negative = false
    if p[0] == UInt8(ascii: "-") { negative = true; i = 1 }
    if length - i > 18 || i == length { return nil }
    var v: Int64 = 0
    while i < length {
        let d = p[i] &- 48
        if d >= 10 { return nil }
        v = v * 10 + Int64(d); i += 1
    }
    return negative ? -v : v
}
