import CXXHash
import EddyCore
import EddyReplay
import Foundation
import PropertyBased
import Testing

/// A deliberately naive model of the "More aggregations": keep every
/// accepted event and compute each value from its definition at read time.
struct NaiveKindsModel {
    struct Event { var ts: Int64; var tag: String; var value: String?; var x: Double?; var arrival: Int }
    var events: [String: [Event]] = [:]
    var keyTime: [String: Int64] = [:]
    let lateness: Int64 = 30

    mutating func add(key: String, _ e: Event) -> Bool {
        if let k = keyTime[key], e.ts < k - lateness { return false }
        keyTime[key] = max(keyTime[key] ?? e.ts, e.ts)
        events[key, default: []].append(e)
        return true
    }

    static func tileStart(_ ts: Int64, _ h: Int64) -> Int64 { (ts >= 0 ? ts / h : (ts - h + 1) / h) * h }

    /// Events with ts in [floor(T/H)*H + H - W, floor(T/H)*H + H); all when w is 0.
    static func window(_ es: [Event], t: Int64, w: Int64, h: Int64) -> [Event] {
        guard w > 0 else { return es }
        let base = tileStart(t, h)
        return es.filter { $0.ts >= base + h - w && $0.ts < base + h }
    }

    static func xxh64(_ s: String) -> UInt64 { Array(s.utf8).withUnsafeBytes { XXH64($0.baseAddress, $0.count, 0) } }

    /// distinct_count, p 5: exact when no tile of the window has more than
    /// `limit` distinct texts; else HyperLogLog of every text in the window.
    static func distinct(_ es: [Event], h: Int64, lifetime: Bool, limit: Int) -> Int64 {
        let texts = es.compactMap(\.value)
        let tiles = Dictionary(grouping: es.filter { $0.value != nil }) { lifetime ? 0 : tileStart($0.ts, h) }
        if tiles.values.allSatisfy({ Set($0.compactMap(\.value)).count <= limit }) { return Int64(Set(texts).count) }
        let p = 5, m = 32
        var regs = [Int](repeating: 0, count: m)
        for text in texts {
            let hash = xxh64(text)
            let j = Int(hash >> 59)
            var rho = 1
            var bit = 58
            while bit >= 0, hash & (1 << UInt64(bit)) == 0 { rho += 1; bit -= 1 }
            regs[j] = max(regs[j], min(rho, 64 - p + 1))
        }
        let sum = regs.reduce(0.0) { $0 + pow(2.0, Double(-$1)) }
        let zeros = regs.filter { $0 == 0 }.count
        var e = 0.7213 / (1 + 1.079 / Double(m)) * Double(m) * Double(m) / sum
        if e <= 2.5 * Double(m), zeros > 0 { e = Double(m) * log(Double(m) / Double(zeros)) }
        return Int64((e + 0.5).rounded(.down))
    }

    /// percentile, a 0.02: the bucket of the value at rank floor(q(n-1)) of the sorted values.
    static func percentile(_ es: [Event], q: Double) -> Double? {
        let xs = es.compactMap(\.x).sorted()
        guard !xs.isEmpty else { return nil }
        let x = xs[Int((q * Double(xs.count - 1)).rounded(.down))]
        let a = 0.02, g = (1 + a) / (1 - a)
        let mag = min(abs(x), 1e15)
        if mag < 1e-9 { return 0 }
        let i = (log(mag) / log(g)).rounded(.up)
        let v = 2 * pow(g, i) / (g + 1)
        return x < 0 ? -v : v
    }

    /// count_by, max 2 per tile, top 3.
    static func countBy(_ es: [Event], h: Int64, lifetime: Bool) -> String {
        var counts: [String: Int64] = [:]
        var tiles: [Int64: [String]] = [:]
        for e in es {
            guard let v = e.value else { continue }
            let s = lifetime ? 0 : tileStart(e.ts, h)
            var known = tiles[s, default: []]
            if !known.contains(v) && known.count < 2 { known.append(v) }
            tiles[s] = known
            counts[known.contains(v) ? v : "__other__", default: 0] += 1
        }
        let top = counts.sorted { a, b in a.value != b.value ? a.value > b.value : Array(a.key.utf8).lexicographicallyPrecedes(Array(b.key.utf8)) }.prefix(3)
        return "{" + top.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
    }

    /// Expected column values (JSON texts), and the variance columns as doubles.
    func features(_ key: String, at t: Int64) -> (texts: [String: String], moments: [String: Double?]) {
        let es = events[key] ?? []
        var out: [String: String] = [:]
        func num(_ v: Double?) -> String { v.map(formatNumber) ?? "null" }
        let w1 = Self.window(es, t: t, w: 40, h: 10)
        out["dc"] = String(Self.distinct(w1, h: 10, lifetime: false, limit: 2))
        out["dc_life"] = String(Self.distinct(es, h: 0, lifetime: true, limit: 4))
        let w2 = Self.window(es, t: t, w: 60, h: 20)
        out["p_p50"] = num(Self.percentile(w2, q: 0.5))
        out["p_p90"] = num(Self.percentile(w2, q: 0.9))
        out["pl_p10"] = num(Self.percentile(es, q: 0.1))
        let valued = w1.filter { $0.value != nil }
        func text(_ e: Event?) -> String {
            guard let e, let v = e.value else { return "null" }
            return e.tag == "s" ? "\"\(v)\"" : v
        }
        out["f"] = text(valued.min { ($0.ts, $0.arrival) < ($1.ts, $1.arrival) })
        out["l"] = text(valued.max { ($0.ts, $0.arrival) < ($1.ts, $1.arrival) })
        out["cb"] = Self.countBy(w1, h: 10, lifetime: false)
        out["cb_life"] = Self.countBy(es, h: 0, lifetime: true)
        let since = es.filter { $0.tag == "s" }.map(\.ts).max()
        out["since"] = since.map { String(t - $0) } ?? "null"
        var moments: [String: Double?] = [:]
        func variance(_ xs: [Double]) -> Double? {
            guard !xs.isEmpty else { return nil }
            let mean = xs.reduce(0, +) / Double(xs.count)
            return xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count)
        }
        moments["v"] = variance(w2.compactMap(\.x))
        moments["sd_life"] = variance(es.compactMap(\.x)).map { $0.squareRoot() }
        return (out, moments)
    }
}

