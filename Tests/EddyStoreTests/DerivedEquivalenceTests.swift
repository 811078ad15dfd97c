import EddyCore
import EddyRedis
import EddyReplay
@testable import EddyStore
import Testing

/// Derived columns read through the Function library (FCALL) are byte for
/// byte what `FeatureEngine.writeFeatures` writes: same doubles, same null
/// rules, same number text.
@Suite("Derived columns: Function library matches FeatureEngine")
struct DerivedEquivalenceTests {
    /// Every read's reply text equals the engine's object text exactly.
    @discardableResult
    func compareBytes(_ e: FeatureEngine, _ library: FunctionLibrary, on redis: RedisConnection,
                      _ reads: [(Entity, Int64)], sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        for (entity, t) in reads {
            try redis.appendFcall(library.functionName) { call in
                call.keys.add(entity.redisKey)
                call.arguments.add(t)
            }
        }
        let replies = try redis.pipeline(count: reads.count)
        var failures = 0
        for ((entity, t), reply) in zip(reads, replies) {
            let expected = expectedObject(e, entity, at: t)
            let actual: [UInt8]
            if case .bulk(let b) = reply { actual = b } else { actual = Array("\(reply)".utf8) }
            if actual != expected {
                failures += 1
                if failures <= 5 {
                    Issue.record("""
                        key \(String(decoding: entity.key, as: UTF8.self)) at T=\(t):
                          redis:  \(String(decoding: actual, as: UTF8.self))
                          engine: \(String(decoding: expected, as: UTF8.self))
                        """, sourceLocation: sourceLocation)
                }
            }
        }
        #expect(failures == 0, "\(failures) of \(reads.count) reads differ", sourceLocation: sourceLocation)
        return reads.count
    }

    static let clickstreamDerived: [(String, String)] = [
        ("click_rate", "clicks_1h / session_events"),
        ("spend_per_click", "if(clicks_1h > 0, spend_24h / clicks_1h, 0)"),
        ("engaged", "session_active and not (clicks_1h == 0) or spend_24h >= 100"),
        ("log_spend", "log(spend_24h)"),
        ("root_spend", "sqrt(spend_24h - 50)"),
        ("growth", "exp(spend_24h / 100)"),
        ("power", "pow(spend_24h, 1.5) - pow(clicks_1h, 0.5)"),
        ("bounded", "min(max(click_rate, 0.05), 0.95, coalesce(log_spend, 1))"),
        ("minutes", "session_duration_ms / 60000"),
        ("since_start", "coalesce(session_last - session_start, -1) / 3"),
        ("scaled", "spend_24h * 1e13 + 0.5"),
        ("tiny", "spend_24h * 1e-310"),
        ("huge", "spend_24h * 1e307"),
        ("neg", "-abs(spend_24h - 7) * 1e15"),
        ("tests", "(clicks_1h < 2) + (clicks_1h <= 2) * 2 + (clicks_1h >= 3) * 4 + (clicks_1h != 1) * 8 + (clicks_1h == 1) * 16"),
    ]

    static func withDerived(_ t: Topology, _ list: [(String, String)]) throws -> Topology {
        var t = t
        t.derived = try list.map { try DerivedSpec(name: $0.0, source: $0.1) }
        return t
    }

    @Test("clickstream with derived columns: every key at many read times, byte for byte")
    func clickstream() throws {
        let topology = try Self.withDerived(exampleTopology("clickstream"), Self.clickstreamDerived)
        let e = engine(topology, Generators.clickstream(events: 4_000, keys: 120, seed: 11))
        let all = entities(of: e)
        let library = FunctionLibrary(topology: topology)
        // Derived columns do not change what the state means.
        #expect(library.fingerprint == FunctionLibrary(topology: try exampleTopology("clickstream")).fingerprint)
        try withRedis { _, redis throws in
            try library.install(on: redis)
            try store(all, topology: topology, on: redis)
            var rng = SplitMix64(seed: 5)
            var reads: [(Entity, Int64)] = []
            for entity in all {
                for t in readTimes(for: entity, e, rng: &rng) { reads.append((entity, t)) }
            }
            let n = try compareBytes(e, library, on: redis, reads)
            #expect(n > all.count * 10)
            // The derived columns took values, and nulls.
            var values = 0, nulls = 0
            for (entity, t) in reads.prefix(2000) {
                let object = JSONValue.parse(expectedObject(e, entity, at: t))
                for (name, _) in Self.clickstreamDerived {
                    if object?[name]?.double != nil { values += 1 } else { nulls += 1 }
                }
            }
            #expect(values > 1000 && nulls > 1000, "\(values) values, \(nulls) nulls")
            // An unknown entity stays nil.
            #expect(try redis.fcall(library.functionName, keys: ["clickstream:nobody"]) == .null)
        }
    }

