/// A topology's derived columns, compiled once, evaluated after the feature
/// columns of every read (`FeatureEngine.writeFeatures`).
///
/// Inputs are the feature columns exactly as they were written: the JSON
/// text of each column a derived expression reads is parsed back (numbers
/// exactly, `null` as null, `true`/`false` as 1/0). So a derived column is
/// computed from the values a reader sees, for every kind of feature, and
/// the Function library does the same in Lua (`EddyStore.DerivedLua`).
///
/// Index space: feature columns `0..<featureColumnCount` in output order,
/// then derived columns in file order. Evaluation allocates nothing; use
/// from one thread (it belongs to one engine).
public final class DerivedColumns {
    public let specs: [DerivedSpec]
    /// The names of the feature columns, in output order.
    public let featureColumns: [String]
    public let featureTypes: [ColumnType]
    /// Each derived column's name as bytes (`JSONWriter.key` quotes it).
    let keys: [[UInt8]]
    public let programs: [DerivedProgram]
    /// Feature columns some program reads, ascending.
    public let neededFeatureColumns: [Int]
    /// Per column: where its JSON value starts and ends in the writer.
    let starts: UnsafeMutablePointer<Int>
    let ends: UnsafeMutablePointer<Int>
    /// Every column's value (NaN: null), then one always-null slot.
    let values: UnsafeMutablePointer<Double>
    let stack: UnsafeMutablePointer<Double>

    public var featureColumnCount: Int { featureColumns.count }

    /// nil when the topology has no derived columns.
    public convenience init?(topology: Topology) {
        guard !topology.derived.isEmpty else { return nil }
        self.init(features: topology.features, derived: topology.derived)
    }

    public init(features: [FeatureSpec], derived: [DerivedSpec]) {
        specs = derived
        let columns = features.flatMap(\.outputNames)
        featureColumns = columns
        featureTypes = features.flatMap(\.outputTypes)
        keys = derived.map { Array($0.name.utf8) }
        let index = Self.resolver(featureColumns: columns, derived: derived)
        let nullSlot = columns.count + derived.count
        var programs: [DerivedProgram] = []
        for (k, d) in derived.enumerated() {
            // A name that does not resolve to a feature column or an
            // earlier derived column (the loader reports those) reads null.
            programs.append(DerivedProgram(d.expression) { name in
                guard let i = index[name], i < columns.count + k else { return nullSlot }
                return i
            })
        }
        self.programs = programs
        let fc = columns.count
        neededFeatureColumns = Set(programs.flatMap(\.inputs)).filter { $0 < fc }.sorted()
        starts = .allocate(capacity: Swift.max(fc, 1))
        ends = .allocate(capacity: Swift.max(fc, 1))
        values = .allocate(capacity: nullSlot + 1)
        values.initialize(repeating: .nan, count: nullSlot + 1)
        stack = .allocate(capacity: programs.map(\.stackSize).max() ?? 1)
    }

    deinit {
        starts.deallocate()
        ends.deallocate()
        values.deallocate()
        stack.deallocate()
    }

    /// Name -> index: feature columns (the first of a name), then derived
    /// columns.
    public static func resolver(featureColumns: [String], derived: [DerivedSpec]) -> [String: Int] {
        var index: [String: Int] = [:]
        for (i, c) in featureColumns.enumerated() where index[c] == nil { index[c] = i }
        for (k, d) in derived.enumerated() where index[d.name] == nil { index[d.name] = featureColumns.count + k }
        return index
    }

    /// Records where feature column `column`'s value starts (the writer's
    /// length just after its key).
    @inline(__always)
    func begin(column: Int, at position: Int) { starts[column] = position }

    /// Records where feature column `column`'s value ends.
    @inline(__always)
    func end(column: Int, at position: Int) { ends[column] = position }

    /// Evaluates every derived column from the feature columns written
    /// into `w` (positions from `begin`) and appends them as JSON members;
    /// `end` is where the last feature column's value ends, `first` whether
    /// no member was written yet.
    func write(into w: inout JSONWriter, end: Int, first: Bool) {
        let fc = featureColumnCount
        if fc > 0 { ends[fc - 1] = end }
        let values = self.values
        w.bytes.withUnsafeBufferPointer { bytes in
            for j in neededFeatureColumns {
                values[j] = Self.parse(bytes.baseAddress! + starts[j], ends[j] - starts[j], featureTypes[j])
            }
        }
        var first = first
        for (k, p) in programs.enumerated() {
            let r = p.evaluate(inputs: values, stack: stack)
            values[fc + k] = r
            if !first { w.raw(UInt8(ascii: ",")) }
            first = false
            w.key(keys[k])
            if r.isNaN { w.null() } else { w.double(r) }
        }
    }

    /// A column's value from its JSON text: a number, `null` (NaN),
    /// `true`/`false` (1/0); anything else (or a non-numeric column) is
    /// null.
    @inline(__always)
    static func parse(_ p: UnsafePointer<UInt8>, _ length: Int, _ type: ColumnType) -> Double {
        guard length > 0 else { return .nan }
        let c = p[0]
        if c == UInt8(ascii: "-") || (c &- 48) < 10 {
            return type == .other ? .nan : parseJSONNumber(p, length)
        }
        if c == UInt8(ascii: "t") { return type == .other ? .nan : 1 }
        if c == UInt8(ascii: "f") { return type == .other ? .nan : 0 }
        return .nan
    }
}
