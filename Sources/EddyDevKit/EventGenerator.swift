import EddyReplay

/// Reproducible clickstream events for `Topologies/clickstream.yaml`, about
/// 100 bytes each: views (70%), clicks (20%) and purchases with a price
/// (10%), spread over a day, a little out of order, with a few late events.
/// Users and items are uniform, or drawn from a `RealisticPopulation`.
public struct ClickstreamGenerator: Sendable {
    public var users: Int
    public var startMs: Int64
    /// Average milliseconds between consecutive events.
    public var stepMs: Int64
    var rng: SplitMix64
    var clock: Int64
    public private(set) var population: RealisticPopulation?
    public private(set) var produced = 0

    public init(seed: UInt64 = 42, users: Int = 100_000, startMs: Int64 = 1_767_225_600_000, stepMs: Int64 = 86,
                population: RealisticPopulation.Parameters? = nil) {
        self.users = population?.users ?? users
        self.startMs = startMs
        self.stepMs = stepMs
        self.rng = SplitMix64(seed: seed)
        self.clock = startMs
        if let population { self.population = RealisticPopulation(population, rng: &rng) }
    }

    /// Appends the next event's JSON (no newline) to `out`, and returns its
    /// user id number and event time.
    @discardableResult
    public mutating func next(into out: inout [UInt8]) -> (user: Int, ts: Int64) {
        produced += 1
        clock += Int64(rng.next() % UInt64(2 * stepMs + 1))
        let user = population != nil ? population!.nextUser(&rng) : Int(rng.next() % UInt64(users))
        var ts = clock - Int64(rng.next() % 3000)  // up to 3 s out of order
        let roll = rng.next() % 1000
        if roll < 2 { ts -= 20 * 60_000 }  // 0.2% arrive 20 minutes late
        let kind = rng.next() % 10
        let event: StaticString = kind < 7 ? "view" : (kind < 9 ? "click" : "purchase")
        let item = population.map { $0.nextItem(&rng) } ?? Int(rng.next() % 50_000)
        append(&out, "{\"user_id\":\"u")
        appendPadded(&out, user, width: 7)
        append(&out, "\",\"ts\":")
        appendPadded(&out, Int(ts), width: 1)
        append(&out, ",\"event\":\"")
        append(&out, event)
        append(&out, "\",\"item_id\":\"i")
        appendPadded(&out, item, width: 6)
        append(&out, "\",\"page\":\"/p/")
        appendPadded(&out, item % 977, width: 3)
        if kind == 9 {
            append(&out, "\",\"price\":")
            let cents = Int(rng.next() % 20_000) + 99
            appendPadded(&out, cents / 100, width: 1)
            out.append(UInt8(ascii: "."))
            appendPadded(&out, cents % 100, width: 2)
            out.append(UInt8(ascii: "}"))
        } else {
            append(&out, "\"}")
        }
        return (user, ts)
    }

    private func append(_ out: inout [UInt8], _ s: StaticString) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    private func appendPadded(_ out: inout [UInt8], _ v: Int, width: Int) {
        var digits: [UInt8] = []
        var x = v
        repeat { digits.append(UInt8(48 + x % 10)); x /= 10 } while x > 0
        while digits.count < width { digits.append(48) }
        out.append(contentsOf: digits.reversed())
    }
}
