import EddyCore

/// A syntax error in a `where` filter, at a character offset.
struct FilterSyntaxError: Error {
    var offset: Int
    var message: String
}

/// Parses `where` filters:
///
///     expr    := and ('or' and)*
///     and     := unary ('and' unary)*
///     unary   := 'not' unary | '(' expr ')' | path op literal | path 'in' '[' literal (',' literal)* ']'
///     op      := '==' | '!=' | '<' | '<=' | '>' | '>='
///     literal := "string" | 'string' | number | true | false | null
struct FilterParser {
    enum Token: Equatable {
        case word(String)  // identifier or dotted path or keyword
        case string(String)
        case number(Double)
        case op(String)
        case punct(Character)
        case end
    }

    var tokens: [(Token, Int)] = []
    var position = 0

    static func parse(_ text: String) throws(FilterSyntaxError) -> FilterExpr {
        var p = FilterParser()
        try p.tokenize(Array(text))
        let e = try p.parseOr()
        guard case .end = p.peek else { throw p.error("unexpected \(p.describe(p.peek)) after a complete filter") }
        return e
    }

    var peek: Token { tokens[position].0 }
    var offset: Int { tokens[position].1 }
    func error(_ m: String) -> FilterSyntaxError { FilterSyntaxError(offset: offset, message: m) }

    func describe(_ t: Token) -> String {
        switch t {
        case .word(let w): return "'\(w)'"
        case .string(let s): return "string \"\(s)\""
        case .number(let n): return "number \(formatNumber(n))"
        case .op(let o): return "'\(o)'"
        case .punct(let c): return "'\(c)'"
        case .end: return "end of filter"
        }
    }

    mutating func tokenize(_ c: [Character]) throws(FilterSyntaxError) {
        var i = 0
        while i < c.count {
            let ch = c[i]
            if ch == " " || ch == "\t" || ch == "\n" { i += 1; continue }
            let start = i
            if ch == "\"" || ch == "'" {
                var s = ""
                i += 1
                while i < c.count, c[i] != ch {
                    if c[i] == "\\", i + 1 < c.count { i += 1 }
                    s.append(c[i]); i += 1
                }
                guard i < c.count else { throw FilterSyntaxError(offset: start, message: "string not closed; add a closing \(ch)") }
                i += 1
                tokens.append((.string(s), start))
            } else if ch.isNumber || (ch == "-" && i + 1 < c.count && c[i + 1].isNumber) {
                i += 1
                while i < c.count, c[i].isNumber || c[i] == "." || c[i] == "e" || c[i] == "E" || ((c[i] == "-" || c[i] == "+") && (c[i - 1] == "e" || c[i - 1] == "E")) { i += 1 }
                guard let d = Double(String(c[start..<i])) else {
                    throw FilterSyntaxError(offset: start, message: "'\(String(c[start..<i]))' is not a number")
                }
                tokens.append((.number(d), start))
            } else if ch.isLetter || ch == "_" {
                while i < c.count, c[i].isLetter || c[i].isNumber || c[i] == "_" || c[i] == "." || c[i] == "-" { i += 1 }
                tokens.append((.word(String(c[start..<i])), start))
            } else if "=!<>".contains(ch) {
                if i + 1 < c.count, c[i + 1] == "=" {
                    tokens.append((.op(String(c[i...i + 1])), start)); i += 2
                } else if ch == "<" || ch == ">" {
                    tokens.append((.op(String(ch)), start)); i += 1
                } else if ch == "=" {
                    throw FilterSyntaxError(offset: start, message: "'=' is not an operator; use '==' to compare")
                } else {
                    throw FilterSyntaxError(offset: start, message: "'!' is not an operator; use '!=' or 'not'")
                }
            } else if "()[],".contains(ch) {
                tokens.append((.punct(ch), start)); i += 1
            } else {
                throw FilterSyntaxError(offset: start, message: "unexpected character '\(ch)'")
            }
        }
        tokens.append((.end, c.count))
    }

    mutating func parseOr() throws(FilterSyntaxError) -> FilterExpr {
        var e = try parseAnd()
        while peek == .word("or") { position += 1; e = .or(e, try parseAnd()) }
        return e
    }

    mutating func parseAnd() throws(FilterSyntaxError) -> FilterExpr {
        var e = try parseUnary()
        while peek == .word("and") { position += 1; e = .and(e, try parseUnary()) }
        return e
    }

    mutating func parseUnary() throws(FilterSyntaxError) -> FilterExpr {
        switch peek {
        case .word("not"):
            position += 1
            return .not(try parseUnary())
        case .punct("("):
            position += 1
            let e = try parseOr()
            guard peek == .punct(")") else { throw error("expected ')' but found \(describe(peek))") }
            position += 1
            return e
        case .word(let w) where !["and", "or", "in", "true", "false", "null"].contains(w):
            position += 1
            let path = FieldPath(dotted: w)
            if peek == .word("in") {
                position += 1
                guard peek == .punct("[") else { throw error("expected '[' after 'in', as in: \(w) in [\"a\", \"b\"]") }
                position += 1
                var list: [Literal] = []
                while true {
                    list.append(try parseLiteral())
                    if peek == .punct(",") { position += 1; continue }
                    if peek == .punct("]") { position += 1; break }
                    throw error("expected ',' or ']' in the list but found \(describe(peek))")
                }
                return .isIn(path, list)
            }
            guard case .op(let o) = peek, let op = ComparisonOperator(rawValue: o) else {
                throw error("expected a comparison (== != < <= > >=) or 'in' after '\(w)' but found \(describe(peek))")
            }
            position += 1
            return .compare(path, op, try parseLiteral())
        default:
            throw error("expected a field name, 'not' or '(' but found \(describe(peek))")
        }
    }

    mutating func parseLiteral() throws(FilterSyntaxError) -> Literal {
        let t = peek
        position += 1
        switch t {
        case .string(let s): return .string(s)
        case .number(let n): return .number(n)
        case .word("true"): return .bool(true)
        case .word("false"): return .bool(false)
        case .word("null"): return .null
        case .word(let w):
            position -= 1
            throw error("expected a value but found '\(w)'; quote strings, as in \"\(w)\"")
        default:
            position -= 1
            throw error("expected a value (\"string\", number, true, false, null) but found \(describe(t))")
        }
    }
}
