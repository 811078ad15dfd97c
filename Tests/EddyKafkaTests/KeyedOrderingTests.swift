import EddyDevKit
import EddyKafka
import Testing

@Suite struct KeyedOrderingTests {
    @Test func tenThousandKeyedMessagesArriveOnceInOrderPerKey() async throws {
        let cluster = try MockCluster(topics: [(name: "orders", partitions: 4)])
        let (stats, result) = try await onThread { () throws -> (DeliveryStats, [Record]) in
            let producer = try KafkaProducer(config: producerConfig(cluster))
            try produceKeyed(producer, topic: "orders", count: 10_000, keys: 100)

            let consumer = try KafkaConsumer(config: groupConfig(cluster, group: "ordering"), topics: ["orders"])
            var records: [Record] = []
            try pollUntil([consumer], what: "10,000 records", { _, event in
                if case .message(let view) = event { records.append(Record(view)) }
            }, done: { records.count >= 10_000 })
            // A short extra poll must not produce duplicates.
            try consumer.poll(timeoutMs: 200) { event in
                if case .message(let view) = event { records.append(Record(view)) }
            }
            try consumer.close()
            return (producer.stats, records)
        }
        #expect(stats.delivered == 10_000)
        #expect(stats.failed == 0)
        #expect(result.count == 10_000)
        #expect(Set(result.map { "\($0.partition)@\($0.offset)" }).count == 10_000, "duplicate offsets")

        let byKey = Dictionary(grouping: result, by: \.key)
        #expect(byKey.count == 100)
        for (key, records) in byKey {
            #expect(Set(records.map(\.partition)).count == 1, "key \(key) spread over partitions")
            let sequence = records.map { Int($0.value.split(separator: ":")[1])! }
            #expect(sequence == Array(0..<100), "key \(key) out of order or incomplete")
        }
        // 100 keys over 4 partitions: every partition should get some.
        #expect(Set(result.map(\.partition)).count == 4)
    }
}
