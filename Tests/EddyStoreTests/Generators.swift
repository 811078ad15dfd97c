import EddyReplay
/// Seeded random events for the example topologies: several keys with
/// their own clocks, gaps from seconds to days, out-of-order and late
/// events, missing fields, and values of every JSON type (strings that need
/// escaping included) for the `last_n` features.
enum Generators {
    static let base: Int64 = 1_714_521_600_000  // 2024-05-01T00:00:00Z

    /// Keys as JSON string texts; the first few need escaping or are UTF-8.
    static func keys(_ prefix: String, _ n: Int) -> [String] {
        ["\"q\\\"uote\"", "\"\u{00FC}-\u{00DF}\"", "\"back\\\\slash\"", "\"sp ace\""]
            + (0..<(n - 4)).map { "\"\(prefix)\($0)\"" }
    }

    /// Values of every JSON type, as JSON texts.
    static let oddValues = [
        "\"i\\\"q\"", "\"tab\\there\"", "\"ctl\\u0001x\"", "\"\u{00E9}\u{2603}\"", "\"back\\\\slash\"", "42",
        "-1.5e3", "true", "false", "null", "{\"a\":[1,2]}", "[1,\"x\"]", "\"\"", "12345678901234567890",
    ]

    /// Per-key clocks: mostly small steps, sometimes hours or days; with
    /// probability `jitter`, an event goes back up to `back` ms (some late).
    struct Clocks {
        var now: [Int64]
        init(keys: Int, rng: inout SplitMix64) {
            now = (0..<keys).map { _ in Generators.base + Int64.random(in: 0..<86_400_000, using: &rng) }
        }
        mutating func next(_ key: Int, steps: [(weight: Int, range: ClosedRange<Int64>)], jitter: Double,
                           back: Int64, rng: inout SplitMix64) -> Int64 {
            var r = Int.random(in: 0..<steps.reduce(0) { $0 + $1.weight }, using: &rng)
            var step = steps[0].range
            for s in steps {
                if r < s.weight { step = s.range; break }
                r -= s.weight
            }
            now[key] += Int64.random(in: step, using: &rng)
            if Double.random(in: 0..<1, using: &rng) < jitter {
                return now[key] - Int64.random(in: 0...back, using: &rng)
            }
            return now[key]
        }
    }

    /// A key index skewed towards the first keys (a few hot entities).
    static func pick(_ n: Int, rng: inout SplitMix64) -> Int {
        Bool.random(using: &rng) ? Int.random(in: 0..<min(n, 10), using: &rng) : Int.random(in: 0..<n, using: &rng)
    }

    /// A money-like amount, sometimes tiny, large or with awkward binary fractions.
    static func amount(_ rng: inout SplitMix64) -> String {
        switch Int.random(in: 0..<20, using: &rng) {
        case 0: return ["0.1", "0.2", "0.3", "1e-7", "123456789.123", "1000000000000000.5", "3.3333333333333335",
                        "-0.0", "2.5e-300"].randomElement(using: &rng)!
        case 1..<12: return "\(Double(Int.random(in: 1...20_000, using: &rng)) / 100)"
        default: return "\(Double(Int.random(in: 20_000...200_000, using: &rng)) / 100)"
        }
    }

