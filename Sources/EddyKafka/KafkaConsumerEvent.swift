import CRdKafka

/// What ``KafkaConsumer/poll(into:maxMessages:timeoutMs:)`` hands to its sink.
///
/// `.message` carries a borrowed ``KafkaMessageView`` that is valid only
/// while the sink is handling it.
public enum KafkaConsumerEvent {
    /// A record (borrowed; copy out what you keep).
    case message(KafkaMessageView)
    /// The consumer caught up with the end of a partition
    /// (only with `enable.partition.eof`).
    case partitionEOF(PartitionEOF)
    /// A consumer error (fetch failure, broker down, failed async commit,
    /// failed (un)assign during a rebalance, ...). Most are informational:
    /// librdkafka keeps retrying; ``KafkaErrorCode/fatal`` is not recoverable.
    case error(KafkaError)
}

@available(*, unavailable, message: "events borrow librdkafka memory and must not leave the poll callback")
extension KafkaConsumerEvent: Sendable {}

/// The consumer reached the end of a partition.
public struct PartitionEOF: Hashable, Sendable {
    /// Index into ``KafkaConsumer/topics``.
    public var topicIndex: Int
    /// Partition number.
    public var partition: Int32
    /// The offset the next record will have (the high watermark).
    public var nextOffset: Int64
}

/// Receives the events of one ``KafkaConsumer/poll(into:maxMessages:timeoutMs:)`` call.
public protocol KafkaEventSink {
    /// Handles one event. For `.message`, the view is valid only during this call.
    mutating func receive(_ event: KafkaConsumerEvent)
}
