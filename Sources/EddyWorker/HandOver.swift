import EddyCore

/// What a batch asks of the shard besides its messages.
enum BatchControl: Sendable, Equatable {
    case none
    /// Flush everything applied so far, commit it, then forget the keys of
    /// these partitions (a revoke); `nil` keeps all keys.
    case barrier(id: Int, revoked: [PartitionID]?)
    /// Flush everything applied so far now, without waiting for the writer
    /// (the end of a catch-up wave).
    case flush
}

/// A topic index and partition, packed for cheap hashing.
struct PartitionID: Hashable, Sendable {
    var topicIndex: Int32
    var partition: Int32
}

/// What the ingest hands the shard with a batch of messages besides the
/// messages. The batches (`RecordBatch<HandOver>`, a record's `source` is
/// its topic index) go from ingest to shard by index through a ring.
struct HandOver {
    var control = BatchControl.none
    /// When ingest handed the batch to the shard (pipeline latency).
    var handedOverAt = ContinuousClock.now
}

extension RecordBatch.Record {
    /// The worker numbers its sources by topic.
    var topicIndex: Int32 { source }
    var pid: PartitionID { PartitionID(topicIndex: source, partition: partition) }
}

/// A fixed set of objects handed between two threads by index. The array
/// never changes; each element is used by one thread at a time, as the
/// rings that carry the indices guarantee.
final class Pool<Element: AnyObject>: @unchecked Sendable {
    let items: [Element]
    init(_ items: [Element]) { self.items = items }
    subscript(i: Int) -> Element { items[i] }
    var count: Int { items.count }
}
