/// A literal in a `where` filter.
public enum Literal: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    public var description: String {
        switch self {
        case .string(let s): return "\"\(s)\""
        case .number(let d): return formatNumber(d)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }
}

public enum ComparisonOperator: String, Sendable, Equatable, CaseIterable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
}

/// A `where` filter expression.
///
/// A comparison with a missing field is false, except `!=`, which is
/// `not (==)` and so true; `x == null` holds when `x` is missing or null.
public indirect enum FilterExpr: Sendable, Equatable, CustomStringConvertible {
    case compare(FieldPath, ComparisonOperator, Literal)
    case isIn(FieldPath, [Literal])
    case and(FilterExpr, FilterExpr)
    case or(FilterExpr, FilterExpr)
    case not(FilterExpr)

    public var description: String {
        switch self {
        case .compare(let p, let op, let l): return "\(p) \(op.rawValue) \(l)"
        case .isIn(let p, let ls): return "\(p) in [\(ls.map(\.description).joined(separator: ", "))]"
        case .and(let a, let b): return "(\(a) and \(b))"
        case .or(let a, let b): return "(\(a) or \(b))"
        case .not(let a): return "not \(a)"
        }
    }

    /// Every field path the expression reads.
    public var fieldPaths: [FieldPath] {
        switch self {
        case .compare(let p, _, _), .isIn(let p, _): return [p]
        case .and(let a, let b), .or(let a, let b): return a.fieldPaths + b.fieldPaths
        case .not(let a): return a.fieldPaths
        }
    }
}
