import Atomics
import EddyCore
import EddyKafka
import EddyMetrics
import EddyPipeline
import EddyRedis
import EddyStore
import Foundation
import Logging

/// The Redis writer: one pipelined, fenced script call per dirty entity;
/// then, only once Redis acknowledged them, the offsets they cover are
/// committed to Kafka.
final class WriterStage {
    let flushes: Pool<FlushBatch>
    let input: SPSCRing<Int>
    let free: SPSCRing<Int>
    let counters: WorkerCounters
    let logger: Logger
    let redisURL: RedisTarget
    let ttl: TTLPolicy
    let topics: [String]
    /// `WorkerConfig.fencedWrites`.
    var fenced = true
    let committer: OffsetCommitter
    let deadLetters: DeadLetterSink
    /// The last barrier whose writes and commit are done.
    let barrierDone: BarrierSignal
    /// The `seq` of the last flush whose entities Redis acknowledged.
    let writtenFlush: ManagedAtomicBox
    let script = RedisScript(FencedBatchWrite.source)
    var redis: RedisClient?
    /// How a flush's entities group into calls on a Redis Cluster (reused).
    var clusterPlan = ClusterWritePlan()
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

    init(flushes: Pool<FlushBatch>, input: SPSCRing<Int>, free: SPSCRing<Int>, counters: WorkerCounters,
         logger: Logger, redisURL: RedisTarget, ttlMs: Int64, topics: [String], committer: OffsetCommitter,
         deadLetters: DeadLetterSink, barrierDone: BarrierSignal, writtenFlush: ManagedAtomicBox) {
        self.flushes = flushes
        self.input = input
        self.free = free
        self.counters = counters
        self.logger = logger
        self.redisURL = redisURL
        self.ttl = TTLPolicy(ttlMs: ttlMs)
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

    func write(_ fb: FlushBatch, stop: StopToken) {
        let started = ContinuousClock.now
        if !fb.entities.isEmpty { writeEntities(fb) }
        writtenFlush.store(fb.seq)
        // Freshness ends at Redis's acknowledgement; the commit is bookkeeping.
        let now = ContinuousClock.now
        let wallMs = Int64(Date().timeIntervalSince1970 * 1000)
        counters.flushLatency.record(micros: Int((now - started) / .microseconds(1)))
        counters.freshness.record(agesOf: fb.eventTimestamps, nowMs: wallMs, scratch: &histogramScratch)
        for h in fb.handOvers { counters.pipelineLatency.record(micros: Int((now - h.at) / .microseconds(1)), count: h.events) }
        if !fb.entities.isEmpty { observeWritten(fb, wallMs: wallMs) }
        // Offsets only grow from flush to flush: the newest per partition wins.
        if pendingCommits.isEmpty && !fb.commits.isEmpty { pendingSince = now }
        for (pid, offset) in fb.commits { pendingCommits[pid] = offset }
        commitPending(force: fb.barrierID != 0)
        for pid in fb.revoked { latest[pid] = nil }
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

    /// Error replies that say "not now" (Redis loading, out of memory, a
    /// failover, ...): the write did not happen and must be retried, never
    /// skipped, or the commit that follows would lose its events.
    static func isRetryable(_ message: String) -> Bool {
        if RedisError.server(message: message).isTransient { return true }
        switch RedisError.server(message: message).serverErrorCode {
        case "OOM", "READONLY", "NOREPLICAS", "NOSCRIPT", "MISCONF": return true
        default: return false
        }
    }

    /// Metrics of the entities just written: flush size, event-time
    /// freshness (now - K per entity), and the observer hook.
    func observeWritten(_ fb: FlushBatch, wallMs: Int64) {
        counters.flushBatchSize.record(micros: fb.entities.count)
        fb.bytes.withUnsafeBytes { bytes in
            // Field pairs start with `_state`, <blob> (ShardStage.flush).
            let state = { (i: Int) -> UnsafeRawBufferPointer in
                let (start, length) = fb.fieldRanges[fb.entities[i].fieldsStart + 1]
                return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
            }
            for i in fb.entities.indices {
                let blob = state(i)
                guard blob.count >= 2 else { continue }
                let kOffset = 2 + Int(blob.loadUnaligned(as: UInt16.self))
                guard blob.count >= kOffset + 8 else { continue }
                let k = blob.loadUnaligned(fromByteOffset: kOffset, as: Int64.self)
                if k > 0 && k <= wallMs { counters.eventFreshness.record(micros: Int(wallMs - k) * 1000) }
            }
            observer?.written(count: fb.entities.count, state: state)
        }
    }

    /// Writes every entity, retrying the whole batch until Redis takes it:
    /// fenced writes make a retry harmless.
    func writeEntities(_ fb: FlushBatch) {
        var attempt = 0
        while true {
            do {
                let per = FencedBatchWrite.entitiesPerCall
                let replies: [RedisReply]
                let clustered: Bool
                switch try connection() {
                case .single(let redis) where !fenced:
                    try writeUnfenced(fb, to: redis)
                    return
                case .single(let redis):
                    clustered = false
                    let calls = (fb.entities.count + per - 1) / per
                    replies = try fb.bytes.withUnsafeBytes { bytes in
                        try redis.evalshaPipeline(script, count: calls) { c, call in
                            call.arguments.add(ttl.expiryMs)
                            for i in (c * per)..<min((c + 1) * per, fb.entities.count) {
                                Self.addEntity(i, of: fb, bytes: bytes, to: &call)
                            }
                        }
                    }
                case .cluster(let cluster):
                    clustered = true
                    replies = try writeClustered(fb, to: cluster)
                }
                var written = 0, fenced = 0
                if let retry = replies.lazy.compactMap(\.errorMessage).first(where: Self.isRetryable) {
                    throw RedisError.server(message: retry)
                }
                for (c, reply) in replies.enumerated() {
                    let inCall = clustered ? clusterPlan.entities(ofCall: c).count : min((c + 1) * per, fb.entities.count) - c * per
                    if let message = reply.errorMessage {
                        logger.error("a fenced write failed in Redis: \(message)")
                        counters.redisErrors.wrappingIncrement(ordering: .relaxed)
                    } else {
                        let n = Int(reply.integer ?? 0)
                        written += n
                        fenced += inCall - n
                    }
                }
                counters.entitiesWritten.wrappingIncrement(by: written, ordering: .relaxed)
                counters.writesFenced.wrappingIncrement(by: fenced, ordering: .relaxed)
                return
            } catch {
                counters.redisErrors.wrappingIncrement(ordering: .relaxed)
                counters.redisRetries.wrappingIncrement(ordering: .relaxed)
                redis?.close()
                redis = nil
                attempt += 1
                let delay = min(50 * (1 << min(attempt, 5)), 2000)
                logger.warning("writing \(fb.entities.count) entities to Redis failed (attempt \(attempt)), retrying in \(delay) ms: \(error)")
                Thread.sleep(forTimeInterval: Double(delay) / 1000)
            }
        }
    }

    /// The at-least-once baseline (`WorkerConfig.fencedWrites` false): the
    /// same fields and offset, written unconditionally.
    func writeUnfenced(_ fb: FlushBatch, to redis: RedisConnection) throws {
        var replies = fb.entities.count
        try fb.bytes.withUnsafeBytes { bytes in
            for i in fb.entities.indices {
                let e = fb.entities[i]
                let key = UnsafeRawBufferPointer(rebasing: bytes[e.keyStart..<(e.keyStart + e.keyLength)])
                try redis.append(building: { b in
                    b.add("HSET")
                    b.add(key)
                    b.addJoined(EntityLayout.offsetFieldPrefix,
                                UnsafeRawBufferPointer(rebasing: bytes[e.partitionStart..<(e.partitionStart + e.partitionLength)]))
                    b.add(e.offset)
                    for f in e.fieldsStart..<(e.fieldsStart + e.fieldCount) {
                        let (start, length) = fb.fieldRanges[f]
                        b.add(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
                    }
                })
                if e.rearmTTL {
                    try redis.append("PEXPIRE", key, ttl.expiryMs)
                    replies += 1
                }
            }
        }
        let summary = try redis.drain(count: replies)
        if let message = summary.firstError {
            if Self.isRetryable(message) { throw RedisError.server(message: message) }
            logger.error("a write failed in Redis: \(message)")
            counters.redisErrors.wrappingIncrement(ordering: .relaxed)
        }
        counters.entitiesWritten.wrappingIncrement(by: fb.entities.count, ordering: .relaxed)
    }

    func connection() throws -> RedisClient {
        if let redis { return redis }
        let c = try RedisClient(redisURL)
        try c.scriptLoad(script)
        redis = c
        return c
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
