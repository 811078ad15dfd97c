import EddyCore
import EddyDevKit
import EddyMonitor
import EddyRedis
import EddyServer
import EddyStore
import Foundation
import Testing

@Suite("Feature monitoring and drift")
struct DriftTests {
    @Test("PSI on hand-checked numbers")
    func psiByHand() {
        // 50/50 -> 25/75: (0.25-0.5)ln(0.25/0.5) + (0.75-0.5)ln(0.75/0.5)
        //   = 0.25·ln 2 + 0.25·ln 1.5 = 0.173287 + 0.101366 = 0.274653
        let shifted = PSI.compute(expected: [50, 50], actual: [25, 75])!
        #expect(abs(shifted - 0.274653) < 1e-6)
        #expect(shifted > PSI.threshold)
        // Shares matter, not counts.
        #expect(abs(PSI.compute(expected: [5, 5], actual: [100, 300])! - shifted) < 1e-12)
        #expect(PSI.compute(expected: [10, 20, 30], actual: [1, 2, 3]) == 0)
        // 40/30/30 -> 30/30/40: 0.1·ln(4/3)·2 = 0.057536 (moderate, not flagged).
        let moderate = PSI.compute(expected: [40, 30, 30], actual: [30, 30, 40])!
        #expect(abs(moderate - 0.057536) < 1e-6)
        // An empty bin counts as 0.0001: 100/0 -> 90/10:
        //   (0.9-1)ln 0.9 + (0.1-0.0001)ln(0.1/0.0001) = 0.010536 + 0.690085 = 0.700621
        let newBin = PSI.compute(expected: [100, 0], actual: [90, 10])!
        #expect(abs(newBin - 0.700621) < 1e-6)
        // Bins empty on both sides add nothing.
        #expect(PSI.compute(expected: [50, 0, 50], actual: [25, 0, 75]) == shifted)
        // Symmetric in its arguments.
        #expect(abs(PSI.compute(expected: [25, 75], actual: [50, 50])! - shifted) < 1e-12)
        #expect(PSI.compute(expected: [0, 0], actual: [1, 2]) == nil)
        #expect(PSI.compute(expected: [1, 2], actual: [0, 0]) == nil)
    }

    @Test("buckets: fixed bounds, exact values, edges, nulls as their own bin")
    func buckets() {
        let b = FeatureBuckets.upperBounds
        #expect(b.count == 69 && FeatureBuckets.count == 70)
        #expect(b.first == -1e9 && b.last == 1e9 && b[34] == 0)
        #expect(b[35...40] == [0.01, 0.02, 0.05, 0.1, 0.2, 0.5])
        #expect(zip(b, b.dropFirst()).allSatisfy { $0 < $1 })
        #expect(FeatureBuckets.index(0) == 34)
        #expect(FeatureBuckets.index(0.01) == 35)
        #expect(FeatureBuckets.index(0.011) == 36)
        #expect(FeatureBuckets.index(1) == 41 && b[41] == 1)
        #expect(FeatureBuckets.index(19.99) == b.firstIndex(of: 20))
        #expect(FeatureBuckets.index(-3) == b.firstIndex(of: -2))
        #expect(FeatureBuckets.index(-2e9) == 0)
        #expect(FeatureBuckets.index(2e9) == 69)
        var d = FeatureDistribution()
        for v: Double? in [0, 1, 1, 3, nil, .infinity, 1e12] { d.add(v) }
        #expect(d.total == 7 && d.nulls == 2)
        #expect(d.counts[34] == 1 && d.counts[41] == 2 && d.counts[69] == 1)
        #expect(d.sum == 1e12 + 5)
        #expect(d.bins.count == 71 && d.bins.last == 2)
    }

