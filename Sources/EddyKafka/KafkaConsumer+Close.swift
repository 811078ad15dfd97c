import CRdKafka

extension KafkaConsumer {
    /// Leaves the group cleanly and stops the consumer. Idempotent.
    ///
    /// Follows librdkafka's recommended termination sequence rather than
    /// relying on `rd_kafka_consumer_close` alone:
    /// 1. if the member is half-way through its first join, let the join
    ///    finish (see ``firstJoinSettleMs``);
    /// 2. unsubscribe and keep serving the group until the assignment is
    ///    revoked: `onRevoke` runs while the member still belongs to the group,
    ///    so commits made inside it succeed (inside `rd_kafka_consumer_close`
    ///    librdkafka 2.0 rejects them with `_DESTROY`);
    /// 3. `rd_kafka_consumer_close`.
    ///
    /// Records fetched during steps 1–2 are dropped (never delivered, so never
    /// committed). Call `close()` explicitly: if the consumer is merely
    /// released, it still leaves the group but handlers are not called.
    public func close() throws(KafkaError) {
        guard !isClosed && !isClosing else { return }
        precondition(!isPolling, "KafkaConsumer.close() called from inside poll")
        try KafkaError.check(closeNative(), "consumer close failed")
    }

    /// Upper bound for each waiting step of ``close()``.
    ///
    /// Step 1 exists because librdkafka 2.0 aborts the process
    /// ("rd_kafka_sticky_assignor_state_destroy: Assertion `assignor_state'
    /// failed", librdkafka issue #4312, fixed in 2.3) when a member using a
    /// sticky assignor is destroyed after its JoinGroup response but before its
    /// first SyncGroup response. If the first join still has not completed
    /// after this long, the consumer leaves the group but its `rd_kafka_t` is
    /// deliberately leaked (never destroyed) instead of aborting the process.
    public static let firstJoinSettleMs = 10_000

    func closeNative() -> rd_kafka_resp_err_t {
        if isSubscribed {
            settleFirstJoin()
            leaveGroup()
        }
        isClosing = true
        let err = rd_kafka_consumer_close(handle.pointer)
        isClosing = false
        isClosed = true
        context.pendingErrors.removeAll()
        return err
    }

    /// Step 1 of ``close()``. If the join cannot be completed in time, the
    /// native handle is leaked rather than destroyed (see ``firstJoinSettleMs``).
    private func settleFirstJoin() {
        let strategy = config["partition.assignment.strategy"] ?? ""
        guard strategy.contains("sticky"), !context.everAssigned, hasMemberId else { return }
        serve(until: { self.context.everAssigned })
        if !context.everAssigned && hasMemberId {
            mustLeakHandle = true
        }
    }

    /// Step 2 of ``close()``.
    private func leaveGroup() {
        guard rd_kafka_unsubscribe(handle.pointer) == RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        serve(until: { ((try? self.assignment()) ?? []).isEmpty })
    }

    /// Polls (dropping records) until `done` or ``firstJoinSettleMs``.
    private func serve(until done: () -> Bool) {
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(Self.firstJoinSettleMs))
        while !done() && ContinuousClock.now < deadline {
            do {
                try poll(maxMessages: 256, timeoutMs: 50) { _ in }
            } catch {
                return
            }
        }
    }

    /// Whether a JoinGroup response has given this member an id.
    private var hasMemberId: Bool {
        guard let id = rd_kafka_memberid(handle.pointer) else { return false }
        defer { rd_kafka_mem_free(handle.pointer, id) }
        return id.pointee != 0
    }
}
