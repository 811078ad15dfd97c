import EddyStore

/// Snapshot of dirty entities taken by the shard, written by the writer.
/// Owned by one thread at a time, like `MessageBatch`.
final class FlushBatch {
    /// The dirty entities, as the store writes them.
    let writes = EntityBatch()
    /// Offsets to commit once everything here is written: next offset per partition.
    var commits: [(PartitionID, Int64)] = []
    /// Kafka timestamps of the events this flush makes durable (freshness).
    var eventTimestamps: [Int64] = []
    /// When the batches of those events were handed to the shard, and how
    /// many events of each (pipeline latency).
    var handOvers: [(at: ContinuousClock.Instant, events: Int)] = []
    var barrierID = 0
    /// Partitions a barrier revokes: the writer stops re-committing them.
    var revoked: [PartitionID] = []
    /// The shard's flush number (1, 2, ...); the writer publishes the last
    /// one it has written, which tells the shard which keys Redis holds.
    var seq = 0

    func reset() {
        // A batch that gave back its bytes (`EntityBatch.reset`) gives back
        // the timestamps of a catch-up flush too.
        if writes.reset() { eventTimestamps = [] }
        commits.removeAll(keepingCapacity: true)
        eventTimestamps.removeAll(keepingCapacity: true)
        handOvers.removeAll(keepingCapacity: true)
        barrierID = 0
        revoked.removeAll(keepingCapacity: true)
        seq = 0
    }

    var isEmpty: Bool { writes.isEmpty && commits.isEmpty && barrierID == 0 }
}
