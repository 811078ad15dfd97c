import EddyCore
import EddyReplay
import Foundation
import Testing

/// Parses and evaluates `text` with the columns `a`..`e` bound to `values`
/// (nil: null) in that order.
private func eval(_ text: String, _ values: [Double?] = []) throws -> Double? {
    let names = ["a", "b", "c", "d", "e"]
    let parsed = try DerivedParser.parse(text)
    let program = DerivedProgram(parsed.expression) { names.firstIndex(of: $0) }
    var inputs = values
    while inputs.count < names.count { inputs.append(nil) }
    return program.evaluate(inputs)
}

/// The error of a text that must not parse.
private func syntaxError(_ text: String) -> DerivedSyntaxError? {
    do {
        _ = try DerivedParser.parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite("Derived expressions: parsing")
struct DerivedParserTests {
    @Test("precedence, loosest first: or, and, not, comparisons, + -, * /, unary -")
    func precedence() throws {
        let cases: [(String, String)] = [
            ("a + b * c", "(a + (b * c))"),
            ("a * b + c", "((a * b) + c)"),
            ("-a * b", "((-a) * b)"),
            ("- a - b", "((-a) - b)"),
            ("a - b - c", "((a - b) - c)"),
            ("a / b / c", "((a / b) / c)"),
            ("a - -b", "(a - (-b))"),
            ("a < b + 1", "(a < (b + 1))"),
            ("a < b < c", "((a < b) < c)"),
            ("a == b != c", "((a == b) != c)"),
            ("not a == b", "(not (a == b))"),
            ("not not a", "(not (not a))"),
            ("a or b and c", "(a or (b and c))"),
            ("a and b or c and d", "((a and b) or (c and d))"),
            ("not a and b", "((not a) and b)"),
            ("a and not b or c", "((a and (not b)) or c)"),
            ("(a + b) * c", "((a + b) * c)"),
            ("min(a, b, c) + max(a, 1)", "(min(a, b, c) + max(a, 1))"),
            ("if(a > 0, b / a, 0)", "if((a > 0), (b / a), 0)"),
            ("coalesce(a, b) >= 1e3", "(coalesce(a, b) >= 1000)"),
            ("pow(2, .5)", "pow(2, 0.5)"),
            ("a<=b", "(a <= b)"),
            ("log(exp(a))", "log(exp(a))"),
        ]
        for (text, want) in cases {
            let e = try DerivedParser.parse(text).expression
            #expect(e.description == want, "\(text)")
            // The description parses back to the same tree.
            #expect(try DerivedParser.parse(e.description).expression == e, "\(text)")
        }
    }

    @Test("numbers, names and references with their offsets")
    func references() throws {
        let p = try DerivedParser.parse("clicks_1h / (views_1h + 1.5e-3) * log(views_1h)")
        #expect(p.references.map(\.name) == ["clicks_1h", "views_1h", "views_1h"])
        #expect(p.references.map(\.offset) == [0, 13, 38])
        #expect(p.expression.columns == ["clicks_1h", "views_1h", "views_1h"])
        // A function name without a call is a column.
        #expect(try DerivedParser.parse("log + 1").expression == .binary(.add, .column("log"), .number(1)))
        #expect(try DerivedParser.parse("0.1").expression == .number(0.1))
        #expect(try DerivedParser.parse("12E+2").expression == .number(1200))
    }

    @Test("syntax errors point at the bad token")
    func errors() {
        let cases: [(String, Int, String)] = [
            ("", 0, "the expression is empty"),
            ("a +", 3, "expected a number, a column, a function or '(' but found end of expression"),
            ("a + * b", 4, "found '*'"),
            ("a b", 2, "unexpected 'b' after a complete expression"),
            ("(a + b", 6, "expected ')' but found end of expression"),
            ("a = b", 2, "'=' is not an operator; use '==' to compare"),
            ("a ! b", 2, "use '!=' or 'not'"),
            ("a & b", 2, "use 'and'"),
            ("a ^ 2", 2, "use pow(x, y)"),
            ("a + 'x'", 4, "there are no strings"),
            ("foo(a)", 0, "unknown function 'foo'"),
            ("pow(a)", 0, "pow takes 2 arguments, not 1: pow(x, y)"),
            ("if(a, b)", 0, "if takes 3 arguments, not 2"),
            ("min(a)", 0, "min takes at least 2 arguments, not 1"),
            ("abs()", 0, "abs takes 1 argument, not 0"),
            ("log(a b)", 6, "expected ',' or ')' in the arguments of log"),
            ("1.", 2, "a digit must follow the decimal point"),
            ("1e", 2, "the exponent of a number needs digits"),
            ("2x", 1, "unexpected 'x' in a number"),
            ("1e999", 0, "too large"),
            ("a * not b", 4, "put it in parentheses"),
            ("a and", 5, "found end of expression"),
            ("+a", 0, "found '+'"),
            ("a, b", 1, "unexpected ','"),
        ]
        for (text, offset, message) in cases {
            let e = syntaxError(text)
            #expect(e?.offset == offset, "\(text): \(e?.message ?? "parsed")")
            #expect(e?.message.contains(message) == true, "\(text): \(e?.message ?? "parsed")")
        }
        // Too deep.
        let deep = String(repeating: "(", count: 100) + "a" + String(repeating: ")", count: 100)
        #expect(syntaxError(deep)?.message.contains("nests more than") == true)
        let shallow = String(repeating: "(", count: 30) + "a" + String(repeating: ")", count: 30)
        #expect(syntaxError(shallow) == nil)
        // Long flat chains are not deep.
        #expect(syntaxError(Array(repeating: "a", count: 500).joined(separator: " + ")) == nil)
    }
}

@Suite("Derived expressions: values")
struct DerivedValueTests {
    @Test("arithmetic on IEEE doubles, left to right")
    func arithmetic() throws {
        #expect(try eval("1 + 2 * 3") == 7)
        #expect(try eval("2 - 3 - 4") == -5)
        #expect(try eval("8 / 4 / 2") == 1)
        #expect(try eval("-2 * 3") == -6)
        #expect(try eval("--2") == 2)
        #expect(try eval("0.1 + 0.2") == 0.30000000000000004)
        #expect(try eval("a / b", [1, 3]) == 1.0 / 3.0)
        #expect(try eval("(a + b) + c", [1e16, 1, 1]) == 1e16)  // each + rounds
        #expect(try eval("a + (b + c)", [1e16, 1, 1]) == 1e16 + 2)
        #expect(try eval("a * b", [1e200, 1e-200]) == 1e200 * 1e-200)
    }

    @Test("null propagates through every operator and function")
    func nulls() throws {
        for op in ["+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=", "and", "or"] {
            #expect(try eval("a \(op) b", [nil, 1]) == nil, "null \(op) 1")
            #expect(try eval("a \(op) b", [1, nil]) == nil, "1 \(op) null")
            #expect(try eval("a \(op) b", [0, nil]) == nil, "0 \(op) null")
        }
        // `and` and `or` are strict: no short circuit around a null.
        #expect(try eval("0 and a") == nil)
        #expect(try eval("1 or a") == nil)
        #expect(try eval("-a") == nil)
        #expect(try eval("not a") == nil)
        for f in ["abs", "log", "exp", "sqrt"] { #expect(try eval("\(f)(a)") == nil, "\(f)") }
        for f in ["min", "max", "pow"] {
            #expect(try eval("\(f)(a, 1)") == nil, "\(f)")
            #expect(try eval("\(f)(1, a)") == nil, "\(f)")
        }
        #expect(try eval("min(1, 2, a)") == nil)
        #expect(try eval("max(a, 1, 2)") == nil)
        // C's pow(x, 0) is 1 even for NaN; null stays null here.
        #expect(try eval("pow(a, 0)") == nil)
        #expect(try eval("pow(1, a)") == nil)
    }

    @Test("coalesce takes the first non-null; if takes one branch")
    func coalesceAndIf() throws {
        #expect(try eval("coalesce(a, b, 3)", [nil, nil]) == 3)
        #expect(try eval("coalesce(a, b, 3)", [nil, 2]) == 2)
        #expect(try eval("coalesce(a, b)", [0, 2]) == 0)
        #expect(try eval("coalesce(a, b)") == nil)
        #expect(try eval("coalesce(1 / 0, 7)") == 7)
        #expect(try eval("if(a, b, c)", [1, 5, nil]) == 5)  // the untaken branch may be null
        #expect(try eval("if(a, b, c)", [0, nil, 6]) == 6)
        #expect(try eval("if(a, b, c)", [-0.5, 5, 6]) == 5)  // any non-zero is true
        #expect(try eval("if(a, b, c)", [nil, 5, 6]) == nil)  // a null condition
        #expect(try eval("if(a, b, c)", [1, nil, 6]) == nil)  // the taken branch is null
        #expect(try eval("if(a > 0, b / a, 0)", [0, 5]) == 0)
        #expect(try eval("if(a > 0, b / a, 0)", [2, 5]) == 2.5)
    }

    @Test("division by zero, log of x <= 0, sqrt of x < 0 and non-finite results are null")
    func domains() throws {
        #expect(try eval("1 / 0") == nil)
        #expect(try eval("0 / 0") == nil)
        #expect(try eval("a / b", [1, -0.0]) == nil)
        #expect(try eval("0 / 5") == 0)
        #expect(try eval("log(0)") == nil)
        #expect(try eval("log(-1)") == nil)
        #expect(try eval("log(1)") == 0)
        #expect(try eval("log(a)", [M_E]) == Foundation.log(M_E))
        #expect(try eval("sqrt(-1)") == nil)
        #expect(try eval("sqrt(a)", [-0.0]).map { $0 == 0 } == true)
        #expect(try eval("sqrt(16)") == 4)
        #expect(try eval("exp(1000)") == nil)  // overflows
        #expect(try eval("exp(-1000)") == 0)  // underflows to 0: finite
        #expect(try eval("1 / exp(1000)") == nil)  // null propagates: not 1/inf = 0
        #expect(try eval("a * b", [1e300, 1e300]) == nil)
        #expect(try eval("a + b", [1.7976931348623157e308, 1.7976931348623157e308]) == nil)
        #expect(try eval("a - b", [-1.7976931348623157e308, 1.7976931348623157e308]) == nil)
        #expect(try eval("pow(-8, 1 / 3)") == nil)  // NaN
        #expect(try eval("pow(0, -1)") == nil)  // inf
        #expect(try eval("pow(2, 10)") == 1024)
        #expect(try eval("pow(a, 0.5)", [2]) == Foundation.pow(2, 0.5))
        // Non-finite inputs read as null.
        #expect(try eval("a + 1", [.infinity]) == nil)
        #expect(try eval("coalesce(a, 1)", [-.infinity]) == 1)
    }

    @Test("comparisons and logic give 1 or 0")
    func logic() throws {
        #expect(try eval("1 < 2") == 1)
        #expect(try eval("2 < 2") == 0)
        #expect(try eval("2 <= 2") == 1)
        #expect(try eval("3 > 2") == 1)
        #expect(try eval("2 >= 3") == 0)
        #expect(try eval("a == b", [0, -0.0]) == 1)
        #expect(try eval("0.1 + 0.2 == 0.3") == 0)
        #expect(try eval("1 != 2") == 1)
        #expect(try eval("2 and 3") == 1)
        #expect(try eval("2 and 0") == 0)
        #expect(try eval("0 or 0") == 0)
        #expect(try eval("0 or -1") == 1)
        #expect(try eval("not 0") == 1)
        #expect(try eval("not 5") == 0)
        #expect(try eval("1 < 2 < 3") == 1)  // (1 < 2) < 3
        #expect(try eval("3 > 2 > 1") == 0)  // (3 > 2) > 1 is 1 > 1
        #expect(try eval("not 1 == 2") == 1)  // not (1 == 2)
        #expect(try eval("1 or 0 and 0") == 1)  // 1 or (0 and 0)
        #expect(try eval("(1 or 0) and 0") == 0)
        #expect(try eval("1 + (2 > 1)") == 2)
    }

    @Test("abs, min, max, log, exp, sqrt, pow")
    func functions() throws {
        #expect(try eval("abs(-2.5)") == 2.5)
        #expect(try eval("abs(a)", [3]) == 3)
        #expect(try eval("min(3, 1, 2)") == 1)
        #expect(try eval("max(3, 1, 2)") == 3)
        #expect(try eval("min(a, b)", [-1, -2]) == -2)
        #expect(try eval("max(-0.5, -0.25)") == -0.25)
        #expect(try eval("exp(0)") == 1)
        #expect(try eval("exp(1)") == Foundation.exp(1.0))
        #expect(try eval("log(exp(2))") == Foundation.log(Foundation.exp(2.0)))
        #expect(try eval("sqrt(2)") == 2.0.squareRoot())
        #expect(try eval("pow(10, -2)") == Foundation.pow(10.0, -2.0))
        #expect(try eval("pow(-2, 3)") == -8)
    }
}

@Suite("Column types for derived expressions")
struct ColumnTypeTests {
    @Test("window aggregates and session columns are numeric, session_active boolean, last_n not")
    func types() throws {
        let t = try makeTopology("""
              - {name: items, kind: last_n, field: item, n: 3}
              - {name: s, kind: session, gap: 30m}
              - {name: n, kind: count, window: 1h}
              - {name: total, kind: sum, field: x, window: 1h}
              - {name: lo, kind: min, field: x, window: 1h}
              - {name: hi, kind: max, field: x, window: 1h}
              - {name: mean, kind: avg, field: x, window: 1h}
            """)
        for f in t.features { #expect(f.outputTypes.count == f.outputNames.count, "\(f.name)") }
        let types = Dictionary(uniqueKeysWithValues: zip(t.features.flatMap(\.outputNames), t.features.flatMap(\.outputTypes)))
        #expect(types == [
            "items": .other, "s_start": .number, "s_last": .number, "s_events": .number, "s_duration_ms": .number,
            "s_active": .boolean, "n": .number, "total": .number, "lo": .number, "hi": .number, "mean": .number,
        ])
        #expect(ColumnType.boolean.isNumeric && ColumnType.number.isNumeric && !ColumnType.other.isNumeric)
    }
}

