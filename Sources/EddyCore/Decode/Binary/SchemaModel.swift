/// Writer schemas as plain values: what `EddyFormats` parses Avro JSON
/// schemas and Protobuf descriptors into, and what `BinaryPlan` compiles.
/// No parsing here: the core only reads these.

/// An Avro schema (a writer schema). Named types are inlined by the parser.
public indirect enum AvroSchema: Sendable, Equatable {
    case null, boolean, int, long, float, double, bytes, string
    case fixed(size: Int)
    case enumeration(name: String, symbols: [String])
    case array(AvroSchema)
    case map(AvroSchema)
    case union([AvroSchema])
    case record(AvroRecord)
    /// `long` with logicalType `timestamp-millis` / `timestamp-micros`.
    case timestampMillis, timestampMicros
}

public struct AvroRecord: Sendable, Equatable {
    public var name: String
    public var fields: [AvroField]
    public init(name: String, fields: [AvroField]) { self.name = name; self.fields = fields }
}

public struct AvroField: Sendable, Equatable {
    public var name: String
    public var aliases: [String]
    public var type: AvroSchema
    public init(name: String, aliases: [String] = [], type: AvroSchema) {
        self.name = name; self.aliases = aliases; self.type = type
    }
}

/// A Protobuf schema: every message of a file (and its imports) by full name.
public struct ProtoSchema: Sendable, Equatable {
    public var messages: [ProtoMessage]
    public init(messages: [ProtoMessage]) { self.messages = messages }

    public func message(named full: String) -> Int? {
        let name = full.hasPrefix(".") ? String(full.dropFirst()) : full
        return messages.firstIndex { $0.fullName == name }
    }
}

public struct ProtoMessage: Sendable, Equatable {
    /// `pkg.Outer.Inner`, without a leading dot.
    public var fullName: String
    public var fields: [ProtoField]
    /// Whether this is a map entry type (`map<K, V>` fields).
    public var isMapEntry: Bool
    public init(fullName: String, fields: [ProtoField], isMapEntry: Bool = false) {
        self.fullName = fullName; self.fields = fields; self.isMapEntry = isMapEntry
    }
}

public struct ProtoField: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case double, float, int64, uint64, int32, uint32, sint32, sint64
        case fixed32, fixed64, sfixed32, sfixed64, bool, string, bytes
        /// Values by number and their names.
        case enumeration(numbers: [Int32], names: [String])
        /// Index into `ProtoSchema.messages` (a `google.protobuf.Timestamp`
        /// message is read as a time).
        case message(Int)
    }
    public var name: String
    public var number: Int32
    public var kind: Kind
    public var repeated: Bool
    /// Explicit presence (proto2 optional, proto3 `optional`, oneof
    /// members, messages): absent means missing. Without it an absent
    /// field reads as its default (0, "", false, the first enum value).
    public var hasPresence: Bool
    public init(name: String, number: Int32, kind: Kind, repeated: Bool = false, hasPresence: Bool = false) {
        self.name = name; self.number = number; self.kind = kind; self.repeated = repeated; self.hasPresence = hasPresence
    }
}

/// The writer's type was unusable for a path: why, for `eddy check` and
/// for deciding `schema_mismatch`.
public struct PlanIssue: Sendable, Equatable, CustomStringConvertible {
    /// Index into the field paths the plan was compiled for.
    public var field: Int
    public var message: String
    public init(field: Int, message: String) { self.field = field; self.message = message }
    public var description: String { message }
}
