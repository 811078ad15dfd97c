import EddyCore
import Foundation
import Testing

/// Every rule of SEMANTICS.md, with hand-checked numbers.
@Suite struct SemanticsTests {
    @Test func latenessEdgeIsInclusive() throws {
        let t = try makeTopology("  - {name: c, kind: count, window: 1h, hop: 5m}", lateness: "5s")
        let e = FeatureEngine(topology: t)
        let out = feed(e, [ev("u", 10_000), ev("u", 5_000), ev("u", 4_999), ev("u", 20_000), ev("u", 14_999)])
        // K = 10000: 5000 = K - 5s is accepted; 4999 is late. Then K = 20000: 14999 late.
        #expect(out[1] != .rejected(.late))
        #expect(out[2] == .rejected(.late))
        #expect(out[4] == .rejected(.late))
        #expect(int(read(e, "u", at: 20_000)["c"]) == 3)
    }

    @Test func lastNOrdersByTimeThenArrival() throws {
        let t = try makeTopology("  - {name: items, kind: last_n, field: item, n: 3}")
        let e = FeatureEngine(topology: t)
        feed(e, [ev("u", 300, "\"item\":\"a\""), ev("u", 100, "\"item\":\"b\""), ev("u", 200, "\"item\":\"c\""),
                 ev("u", 200, "\"item\":\"d\""), ev("u", 50, "\"item\":\"e\"")])
        // Newest first by (ts, arrival): a@300, d@200 (arrived after c), c@200; b and e fall off.
        #expect(strings(read(e, "u", at: 300)["items"]) == ["a", "d", "c"])
    }

    @Test func lastNDistinctKeepsNewestPlace() throws {
        let t = try makeTopology("  - {name: items, kind: last_n, field: item, n: 3, distinct: true}")
        let e = FeatureEngine(topology: t)
        feed(e, [ev("u", 1, "\"item\":\"a\""), ev("u", 2, "\"item\":\"b\""), ev("u", 3, "\"item\":\"a\"")])
        #expect(strings(read(e, "u", at: 3)["items"]) == ["a", "b"])
        feed(e, [ev("u", 0, "\"item\":\"a\"")])  // older than the stored a@3: no change
        #expect(strings(read(e, "u", at: 3)["items"]) == ["a", "b"])
        feed(e, [ev("u", 3, "\"item\":\"b\"")])  // b@3 arrives after a@3: newest
        #expect(strings(read(e, "u", at: 3)["items"]) == ["b", "a"])
        feed(e, [ev("u", 4, "\"item\":\"c\""), ev("u", 5, "\"item\":\"d\"")])
        #expect(strings(read(e, "u", at: 5)["items"]) == ["d", "c", "b"])
    }

    @Test func lastNKeepsValueTypesAndSkipsMissing() throws {
        let t = try makeTopology("  - {name: v, kind: last_n, field: x, n: 5}")
        let e = FeatureEngine(topology: t)
        feed(e, [ev("u", 1, "\"x\":12345678901234567890"), ev("u", 2, "\"x\":true"), ev("u", 3),
                 ev("u", 4, "\"x\":null"), ev("u", 5, "\"x\":{\"a\":[1,2]}"), ev("u", 6, "\"x\":\"q\\\"uote\"")])
        #expect(readText(e, "u", at: 6).hasPrefix("\"v\":[\"q\\\"uote\",{\"a\":[1,2]},true,12345678901234567890]"))
    }

    @Test func sessionMergesSplitsAndIgnoresOlderSessions() throws {
        let t = try makeTopology("  - {name: s, kind: session, gap: 10s}")
        let e = FeatureEngine(topology: t, expectedKeys: 4)
        feed(e, [ev("u", 100_000), ev("u", 105_000)])
        var r = read(e, "u", at: 105_000)
        #expect(int(r["s_start"]) == 100_000 && int(r["s_last"]) == 105_000 && int(r["s_events"]) == 2)
        #expect(int(r["s_duration_ms"]) == 5_000 && r["s_active"] as? Bool == true)
        feed(e, [ev("u", 200_000)])  // > last + gap: a new session
        r = read(e, "u", at: 200_000)
        #expect(int(r["s_start"]) == 200_000 && int(r["s_events"]) == 1)
        feed(e, [ev("u", 195_000)])  // >= start - gap: merges, start moves back
        r = read(e, "u", at: 200_000)
        #expect(int(r["s_start"]) == 195_000 && int(r["s_events"]) == 2 && int(r["s_duration_ms"]) == 5_000)
        // Within lateness (5m) but before start - gap: an older session, ignored here.
        feed(e, [ev("u", 184_999)])
        r = read(e, "u", at: 200_000)
        #expect(int(r["s_start"]) == 195_000 && int(r["s_events"]) == 2)
        // Active at read time T: T - last <= gap.
        #expect(read(e, "u", at: 210_000)["s_active"] as? Bool == true)
        #expect(read(e, "u", at: 210_001)["s_active"] as? Bool == false)
    }

