import EddyCore
import EddyTopology
import Testing

/// `derived:` problems, checked by message, line and column.
@Suite struct DerivedDiagnosticsTests {
    // Lines 7-10 are features; `derived:` is line 11, its entries from line 12.
    let base = """
        name: t
        source: {brokers: "b:9092", topic: events}
        key: user_id
        time: {field: ts, unit: ms}
        sink: {redis: "redis://127.0.0.1:6379"}
        features:
          - {name: clicks_1h, kind: count, window: 1h}
          - {name: views_1h, kind: count, window: 1h}
          - {name: s, kind: session, gap: 30m}
          - {name: items, kind: last_n, field: item, n: 3}
        derived:

        """

    func errors(_ derived: String) -> [Diagnostic] {
        do {
            _ = try TopologyLoader(environment: [:]).parse(base + derived, file: "t.yaml")
            return []
        } catch {
            return error.diagnostics
        }
    }

    func load(_ derived: String) throws -> Topology {
        try TopologyLoader(environment: [:]).parse(base + derived, file: "t.yaml")
    }

    @Test func validDerivedColumnsLoad() throws {
        let t = try load("""
              - {name: ctr, expr: "clicks_1h / views_1h"}
              - name: ctr_pct
                expr: if(views_1h > 0, ctr * 100, 0)
              - {name: active_rate, expr: "s_active * coalesce(ctr, 0) + s_events / 2"}
            """)
        #expect(t.derived.map(\.name) == ["ctr", "ctr_pct", "active_rate"])
        #expect(t.derived[0].source == "clicks_1h / views_1h")
        #expect(t.derived[0].expression == .binary(.divide, .column("clicks_1h"), .column("views_1h")))
        #expect(t.outputColumns.suffix(3) == ["ctr", "ctr_pct", "active_rate"])
        #expect(t.planDescription.contains("ctr_pct        = if((views_1h > 0), (ctr * 100), 0)"))
        // No derived section: none.
        let plain = try TopologyLoader(environment: [:]).parse(base.replacingOccurrences(of: "derived:\n", with: ""), file: "t.yaml")
        #expect(plain.derived.isEmpty)
    }

    @Test func unknownColumnSuggestsTheClosest() {
        let d = errors("  - {name: ctr, expr: \"clicks_1h / view_1h\"}")
        #expect(d.count == 1)
        #expect(d[0].line == 12)
        #expect(d[0].column == 36)  // the 'view_1h' inside the quotes
        #expect(d[0].message == "unknown column 'view_1h' in derived column 'ctr'")
        #expect(d[0].fix == "did you mean 'views_1h'?")
        // Nothing close: the numeric columns are listed (not items).
        let far = errors("  - {name: x, expr: zzzzzzzzzz + 1}")
        #expect(far.first?.fix?.hasPrefix("numeric columns are: clicks_1h, views_1h, s_start") == true)
        #expect(far.first?.fix?.contains("items") == false)
        #expect(far.first?.column == 21)
    }

    @Test func usedBeforeDefined() {
        let d = errors("""
              - {name: a, expr: b * 2}
              - {name: b, expr: clicks_1h + 1}
            """)
        #expect(d.count == 1)
        #expect(d[0].line == 12)
        #expect(d[0].column == 21)
        #expect(d[0].message == "derived column 'a' uses 'b' before it is defined (on line 13)")
        #expect(d[0].fix == "move 'b' above 'a': derived columns are computed in file order")
    }

    @Test func cycles() {
        let d = errors("""
              - {name: a, expr: b + 1}
              - {name: b, expr: c + 1}
              - {name: c, expr: a * 2}
            """)
        #expect(d.count == 1)
        #expect(d[0].message == "derived columns form a cycle: a -> b -> c -> a")
        #expect(d[0].line == 12)
        #expect(d[0].column == 21)
        let selfLoop = errors("  - {name: a, expr: \"a + 1\"}")
        #expect(selfLoop.map(\.message) == ["derived column 'a' refers to itself"])
        #expect(selfLoop.first?.column == 22)
    }

