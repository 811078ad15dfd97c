import EddyCore
import EddyDevKit
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

    /// The realistic population: reproducible, every user seen once the
    /// session list is walked, most users seen a few times and a few often,
    /// items skewed.
    @Test func realisticPopulationIsHeavyTailedAndCoversEveryUser() {
        let users = 20_000
        var params = RealisticPopulation.Parameters(users: users)
        params.items = 10_000
        var a = ClickstreamGenerator(seed: 5, users: users, population: params)
        var b = ClickstreamGenerator(seed: 5, users: users, population: params)
        let events = a.population!.eventsForEveryUser + 20 * params.concurrentSessions
        var perUser = [Int](repeating: 0, count: users), perItem = [Int](repeating: 0, count: params.items)
        var x: [UInt8] = [], y: [UInt8] = []
        for _ in 0..<events {
            x.removeAll(keepingCapacity: true); y.removeAll(keepingCapacity: true)
            a.next(into: &x); b.next(into: &y)
            #expect(x == y)
            let text = String(decoding: x, as: UTF8.self)
            perUser[Int(text.dropFirst(13).prefix(7))!] += 1
            perItem[Int(text.split(separator: "\"")[13].dropFirst())!] += 1
        }
        let seen = perUser.filter { $0 > 0 }.sorted()
        // Sessions still open when the list wraps may hold a few users back.
        #expect(seen.count >= users - params.concurrentSessions)
        #expect(seen[seen.count / 2] <= 3)  // the median user: a few events
        #expect(seen.last! >= 50)  // a heavy tail: some users are seen very often
        let top1 = seen.suffix(seen.count / 100).reduce(0, +)
        #expect(Double(top1) / Double(events) > 0.08)  // the top 1% of users: well above 1% of events
        let items = perItem.sorted(by: >)
        #expect(Double(items.prefix(params.items / 100).reduce(0, +)) / Double(events) > 0.1)
    }
}

/// File-level features of the replay tool: gzip input and output, CSV rows,
/// the JSON member splitter behind them, range options.
@Suite struct ReplayFormatTests {
    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-format-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func lines(_ reader: LineReader) throws -> [String] {
        var out: [String] = []
        try reader.forEachLine { out.append(String(decoding: $0, as: UTF8.self)); return true }
        return out
    }

    @Test func gzipOutputIsReadBackAndIsRealGzip() throws {
        let dir = try tempDir()
        let path = dir.appendingPathComponent("events.jsonl.gz").path
        let output = try OutputFile(path: path)
        var expected: [String] = []
        var gen = ClickstreamGenerator(seed: 3, users: 20)
        var line: [UInt8] = []
        for _ in 0..<20_000 {
            line.removeAll(keepingCapacity: true)
            gen.next(into: &line)
            expected.append(String(decoding: line, as: UTF8.self))
            output.writer.raw(line)
            output.writer.raw(UInt8(ascii: "\n"))
            try output.flushIfNeeded(threshold: 1 << 16)
        }
        try output.close()
        let reader = try LineReader(path: path, blockSize: 1 << 12)
        #expect(reader.isCompressed)
        #expect(try lines(reader) == expected)
        #expect(reader.position == reader.fileSize)  // progress reaches the compressed size
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        #expect(size < expected.joined().utf8.count / 3)
        // The system's gzip agrees.
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-t", path]
        try gzip.run()
        gzip.waitUntilExit()
        #expect(gzip.terminationStatus == 0)
        // A plain file is read as it is.
        let plain = dir.appendingPathComponent("plain.jsonl").path
        try "a\nb\n".write(toFile: plain, atomically: true, encoding: .utf8)
        let r = try LineReader(path: plain)
        #expect(try lines(r) == ["a", "b"] && !r.isCompressed && r.fileSize == 4)
    }

