import EddyCore
import Foundation
import Testing

/// SEMANTICS.md "More aggregations" and lifetime aggregates, with numbers
/// worked out by hand (the HLL and DDSketch numbers with the formulas in
/// Python, whose floats and libm are the engine's).
@Suite struct MoreKindsTests {
    // MARK: Canonical text

    func canonical(_ v: Double) -> String {
        var buf = [UInt8](repeating: 0, count: CanonicalText.capacity)
        let n = buf.withUnsafeMutableBufferPointer { CanonicalText.number(v, into: $0.baseAddress!) }
        return String(decoding: buf[0..<n], as: UTF8.self)
    }

    @Test func canonicalNumberTextIsECMAScripts() {
        #expect(canonical(12) == "12")
        #expect(canonical(-12) == "-12")
        #expect(canonical(0.5) == "0.5")
        #expect(canonical(-0.0) == "0")
        #expect(canonical(1e20) == "100000000000000000000")
        #expect(canonical(1e21) == "1e+21")
        #expect(canonical(0.000001) == "0.000001")
        #expect(canonical(1e-7) == "1e-7")
        #expect(canonical(123.456) == "123.456")
        #expect(canonical(1.5e300) == "1.5e+300")
        #expect(canonical(-2.5e-8) == "-2.5e-8")
        #expect(canonical(9007199254740993) == "9007199254740992")
        #expect(canonical(1152921504606846976) == "1152921504606847000")
        #expect(canonical(0.1 + 0.2) == "0.30000000000000004")
    }

    @Test func percentileColumnNames() {
        #expect(percentileSuffix(0.5) == "p50")
        #expect(percentileSuffix(0.99) == "p99")
        #expect(percentileSuffix(0.999) == "p99_9")
        #expect(percentileSuffix(0.29) == "p29")
        #expect(percentileSuffix(0.0001) == "p0_01")
    }

    // MARK: distinct_count

    /// XXH64 (seed 0), with p = 4: a -> j 13, rho 3; b -> 7, 1; c -> 10, 3;
    /// d -> 5, 13; e -> 4, 1; f -> 13, 9 (checked against libxxhash in C).
    @Test func distinctCountSwitchesToRegistersAfterExactLimit() throws {
        let t = try makeTopology("  - {name: d, kind: distinct_count, field: v, precision: 4, exact_limit: 3}")
        let e = FeatureEngine(topology: t)
        feed(e, ["a", "b", "a", "c"].enumerated().map { ev("u", Int64($0.offset), "\"v\":\"\($0.element)\"") })
        #expect(int(read(e, "u", at: 10)["d"]) == 3)  // a set, exact
        // d is one member too many: registers {13: 3, 7: 1, 10: 3, 5: 13}, V = 12 zero
        // registers, E = 16 ln(16/12) = 4.603 (small-range correction) -> 5.
        feed(e, [ev("u", 5, "\"v\":\"d\"")])
        #expect(int(read(e, "u", at: 10)["d"]) == 5)
        feed(e, [ev("u", 6, "\"v\":\"f\"")])  // j 13 rises to 9; V still 12
        #expect(int(read(e, "u", at: 10)["d"]) == 5)
        feed(e, [ev("u", 7, "\"v\":\"e\"")])  // V = 11: 16 ln(16/11) = 5.995 -> 6
        #expect(int(read(e, "u", at: 10)["d"]) == 6)
    }

    @Test func distinctCountUsesCanonicalTextsAndSkipsNullObjectArray() throws {
        let t = try makeTopology("  - {name: d, kind: distinct_count, field: v}")
        let e = FeatureEngine(topology: t)
        // 1, 1.0, 1e0 and "1" are one text; true and "true" one; 0 and -0 one.
        feed(e, ["1", "1.0", "1e0", "\"1\"", "true", "\"true\"", "0", "-0", "null", "{\"a\":1}", "[1]"]
            .enumerated().map { ev("u", Int64($0.offset), "\"v\":\($0.element)") } + [ev("u", 20)])
        #expect(int(read(e, "u", at: 30)["d"]) == 3)
        #expect(int(read(e, "nobody", at: 30)["d"]) == 0)
    }

    @Test func distinctCountUnionsTheWindowsTiles() throws {
        let t = try makeTopology("  - {name: d, kind: distinct_count, field: v, window: 3m, hop: 1m}")
        let e = FeatureEngine(topology: t)
        feed(e, [ev("u", 0, "\"v\":\"a\""), ev("u", 1, "\"v\":\"b\""), ev("u", 60_000, "\"v\":\"a\""),
                 ev("u", 60_001, "\"v\":\"c\""), ev("u", 120_000, "\"v\":\"c\"")])
        #expect(int(read(e, "u", at: 120_000)["d"]) == 3)  // tiles 0, 1m, 2m: {a, b, c}
        #expect(int(read(e, "u", at: 180_000)["d"]) == 2)  // tiles 1m, 2m: {a, c}
        #expect(int(read(e, "u", at: 240_000)["d"]) == 1)  // tile 2m: {c}
        #expect(int(read(e, "u", at: 300_000)["d"]) == 0)
    }

