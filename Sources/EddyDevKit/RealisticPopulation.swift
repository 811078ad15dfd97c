import EddyReplay

#if canImport(Glibc)
import Glibc
#endif

/// Who acts next in a day of realistic traffic: most users come once or
/// twice, a few come all day, and items follow a popularity skew.
///
/// A Zipf draw over all users (the uniform generator's opposite) puts most
/// events on a few thousand users; real feature stores see the reverse,
/// most users a few times a day. So the population is built as sessions:
/// - every user gets `1 + floor(X)` sessions, X ~ Lomax(`sessionTail`,
///   `sessionScale`) capped at `maxSessionsPerUser` (a heavy tail: a small
///   shape means a few very active users);
/// - the list of all sessions is shuffled once, so each user's sessions fall
///   at random times of the day, and every user is seen once the list has
///   been walked (`eventsForEveryUser` events);
/// - `concurrentSessions` sessions are open at a time and events interleave
///   between them; a session has a geometric number of events with mean
///   `eventsPerSession`;
/// - items are `floor(items * u^itemSkew)`, u uniform: a few very popular
///   items, a long tail.
/// Seeded and reproducible: the same parameters and seed give the same
/// events. After the list is walked it is walked again from the start.
public struct RealisticPopulation: Sendable {
    public struct Parameters: Sendable, Equatable {
        public var users: Int
        public var sessionTail = 1.5
        public var sessionScale = 0.5
        public var maxSessionsPerUser = 10_000
        public var eventsPerSession = 2.0
        public var concurrentSessions = 512
        public var items = 1_000_000
        public var itemSkew = 3.0

        public init(users: Int) { self.users = users }
    }

    public let parameters: Parameters
    /// Every session's user, shuffled.
    private var sessionUsers: [UInt32]
    private var nextSession = 0
    private var openUser: [UInt32]
    private var openLeft: [Int32]

    public init(_ parameters: Parameters, rng: inout SplitMix64) {
        precondition(parameters.users > 0 && parameters.users <= Int(UInt32.max), "users must be in 1...\(UInt32.max)")
        self.parameters = parameters
        var sessions: [UInt32] = []
        sessions.reserveCapacity(parameters.users * 2)
        for user in 0..<parameters.users {
            let u = Self.unit(&rng)
            let extra = parameters.sessionScale * (pow(u, -1 / parameters.sessionTail) - 1)
            let count = 1 + min(Int(extra), parameters.maxSessionsPerUser - 1)
            for _ in 0..<count { sessions.append(UInt32(user)) }
        }
        var i = sessions.count - 1
        while i > 0 {  // Fisher–Yates with the seeded generator
            let j = Int(rng.next() % UInt64(i + 1))
            sessions.swapAt(i, j)
            i -= 1
        }
        sessionUsers = sessions
        openUser = Array(repeating: 0, count: max(1, parameters.concurrentSessions))
        openLeft = Array(repeating: 0, count: max(1, parameters.concurrentSessions))
    }

    /// Sessions in one walk of the list.
    public var sessions: Int { sessionUsers.count }

    /// Events after which every user has been seen, on average.
    public var eventsForEveryUser: Int { Int(Double(sessionUsers.count) * parameters.eventsPerSession) }

    /// The user of the next event: an open session, chosen at random, or a
    /// new one in its slot when that session has ended.
    public mutating func nextUser(_ rng: inout SplitMix64) -> Int {
        let slot = Int(rng.next() % UInt64(openUser.count))
        if openLeft[slot] <= 0 {
            openUser[slot] = sessionUsers[nextSession]
            nextSession += 1
            if nextSession == sessionUsers.count { nextSession = 0 }
            openLeft[slot] = Int32(clamping: Self.geometric(mean: parameters.eventsPerSession, &rng))
        }
        openLeft[slot] -= 1
        return Int(openUser[slot])
    }

    public func nextItem(_ rng: inout SplitMix64) -> Int {
        min(parameters.items - 1, Int(Double(parameters.items) * pow(Self.unit(&rng), parameters.itemSkew)))
    }

    /// Uniform in (0, 1].
    static func unit(_ rng: inout SplitMix64) -> Double {
        Double((rng.next() >> 11) + 1) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// At least 1, mean `mean`.
    static func geometric(mean: Double, _ rng: inout SplitMix64) -> Int {
        guard mean > 1 else { return 1 }
        let p = 1 / mean
        return 1 + Int(log(unit(&rng)) / log(1 - p))
    }
}
