#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One writer schema compiled against the field paths a topology reads:
/// a small program that walks Avro or Protobuf binary data, writes only
/// those fields into the decoder's slots and skips the rest. Built once per
/// writer schema (per registry id); immutable, shared between decoders.
///
/// Paths resolve by name against the writer schema (Avro: a field's name or
/// one of its aliases; Protobuf: a field's name, then its number on the
/// wire). A path the writer lacks leaves its field missing, as a missing
/// JSON member does.
public final class BinaryPlan: @unchecked Sendable {
    public enum Format: UInt8, Sendable { case avro, protobuf }
    public let format: Format
    /// The paths it was compiled for (`FieldTable.paths`).
    public let paths: [FieldPath]
    /// Paths the writer's types cannot serve (into an array, a map, bytes,
    /// a scalar; ending at a record, ...), and paths the writer lacks
    /// (`missing` true). `eddy check` reports them.
    public let issues: [PlanIssue]
    /// Paths not in the writer schema (the field reads as missing).
    public let missingFields: [Int]
    /// The key or the time field has an unusable type in this writer
    /// schema: every message written with it is `schema_mismatch`.
    public let mismatch: Bool

    // Avro program.
    let avroOps: UnsafeMutablePointer<AvroOp>
    let avroCount: Int
    let avroRoot: AvroOp
    // Protobuf program.
    let protoMessages: UnsafeMutablePointer<ProtoMessagePlan>
    let protoMessageCount: Int
    let protoActions: UnsafeMutablePointer<ProtoAction>
    let protoActionCount: Int
    let protoRoot: Int32
    // Enum symbols: text pool, per symbol (start, length), and for
    // Protobuf the symbol's number.
    let symbolPool: UnsafeMutablePointer<UInt8>
    let symbolStart: UnsafeMutablePointer<Int32>
    let symbolLength: UnsafeMutablePointer<Int32>
    let symbolNumber: UnsafeMutablePointer<Int32>
    let symbolCount: Int
    /// Scratch bytes a decode may need for number and symbol text: each
    /// field has its own `textStride` bytes (a field written again, e.g. a
    /// repeated Protobuf occurrence, reuses them).
    let maxTextBytes: Int
    let textStride: Int

    deinit {
        avroOps.deallocate(); protoMessages.deallocate(); protoActions.deallocate()
        symbolPool.deallocate(); symbolStart.deallocate(); symbolLength.deallocate(); symbolNumber.deallocate()
    }

