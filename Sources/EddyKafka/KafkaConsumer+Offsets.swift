import CRdKafka

extension KafkaConsumer {
    /// Commits explicit offsets for the group. Each offset is the *next*
    /// record to read, i.e. the last applied offset + 1. Never commits the
    /// consumer position. An empty list is a no-op.
    ///
    /// Unlike the rest of the consumer, `commit` may be called from a thread
    /// other than the polling one (librdkafka's commit is thread-safe), e.g.
    /// by a writer thread that knows what was applied; the caller must keep
    /// the consumer alive for the duration of the call.
    ///
    /// A synchronous commit that the coordinator rejects with
    /// `REBALANCE_IN_PROGRESS` (e.g. from `onRevoke` while other members are
    /// still syncing) is retried for up to ``commitRebalanceRetryMs``. A
    /// synchronous commit gives up after ``commitTimeoutMs`` (librdkafka's
    /// own synchronous commit waits forever for a coordinator that is gone,
    /// which would hang a shutdown).
    ///
    /// - Parameters:
    ///   - offsets: positions to commit (must be >= 0).
    ///   - async: if `true`, returns immediately; a failure is reported as an
    ///     ``KafkaConsumerEvent/error(_:)`` event by a later poll.
    /// - Throws: ``KafkaError`` for invalid offsets or (sync) a failed commit,
    ///   including per-partition failures.
    public func commit(offsets: [TopicPartitionOffset], async: Bool = false) throws(KafkaError) {
        try checkOpen()
        guard !offsets.isEmpty else { return }
        if let bad = offsets.first(where: { $0.offset < 0 }) {
            throw KafkaError(code: .invalidArgument, message: "cannot commit logical offset \(bad)")
        }
        let list = NativePartitionList(offsets)
        if async {
            let err = rd_kafka_commit_queue(handle.pointer, list.pointer, queue,
                                            consumerAsyncCommitCallback, context.opaque)
            try KafkaError.check(err, "async commit of \(offsets.count) offset(s) failed")
        } else {
            let deadline = ContinuousClock.now.advanced(by: .milliseconds(commitRebalanceRetryMs))
            var (err, partitionError) = commitWaiting(list, timeoutMs: Self.commitTimeoutMs)
            while err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS && ContinuousClock.now < deadline {
                sleepMilliseconds(50)
                (err, partitionError) = commitWaiting(list, timeoutMs: Self.commitTimeoutMs)
            }
            try KafkaError.check(err, "commit of \(offsets.count) offset(s) failed")
            if let partitionError { throw partitionError }
        }
    }

    /// How long a synchronous commit waits for the coordinator's answer.
    public static let commitTimeoutMs: Int32 = 10_000

