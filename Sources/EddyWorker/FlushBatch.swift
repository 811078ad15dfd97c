/// Snapshot of dirty entities taken by the shard, written by the writer.
/// Owned by one thread at a time, like `MessageBatch`.
final class FlushBatch {
    struct Entity {
        var keyStart: Int
        var keyLength: Int
        var offset: Int64
        /// The fence's partition name, `topic:partition`, in `bytes`.
        var partitionStart: Int
        var partitionLength: Int
        /// Whether this write re-arms the key's expiry (`TTLPolicy`).
        var rearmTTL: Bool
        /// Hash field/value pairs (ranges in `bytes`), after the fence args.
        var fieldsStart: Int
        var fieldCount: Int
    }

    var entities: [Entity] = []
    /// (start, length) ranges of field names and values in `bytes`.
    var fieldRanges: [(Int, Int)] = []
    var bytes: [UInt8] = []
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

    init() {
        bytes.reserveCapacity(1 << 20)
        entities.reserveCapacity(4096)
    }

    /// Above this many bytes of capacity, a batch that used less than a
    /// quarter of it gives the memory back: a catch-up flush of every key
    /// grows a batch to tens of MB, a lag spike of a second to a few MB,
    /// and steady flushes need a fraction of that. Kept, such high-water
    /// marks made the worker's memory creep up over a long run.
    static let retainedBytes = 2 << 20

    func reset() {
        if bytes.capacity > Self.retainedBytes && bytes.count < bytes.capacity / 4 {
            bytes = []
            bytes.reserveCapacity(1 << 20)
            entities = []
            entities.reserveCapacity(4096)
            fieldRanges = []
            eventTimestamps = []
        }
        entities.removeAll(keepingCapacity: true)
        fieldRanges.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
        commits.removeAll(keepingCapacity: true)
        eventTimestamps.removeAll(keepingCapacity: true)
        handOvers.removeAll(keepingCapacity: true)
        barrierID = 0
        revoked.removeAll(keepingCapacity: true)
        seq = 0
    }

    var isEmpty: Bool { entities.isEmpty && commits.isEmpty && barrierID == 0 }

    /// Appends bytes and returns their range.
    @inline(__always)
    func store(_ b: UnsafeRawBufferPointer) -> (Int, Int) {
        let start = bytes.count
        bytes.append(contentsOf: b)
        return (start, b.count)
    }

    @inline(__always)
    func store(_ b: [UInt8]) -> (Int, Int) {
        let start = bytes.count
        bytes.append(contentsOf: b)
        return (start, b.count)
    }
}
