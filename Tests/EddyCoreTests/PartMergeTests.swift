import EddyCore
import EddyTopology
import Foundation
import Testing

/// SEMANTICS.md, "Keys spread over partitions": a key's parts, one per
/// source partition, merged at read time (`FeatureEngine.mergeParts`).
/// Hand-computed cases (issue 19).
@Suite struct PartMergeTests {
    /// One engine per part, fed the part's events in order.
    final class Parts {
        let topology: Topology
        var engines: [(Int32, FeatureEngine)] = []
        var outcomes: [Int32: [FeatureEngine.Outcome]] = [:]

        init(_ topology: Topology) { self.topology = topology }

        func feedPart(_ p: Int32, _ events: [String]) {
            let e = FeatureEngine(topology: topology)
            outcomes[p] = feed(e, events)
            engines.append((p, e))
        }

        /// The merged read of key `key` at `t`, as a JSON object.
        func read(_ key: String, at t: Int64) -> [String: Any] {
            var w = JSONWriter()
            w.raw(UInt8(ascii: "{"))
            let reader = FeatureEngine(topology: topology)
            let k = Array(key.utf8)
            var parts: [PartState] = []
            for (p, e) in engines {
                let slot = k.withUnsafeBytes { e.store.lookup($0, hash: hashKey($0)) }
                if slot >= 0 { parts.append(PartState(partition: p, blob: UnsafeRawPointer(e.store.blob(slot)))) }
            }
            let merged = k.withUnsafeBytes { reader.mergeParts(key: $0, parts) }
            w.raw("\"key_time\":")
            let kt = merged.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2 + k.count, as: Int64.self) }
            kt == Int64.min ? w.null() : w.int(kt)
            w.raw(UInt8(ascii: ","))
            merged.withUnsafeBytes { reader.writeFeatures(blob: $0.baseAddress!, at: t, into: &w) }
            w.raw(UInt8(ascii: "}"))
            return (try? JSONSerialization.jsonObject(with: Data(w.bytes))) as? [String: Any] ?? [:]
        }
    }

    @Test func sessionAbsorptionAcrossParts() throws {
        let parts = Parts(try makeTopology("  - {name: s, kind: session, gap: 100ms}"))
        parts.feedPart(0, [ev("u", 1000), ev("u", 1050)])  // (1000, 1050, 2)
        parts.feedPart(1, [ev("u", 1120), ev("u", 1200)])  // (1120, 1200, 2)
        parts.feedPart(2, [ev("u", 1300)])                 // (1300, 1300, 1)
        parts.feedPart(3, [ev("u", 500)])                  // (500, 500, 1)
        // Start from part 2 (greatest last, 1300): [1200, 1400] takes part 1
        // (last 1200, the end included) -> (1120, 1300, 3); [1020, 1400]
        // then takes part 0 -> (1000, 1300, 5); [900, 1400] misses part 3.
        let r = parts.read("u", at: 1400)
        #expect(int(r["s_start"]) == 1000)
        #expect(int(r["s_last"]) == 1300)
        #expect(int(r["s_events"]) == 5)
        #expect(int(r["s_duration_ms"]) == 300)
        #expect(r["s_active"] as? Bool == true)       // 1400 - 1300 <= 100
        #expect(parts.read("u", at: 1401)["s_active"] as? Bool == false)
        #expect(int(r["key_time"]) == 1300)
    }

    @Test func sessionNotAbsorbedOneMsBeyondTheGap() throws {
        let parts = Parts(try makeTopology("  - {name: s, kind: session, gap: 100ms}"))
        parts.feedPart(4, [ev("u", 1000)])
        parts.feedPart(7, [ev("u", 1101), ev("u", 1150)])
        // Base: part 7 (1101, 1150); [1001, 1250] misses part 4's last 1000.
        let r = parts.read("u", at: 1150)
        #expect(int(r["s_start"]) == 1101)
        #expect(int(r["s_events"]) == 2)
        // Equal `last` in two parts: they always overlap, so both count.
        let tie = Parts(try makeTopology("  - {name: s, kind: session, gap: 10ms}"))
        tie.feedPart(0, [ev("u", 995), ev("u", 1000)])  // (995, 1000, 2)
        tie.feedPart(1, [ev("u", 1000)])                // (1000, 1000, 1)
        // Base: part 1 (same last, greater start); [990, 1010] takes part 0.
        let t = tie.read("u", at: 1000)
        #expect(int(t["s_start"]) == 995)
        #expect(int(t["s_events"]) == 3)
    }

    @Test func lastNTiesAcrossPartitions() throws {
        let parts = Parts(try makeTopology("  - {name: items, kind: last_n, field: item, n: 4}"))
        parts.feedPart(0, [ev("u", 100, "\"item\":\"a\""), ev("u", 200, "\"item\":\"b\""), ev("u", 200, "\"item\":\"c\"")])
        parts.feedPart(1, [ev("u", 200, "\"item\":\"d\""), ev("u", 150, "\"item\":\"e\"")])
        parts.feedPart(2, [ev("u", 300, "\"item\":\"f\"")])
        // By (ts, p, arrival in p), greatest first: f(300,2), d(200,1),
        // c(200,0,3rd), b(200,0,2nd); e(150) and a(100) fall off.
        #expect(strings(parts.read("u", at: 300)["items"]) == ["f", "d", "c", "b"])
    }

    @Test func lastNDistinctAcrossPartitions() throws {
        let parts = Parts(try makeTopology("  - {name: items, kind: last_n, field: item, n: 3, distinct: true}"))
        parts.feedPart(0, [ev("u", 100, "\"item\":\"x\""), ev("u", 200, "\"item\":\"y\"")])
        parts.feedPart(1, [ev("u", 200, "\"item\":\"x\""), ev("u", 50, "\"item\":\"z\"")])
        // (200,1,x), (200,0,y), (100,0,x: already taken), (50,1,z).
        #expect(strings(parts.read("u", at: 200)["items"]) == ["x", "y", "z"])
    }

    @Test func firstAndLastTiesAcrossPartitions() throws {
        let parts = Parts(try makeTopology("""
              - {name: f, kind: first, field: v}
              - {name: l, kind: last, field: v}
              - {name: fw, kind: first, field: w, window: 1h}
              - {name: lw, kind: last, field: w, window: 1h}
            """))
        parts.feedPart(0, [ev("u", 200, "\"v\":\"a\",\"w\":\"a\"")])
        parts.feedPart(1, [ev("u", 200, "\"v\":\"b\""), ev("u", 150, "\"w\":\"b\"")])
        let r = parts.read("u", at: 200)
        // v: both at ts 200: first takes the least partition, last the greatest.
        #expect(r["f"] as? String == "a")
        #expect(r["l"] as? String == "b")
        // w: a@200 (p0), b@150 (p1), one tile (start 0).
        #expect(r["fw"] as? String == "b")
        #expect(r["lw"] as? String == "a")
    }

    @Test func keyTimeAndLatenessPerPart() throws {
        let parts = Parts(try makeTopology("  - {name: n, kind: count}", lateness: "100ms"))
        parts.feedPart(0, [ev("u", 1000), ev("u", 950)])  // 950 >= 1000 - 100: accepted
        parts.feedPart(1, [ev("u", 500), ev("u", 390)])   // own K is 500: 390 < 400 is late
        #expect(!(parts.outcomes[0]!.contains { $0 == .rejected(.late) }))
        // 500 is not late although the merged K is 1000: lateness is per part.
        #expect(parts.outcomes[1]![0] != .rejected(.late))
        #expect(parts.outcomes[1]![1] == .rejected(.late))
        let r = parts.read("u", at: 1000)
        #expect(int(r["n"]) == 3)
        #expect(int(r["key_time"]) == 1000)  // the greatest K
    }

    @Test func windowsCombineLikeTiles() throws {
        let parts = Parts(try makeTopology("""
              - {name: c, kind: count, window: 1h, hop: 5m}
              - {name: s, kind: sum, field: price, window: 1h, hop: 5m}
              - {name: lo, kind: min, field: price, window: 1h, hop: 5m}
              - {name: hi, kind: max, field: price, window: 1h, hop: 5m}
              - {name: a, kind: avg, field: price, window: 1h, hop: 5m}
              - {name: total, kind: sum, field: price}
              - {name: var, kind: variance, field: price, window: 1h, hop: 5m}
              - {name: dc, kind: distinct_count, field: item, window: 1h, hop: 5m}
              - {name: cb, kind: count_by, field: item, window: 1h, hop: 5m}
              - {name: since, kind: time_since, where: item == "y"}
            """))
        parts.feedPart(0, [ev("u", 1000, "\"price\":1,\"item\":\"x\""), ev("u", 2000, "\"price\":3,\"item\":\"y\"")])
        parts.feedPart(1, [ev("u", 1500, "\"price\":5,\"item\":\"y\""), ev("u", 400_000, "\"price\":2.5,\"item\":\"z\"")])
        parts.feedPart(2, [ev("u", 3_700_000, "\"price\":100,\"item\":\"q\"")])  // tile 3_600_000
        // At T = 400_000: tiles 0 (p0: 1, 3; p1: 5) and 300_000 (p1: 2.5).
        let r = parts.read("u", at: 400_000)
        #expect(int(r["c"]) == 4)
        #expect(double(r["s"]) == 11.5)
        #expect(double(r["lo"]) == 1)
        #expect(double(r["hi"]) == 5)
        #expect(double(r["a"]) == 11.5 / 4)
        #expect(double(r["total"]) == 111.5)
        // Variance folded by (start, partition): tile 0 of p0 (n 2, mean 2,
        // M2 2), tile 0 of p1 (1, 5, 0) -> (3, 3, 8); tile 300000 of p1
        // (1, 2.5, 0) -> n 4, d -0.5, mean 2.875, M2 8 + 0.25*3/4 = 8.1875.
        #expect(double(r["var"]) == 8.1875 / 4)
        #expect(int(r["dc"]) == 3)
        #expect((r["cb"] as? [String: Any]).map { $0.mapValues { int($0) ?? -1 } } == ["y": 2, "x": 1, "z": 1])
        #expect(int(r["since"]) == 400_000 - 2000)
        // At T = 3_700_000 the window (0, 3_600_000] holds part 1's tile
        // 300000 and part 2's tile 3600000.
        let late = parts.read("u", at: 3_700_000)
        #expect(int(late["c"]) == 2)
        #expect(int(late["key_time"]) == 3_700_000)
    }

    @Test func onePartReadsAsTheSingleStream() throws {
        let t = try makeTopology("""
              - {name: items, kind: last_n, field: item, n: 3}
              - {name: s, kind: session, gap: 1s}
              - {name: c, kind: count, window: 1h, hop: 5m}
              - {name: v, kind: stddev, field: price, window: 1h, hop: 5m}
              - {name: p, kind: percentile, field: price, window: 1h, hop: 5m}
            """)
        let events = (0..<200).map { i in ev("u", Int64(i * 997 % 5000), "\"item\":\"i\(i % 7)\",\"price\":\(Double(i % 13) * 1.25)") }
        let single = FeatureEngine(topology: t)
        feed(single, events)
        let parts = Parts(t)
        parts.feedPart(9, events)
        for at: Int64 in [0, 2500, 5000, 400_000] {
            var r = parts.read("u", at: at)
            r["key_time"] = nil
            #expect(NSDictionary(dictionary: r) == NSDictionary(dictionary: read(single, "u", at: at)))
        }
    }
}
