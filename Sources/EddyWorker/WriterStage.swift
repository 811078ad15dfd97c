import Atomics
import EddyCore
import EddyKafka
import EddyMetrics
import EddyPipeline
import EddyRedis
import EddyStore
import Foundation
import Logging

/// The Redis writer: a flush's dirty entities go out through the store's
/// `EntityWriter` (pipelined fenced batch writes, retried until Redis takes
/// them); then, only once Redis acknowledged them, the offsets they cover
/// are committed to Kafka.
final class WriterStage {
    let flushes: Pool<FlushBatch>
    let input: SPSCRing<Int>
    let free: SPSCRing<Int>
    let counters: WorkerCounters
    let logger: Logger
    /// Writes the flushes' entities.
    let store: EntityWriter
    let topics: [String]
    /// `WorkerConfig.fencedWrites`.
    var fenced: Bool {
        get { store.fenced }
        set { store.fenced = newValue }
    }
    let committer: OffsetCommitter
    let deadLetters: DeadLetterSink
    /// The last barrier whose writes and commit are done.
    let barrierDone: BarrierSignal
    /// The `seq` of the last flush whose entities Redis acknowledged.
    let writtenFlush: ManagedAtomicBox
    /// Metrics hook (`WorkerConfig.writtenStateObserver`).
    var observer: (any WrittenStateObserver)?
    /// Latest committed-or-attempted offset per owned partition, and the
    /// Kafka/commit error count when they were last (re)committed.
    var latest: [PartitionID: Int64] = [:]
    var errorsSeen = 0
    var lastRecommit = ContinuousClock.now
    /// Reused bucket counts for batched histogram updates.
    var histogramScratch: [Int] = []
    /// Offsets written to Redis but not yet committed (`commitPending`),
    /// since when, and when the last commit went out.
    var pendingCommits: [PartitionID: Int64] = [:]
    var pendingSince = ContinuousClock.now
    var lastCommit = ContinuousClock.now
    /// `WorkerConfig.commitInterval`.
    var commitInterval: Duration = .milliseconds(100)
    /// With the per-partition epoch fence (`usePartitionEpochs`): the
    /// revocations the writer acknowledges as it reaches their barriers.
    var revocations: RevocationLog?
    /// `topic:partition` as bytes, made once per partition.
    var partitionNames: [PartitionID: [UInt8]] = [:]

    init(flushes: Pool<FlushBatch>, input: SPSCRing<Int>, free: SPSCRing<Int>, counters: WorkerCounters,
         logger: Logger, redisURL: RedisTarget, ttlMs: Int64, topics: [String], committer: OffsetCommitter,
         deadLetters: DeadLetterSink, barrierDone: BarrierSignal, writtenFlush: ManagedAtomicBox) {
        self.flushes = flushes
        self.input = input
        self.free = free
        self.counters = counters
        self.logger = logger
        self.store = EntityWriter(target: redisURL, ttl: TTLPolicy(ttlMs: ttlMs))
        self.topics = topics
        self.committer = committer
        self.deadLetters = deadLetters
        self.barrierDone = barrierDone
        self.writtenFlush = writtenFlush
    }

    func run(_ stop: StopToken) {
        while true {
            if let index = input.popBlocking(timeout: .milliseconds(20)) {
                let fb = flushes[index]
                write(fb, stop: stop)
                fb.reset()
                _ = free.pushBlocking(index, timeout: nil)
            } else if stop.isStopRequested {
                commitPending(force: true)
                return
            } else {
                commitPending(force: false)
                recommitAfterErrors()
            }
        }
    }

    /// Switches the writes to the per-partition epoch fence
    /// (`PartitionEpochs`), ownership confirmed through the group member
    /// `consumer`, revocations recorded in `log` by the ingest thread.
    func usePartitionEpochs(entityPrefix: String, consumer: KafkaConsumer, log: RevocationLog) {
        revocations = log
        store.partitionEpochs = PartitionEpochs(entityPrefix: entityPrefix)
        store.ownership = GroupOwnership(consumer: consumer, revocations: log) { [unowned self] tp in
            guard let t = topics.firstIndex(of: tp.topic) else { return nil }
            return latest[PartitionID(topicIndex: Int32(t), partition: tp.partition)]
        }
    }