    init(format: Format, paths: [FieldPath], issues: [PlanIssue], missing: [Int], mismatch: Bool,
         avro: [AvroOp], avroRoot: AvroOp, protoMessages: [ProtoMessagePlan], protoActions: [ProtoAction],
         protoRoot: Int32, symbols: SymbolTable)
    {
        self.format = format
        self.paths = paths
        self.issues = issues
        self.missingFields = missing
        self.mismatch = mismatch
        func copy<T>(_ a: [T]) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
            if !a.isEmpty { p.initialize(from: a, count: a.count) }
            return p
        }
        avroOps = copy(avro); avroCount = avro.count; self.avroRoot = avroRoot
        self.protoMessages = copy(protoMessages); protoMessageCount = protoMessages.count
        self.protoActions = copy(protoActions); protoActionCount = protoActions.count
        self.protoRoot = protoRoot
        symbolPool = copy(symbols.pool); symbolStart = copy(symbols.start); symbolLength = copy(symbols.length)
        symbolNumber = copy(symbols.number); symbolCount = symbols.start.count
        let longest = symbols.length.max().map(Int.init) ?? 0
        textStride = max(40, longest)
        maxTextBytes = paths.count * textStride + 64
    }

    // MARK: Compiling

    /// Compiles an Avro writer schema for `paths`.
    /// - Parameters:
    ///   - keyField/timeField: indices in `paths` of the key and time paths
    ///     (-1 if they do not come from the value), for `mismatch`.
    ///   - timeIsText: the topology's time unit is RFC 3339 text.
    public static func avro(_ schema: AvroSchema, paths: [FieldPath], keyField: Int = -1, timeField: Int = -1,
                            timeIsText: Bool = false) -> BinaryPlan
    {
        var c = AvroCompiler(fieldCount: paths.count)
        let needs = paths.enumerated().map { Need(rest: $0.element.components[...], field: $0.offset) }
        let root = c.build(schema, leaf: -1, needs: needs)
        let (issues, mismatch) = finishIssues(c.issues, leafKinds: c.leafKinds, paths: paths, keyField: keyField,
                                              timeField: timeField, timeIsText: timeIsText)
        return BinaryPlan(format: .avro, paths: paths, issues: issues, missing: c.missing.sorted(), mismatch: mismatch,
                          avro: c.ops, avroRoot: root, protoMessages: [], protoActions: [], protoRoot: -1,
                          symbols: c.symbols)
    }

    /// Compiles the Protobuf message `root` of `schema` for `paths`.
    /// - Parameter reader: a reader schema and its message: path names
    ///   resolve to field numbers there, and numbers against the writer
    ///   (a field renamed in the writer keeps its number). Nil: names
    ///   resolve against the writer itself.
    public static func protobuf(_ schema: ProtoSchema, root: Int, paths: [FieldPath], keyField: Int = -1,
                                timeField: Int = -1, timeIsText: Bool = false,
                                reader: (schema: ProtoSchema, root: Int)? = nil) -> BinaryPlan
    {
        var c = ProtoCompiler(schema: schema, fieldCount: paths.count)
        c.reader = reader?.schema
        let needs = paths.enumerated().map { Need(rest: $0.element.components[...], field: $0.offset) }
        let rootPlan = c.build(message: root, needs: needs, prefix: [], readerMessage: reader?.root)
        let (issues, mismatch) = finishIssues(c.issues, leafKinds: c.leafKinds, paths: paths, keyField: keyField,
                                              timeField: timeField, timeIsText: timeIsText)
        return BinaryPlan(format: .protobuf, paths: paths, issues: issues, missing: c.missing.sorted(), mismatch: mismatch,
                          avro: [], avroRoot: AvroOp(code: .null), protoMessages: c.messages, protoActions: c.actions,
                          protoRoot: rootPlan, symbols: c.symbols)
    }

    static func finishIssues(_ raw: [PlanIssue], leafKinds: [Set<LeafKind>], paths: [FieldPath], keyField: Int,
                             timeField: Int, timeIsText: Bool) -> ([PlanIssue], Bool)
    {
        var issues = raw
        var mismatch = issues.contains { $0.field == keyField || $0.field == timeField }
        func check(_ f: Int, _ usable: Set<LeafKind>, _ what: String) {
            guard f >= 0 else { return }
            let kinds = leafKinds[f].subtracting([.null])
            guard !kinds.isEmpty else { return }
            if kinds.isDisjoint(with: usable) {
                mismatch = true
                issues.append(PlanIssue(field: f, message: "\(what) '\(paths[f])' is \(kinds.map(\.rawValue).sorted().joined(separator: " or ")) in the writer schema, which cannot be \(what == "key" ? "a key (use a string, integer or enum field)" : (timeIsText ? "an RFC 3339 time (use a string field)" : "a time (use a long, int, double, timestamp-millis/micros or google.protobuf.Timestamp field, or unit: rfc3339 for strings)"))"))
            }
        }
        check(keyField, [.string, .integer, .double, .enumeration, .time], "key")
        check(timeField, timeIsText ? [.string, .time] : [.integer, .double, .time], "time")
        return (issues, mismatch)
    }
}

/// What a path ends at, for the key and time type checks.
enum LeafKind: String, Hashable {
    case null, bool, integer, double, string, bytes, enumeration = "enum", time
}

struct Need {
    var rest: ArraySlice<String>
    var field: Int
}

struct SymbolTable {
    var pool: [UInt8] = []
    var start: [Int32] = []
    var length: [Int32] = []
    var number: [Int32] = []
    mutating func add(_ names: [String], numbers: [Int32]? = nil) -> Int32 {
        let first = Int32(start.count)
        for (i, n) in names.enumerated() {
            start.append(Int32(pool.count)); length.append(Int32(n.utf8.count)); pool.append(contentsOf: n.utf8)
            number.append(numbers?[i] ?? Int32(i))
        }
        return first
    }
}

