import EddyDevKit
import EddyKafka
import Foundation
import Testing

/// Produce/consume throughput against the in-process mock cluster.
/// Opt-in (slow in debug): `EDDY_KAFKA_BENCH=1 swift test -c release --filter ThroughputBenchmark`.
/// `EDDY_KAFKA_BENCH_MESSAGES` overrides the message count (default 1,000,000).
@Suite struct ThroughputBenchmark {
    static let enabled = ProcessInfo.processInfo.environment["EDDY_KAFKA_BENCH"] != nil

    private struct Result: Sendable {
        var produceSeconds: Double
        var consumeSeconds: Double
        var consumed: Int
        var payloadBytes: Int
        var eofPartitions: Int
    }

    @Test(.enabled(if: ThroughputBenchmark.enabled))
    func produceAndConsumeOneMillionSmallMessages() async throws {
        let count = Int(ProcessInfo.processInfo.environment["EDDY_KAFKA_BENCH_MESSAGES"] ?? "") ?? 1_000_000
        let partitions = 32
        let cluster = try MockCluster(topics: [(name: "bench", partitions: partitions)])
        let result = try await onThread { () throws -> Result in
            let producer = try KafkaProducer(config: producerConfig(cluster))
            // 4,096 distinct JSON-ish events padded to 100 bytes, built up front so
            // that the timed loop measures the producer, not string formatting.
            let distinct = 4_096
            let values: [[UInt8]] = (0..<distinct).map { i in
                var text = Array("{\"user\":\(i * 7 % 50_000),\"amount\":\(i % 9973).\(i % 100),\"seq\":\(i)}".utf8)
                text.append(contentsOf: repeatElement(UInt8(ascii: " "), count: max(0, 100 - text.count)))
                return Array(text.prefix(100))
            }
            let keys: [[UInt8]] = (0..<distinct).map { Array("user-\($0 * 7 % 50_000)".utf8) }
            let clock = ContinuousClock()
            let produceStart = clock.now
            for i in 0..<count {
                let slot = i & (distinct - 1)
                try keys[slot].withUnsafeBytes { k in
                    try values[slot].withUnsafeBytes { v in
                        try producer.produce(topic: "bench", key: k, value: v)
                    }
                }
            }
            let stats = try producer.flush(timeoutMs: 120_000)
            let produceSeconds = (clock.now - produceStart).seconds
            precondition(stats.delivered == count, "delivered \(stats.delivered) of \(count)")

            let consumer = try KafkaConsumer(
                config: ["bootstrap.servers": cluster.bootstrapServers, "fetch.wait.max.ms": "50"],
                topics: [], partitionEOF: true)
            try consumer.assign((0..<partitions).map {
                TopicPartitionOffset(topic: "bench", partition: Int32($0), offset: KafkaOffset.beginning)
            })
            var sink = CountingSink()
            let consumeStart = clock.now
            let deadline = consumeStart.advanced(by: .seconds(300))
            while sink.eof.count < partitions && clock.now < deadline {
                try consumer.poll(into: &sink, maxMessages: 4096, timeoutMs: 100)
            }
            let consumeSeconds = (clock.now - consumeStart).seconds
            try consumer.close()
            return Result(produceSeconds: produceSeconds, consumeSeconds: consumeSeconds,
                          consumed: sink.messages, payloadBytes: sink.bytes, eofPartitions: sink.eof.count)
        }
        let produceRate = Double(count) / result.produceSeconds
        let consumeRate = Double(result.consumed) / result.consumeSeconds
        print("""
            BENCH produce: \(count) msgs in \(String(format: "%.2f", result.produceSeconds)) s = \
            \(Int(produceRate)) msg/s (lz4, 32 partitions, incl. flush)
            BENCH consume: \(result.consumed) msgs (\(result.payloadBytes) payload bytes) in \
            \(String(format: "%.2f", result.consumeSeconds)) s = \(Int(consumeRate)) msg/s (raw, to EOF)
            """)
        #expect(result.consumed == count)
        #expect(result.eofPartitions == partitions)
    }
}

private struct CountingSink: KafkaEventSink {
    var messages = 0
    var bytes = 0
    var eof: Set<Int32> = []

    mutating func receive(_ event: KafkaConsumerEvent) {
        switch event {
        case .message(let view):
            messages += 1
            bytes += view.payload?.count ?? 0
        case .partitionEOF(let e):
            eof.insert(e.partition)
        case .error:
            break
        }
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