    @Test func csvRowsQuoteWhatNeedsIt() throws {
        let t = try makeTopology("  - {name: items, kind: last_n, field: item, n: 3}\n  - {name: s, kind: sum, field: price, window: 1h}")
        let dir = try tempDir()
        let path = dir.appendingPathComponent("out.csv").path
        let session = ReplaySession(topology: t, emit: .rows)
        let output = try OutputFile(path: path)
        output.csv = CSVConverter(header: session.columns)
        for e in [
            ev("u1", 1000, #""item":"a,b","price":2.5"#),
            ev("u1", 2000, #""item":"say \"hi\"""#),
            ev("u,2", 3000, #""item":"x""#),
        ] {
            var bytes = Array(e.utf8)
            bytes.withUnsafeMutableBytes { session.consume(UnsafeRawBufferPointer($0), into: &output.writer) }
        }
        try session.finish(to: output)
        try output.close()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == #"""
            key,ts,items,s
            u1,1000,[],0
            u1,2000,"[""a,b""]",2.5
            "u,2",3000,[],0

            """#)
    }

    @Test func csvLabelColumnsAreTheUnionOfLabelFields() throws {
        let dir = try tempDir()
        let labelsPath = dir.appendingPathComponent("labels.jsonl").path
        try """
            {"key":"u1","ts":1500,"label":1}
            { "ts" : 10, "key":"u2", "weight": 0.5 , "note":"a \\"b\\"" }
            """.write(toFile: labelsPath, atomically: true, encoding: .utf8)
        let labels = try LabelSet(path: labelsPath)
        #expect(labels.fieldNames() == ["key", "ts", "label", "weight", "note"])
        let t = try makeTopology("  - {name: items, kind: last_n, field: item, n: 3}")
        let session = ReplaySession(topology: t, emit: .rows, labels: labels)
        #expect(session.columns == ["key", "ts", "label", "weight", "note", "items"])
        let path = dir.appendingPathComponent("out.csv").path
        let output = try OutputFile(path: path)
        output.csv = CSVConverter(header: session.columns)
        var e = Array(ev("u1", 1000, #""item":"a""#).utf8)
        e.withUnsafeMutableBytes { session.consume(UnsafeRawBufferPointer($0), into: &output.writer) }
        try session.finish(to: output)
        try output.close()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == #"""
            key,ts,label,weight,note,items
            u1,1500,1,,,"[""a""]"
            u2,10,,0.5,"a ""b""",[]

            """#)
    }

    @Test func jsonMembersSplitsTopLevelOnly() {
        let text = Array(#"{ "a" : 1 , "b\"c": [1,{"x":"]"}], "d":"e\u00e9\"", "n":null,"o":{"p":[]} }"#.utf8)
        let members = JSONMembers.members(text)
        #expect(members?.map(\.name) == ["a", "b\"c", "d", "n", "o"])
        #expect(members?.map { String(decoding: $0.value, as: UTF8.self) } == ["1", #"[1,{"x":"]"}]"#, #""e\u00e9\"""#, "null", #"{"p":[]}"#])
        #expect(JSONMembers.members(Array("[1]".utf8)) == nil)
        #expect(JSONMembers.members(Array(#"{"a":1"#.utf8)) == nil)
        var out: [UInt8] = []
        let s = Array(#"e\u00e9\"\n\ud83d\ude00"#.utf8)
        s.withUnsafeBytes { JSONMembers.unescapeString($0, into: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "eé\"\n😀")
    }

    @Test func startOffsetsParse() {
        let parsed = KafkaRange.parseStartOffsets("0:10,3:0,orders.v1:2:7")
        #expect(parsed == [
            .init(topic: nil, partition: 0, offset: 10), .init(topic: nil, partition: 3, offset: 0),
            .init(topic: "orders.v1", partition: 2, offset: 7),
        ])
        #expect(KafkaRange.parseStartOffsets("1") == nil)
        #expect(KafkaRange.parseStartOffsets("a:b") == nil)
        #expect(KafkaRange.parseStartOffsets("0:-1") == nil)
    }
}