    @Test("the monitor counts each written entity's columns read at its key time")
    func monitorReadsAtKeyTime() throws {
        let t = try exampleTopology("clickstream")
        let e = engine(t, clickstreamEvents(users: 50, perUser: 9))
        let monitor = FeatureMonitor(topology: t)
        #expect(monitor.columns.map(\.name) == ["session_events", "session_duration_ms", "clicks_1h", "spend_24h"])
        observeAll(e, monitor)
        #expect(monitor.entitiesObserved.load(ordering: .relaxed) == 50)
        // The same distribution, from the engine's own reads at K.
        var expected: [String: FeatureDistribution] = [:]
        for name in monitor.columns.map(\.name) { expected[name] = FeatureDistribution() }
        for slot in 0..<Int32(e.store.slotLimit) where e.store.isLive(slot) {
            var w = JSONWriter()
            w.raw("{")
            e.writeFeatures(slot, at: e.keyTime(slot)!, into: &w)
            w.raw("}")
            let object = try #require(JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any])
            for name in expected.keys { expected[name]!.add((object[name] as? NSNumber)?.doubleValue) }
        }
        for name in expected.keys {
            #expect(monitor.distribution(named: name) == expected[name], "\(name)")
        }
        #expect(monitor.distribution(named: "session_events")!.counts[FeatureBuckets.index(9)] == 50)

        // At most maxPerFlush entities per flush, evenly spread.
        let sampled = FeatureMonitor(topology: t, maxPerFlush: 8)
        observeAll(e, sampled)
        #expect(sampled.entitiesObserved.load(ordering: .relaxed) == 8)  // every 7th of 50: 0, 7, ..., 49
    }

