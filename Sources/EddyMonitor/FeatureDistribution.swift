import EddyCore
import Foundation

/// # Feature monitoring
///
/// Every numeric feature column is summarised by the same fixed buckets, so
/// distributions taken anywhere (the worker's writes, a sample of Redis, a
/// saved baseline) compare bucket by bucket without configuration:
///
/// - upper bounds `0` and `±{1, 2, 5} × 10^e` for `e` in -2...8, plus `±1e9`
///   (69 bounds, 70 buckets; a value `v` falls in the first bucket whose
///   upper bound is `>= v`, the last one holds everything above `1e9`);
/// - `null` (an empty `min`/`max`/`avg` window, a non-finite value) is
///   counted apart, and is one more bin for drift.
///
/// Monitored columns (`FeatureBuckets.monitoredColumns`): every window
/// feature (`count`, `sum`, `min`, `max`, `avg`) and a session's `_events`
/// and `_duration_ms`. Timestamps (`_start`, `_last`), `_active` and
/// `last_n` lists are not monitored.
public enum FeatureBuckets {
    /// Bucket upper bounds, ascending.
    public static let upperBounds: [Double] = {
        var positive: [Double] = []
        for e in -2...8 {
            let p = pow(10.0, Double(e))
            positive += [1 * p, 2 * p, 5 * p]
        }
        positive.append(1e9)
        // Exact decimal values (pow gives 0.020000000000000004 and the like).
        positive = positive.map { Double(String(format: "%.2g", $0))! }
        return positive.reversed().map { -$0 } + [0] + positive
    }()

    /// The number of buckets: one per bound, and one above the last.
    public static var count: Int { upperBounds.count + 1 }

    /// The bucket of a finite value.
    @inline(__always)
    public static func index(_ v: Double) -> Int {
        var lo = 0, hi = upperBounds.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if v <= upperBounds[mid] { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// A column watched by feature monitoring.
    public struct Column: Sendable, Hashable {
        /// The output column name (`clicks_1h`, `session_events`).
        public var name: String
        /// Index of its feature in the topology; -1 for a derived column.
        public var feature: Int
        /// Index of the column among the feature's outputs (a derived
        /// column: its index among the derived columns).
        public var column: Int
    }

    /// The columns `eddy drift` compares: the monitored feature columns,
    /// then the derived columns (numbers, computed by every read).
    public static func driftColumns(_ t: Topology) -> [String] {
        monitoredColumns(t).map(\.name) + t.derived.map(\.name)
    }

    /// The numeric columns of a topology that monitoring and drift watch, in
    /// topology order. (The worker's monitor and `eddy drift` also watch the
    /// derived columns, see `driftColumns`.)
    public static func monitoredColumns(_ t: Topology) -> [Column] {
        var columns: [Column] = []
        for (i, f) in t.features.enumerated() {
            switch f.kind {
            case .window:
                columns.append(Column(name: f.name, feature: i, column: 0))
            case .session:
                let names = f.outputNames
                columns.append(Column(name: names[2], feature: i, column: 2))
                columns.append(Column(name: names[3], feature: i, column: 3))
            case .tiled(let agg, _, _, _):
                switch agg {
                case .distinctCount, .percentile, .variance, .stddev:
                    for (c, name) in f.outputNames.enumerated() { columns.append(Column(name: name, feature: i, column: c)) }
                case .first, .last, .countBy:
                    break  // not numeric (first/last may hold any value)
                }
            case .timeSince:
                columns.append(Column(name: f.name, feature: i, column: 0))
            case .lastN:
                break
            }
        }
        return columns
    }
}

/// The distribution of one feature's values over `FeatureBuckets`.
public struct FeatureDistribution: Codable, Equatable, Sendable {
    /// Values per bucket (`FeatureBuckets.count` entries).
    public var counts: [Int]
    /// Values that were null or not finite.
    public var nulls: Int
    /// Sum of the finite values.
    public var sum: Double

    public init() {
        counts = Array(repeating: 0, count: FeatureBuckets.count)
        nulls = 0
        sum = 0
    }

    public init(counts: [Int], nulls: Int, sum: Double = 0) {
        precondition(counts.count == FeatureBuckets.count, "one count per bucket")
        self.counts = counts
        self.nulls = nulls
        self.sum = sum
    }

    /// Every value counted, nulls included.
    public var total: Int { counts.reduce(0, +) + nulls }

    /// Counts one value (nil: null).
    public mutating func add(_ value: Double?) {
        guard let value, value.isFinite else {
            nulls += 1
            return
        }
        counts[FeatureBuckets.index(value)] += 1
        sum += value
    }

    /// The bins drift compares: every bucket, then nulls.
    public var bins: [Int] { counts + [nulls] }
}

/// The Population Stability Index between two distributions over the same
/// bins:
///
///     PSI = Σ_i (a_i - e_i) · ln(a_i / e_i)
///
/// where `e_i` and `a_i` are bin i's share of the expected (baseline) and
/// actual (current) totals. A share of 0 is replaced by `epsilon` (1e-4) so
/// that a bin empty on one side counts as a large but finite change; bins
/// empty on both sides add nothing. Common reading: below 0.1 stable,
/// 0.1-0.2 a moderate shift, above 0.2 (`threshold`) a significant shift.
public enum PSI {
    public static let epsilon = 1e-4
    public static let threshold = 0.2

    /// PSI of `actual` against `expected` (bin counts, same length); nil when
    /// either side is empty.
    public static func compute(expected: [Int], actual: [Int]) -> Double? {
        precondition(expected.count == actual.count, "the same bins on both sides")
        let e = expected.reduce(0, +), a = actual.reduce(0, +)
        guard e > 0, a > 0 else { return nil }
        var psi = 0.0
        for (ei, ai) in zip(expected, actual) where ei > 0 || ai > 0 {
            let es = max(Double(ei) / Double(e), epsilon)
            let as_ = max(Double(ai) / Double(a), epsilon)
            psi += (as_ - es) * log(as_ / es)
        }
        return psi
    }

    /// PSI of two feature distributions (buckets and nulls).
    public static func compute(expected: FeatureDistribution, actual: FeatureDistribution) -> Double? {
        compute(expected: expected.bins, actual: actual.bins)
    }
}

/// Reads a JSON number, `null`, `true` or `false` as a column writes it
/// (`JSONWriter`): nil for null; booleans as 0 and 1; nil for anything else.
@inline(__always)
func parseColumnValue(_ bytes: ArraySlice<UInt8>) -> Double? {
    guard let first = bytes.first else { return nil }
    switch first {
    case UInt8(ascii: "n"): return nil
    case UInt8(ascii: "t"): return 1
    case UInt8(ascii: "f"): return 0
    default:
        guard let v = Double(String(decoding: bytes, as: UTF8.self)), v.isFinite else { return nil }
        return v
    }
}
