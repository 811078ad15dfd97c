/// A derived column of a topology (SEMANTICS.md, Derived features): a
/// number computed at read time from the feature columns and the derived
/// columns defined before it.
public struct DerivedSpec: Sendable, Equatable {
    public var name: String
    /// The expression as written in the topology file.
    public var source: String
    public var expression: DerivedExpr

    public init(name: String, source: String, expression: DerivedExpr) {
        self.name = name
        self.source = source
        self.expression = expression
    }

    /// Parses `source`; throws the syntax error with its character offset.
    public init(name: String, source: String) throws(DerivedSyntaxError) {
        self.init(name: name, source: source, expression: try DerivedParser.parse(source).expression)
    }
}

/// The binary operators of derived expressions.
public enum DerivedBinary: String, Sendable, Equatable, CaseIterable {
    case add = "+", subtract = "-", multiply = "*", divide = "/"
    case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=", equal = "==", notEqual = "!="
    case and, or
}

/// The unary operators: `-x` and `not x`.
public enum DerivedUnary: String, Sendable, Equatable, CaseIterable {
    case negate = "-", not
}

/// The functions of derived expressions.
public enum DerivedFunction: String, Sendable, Equatable, CaseIterable {
    case abs, min, max, log, exp, sqrt, pow, coalesce
    case `if`

    /// The accepted argument counts.
    public var arity: ClosedRange<Int> {
        switch self {
        case .abs, .log, .exp, .sqrt: return 1...1
        case .pow: return 2...2
        case .if: return 3...3
        case .min, .max, .coalesce: return 2...Int.max
        }
    }

    /// How a call looks, for messages.
    public var signature: String {
        switch self {
        case .abs, .log, .exp, .sqrt: return "\(rawValue)(x)"
        case .pow: return "pow(x, y)"
        case .if: return "if(condition, then, else)"
        case .min, .max, .coalesce: return "\(rawValue)(a, b, ...)"
        }
    }
}

/// A parsed derived expression. Values are doubles or null (SEMANTICS.md).
public indirect enum DerivedExpr: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case column(String)
    case unary(DerivedUnary, DerivedExpr)
    case binary(DerivedBinary, DerivedExpr, DerivedExpr)
    case call(DerivedFunction, [DerivedExpr])

    /// Fully parenthesized text (parses back to the same expression).
    public var description: String {
        switch self {
        case .number(let v): return formatNumber(v)
        case .column(let c): return c
        case .unary(.negate, let a): return "(-\(a))"
        case .unary(.not, let a): return "(not \(a))"
        case .binary(let op, let a, let b): return "(\(a) \(op.rawValue) \(b))"
        case .call(let f, let args): return "\(f.rawValue)(\(args.map(\.description).joined(separator: ", ")))"
        }
    }

    /// Every column name the expression reads, in order of appearance (with repeats).
    public var columns: [String] {
        var out: [String] = []
        collectColumns(into: &out)
        return out
    }

    func collectColumns(into out: inout [String]) {
        switch self {
        case .number: break
        case .column(let c): out.append(c)
        case .unary(_, let a): a.collectColumns(into: &out)
        case .binary(_, let a, let b): a.collectColumns(into: &out); b.collectColumns(into: &out)
        case .call(_, let args): for a in args { a.collectColumns(into: &out) }
        }
    }
}

/// The type of a column as derived expressions see it.
public enum ColumnType: Sendable, Equatable {
    /// A number or null.
    case number
    /// `true` or `false`; a derived expression reads it as 1 or 0.
    case boolean
    /// Anything else (arrays, strings, objects): not usable in a derived
    /// expression.
    case other

    /// Whether a derived expression may read a column of this type.
    public var isNumeric: Bool { self != .other }
}
