import EddyCore
import EddyRedis
import EddyReplay
import EddyStore
import Testing

/// The Function library's reads of the "More aggregations", lifetime
/// aggregates and time_since are the engine's, byte for byte, for random
/// events and many read times (HyperLogLog registers, DDSketch buckets,
/// count_by ties and __other__, the variance fold, first/last).
@Suite("Function library matches FeatureEngine for the new kinds")
struct MoreKindsEquivalenceTests {
    static let features = """
          - {name: dc, kind: distinct_count, field: m, window: 1h, hop: 10m, precision: 6, exact_limit: 4}
          - {name: dc_life, kind: distinct_count, field: m, precision: 10, exact_limit: 8}
          - {name: dc_reg, kind: distinct_count, field: m, window: 30m, hop: 10m, precision: 4, exact_limit: 0}
          - {name: pct, kind: percentile, field: x, quantiles: [0.01, 0.5, 0.9, 0.999], window: 2h, hop: 20m}
          - {name: pct_life, kind: percentile, field: x, relative_accuracy: 0.05}
          - {name: fst, kind: first, field: m, window: 1h, hop: 10m}
          - {name: lst, kind: last, field: m, window: 1h, hop: 10m}
          - {name: fst_life, kind: first, field: x}
          - {name: lst_life, kind: last, field: m}
          - {name: var, kind: variance, field: x, window: 2h, hop: 20m}
          - {name: sd, kind: stddev, field: x, window: 2h, hop: 20m}
          - {name: sd_life, kind: stddev, field: x}
          - {name: cb, kind: count_by, field: m, top: 3, max_values: 3, window: 1h, hop: 10m}
          - {name: cb_life, kind: count_by, field: m, top: 5, max_values: 4}
          - {name: since, kind: time_since, where: m == "m1"}
          - {name: n_life, kind: count}
          - {name: s_life, kind: sum, field: x}
          - {name: avg_life, kind: avg, field: x}
          - {name: max_life, kind: max, field: x}
        """

    /// Events for `keys` keys: merchants from a small pool (some numbers,
    /// booleans, nulls, odd strings), amounts spread over magnitudes and signs.
    static func events(_ count: Int, keys: Int, seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        var clock = [Int64](repeating: 1_767_225_600_000, count: keys)
        let merchants = ["\"m1\"", "\"m2\"", "\"m3\"", "\"m4\"", "\"m5\"", "\"m6\"", "\"m7\"", "\"m8\"", "12", "12.0",
                         "-0", "1e21", "true", "null", "\"q\\\"x\"", "\"\\u00e9\"", "\"__other__\"", "{\"a\":1}"]
        let amounts = ["0", "-0", "1", "-1", "0.5", "100", "99.99", "-250.5", "1e-12", "3e15", "-7e20", "42", "\"7\"",
                       "1234.5678", "0.001", "1e300"]
        return (0..<count).map { i in
            let k = Int(rng.next() % UInt64(keys))
            clock[k] += Int64(rng.next() % 900_000) - 60_000
            var fields = ["\"user_id\":\"k\(k)\"", "\"ts\":\(clock[k])"]
            if rng.next() % 8 != 0 { fields.append("\"m\":\(merchants[Int(rng.next() % UInt64(merchants.count))])") }
            if rng.next() % 6 != 0 { fields.append("\"x\":\(amounts[Int(rng.next() % UInt64(amounts.count))])") }
            if i % 37 == 0 { fields.append("\"m\":\"m\(rng.next() % 200)\"") }
            return "{" + fields.joined(separator: ",") + "}"
        }
    }

    @Test("every key at many read times, byte for byte", arguments: [(1, 4_000, 60), (2, 6_000, 12)])
    func everyKey(seed: UInt64, count: Int, keys: Int) throws {
        let topology = try makeTopology(Self.features, name: "kinds")
        let reads = try compareEveryRead(topology, Self.events(count, keys: keys, seed: seed), keys: keys, seed: seed)
        #expect(reads > keys * 10)
    }

    /// Percentiles over windows of many tiles (the Function's summed-by-key
    /// path, more than four tiles) with values of one sign in a few decades:
    /// positive amounts, negative ones, and a field that mixes zero, both
    /// signs and tiny values (a key range too wide, so the sort path).
    @Test("many tiles of nearby values", arguments: [3 as UInt64, 4])
    func manyTiles(seed: UInt64) throws {
        let topology = try makeTopology("""
              - {name: amt, kind: percentile, field: a, quantiles: [0.001, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999], window: 6h, hop: 20m}
              - {name: neg, kind: percentile, field: b, quantiles: [0.1, 0.5, 0.9], window: 4h, hop: 15m, relative_accuracy: 0.05}
              - {name: mix, kind: percentile, field: c, quantiles: [0.5, 0.95], window: 3h, hop: 10m}
            """, name: "tiles")
        var rng = SplitMix64(seed: seed)
        let keys = 40
        var clock = [Int64](repeating: 1_767_225_600_000, count: keys)
        let mixed = ["0", "-0", "1e-9", "-3", "250", "1e12", "-1e12", "7"]
        let events: [String] = (0..<8_000).map { _ in
            let k = Int(rng.next() % UInt64(keys))
            clock[k] += Int64(rng.next() % 600_000)
            let cents = 50 + Int(rng.next() % 500_000)          // 0.50 ... 5000.49
            let a = k % 5 == 0 ? "\(cents / 100)" : "\(cents / 100).\(cents % 100)"
            let b = -Int(1 + rng.next() % 900)
            let c = mixed[Int(rng.next() % UInt64(mixed.count))]
            return "{\"user_id\":\"k\(k)\",\"ts\":\(clock[k]),\"a\":\(a),\"b\":\(b),\"c\":\(c)}"
        }
        let reads = try compareEveryRead(topology, events, keys: keys, seed: seed)
        #expect(reads > keys * 10)
    }

