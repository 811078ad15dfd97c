import EddyDevKit
@testable import EddyKafka
import Testing

/// `poll` reads a partition again from before a hole in its offsets (records
/// librdkafka skipped), and accepts a hole found twice at the same place
/// (transaction markers, compaction).
@Suite struct OffsetHoleTests {
    @Test func aHoleIsReadAgainFromTheExpectedOffset() async throws {
        let topic = "holes"
        let cluster = try MockCluster(topics: [(name: topic, partitions: 1)])
        let (offsets, gaps) = try await onThread { () throws -> ([Int64], Int) in
            let producer = try KafkaProducer(config: producerConfig(cluster))
            for i in 0..<400 { try producer.produce(topic: topic, partition: 0, key: nil, value: Array("v\(i)".utf8)) }
            try producer.flush(timeoutMs: 30_000)
            let consumer = try KafkaConsumer(config: ["bootstrap.servers": cluster.bootstrapServers, "fetch.wait.max.ms": "10"],
                                             topics: [], partitionEOF: true)
            let p = TopicPartition(topic: topic, partition: 0)
            try consumer.assign([TopicPartitionOffset(p, offset: 0)])
            var offsets: [Int64] = []
            var planted = false
            var eof = false
            let deadline = ContinuousClock.now + .seconds(30)
            while !eof, ContinuousClock.now < deadline {
                try consumer.poll(maxMessages: 50, timeoutMs: 100) { event in
                    switch event {
                    case .message(let m): offsets.append(m.offset)
                    case .partitionEOF: eof = offsets.count >= 400
                    case .error: break
                    }
                }
                if !planted, offsets.count >= 100 {
                    // As if records from 40 on had been skipped.
                    consumer.context.nextOffsets[p] = 40
                    planted = true
                }
            }
            let gaps = consumer.offsetGaps
            try consumer.close()
            return (offsets, gaps)
        }
        #expect(gaps == 1)
        let restart = offsets.indices.dropFirst().first { offsets[$0] <= offsets[$0 - 1] }
        #expect(restart.map { offsets[$0] } == 40, "read again from the expected offset")
        #expect(Set(offsets) == Set(0..<400))
        #expect(offsets.last == 399)
    }

    @Test func theSameHoleFoundTwiceIsReal() throws {
        let cluster = try MockCluster(topics: [(name: "real-holes", partitions: 1)])
        let consumer = try KafkaConsumer(config: ["bootstrap.servers": cluster.bootstrapServers], topics: [])
        consumer.registerTopics(["real-holes"])
        #expect(!consumer.isKnownHole(0, 0, at: 120), "first sight: read again")
        #expect(consumer.isKnownHole(0, 0, at: 120), "the read resumed after the same hole: real")
        #expect(!consumer.isKnownHole(0, 0, at: 500), "a later hole is checked again")
        try consumer.close()
    }
}
