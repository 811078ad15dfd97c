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

    /// Resumes fetching `partitions` right after the last record delivered
    /// from each (where known).
    ///
    /// librdkafka 2.0 resumes at its own position, which its batch
    /// consumption can leave past records it purged from a batch, or further
    /// back (#4208). So known positions are sought to after resuming. `poll`
    /// still checks every record (a late offset lookup can override the seek):
    /// it reads a partition again from before a hole and drops records it
    /// already delivered.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        try checkOpen()
        guard !partitions.isEmpty else { return }
        let list = NativePartitionList(partitions)
        try KafkaError.check(rd_kafka_resume_partitions(handle.pointer, list.pointer), "resume failed")
        if let error = list.firstError("resume failed for") { throw error }
        let known = partitions.compactMap { p in context.nextOffsets[p].map { TopicPartitionOffset(p, offset: $0) } }
        try seek(known, timeoutMs: 10_000)
    }

    /// The tracked next offset of a partition, if absolute.
    @inline(__always)
    func nextOffset(topicIndex: Int, partition: Int32) -> Int64? {
        guard topicIndex >= 0, topicIndex < topics.count,
              let next = context.nextOffsets[TopicPartition(topic: topics[topicIndex], partition: partition)],
              next >= 0 else { return nil }
        return next
    }

    /// Whether a record past a hole is where the previous read of the same
    /// hole also resumed: then the hole is real (transaction markers,
    /// compaction), not skipped records, and the record is delivered.
    func isKnownHole(_ topicIndex: Int, _ partition: Int32, at offset: Int64) -> Bool {
        let p = TopicPartition(topic: topics[topicIndex], partition: partition)
        if context.holes[p] == offset {
            context.holes[p] = nil
            return true
        }
        context.holes[p] = offset
        return false
    }

    /// Seeks partitions with a hole back to the first record not delivered.
    /// A failed seek is reported as an error event; the next poll finds the
    /// hole again and retries.
    func rewind(_ partitions: [(index: Int, partition: Int32, from: Int64)]) {
        let offsets = partitions.map {
            TopicPartitionOffset(topic: topics[$0.index], partition: $0.partition, offset: $0.from)
        }
        do {
            try seek(offsets, timeoutMs: 10_000)
        } catch {
            context.pendingErrors.append(KafkaError(code: error.code, message: "re-reading skipped records: \(error.message)"))
        }
    }

    /// Records the next offset of runs of delivered records (called by `poll`
    /// once per run of one partition, not per record).
    @inline(__always)
    func delivered(topicIndex: Int, partition: Int32, next: Int64) {
        guard topicIndex >= 0, topicIndex < topics.count else { return }
        context.nextOffsets[TopicPartition(topic: topics[topicIndex], partition: partition)] = next
    }
}

extension KafkaConsumer {
    /// The offset after the last record `poll` delivered from each of
    /// `partitions`, where one was delivered since it was assigned. Local
    /// state only: no broker round trip.
    public func deliveredPositions(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        var positions: [TopicPartition: Int64] = [:]
        for p in partitions {
            if let next = context.nextOffsets[p], next >= 0 { positions[p] = next }
        }
        return positions
    }
}