    // MARK: percentile

    /// a = 0.01: g = 1.02020202020202; 1 -> bucket 0 (0.9900000000000001),
    /// 100 -> 231 (100.49456770856492), -5 -> negative 81 (-5.002829575110705),
    /// 1e-9 -> -1036 (9.925526628557543e-10), 9.99e-10 -> zero, 2e15 clamped to
    /// 1e15 -> 1727 (992354051771133.8), g itself -> bucket 1 (1.01).
    @Test func percentileBucketsEdgesNegativesAndZero() throws {
        let t = try makeTopology("  - {name: p, kind: percentile, field: x, quantiles: [0.01, 0.25, 0.5, 0.75, 0.99]}")
        let e = FeatureEngine(topology: t)
        let xs = ["-5", "9.99e-10", "1", "100", "1e-9", "2e15", "1.02020202020202", "\"7\"", "null"]
        feed(e, xs.enumerated().map { ev("u", Int64($0.offset), "\"x\":\($0.element)") })
        // Seven numbers in order: -5, 0 (zero bucket), 1e-9, 1, g, 100, 1e15.
        // Ranks floor(q * 6): 0, 1, 3, 4, 5.
        // (Texts, not parsed: Foundation's JSON parser does not round correctly.)
        #expect(readText(e, "u", at: 10) ==
            "\"p_p1\":-5.002829575110705,\"p_p25\":0,\"p_p50\":0.9900000000000001,\"p_p75\":1.01,\"p_p99\":100.49456770856492")
        feed(e, [ev("u", 11, "\"x\":1e-9"), ev("u", 12, "\"x\":2e15"), ev("u", 13, "\"x\":3e15")])
        // Ten: -5, 0, 1e-9 x2, 1, g, 100, 1e15 x3; ranks floor(q*9): 0, 2, 4, 6 (100), 8.
        #expect(readText(e, "u", at: 20) ==
            "\"p_p1\":-5.002829575110705,\"p_p25\":9.925526628557543e-10,\"p_p50\":0.9900000000000001,\"p_p75\":100.49456770856492,\"p_p99\":992354051771133.8")
        #expect(isNull(read(e, "nobody", at: 20)["p_p50"]))
    }

    // MARK: count_by

    @Test func countByOverflowsIntoOtherAndOrdersTies() throws {
        let t = try makeTopology("  - {name: c, kind: count_by, field: v, top: 4, max_values: 2}")
        let e = FeatureEngine(topology: t)
        // b and a are the tile's two texts (first arrival); c, d, c, A overflow.
        feed(e, ["b", "a", "c", "d", "a", "b", "c", "A"].enumerated().map { ev("u", Int64($0.offset), "\"v\":\"\($0.element)\"") })
        // __other__ 4, a 2, b 2 (a before b: bytewise). top 4 of 3.
        #expect(readText(e, "u", at: 10) == "\"c\":{\"__other__\":4,\"a\":2,\"b\":2}")
        let t2 = try makeTopology("  - {name: c, kind: count_by, field: v, top: 2}")
        let e2 = FeatureEngine(topology: t2)
        feed(e2, ["b", "_", "a", "A", "b", "_", "a", "A", "1", "1"].enumerated().map { ev("u", Int64($0.offset), "\"v\":\"\($0.element)\"") })
        // Ties at 2: "1" (0x31) < "A" (0x41) < "_" (0x5F) < "a" < "b".
        #expect(readText(e2, "u", at: 10) == "\"c\":{\"1\":2,\"A\":2}")
        #expect(readText(e2, "nobody", at: 10) == "\"c\":{}")
    }

    @Test func countBySumsTilesOfTheWindow() throws {
        let t = try makeTopology("  - {name: c, kind: count_by, field: v, window: 2m, hop: 1m, max_values: 1}")
        let e = FeatureEngine(topology: t)
        feed(e, [ev("u", 0, "\"v\":\"x\""), ev("u", 1, "\"v\":\"y\""), ev("u", 60_000, "\"v\":\"y\""),
                 ev("u", 60_001, "\"v\":\"x\""), ev("u", 60_002, "\"v\":12.50")])
        // Tile 0: x 1, other 1 (y). Tile 1m: y 1, other 2 (x, 12.5).
        #expect(readText(e, "u", at: 60_000) == "\"c\":{\"__other__\":3,\"x\":1,\"y\":1}")
        #expect(readText(e, "u", at: 120_000) == "\"c\":{\"__other__\":2,\"y\":1}")
    }

    // MARK: variance, stddev

    @Test func varianceMergesTilesInAscendingStart() throws {
        let t = try makeTopology("""
              - {name: v, kind: variance, field: x, window: 3m, hop: 1m}
              - {name: s, kind: stddev, field: x, window: 3m, hop: 1m}
              - {name: lv, kind: variance, field: x}
            """)
        let e = FeatureEngine(topology: t)
        // Tile 0: 1, 2, 3 (n 3, mean 2, M2 2). Tile 1m: 10, 20 (n 2, mean 15, M2 50).
        feed(e, [ev("u", 0, "\"x\":1"), ev("u", 1, "\"x\":2"), ev("u", 60_000, "\"x\":10"), ev("u", 2, "\"x\":3"),
                 ev("u", 60_001, "\"x\":20"), ev("u", 3, "\"x\":\"no\"")])
        // Fold: n 5, d 13, mean 2 + 13*2/5 = 7.2, M2 = 2 + 50 + 13*13*3*2/5 = 254.8.
        let r = read(e, "u", at: 60_001)
        let expected = (2.0 + 50.0 + 13.0 * 13.0 * 3.0 * 2.0 / 5.0) / 5.0
        #expect(double(r["v"]) == expected)
        #expect(abs(double(r["v"])! - 50.96) < 1e-12)
        #expect(double(r["s"]) == expected.squareRoot())
        #expect(abs(double(r["lv"])! - 50.96) < 1e-12)  // lifetime: Welford over all five
        #expect(double(read(e, "u", at: 180_000)["v"]) == 25)  // tile 1m alone: M2 50 / n 2
        #expect(isNull(read(e, "u", at: 240_000)["v"]))
        let one = FeatureEngine(topology: t)
        feed(one, [ev("u", 0, "\"x\":-3.5")])
        #expect(double(read(one, "u", at: 0)["v"]) == 0)
    }

    // MARK: first, last

    @Test func firstAndLastBreakTiesByArrival() throws {
        let t = try makeTopology("""
              - {name: f, kind: first, field: v}
              - {name: l, kind: last, field: v}
              - {name: wf, kind: first, field: v, window: 2m, hop: 1m}
              - {name: wl, kind: last, field: v, window: 2m, hop: 1m}
            """)
        let e = FeatureEngine(topology: t)
        feed(e, [ev("u", 100, "\"v\":\"a\""), ev("u", 100, "\"v\":\"b\""), ev("u", 50, "\"v\":1.50"),
                 ev("u", 50, "\"v\":true"), ev("u", 200, "\"v\":null"), ev("u", 200, "\"v\":{\"o\":1}"), ev("u", 300)])
        // first: 1.50@50 (arrived before true@50); last: b@100 (after a@100).
        #expect(readText(e, "u", at: 300) == "\"f\":1.50,\"l\":\"b\",\"wf\":1.50,\"wl\":\"b\"")
        feed(e, [ev("u", 60_000, "\"v\":\"z\"")])
        #expect(readText(e, "u", at: 120_000) == "\"f\":1.50,\"l\":\"z\",\"wf\":\"z\",\"wl\":\"z\"")
        #expect(readText(e, "nobody", at: 0) == "\"f\":null,\"l\":null,\"wf\":null,\"wl\":null")
    }

    // MARK: time_since, lifetime

    @Test func timeSinceBeforeAndAfterT() throws {
        let t = try makeTopology("  - {name: since, kind: time_since, where: status == \"declined\"}")
        let e = FeatureEngine(topology: t)
        feed(e, [ev("u", 1_000, "\"status\":\"ok\"")])
        #expect(isNull(read(e, "u", at: 5_000)["since"]))
        feed(e, [ev("u", 2_000, "\"status\":\"declined\""), ev("u", 1_500, "\"status\":\"declined\""),
                 ev("u", 3_000, "\"status\":\"ok\"")])
        #expect(int(read(e, "u", at: 5_000)["since"]) == 3_000)
        #expect(int(read(e, "u", at: 2_000)["since"]) == 0)
        #expect(int(read(e, "u", at: 500)["since"]) == -1_500)
    }

    @Test func lifetimeAggregatesKeepEveryEvent() throws {
        let t = try makeTopology("""
              - {name: n, kind: count}
              - {name: total, kind: sum, field: x}
              - {name: lo, kind: min, field: x}
              - {name: mean, kind: avg, field: x}
            """, lateness: "1s")
        let e = FeatureEngine(topology: t)
        feed(e, [ev("u", 0, "\"x\":4"), ev("u", 400 * 86_400_000, "\"x\":-1"), ev("u", 500 * 86_400_000)])
        let r = read(e, "u", at: 0)
        #expect(int(r["n"]) == 3 && int(r["total"]) == 3 && int(r["lo"]) == -1 && double(r["mean"]) == 1.5)
        #expect(int(read(e, "u", at: 900 * 86_400_000)["n"]) == 3)
        #expect(int(read(e, "nobody", at: 0)["n"]) == 0 && isNull(read(e, "nobody", at: 0)["mean"]))
    }
}
