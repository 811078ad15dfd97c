import EddyCore
import EddyReplay
import Foundation
import Testing

/// Derived columns in replay output: rows, final lines and labels, by hand.
@Suite struct DerivedReplayTests {
    func temp(_ name: String, _ lines: [String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-derived-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func replay(_ t: Topology, _ events: [String], emit: EmitMode, labels: LabelSet? = nil) throws -> String {
        let session = ReplaySession(topology: t, emit: emit, labels: labels)
        let outPath = try temp("out.jsonl", [])
        let output = try OutputFile(path: outPath)
        let reader = try LineReader(path: try temp("events.jsonl", events))
        try reader.forEachLine { line in
            if !line.isEmpty { session.consume(line, into: &output.writer) }
            return true
        }
        try session.finish(to: output)
        try output.flush()
        return try String(contentsOfFile: outPath, encoding: .utf8)
    }

    let body = """
          - {name: views, kind: count, window: 1h, hop: 5m, where: kind == "view"}
          - {name: clicks, kind: count, window: 1h, hop: 5m, where: kind == "click"}
          - {name: spend, kind: sum, field: price, window: 1h, hop: 5m}
        derived:
          - {name: ctr, expr: "clicks / views"}
          - {name: ctr_or_zero, expr: "coalesce(ctr, 0)"}
          - {name: big, expr: "spend > 10 and clicks >= 1"}
        """

    let events = [
        ev("u1", 1000, "\"kind\":\"view\""),
        ev("u1", 2000, "\"kind\":\"view\",\"price\":4"),
        ev("u1", 3000, "\"kind\":\"click\",\"price\":7.5"),
        ev("u2", 3500, "\"kind\":\"click\""),
    ]

    @Test func rowsFinalAndLabels() throws {
        let t = try makeTopology(body)
        #expect(try replay(t, events, emit: .rows) == """
            {"key":"u1","ts":1000,"views":0,"clicks":0,"spend":0,"ctr":null,"ctr_or_zero":0,"big":0}
            {"key":"u1","ts":2000,"views":1,"clicks":0,"spend":0,"ctr":0,"ctr_or_zero":0,"big":0}
            {"key":"u1","ts":3000,"views":2,"clicks":0,"spend":4,"ctr":0,"ctr_or_zero":0,"big":0}
            {"key":"u2","ts":3500,"views":0,"clicks":0,"spend":0,"ctr":null,"ctr_or_zero":0,"big":0}

            """)
        let final = try replay(t, events, emit: .final).split(separator: "\n").sorted()
        #expect(final == [
            #"{"key":"u1","key_time":3000,"views":2,"clicks":1,"spend":11.5,"ctr":0.5,"ctr_or_zero":0.5,"big":1}"#,
            #"{"key":"u2","key_time":3500,"views":0,"clicks":1,"spend":0,"ctr":null,"ctr_or_zero":0,"big":0}"#,
        ])
        let labels = try LabelSet(path: try temp("labels.jsonl", [
            #"{"key":"u1","ts":2500,"y":1}"#,
            #"{"key":"nobody","ts":0}"#,
        ]))
        #expect(try replay(t, events, emit: .rows, labels: labels) == """
            {"key":"u1","ts":2500,"y":1,"views":2,"clicks":0,"spend":4,"ctr":0,"ctr_or_zero":0,"big":0}
            {"key":"nobody","ts":0,"views":0,"clicks":0,"spend":0,"ctr":null,"ctr_or_zero":0,"big":0}

            """)
        // CSV headers: derived columns after the feature columns.
        let session = ReplaySession(topology: t, emit: .final)
        #expect(session.columns == ["key", "key_time", "views", "clicks", "spend", "ctr", "ctr_or_zero", "big"])
        let labelled = ReplaySession(topology: t, emit: .rows, labels: labels)
        #expect(labelled.columns.suffix(3) == ["ctr", "ctr_or_zero", "big"])
    }

    /// A topology whose only feature columns are not read by any
    /// expression, and one whose expressions read nothing.
    @Test func constantsAndUnreadColumns() throws {
        let t = try makeTopology("""
              - {name: items, kind: last_n, field: kind, n: 2}
            derived:
              - {name: one, expr: "2 - 1"}
              - {name: half, expr: "one / 2"}
            """)
        #expect(try replay(t, Array(events.prefix(1)), emit: .rows) == """
            {"key":"u1","ts":1000,"items":[],"one":1,"half":0.5}

            """)
    }
}
