/// The worker's fence on a single Redis server: one ownership epoch per
/// source partition, checked once per write transaction instead of once per
/// entity.
///
/// Before its first write of a partition in an assignment (and whenever it
/// finds a newer epoch stored) a worker increments the partition's epoch key,
/// `<prefix>_fence:<topic>:<partition>` (a string, `INCR`), then confirms
/// with the consumer group that it still owns the partition
/// (`PartitionOwnership.confirm`: a synchronous offset commit, which the
/// group coordinator refuses from a member of an older generation), and
/// only then holds the epoch. Each flush is then one transaction:
///
///     WATCH <epoch keys of the flush's partitions>   MGET <the same keys>
///     MULTI   HSET …   PEXPIRE …   EXEC
///
/// The `WATCH` aborts the `EXEC` when an epoch changes between the check
/// and the write; the flush is then checked again. So the entity writes are
/// plain `HSET`s: no script, no per-entity `HGET` of the offset. The
/// per-entity offset `_o:<topic>:<partition>` is still written, because a
/// key loaded again (after an eviction, a restart or a rebalance) skips the
/// events its state already holds by it.
///
/// Why this is as strong as the per-entity offsets. A partition's owners
/// follow each other in the group's assignment order: the next owner is
/// assigned it only after the previous one revoked it (cooperative
/// rebalancing) or was expelled from the group. The next owner takes its
/// epoch after that, so a write of an older owner that lands after the new
/// owner's first write finds a newer epoch and is refused. An older owner
/// that then takes an epoch itself (it was paused, say, past the session
/// timeout, and finds itself fenced) takes a higher one, but it cannot hold
/// it: its confirming commit is refused (its generation is gone), or its
/// own consumer has already begun revoking the partition
/// (`PartitionOwnership.wasRevoked`, recorded before the rebalance can go
/// on); the partition is then lost to it: its entities are not written and
/// its offsets not committed, and the rightful owner, fenced once, takes
/// and confirms a newer epoch and writes again. A write of the older owner
/// that lands before the new owner's first write is harmless: it holds a
/// prefix of the partition's events for that key, and the new owner's state
/// of the key is built from a load plus every later event, so its write
/// covers it.
///
/// A loss ends only with the partition's revocation (`release`), so the
/// ownership confirmation answers "lost" only when the member is out of the
/// group or librdkafka gave the assignment up; a refusal that only means the
/// generation moved on under a rebalance, after which the member usually
/// keeps the partition, is retried (`GroupOwnership.confirm`, in EddyWorker).
///
/// A stored epoch older than the one held (or none) means Redis lost writes
/// (a restart without the AOF's last second, a flush): the holder writes it
/// again in the same transaction, as it would have been.
///
/// Redis Cluster keeps the per-entity script (`FencedBatchWrite`): a
/// transaction's keys must share a slot there. So do backfills (they may run
/// beside a worker without owning any partition) and workers given fixed
/// partitions (`--assign`: no group generation to confirm ownership with).
///
/// Measured (Benchmarks/README "Write cost per entity"): ~38k Redis
/// instructions per entity write against ~60k for the per-entity script.
public struct PartitionEpochs {
    /// What the flush's transaction does with one partition's entities.
    public enum Decision: Equatable, Sendable {
        /// Write them.
        case write
        /// Write them, and store `epoch` as the partition's epoch in the same
        /// transaction (Redis lost it, or it was never taken).
        case writeAndStore(epoch: Int64)
        /// Skip them: a newer owner holds the partition.
        case fenced
    }

    /// `<prefix>_fence:`, the start of every epoch key.
    public let keyPrefix: [UInt8]
    /// Epochs held, by partition name (`topic:partition`).
    public private(set) var held: [[UInt8]: Int64] = [:]

    public static let keyInfix = "_fence:"

    public init(entityPrefix: String) {
        keyPrefix = Array((entityPrefix + Self.keyInfix).utf8)
    }

    /// The epoch key of partition `name` (`topic:partition`).
    public func key(partition name: [UInt8]) -> [UInt8] { keyPrefix + name }

    /// Whether a Redis key is an epoch key of entity prefix `prefix` (scans of
    /// a prefix skip them).
    public static func isEpochKey(_ key: some Collection<UInt8>, entityPrefix prefix: String) -> Bool {
        let marker = Array((prefix + keyInfix).utf8)
        return key.count > marker.count && key.starts(with: marker)
    }

    /// Records the epoch taken for partition `name` (its `INCR`'s reply).
    public mutating func hold(_ epoch: Int64, partition name: [UInt8]) { held[name] = epoch }

    /// Forgets partition `name` (revoked): its epoch, and that it was lost.
    public mutating func release(partition name: [UInt8]) {
        held[name] = nil
        lost.remove(name)
    }

    /// Partitions this worker found it no longer owns, until their
    /// revocation reaches the writer: their entities are not written and
    /// their offsets not committed (the next owner reads them again).
    public private(set) var lost: Set<[UInt8]> = []

    /// Records that partition `name` is lost (see `lost`).
    public mutating func markLost(partition name: [UInt8]) {
        held[name] = nil
        lost.insert(name)
    }

    /// What to do with partition `name`'s entities, given the epoch Redis
    /// holds for it (`nil`: no such key).
    public func decide(partition name: [UInt8], stored: Int64?) -> Decision {
        guard let mine = held[name] else { return .fenced }  // lost, or never taken
        guard let stored else { return .writeAndStore(epoch: mine) }
        if stored == mine { return .write }
        return stored < mine ? .writeAndStore(epoch: mine) : .fenced
    }
}

/// What the worker knows of its partitions' ownership, asked by the writer
/// when it takes a partition epoch (`PartitionEpochs`). Partitions are named
/// `topic:partition`.
public protocol PartitionOwnership: AnyObject {
    /// Whether partition `name` is being or was revoked from this worker
    /// since the writer last acknowledged a revocation of it: entities of it
    /// that the writer holds belong to an ended assignment.
    func wasRevoked(_ name: [UInt8]) -> Bool
    /// Confirms with the consumer group that this member is still in the
    /// generation that assigned `names`: false when the group refused
    /// (a stale member). Throws when it cannot tell (the coordinator is
    /// unreachable, a rebalance is under way): the write is retried.
    func confirm(_ names: [[UInt8]]) throws -> Bool
}