// MARK: - Avro

struct AvroOp {
    enum Code: UInt8 {
        case null, boolean, int, long, float, double, bytes, string, fixed, enumeration, array, map, union, record
        case timestampMillis, timestampMicros
    }
    var code: Code
    /// Field slot written, or -1 (skip).
    var slot: Int32 = -1
    /// record/union: first child op; array/map: item op; fixed: size;
    /// enum: first symbol.
    var a: Int32 = 0
    /// record/union: child count; enum: symbol count.
    var b: Int32 = 0
}

struct AvroCompiler {
    var ops: [AvroOp] = []
    var issues: [PlanIssue] = []
    var missing: Set<Int> = []
    var leafKinds: [Set<LeafKind>]
    var symbols = SymbolTable()

    init(fieldCount: Int) { leafKinds = Array(repeating: [], count: fieldCount) }

    static func describe(_ s: AvroSchema) -> String {
        switch s {
        case .null: return "null"
        case .boolean: return "a boolean"
        case .int: return "an int"
        case .long: return "a long"
        case .float: return "a float"
        case .double: return "a double"
        case .bytes: return "bytes"
        case .string: return "a string"
        case .fixed: return "a fixed"
        case .enumeration: return "an enum"
        case .array: return "an array"
        case .map: return "a map"
        case .union: return "a union"
        case .record(let r): return "a record (\(r.name))"
        case .timestampMillis, .timestampMicros: return "a timestamp"
        }
    }

    mutating func build(_ s: AvroSchema, leaf: Int32, needs: [Need]) -> AvroOp {
        // Paths going below a type that has no named fields.
        func into(_ what: String) {
            for n in needs {
                issues.append(PlanIssue(field: n.field, message: "goes into \(what) before '\(n.rest.first ?? "")': paths reach only record fields"))
            }
        }
        func leafKind(_ k: LeafKind) { if leaf >= 0 { leafKinds[Int(leaf)].insert(k) } }
        switch s {
        case .null: into("null"); leafKind(.null); return AvroOp(code: .null, slot: leaf)
        case .boolean: into("a boolean"); leafKind(.bool); return AvroOp(code: .boolean, slot: leaf)
        case .int: into("an int"); leafKind(.integer); return AvroOp(code: .int, slot: leaf)
        case .long: into("a long"); leafKind(.integer); return AvroOp(code: .long, slot: leaf)
        case .float: into("a float"); leafKind(.double); return AvroOp(code: .float, slot: leaf)
        case .double: into("a double"); leafKind(.double); return AvroOp(code: .double, slot: leaf)
        case .string: into("a string"); leafKind(.string); return AvroOp(code: .string, slot: leaf)
        case .timestampMillis: into("a timestamp"); leafKind(.time); return AvroOp(code: .timestampMillis, slot: leaf)
        case .timestampMicros: into("a timestamp"); leafKind(.time); return AvroOp(code: .timestampMicros, slot: leaf)
        case .bytes:
            into("bytes")
            if leaf >= 0 { leafKinds[Int(leaf)].insert(.bytes) }
            return AvroOp(code: .bytes, slot: leaf)
        case .fixed(let size):
            into("a fixed")
            if leaf >= 0 { issues.append(PlanIssue(field: Int(leaf), message: "is a fixed (raw bytes), which a feature cannot read")) }
            return AvroOp(code: .fixed, a: Int32(size))
        case .enumeration(_, let syms):
            into("an enum")
            leafKind(.enumeration)
            return AvroOp(code: .enumeration, slot: leaf, a: symbols.add(syms), b: Int32(syms.count))
        case .array(let item):
            into("an array")
            if leaf >= 0 { issues.append(PlanIssue(field: Int(leaf), message: "is an array, which a feature cannot read")) }
            let i = ops.count
            ops.append(AvroOp(code: .null))
            ops[i] = build(item, leaf: -1, needs: [])
            return AvroOp(code: .array, a: Int32(i))
        case .map(let value):
            into("a map")
            if leaf >= 0 { issues.append(PlanIssue(field: Int(leaf), message: "is a map, which a feature cannot read")) }
            let i = ops.count
            ops.append(AvroOp(code: .null))
            ops[i] = build(value, leaf: -1, needs: [])
            return AvroOp(code: .map, a: Int32(i))
        case .union(let branches):
            let start = ops.count
            ops.append(contentsOf: repeatElement(AvroOp(code: .null), count: branches.count))
            // A path is an issue only if every non-null branch finds it one.
            let before = issues.count
            var perBranch: [Set<Int>] = []
            var kept: [PlanIssue] = []
            for (k, b) in branches.enumerated() {
                let mark = issues.count
                if case .null = b {
                    ops[start + k] = AvroOp(code: .null, slot: leaf)
                    leafKind(.null)
                    continue
                }
                ops[start + k] = build(b, leaf: leaf, needs: needs)
                perBranch.append(Set(issues[mark...].map(\.field)))
                kept.append(contentsOf: issues[mark...])
                issues.removeSubrange(mark...)
            }
            issues.removeSubrange(before...)
            for issue in kept where !issues.contains(issue) && perBranch.allSatisfy({ $0.contains(issue.field) }) {
                issues.append(issue)
            }
            return AvroOp(code: .union, slot: -1, a: Int32(start), b: Int32(branches.count))
        case .record(let r):
            if leaf >= 0 { issues.append(PlanIssue(field: Int(leaf), message: "is a record (\(r.name)), which a feature cannot read: name one of its fields")) }
            let start = ops.count
            ops.append(contentsOf: repeatElement(AvroOp(code: .null), count: r.fields.count))
            var matched = Set<Int>()
            for (k, f) in r.fields.enumerated() {
                var sub: [Need] = []
                var fieldLeaf: Int32 = -1
                for n in needs where n.rest.first == f.name || f.aliases.contains(n.rest.first!) {
                    matched.insert(n.field)
                    if n.rest.count == 1 { fieldLeaf = Int32(n.field) } else { sub.append(Need(rest: n.rest.dropFirst(), field: n.field)) }
                }
                ops[start + k] = build(f.type, leaf: fieldLeaf, needs: sub)
            }
            for n in needs where !matched.contains(n.field) {
                missing.insert(n.field)
                issues.append(PlanIssue(field: n.field, message: "'\(n.rest.first!)' is not a field of record \(r.name) (fields: \(r.fields.map(\.name).joined(separator: ", ")))"))
            }
            return AvroOp(code: .record, a: Int32(start), b: Int32(r.fields.count))
        }
    }
}

