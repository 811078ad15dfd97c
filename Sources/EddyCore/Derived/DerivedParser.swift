/// A syntax error in a derived expression, at a character offset (0-based)
/// into its text.
public struct DerivedSyntaxError: Error, Sendable, Equatable {
    public var offset: Int
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }
}

/// A parsed expression and where each column reference is.
public struct ParsedDerived: Sendable, Equatable {
    public var expression: DerivedExpr
    /// Every column reference: its name and character offset, in order of appearance.
    public var references: [(name: String, offset: Int)]

    public static func == (a: ParsedDerived, b: ParsedDerived) -> Bool {
        a.expression == b.expression && a.references.map(\.name) == b.references.map(\.name)
            && a.references.map(\.offset) == b.references.map(\.offset)
    }
}

/// Parses derived expressions (SEMANTICS.md, Derived features):
///
///     expr    := and ('or' and)*
///     and     := not ('and' not)*
///     not     := 'not' not | compare
///     compare := sum (('<' | '<=' | '>' | '>=' | '==' | '!=') sum)*
///     sum     := product (('+' | '-') product)*
///     product := unary (('*' | '/') unary)*
///     unary   := '-' unary | primary
///     primary := number | column | function '(' expr (',' expr)* ')' | '(' expr ')'
///
/// Binary operators are left-associative (`a < b < c` is `(a < b) < c`).
/// Numbers are decimal: `12`, `0.5`, `1e-3` (no sign: `-1` is unary minus
/// on 1). Names are letters, digits and `_`, not starting with a digit; a
/// name followed by `(` is a function call. `and`, `or` and `not` are
/// reserved. Nesting is limited to `maxDepth` levels.
public struct DerivedParser {
    enum Token: Equatable {
        case number(Double)
        case name(String)
        case op(String)
        case open, close, comma
        case end
    }

    /// The deepest nesting accepted (parentheses, calls, operators): keeps
    /// the generated Lua within its parser's limits.
    public static let maxDepth = 64
    static let keywords: Set<String> = ["and", "or", "not"]

    var tokens: [(Token, Int)] = []
    var position = 0
    var depth = 0
    var references: [(name: String, offset: Int)] = []

    public static func parse(_ text: String) throws(DerivedSyntaxError) -> ParsedDerived {
        var p = DerivedParser()
        try p.tokenize(Array(text))
        if p.peek == .end { throw DerivedSyntaxError(offset: 0, message: "the expression is empty") }
        let e = try p.parseOr()
        guard p.peek == .end else {
            throw p.error("unexpected \(p.describe(p.peek)) after a complete expression; expected an operator")
        }
        return ParsedDerived(expression: e, references: p.references)
    }

    var peek: Token { tokens[position].0 }
    var offset: Int { tokens[position].1 }
    func error(_ m: String) -> DerivedSyntaxError { DerivedSyntaxError(offset: offset, message: m) }

    func describe(_ t: Token) -> String {
        switch t {
        case .number: return "number"
        case .name(let w): return "'\(w)'"
        case .op(let o): return "'\(o)'"
        case .open: return "'('"
        case .close: return "')'"
        case .comma: return "','"
        case .end: return "end of expression"
        }
    }

    static func isNameStart(_ c: Character) -> Bool { c.isLetter || c == "_" }
    static func isNamePart(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }
    static func isDigit(_ c: Character) -> Bool { c.isASCII && c.isNumber }

    mutating func tokenize(_ c: [Character]) throws(DerivedSyntaxError) {
        var i = 0
        while i < c.count {
            let ch = c[i]
            if ch == " " || ch == "\t" || ch == "\n" || ch == "\r" { i += 1; continue }
            let start = i
            if Self.isDigit(ch) || (ch == "." && i + 1 < c.count && Self.isDigit(c[i + 1])) {
                while i < c.count, Self.isDigit(c[i]) { i += 1 }
                if i < c.count, c[i] == "." {
                    i += 1
                    guard i < c.count, Self.isDigit(c[i]) else {
                        throw DerivedSyntaxError(offset: i, message: "a digit must follow the decimal point")
                    }
                    while i < c.count, Self.isDigit(c[i]) { i += 1 }
                }
                if i < c.count, c[i] == "e" || c[i] == "E" {
                    i += 1
                    if i < c.count, c[i] == "+" || c[i] == "-" { i += 1 }
                    guard i < c.count, Self.isDigit(c[i]) else {
                        throw DerivedSyntaxError(offset: i, message: "the exponent of a number needs digits, as in 1e-3")
                    }
                    while i < c.count, Self.isDigit(c[i]) { i += 1 }
                }
                if i < c.count, Self.isNamePart(c[i]) || c[i] == "." {
                    throw DerivedSyntaxError(offset: i, message: "unexpected '\(c[i])' in a number")
                }
                let text = String(c[start..<i])
                guard let d = Double(text), d.isFinite else {
                    throw DerivedSyntaxError(offset: start, message: "the number \(text) is too large for a double")
                }
                tokens.append((.number(d), start))
            } else if Self.isNameStart(ch) {
                while i < c.count, Self.isNamePart(c[i]) { i += 1 }
                tokens.append((.name(String(c[start..<i])), start))
            } else if "<>=!".contains(ch) {
                if i + 1 < c.count, c[i + 1] == "=" {
                    tokens.append((.op(String(c[i...i + 1])), start)); i += 2
                } else if ch == "<" || ch == ">" {
                    tokens.append((.op(String(ch)), start)); i += 1
                } else if ch == "=" {
                    throw DerivedSyntaxError(offset: start, message: "'=' is not an operator; use '==' to compare")
                } else {
                    throw DerivedSyntaxError(offset: start, message: "'!' is not an operator; use '!=' or 'not'")
                }
            } else if "+-*/".contains(ch) {
                tokens.append((.op(String(ch)), start)); i += 1
            } else if ch == "(" {
                tokens.append((.open, start)); i += 1
            } else if ch == ")" {
                tokens.append((.close, start)); i += 1
            } else if ch == "," {
                tokens.append((.comma, start)); i += 1
            } else {
                let hint: String
                switch ch {
                case "&": hint = "; use 'and'"
                case "|": hint = "; use 'or'"
                case "^": hint = "; use pow(x, y)"
                case "%": hint = "; there is no remainder operator"
                case "\"", "'": hint = "; there are no strings in derived expressions"
                default: hint = ""
                }
                throw DerivedSyntaxError(offset: start, message: "unexpected character '\(ch)'\(hint)")
            }
        }
        tokens.append((.end, c.count))
    }