    @Test func syntaxErrorsPointAtTheBadToken() {
        // Plain scalar in block style: the '=' at column 22 of line 13.
        let d = errors("""
              - name: a
                expr: clicks_1h = 2
            """)
        #expect(d.count == 1)
        #expect(d[0].line == 13)
        #expect(d[0].column == 21)
        #expect(d[0].message == "bad expression in derived column 'a': '=' is not an operator; use '==' to compare")
        // Double-quoted: one more for the quote.
        let q = errors("  - {name: a, expr: \"min(clicks_1h) + 1\"}")
        #expect(q.first?.column == 22)
        #expect(q.first?.message.contains("min takes at least 2 arguments, not 1") == true)
        // Missing operand at the end.
        let end = errors("  - {name: a, expr: \"clicks_1h +\"}")
        #expect(end.first?.column == 33)
        // A literal block: the line inside the block.
        let block = errors("""
              - name: a
                expr: |
                  clicks_1h +
                    foo(1)
            """)
        #expect(block.first?.line == 15)
        #expect(block.first?.column == 9)
        #expect(block.first?.message.contains("unknown function 'foo'") == true)
    }

    @Test func nonNumericColumns() {
        let d = errors("  - {name: a, expr: \"items + 1\"}")
        #expect(d.count == 1)
        #expect(d[0].message == "derived column 'a' reads 'items', which is not numeric")
        #expect(d[0].column == 22)
        // A boolean is numeric (1 or 0).
        #expect(errors("  - {name: a, expr: \"s_active + 1\"}").isEmpty)
    }

    @Test func namesAndShape() {
        let dup = errors("""
              - {name: a, expr: "1"}
              - {name: a, expr: "2"}
            """)
        #expect(dup.map(\.message) == ["duplicate derived column 'a' (first defined on line 12)"])
        #expect(errors("  - {name: clicks_1h, expr: \"1\"}").map(\.message) == ["derived column 'clicks_1h' has the name of a feature column"])
        #expect(errors("  - {name: s_start, expr: \"1\"}").count == 1)
        #expect(errors("  - {name: key_time, expr: \"1\"}").first?.message.contains("reserved output name") == true)
        #expect(errors("  - {name: and, expr: \"1\"}").first?.message.contains("reserved word") == true)
        #expect(errors("  - {name: 1a, expr: \"1\"}").first?.message.contains("may only use letters") == true)
        #expect(errors("  - {name: a}").first?.message == "derived column 'a' has no expression")
        #expect(errors("  - {name: a, expr: \"1\", exp: 2}").first?.fix == "did you mean 'expr'?")
        #expect(errors("  {name: a, expr: 1}").first?.message == "derived must be a list")
        let empty = errors("  - {name: a, expr: \"\"}")
        #expect(empty.first?.message == "bad expression in derived column 'a': the expression is empty")
        // Several problems are all reported.
        let many = errors("""
              - {name: a, expr: "nope + 1"}
              - {name: b, expr: "1 +"}
              - {name: c, expr: "items"}
            """)
        #expect(many.count == 1)  // syntax first; references are checked once the syntax is clean
        let refs = errors("""
              - {name: a, expr: "nope + 1"}
              - {name: c, expr: "items + a"}
            """)
        #expect(refs.count == 2)
    }

    @Test func featureErrorsStillCheckSyntax() {
        let text = base.replacingOccurrences(of: "kind: count, window: 1h}\n  - {name: views_1h", with: "kind: cont, window: 1h}\n  - {name: views_1h")
        do {
            _ = try TopologyLoader(environment: [:]).parse(text + "  - {name: a, expr: \"1 +\"}", file: "t.yaml")
            Issue.record("loaded")
        } catch {
            #expect(error.diagnostics.count == 2)
            #expect(error.diagnostics.contains { $0.message.hasPrefix("unknown feature kind 'cont'") })
            #expect(error.diagnostics.contains { $0.message.hasPrefix("bad expression in derived column 'a'") })
        }
    }
}