    func partitionName(_ pid: PartitionID) -> [UInt8] {
        if let name = partitionNames[pid] { return name }
        let name = Array("\(topics[Int(pid.topicIndex)]):\(pid.partition)".utf8)
        partitionNames[pid] = name
        return name
    }

    func write(_ fb: FlushBatch, stop: StopToken) {
        let started = ContinuousClock.now
        if !fb.writes.isEmpty {
            let lostBefore = store.partitionEpochs?.lost.count ?? 0
            writeEntities(fb)
            if let lost = store.partitionEpochs?.lost, lost.count > lostBefore {
                logger.warning("lost \(lost.count) partition(s) to a newer owner (\(lost.map { String(decoding: $0, as: UTF8.self) }.sorted().joined(separator: ", "))): their writes and offsets are left to it")
            }
        }
        writtenFlush.store(fb.seq)
        // Freshness ends at Redis's acknowledgement; the commit is bookkeeping.
        let now = ContinuousClock.now
        let wallMs = Int64(Date().timeIntervalSince1970 * 1000)
        counters.flushLatency.record(micros: Int((now - started) / .microseconds(1)))
        counters.freshness.record(agesOf: fb.eventTimestamps, nowMs: wallMs, scratch: &histogramScratch)
        for h in fb.handOvers { counters.pipelineLatency.record(micros: Int((now - h.at) / .microseconds(1)), count: h.events) }
        if !fb.writes.isEmpty { observeWritten(fb, wallMs: wallMs) }
        // Offsets only grow from flush to flush: the newest per partition wins.
        if pendingCommits.isEmpty && !fb.commits.isEmpty { pendingSince = now }
        // A partition lost to a newer owner (`PartitionEpochs.lost`) commits
        // nothing: its entities were not written, the new owner reads them.
        for (pid, offset) in fb.commits where store.partitionEpochs == nil || !store.isLost(partition: partitionName(pid)) {
            pendingCommits[pid] = offset
        }
        commitPending(force: fb.barrierID != 0)
        for pid in fb.revoked { latest[pid] = nil }
        if let revocations, !fb.revoked.isEmpty {
            let names = fb.revoked.map(partitionName)
            store.releaseEpochs(partitions: names)
            revocations.acknowledge(names)
        }
        counters.flushes.wrappingIncrement(ordering: .relaxed)
        if fb.barrierID != 0 { barrierDone.signal(fb.barrierID) }
    }

    /// Commits the offsets of everything written so far, at most every
    /// `commitInterval` (each commit is a write to Kafka's offsets topic;
    /// the fences make the events a restart re-reads harmless), and only
    /// once the dead letters of the events they cover are delivered. While
    /// dead letters are in flight the commit waits, without holding up the
    /// next writes, for up to a second; then the writer waits for them.
    /// `force` (barriers, shutdown): now, synchronously.
    func commitPending(force: Bool) {
        guard !pendingCommits.isEmpty else { return }
        if !force {
            let now = ContinuousClock.now
            guard now - lastCommit >= commitInterval else { return }
            if deadLetters.hasUndelivered && now - pendingSince < .seconds(1) { return }
        }
        while !deadLetters.awaitDelivery(timeoutMs: 1000) {
            logger.warning("dead-letter delivery is slow; holding the offset commit")
        }
        let offsets = pendingCommits.map { TopicPartitionOffset(topic: topics[Int($0.key.topicIndex)], partition: $0.key.partition, offset: $0.value) }
        committer.commit(offsets, synchronous: force)
        for (pid, offset) in pendingCommits { latest[pid] = offset }
        pendingCommits.removeAll(keepingCapacity: true)
        lastCommit = ContinuousClock.now
    }

