import EddyCore
import EddyDevKit
import EddyRedis
import EddyReplay
import Foundation
import Testing

/// Derived columns end to end: a worker (`eddy run`) fed through the mock
/// Kafka cluster writes Redis; reads of its state through the Function
/// library (FCALL, `eddy get`), `eddy replay` and `eddy verify` give the
/// same derived values, byte for byte.
@Suite(.serialized) struct DerivedEndToEndTests {
    static let derived = """
        derived:
          - {name: click_rate, expr: "clicks_1h / session_events"}
          - {name: spend_per_click, expr: "if(clicks_1h > 0, spend_24h / clicks_1h, 0)"}
          - name: engaged
            expr: session_active and (clicks_1h >= 2 or spend_24h > 50)
          - {name: log_spend, expr: "log(spend_24h)"}
          - {name: minutes, expr: "session_duration_ms / 60000"}
          - {name: score, expr: "coalesce(log_spend, 0) * 0.3 + min(click_rate, 1) - sqrt(minutes) / 7"}

        """

    /// clickstream.yaml with the derived columns above, in `dir`.
    static func topologyFile(in dir: URL) throws -> String {
        let base = try String(contentsOf: Harness.root.appendingPathComponent("Topologies/clickstream.yaml"), encoding: .utf8)
        let yaml = base.replacingOccurrences(of: "\nsink:", with: "\n" + derived + "sink:")
        let path = dir.appendingPathComponent("clickstream-derived.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func eddy(_ args: [String], dir: URL) throws -> (status: Int32, out: String, err: String) {
        try Harness.capture(args, in: dir)
    }

    @Test func workerStateReadThroughFCALLEqualsReplayAndVerifies() throws {
        let dir = try Harness.tempDir()
        let topology = try Self.topologyFile(in: dir)
        let names = ["click_rate", "spend_per_click", "engaged", "log_spend", "minutes", "score"]
        // eddy check accepts it and shows the derived columns.
        let check = try eddy(["check", topology], dir: dir)
        #expect(check.status == 0 && check.out.contains("score") && check.out.contains("derived"), "\(check.out)\(check.err)")

        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", "20000", "--users", "600", "--seed", "21", "--out", events], in: dir)
        let produced = try Harness.run(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers, "--input", events], in: dir)
        #expect(produced.status == 0, "produce failed: \(produced.stderr)")
        let worker = try Background(["run", topology, "--brokers", kafka.brokers, "--redis", redis.url.description,
                                     "--group", "g-derived", "--stats-interval", "1"], in: dir, name: "worker")
        #expect(try kafka.waitUntilCommitted(group: "g-derived", timeout: 120), "worker log:\n\(worker.log)")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 10) == 0, "\(worker.log.suffix(3000))")

        // Replay's final lines: every key at T = its key time.
        let final = dir.appendingPathComponent("final.jsonl").path
        var r = try eddy(["replay", "--topology", topology, "--input", events, "--emit", "final", "--out", final], dir: dir)
        #expect(r.status == 0, "\(r.err)")
        let lines = try String(contentsOfFile: final, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 600)

        // `eddy get` installs the Function library and reads one key at its key time.
        let first = try #require(JSONMembers.members(Array(lines[0].utf8)))
        let firstKey = String(decoding: first[0].value.dropFirst().dropLast(), as: UTF8.self)
        let firstK = String(decoding: first[1].value, as: UTF8.self)
        r = try eddy(["get", "--topology", topology, firstKey, "--at", firstK, "--redis", redis.url.description], dir: dir)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.trimmingCharacters(in: .newlines) == lines[0])

        // FCALL of every key at its key time is the replay's line, byte for byte.
        let conn = try RedisConnection(url: redis.url)
        var nonNull = [String: Int]()
        var differ = 0
        for line in lines {
            let members = try #require(JSONMembers.members(Array(line.utf8)))
            let key = String(decoding: members[0].value.dropFirst().dropLast(), as: UTF8.self)
            let k = try #require(Int64(String(decoding: members[1].value, as: UTF8.self)))
            let reply = try conn.fcall("eddy_clickstream_features", keys: ["clickstream:" + key], arguments: [k])
            let got = reply.bytes.map { String(decoding: $0, as: UTF8.self) } ?? "\(reply)"
            if got != line {
                differ += 1
                if differ <= 3 { Issue.record("key \(key):\n  fcall  \(got)\n  replay \(line)") }
            }
            #expect(Array(members.suffix(names.count).map(\.name)) == names)
            for m in members.suffix(names.count) where m.value != Array("null".utf8) { nonNull[m.name, default: 0] += 1 }
        }
        #expect(differ == 0)
        for name in names { #expect((nonNull[name] ?? 0) > 50, "\(name): \(nonNull[name] ?? 0) non-null values") }

        // HTTP reads (eddy serve) return the same objects.
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", topology, "--redis", redis.url.description,
                                    "--listen", "127.0.0.1:\(port)"], in: dir, name: "serve")
        for line in lines.prefix(20) {
            let members = try #require(JSONMembers.members(Array(line.utf8)))
            let key = String(decoding: members[0].value.dropFirst().dropLast(), as: UTF8.self)
            let k = String(decoding: members[1].value, as: UTF8.self)
            let body = try HTTPGet.body(host: "127.0.0.1", port: port, path: "/v1/features/clickstream/\(key)?at=\(k)",
                                        connectAttempts: 100)
            #expect(body == line, "\(serve.log)")
        }
        serve.signal(SIGTERM)
        _ = serve.wait(seconds: 10)

        // eddy verify (FCALL at T against the replay) agrees, at the key times' end and an hour later.
        r = try eddy(["verify", "--topology", topology, "--input", events, "--redis", redis.url.description, "--no-progress"], dir: dir)
        #expect(r.status == 0 && r.err.contains("equal 600, different 0"), "\(r.out)\n\(r.err)")
        r = try eddy(["verify", "--topology", topology, "--input", events, "--redis", redis.url.description, "--no-progress",
                      "--at", "2026-01-02T00:00:00Z"], dir: dir)
        #expect(r.status == 0 && r.err.contains("different 0"), "\(r.out)\n\(r.err)")

        // Training rows as CSV: the derived columns come after the feature columns.
        let rows = dir.appendingPathComponent("rows.csv").path
        r = try eddy(["replay", "--topology", topology, "--input", events, "--emit", "rows", "--out", rows], dir: dir)
        #expect(r.status == 0, "\(r.err)")
        let header = try String(contentsOfFile: rows, encoding: .utf8).prefix { $0 != "\n" }
        #expect(header == "key,ts,last_items,session_start,session_last,session_events,session_duration_ms,session_active,"
                + "clicks_1h,spend_24h," + names.joined(separator: ","))
    }
}
