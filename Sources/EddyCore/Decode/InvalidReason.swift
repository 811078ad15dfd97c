/// Why an input could not be read as an event (SEMANTICS.md, Events), plus
/// `late`, the one reason a readable event is still refused.
///
/// The raw value is the reason string written to the dead-letter sink.
public enum RejectReason: String, Sendable, CaseIterable, Error {
    case notJSON = "not_json"
    case notObject = "not_object"
    case tooDeep = "too_deep"
    case badUTF8 = "bad_utf8"
    case missingKey = "missing_key"
    case badKey = "bad_key"
    case keyTooLong = "key_too_long"
    case missingTime = "missing_ts"
    case badTime = "bad_ts"
    case tooLarge = "too_large"
    case late = "late"

    /// A human sentence for logs and dead-letter records.
    public var explanation: String {
        switch self {
        case .notJSON: return "not valid JSON"
        case .notObject: return "JSON value is not an object"
        case .tooDeep: return "JSON nested deeper than 64 levels"
        case .badUTF8: return "string is not valid UTF-8"
        case .missingKey: return "the key field is missing or null"
        case .badKey: return "the key is not a non-empty string or number"
        case .keyTooLong: return "the key is longer than 1024 bytes"
        case .missingTime: return "the event-time field is missing or null"
        case .badTime: return "the event time is not a time in the configured unit"
        case .tooLarge: return "the message is larger than the configured maximum"
        case .late: return "event time is older than the key time minus allowed lateness"
        }
    }
}

/// Longest accepted key, in bytes (SEMANTICS.md).
public let maxKeyBytes = 1024
