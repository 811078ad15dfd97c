import EddyDevKit
import EddyKafka
import Foundation
import Testing

/// Runs blocking Kafka work on a dedicated thread (as the engine does), so
/// that tests do not block Swift concurrency's small cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.name = "eddy-kafka-test"
        thread.start()
    }
}

struct TestTimeout: Error, CustomStringConvertible {
    var description: String
}

/// A record copied out of a borrowed message view.
struct Record: Hashable {
    var topicIndex: Int
    var partition: Int32
    var offset: Int64
    var key: String
    var value: String

    init(_ view: KafkaMessageView) {
        topicIndex = view.topicIndex
        partition = view.partition
        offset = view.offset
        key = view.key.map { String(decoding: $0, as: UTF8.self) } ?? ""
        value = view.payload.map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}

/// Consumer properties for the mock cluster, with short group timeouts.
func groupConfig(_ cluster: MockCluster, group: String) -> [String: String] {
    [
        "bootstrap.servers": cluster.bootstrapServers,
        "group.id": group,
        "session.timeout.ms": "6000",
        "heartbeat.interval.ms": "300",
        "topic.metadata.refresh.interval.ms": "1000",
        "fetch.wait.max.ms": "50",
    ].merging(ProcessInfo.processInfo.environment["EDDY_KAFKA_DEBUG"].map { ["debug": $0] } ?? [:],
              uniquingKeysWith: { $1 })
}

func producerConfig(_ cluster: MockCluster) -> [String: String] {
    ["bootstrap.servers": cluster.bootstrapServers]
}

/// Produces `count` messages `key-(i % keys)` -> `"<key>:<sequence of that key>"`.
func produceKeyed(_ producer: KafkaProducer, topic: String, count: Int, keys: Int) throws {
    var sequence = [Int](repeating: 0, count: keys)
    for i in 0..<count {
        let k = i % keys
        try producer.produce(topic: topic, key: Array("key-\(k)".utf8), value: Array("key-\(k):\(sequence[k])".utf8))
        sequence[k] += 1
    }
    try producer.flush(timeoutMs: 30_000)
}

/// Polls `consumers` round-robin until `done()`; a generous deadline only
/// guards against hangs.
func pollUntil(_ consumers: [KafkaConsumer], seconds: Int = 40, what: String,
               _ handle: (Int, KafkaConsumerEvent) -> Void, done: () throws -> Bool) throws {
    let deadline = ContinuousClock.now.advanced(by: .seconds(seconds))
    while try !done() {
        guard ContinuousClock.now < deadline else { throw TestTimeout(description: "timed out waiting for \(what)") }
        for (index, consumer) in consumers.enumerated() {
            try consumer.poll(maxMessages: 1000, timeoutMs: 50) { handle(index, $0) }
        }
    }
}

func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
}