    @Test func emptyStateReadsNullsAndZeros() throws {
        let t = try makeTopology("""
              - {name: s, kind: session, gap: 10s}
              - {name: c, kind: count, window: 1h, hop: 5m}
              - {name: total, kind: sum, field: p, window: 1h, hop: 5m}
              - {name: lo, kind: min, field: p, window: 1h, hop: 5m}
              - {name: mean, kind: avg, field: p, window: 1h, hop: 5m}
              - {name: items, kind: last_n, field: p}
            """)
        let e = FeatureEngine(topology: t)
        #expect(readText(e, "nobody", at: 0) == "\"s_start\":null,\"s_last\":null,\"s_events\":0,\"s_duration_ms\":null,\"s_active\":false,\"c\":0,\"total\":0,\"lo\":null,\"mean\":null,\"items\":[]")
    }

    @Test func windowTileBoundaries() throws {
        // W = 1h, H = 5m: a read at T covers [floor(T/H)*H + H - W, floor(T/H)*H + H).
        let t = try makeTopology("  - {name: c, kind: count, window: 1h, hop: 5m}", lateness: "2h")
        let e = FeatureEngine(topology: t)
        let h: Int64 = 300_000, w: Int64 = 3_600_000
        let t0: Int64 = 100 * h  // a hop boundary
        feed(e, [ev("u", t0), ev("u", t0 + h - 1), ev("u", t0 + h), ev("u", t0 - w + h), ev("u", t0 - w + h - 1)])
        // At T = t0 (on a boundary): tiles (t0 - W, t0] hold ts in [t0 - W + H, t0 + H).
        #expect(int(read(e, "u", at: t0)["c"]) == 3)  // t0, t0+H-1, t0-W+H
        #expect(int(read(e, "u", at: t0 + h - 1)["c"]) == 3)  // same tile range
        #expect(int(read(e, "u", at: t0 + h)["c"]) == 3)  // t0+H in; t0-W+H out
        #expect(int(read(e, "u", at: t0 - 1)["c"]) == 2)  // t0-W+H-1 and t0-W+H
        #expect(int(read(e, "u", at: t0 + w + h)["c"]) == 0)  // everything expired
    }

    @Test func windowAggregationsSkipNonNumeric() throws {
        let t = try makeTopology("""
              - {name: n, kind: count, window: 1h, hop: 5m}
              - {name: s, kind: sum, field: p, window: 1h, hop: 5m}
              - {name: lo, kind: min, field: p, window: 1h, hop: 5m}
              - {name: hi, kind: max, field: p, window: 1h, hop: 5m}
              - {name: m, kind: avg, field: p, window: 1h, hop: 5m}
            """, lateness: "1h")
        let e = FeatureEngine(topology: t)
        feed(e, [ev("u", 1000, "\"p\":4"), ev("u", 2000, "\"p\":-1.5"), ev("u", 400_000, "\"p\":10"),
                 ev("u", 3000, "\"p\":\"7\""), ev("u", 4000), ev("u", 5000, "\"p\":null")])
        let r = read(e, "u", at: 400_000)
        #expect(int(r["n"]) == 6)
        #expect(double(r["s"]) == 12.5)
        #expect(double(r["lo"]) == -1.5)
        #expect(double(r["hi"]) == 10)
        #expect(double(r["m"]) == 12.5 / 3)
    }

