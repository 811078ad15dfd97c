import CRdKafka

extension KafkaHandle {
    /// The number of partitions of `topic`, from a metadata request.
    ///
    /// Note: with `allow.auto.create.topics=true` (the producer default) a
    /// broker may create an unknown topic as a side effect.
    func partitionCount(topic: String, timeoutMs: Int32) throws(KafkaError) -> Int {
        guard let rkt = rd_kafka_topic_new(pointer, topic, nil) else {
            throw KafkaError(rd_kafka_last_error(), "cannot create topic handle for \"\(topic)\"")
        }
        defer { rd_kafka_topic_destroy(rkt) }

        var metadata: UnsafePointer<rd_kafka_metadata>? = nil
        let err = rd_kafka_metadata(pointer, 0, rkt, &metadata, Int32(timeoutMs))
        try KafkaError.check(err, "metadata request for topic \"\(topic)\" failed")
        guard let metadata else {
            throw KafkaError(code: .state, message: "metadata request for topic \"\(topic)\" returned nothing")
        }
        defer { rd_kafka_metadata_destroy(metadata) }

        let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
        guard let entry = topics.first(where: { String(cString: $0.topic) == topic }) else {
            throw KafkaError(code: .unknownTopicOrPartition, message: "topic \"\(topic)\" not in metadata response")
        }
        try KafkaError.check(entry.err, "metadata for topic \"\(topic)\"")
        return Int(entry.partition_cnt)
    }

    /// Low and high watermark of a partition, queried from the leader.
    func watermarks(topic: String, partition: Int32, timeoutMs: Int32) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(pointer, topic, partition, &low, &high, Int32(timeoutMs))
        try KafkaError.check(err, "watermark query for \(topic)[\(partition)] failed")
        return (low, high)
    }
}