    /// An async commit that fails is reported only later, to the ingest
    /// thread (as a Kafka error), and a partition without new events never
    /// commits again: its group lag would stay up forever. So after any Kafka
    /// or commit error, when idle (at most once a second), commit every owned
    /// partition's latest offset again; its writes are all acknowledged.
    func recommitAfterErrors() {
        let errors = counters.kafkaErrors.load(ordering: .relaxed) + counters.commitErrors.load(ordering: .relaxed)
        guard errors != errorsSeen, !latest.isEmpty, ContinuousClock.now - lastRecommit >= .seconds(1) else { return }
        errorsSeen = errors
        lastRecommit = ContinuousClock.now
        let offsets = latest.map { TopicPartitionOffset(topic: topics[Int($0.key.topicIndex)], partition: $0.key.partition, offset: $0.value) }
        committer.commit(offsets, synchronous: false)
    }

    /// Metrics of the entities just written: flush size, event-time
    /// freshness (now - K per entity), and the observer hook.
    func observeWritten(_ fb: FlushBatch, wallMs: Int64) {
        counters.flushBatchSize.record(micros: fb.writes.count)
        fb.writes.withStates { state in
            for i in 0..<fb.writes.count {
                guard let k = StoredEntity.keyTime(ofState: state(i)) else { continue }
                if k > 0 && k <= wallMs { counters.eventFreshness.record(micros: Int(wallMs - k) * 1000) }
            }
            observer?.written(count: fb.writes.count, state: state)
        }
    }

    /// Writes every entity; the store retries until Redis takes them (the
    /// fences make a retry harmless).
    func writeEntities(_ fb: FlushBatch) {
        let counts: EntityWriter.Counts
        do {
            counts = try store.write(fb.writes) { error, attempt, wait in
                if error is OwnershipNotConfirmed {
                    counters.kafkaErrors.wrappingIncrement(ordering: .relaxed)
                    logger.info("writing \(fb.writes.count) entities waits for the consumer group (attempt \(attempt)), retrying in \(Int(wait / .milliseconds(1))) ms: \(error)")
                    return
                }
                counters.redisErrors.wrappingIncrement(ordering: .relaxed)
                counters.redisRetries.wrappingIncrement(ordering: .relaxed)
                logger.warning("writing \(fb.writes.count) entities to Redis failed (attempt \(attempt)), retrying in \(Int(wait / .milliseconds(1))) ms: \(error)")
            }
        } catch {
            preconditionFailure("the worker's writes retry until Redis takes them: \(error)")
        }
        if let message = counts.firstError {
            logger.error("\(counts.failedCalls) write call(s) failed in Redis: \(message)")
            counters.redisErrors.wrappingIncrement(by: counts.failedCalls, ordering: .relaxed)
        }
        counters.entitiesWritten.wrappingIncrement(by: counts.written, ordering: .relaxed)
        counters.writesFenced.wrappingIncrement(by: counts.fenced, ordering: .relaxed)
    }
}

/// Commits offsets through the consumer (librdkafka's commit is
/// thread-safe), counting failures: a failed commit only means a restart
/// re-reads more, and the fences skip what Redis already has.
final class OffsetCommitter: @unchecked Sendable {
    // The consumer is used here only for commit, which librdkafka allows
    // from any thread; the ingest thread owns everything else.
    let consumer: KafkaConsumer
    let counters: WorkerCounters
    let logger: Logger

    init(consumer: KafkaConsumer, counters: WorkerCounters, logger: Logger) {
        self.consumer = consumer
        self.counters = counters
        self.logger = logger
    }

    func commit(_ offsets: [TopicPartitionOffset], synchronous: Bool) {
        do {
            try consumer.commit(offsets: offsets, async: !synchronous)
            counters.commits.wrappingIncrement(ordering: .relaxed)
        } catch {
            counters.commitErrors.wrappingIncrement(ordering: .relaxed)
            logger.debug("offset commit failed: \(error)")
        }
    }
}

/// The latest finished barrier id, waited on by the ingest thread.
final class BarrierSignal: Sendable {
    let value = ManagedAtomicBox()

    func signal(_ id: Int) { value.store(id) }

    /// Waits until barrier `id` is done; false on timeout.
    func wait(for id: Int, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while value.load() < id {
            if ContinuousClock.now >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.001)
        }
        return true
    }
}

final class ManagedAtomicBox: Sendable {
    let atomic = ManagedAtomic<Int>(0)
    func store(_ v: Int) { atomic.store(v, ordering: .releasing) }
    func load() -> Int { atomic.load(ordering: .acquiring) }
}