    /// Stores every key's state, reads each at many times through the
    /// Function and compares each reply with the engine's read; returns the
    /// number of reads.
    private func compareEveryRead(_ topology: Topology, _ events: [String], keys: Int, seed: UInt64) throws -> Int {
        let e = engine(topology, events)
        let all = entities(of: e)
        #expect(all.count == keys)
        let library = FunctionLibrary(topology: topology)
        var total = 0
        try withRedis { _, redis throws in
            try library.install(on: redis)
            try store(all, topology: topology, on: redis)
            var rng = SplitMix64(seed: seed)
            var reads: [(Entity, Int64)] = []
            for entity in all {
                for t in readTimes(for: entity, e, rng: &rng) { reads.append((entity, t)) }
            }
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
                guard case .bulk(let actual) = reply, actual == expected else {
                    failures += 1
                    if failures <= 3 {
                        let text: String = { if case .bulk(let b) = reply { return String(decoding: b, as: UTF8.self) }; return "\(reply)" }()
                        Issue.record("""
                            key \(String(decoding: entity.key, as: UTF8.self)) at T=\(t):
                              redis:  \(text)
                              engine: \(String(decoding: expected, as: UTF8.self))
                            """)
                    }
                    continue
                }
            }
            #expect(failures == 0, "\(failures) of \(reads.count) reads differ")
            total = reads.count
        }
        return total
    }

    /// HyperLogLog with every tile in registers and many members: the
    /// large-range estimate (no zero register) as well as the corrected one.
    @Test func registersWithManyMembers() throws {
        let topology = try makeTopology("""
              - {name: d4, kind: distinct_count, field: m, precision: 4, exact_limit: 2}
              - {name: d12, kind: distinct_count, field: m, window: 1h, hop: 30m}
            """, name: "hll")
        var events: [String] = []
        for i in 0..<3_000 { events.append("{\"user_id\":\"u\",\"ts\":\(i * 1_000),\"m\":\"v\(i * 7 % 2_500)\"}") }
        let e = engine(topology, events)
        let all = entities(of: e)
        let library = FunctionLibrary(topology: topology)
        try withRedis { _, redis throws in
            try library.install(on: redis)
            try store(all, topology: topology, on: redis)
            for t: Int64 in [0, 1_000_000, 2_999_000, 3_600_000, 5_000_000] {
                try redis.appendFcall(library.functionName) { call in
                    call.keys.add(all[0].redisKey)
                    call.arguments.add(t)
                }
                let reply = try redis.pipeline(count: 1)[0]
                let expected = expectedObject(e, all[0], at: t)
                guard case .bulk(let actual) = reply else { Issue.record("reply \(reply)"); continue }
                #expect(String(decoding: actual, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
            }
        }
        // Near the truth: all 2,500 values in the window at T (p 12: 1.6% error).
        let value = JSONValue.parse(expectedObject(e, all[0], at: 2_999_000))?["d12"]?.double ?? 0
        #expect(abs(value - 2_500) < 250, "estimate \(value)")
    }

    /// Bucket counts of 2^26 and more (the Lua reader's exact-number limit
    /// for its sorted encoding) take its table of sums: a hand-made state
    /// with such counts reads as the engine reads it.
    @Test func hugeBucketCounts() throws {
        let topology = try makeTopology("""
              - {name: p, kind: percentile, field: x, quantiles: [0.1, 0.5, 0.9], window: 2m, hop: 1m}
            """, name: "huge")
        let e = engine(topology, ["{\"user_id\":\"u\",\"ts\":0,\"x\":1}", "{\"user_id\":\"u\",\"ts\":1,\"x\":-2}",
                                  "{\"user_id\":\"u\",\"ts\":60000,\"x\":1}", "{\"user_id\":\"u\",\"ts\":60001,\"x\":50}"])
        var entity = entities(of: e)[0]
        // Section: u32 payload, tiles `i64 start, u32 size`, `u32 buckets`,
        // then `i32 key, u32 count`. Tile 0 holds keys [-2 bucket, 1 bucket].
        let section = 2 + entity.key.count + 8
        let firstCount = section + 4 + 12 + 4 + 4
        entity.blob.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(70_000_000), toByteOffset: firstCount, as: UInt32.self) }
        let copy = FeatureEngine(topology: topology)
        try withRedis { _, redis throws in
            let library = FunctionLibrary(topology: topology)
            try library.install(on: redis)
            try store([entity], topology: topology, on: redis)
            for t: Int64 in [0, 60_000, 120_000] {
                try redis.appendFcall(library.functionName) { call in
                    call.keys.add(entity.redisKey)
                    call.arguments.add(t)
                }
                guard case .bulk(let actual) = try redis.pipeline(count: 1)[0] else { Issue.record("no reply"); continue }
                var w = JSONWriter()
                w.raw("{\"key\":\"u\",\"key_time\":60001,")
                entity.blob.withUnsafeBytes { copy.writeFeatures(blob: $0.baseAddress!, at: t, into: &w) }
                w.raw(UInt8(ascii: "}"))
                #expect(String(decoding: actual, as: UTF8.self) == String(decoding: w.bytes, as: UTF8.self))
                if t == 60_000 { #expect(String(decoding: actual, as: UTF8.self).contains("\"p_p90\":-1.99366")) }
            }
        }
    }
}