    @Test("sums, minima, maxima and means with hard-to-format values through derived arithmetic")
    func formatting() throws {
        var t = try makeTopology("""
              - {name: s, kind: sum, field: x, window: 1h, hop: 1h}
              - {name: lo, kind: min, field: x, window: 1h, hop: 1h}
              - {name: hi, kind: max, field: x, window: 1h, hop: 1h}
              - {name: mean, kind: avg, field: x, window: 1h, hop: 1h}
              - {name: n, kind: count, field: x, window: 1h, hop: 1h}
            """)
        var list: [(String, String)] = []
        for (i, e) in ["s / 3", "s * 3", "mean / 7", "hi - lo", "s * 1e15", "s / 1e15", "lo * 1e-7", "sqrt(abs(s))",
                       "exp(mean / 1e3)", "log(abs(hi))", "pow(abs(mean), 0.3)", "s + 0.1", "1 / s", "hi * hi",
                       "s * 1e300", "-s", "n / 3", "s * 4503599627370496", "mean * 1e16", "lo / 1e300"].enumerated() {
            list.append(("d\(i)", e))
        }
        t = try Self.withDerived(t, list)
        var events: [String] = []
        for (i, a) in FormattingTests.values.enumerated() {
            events.append("{\"user_id\":\"one\(i)\",\"ts\":1000,\"x\":\(a)}")
            for (j, b) in FormattingTests.values.enumerated() where j % 3 == i % 3 {
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
            try compareBytes(e, library, on: redis, all.map { ($0, 3_000) })
            try compareBytes(e, library, on: redis, all.map { ($0, 4_000_000) })  // empty windows
        }
    }

    /// Number text: random doubles of every magnitude (random bit
    /// patterns), each the sum of one event, and derived from it.
    @Test("number text of random doubles, byte for byte")
    func randomDoubles() throws {
        let t = try Self.withDerived(makeTopology("  - {name: s, kind: sum, field: x, window: 1h, hop: 1h}"),
                                     [("twice", "s * 2"), ("third", "s / 3")])
        var rng = SplitMix64(seed: 77)
        var events: [String] = []
        for i in 0..<3000 {
            var v: Double
            switch i % 4 {
            case 0: v = Double(bitPattern: rng.next())
            case 1: v = Double(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64))  // integers of every size
            case 2: v = Double(Int64(bitPattern: rng.next()) >> 10) / 1024  // around 2^53
            default: v = Double(bitPattern: rng.next() >> 12)  // subnormal
            }
            guard v.isFinite else { continue }
            events.append("{\"user_id\":\"k\(i)\",\"ts\":1000,\"x\":\(v.description)}")
        }
        let e = engine(t, events)
        let all = entities(of: e)
        #expect(all.count > 2000)
        try withRedis { _, redis throws in
            try store(all, topology: t, on: redis)
            let library = FunctionLibrary(topology: t)
            try library.install(on: redis)
            try compareBytes(e, library, on: redis, all.map { ($0, 1_000) })
        }
    }

    /// Random expressions over every numeric clickstream column, and chains
    /// of derived columns reading earlier ones.
    @Test("random expressions: Lua and Swift agree", arguments: 0..<4)
    func randomExpressions(_ seed: Int) throws {
        let base = try exampleTopology("clickstream")
        var rng = SplitMix64(seed: UInt64(1000 + seed))
        var names = base.features.flatMap(\.outputNames).filter { $0 != "last_items" }
        var list: [(String, String)] = []
        for k in 0..<12 {
            var e = randomExpression(&rng, columns: names, depth: 5)
            // Every third one is too deep for one Lua expression: stack code.
            if k % 3 == 0 { for _ in 0..<(DerivedLua.inlineDepth + 1) { e = .call(.abs, [e]) } }
            #expect((DerivedLua.depth(e) > DerivedLua.inlineDepth) == (k % 3 == 0))
            list.append(("r\(k)", e.description))
            names.append("r\(k)")
        }
        let topology = try Self.withDerived(base, list)
        let e = engine(topology, Generators.clickstream(events: 1_500, keys: 60, seed: UInt64(seed)))
        let all = entities(of: e)
        let library = FunctionLibrary(topology: topology)
        try withRedis { _, redis throws in
            try library.install(on: redis)
            try store(all, topology: topology, on: redis)
            var reads: [(Entity, Int64)] = []
            for entity in all {
                for t in readTimes(for: entity, e, rng: &rng) { reads.append((entity, t)) }
            }
            try compareBytes(e, library, on: redis, reads)
        }
    }

    @Test("a long flat chain and deep nesting load in Lua")
    func bigExpressions() throws {
        let chain = (0..<400).map { _ in "clicks_1h" }.joined(separator: " + ")
        let deep = String(repeating: "abs(", count: 30) + "spend_24h" + String(repeating: ")", count: 30)
        // More columns than Lua has locals: inputs and results in a table.
        let many = (0..<200).map { ("m\($0)", $0 == 0 ? "spend_24h / 3" : "m\($0 - 1) * 1.01 + session_events") }
        let topology = try Self.withDerived(exampleTopology("clickstream"), [("chain", chain), ("deep", deep)] + many)
        #expect(FunctionLibrary(topology: topology).source.contains("local v = {}"))
        let e = engine(topology, Generators.clickstream(events: 300, keys: 10, seed: 3))
        let all = entities(of: e)
        try withRedis { _, redis throws in
            let library = FunctionLibrary(topology: topology)
            try library.install(on: redis)
            try store(all, topology: topology, on: redis)
            try compareBytes(e, library, on: redis, all.map { ($0, $0.keyTime ?? 0) })
        }
    }
}

func randomExpression(_ rng: inout SplitMix64, columns: [String], depth: Int) -> DerivedExpr {
    func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
    if depth == 0 || rng.next() % 4 == 0 {
        return rng.next() % 3 == 0 ? .number(pick([0, 1, 2, 0.5, 3, 1e3, 0.1, 1e-300, 1e300, 60000])) : .column(pick(columns))
    }
    switch rng.next() % 4 {
    case 0: return .unary(pick(DerivedUnary.allCases), randomExpression(&rng, columns: columns, depth: depth - 1))
    case 1, 2:
        return .binary(pick(DerivedBinary.allCases), randomExpression(&rng, columns: columns, depth: depth - 1),
                       randomExpression(&rng, columns: columns, depth: depth - 1))
    default:
        let f = pick(DerivedFunction.allCases)
        let n = f.arity.upperBound == Int.max ? f.arity.lowerBound + Int(rng.next() % 3) : f.arity.lowerBound
        return .call(f, (0..<n).map { _ in randomExpression(&rng, columns: columns, depth: depth - 1) })
    }
}
