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
    // Avro and Protobuf topics.
    case badMagic = "bad_magic"
    case unknownSchema = "unknown_schema"
    case truncated = "truncated"
    case schemaMismatch = "schema_mismatch"

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
        case .badMagic: return "the message does not start with the schema registry's magic byte 0"
        case .unknownSchema: return "the schema registry does not know the message's schema id"
        case .truncated: return "the binary message ends early or is malformed for its writer schema"
        case .schemaMismatch: return "the writer schema gives the key or the time an unusable type"
        }
    }
}

/// Longest accepted key, in bytes (SEMANTICS.md).
public let maxKeyBytes = 1024