    /// A synchronous commit that waits at most `timeoutMs`: the commit's
    /// result comes back on a queue of its own. Returns the error and the
    /// first per-partition error.
    private func commitWaiting(_ list: borrowing NativePartitionList, timeoutMs: Int32)
        -> (rd_kafka_resp_err_t, KafkaError?) {
        guard let q = rd_kafka_queue_new(handle.pointer) else { return (RD_KAFKA_RESP_ERR__FAIL, nil) }
        defer { rd_kafka_queue_destroy(q) }
        let err = rd_kafka_commit_queue(handle.pointer, list.pointer, q, nil, nil)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { return (err, nil) }
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int(timeoutMs)))
        while ContinuousClock.now < deadline {
            let left = Int32(max(1, (deadline - ContinuousClock.now) / .milliseconds(1)))
            guard let event = rd_kafka_queue_poll(q, left) else { continue }
            defer { rd_kafka_event_destroy(event) }
            guard rd_kafka_event_type(event) == RD_KAFKA_EVENT_OFFSET_COMMIT else { continue }
            let partitionError = NativePartitionList.firstError(rd_kafka_event_topic_partition_list(event), "commit failed for")
            return (rd_kafka_event_error(event), partitionError)
        }
        return (RD_KAFKA_RESP_ERR__TIMED_OUT, nil)
    }

    /// The group's committed offsets for `partitions`;
    /// ``KafkaOffset/invalid`` where nothing is committed.
    public func committed(partitions: [TopicPartition], timeoutMs: Int32 = 10_000) throws(KafkaError)
        -> [TopicPartitionOffset] {
        try checkOpen()
        guard !partitions.isEmpty else { return [] }
        let list = NativePartitionList(partitions)
        try KafkaError.check(rd_kafka_committed(handle.pointer, list.pointer, timeoutMs),
                             "fetching committed offsets failed")
        if let error = list.firstError("fetching committed offset failed for") { throw error }
        return list.offsets
    }

    /// Low and high watermark of a partition (queried from the leader). The
    /// high watermark is the offset the next produced record will get.
    public func watermarks(topic: String, partition: Int32,
                           timeoutMs: Int32 = 10_000) throws(KafkaError) -> (low: Int64, high: Int64) {
        try checkOpen()
        return try handle.watermarks(topic: topic, partition: partition, timeoutMs: timeoutMs)
    }

    /// Low and high watermarks of several partitions in two batched
    /// ListOffsets lookups (at the logical times "earliest" and "latest",
    /// one request per leader each), instead of a round trip per partition
    /// as ``watermarks(topic:partition:timeoutMs:)`` takes. Same values:
    /// the log start offset and the high watermark.
    public func watermarks(_ partitions: [TopicPartition],
                           timeoutMs: Int32 = 10_000) throws(KafkaError) -> [TopicPartition: (low: Int64, high: Int64)] {
        let lows = try offsetsForTimes(partitions, timestampMs: KafkaOffset.beginning, timeoutMs: timeoutMs)
        let highs = try offsetsForTimes(partitions, timestampMs: KafkaOffset.end, timeoutMs: timeoutMs)
        var low: [TopicPartition: Int64] = [:]
        for o in lows { low[o.topicPartition] = o.offset }
        var marks: [TopicPartition: (low: Int64, high: Int64)] = [:]
        for o in highs {
            guard let l = low[o.topicPartition], l >= 0, o.offset >= 0 else {
                throw KafkaError(code: .invalidArgument, message: "no watermarks returned for \(o.topicPartition)")
            }
            marks[o.topicPartition] = (l, o.offset)
        }
        for p in partitions where marks[p] == nil {
            throw KafkaError(code: .invalidArgument, message: "no watermarks returned for \(p)")
        }
        return marks
    }

    /// For each partition, the earliest offset whose timestamp is >=
    /// `timestampMs`, or ``KafkaOffset/end`` if there is none.
    ///
    /// Note: librdkafka's mock cluster answers every lookup with ``KafkaOffset/end``.
    public func offsetsForTimes(_ partitions: [TopicPartition], timestampMs: Int64,
                                timeoutMs: Int32 = 10_000) throws(KafkaError) -> [TopicPartitionOffset] {
        try checkOpen()
        guard !partitions.isEmpty else { return [] }
        let list = NativePartitionList(partitions.map { TopicPartitionOffset($0, offset: timestampMs) })
        try KafkaError.check(rd_kafka_offsets_for_times(handle.pointer, list.pointer, timeoutMs),
                             "offsets-for-times lookup failed")
        if let error = list.firstError("offsets-for-times lookup failed for") { throw error }
        return list.offsets
    }

    /// Replaces the assignment with explicit partitions and start offsets
    /// (absolute or ``KafkaOffset`` sentinels), without group management.
    /// For bounded replays with a consumer created without topics; do not
    /// mix with a subscription.
    public func assign(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        try checkOpen()
        registerTopics(offsets.map(\.topic))
        let list = NativePartitionList(offsets)
        try KafkaError.check(rd_kafka_assign(handle.pointer, list.pointer), "assign failed")
        context.nextOffsets.removeAll()
        context.holes.removeAll()
        rememberPositions(offsets)
    }

    /// Clears an explicit assignment.
    public func unassign() throws(KafkaError) {
        try checkOpen()
        try KafkaError.check(rd_kafka_assign(handle.pointer, nil), "unassign failed")
        context.nextOffsets.removeAll()
        context.holes.removeAll()
    }

    /// Moves the fetch position of assigned partitions (e.g. from `onAssign`
    /// to start from an externally checkpointed offset). Pre-fetched records
    /// of these partitions are discarded.
    public func seek(_ offsets: [TopicPartitionOffset], timeoutMs: Int32 = 10_000) throws(KafkaError) {
        try checkOpen()
        guard !offsets.isEmpty else { return }
        let list = NativePartitionList(offsets)
        try KafkaError.check(rd_kafka_seek_partitions(handle.pointer, list.pointer, timeoutMs), "seek failed")
        if let error = list.firstError("seek failed for") { throw error }
        rememberPositions(offsets)
    }

    /// Where the next record of each partition must be (absolute offsets
    /// only; a sentinel leaves it unknown until a record is delivered).
    func rememberPositions(_ offsets: [TopicPartitionOffset]) {
        for o in offsets {
            let p = TopicPartition(topic: o.topic, partition: o.partition)
            context.nextOffsets[p] = o.offset >= 0 ? o.offset : nil
        }
    }
}