// MARK: - Protobuf

struct ProtoMessagePlan {
    /// Actions of this message: `protoActions[first ..< first + count]`.
    var first: Int32
    var count: Int32
    /// Whether any action has a default to write on entry.
    var hasDefaults: Bool
}

struct ProtoAction {
    enum Code: UInt8 {
        case double, float, int64, uint64, int32, uint32, sint32, sint64
        case fixed32, fixed64, sfixed32, sfixed64, bool, string, bytes, enumeration, message, timestamp
    }
    var number: Int32
    var code: Code
    var slot: Int32
    /// message: the nested message plan; enum: first symbol.
    var a: Int32 = 0
    /// enum: symbol count.
    var b: Int32 = 0
    /// Without presence: the slot reads as the default when absent.
    var writesDefault: Bool = false
}

struct ProtoCompiler {
    let schema: ProtoSchema
    var messages: [ProtoMessagePlan] = []
    var actions: [ProtoAction] = []
    var issues: [PlanIssue] = []
    var missing: Set<Int> = []
    var leafKinds: [Set<LeafKind>]
    var symbols = SymbolTable()
    var reader: ProtoSchema?

    init(schema: ProtoSchema, fieldCount: Int) {
        self.schema = schema
        leafKinds = Array(repeating: [], count: fieldCount)
    }

    static let timestampName = "google.protobuf.Timestamp"

