import EddyCore
import EddyRedis

/// Read times given by people: epoch milliseconds or RFC 3339.
public enum ReadTime {
    /// Parses `text` as integer epoch milliseconds (`1714567200000`) or an
    /// RFC 3339 timestamp (`2024-05-01T12:40:00Z`, `2024-05-01T14:40:00.250+02:00`;
    /// fractions beyond milliseconds are truncated). Returns nil otherwise.
    public static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        if let ms = integer(b) { return ms }
        return rfc3339(b)
    }

    /// An optionally signed decimal integer that fits in `Int64`.
    static func integer(_ b: [UInt8]) -> Int64? {
        b.withUnsafeBytes { parseDecimalInt64($0) }
    }

    /// `YYYY-MM-DD(T|t| )hh:mm:ss[.f+](Z|z|±hh:mm)` in epoch milliseconds:
    /// the core's parser, the one that reads `rfc3339` event times.
    static func rfc3339(_ b: [UInt8]) -> Int64? {
        guard !b.isEmpty else { return nil }
        return parseRFC3339(String(decoding: b, as: UTF8.self))
    }
}
