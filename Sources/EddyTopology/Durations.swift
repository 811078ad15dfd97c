/// Parses durations such as `500ms`, `30s`, `5m`, `24h`, `7d` or `1h30m`
/// into milliseconds. Returns nil when the text is not a duration.
public func parseDuration(_ text: String) -> Int64? {
    let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
    var rest = Substring(text.trimmingCharacters(in: " "))
    guard !rest.isEmpty else { return nil }
    var total: Int64 = 0
    while !rest.isEmpty {
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let value = Int64(digits) else { return nil }
        rest = rest.dropFirst(digits.count)
        guard let unit = units.first(where: { rest.hasPrefix($0.0) && !(($0.0 == "m") && rest.hasPrefix("ms")) }) else {
            return nil
        }
        rest = rest.dropFirst(unit.0.count)
        let (product, overflow) = value.multipliedReportingOverflow(by: unit.1)
        guard !overflow else { return nil }
        total += product
    }
    return total
}

/// Formats milliseconds the way a topology would write them (`5m`, `1h`).
public func formatDuration(_ ms: Int64) -> String {
    if ms == 0 { return "0s" }
    for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms % size == 0 {
        return "\(ms / size)\(unit)"
    }
    return "\(ms)ms"
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