    static func clickstream(events: Int, keys n: Int, seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        let keys = keys("u", n)
        var clocks = Clocks(keys: n, rng: &rng)
        let steps: [(weight: Int, range: ClosedRange<Int64>)] = [
            (70, 1_000...120_000), (20, 120_000...2_400_000), (8, 3_600_000...21_600_000), (2, 86_400_000...259_200_000),
        ]
        return (0..<events).map { _ in
            let k = pick(n, rng: &rng)
            let ts = clocks.next(k, steps: steps, jitter: 0.1, back: 480_000, rng: &rng)
            var fields = ["\"user_id\":\(keys[k])", "\"ts\":\(ts)"]
            let event = ["view", "view", "view", "click", "click", "purchase", "scroll"].randomElement(using: &rng)!
            if Int.random(in: 0..<20, using: &rng) > 0 { fields.append("\"event\":\"\(event)\"") }
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: fields.append("\"item_id\":\(oddValues.randomElement(using: &rng)!)")
            case 1: break
            default: fields.append("\"item_id\":\"i\(Int.random(in: 0..<40, using: &rng))\"")
            }
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: fields.append("\"price\":\"12\"")
            case 1: break
            default: fields.append("\"price\":\(amount(&rng))")
            }
            return "{" + fields.shuffled(using: &rng).joined(separator: ",") + "}"
        }
    }

    static func payments(events: Int, keys n: Int, seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        let keys = keys("c", n)
        var clocks = Clocks(keys: n, rng: &rng)
        let steps: [(weight: Int, range: ClosedRange<Int64>)] = [
            (50, 5_000...600_000), (30, 600_000...10_800_000), (15, 10_800_000...172_800_000),
            (5, 172_800_000...691_200_000),
        ]
        let countries = ["\"DE\"", "\"FR\"", "\"NL\"", "\"US\"", "\"GB\"", "\"BR\"", "\"JP\"", "\"X\\\"Y\"", "7"]
        return (0..<events).map { _ in
            let k = pick(n, rng: &rng)
            let ts = clocks.next(k, steps: steps, jitter: 0.1, back: 240_000, rng: &rng)
            let offset = [0, 0, 120, -300].randomElement(using: &rng)!
            var fields = ["\"card\":{\"id\":\(keys[k])}", "\"created_at\":\"\(rfc3339(ts, offsetMinutes: offset))\""]
            if Int.random(in: 0..<20, using: &rng) > 0 { fields.append("\"amount\":\(amount(&rng))") }
            let status = ["approved", "approved", "approved", "approved", "declined", "blocked", "pending"]
                .randomElement(using: &rng)!
            if Int.random(in: 0..<20, using: &rng) > 0 { fields.append("\"status\":\"\(status)\"") }
            if Int.random(in: 0..<15, using: &rng) > 0 {
                fields.append("\"merchant\":{\"country\":\(countries.randomElement(using: &rng)!),\"mcc\":5411}")
            }
            return "{" + fields.shuffled(using: &rng).joined(separator: ",") + "}"
        }
    }

    static func engagement(events: Int, keys n: Int, seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        let keys = keys("v", n)
        var clocks = Clocks(keys: n, rng: &rng)
        let steps: [(weight: Int, range: ClosedRange<Int64>)] = [
            (60, 1_000...300_000), (25, 300_000...3_600_000), (10, 3_600_000...43_200_000),
            (5, 86_400_000...259_200_000),
        ]
        return (0..<events).map { _ in
            let k = pick(n, rng: &rng)
            let seconds = clocks.next(k, steps: steps, jitter: 0.1, back: 900_000, rng: &rng) / 1000
            var fields = ["\"viewer_id\":\(keys[k])", "\"ts\":\(seconds)"]
            let action = ["watch", "watch", "watch", "like", "skip", "share"].randomElement(using: &rng)!
            fields.append("\"action\":\"\(action)\"")
            if Int.random(in: 0..<10, using: &rng) > 0 {
                fields.append("\"watched_s\":\(Double(Int.random(in: 0...36_000, using: &rng)) / 10)")
            }
            if Int.random(in: 0..<10, using: &rng) > 0 {
                fields.append("\"completion\":\(Double(Int.random(in: -200...1_000, using: &rng)) / 1000)")
            }
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: fields.append("\"creator_id\":\(oddValues.randomElement(using: &rng)!)")
            case 1: break
            default: fields.append("\"creator_id\":\"cr\(Int.random(in: 0..<30, using: &rng))\"")
            }
            return "{" + fields.shuffled(using: &rng).joined(separator: ",") + "}"
        }
    }

    /// `ms` as RFC 3339 with millisecond fraction, in a zone `offsetMinutes` east of UTC.
    static func rfc3339(_ ms: Int64, offsetMinutes: Int) -> String {
        let local = ms + Int64(offsetMinutes) * 60_000
        let days = floorDiv(local, 86_400_000)
        let inDay = local - days * 86_400_000
        let (y, m, d) = civil(fromDays: days)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let millis = inDay % 1000
        let frac = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        let zone: String
        if offsetMinutes == 0 {
            zone = "Z"
        } else {
            let a = Int64(abs(offsetMinutes))
            zone = (offsetMinutes < 0 ? "-" : "+") + two(a / 60) + ":" + two(a % 60)
        }
        return "\(y)-\(two(m))-\(two(d))T\(two(inDay / 3_600_000)):\(two(inDay / 60_000 % 60)):"
            + "\(two(inDay / 1000 % 60)).\(frac)\(zone)"
    }

    /// Howard Hinnant's `civil_from_days`.
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