    mutating func nest() throws(DerivedSyntaxError) {
        depth += 1
        if depth > Self.maxDepth {
            throw error("the expression nests more than \(Self.maxDepth) levels deep; split it into several derived columns")
        }
    }

    mutating func parseOr() throws(DerivedSyntaxError) -> DerivedExpr {
        try nest()
        defer { depth -= 1 }
        var e = try parseAnd()
        while peek == .name("or") {
            position += 1
            e = .binary(.or, e, try parseAnd())
        }
        return e
    }

    mutating func parseAnd() throws(DerivedSyntaxError) -> DerivedExpr {
        var e = try parseNot()
        while peek == .name("and") {
            position += 1
            e = .binary(.and, e, try parseNot())
        }
        return e
    }

    mutating func parseNot() throws(DerivedSyntaxError) -> DerivedExpr {
        if peek == .name("not") {
            position += 1
            try nest()
            defer { depth -= 1 }
            return .unary(.not, try parseNot())
        }
        return try parseComparison()
    }

    static let comparisons: [String: DerivedBinary] = [
        "<": .less, "<=": .lessOrEqual, ">": .greater, ">=": .greaterOrEqual, "==": .equal, "!=": .notEqual,
    ]

    mutating func parseComparison() throws(DerivedSyntaxError) -> DerivedExpr {
        var e = try parseSum()
        while case .op(let o) = peek, let op = Self.comparisons[o] {
            position += 1
            e = .binary(op, e, try parseSum())
        }
        return e
    }

    mutating func parseSum() throws(DerivedSyntaxError) -> DerivedExpr {
        var e = try parseProduct()
        while true {
            if peek == .op("+") {
                position += 1
                e = .binary(.add, e, try parseProduct())
            } else if peek == .op("-") {
                position += 1
                e = .binary(.subtract, e, try parseProduct())
            } else {
                return e
            }
        }
    }

    mutating func parseProduct() throws(DerivedSyntaxError) -> DerivedExpr {
        var e = try parseUnary()
        while true {
            if peek == .op("*") {
                position += 1
                e = .binary(.multiply, e, try parseUnary())
            } else if peek == .op("/") {
                position += 1
                e = .binary(.divide, e, try parseUnary())
            } else {
                return e
            }
        }
    }

    mutating func parseUnary() throws(DerivedSyntaxError) -> DerivedExpr {
        if peek == .op("-") {
            position += 1
            try nest()
            defer { depth -= 1 }
            return .unary(.negate, try parseUnary())
        }
        return try parsePrimary()
    }

    mutating func parsePrimary() throws(DerivedSyntaxError) -> DerivedExpr {
        let t = peek
        let at = offset
        switch t {
        case .number(let v):
            position += 1
            return .number(v)
        case .open:
            position += 1
            let e = try parseOr()
            guard peek == .close else {
                throw error("expected ')' but found \(describe(peek))")
            }
            position += 1
            return e
        case .name(let w) where Self.keywords.contains(w):
            if w == "not" {
                throw error("'not' binds more loosely than arithmetic and comparisons; put it in parentheses: (not x)")
            }
            throw error("expected a number, a column, a function or '(' but found '\(w)'")
        case .name(let w):
            position += 1
            guard peek == .open else {
                references.append((w, at))
                return .column(w)
            }
            guard let f = DerivedFunction(rawValue: w) else {
                let names = DerivedFunction.allCases.map(\.rawValue)
                throw DerivedSyntaxError(offset: at, message: "unknown function '\(w)'; functions are \(names.joined(separator: ", "))")
            }
            position += 1
            try nest()
            defer { depth -= 1 }
            var args: [DerivedExpr] = []
            if peek != .close {
                while true {
                    args.append(try parseOr())
                    if peek == .comma { position += 1; continue }
                    if peek == .close { break }
                    throw error("expected ',' or ')' in the arguments of \(w) but found \(describe(peek))")
                }
            }
            position += 1
            guard f.arity.contains(args.count) else {
                let want = f.arity.upperBound == Int.max ? "at least \(f.arity.lowerBound) arguments"
                    : f.arity.count == 1 ? "\(f.arity.lowerBound) argument\(f.arity.lowerBound == 1 ? "" : "s")"
                    : "\(f.arity.lowerBound) to \(f.arity.upperBound) arguments"
                throw DerivedSyntaxError(offset: at, message: "\(w) takes \(want), not \(args.count): \(f.signature)")
            }
            return .call(f, args)
        default:
            throw error("expected a number, a column, a function or '(' but found \(describe(t))")
        }
    }
}
