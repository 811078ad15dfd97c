import EddyCore
import EddyReplay
import Foundation
import PropertyBased
import Testing

/// A deliberately naive model of SEMANTICS.md: keep every accepted event and
/// compute each feature from its definition at read time.
struct NaiveModel {
    struct Event { var ts: Int64; var kind: String; var item: String?; var price: Int?; var arrival: Int }
    var events: [String: [Event]] = [:]
    var keyTime: [String: Int64] = [:]
    let lateness: Int64
    var arrival = 0

    /// Returns false when the event is late.
    mutating func add(key: String, _ e: Event) -> Bool {
        if let k = keyTime[key], e.ts < k - lateness { return false }
        keyTime[key] = max(keyTime[key] ?? e.ts, e.ts)
        events[key, default: []].append(e)
        return true
    }

    func features(_ key: String, at t: Int64) -> String {
        let es = events[key] ?? []
        var w = JSONWriter()
        // last_items: n 3 of views; uniq_items: n 3 distinct of all.
        let byRecency = es.sorted { ($0.ts, $0.arrival) > ($1.ts, $1.arrival) }
        let views = byRecency.filter { $0.kind == "view" && $0.item != nil }.prefix(3).map { $0.item! }
        var seen = Set<String>()
        let uniq = byRecency.compactMap(\.item).filter { seen.insert($0).inserted }.prefix(3)
        w.raw("\"last_items\":["); w.raw(Array(views.map { "\"\($0)\"" }.joined(separator: ",").utf8)); w.raw("],")
        w.raw("\"uniq_items\":["); w.raw(Array(uniq.map { "\"\($0)\"" }.joined(separator: ",").utf8)); w.raw("],")
        // session, gap 50: the procedural rule over arrival order.
        var s: (start: Int64, last: Int64, n: Int64)?
        for e in es {
            if s == nil || e.ts > s!.last + 50 { s = (e.ts, e.ts, 1) }
            else if e.ts < s!.start - 50 { continue }
            else { s = (min(s!.start, e.ts), max(s!.last, e.ts), s!.n + 1) }
        }
        if let s {
            w.raw("\"s_start\":"); w.int(s.start); w.raw(",\"s_last\":"); w.int(s.last)
            w.raw(",\"s_events\":"); w.int(s.n); w.raw(",\"s_duration_ms\":"); w.int(s.last - s.start)
            w.raw(",\"s_active\":"); w.bool(t - s.last <= 50)
        } else {
            w.raw("\"s_start\":null,\"s_last\":null,\"s_events\":0,\"s_duration_ms\":null,\"s_active\":false")
        }
        // Windows: events with ts in [floor(T/H)*H + H - W, floor(T/H)*H + H).
        func inWindow(_ e: Event, w: Int64, h: Int64) -> Bool {
            let base = (t >= 0 ? t / h : (t - h + 1) / h) * h
            return e.ts >= base + h - w && e.ts < base + h
        }
        let clicks = es.filter { $0.kind == "click" && inWindow($0, w: 120, h: 10) }.count
        w.raw(",\"clicks\":"); w.int(Int64(clicks))
        let priced = es.filter { $0.price != nil && inWindow($0, w: 60, h: 20) }.map { Double($0.price!) }
        w.raw(",\"spend\":"); w.double(priced.reduce(0, +))
        let p100 = es.filter { $0.price != nil && inWindow($0, w: 100, h: 25) }.map { Double($0.price!) }
        w.raw(",\"lo\":"); if let m = p100.min() { w.double(m) } else { w.null() }
        w.raw(",\"hi\":"); if let m = p100.max() { w.double(m) } else { w.null() }
        w.raw(",\"mean\":"); if p100.isEmpty { w.null() } else { w.double(p100.reduce(0, +) / Double(p100.count)) }
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

@Suite struct PropertyTests {
    static let topologyBody = """
          - {name: last_items, kind: last_n, field: item, n: 3, where: kind == "view"}
          - {name: uniq_items, kind: last_n, field: item, n: 3, distinct: true}
          - {name: s, kind: session, gap: 50ms}
          - {name: clicks, kind: count, window: 120ms, hop: 10ms, where: kind == "click"}
          - {name: spend, kind: sum, field: price, window: 60ms, hop: 20ms}
          - {name: lo, kind: min, field: price, window: 100ms, hop: 25ms}
          - {name: hi, kind: max, field: price, window: 100ms, hop: 25ms}
          - {name: mean, kind: avg, field: price, window: 100ms, hop: 25ms}
        """

    /// Random streams: a few keys, jittered and sometimes late timestamps,
    /// colliding values, integer prices (so sums are exact in any order).
    @Test func operatorsMatchNaiveModel() async throws {
        let topology = try makeTopology(Self.topologyBody, lateness: "30ms")
        await propertyCheck(count: 300, input: Gen.int(in: 0...Int(Int32.max))) { seed in
            var rng = SplitMix64(seed: UInt64(seed))
            let engine = FeatureEngine(topology: topology, expectedKeys: 4)
            var model = NaiveModel(lateness: 30)
            var clock: Int64 = Int64(rng.next() % 200) - 100
            let count = Int(rng.next() % 120) + 1
            for i in 0..<count {
                clock += Int64(rng.next() % 25)
                let ts = clock - Int64(rng.next() % 45)
                let key = "k\(rng.next() % 3)"
                let kind = ["view", "click", "buy"][Int(rng.next() % 3)]
                let item: String? = rng.next() % 5 == 0 ? nil : "i\(rng.next() % 6)"
                let price: Int? = kind == "buy" ? Int(rng.next() % 50) - 10 : nil
                var json = "{\"user_id\":\"\(key)\",\"ts\":\(ts),\"kind\":\"\(kind)\""
                if let item { json += ",\"item\":\"\(item)\"" }
                if let price { json += ",\"price\":\(price)" }
                json += "}"
                // Point-in-time: the row read before applying equals the model before adding.
                let before = model.features(key, at: ts)
                let late = !model.add(key: key, .init(ts: ts, kind: kind, item: item, price: price, arrival: i))
                var bytes = Array(json.utf8)
                let rejected: Bool = bytes.withUnsafeMutableBytes { b in
                    guard engine.decode(UnsafeRawBufferPointer(b)) == nil else { return true }
                    let slot = engine.slotForCurrentKey(create: true)
                    if engine.isLate(slot, ts: ts) { return true }
                    var w = JSONWriter()
                    engine.writeFeatures(slot, at: ts, into: &w)
                    #expect(String(decoding: w.bytes, as: UTF8.self) == before, "row before event \(i), seed \(seed)")
                    engine.apply(slot)
                    return false
                }
                #expect(rejected == late, "lateness of event \(i), seed \(seed)")
            }
            for k in 0..<3 {
                let key = "k\(k)"
                guard let kt = model.keyTime[key] else { continue }
                for t in [kt, kt + 7, kt + 25, kt + 60, kt + 130] {
                    #expect(readText(engine, key, at: t) == model.features(key, at: t), "key \(key) at \(t), seed \(seed)")
                }
            }
        }
    }
}
