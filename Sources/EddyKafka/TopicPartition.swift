/// A topic partition.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    /// Topic name.
    public var topic: String
    /// Partition number.
    public var partition: Int32

    /// Creates a topic partition.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// `topic[partition]`.
    public var description: String { "\(topic)[\(partition)]" }
}

/// A topic partition with an offset: a start position, a commit position
/// (the offset of the *next* record to read, i.e. last applied + 1) or a
/// lookup result.
public struct TopicPartitionOffset: Hashable, Sendable, CustomStringConvertible {
    /// Topic name.
    public var topic: String
    /// Partition number.
    public var partition: Int32
    /// An absolute offset (>= 0) or one of the ``KafkaOffset`` sentinels.
    public var offset: Int64

    /// Creates a topic partition offset.
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    /// Creates a topic partition offset from a ``TopicPartition``.
    public init(_ topicPartition: TopicPartition, offset: Int64) {
        self.init(topic: topicPartition.topic, partition: topicPartition.partition, offset: offset)
    }

    /// The topic partition without the offset.
    public var topicPartition: TopicPartition {
        TopicPartition(topic: topic, partition: partition)
    }

    /// `topic[partition]@offset`.
    public var description: String { "\(topic)[\(partition)]@\(offset)" }
}

/// librdkafka's logical offsets.
public enum KafkaOffset {
    /// Start from the oldest retained record (`RD_KAFKA_OFFSET_BEGINNING`).
    public static let beginning: Int64 = -2
    /// Start after the newest record, i.e. at the high watermark (`RD_KAFKA_OFFSET_END`).
    public static let end: Int64 = -1
    /// Start from the committed offset (`RD_KAFKA_OFFSET_STORED`), falling back
    /// to `auto.offset.reset`.
    public static let stored: Int64 = -1000
    /// No offset: "use the committed offset" on assign, "nothing committed" in
    /// results (`RD_KAFKA_OFFSET_INVALID`).
    public static let invalid: Int64 = -1001
}
