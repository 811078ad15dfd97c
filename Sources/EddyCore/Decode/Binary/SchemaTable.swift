import CEddySupport

/// What one writer schema id resolved to.
public final class SchemaEntry: @unchecked Sendable {
    /// Plans by Protobuf message-index path (`[0]` for the first message;
    /// Avro has one plan, at `[]`).
    let paths: [[Int32]]
    let plans: [BinaryPlan]
    /// The registry answered 404: messages written with it are `unknown_schema`.
    public let unknown: Bool

    public init(plans: [(path: [Int32], plan: BinaryPlan)]) {
        self.paths = plans.map(\.path); self.plans = plans.map(\.plan); self.unknown = false
    }
    public init(unknown _: ()) { paths = []; plans = []; self.unknown = true }

    /// The plan for `path`, or nil.
    @inline(__always)
    func plan(for path: UnsafeBufferPointer<Int32>) -> BinaryPlan? {
        for (k, p) in paths.enumerated() where p.count == path.count {
            var same = true
            for j in 0..<p.count where p[j] != path[j] { same = false; break }
            if same { return plans[k] }
        }
        return nil
    }

    /// The plan of an Avro schema, or of the first message.
    public var first: BinaryPlan? { plans.first }
    public var allPlans: [BinaryPlan] { plans }
}

/// Writer schema ids -> compiled plans, for Confluent-framed messages.
/// Grows only. One thread adds (the one that fetches schemas), any number
/// read: an entry is published with a release store and found with an
/// acquire load, so a decoder that sees an id sees its whole entry. The
/// worker adds every id of a batch before handing the batch over.
public final class SchemaTable: @unchecked Sendable {
    public let format: BinaryPlan.Format
    /// The field paths every plan must be compiled for.
    public let paths: [FieldPath]
    public let keyField: Int
    public let timeField: Int
    public let timeIsText: Bool
    /// Protobuf: a reader schema (`descriptor` + `message` beside the
    /// registry): paths resolve to its field numbers.
    public var protobufReader: (schema: ProtoSchema, root: Int)?
    static let capacity = 4096
    /// Per slot: id + 1 (0 = empty), published last.
    let keys: UnsafeMutablePointer<Int64>
    let values: UnsafeMutablePointer<Unmanaged<SchemaEntry>?>
    var owned: [SchemaEntry] = []
    public private(set) var count = 0

    public init(format: BinaryPlan.Format, paths: [FieldPath], keyField: Int, timeField: Int, timeIsText: Bool) {
        self.format = format
        self.paths = paths
        self.keyField = keyField
        self.timeField = timeField
        self.timeIsText = timeIsText
        keys = .allocate(capacity: Self.capacity)
        keys.initialize(repeating: 0, count: Self.capacity)
        values = .allocate(capacity: Self.capacity)
        values.initialize(repeating: nil, count: Self.capacity)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always)
    static func home(_ id: UInt32) -> Int { Int((id &* 0x9E37_79B1) >> 20) & (capacity - 1) }

    /// The entry for `id`, or nil if it was never added.
    @inline(__always)
    public func entry(_ id: UInt32) -> SchemaEntry? {
        var s = Self.home(id)
        let want = Int64(id) + 1
        while true {
            let k = eddy_load_acquire(keys + s)
            if k == want { return values[s]!.takeUnretainedValue() }
            if k == 0 { return nil }
            s = (s + 1) & (Self.capacity - 1)
        }
    }

    /// Adds `id` (by the one writing thread). Returns false when full.
    @discardableResult
    public func add(_ id: UInt32, _ entry: SchemaEntry) -> Bool {
        guard self.entry(id) == nil else { return true }
        guard count < Self.capacity * 3 / 4 else { return false }
        var s = Self.home(id)
        while keys[s] != 0 { s = (s + 1) & (Self.capacity - 1) }
        owned.append(entry)
        values[s] = .passUnretained(entry)
        eddy_store_release(keys + s, Int64(id) + 1)
        count += 1
        return true
    }

    /// Compiles an Avro writer schema for this table's paths.
    public func compile(avro schema: AvroSchema) -> BinaryPlan {
        BinaryPlan.avro(schema, paths: paths, keyField: keyField, timeField: timeField, timeIsText: timeIsText)
    }

    /// Compiles message `root` of a Protobuf schema for this table's paths.
    public func compile(protobuf schema: ProtoSchema, root: Int) -> BinaryPlan {
        BinaryPlan.protobuf(schema, root: root, paths: paths, keyField: keyField, timeField: timeField, timeIsText: timeIsText,
                            reader: protobufReader)
    }
}

/// How a binary topic's messages are read: Avro or Protobuf, framed the
/// Confluent way (magic 0, 4-byte big-endian schema id, for Protobuf the
/// message-index list) with plans from a `SchemaTable`, or bare with one
/// fixed plan.
public final class BinarySource: @unchecked Sendable {
    public let format: BinaryPlan.Format
    /// Confluent framing: plans by schema id.
    public let table: SchemaTable?
    /// No framing: every message is a datum of this schema.
    public let fixed: BinaryPlan?

    public init(table: SchemaTable) { format = table.format; self.table = table; fixed = nil }
    public init(fixed: BinaryPlan) { format = fixed.format; table = nil; self.fixed = fixed }

    /// The schema id of a Confluent-framed message, or nil (no magic byte).
    @inline(__always)
    public static func schemaID(_ message: UnsafeRawBufferPointer) -> UInt32? {
        guard message.count >= 5, message[0] == 0 else { return nil }
        return UInt32(message[1]) << 24 | UInt32(message[2]) << 16 | UInt32(message[3]) << 8 | UInt32(message[4])
    }
}

extension SchemaTable {
    /// A table for `topology`'s fields (the engine's slot order).
    public convenience init(format: BinaryPlan.Format, topology: Topology) {
        let t = TopologyFields(topology)
        self.init(format: format, paths: t.paths, keyField: t.keyField, timeField: t.timeField, timeIsText: t.timeIsText)
    }
}

/// The engine's field paths of a topology, and which are the key and time.
public struct TopologyFields: Sendable {
    public var paths: [FieldPath]
    public var keyField: Int
    public var timeField: Int
    public var timeIsText: Bool

    public init(_ topology: Topology) {
        paths = FeatureEngine.fieldTable(of: topology).paths
        if case .field(let p) = topology.key { keyField = paths.firstIndex(of: p)! } else { keyField = -1 }
        if case .field(let p, let u) = topology.time {
            timeField = paths.firstIndex(of: p)!
            timeIsText = u == .rfc3339
        } else {
            timeField = -1
            timeIsText = false
        }
    }

    public func avroPlan(_ schema: AvroSchema) -> BinaryPlan {
        BinaryPlan.avro(schema, paths: paths, keyField: keyField, timeField: timeField, timeIsText: timeIsText)
    }

    public func protobufPlan(_ schema: ProtoSchema, root: Int) -> BinaryPlan {
        BinaryPlan.protobuf(schema, root: root, paths: paths, keyField: keyField, timeField: timeField, timeIsText: timeIsText)
    }
}
