import Atomics
import EddyCore
import Foundation

/// What the worker has done, for logs, `/metrics` and benchmarks. Stages
/// add to these once per batch, never per event.
public final class WorkerCounters: Sendable {
    public let consumed = ManagedAtomic<Int>(0)
    /// Message batches handed from ingest to the shard.
    public let batches = ManagedAtomic<Int>(0)
    public let applied = ManagedAtomic<Int>(0)
    public let late = ManagedAtomic<Int>(0)
    public let invalid = ManagedAtomic<Int>(0)
    /// Events re-read after a restart that the loaded state already holds.
    public let duplicatesSkipped = ManagedAtomic<Int>(0)
    public let deadLettered = ManagedAtomic<Int>(0)
    public let deadLetterErrors = ManagedAtomic<Int>(0)
    public let keysLoaded = ManagedAtomic<Int>(0)
    public let keysInMemory = ManagedAtomic<Int>(0)
    public let keysEvicted = ManagedAtomic<Int>(0)
    public let stateIncompatible = ManagedAtomic<Int>(0)
    public let flushes = ManagedAtomic<Int>(0)
    public let entitiesWritten = ManagedAtomic<Int>(0)
    /// Writes refused by the fence (an older offset than Redis holds).
    public let writesFenced = ManagedAtomic<Int>(0)
    public let redisErrors = ManagedAtomic<Int>(0)
    public let kafkaErrors = ManagedAtomic<Int>(0)
    /// Holes found in partitions' offsets and read again (see
    /// `KafkaConsumer.offsetGaps`).
    public let offsetGaps = ManagedAtomic<Int>(0)
    public let commits = ManagedAtomic<Int>(0)
    public let commitErrors = ManagedAtomic<Int>(0)
    /// Messages the ingest has handed to the shard (less `consumed`: those
    /// waiting in the ring).
    public let handedToShard = ManagedAtomic<Int>(0)
    /// Catch-up waves finished (see `WorkerConfig.catchUpWaves`).
    public let catchUpWaves = ManagedAtomic<Int>(0)
    /// Invalid events per `RejectReason`, in `RejectReason.allCases` order.
    public let invalidByReason: [ManagedAtomic<Int>] = RejectReason.allCases.map { _ in ManagedAtomic(0) }
    /// Kafka timestamp -> Redis write acknowledged, per event.
    public let freshness = LatencyHistogram()
    /// Kafka timestamp -> handed to the shard, per event: the part of
    /// `freshness` spent before Eddy's pipeline (producer batching, the
    /// broker, fetching), to tell a slow upstream from a slow worker.
    public let consumeDelay = LatencyHistogram()
    /// Handed to the shard -> Redis write acknowledged, per event: the
    /// worker's own part of `freshness` (the shard's flush wait and the write).
    public let pipelineLatency = LatencyHistogram()
    /// Loading missing keys from Redis, per batch that needed it.
    public let loadLatency = LatencyHistogram()
    /// Time the shard spent applying a batch (loads included), per batch.
    public let batchLatency = LatencyHistogram()
    /// Flush write latency, per flush.
    public let flushLatency = LatencyHistogram()

    // MARK: Read by /metrics (EddyMetrics' collector); none of these changes what the worker does.

    /// Topics counted separately; a topology's later topics share the last slot.
    public static let maxTopics = 16
    /// Per source topic (index in the topology's `source.topics`). Only
    /// counted when the topology has more than one topic; with one, the
    /// totals above are that topic's.
    public let topicConsumed: [ManagedAtomic<Int>] = (0..<WorkerCounters.maxTopics).map { _ in ManagedAtomic(0) }
    public let topicApplied: [ManagedAtomic<Int>] = (0..<WorkerCounters.maxTopics).map { _ in ManagedAtomic(0) }
    public let topicLate: [ManagedAtomic<Int>] = (0..<WorkerCounters.maxTopics).map { _ in ManagedAtomic(0) }
    /// Invalid events per topic and reason: `[topic * RejectReason.allCases.count + reason]`.
    public let topicInvalidByReason: [ManagedAtomic<Int>] =
        (0..<(WorkerCounters.maxTopics * RejectReason.allCases.count)).map { _ in ManagedAtomic(0) }
    /// Failed Redis round trips (writes or state loads) that were retried.
    public let redisRetries = ManagedAtomic<Int>(0)
    /// Failed schema registry requests (unreachable, timeouts, 5xx).
    public let schemaRegistryErrors = ManagedAtomic<Int>(0)
    /// 1 while consumption is held because the schema registry cannot answer.
    public let schemaRegistryHeld = ManagedAtomic<Int>(0)
    /// Partitions assigned to this worker now.
    public let assignedPartitions = ManagedAtomic<Int>(0)
    /// Per-partition lag, published by the ingest thread every 100 ms.
    public let partitionLag = PartitionLagBoard()
    /// Messages behind the assigned partitions' high watermarks, summed
    /// (same sample as `partitionLag`); the shard's catch-up signal.
    public let backlog = ManagedAtomic<Int>(0)
    /// Entities per flush written to Redis (the histogram's values are counts, not microseconds).
    public let flushBatchSize = LatencyHistogram()
    /// Event time of each written entity's newest event (its key time K) ->
    /// Redis write acknowledged, per written entity.
    public let eventFreshness = LatencyHistogram()

    public init() {}

    /// The metrics slot of topic index `topicIndex`.
    @inlinable @inline(__always)
    public static func topicSlot(_ topicIndex: Int32) -> Int {
        min(max(Int(topicIndex), 0), maxTopics - 1)
    }

