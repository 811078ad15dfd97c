import EddyCore
import EddyReplay
import Foundation
import Testing

@Suite struct ReplayTests {
    func tempFile(_ name: String, _ lines: [String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func replay(_ t: Topology, _ events: [String], emit: EmitMode, labels: LabelSet? = nil) throws -> (String, ReplaySummary) {
        let session = ReplaySession(topology: t, emit: emit, labels: labels)
        let outPath = try tempFile("out.jsonl", [])
        let output = try OutputFile(path: outPath)
        let reader = try LineReader(path: try tempFile("events.jsonl", events))
        try reader.forEachLine { line in
            if !line.isEmpty { session.consume(line, into: &output.writer) }
            return true
        }
        try session.finish(to: output)
        try output.flush()
        return (try String(contentsOfFile: outPath, encoding: .utf8), session.summary)
    }

    let events = [
        ev("u1", 1000, "\"kind\":\"view\",\"item\":\"a\""),
        ev("u1", 2000, "\"kind\":\"view\",\"item\":\"b\""),
        ev("u1", 5000, "\"kind\":\"click\",\"item\":\"c\""),
        ev("u1", 3000, "\"kind\":\"view\",\"item\":\"d\""),
        "garbage",
    ]

    @Test func labelsGetPointInTimeFeatures() throws {
        let t = try makeTopology("""
              - {name: items, kind: last_n, field: item, n: 5}
              - {name: clicks, kind: count, window: 1h, hop: 5m, where: kind == "click"}
            """)
        let labels = try LabelSet(path: try tempFile("labels.jsonl", [
            #"{"key":"u1","ts":4000,"label":1}"#,
            #"{"key":"u1","ts":1500}"#,
            #"{"key":"u2","ts":0,"label":0}"#,
            #"{"key":"u1","ts":10000,"label":"x"}"#,
        ]))
        let (out, summary) = try replay(t, events, emit: .rows, labels: labels)
        // ts 1500: state before the first event with ts > 1500 (2000): only a.
        // ts 4000: before 5000: a, b; d (ts 3000) arrived after 5000, so it is out.
        // ts 10000: everything. u2: never seen, empty features.
        #expect(out == """
            {"key":"u1","ts":4000,"label":1,"items":["b","a"],"clicks":0}
            {"key":"u1","ts":1500,"items":["a"],"clicks":0}
            {"key":"u2","ts":0,"label":0,"items":[],"clicks":0}
            {"key":"u1","ts":10000,"label":"x","items":["c","d","b","a"],"clicks":1}

            """)
        #expect(summary.accepted == 4 && summary.invalidTotal == 1 && summary.keys == 1)
    }

    @Test func rowsReadStateBeforeEachEvent() throws {
        let t = try makeTopology("  - {name: items, kind: last_n, field: item, n: 2}")
        let (out, _) = try replay(t, events, emit: .rows)
        #expect(out == """
            {"key":"u1","ts":1000,"items":[]}
            {"key":"u1","ts":2000,"items":["a"]}
            {"key":"u1","ts":5000,"items":["b","a"]}
            {"key":"u1","ts":3000,"items":["c","b"]}

            """)
    }

    @Test func finalReadsAtKeyTime() throws {
        let t = try makeTopology("  - {name: items, kind: last_n, field: item, n: 2}\n  - {name: s, kind: session, gap: 1s}")
        // u1's session: 1000-2000, then 5000 opens a new one (gap 1s); 3000 is
        // before 5000 - gap, an older session: ignored.
        let (out, summary) = try replay(t, events + [ev("u2", 7, "\"item\":\"z\"")], emit: .final)
        #expect(out == """
            {"key":"u1","key_time":5000,"items":["c","d"],"s_start":5000,"s_last":5000,"s_events":1,"s_duration_ms":0,"s_active":true}
            {"key":"u2","key_time":7,"items":["z"],"s_start":7,"s_last":7,"s_events":1,"s_duration_ms":0,"s_active":true}

            """)
        #expect(summary.keys == 2 && summary.invalid[.notJSON] == 1)
    }

    @Test func generatorIsReproducible() {
        var a = ClickstreamGenerator(seed: 9, users: 10), b = ClickstreamGenerator(seed: 9, users: 10)
        var x: [UInt8] = [], y: [UInt8] = []
        for _ in 0..<1000 { a.next(into: &x); b.next(into: &y) }
        #expect(x == y)
        #expect(x.count / 1000 > 80 && x.count / 1000 < 120)  // about 100 bytes an event
    }
}
