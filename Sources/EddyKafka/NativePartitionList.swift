import CRdKafka

/// Owns an `rd_kafka_topic_partition_list_t` and converts it to/from Swift.
struct NativePartitionList: ~Copyable {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(capacity: Int) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(capacity, 1)))
    }

    init(_ partitions: [TopicPartition]) {
        self.init(capacity: partitions.count)
        for tp in partitions {
            rd_kafka_topic_partition_list_add(pointer, tp.topic, tp.partition)
        }
    }

    init(_ offsets: [TopicPartitionOffset]) {
        self.init(capacity: offsets.count)
        for tpo in offsets {
            rd_kafka_topic_partition_list_add(pointer, tpo.topic, tpo.partition).pointee.offset = tpo.offset
        }
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }

    var partitions: [TopicPartition] { Self.partitions(pointer) }
    var offsets: [TopicPartitionOffset] { Self.offsets(pointer) }

    /// The first per-partition error, if any.
    func firstError(_ context: String) -> KafkaError? {
        Self.firstError(pointer, context)
    }

    static func elements(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?)
        -> UnsafeBufferPointer<rd_kafka_topic_partition_t> {
        guard let list, list.pointee.cnt > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
    }

    static func partitions(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartition] {
        elements(list).map { TopicPartition(topic: String(cString: $0.topic), partition: $0.partition) }
    }

    static func offsets(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartitionOffset] {
        elements(list).map {
            TopicPartitionOffset(topic: String(cString: $0.topic), partition: $0.partition, offset: $0.offset)
        }
    }

    static func firstError(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?, _ context: String) -> KafkaError? {
        for element in elements(list) where element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let where_ = "\(String(cString: element.topic))[\(element.partition)]"
            return KafkaError(element.err, "\(context) \(where_)")
        }
        return nil
    }
}
