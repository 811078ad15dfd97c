/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
/// Howard Hinnant's `days_from_civil`.
func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 timestamp such as `2024-05-01T12:30:00.250Z` or
/// `2024-05-01T12:30:00+02:00` into epoch milliseconds. Fractions beyond
/// milliseconds are truncated. Returns nil when it is not such a timestamp.
func parseRFC3339(_ p: UnsafePointer<UInt8>, _ length: Int) -> Int64? {
    var i = 0
    func digits(_ n: Int) -> Int64? {
        guard i + n <= length else { return nil }
        var v: Int64 = 0
        for _ in 0..<n {
            let d = p[i] &- 48
            guard d < 10 else { return nil }
            v = v * 10 + Int64(d); i += 1
        }
        return v
    }
    func expect(_ c: UInt8) -> Bool {
        guard i < length, p[i] == c else { return false }
        i += 1; return true
    }
    guard let year = digits(4), expect(UInt8(ascii: "-")), let month = digits(2), expect(UInt8(ascii: "-")),
        let day = digits(2), (1...12).contains(month), (1...31).contains(day)
    else { return nil }
    guard i < length, p[i] == UInt8(ascii: "T") || p[i] == UInt8(ascii: "t") || p[i] == UInt8(ascii: " ") else {
        return nil
    }
    i += 1
    guard let hour = digits(2), expect(UInt8(ascii: ":")), let minute = digits(2), expect(UInt8(ascii: ":")),
        let second = digits(2), hour < 24, minute < 60, second <= 60
    else { return nil }
    var millis: Int64 = 0
    if i < length, p[i] == UInt8(ascii: ".") {
        i += 1
        var n = 0
        while i < length, p[i] &- 48 < 10 {
            if n < 3 { millis = millis * 10 + Int64(p[i] - 48) }
            n += 1; i += 1
        }
        guard n > 0 else { return nil }
        while n < 3 { millis *= 10; n += 1 }
    }
    var offsetMinutes: Int64 = 0
    guard i < length else { return nil }
    if p[i] == UInt8(ascii: "Z") || p[i] == UInt8(ascii: "z") {
        i += 1
    } else if p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") {
        let sign: Int64 = p[i] == UInt8(ascii: "-") ? -1 : 1
        i += 1
        guard let oh = digits(2), expect(UInt8(ascii: ":")), let om = digits(2), oh < 24, om < 60 else { return nil }
        offsetMinutes = sign * (oh * 60 + om)
    } else {
        return nil
    }
    guard i == length else { return nil }
    let days = daysFromCivil(year: year, month: month, day: day)
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60
    return seconds * 1000 + millis
}

/// Parses an RFC 3339 timestamp (as the `rfc3339` time unit reads event
/// times) into epoch milliseconds; nil when it is not one.
public func parseRFC3339(_ text: String) -> Int64? {
    var t = text
    return t.withUTF8 { b in b.baseAddress.flatMap { parseRFC3339($0, b.count) } }
}