    @Test("the monitor counts derived columns, computed at each written entity's key time")
    func monitorDerived() throws {
        var t = try exampleTopology("clickstream")
        t.derived = [try DerivedSpec(name: "clicks_per_event", source: "clicks_1h / session_events"),
                     try DerivedSpec(name: "log_spend", source: "log(spend_24h)")]
        let e = engine(t, clickstreamEvents(users: 50, perUser: 9))
        let monitor = FeatureMonitor(topology: t)
        #expect(monitor.columns.map(\.name) == ["session_events", "session_duration_ms", "clicks_1h", "spend_24h",
                                                "clicks_per_event", "log_spend"])
        observeAll(e, monitor)
        var expected = ["clicks_per_event": FeatureDistribution(), "log_spend": FeatureDistribution()]
        for slot in 0..<Int32(e.store.slotLimit) where e.store.isLive(slot) {
            var w = JSONWriter()
            w.raw("{")
            e.writeFeatures(slot, at: e.keyTime(slot)!, into: &w)
            w.raw("}")
            let object = try #require(JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any])
            for name in expected.keys { expected[name]!.add((object[name] as? NSNumber)?.doubleValue) }
        }
        for name in expected.keys {
            let got = try #require(monitor.distribution(named: name))
            #expect(got.counts == expected[name]!.counts && got.nulls == expected[name]!.nulls, "\(name)")
            #expect(abs(got.sum - expected[name]!.sum) <= 1e-9 * abs(got.sum), "\(name)")
        }
        #expect(monitor.distribution(named: "clicks_per_event")!.total == 50)
        // The feature columns are still counted as before.
        #expect(monitor.distribution(named: "session_events")!.counts[FeatureBuckets.index(9)] == 50)
    }

    @Test("a topology with min/avg windows: empty windows are nulls")
    func nulls() throws {
        let t = try makeTopology("""
              - {name: low, kind: min, field: price, window: 1h, where: event == "purchase"}
              - {name: mean, kind: avg, field: price, window: 1h}
            """)
        let e = engine(t, [
            #"{"user_id":"a","ts":1000,"event":"view","price":3}"#,
            #"{"user_id":"b","ts":1000,"event":"purchase","price":4}"#,
        ])
        let monitor = FeatureMonitor(topology: t)
        observeAll(e, monitor)
        #expect(monitor.distribution(named: "low")!.nulls == 1)
        #expect(monitor.distribution(named: "low")!.counts[FeatureBuckets.index(4)] == 1)
        #expect(monitor.distribution(named: "mean")!.nulls == 0)
        #expect(monitor.distribution(named: "mean")!.sum == 7)
    }

    @Test("drift over Redis: SCAN sample, save a baseline, unchanged is stable, a shift is flagged")
    func driftOverRedis() throws {
        let redis = try RedisServerProcess()
        let connection = try RedisConnection(url: redis.url)
        let t = try exampleTopology("clickstream")
        let t0: Int64 = 1_767_225_600_000
        try store(engine(t, clickstreamEvents(users: 300, perUser: 4, start: t0)), on: connection)
        // Something else under the prefix that is no entity hash, and another prefix.
        try connection.command("SET", "clickstream:not-a-hash", "x").checked()
        try connection.command("HSET", "other:u1", "a", "b").checked()
        let client = FeatureClient(connection: connection, topology: t)

        let keys = try Drift.sampleKeys(connection, prefix: "clickstream:", limit: 10_000)
        #expect(keys.count == 300)
        #expect(Set(keys).count == 300 && keys.allSatisfy { $0.hasPrefix("u") })
        #expect(try Drift.sampleKeys(connection, prefix: "clickstream:", limit: 50).count == 50)

        let at = t0 + 10_000
        let baseline = try Drift.distributions(client, keys: keys, at: at)
        #expect(baseline.entities == 300)
        #expect(baseline.features["session_events"]!.counts[FeatureBuckets.index(4)] == 300)
        let saved = Drift.Baseline(topology: t.name, createdAtMs: 1, readAtMs: at, sampledKeys: 300, features: baseline.features)
        let loaded = try Drift.Baseline.decode(try saved.encoded())
        #expect(loaded == saved)

        // The same population: PSI 0 everywhere.
        let same = try Drift.distributions(client, keys: try Drift.sampleKeys(connection, prefix: "clickstream:", limit: 10_000), at: at)
        let stable = Drift.compare(baseline: loaded.features, current: same.features)
        #expect(stable.count == 4 && stable.allSatisfy { $0.psi == 0 && !$0.flagged })

        // Users with 12 events each replace them: session_events drifts.
        try connection.command("FLUSHDB").checked()
        try store(engine(t, clickstreamEvents(users: 300, perUser: 12, start: t0)), on: connection)
        let now = try Drift.distributions(FeatureClient(connection: connection, topology: t),
                                          keys: try Drift.sampleKeys(connection, prefix: "clickstream:", limit: 10_000), at: at)
        let rows = Drift.compare(baseline: loaded.features, current: now.features,
                                 order: FeatureBuckets.monitoredColumns(t).map(\.name))
        let events = try #require(rows.first { $0.feature == "session_events" })
        // All mass moved from the (2,5] bucket to (10,20]: 2·(1-0.0001)·ln(1/0.0001).
        #expect(abs(events.psi! - 2 * 0.9999 * log(10_000)) < 1e-9)
        #expect(events.flagged)
        let text = Drift.report(rows)
        #expect(text.contains("session_events") && text.contains("DRIFT"))

        // Derived columns drift too: compared through the same reads.
        var derived = t
        derived.derived = [try DerivedSpec(name: "events_per_click", source: "session_events / max(clicks_1h, 1)")]
        #expect(FeatureBuckets.driftColumns(derived).last == "events_per_click")
        let withDerived = try Drift.distributions(FeatureClient(connection: connection, topology: derived),
                                                  keys: try Drift.sampleKeys(connection, prefix: "clickstream:", limit: 10_000), at: at)
        let ratio = try #require(withDerived.features["events_per_click"])
        #expect(ratio.total == 300 && ratio.nulls == 0)
        let shifted = Drift.compare(baseline: withDerived.features, current: loaded.features.merging(
            ["events_per_click": FeatureDistribution(counts: (0..<FeatureBuckets.count).map { $0 == FeatureBuckets.index(1) ? 300 : 0 }, nulls: 0)]) { $1 })
        #expect(shifted.first { $0.feature == "events_per_click" }?.flagged == (ratio.counts[FeatureBuckets.index(1)] < 150))

        // A baseline taken with other buckets is refused.
        var other = saved
        other.bucketUpperBounds = [1, 2]
        #expect(throws: DriftError.self) { try Drift.Baseline.decode(try other.encoded()) }
    }
}