@Suite struct MoreKindsPropertyTests {
    static let body = """
          - {name: dc, kind: distinct_count, field: v, window: 40ms, hop: 10ms, precision: 5, exact_limit: 2}
          - {name: dc_life, kind: distinct_count, field: v, precision: 5, exact_limit: 4}
          - {name: p, kind: percentile, field: x, quantiles: [0.5, 0.9], relative_accuracy: 0.02, window: 60ms, hop: 20ms}
          - {name: pl, kind: percentile, field: x, quantiles: [0.1], relative_accuracy: 0.02}
          - {name: f, kind: first, field: v, window: 40ms, hop: 10ms}
          - {name: l, kind: last, field: v, window: 40ms, hop: 10ms}
          - {name: v, kind: variance, field: x, window: 60ms, hop: 20ms}
          - {name: sd_life, kind: stddev, field: x}
          - {name: cb, kind: count_by, field: v, top: 3, max_values: 2, window: 40ms, hop: 10ms}
          - {name: cb_life, kind: count_by, field: v, top: 3, max_values: 2}
          - {name: since, kind: time_since, where: tag == "s"}
        """

    @Test func newKindsMatchNaiveModel() async throws {
        let topology = try makeTopology(Self.body, lateness: "30ms")
        await propertyCheck(count: 200, input: Gen.int(in: 0...Int(Int32.max))) { seed in
            var rng = SplitMix64(seed: UInt64(seed))
            let engine = FeatureEngine(topology: topology, expectedKeys: 4)
            var model = NaiveKindsModel()
            var clock: Int64 = Int64(rng.next() % 200) - 100
            let values = ["a", "b", "c", "d", "e", "f", "g", "h"]
            let xs = ["0", "-3", "1.5", "7", "12", "100", "-0.25", "1e-12", "250", "3e16"]
            for i in 0..<(Int(rng.next() % 150) + 1) {
                clock += Int64(rng.next() % 12)
                let ts = clock - Int64(rng.next() % 40)
                let key = "k\(rng.next() % 3)"
                let isNumber = rng.next() % 4 == 0
                let value: String? = rng.next() % 6 == 0 ? nil : (isNumber ? String(rng.next() % 5) : values[Int(rng.next() % 8)])
                let tag = value == nil ? "-" : (isNumber ? "n" : "s")
                let xText: String? = rng.next() % 5 == 0 ? nil : xs[Int(rng.next() % UInt64(xs.count))]
                var json = "{\"user_id\":\"\(key)\",\"ts\":\(ts),\"tag\":\"\(tag)\""
                if let value { json += isNumber ? ",\"v\":\(value)" : ",\"v\":\"\(value)\"" }
                if let xText { json += ",\"x\":\(xText)" }
                json += "}"
                _ = model.add(key: key, .init(ts: ts, tag: tag, value: value, x: xText.flatMap(Double.init), arrival: i))
                feed(engine, [json])
            }
            for k in 0..<3 {
                let key = "k\(k)"
                guard let kt = model.keyTime[key] else { continue }
                for t in [kt, kt + 5, kt + 20, kt + 45, kt + 70] {
                    let (texts, moments) = model.features(key, at: t)
                    let engineText = "{" + readText(engine, key, at: t) + "}"
                    let parsed = (try? JSONSerialization.jsonObject(with: Data(engineText.utf8))) as? [String: Any] ?? [:]
                    for (column, expected) in texts {
                        guard let r = engineText.range(of: "\"\(column)\":") else { Issue.record("no \(column)"); continue }
                        let rest = engineText[r.upperBound...]
                        let got = expected.hasPrefix("{") ? String(rest.prefix { $0 != "}" }) + "}" : String(rest.prefix { $0 != "," && $0 != "}" })
                        #expect(got == expected, "\(column) of \(key) at \(t), seed \(seed)")
                    }
                    for (column, expected) in moments {
                        let got = parsed[column]
                        if let expected {
                            let v = (got as? NSNumber)?.doubleValue ?? .nan
                            #expect(abs(v - expected) <= 1e-9 * max(1, abs(expected)), "\(column) of \(key) at \(t): \(v) vs \(expected), seed \(seed)")
                        } else {
                            #expect(got is NSNull, "\(column) of \(key) at \(t), seed \(seed)")
                        }
                    }
                }
            }
        }
    }
}
