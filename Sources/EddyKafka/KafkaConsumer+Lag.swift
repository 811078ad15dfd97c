import CRdKafka

/// One partition's consumer lag as librdkafka knows it locally.
public struct PartitionLag: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// The high watermark cached from the last fetch response; nil before one.
    public var highWatermark: Int64?
    /// The offset after the last message handed to the application; nil before one.
    public var position: Int64?

    public init(topic: String, partition: Int32, highWatermark: Int64?, position: Int64?) {
        self.topic = topic
        self.partition = partition
        self.highWatermark = highWatermark
        self.position = position
    }

    /// `highWatermark - position` (never negative), when both are known.
    public var lag: Int64? {
        guard let highWatermark, let position else { return nil }
        return max(highWatermark - position, 0)
    }
}

extension KafkaConsumer {
    /// Lag of each partition from librdkafka's local state, without a broker
    /// round trip: `rd_kafka_get_watermark_offsets` (the high watermark of
    /// the last fetch response) and `rd_kafka_position`. For metrics; call
    /// it from the thread that polls, like every other consumer method.
    public func localLag(_ partitions: [TopicPartition]) -> [PartitionLag] {
        guard !isClosed, !partitions.isEmpty else { return [] }
        let list = NativePartitionList(partitions)
        let positionsKnown = rd_kafka_position(handle.pointer, list.pointer) == RD_KAFKA_RESP_ERR_NO_ERROR
        var positions: [TopicPartition: Int64] = [:]
        if positionsKnown {
            for element in NativePartitionList.elements(list.pointer)
            where element.err == RD_KAFKA_RESP_ERR_NO_ERROR && element.offset >= 0 {
                positions[TopicPartition(topic: String(cString: element.topic), partition: element.partition)] = element.offset
            }
        }
        return partitions.map { tp in
            var low: Int64 = 0, high: Int64 = -1
            let err = rd_kafka_get_watermark_offsets(handle.pointer, tp.topic, tp.partition, &low, &high)
            return PartitionLag(topic: tp.topic, partition: tp.partition,
                                highWatermark: err == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil,
                                position: positions[tp])
        }
    }
}
