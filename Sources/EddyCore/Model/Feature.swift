/// One feature of a topology.
public struct FeatureSpec: Sendable, Equatable {
    public var name: String
    public var kind: FeatureKind
    /// Only events passing this filter are applied; `nil` applies all.
    public var filter: FilterExpr?

    public init(name: String, kind: FeatureKind, filter: FilterExpr? = nil) {
        self.name = name
        self.kind = kind
        self.filter = filter
    }
}

/// The aggregations a window feature can compute over its tiles.
public enum Aggregation: String, Sendable, Equatable, CaseIterable {
    case count, sum, min, max, avg
}

/// The aggregations of SEMANTICS.md's "More aggregations", kept per tile
/// (or in one lifetime accumulator) with tiles of varying size.
public enum TileAggregation: Sendable, Equatable {
    /// Distinct canonical texts: an exact set of XXH64 hashes up to
    /// `exactLimit` members per tile, then HyperLogLog registers (2^precision).
    case distinctCount(precision: Int, exactLimit: Int)
    /// A DDSketch with `relativeAccuracy`, read at each of `quantiles`.
    case percentile(quantiles: [Double], relativeAccuracy: Double)
    /// The value of the event with the least (first) or greatest (last) `(ts, arrival)`.
    case first, last
    /// Population variance (and its square root) by Welford's update.
    case variance, stddev
    /// Events per canonical text: at most `maxValues` texts per tile (then
    /// `__other__`), read as the `top` texts with the greatest counts.
    case countBy(top: Int, maxValues: Int)

    /// The topology file's kind name.
    public var kindName: String {
        switch self {
        case .distinctCount: return "distinct_count"
        case .percentile: return "percentile"
        case .first: return "first"
        case .last: return "last"
        case .variance: return "variance"
        case .stddev: return "stddev"
        case .countBy: return "count_by"
        }
    }
}

public enum FeatureKind: Sendable, Equatable {
    /// The `n` newest values of `field`, optionally distinct.
    case lastN(field: FieldPath, n: Int, distinct: Bool)
    /// The key's latest session, split by `gapMs` of inactivity.
    case session(gapMs: Int64)
    /// A tiled sliding window. `field` is nil only for `count`. `windowMs`
    /// and `hopMs` 0: a lifetime aggregate (one accumulator, never dropped).
    case window(Aggregation, field: FieldPath?, windowMs: Int64, hopMs: Int64)
    /// One of the "More aggregations" over a window, or over the lifetime
    /// when `windowMs` and `hopMs` are 0.
    case tiled(TileAggregation, field: FieldPath, windowMs: Int64, hopMs: Int64)
    /// The greatest `ts` of accepted events passing the filter, read at `T`
    /// as `T - ts` ms.
    case timeSince
}

extension FeatureKind {
    /// Whether this is a lifetime aggregate (a window kind without a window).
    public var isLifetime: Bool {
        switch self {
        case .window(_, _, let w, _), .tiled(_, _, let w, _): return w == 0
        default: return false
        }
    }
}

extension FeatureSpec {
    /// The output column names this feature produces, in order.
    public var outputNames: [String] {
        switch kind {
        case .session:
            return ["_start", "_last", "_events", "_duration_ms", "_active"].map { name + $0 }
        case .tiled(.percentile(let quantiles, _), _, _, _):
            return quantiles.map { name + "_" + percentileSuffix($0) }
        case .lastN, .window, .tiled, .timeSince:
            return [name]
        }
    }
}

/// A quantile's column suffix: `p` and `q*100` in canonical number text with
/// `.` as `_` (0.5: `p50`, 0.999: `p99_9`). `q*100` is rounded to 9 decimals
/// first, so 0.29 gives `p29`, not `p28_999999999999996`.
public func percentileSuffix(_ q: Double) -> String {
    let scaled = (q * 100 * 1e9).rounded() / 1e9
    var buffer = [UInt8](repeating: 0, count: CanonicalText.capacity)
    let n = buffer.withUnsafeMutableBufferPointer { CanonicalText.number(scaled, into: $0.baseAddress!) }
    return "p" + String(decoding: buffer[0..<n], as: UTF8.self).replacingDots()
}

extension String {
    fileprivate func replacingDots() -> String {
        String(self.map { $0 == "." ? "_" : $0 })
    }
}

extension FeatureSpec {
    /// The type of each output column, parallel to `outputNames`: which
    /// columns a derived expression may read (`ColumnType.isNumeric`).
    /// Window aggregates and session start/last/events/duration are
    /// numbers (or null), `<session>_active` is a boolean (1 or 0 in a
    /// derived expression), `last_n` lists are not numeric.
    public var outputTypes: [ColumnType] {
        switch kind {
        case .session: return [.number, .number, .number, .number, .boolean]
        case .window: return [.number]
        case .lastN: return [.other]
        case .tiled(let agg, _, _, _):
            switch agg {
            case .distinctCount, .variance, .stddev: return [.number]
            case .percentile(let quantiles, _): return quantiles.map { _ in .number }
            // first/last hold whatever the field holds; count_by is an object.
            case .first, .last, .countBy: return [.other]
            }
        case .timeSince: return [.number]
        }
    }
}
