import EddyCore
import EddyRedis
import EddyReplay
import EddyStore
import Testing

/// The Function library reads exactly what the engine reads: for every key
/// of a few thousand random events and many read times, the FCALL reply and
/// `FeatureEngine.writeFeatures` parse to the same JSON, column by column.
@Suite("Function library matches FeatureEngine")
struct EquivalenceTests {
    static let cases: [(topology: String, events: @Sendable () -> [String])] = [
        ("clickstream", { Generators.clickstream(events: 4_000, keys: 120, seed: 1) }),
        ("payments", { Generators.payments(events: 3_000, keys: 100, seed: 2) }),
        ("engagement", { Generators.engagement(events: 3_000, keys: 100, seed: 3) }),
    ]

    @Test("every key at T = K, in windows, on hop boundaries, session edges, far before and after",
          arguments: 0..<3)
    func everyKeyManyTimes(_ index: Int) throws {
        let topology = try exampleTopology(Self.cases[index].topology)
        let e = engine(topology, Self.cases[index].events())
        let all = entities(of: e)
        #expect(all.count > 50)
        let library = FunctionLibrary(topology: topology)
        try withRedis { _, redis throws in
            try library.install(on: redis)
            try store(all, topology: topology, on: redis)
            var rng = SplitMix64(seed: 99)
            var reads: [(Entity, Int64)] = []
            for entity in all {
                for t in readTimes(for: entity, e, rng: &rng) { reads.append((entity, t)) }
            }
            let n = try compareReads(e, library, on: redis, reads)
            #expect(n > all.count * 10)
        }
    }

    @Test("FeatureClient reads every key at shared read times", arguments: 0..<3)
    func clientReads(_ index: Int) throws {
        let topology = try exampleTopology(Self.cases[index].topology)
        let e = engine(topology, Self.cases[index].events())
        let all = entities(of: e)
        let keyTimes = all.compactMap(\.keyTime).sorted()
        try withRedis { _, redis throws in
            try store(all, topology: topology, on: redis)
            let client = FeatureClient(connection: redis, topology: topology)
            let keys = all.map { String(decoding: $0.key, as: UTF8.self) }
            for t in [keyTimes[keyTimes.count / 2], keyTimes.last!, keyTimes.last! + 3_600_000] {
                let replies = try client.features(keys: keys, at: t)
                #expect(replies.count == all.count)
                for (entity, reply) in zip(all, replies) {
                    let expected = JSONValue.parse(expectedObject(e, entity, at: t))
                    #expect(reply.flatMap(JSONValue.parse) == expected, "key \(String(decoding: entity.key, as: UTF8.self)) at \(t)")
                }
            }
        }
    }
}