    @Test func filtersApplyPerFeature() throws {
        let t = try makeTopology("""
              - {name: clicks, kind: count, window: 1h, hop: 5m, where: event == "click"}
              - {name: not_click, kind: count, window: 1h, hop: 5m, where: event != "click"}
              - name: big
                kind: count
                window: 1h
                hop: 5m
                where: price >= 10 and (country in ["DE", "FR"] or vip == true)
              - {name: nested, kind: count, window: 1h, hop: 5m, where: not (user.tier == null)}
            """)
        let e = FeatureEngine(topology: t)
        feed(e, [
            ev("u", 1, "\"event\":\"click\",\"price\":10,\"country\":\"DE\""),
            ev("u", 2, "\"event\":\"view\",\"price\":9.99,\"country\":\"DE\""),
            ev("u", 3, "\"price\":50,\"country\":\"US\",\"vip\":true"),
            ev("u", 4, "\"price\":50,\"country\":\"US\",\"vip\":false,\"user\":{\"tier\":\"gold\"}"),
            ev("u", 5, "\"price\":\"50\",\"country\":\"FR\",\"user\":{\"tier\":null}"),
        ])
        let r = read(e, "u", at: 5)
        #expect(int(r["clicks"]) == 1)
        #expect(int(r["not_click"]) == 4)  // a missing field is "not equal"
        #expect(int(r["big"]) == 2)  // events 1 and 3; "50" is a string, not a number
        #expect(int(r["nested"]) == 1)
    }

    @Test func invalidEventsHaveReasonsAndChangeNothing() throws {
        let t = try makeTopology("  - {name: c, kind: count, window: 1h, hop: 5m}")
        let e = FeatureEngine(topology: t)
        let longKey = String(repeating: "k", count: 1025)
        let out = feed(e, [
            "not json", "[1,2]", "{\"user_id\":\"u\",\"ts\":1", "{\"ts\":1}", "{\"user_id\":\"u\"}",
            "{\"user_id\":\"u\",\"ts\":\"yesterday\"}", "{\"user_id\":\"\(longKey)\",\"ts\":1}",
            "{\"user_id\":{\"a\":1},\"ts\":1}", "{\"user_id\":\"\",\"ts\":1}", "{\"user_id\":\"u\",\"ts\":1,}",
            "{\"user_id\":\"u\",\"ts\":01}", "{\"user_id\":\"u\",\"ts\":1} x", "",
        ])
        #expect(out == [
            .rejected(.notJSON), .rejected(.notObject), .rejected(.notJSON), .rejected(.missingKey),
            .rejected(.missingTime), .rejected(.badTime), .rejected(.keyTooLong), .rejected(.badKey),
            .rejected(.badKey), .rejected(.notJSON), .rejected(.notJSON), .rejected(.notJSON), .rejected(.notJSON),
        ])
        var bad: [UInt8] = Array("{\"user_id\":\"u\(String(repeating: "x", count: 3))\",\"ts\":1}".utf8)
        bad[13] = 0xFF
        let r = bad.withUnsafeBytes { e.process($0) }
        #expect(r == .rejected(.badUTF8))
        #expect(e.store.count == 0)
    }

    @Test func messageSizeLimit() throws {
        var t = try makeTopology("  - {name: c, kind: count, window: 1h, hop: 5m}")
        t.maxEventBytes = 64
        let e = FeatureEngine(topology: t)
        let out = feed(e, [ev("u", 1, "\"pad\":\"\(String(repeating: "x", count: 64))\""), ev("u", 1)])
        #expect(out[0] == .rejected(.tooLarge))
        #expect(out[1] != .rejected(.tooLarge))
    }

    @Test func tileDroppingKeepsReads() throws {
        // Tiles older than K - lateness - W are dropped; reads never needed them.
        let t = try makeTopology("  - {name: s, kind: sum, field: p, window: 10m, hop: 1m}", lateness: "1m")
        let e = FeatureEngine(topology: t)
        var events: [String] = []
        for i in 0..<200 { events.append(ev("u", Int64(i) * 30_000, "\"p\":1")) }
        feed(e, events)
        // K = 199 * 30s = 5970s; read at K covers ts in [5400s + 60s - 600s, 5460s)... i.e. 10 tiles.
        let k: Int64 = 199 * 30_000
        // floor(K/H)*H = 5940s: tiles (5340s, 5940s], events 5400s...5970s: i = 180...199.
        #expect(double(read(e, "u", at: k)["s"]) == 20)
        let slot = Array("u".utf8).withUnsafeBytes { e.store.lookup($0, hash: hashKey($0)) }
        // Kept: tiles after K - 1m - 10m = 5310s, i.e. 5340s...5940s: 11 tiles.
        #expect(e.store.length(slot) == 2 + 1 + 8 + 4 + 11 * 16)
    }
}
