import EddyReplay

/// Reproducible card transactions for `Topologies/fraud.yaml`, about 110
/// bytes each: a card, an amount (log-spread cents), a merchant from a pool
/// (a few per card are favourites), a status (8% declined, with a reason),
/// spread over a day a little out of order.
public struct CardGenerator: Sendable {
    public var cards: Int
    var rng: SplitMix64
    var clock: Int64
    public private(set) var produced = 0
    static let reasons: [StaticString] = ["insufficient_funds", "suspected_fraud", "expired_card", "do_not_honor", "limit"]

    public init(seed: UInt64 = 42, cards: Int = 100_000, startMs: Int64 = 1_767_225_600_000) {
        self.cards = cards
        self.rng = SplitMix64(seed: seed)
        self.clock = startMs
    }

    @discardableResult
    public mutating func next(into out: inout [UInt8], stepMs: Int64 = 86) -> (card: Int, ts: Int64) {
        produced += 1
        clock += Int64(rng.next() % UInt64(2 * stepMs + 1))
        let card = Int(rng.next() % UInt64(cards))
        let ts = clock - Int64(rng.next() % 3000)
        // Amounts from 0.50 to ~5000, most below 100.
        let magnitude = rng.next() % 4
        let cents = Int(rng.next() % ([1_000, 10_000, 100_000, 500_000][Int(magnitude)])) + 50
        // Half the transactions at one of the card's 4 usual merchants.
        let merchant = rng.next() % 2 == 0 ? (card * 7 + Int(rng.next() % 4)) % 20_000 : Int(rng.next() % 20_000)
        let declined = rng.next() % 100 < 8
        append(&out, "{\"card_id\":\"c")
        appendPadded(&out, card, width: 7)
        append(&out, "\",\"ts\":")
        appendPadded(&out, Int(ts), width: 1)
        append(&out, ",\"amount\":")
        appendPadded(&out, cents / 100, width: 1)
        out.append(UInt8(ascii: "."))
        appendPadded(&out, cents % 100, width: 2)
        append(&out, ",\"merchant_id\":\"m")
        appendPadded(&out, merchant, width: 5)
        if declined {
            append(&out, "\",\"status\":\"declined\",\"reason\":\"")
            append(&out, Self.reasons[Int(rng.next() % UInt64(Self.reasons.count))])
            append(&out, "\"}")
        } else {
            append(&out, "\",\"status\":\"approved\"}")
        }
        return (card, ts)
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
