import EddyCore
import EddyDevKit
import EddyKafka
import EddyRedis
import EddyReplay
import Foundation
import Testing

/// Issue 16: a topology with every new kind (windowed and lifetime) run by
/// real `eddy run` workers, killed with SIGKILL mid-run and restarted: the
/// state in Redis equals `eddy replay`'s, and `eddy verify` (FCALL of the
/// Function library at T, the stored point columns) finds no difference.
@Suite(.serialized) struct AllKindsWorkerTests {
    static let features = """
          - {name: items_1h, kind: distinct_count, field: item_id, window: 1h, hop: 5m, precision: 10, exact_limit: 8}
          - {name: pages_life, kind: distinct_count, field: page, precision: 8, exact_limit: 16}
          - {name: price_24h, kind: percentile, field: price, quantiles: [0.5, 0.99], window: 24h, hop: 2h}
          - {name: first_item, kind: first, field: item_id}
          - {name: last_event_1h, kind: last, field: event, window: 1h, hop: 5m}
          - {name: price_var_24h, kind: variance, field: price, window: 24h, hop: 2h}
          - {name: price_sd_life, kind: stddev, field: price}
          - {name: events_by_kind_1h, kind: count_by, field: event, top: 3, max_values: 2, window: 1h, hop: 5m}
          - {name: since_purchase, kind: time_since, where: event == "purchase"}
          - {name: events_life, kind: count}
          - {name: spend_life, kind: sum, field: price}

        """

    @Test func everyKindKilledAndRestartedMatchesReplayFCALLAndVerify() throws {
        let rig = try Rig(events: 40_000, users: 1_500, seed: 16, features: Self.features)
        let producer = rig.startProducing(rate: 8_000)
        let group = "g-kinds"
        var rng = SplitMix64(seed: 16)
        var worker = try rig.worker("k0", group: group)
        for (i, point) in [8_000, 22_000].enumerated() {
            #expect(try rig.waitForCommitted(group: group, atLeast: Int64(point), timeout: 120),
                    "kill \(i): no progress\n\(worker.log.suffix(3000))")
            usleep(UInt32(rng.unit() * 400_000))
            #expect(worker.isRunning, "worker \(i) ended before its kill\n\(worker.log.suffix(3000))")
            worker.signal(SIGKILL)
            _ = worker.wait()
            worker = try rig.worker("k\(i + 1)", group: group)
        }
        #expect(producer.wait(), "\(producer.failure ?? "")")
        #expect(try rig.kafka.waitUntilCommitted(group: group, timeout: 180), "\(worker.log.suffix(3000))")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 10) == 0, "\(worker.log.suffix(3000))")

        // The stored state, read with the engine at each key time, is replay's.
        try rig.expectExact()

        // eddy verify: FCALL at T (inside the windows) and the stored point
        // columns against a replay of the file.
        var maxTs: Int64 = 0
        for line in rig.lines {
            guard let r = String(decoding: line, as: UTF8.self).range(of: "\"ts\":") else { continue }
            let digits = String(decoding: line, as: UTF8.self)[r.upperBound...].prefix { $0.isNumber }
            maxTs = max(maxTs, Int64(digits) ?? 0)
        }
        for t in [maxTs, maxTs + 1_800_000] {
            let verify = try Harness.run(["verify", "--topology", rig.topologyPath, "--input", rig.events,
                                          "--redis", rig.redisURL, "--at", String(t), "--no-progress"], in: rig.dir)
            #expect(verify.status == 0, "verify at \(t):\n\(verify.stderr.suffix(4000))")
            #expect(verify.stderr.contains("equal 1500, different 0, missing in Redis 0"), "\(verify.stderr.suffix(2000))")
        }

        // eddy get (FCALL through FeatureClient) at a key's key time prints
        // replay's final line for that key, byte for byte.
        let final = rig.dir.appendingPathComponent("final.jsonl").path
        let replay = try Harness.run(["replay", "--topology", rig.topologyPath, "--input", rig.events, "--emit", "final",
                                      "--out", final], in: rig.dir)
        #expect(replay.status == 0, "\(replay.stderr)")
        let lines = try String(contentsOfFile: final, encoding: .utf8).split(separator: "\n").prefix(5)
        #expect(lines.count == 5)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            let key = object["key"] as? String ?? "", k = (object["key_time"] as? NSNumber)?.int64Value ?? 0
            let out = rig.dir.appendingPathComponent("get-\(key).txt").path
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Harness.eddy)
            p.arguments = ["get", "--topology", rig.topologyPath, "--redis", rig.redisURL, "--at", String(k), key]
            FileManager.default.createFile(atPath: out, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: out)
            try p.run()
            p.waitUntilExit()
            let got = try String(contentsOfFile: out, encoding: .utf8).trimmingCharacters(in: .newlines)
            #expect(got == String(line), "eddy get \(key) at \(k)")
        }
    }
}