    mutating func build(message m: Int, needs: [Need], prefix: [String], readerMessage: Int? = nil) -> Int32 {
        let msg = schema.messages[m]
        var mine: [ProtoAction] = []
        var byField: [Int32: (leaf: Int32, sub: [Need])] = [:]
        // With a reader schema: name -> number there, number -> writer field.
        var readerSub: [Int32: Int] = [:]
        func writerField(_ name: String) -> ProtoField? {
            guard let r = reader, let rm = readerMessage else { return msg.fields.first { $0.name == name } }
            guard let rf = r.messages[rm].fields.first(where: { $0.name == name }) else { return nil }
            if case .message(let ri) = rf.kind { readerSub[rf.number] = ri }
            return msg.fields.first { $0.number == rf.number }
        }
        for n in needs {
            let name = n.rest.first!
            guard let f = writerField(name) else {
                missing.insert(n.field)
                issues.append(PlanIssue(field: n.field, message: "'\(name)' is not a field of message \(msg.fullName) (fields: \(msg.fields.map(\.name).joined(separator: ", ")))"))
                continue
            }
            if f.repeated {
                var isMap = false
                if case .message(let e) = f.kind, schema.messages[e].isMapEntry { isMap = true }
                issues.append(PlanIssue(field: n.field, message: "\(n.rest.count == 1 ? "is" : "goes into") \(isMap ? "a map" : "an array") at '\(name)' (a repeated field), which a feature cannot read"))
                continue
            }
            var entry = byField[f.number] ?? (leaf: -1, sub: [])
            if n.rest.count == 1 { entry.leaf = Int32(n.field) } else { entry.sub.append(Need(rest: n.rest.dropFirst(), field: n.field)) }
            byField[f.number] = entry
        }
        for f in msg.fields {
            guard let (leaf, sub) = byField[f.number] else { continue }
            func leafKind(_ k: LeafKind) { if leaf >= 0 { leafKinds[Int(leaf)].insert(k) } }
            var action = ProtoAction(number: f.number, code: .int64, slot: leaf)
            switch f.kind {
            case .double: action.code = .double; leafKind(.double)
            case .float: action.code = .float; leafKind(.double)
            case .int64: action.code = .int64; leafKind(.integer)
            case .uint64: action.code = .uint64; leafKind(.integer)
            case .int32: action.code = .int32; leafKind(.integer)
            case .uint32: action.code = .uint32; leafKind(.integer)
            case .sint32: action.code = .sint32; leafKind(.integer)
            case .sint64: action.code = .sint64; leafKind(.integer)
            case .fixed32: action.code = .fixed32; leafKind(.integer)
            case .fixed64: action.code = .fixed64; leafKind(.integer)
            case .sfixed32: action.code = .sfixed32; leafKind(.integer)
            case .sfixed64: action.code = .sfixed64; leafKind(.integer)
            case .bool: action.code = .bool; leafKind(.bool)
            case .string: action.code = .string; leafKind(.string)
            case .bytes: action.code = .bytes; leafKind(.bytes)
            case .enumeration(let numbers, let names):
                action.code = .enumeration; leafKind(.enumeration)
                action.a = symbols.add(names, numbers: numbers); action.b = Int32(names.count)
            case .message(let sub2):
                if schema.messages[sub2].fullName == Self.timestampName {
                    action.code = .timestamp; leafKind(.time)
                    for n in sub { issues.append(PlanIssue(field: n.field, message: "goes into a google.protobuf.Timestamp at '\(f.name)', which is read as one time")) }
                } else {
                    action.code = .message
                    if leaf >= 0 {
                        issues.append(PlanIssue(field: Int(leaf), message: "is a message (\(schema.messages[sub2].fullName)), which a feature cannot read: name one of its fields"))
                        action.slot = -1
                    }
                    action.a = build(message: sub2, needs: sub, prefix: prefix + [f.name], readerMessage: readerSub[f.number])
                }
            }
            if action.code != .message && action.code != .timestamp {
                for n in sub { issues.append(PlanIssue(field: n.field, message: "goes into a scalar at '\(f.name)': paths reach only message fields")) }
                if leaf < 0 { continue }
            }
            action.writesDefault = !f.hasPresence && action.slot >= 0 && action.code != .timestamp
            mine.append(action)
        }
        let first = Int32(actions.count)
        actions.append(contentsOf: mine)
        messages.append(ProtoMessagePlan(first: first, count: Int32(mine.count), hasDefaults: mine.contains { $0.writesDefault }))
        return Int32(messages.count - 1)
    }
}
