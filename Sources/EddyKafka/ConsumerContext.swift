import CRdKafka

/// Target of the consumer's `rd_kafka_conf_set_opaque` pointer.
///
/// Owned by ``KafkaConsumer`` (strongly) and handed to librdkafka unretained.
/// It refers back to the consumer only weakly, so there is no cycle; the
/// consumer destroys the `rd_kafka_t` in its `deinit`, before this object is
/// released. All callbacks run on the thread that polls or closes the
/// consumer (the main queue is forwarded to the consumer queue), which is the
/// consumer's single owning thread.
final class ConsumerContext {
    weak var consumer: KafkaConsumer?
    let handlers: RebalanceHandlers
    /// Whether the configured assignors use the COOPERATIVE protocol.
    ///
    /// Derived from `partition.assignment.strategy` instead of calling
    /// `rd_kafka_rebalance_protocol()` in the callback: that call can block
    /// forever when the callback runs inside `rd_kafka_consumer_close()`
    /// (librdkafka issue #4041). librdkafka requires all configured assignors
    /// to share one protocol, so the configuration decides it.
    let cooperative: Bool
    /// Errors from callbacks, delivered as `.error` events by the next poll.
    var pendingErrors: [KafkaError] = []
    /// Partitions revoked during the current poll batch. Records of these
    /// partitions in the batch were fetched before the revoke (librdkafka
    /// discards later ones as outdated), so `poll` drops them.
    var revokedDuringBatch: Set<TopicPartition> = []
    /// Set once the first assignment (possibly empty) arrived, i.e. the
    /// member completed a SyncGroup.
    var everAssigned = false
    /// Per assigned partition, where its next record must be: one past the
    /// last record `poll` delivered, or an explicit start or seek. Absent
    /// until known (a group assignment starts at the committed offset).
    var nextOffsets: [TopicPartition: Int64] = [:]
    /// Per partition, the offset a read resumed at after a hole, until the
    /// partition is read again from before the hole (`KafkaConsumer.poll`).
    var holes: [TopicPartition: Int64] = [:]

    init(handlers: RebalanceHandlers, assignmentStrategy: String) {
        self.handlers = handlers
        let assignors = assignmentStrategy.split(separator: ",").map { $0.filter { !$0.isWhitespace } }
        self.cooperative = !assignors.isEmpty && assignors.allSatisfy { $0 == "cooperative-sticky" }
    }

    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ConsumerContext? {
        opaque.map { Unmanaged<ConsumerContext>.fromOpaque($0).takeUnretainedValue() }
    }

    func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t,
                   _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let partitions = NativePartitionList.partitions(list)

        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            everAssigned = true
            for p in partitions { nextOffsets[p] = nil; holes[p] = nil }  // a new assignment starts at the committed offset
            if cooperative {
                record(rd_kafka_incremental_assign(rk, list), "incremental assign")
            } else {
                record(rd_kafka_assign(rk, list), "assign")
            }
            if !partitions.isEmpty, let consumer {
                consumer.registerTopics(partitions.map(\.topic))
                handlers.onAssign(consumer, partitions)
            }

        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            if !partitions.isEmpty, let consumer {
                handlers.onRevoke(consumer, partitions)
            }
            revokedDuringBatch.formUnion(partitions)
            for p in partitions { nextOffsets[p] = nil; holes[p] = nil }
            if cooperative {
                record(rd_kafka_incremental_unassign(rk, list), "incremental unassign")
            } else {
                record(rd_kafka_assign(rk, nil), "unassign")
            }

        default:
            pendingErrors.append(KafkaError(err, "rebalance failed"))
            // Drop the whole assignment, telling the handler first.
            var current: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            if rd_kafka_assignment(rk, &current) == RD_KAFKA_RESP_ERR_NO_ERROR, let current {
                let assigned = NativePartitionList.partitions(current)
                rd_kafka_topic_partition_list_destroy(current)
                if !assigned.isEmpty, let consumer { handlers.onRevoke(consumer, assigned) }
                revokedDuringBatch.formUnion(assigned)
            }
            nextOffsets.removeAll()
            holes.removeAll()
            record(rd_kafka_assign(rk, nil), "unassign after rebalance error")
        }
    }

    func commitCompleted(_ err: rd_kafka_resp_err_t,
                         _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
            pendingErrors.append(KafkaError(err, "async offset commit failed"))
        } else if let error = NativePartitionList.firstError(offsets, "async offset commit failed for") {
            pendingErrors.append(error)
        }
    }

    private func record(_ error: OpaquePointer?, _ what: String) {
        if let error { pendingErrors.append(KafkaError(consuming: error, "rebalance: \(what) failed")) }
    }

    private func record(_ err: rd_kafka_resp_err_t, _ what: String) {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { pendingErrors.append(KafkaError(err, "rebalance: \(what) failed")) }
    }
}

/// `rd_kafka_conf_set_rebalance_cb` callback.
func consumerRebalanceCallback(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t,
                               _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                               _ opaque: UnsafeMutableRawPointer?) {
    guard let rk else { return }
    guard let context = ConsumerContext.from(opaque) else {
        _ = rd_kafka_assign(rk, nil)
        return
    }
    context.rebalance(rk, err, partitions)
}

/// `rd_kafka_conf_set_error_cb` callback.
func consumerErrorCallback(_ rk: OpaquePointer?, _ err: Int32, _ reason: UnsafePointer<CChar>?,
                           _ opaque: UnsafeMutableRawPointer?) {
    guard let context = ConsumerContext.from(opaque) else { return }
    let code = KafkaErrorCode(rawValue: err)
    context.pendingErrors.append(KafkaError(code: code, message: reason.map { String(cString: $0) } ?? code.text))
}

/// `rd_kafka_commit_queue` result callback for async commits.
func consumerAsyncCommitCallback(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t,
                                 _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                                 _ opaque: UnsafeMutableRawPointer?) {
    ConsumerContext.from(opaque)?.commitCompleted(err, offsets)
}
