#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A literal prepared for comparison against extracted fields.
struct CompiledLiteral: Sendable {
    enum Kind: UInt8 { case string, number, bool, null }
    var kind: Kind
    var bytes: [UInt8] = []
    var number: Double = 0
    var bool: Bool = false

    init(_ l: Literal) {
        switch l {
        case .string(let s): kind = .string; bytes = Array(s.utf8)
        case .number(let d): kind = .number; number = d
        case .bool(let b): kind = .bool; bool = b
        case .null: kind = .null
        }
    }
}

/// A `where` filter with field paths resolved to extracted-field indices.
indirect enum CompiledFilter: Sendable {
    case compare(Int, ComparisonOperator, CompiledLiteral)
    case isIn(Int, [CompiledLiteral])
    case and(CompiledFilter, CompiledFilter)
    case or(CompiledFilter, CompiledFilter)
    case not(CompiledFilter)

    init(_ e: FilterExpr, fields: FieldTable) {
        switch e {
        case .compare(let p, let op, let l): self = .compare(fields.index(of: p)!, op, CompiledLiteral(l))
        case .isIn(let p, let ls): self = .isIn(fields.index(of: p)!, ls.map(CompiledLiteral.init))
        case .and(let a, let b): self = .and(CompiledFilter(a, fields: fields), CompiledFilter(b, fields: fields))
        case .or(let a, let b): self = .or(CompiledFilter(a, fields: fields), CompiledFilter(b, fields: fields))
        case .not(let a): self = .not(CompiledFilter(a, fields: fields))
        }
    }

    /// Evaluates the filter on the decoder's current event.
    func matches(_ d: EventDecoder) -> Bool {
        switch self {
        case .compare(let f, let op, let lit):
            if op == .notEqual { return !Self.compare(d, f, .equal, lit) }
            return Self.compare(d, f, op, lit)
        case .isIn(let f, let lits):
            for l in lits where Self.compare(d, f, .equal, l) { return true }
            return false
        case .and(let a, let b): return a.matches(d) && b.matches(d)
        case .or(let a, let b): return a.matches(d) || b.matches(d)
        case .not(let a): return !a.matches(d)
        }
    }

    /// Compares field `f` with a literal; false across types.
    static func compare(_ d: EventDecoder, _ f: Int, _ op: ComparisonOperator, _ lit: CompiledLiteral) -> Bool {
        let s = d.field(f)
        switch (s.kind, lit.kind) {
        case (.missing, .null), (.null, .null):
            return op == .equal || op == .lessOrEqual || op == .greaterOrEqual
        case (.number, .number):
            let a = s.number, b = lit.number
            switch op {
            case .equal: return a == b
            case .notEqual: return a != b
            case .less: return a < b
            case .lessOrEqual: return a <= b
            case .greater: return a > b
            case .greaterOrEqual: return a >= b
            }
        case (.bool, .bool):
            switch op {
            case .equal: return s.boolValue == lit.bool
            case .notEqual: return s.boolValue != lit.bool
            default: return false
            }
        case (.string, .string):
            let v = d.fieldBytes(f)
            // Equality fails on length alone most of the time (event == "view"
            // against "click", "purchase"): no memcmp then.
            if op == .equal && v.count != lit.bytes.count { return false }
            let order: Int = lit.bytes.withUnsafeBufferPointer { l in
                let n = min(v.count, l.count)
                let c = n == 0 ? 0 : Int(memcmp(v.baseAddress!, l.baseAddress!, n))
                return c != 0 ? c : v.count - l.count
            }
            switch op {
            case .equal: return order == 0
            case .notEqual: return order != 0
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            case .greaterOrEqual: return order >= 0
            }
        default:
            return false
        }
    }
}
