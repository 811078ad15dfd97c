import Atomics
import EddyCore
import EddyStore
import Foundation

/// A running distribution of the values the worker writes, per monitored
/// column (`FeatureBuckets`), exposed on `/metrics` as
/// `eddy_feature_value{topology,feature}` histograms and
/// `eddy_feature_value_null_total`.
///
/// "The value written" for an entity is the column read at the entity's key
/// time `K`: what a read right after its newest event returns. The monitor
/// is the worker's `WrittenStateObserver`: after each flush the writer
/// thread hands it the state blobs just written, and it reads at most
/// `maxPerFlush` of them (evenly spread over the flush), so its cost per
/// flush is bounded. Counts are therefore a sample once flushes are large;
/// the shape, which is what drift compares, is unaffected.
///
/// `observe` and `written` must be called from one thread at a time (the
/// writer); `distribution(_:)` and `/metrics` read from any thread.
public final class FeatureMonitor: WrittenStateObserver, @unchecked Sendable {
    public let topology: Topology
    public let columns: [FeatureBuckets.Column]
    /// Entities read per flush at most.
    public let maxPerFlush: Int
    /// Per column: `FeatureBuckets.count` bucket counters.
    let counts: [ManagedAtomic<Int>]
    let nulls: [ManagedAtomic<Int>]
    /// Per column: the sum of finite values, as `Double` bits (one writer).
    let sums: [ManagedAtomic<UInt64>]
    /// Entities observed.
    public let entitiesObserved = ManagedAtomic<Int>(0)

    // Used only by the observing thread.
    private let engine: FeatureEngine
    private var writer = JSONWriter(capacity: 1024)
    /// Column over all features (`forEachColumn`'s index) -> index in
    /// `columns`, or -1.
    private let columnIndex: [Int]
    private var starts: [(Int, Int)] = []
    /// Index in `columns` of the first derived column.
    private let firstDerived: Int
    private var derivedWriter = JSONWriter(capacity: 1024)

    public init(topology: Topology, maxPerFlush: Int = 256) {
        self.topology = topology
        // Feature columns, then derived columns (feature -1, column k).
        let features = FeatureBuckets.monitoredColumns(topology)
        self.columns = features + topology.derived.enumerated().map { FeatureBuckets.Column(name: $1.name, feature: -1, column: $0) }
        self.firstDerived = features.count
        self.maxPerFlush = max(maxPerFlush, 1)
        counts = (0..<(columns.count * FeatureBuckets.count)).map { _ in ManagedAtomic(0) }
        nulls = columns.map { _ in ManagedAtomic(0) }
        sums = columns.map { _ in ManagedAtomic(0.0.bitPattern) }
        engine = FeatureEngine(topology: topology, expectedKeys: 16)
        let firstColumn = engine.firstColumn
        var index = Array(repeating: -1, count: firstColumn.last!)
        for (i, c) in columns.enumerated() where c.feature >= 0 { index[firstColumn[c.feature] + c.column] = i }
        columnIndex = index
    }

    // MARK: Observing

    public func written(count: Int, state: (Int) -> UnsafeRawBufferPointer) {
        guard count > 0 else { return }
        let stride = max(1, (count + maxPerFlush - 1) / maxPerFlush)
        var i = 0
        while i < count {
            observe(blob: state(i))
            i += stride
        }
    }

    /// Counts the monitored columns of one state blob, read at its key time.
    public func observe(blob: UnsafeRawBufferPointer) {
        guard !columns.isEmpty, let base = blob.baseAddress, let k = StoredEntity.keyTime(ofState: blob) else { return }
        writer.reset()
        starts.removeAll(keepingCapacity: true)
        let index = columnIndex
        engine.forEachColumn(blob: base, at: k, into: &writer) { w, column, _ in
            let m = index[column]
            guard m >= 0 else { return false }
            starts.append((m, w.bytes.count))
            return true
        }
        // Only monitored columns are written, back to back.
        for (n, (m, start)) in starts.enumerated() {
            let end = n + 1 < starts.count ? starts[n + 1].1 : writer.bytes.count
            record(column: m, value: parseColumnValue(writer.bytes[start..<end]))
        }
        // Derived columns: computed by a full read at K.
        if firstDerived < columns.count {
            let values = engine.derivedValues(blob: base, at: k, scratch: &derivedWriter)
            for (j, v) in values.enumerated() { record(column: firstDerived + j, value: v.isNaN ? nil : v) }
        }
        entitiesObserved.wrappingIncrement(ordering: .relaxed)
    }

    /// Counts one value of column `m` (nil: null). One writer at a time.
    func record(column m: Int, value: Double?) {
        guard let value, value.isFinite else {
            nulls[m].wrappingIncrement(ordering: .relaxed)
            return
        }
        counts[m * FeatureBuckets.count + FeatureBuckets.index(value)].wrappingIncrement(ordering: .relaxed)
        let sum = Double(bitPattern: sums[m].load(ordering: .relaxed)) + value
        sums[m].store(sum.bitPattern, ordering: .relaxed)
    }

    // MARK: Reading

    /// The distribution of column `m` so far.
    public func distribution(_ m: Int) -> FeatureDistribution {
        let base = m * FeatureBuckets.count
        return FeatureDistribution(
            counts: (0..<FeatureBuckets.count).map { counts[base + $0].load(ordering: .relaxed) },
            nulls: nulls[m].load(ordering: .relaxed),
            sum: Double(bitPattern: sums[m].load(ordering: .relaxed)))
    }

    /// The distribution of the column named `name`, if monitored.
    public func distribution(named name: String) -> FeatureDistribution? {
        columns.firstIndex { $0.name == name }.map(distribution)
    }
}
