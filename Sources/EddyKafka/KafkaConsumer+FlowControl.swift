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

    /// Resumes fetching `partitions` right after the last record `poll`
    /// delivered from each (or from where the assignment started, if none was).
    ///
    /// librdkafka resumes at its own "application position", and before 2.1
    /// batch consumption advanced that position for records it then purged
    /// from the batch when a pause's version barrier arrived in the same call
    /// (librdkafka #4208): a resume could silently skip records. So the
    /// partitions are resumed and then sought to the position this consumer
    /// tracked itself; the seek is synchronous, so no record fetched from the
    /// wrong position can reach the next `poll`.
    ///
    /// - Throws: ``KafkaError`` if resuming, looking up committed offsets or
    ///   seeking fails; the caller should pause the partitions again and
    ///   retry, or records may be skipped.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        try checkOpen()
        guard !partitions.isEmpty else { return }
        let list = NativePartitionList(partitions)
        try KafkaError.check(rd_kafka_resume_partitions(handle.pointer, list.pointer), "resume failed")
        if let error = list.firstError("resume failed for") { throw error }
        try seek(try resumePositions(partitions), timeoutMs: 10_000)
    }

    /// Where each resumed partition must continue: after the last delivered
    /// record, else the start of the assignment (explicit, committed, or
    /// `auto.offset.reset` when nothing is committed).
    func resumePositions(_ partitions: [TopicPartition]) throws(KafkaError) -> [TopicPartitionOffset] {
        var positions: [TopicPartitionOffset] = []
        var unknown: [TopicPartition] = []
        for p in partitions {
            if let next = context.nextOffsets[p] {
                positions.append(TopicPartitionOffset(p, offset: next))
            } else {
                unknown.append(p)
            }
        }
        guard !unknown.isEmpty else { return positions }
        let reset = config["auto.offset.reset"] ?? "latest"
        let fallback = ["earliest", "smallest", "beginning"].contains(reset) ? KafkaOffset.beginning : KafkaOffset.end
        for c in try committed(partitions: unknown) {
            positions.append(TopicPartitionOffset(topic: c.topic, partition: c.partition,
                                                  offset: c.offset >= 0 ? c.offset : fallback))
        }
        return positions
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
