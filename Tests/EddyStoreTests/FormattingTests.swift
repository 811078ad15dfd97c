import EddyCore
import EddyRedis
@testable import EddyStore
import Testing

/// Numbers, strings and names as the library writes them.
@Suite("Formatting in the Function library")
struct FormattingTests {
    /// Values whose sums, minima, maxima and means stress number formatting.
    static let values = [
        "0.1", "0.2", "0.3", "1e-7", "123456789.123456789", "999999999999999", "1000000000000000",
        "1000000000000000.5", "9007199254740993", "1e300", "-1e300", "5e-324", "-0.0", "0", "-2.5",
        "3.3333333333333335", "1.7976931348623157e308", "0.30000000000000004", "1e21", "-123456.789e-3",
        "2.2250738585072014e-308", "4503599627370497.5",
    ]

    @Test("sums, minima, maxima and means read back as the same doubles")
    func numbers() throws {
        let t = try makeTopology("""
              - {name: s, kind: sum, field: x, window: 1h, hop: 1h}
              - {name: lo, kind: min, field: x, window: 1h, hop: 1h}
              - {name: hi, kind: max, field: x, window: 1h, hop: 1h}
              - {name: mean, kind: avg, field: x, window: 1h, hop: 1h}
              - {name: n, kind: count, field: x, window: 1h, hop: 1h}
              - {name: raw, kind: last_n, field: x, n: 3}
            """)
        var events: [String] = []
        for (i, a) in Self.values.enumerated() {
            events.append("{\"user_id\":\"one\(i)\",\"ts\":1000,\"x\":\(a)}")
            for (j, b) in Self.values.enumerated() where j % 3 == i % 3 {
                events.append("{\"user_id\":\"pair\(i)\",\"ts\":\(1000 + j),\"x\":\(a)}")
                events.append("{\"user_id\":\"pair\(i)\",\"ts\":\(2000 + j),\"x\":\(b)}")
            }
        }
        let e = engine(t, events)
        let all = entities(of: e)
        try withRedis { _, redis throws in
            try store(all, topology: t, on: redis)
            let library = FunctionLibrary(topology: t)
            try library.install(on: redis)
            try compareReads(e, library, on: redis, all.map { ($0, 3_000) })
        }
    }

    @Test("strings needing escapes, in keys and last_n values, and odd feature names")
    func strings() throws {
        // Names the loader would refuse, set directly: the library must still
        // write them as the engine does.
        var t = try makeTopology("""
              - {name: v, kind: last_n, field: x, n: 40}
              - {name: s, kind: session, gap: 1m}
            """)
        t.features[0].name = "v\"q\u{00E9}"
        t.features[1].name = "s\\\n'"
        t.name = "t\"o'p\\o"
        #expect(FunctionLibrary(topology: t).libraryName == "eddy_t_o_p_o")
        var events: [String] = []
        var raw: [String] = (0..<32).map { String(format: "\\u%04x", $0) }
        raw += ["\\\"", "\\\\", "\\/", "\u{00E9}", "\u{1F600}", "\\ud83d\\ude00", "plain", "\u{7F}"]
        for (i, r) in raw.enumerated() {
            events.append("{\"user_id\":\"k\(r)\",\"ts\":\(i),\"x\":\"a\(r)b\"}")
            events.append("{\"user_id\":\"all\",\"ts\":\(i),\"x\":\"a\(r)b\"}")
        }
        let e = engine(t, events)
        let all = entities(of: e)
        #expect(all.count > 30)  // some keys unescape to the same bytes
        try withRedis { _, redis throws in
            try store(all, topology: t, on: redis)
            let library = FunctionLibrary(topology: t)
            try library.install(on: redis)
            try compareReads(e, library, on: redis, all.map { ($0, 100) })
        }
    }

    @Test("Lua string literals hold any bytes; names are sanitized")
    func luaLiterals() throws {
        var t = try makeTopology("  - {name: c, kind: count, window: 1h}", name: "my-topo")
        t.name = "my-topo.v2"
        var bytes = (0...255).map { UInt8($0) }
        bytes += Array("'\\\"]]".utf8)
        let library = FunctionLibrary(topology: t)
        #expect(library.libraryName == "eddy_my_topo_v2")
        #expect(library.functionName == "eddy_my_topo_v2_features")
        try withRedis { _, redis throws in
            try library.install(on: redis)
            #expect(try redis.fcall(library.versionFunctionName) == .bulk(Array(library.version.utf8)))
            let literal = LuaLiteral.string(bytes)
            #expect(literal.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F })
            #expect(try redis.command("EVAL", "return " + literal, 0) == .bulk(bytes))
        }
    }

    @Test("read times: epoch ms and RFC 3339")
    func readTimes() {
        #expect(ReadTime.parse("1714567200000") == 1_714_567_200_000)
        #expect(ReadTime.parse("-5") == -5)
        #expect(ReadTime.parse("+5") == 5)
        #expect(ReadTime.parse("-9223372036854775808") == Int64.min)
        #expect(ReadTime.parse("9223372036854775808") == nil)
        #expect(ReadTime.parse("2024-05-01T12:40:00Z") == 1_714_567_200_000)
        #expect(ReadTime.parse("2024-05-01T14:40:00.25+02:00") == 1_714_567_200_250)
        #expect(ReadTime.parse("2024-05-01 12:40:00.123456z") == 1_714_567_200_123)
        #expect(ReadTime.parse("2024-05-01T07:40:00-05:00") == 1_714_567_200_000)
        for bad in ["", "-", "now", "1.5", "99999999999999999999", "2024-13-01T00:00:00Z", "2024-05-01T12:40:00",
                    "2024-05-01T12:40:00Zx", "2024-05-01"] {
            #expect(ReadTime.parse(bad) == nil, "\(bad)")
        }
    }
}
