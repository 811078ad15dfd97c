import CRdKafka

extension KafkaConsumer {
    /// Consumes up to `maxMessages` events in one batch
    /// (`rd_kafka_consume_batch_queue` on the consumer queue) and hands each to
    /// `sink` as a borrowed view, destroying the librdkafka messages afterwards.
    ///
    /// Rebalance handlers and librdkafka callbacks run inside this call.
    /// Records of partitions revoked during the call are not delivered.
    /// Not reentrant: do not call `poll` from a sink or handler.
    ///
    /// - Parameters:
    ///   - sink: receives messages, partition-EOF and error events, in order
    ///     (errors raised by callbacks come last).
    ///   - maxMessages: batch size.
    ///   - timeoutMs: how long to wait for the first event.
    /// - Returns: the number of events delivered (0 on timeout).
    /// - Throws: ``KafkaError`` if the consumer is closed or the batch call fails.
    @discardableResult
    public func poll<Sink: KafkaEventSink>(into sink: inout Sink, maxMessages: Int = 1024,
                                           timeoutMs: Int32 = 100) throws(KafkaError) -> Int {
        try checkPollable()
        precondition(!isPolling, "KafkaConsumer.poll is not reentrant")
        precondition(maxMessages > 0, "maxMessages must be positive")
        isPolling = true
        defer { isPolling = false }
        if batch.count < maxMessages {
            batch.deallocate()
            batch = .allocate(capacity: maxMessages)
        }
        context.revokedDuringBatch.removeAll(keepingCapacity: true)

        let count = try consumeQueued(maxMessages: maxMessages, timeoutMs: timeoutMs)
        var delivered = 0
        let revoked = context.revokedDuringBatch
        // The partition and next offset of the current run of records, for
        // `resume` (recorded once per run, not per record).
        var run: (index: Int, partition: Int32, next: Int64) = (-1, -1, -1)
        defer { if run.next >= 0 { self.delivered(topicIndex: run.index, partition: run.partition, next: run.next) } }
        // Partitions with a hole in this batch, and where to read them again.
        var rewinding: [(index: Int, partition: Int32, from: Int64)] = []
        defer { if !rewinding.isEmpty { rewind(rewinding) } }
        for i in 0..<count {
            let message = batch[i]!
            defer { rd_kafka_message_destroy(message) }
            let err = message.pointee.err
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__PARTITION_EOF else {
                sink.receive(.error(consumerError(message)))
                delivered += 1
                continue
            }
            let index = topicIndex(for: message.pointee.rkt)
            let partition = message.pointee.partition
            // Fetched before a revoke in this batch: the new owner reads it.
            if !revoked.isEmpty, index >= 0,
               revoked.contains(TopicPartition(topic: topics[index], partition: partition)) {
                continue
            }
            // Being read again from before a hole found earlier in this batch.
            if !rewinding.isEmpty, rewinding.contains(where: { $0.index == index && $0.partition == partition }) {
                continue
            }
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                let offset = message.pointee.offset
                if index != run.index || partition != run.partition {
                    if run.next >= 0 { self.delivered(topicIndex: run.index, partition: run.partition, next: run.next) }
                    run.index = index
                    run.partition = partition
                    run.next = nextOffset(topicIndex: index, partition: partition) ?? -1
                }
                if run.next >= 0 && offset < run.next {
                    // Already delivered in this assignment: librdkafka read
                    // the partition again from an earlier offset.
                    offsetRepeats += 1
                    continue
                }
                if run.next >= 0 && offset > run.next && !isKnownHole(index, partition, at: offset) {
                    // Records skipped (librdkafka 2.0's batch consumption
                    // can resume past purged records after its own pauses,
                    // #4208): read the partition again from the expected offset.
                    offsetGaps += 1
                    rewinding.append((index, partition, run.next))
                    continue
                }
                run.next = offset + 1
                sink.receive(.message(KafkaMessageView(native: message, topicIndex: index)))
            } else {
                sink.receive(.partitionEOF(PartitionEOF(topicIndex: index, partition: partition,
                                                        nextOffset: message.pointee.offset)))
            }
            delivered += 1
        }
        if !context.pendingErrors.isEmpty {
            let errors = context.pendingErrors
            context.pendingErrors.removeAll()
            for error in errors {
                sink.receive(.error(error))
                delivered += 1
            }
        }
        return delivered
    }

    /// Fills `batch` from the consumer queue: waits up to `timeoutMs` for
    /// the first event only, then takes what is already queued, up to
    /// `maxMessages`. (`rd_kafka_consume_batch_queue` alone waits until the
    /// whole batch is full or the timeout passes: at 50k events/s a 20 ms
    /// timeout held every event ~20 ms.)
    private func consumeQueued(maxMessages: Int, timeoutMs: Int32) throws(KafkaError) -> Int {
        let base = batch.baseAddress!
        guard timeoutMs != 0, maxMessages > 1 else {
            let count = rd_kafka_consume_batch_queue(queue, timeoutMs, base, maxMessages)
            if count < 0 { throw KafkaError(rd_kafka_last_error(), "batch consume failed") }
            return count
        }
        let first = rd_kafka_consume_batch_queue(queue, timeoutMs, base, 1)
        if first < 0 { throw KafkaError(rd_kafka_last_error(), "batch consume failed") }
        guard first == 1 else { return first }
        // An error here resurfaces on the next poll; deliver the first event.
        let rest = rd_kafka_consume_batch_queue(queue, 0, base + 1, maxMessages - 1)
        return 1 + max(rest, 0)
    }

    /// Closure form of ``poll(into:maxMessages:timeoutMs:)``.
    @discardableResult
    public func poll(maxMessages: Int = 1024, timeoutMs: Int32 = 100,
                     _ body: (KafkaConsumerEvent) -> Void) throws(KafkaError) -> Int {
        let result: Result<Int, KafkaError> = withoutActuallyEscaping(body) { escapable in
            var sink = ClosureSink(body: escapable)
            do throws(KafkaError) {
                return .success(try poll(into: &sink, maxMessages: maxMessages, timeoutMs: timeoutMs))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func consumerError(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaError {
        let code = KafkaErrorCode(message.pointee.err)
        var text = rd_kafka_message_errstr(message).map { String(cString: $0) } ?? code.text
        if let rkt = message.pointee.rkt {
            text = "\(String(cString: rd_kafka_topic_name(rkt)))[\(message.pointee.partition)]: \(text)"
        }
        return KafkaError(code: code, message: "consumer error: \(text)")
    }
}

private struct ClosureSink: KafkaEventSink {
    let body: (KafkaConsumerEvent) -> Void
    func receive(_ event: KafkaConsumerEvent) { body(event) }
}
