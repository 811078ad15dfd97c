import CRdKafka

extension KafkaConsumer {
    /// Stops fetching `partitions` (backpressure). Already fetched records may
    /// still be delivered by the next polls; the assignment is unchanged.
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        try checkOpen()
        guard !partitions.isEmpty else { return }
        let list = NativePartitionList(partitions)
        try KafkaError.check(rd_kafka_pause_partitions(handle.pointer, list.pointer), "pause failed")
        if let error = list.firstError("pause failed for") { throw error }
    }

    /// Resumes fetching `partitions` from where they stopped.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        try checkOpen()
        guard !partitions.isEmpty else { return }
        let list = NativePartitionList(partitions)
        try KafkaError.check(rd_kafka_resume_partitions(handle.pointer, list.pointer), "resume failed")
        if let error = list.firstError("resume failed for") { throw error }
    }
}
