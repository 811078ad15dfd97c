import EddyCore
import Yams

/// The `derived:` section: a list of `{name, expr}` computed at read time
/// (SEMANTICS.md, Derived features). Every problem is reported with the
/// line and column of the bad token: syntax errors, unknown columns (with
/// the closest name), non-numeric columns, a derived column used before it
/// is defined, and cycles.
extension NodeReader {
    static let reservedColumns: Set<String> = ["key", "ts", "key_time"]

    /// One parsed entry, before its references are checked.
    struct DerivedEntry {
        var name: String
        var node: Node
        var exprNode: Node
        var parsed: ParsedDerived
        var source: String
    }

    /// Reads `derived:`; `features` is nil when the features had errors
    /// (then only syntax is checked).
    mutating func derived(_ node: Node, features: [FeatureSpec]?) -> [DerivedSpec]? {
        guard let seq = node.sequence else {
            report(node, "derived must be a list", fix: "start each derived column with '- name: ...' and give its `expr:`")
            return nil
        }
        let featureColumns = features?.flatMap(\.outputNames) ?? []
        let featureTypes = features?.flatMap(\.outputTypes) ?? []
        var entries: [DerivedEntry] = []
        var ok = true
        var seen: [String: Node] = [:]
        for item in seq {
            guard let m = mapping(item, "a derived column", allowed: ["name", "expr"]) else { ok = false; continue }
            guard let nameNode = m["name"], let name = string(nameNode, "derived column name") else {
                if m["name"] == nil { report(item, "derived column has no name", fix: "add `name: click_rate`") }
                ok = false
                continue
            }
            if name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) || name.first!.isNumber {
                report(nameNode, "derived column name '\(name)' may only use letters, digits and '_', and not start with a digit")
                ok = false
            } else if Self.reservedColumns.contains(name) {
                report(nameNode, "derived column '\(name)' clashes with a reserved output name", fix: "rename it")
                ok = false
            } else if ["and", "or", "not"].contains(name) {
                report(nameNode, "derived column name '\(name)' is a reserved word of expressions", fix: "rename it")
                ok = false
            } else if featureColumns.contains(name) {
                report(nameNode, "derived column '\(name)' has the name of a feature column", fix: "give it another name")
                ok = false
            } else if let first = seen[name] {
                report(nameNode, "duplicate derived column '\(name)' (first defined on line \(first.mark?.line ?? 0))",
                       fix: "give each derived column a unique name")
                ok = false
            }
            seen[name] = seen[name] ?? nameNode
            guard let exprNode = m["expr"] else {
                report(item, "derived column '\(name)' has no expression", fix: "add `expr: clicks_1h / session_events`")
                ok = false
                continue
            }
            guard let text = string(exprNode, "expr") else { ok = false; continue }
            do {
                let parsed = try DerivedParser.parse(text)
                entries.append(DerivedEntry(name: name, node: item, exprNode: exprNode, parsed: parsed, source: text))
            } catch {
                let (line, column) = position(in: exprNode, offset: error.offset)
                diagnostics.append(Diagnostic(
                    file: file, line: line, column: column,
                    message: "bad expression in derived column '\(name)': \(error.message)",
                    fix: "expressions look like: if(views_1h > 0, clicks_1h / views_1h, 0) or coalesce(amount_avg_7d, 0) * 2"))
                ok = false
            }
        }
        guard let features, ok else { return nil }
        _ = features
        if !checkReferences(entries, featureColumns: featureColumns, featureTypes: featureTypes) { return nil }
        return entries.map { DerivedSpec(name: $0.name, source: $0.source, expression: $0.parsed.expression) }
    }

    /// Checks every column reference; reports and returns false on problems.
    mutating func checkReferences(_ entries: [DerivedEntry], featureColumns: [String], featureTypes: [ColumnType]) -> Bool {
        var featureIndex: [String: Int] = [:]
        for (i, c) in featureColumns.enumerated() where featureIndex[c] == nil { featureIndex[c] = i }
        var derivedIndex: [String: Int] = [:]
        for (k, e) in entries.enumerated() where derivedIndex[e.name] == nil { derivedIndex[e.name] = k }
        // Derived -> derived references, for cycles.
        let edges: [[Int]] = entries.map { e in e.parsed.references.compactMap { derivedIndex[$0.name] } }

        var ok = true
        var cycles: Set<Set<Int>> = []
        for (k, e) in entries.enumerated() {
            var reported: Set<String> = []
            for ref in e.parsed.references where !reported.contains(ref.name) {
                let (line, column) = position(in: e.exprNode, offset: ref.offset)
                func fail(_ message: String, fix: String?) {
                    diagnostics.append(Diagnostic(file: file, line: line, column: column, message: message, fix: fix))
                    reported.insert(ref.name)
                    ok = false
                }
                if let i = featureIndex[ref.name] {
                    if !featureTypes[i].isNumeric {
                        fail("derived column '\(e.name)' reads '\(ref.name)', which is not numeric",
                             fix: "derived expressions read numeric columns (window aggregates, session columns; booleans read as 1 or 0)")
                    }
                } else if let j = derivedIndex[ref.name] {
                    if j == k {
                        fail("derived column '\(e.name)' refers to itself", fix: "a derived column may use only feature columns and derived columns defined before it")
                    } else if j > k {
                        if let path = Self.path(from: j, to: k, edges: edges) {
                            // Each cycle once, at its first member.
                            guard cycles.insert(Set(path)).inserted else { continue }
                            let names = ([k] + path).map { entries[$0].name }
                            fail("derived columns form a cycle: \(names.joined(separator: " -> "))",
                                 fix: "break the cycle: a derived column may use only the ones defined before it")
                        } else {
                            let line = entries[j].node.mark?.line ?? 0
                            fail("derived column '\(e.name)' uses '\(ref.name)' before it is defined (on line \(line))",
                                 fix: "move '\(ref.name)' above '\(e.name)': derived columns are computed in file order")
                        }
                    }
                } else {
                    let candidates = featureColumns.enumerated().filter { featureTypes[$0.offset].isNumeric }.map(\.element)
                        + entries.prefix(k).map(\.name)
                    let fix = closest(ref.name, in: candidates).map { "did you mean '\($0)'?" }
                        ?? (candidates.isEmpty ? "the topology has no numeric columns" : "numeric columns are: \(candidates.joined(separator: ", "))")
                    fail("unknown column '\(ref.name)' in derived column '\(e.name)'", fix: fix)
                }
            }
        }
        return ok
    }

    /// A path of derived references from `start` to `target` (ending with
    /// `target`), if there is one.
    static func path(from start: Int, to target: Int, edges: [[Int]]) -> [Int]? {
        var visited = Set<Int>()
        func walk(_ n: Int) -> [Int]? {
            if n == target { return [n] }
            guard visited.insert(n).inserted else { return nil }
            for m in edges[n] { if let rest = walk(m) { return [n] + rest } }
            return nil
        }
        return walk(start)
    }

    /// The line and column of the character at `offset` in a scalar's text:
    /// exact for single-line plain and quoted scalars; block scalars (`|`,
    /// `>`) count lines from the line after the indicator.
    func position(in node: Node, offset: Int) -> (line: Int, column: Int) {
        let line = node.mark?.line ?? 1
        let column = node.mark?.column ?? 1
        guard let scalar = node.scalar else { return (line, column) }
        switch scalar.style {
        case .literal, .folded:
            let before = Array(scalar.string.prefix(offset))
            let newlines = before.filter { $0 == "\n" }.count
            let lineStart = before.lastIndex(of: "\n").map { $0 + 1 } ?? 0
            // The block's content starts on the next line; its indentation
            // is that of its first line, read from the source.
            var indent = 0
            if line < sourceLines.count { indent = sourceLines[line].prefix { $0 == " " }.count }
            return (line + 1 + newlines, indent + 1 + (offset - lineStart))
        case .doubleQuoted, .singleQuoted:
            return (line, column + 1 + offset)
        default:
            return (line, column + offset)
        }
    }
}
