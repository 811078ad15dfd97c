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

public enum FeatureKind: Sendable, Equatable {
    /// The `n` newest values of `field`, optionally distinct.
    case lastN(field: FieldPath, n: Int, distinct: Bool)
    /// The key's latest session, split by `gapMs` of inactivity.
    case session(gapMs: Int64)
    /// A tiled sliding window. `field` is nil only for `count`.
    case window(Aggregation, field: FieldPath?, windowMs: Int64, hopMs: Int64)
}

extension FeatureSpec {
    /// The output column names this feature produces, in order.
    public var outputNames: [String] {
        switch kind {
        case .session:
            return ["_start", "_last", "_events", "_duration_ms", "_active"].map { name + $0 }
        case .lastN, .window:
            return [name]
        }
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
        }
    }
}
