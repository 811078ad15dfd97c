/// Swift handlers for consumer-group rebalances.
///
/// Both run synchronously on the thread that is inside
/// ``KafkaConsumer/poll(into:maxMessages:timeoutMs:)`` or
/// ``KafkaConsumer/close()``, and receive the consumer so they need not
/// capture it (capturing it strongly would leak it).
///
/// - `onAssign` runs right after partitions were added to the assignment
///   (with the cooperative protocol: only the newly added ones). Fetching
///   starts from the committed offsets (or `auto.offset.reset`); call
///   ``KafkaConsumer/seek(_:timeoutMs:)`` here to start elsewhere.
/// - `onRevoke` runs *before* partitions are removed: flush everything
///   derived from them and ``KafkaConsumer/commit(offsets:async:)``
///   synchronously inside it. With the cooperative protocol only the
///   partitions that move are revoked; if
///   ``KafkaConsumer/assignmentLost`` is true they were already taken over
///   and commits for them will fail.
///   Messages of revoked partitions that were fetched in the same
///   `poll` batch are dropped, never delivered after `onRevoke`.
public struct RebalanceHandlers {
    /// Called after partitions were assigned.
    public var onAssign: (KafkaConsumer, [TopicPartition]) -> Void
    /// Called before partitions are revoked.
    public var onRevoke: (KafkaConsumer, [TopicPartition]) -> Void

    /// Creates handlers; both default to doing nothing.
    public init(onAssign: @escaping (KafkaConsumer, [TopicPartition]) -> Void = { _, _ in },
                onRevoke: @escaping (KafkaConsumer, [TopicPartition]) -> Void = { _, _ in }) {
        self.onAssign = onAssign
        self.onRevoke = onRevoke
    }
}
