import EddyKafka
import EddyStore
import Synchronization

/// Revocations the ingest thread has begun (inside librdkafka's revoke
/// callback, so before the rebalance can go on and another member can be
/// given the partitions) and the writer has not yet reached (the barrier
/// flush that carries them). Until then, entities of those partitions that
/// the writer holds belong to an ended assignment.
final class RevocationLog: Sendable {
    private let pending = Mutex<[[UInt8]: Int]>([:])

    /// The ingest thread, before it pushes the revoking barrier.
    func begin(_ names: [[UInt8]]) {
        pending.withLock { p in for n in names { p[n, default: 0] += 1 } }
    }

    /// The writer, once it has handled the revoking barrier.
    func acknowledge(_ names: [[UInt8]]) {
        pending.withLock { p in
            for n in names {
                guard let c = p[n] else { continue }
                p[n] = c > 1 ? c - 1 : nil
            }
        }
    }

    func isPending(_ name: [UInt8]) -> Bool { pending.withLock { $0[name] != nil } }
}

/// The writer's `PartitionOwnership` for a consumer-group member: a
/// synchronous commit confirms the member's generation, since the group
/// coordinator refuses commits from a member that is no longer in the
/// group's current generation (`ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID`).
/// The commit re-commits what is already committed, so it moves nothing:
/// the writer's latest offset of the partition, else the group's committed
/// offset, else the partition's first offset (where `auto.offset.reset`
/// earliest starts). Runs on the writer thread: librdkafka's commit and
/// offset queries are thread-safe (the ingest thread owns the rest).
final class GroupOwnership: PartitionOwnership {
    let consumer: KafkaConsumer
    let revocations: RevocationLog
    /// The writer's latest committed (or attempted) offset of a partition.
    let latest: (TopicPartition) -> Int64?

    init(consumer: KafkaConsumer, revocations: RevocationLog, latest: @escaping (TopicPartition) -> Int64?) {
        self.consumer = consumer
        self.revocations = revocations
        self.latest = latest
    }

    func wasRevoked(_ name: [UInt8]) -> Bool { revocations.isPending(name) }

    func confirm(_ names: [[UInt8]]) throws -> Bool {
        var offsets: [TopicPartitionOffset] = []
        var unknown: [TopicPartition] = []
        for name in names {
            let tp = try Self.topicPartition(name)
            if let offset = latest(tp) { offsets.append(TopicPartitionOffset(topic: tp.topic, partition: tp.partition, offset: offset)) } else { unknown.append(tp) }
        }
        if !unknown.isEmpty {
            let committed = try consumer.committed(partitions: unknown)
            for c in committed {
                let offset = c.offset >= 0 ? c.offset : try consumer.watermarks(topic: c.topic, partition: c.partition).low
                offsets.append(TopicPartitionOffset(topic: c.topic, partition: c.partition, offset: offset))
            }
        }
        let refusal: KafkaError?
        do {
            try consumer.commit(offsets: offsets, async: false)
            refusal = nil
        } catch {
            refusal = error
        }
        guard let refusal else {
            staleSince = nil
            return true
        }
        if refusal.code == .illegalGeneration && !consumer.assignmentLost {
            // The commit carried a generation the group has just left, but
            // librdkafka has not given the assignment up: a rebalance was
            // already under way (it then skips its "assignment lost"
            // handling), and with cooperative-sticky the member usually
            // keeps these partitions in the new generation, without a
            // revocation. Marking them lost here would stop them for good
            // (only a revocation ends a loss), so the write is retried until
            // the new generation answers (or librdkafka gives the assignment
            // up and revokes it), for at most `staleGenerationPatience`.
            let now = ContinuousClock.now
            let since = staleSince ?? now
            staleSince = since
            if now - since < staleGenerationPatience {
                throw OwnershipNotConfirmed(partitions: names.map { String(decoding: $0, as: UTF8.self) }, refusal: refusal)
            }
        }
        staleSince = nil
        if Self.stale.contains(refusal.code) { return false }
        throw refusal
    }

    /// How long a stale-generation refusal is retried while librdkafka
    /// still holds the assignment (see `confirm`) before the partitions are
    /// marked lost after all.
    let staleGenerationPatience: Duration = .seconds(30)
    /// When the current run of stale-generation refusals began.
    private var staleSince: ContinuousClock.Instant?

    /// The group's answers that mean this member is no longer the one it
    /// assigned the partitions to.
    static let stale: Set<KafkaErrorCode> = [.illegalGeneration, .unknownMemberId,
                                             KafkaErrorCode(rawValue: 82)]  // FENCED_INSTANCE_ID

    /// `topic:partition` (topic names cannot hold `:`).
    static func topicPartition(_ name: [UInt8]) throws -> TopicPartition {
        guard let colon = name.lastIndex(of: UInt8(ascii: ":")),
              let partition = Int32(String(decoding: name[(colon + 1)...], as: UTF8.self)) else {
            throw WorkerError("not a partition name: \(String(decoding: name, as: UTF8.self))")
        }
        return TopicPartition(topic: String(decoding: name[..<colon], as: UTF8.self), partition: partition)
    }
}

/// The group refused an ownership confirmation with a generation it has
/// just left, while librdkafka still holds the assignment: the write waits
/// for the rebalance to settle (`GroupOwnership.confirm`).
struct OwnershipNotConfirmed: Error, CustomStringConvertible {
    let partitions: [String]
    let refusal: KafkaError

    var description: String {
        "ownership of \(partitions.sorted().joined(separator: ", ")) not confirmed yet: the group's generation moved on under a rebalance (\(refusal))"
    }
}
