import EddyCore
import EddyReplay
import EddyTopology
import Foundation
import Testing

/// `eddy replay --entity` of an entity whose key is spread over partitions
/// (issue 19): per-part state, merged at row and label time.
@Suite struct PartsReplayTests {
    let yaml = """
        name: shop
        source: {brokers: "localhost:9092", topic: clicks}
        time: {field: ts, unit: ms}
        sink: {redis: "redis://127.0.0.1:6379"}
        entities:
          - name: users
            key: user_id
            parts: one
            features:
              - {name: n, kind: count}
          - name: items
            key: item_id
            features:
              - {name: n, kind: count}
              - {name: users, kind: last_n, field: user_id, n: 3}
          - name: pairs
            key: [user_id, item_id]
            features:
              - {name: n, kind: count}
        """

    func entity(_ name: String) throws -> Topology {
        try #require(try TopologyLoader(environment: [:]).parse(yaml, file: "shop.yaml").entity(named: name))
    }

    func tempFile(_ name: String, _ lines: [String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-parts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func replayParts(_ t: Topology, _ events: [String], emit: EmitMode, labels: LabelSet? = nil,
                     partitionField: String? = "p") throws -> (String, ReplaySummary) {
        let session = PartsReplaySession(topology: t, emit: emit, labels: labels,
                                         partitionField: partitionField.map { FieldPath(dotted: $0) })
        let outPath = try tempFile("out.jsonl", [])
        let output = try OutputFile(path: outPath)
        var none = JSONWriter(capacity: 0)
        for e in events { Array(e.utf8).withUnsafeBytes { session.consume($0, into: &none) } }
        try session.finish(to: output)
        try output.flush()
        return (try String(contentsOfFile: outPath, encoding: .utf8), session.summary)
    }

    func replaySingle(_ t: Topology, _ events: [String], emit: EmitMode, labels: LabelSet? = nil) throws -> String {
        let session = ReplaySession(topology: t, emit: emit, labels: labels)
        let outPath = try tempFile("out.jsonl", [])
        let output = try OutputFile(path: outPath)
        for e in events { Array(e.utf8).withUnsafeBytes { session.consume($0, into: &output.writer) } }
        try session.finish(to: output)
        try output.flush()
        return try String(contentsOfFile: outPath, encoding: .utf8)
    }

    func click(_ item: String, _ user: String, _ ts: Int64, p: Int?) -> String {
        "{\"item_id\":\"\(item)\",\"user_id\":\"\(user)\",\"ts\":\(ts)\(p.map { ",\"p\":\($0)" } ?? "")}"
    }

    /// Hand-computed rows: part p as before the event, every other part q
    /// up to its first accepted event with ts > T.
    @Test func rowsMergePartsAtRowTime() throws {
        let t = try entity("items")
        #expect(t.parts == .perPartition)
        let events = [
            click("i", "a", 100, p: 0),
            click("i", "b", 300, p: 1),
            click("i", "c", 200, p: 0),
            click("i", "d", 250, p: 1),
            "not json",
        ]
        let (out, summary) = try replayParts(t, events, emit: .rows)
        // a@100 (p0): p0 empty before it; p1's first event (300) is > 100.
        // b@300 (p1): p1 empty before it; p0 has nothing > 300: a, c.
        // c@200 (p0): p0 holds a; p1's first event (300) is > 200: none.
        // d@250 (p1): p1 holds b; p0 has nothing > 250: a, c.
        #expect(out == """
            {"key":"i","ts":100,"n":0,"users":[]}
            {"key":"i","ts":300,"n":2,"users":["c","a"]}
            {"key":"i","ts":200,"n":1,"users":["a"]}
            {"key":"i","ts":250,"n":3,"users":["b","c","a"]}

            """)
        #expect(summary.accepted == 4 && summary.invalidTotal == 1 && summary.keys == 1)

        // Rows depend on no interleaving across partitions.
        let reordered = [events[1], events[3], events[0], events[2]]
        let (again, _) = try replayParts(t, reordered, emit: .rows)
        #expect(again.split(separator: "\n").sorted() == out.split(separator: "\n").sorted())
    }

    @Test func labelsAndFinal() throws {
        let t = try entity("items")
        let events = [click("i", "a", 100, p: 0), click("i", "b", 300, p: 1), click("i", "c", 200, p: 0), click("i", "d", 250, p: 1)]
        let labels = try LabelSet(path: try tempFile("labels.jsonl", [
            #"{"key":"i","ts":260,"y":1}"#,
            #"{"key":"zz","ts":0}"#,
            #"{"key":"i","ts":1000}"#,
        ]))
        let (rows, _) = try replayParts(t, events, emit: .rows, labels: labels)
        // T 260: p0 holds a, c; p1's first event (300) is > 260: none.
        // T 1000: everything: (300,p1,b), (250,p1,d), (200,p0,c).
        #expect(rows == """
            {"key":"i","ts":260,"y":1,"n":2,"users":["c","a"]}
            {"key":"zz","ts":0,"n":0,"users":[]}
            {"key":"i","ts":1000,"n":4,"users":["b","d","c"]}

            """)
        let (final, _) = try replayParts(t, events, emit: .final)
        #expect(final == "{\"key\":\"i\",\"key_time\":300,\"n\":4,\"users\":[\"b\",\"d\",\"c\"]}\n")
    }

    @Test func latenessIsPerPart() throws {
        var t = try entity("items")
        t.allowedLatenessMs = 100
        // p0's K is 1000; p1's events are not late against it, only against p1's own K.
        let events = [click("i", "a", 1000, p: 0), click("i", "b", 500, p: 1), click("i", "c", 390, p: 1), click("i", "d", 950, p: 0)]
        let (out, summary) = try replayParts(t, events, emit: .final)
        #expect(summary.accepted == 3 && summary.late == 1)
        #expect(out == "{\"key\":\"i\",\"key_time\":1000,\"n\":3,\"users\":[\"a\",\"d\",\"b\"]}\n")
    }

    /// Without a partition field (or when it is missing or not an integer),
    /// every line is partition 0: the single-stream replay.
    @Test func onePartitionIsTheSingleStream() throws {
        let t = try entity("items")
        var events: [String] = []
        for i in 0..<300 {
            let p: Int? = i % 5 == 0 ? nil : (i % 7 == 0 ? 0 : nil)
            events.append(click("i\(i % 4)", "u\(i % 9)", Int64(1000 + (i * 7919) % 4000), p: p))
        }
        events.append("{\"item_id\":\"i1\",\"user_id\":\"x\",\"ts\":5000,\"p\":\"3\"}")  // a string: partition 0
        events.append("{\"item_id\":\"i1\",\"user_id\":\"y\",\"ts\":5001,\"p\":1.5}")     // not an integer: 0
        for emit in [EmitMode.rows, .final] {
            let single = try replaySingle(t, events, emit: emit)
            let (parts, _) = try replayParts(t, events, emit: emit)
            #expect(parts.split(separator: "\n").sorted() == single.split(separator: "\n").sorted())
            let (noField, _) = try replayParts(t, events, emit: emit, partitionField: nil)
            #expect(noField == parts)
        }
    }

    @Test func compositeKeyText() throws {
        let t = try entity("pairs")
        let e = FeatureEngine(topology: t)
        let out = feed(e, [
            "{\"user_id\":\"u|1\",\"item_id\":\"a\\\\b\",\"ts\":1}",
            "{\"user_id\":\"u\",\"ts\":1}",
            "{\"user_id\":7,\"item_id\":\"x\",\"ts\":1}",
            "{\"user_id\":\"\",\"item_id\":\"x\",\"ts\":1}",
        ])
        #expect(out[1] == .rejected(.missingKey))
        #expect(out[3] == .rejected(.badKey))
        // u|1 and a\b: `|` and `\` escaped, parts joined by `|`.
        #expect(int(read(e, "u\\|1|a\\\\b", at: 1)["n"]) == 1)
        #expect(int(read(e, CompositeKey.text(["u|1", "a\\b"]), at: 1)["n"]) == 1)
        #expect(int(read(e, "7|x", at: 1)["n"]) == 1)
        let long = String(repeating: "|", count: 600)
        #expect(feed(e, ["{\"user_id\":\"\(long)\",\"item_id\":\"x\",\"ts\":1}"]) == [.rejected(.keyTooLong)])
    }
}
