import EddyCore
import EddyKafka
import EddyMetrics

/// Sends rejected events to the dead-letter topic: the original key and
/// bytes, with the reason and source position as headers. Thread-safe
/// (librdkafka's producer is).
final class DeadLetterSink: Sendable {
    let producer: KafkaProducer?
    let topic: String
    let sourceTopics: [String]
    let counters: WorkerCounters

    init(config: WorkerConfig, counters: WorkerCounters) throws(KafkaError) {
        self.topic = config.topology.deadLetter.topic
        self.sourceTopics = config.topology.source.topics
        self.counters = counters
        producer = config.topology.deadLetter.enabled ? try KafkaProducer(config: config.producerProperties) : nil
    }

    func send(_ reason: RejectReason, topicIndex: Int32, partition: Int32, offset: Int64, timestampMs: Int64,
              key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, entity: String? = nil) {
        guard let producer else { return }
        var headers = [
            KafkaHeader(key: "eddy.reason", value: Array(reason.rawValue.utf8)),
            KafkaHeader(key: "eddy.error", value: Array(reason.explanation.utf8)),
            KafkaHeader(key: "eddy.topic", value: Array(sourceTopics[Int(topicIndex)].utf8)),
            KafkaHeader(key: "eddy.partition", value: Array(String(partition).utf8)),
            KafkaHeader(key: "eddy.offset", value: Array(String(offset).utf8)),
        ]
        // With `entities:` an event may be refused by one entity (no item id)
        // and applied by another: one dead letter per entity that refused it.
        if let entity { headers.append(KafkaHeader(key: "eddy.entity", value: Array(entity.utf8))) }
        do {
            try producer.produce(topic: topic, key: key, value: value, timestampMs: timestampMs, headers: headers)
            counters.deadLettered.wrappingIncrement(ordering: .relaxed)
        } catch {
            counters.deadLetterErrors.wrappingIncrement(ordering: .relaxed)
        }
    }

    /// Whether some dead letter sent so far is not yet delivered (or failed).
    var hasUndelivered: Bool { (producer?.inFlightCount ?? 0) > 0 }

    /// Waits until every dead letter sent so far is delivered (or failed),
    /// so that committing offsets never skips an undelivered one.
    func awaitDelivery(timeoutMs: Int32) -> Bool {
        guard let producer, producer.inFlightCount > 0 else { return true }
        do {
            _ = try producer.flush(timeoutMs: timeoutMs)
            return producer.inFlightCount == 0
        } catch {
            return false
        }
    }
}