    public func count(_ reason: RejectReason) -> Int {
        invalidByReason[RejectReason.allCases.firstIndex(of: reason)!].load(ordering: .relaxed)
    }
}

/// A fixed-bucket latency histogram (microseconds, log-linear: 8 buckets
/// per power of two), written by one thread, read by any.
///
/// The recording functions are `@inlinable`: the worker's stages call them
/// once per batch over every event's timestamp, from another module, and
/// unspecialized generic iteration there cost 0.4 µs per event (the ingest's
/// CPU per 1M-event drain went from 0.15 to 0.51 s when this type moved here
/// from EddyWorker).
public final class LatencyHistogram: Sendable {
    @usableFromInline static let bucketCount = 8 * 40
    @usableFromInline let buckets: [ManagedAtomic<Int>] = (0..<LatencyHistogram.bucketCount).map { _ in ManagedAtomic(0) }
    public let total = ManagedAtomic<Int>(0)
    public let sumMicros = ManagedAtomic<Int>(0)

    public init() {}

    @inlinable
    static func bucket(_ us: Int) -> Int {
        if us < 8 { return max(us, 0) }
        let power = Int.bitWidth - 1 - us.leadingZeroBitCount  // >= 3
        let fraction = (us >> (power - 3)) & 7
        return min((power - 2) * 8 + fraction, bucketCount - 1)
    }

    static func lowerBound(_ b: Int) -> Int {
        if b < 8 { return b }
        let power = b / 8 + 2
        return (8 + b % 8) << (power - 3)
    }

    /// Records many observations with one atomic add per bucket used, not
    /// three per observation. `scratch` is the caller's reusable counts.
    @inlinable
    public func record(micros values: some Sequence<Int>, scratch: inout [Int]) {
        if scratch.count != Self.bucketCount { scratch = [Int](repeating: 0, count: Self.bucketCount) }
        var n = 0, sum = 0
        for us in values {
            let v = max(us, 0)
            scratch[Self.bucket(v)] += 1
            n += 1
            sum &+= v
        }
        guard n > 0 else { return }
        for b in 0..<Self.bucketCount where scratch[b] != 0 {
            buckets[b].wrappingIncrement(by: scratch[b], ordering: .relaxed)
            scratch[b] = 0
        }
        total.wrappingIncrement(by: n, ordering: .relaxed)
        sumMicros.wrappingIncrement(by: sum, ordering: .relaxed)
    }

    /// Records the age at `nowMs` of each epoch-ms timestamp (Kafka
    /// timestamps; those <= 0, i.e. missing, are left out), batched as above.
    @inlinable
    public func record(agesOf timestampsMs: some Sequence<Int64>, nowMs: Int64, scratch: inout [Int]) {
        record(micros: timestampsMs.lazy.filter { $0 > 0 }.map { Int(nowMs - $0) * 1000 }, scratch: &scratch)
    }

    /// Records `count` observations of `micros`.
    @inlinable
    public func record(micros: Int, count: Int = 1) {
        buckets[Self.bucket(max(micros, 0))].wrappingIncrement(by: count, ordering: .relaxed)
        total.wrappingIncrement(by: count, ordering: .relaxed)
        sumMicros.wrappingIncrement(by: max(micros, 0) * count, ordering: .relaxed)
    }

    /// The `q` quantile in microseconds (bucket lower bound), nil when empty.
    public func quantile(_ q: Double) -> Int? {
        let n = total.load(ordering: .relaxed)
        guard n > 0 else { return nil }
        let rank = Int((Double(n) * q).rounded(.up))
        var seen = 0
        for b in 0..<Self.bucketCount {
            seen += buckets[b].load(ordering: .relaxed)
            if seen >= max(rank, 1) { return Self.lowerBound(b + 1) }
        }
        return Self.lowerBound(Self.bucketCount)
    }

    /// The non-empty buckets, ascending: each holds the observations in
    /// `lower..<upper` microseconds. For exporters (`/metrics`).
    public func snapshot() -> [(lower: Int, upper: Int, count: Int)] {
        (0..<Self.bucketCount).compactMap { b in
            let n = buckets[b].load(ordering: .relaxed)
            return n > 0 ? (Self.lowerBound(b), Self.lowerBound(b + 1), n) : nil
        }
    }

    public func reset() {
        for b in buckets { b.store(0, ordering: .relaxed) }
        total.store(0, ordering: .relaxed)
        sumMicros.store(0, ordering: .relaxed)
    }
}

/// One partition's consumer lag as the worker last sampled it: a plain
/// value, so metrics need not import the Kafka client (EddyWorker makes it
/// from EddyKafka's `PartitionLag`).
public struct PartitionLagSample: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// Messages behind the high watermark; nil until both the watermark and
    /// the position are known.
    public var lag: Int64?

    public init(topic: String, partition: Int32, lag: Int64?) {
        self.topic = topic
        self.partition = partition
        self.lag = lag
    }
}

/// The latest per-partition lag snapshot: written by the ingest thread every
/// few seconds, read by `/metrics`. A lock, but off every hot path.
public final class PartitionLagBoard: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [PartitionLagSample] = []
    private var publishedAt: ContinuousClock.Instant?

    public init() {}

    /// Replaces the snapshot (the partitions assigned now).
    public func publish(_ lags: [PartitionLagSample]) {
        lock.lock()
        entries = lags
        publishedAt = .now
        lock.unlock()
    }

    /// The last snapshot, and when it was taken (nil: never).
    public var snapshot: (lags: [PartitionLagSample], at: ContinuousClock.Instant?) {
        lock.lock()
        defer { lock.unlock() }
        return (entries, publishedAt)
    }
}
