import EddyCore
import EddyMetrics
import EddyPipeline
import EddyRedis
import EddyStore
import Foundation
import Logging

/// The operator shard: owns every key's state, applies events in arrival
/// order, loads keys it has not seen from Redis, and hands snapshots of
/// dirty keys to the writer every flush interval.
///
/// The keys live in one `EntityShard` per entity (one in the single-key
/// form; with `entities:`, each entity's, every batch applied to each in
/// turn, so the topic is read once). A flush carries every entity's dirty
/// keys and the offsets they cover, committed once all are written.
///
/// Runs on one thread. Its only shared state is the rings and counters.
final class ShardStage {
    let config: WorkerConfig
    let entities: [EntityShard]
    let batches: Pool<RecordBatch<HandOver>>
    let flushes: Pool<FlushBatch>
    let input: SPSCRing<Int>  // message batches from ingest
    let freeBatches: SPSCRing<Int>  // back to ingest
    let flushOut: SPSCRing<Int>  // to the writer
    let freeFlushes: SPSCRing<Int>  // back from the writer
    let counters: WorkerCounters
    let logger: Logger
    let ttl: TTLPolicy
    let clockOrigin = ContinuousClock.now
    /// Flushes handed to the writer so far (the last one's `seq`).
    var flushSeq = 0
    let writtenFlush: ManagedAtomicBox
    /// Metrics per topic (several topics only).
    let perTopic: Bool

    /// Last offset seen per partition since the last flush, and in total.
    var seen: [PartitionID: Int64] = [:]
    var pendingHandOvers: [(at: ContinuousClock.Instant, events: Int)] = []
    var lastFlush = ContinuousClock.now
    let flushInterval: Duration

    init(config: WorkerConfig, batches: Pool<RecordBatch<HandOver>>, flushes: Pool<FlushBatch>, input: SPSCRing<Int>,
         freeBatches: SPSCRing<Int>, flushOut: SPSCRing<Int>, freeFlushes: SPSCRing<Int>,
         deadLetters: DeadLetterSink, counters: WorkerCounters, logger: Logger, redisURL: RedisTarget,
         writtenFlush: ManagedAtomicBox) {
        self.config = config
        let t = config.topology
        self.entities = config.entityTopologies.enumerated().map { i, e in
            EntityShard(topology: e, name: e.entityName, isFirst: i == 0, binary: config.binary, redisURL: redisURL,
                        deadLetters: deadLetters, counters: counters, logger: logger)
        }
        self.batches = batches
        self.flushes = flushes
        self.input = input
        self.freeBatches = freeBatches
        self.flushOut = flushOut
        self.freeFlushes = freeFlushes
        self.counters = counters
        self.logger = logger
        self.flushInterval = .milliseconds(t.sink.flushIntervalMs)
        self.ttl = TTLPolicy(ttlMs: t.sink.ttlMs)
        self.writtenFlush = writtenFlush
        self.perTopic = t.source.topics.count > 1
    }

    /// Dirty keys of every entity.
    var dirtyCount: Int {
        var n = 0
        for e in entities { n += e.dirty.count }
        return n
    }

    /// Keys (and parts) in memory, over every entity.
    var keysInMemory: Int {
        var n = 0
        for e in entities { n += e.engine.store.count }
        return n
    }

    /// The stage loop: until stopped and drained.
    ///
    /// Flushes are adaptive (group commit): when the writer is idle and no
    /// more events are waiting, dirty keys go out at once; while it is
    /// busy they wait for it, at most the flush interval, so the busier
    /// Redis is, the more updates per key each flush coalesces. When every
    /// flush batch is with the writer the shard keeps applying events and
    /// the dirty set grows. While catching up on a backlog flushes are
    /// spaced out (`updateFlushInterval`).
    func run(_ stop: StopToken) {
        while true {
            let interval = updateFlushInterval()
            let due = dirtyCount > 0 || !seen.isEmpty
            var untilFlush = due ? interval - (ContinuousClock.now - lastFlush) : interval
            // Catching up, look again soon: once caught up, flush at once.
            if catchingUp { untilFlush = min(untilFlush, .milliseconds(20)) }
            // Dirty keys and a busy writer: look again soon, it may be done.
            if due, config.flushWhenIdle, !catchingUp { untilFlush = min(untilFlush, .milliseconds(1)) }
            if let index = input.popBlocking(timeout: max(untilFlush, .microseconds(200))) {
                let batch = batches[index]
                process(batch)
                batch.reset(HandOver())
                _ = freeBatches.pushBlocking(index, timeout: nil)
            }
            if dirtyCount > 0 || !seen.isEmpty {
                // Again: the ingest may have found a backlog while the shard waited.
                let interval = updateFlushInterval()
                let writerIdle = config.flushWhenIdle && !catchingUp && input.isEmpty && freeFlushes.count == flushes.count
                if dirtyCount >= dirtyKeyBound {
                    // Dirty keys cannot be evicted: past the bound, wait for
                    // the writer (the rings then hold the ingest back) rather
                    // than let memory grow with Redis's pace.
                    flush(barrier: 0)
                } else if writerIdle || ContinuousClock.now - lastFlush >= interval {
                    if let free = freeFlushes.tryPop() { flush(into: free, barrier: 0) }
                }
            } else {
                lastFlush = ContinuousClock.now
            }
            if stop.isStopRequested && input.isEmpty {
                if dirtyCount > 0 || !seen.isEmpty { flush(barrier: 0) }
                return
            }
        }
    }

    /// Dirty keys that make the shard flush early, waiting for the writer
    /// if both flush batches are out: `maxDirtyKeys`, but at most a quarter
    /// of `maxKeysInMemory`. So the keys in memory stay below about
    /// `maxKeysInMemory + (flushesInFlight + 1) * (bound + batchSize)`
    /// (clean keys are evicted at each flush; in-flight and dirty ones wait). Dirty keys cannot be evicted, so
    /// while catching up (a flush every 3 s) a small `--max-keys` was
    /// overrun many times (a soak's worker at `--max-keys 50000` went from
    /// 72 to 102 MiB catching up after a slow phase and kept it; a test's
    /// worker at `--max-keys 2000` held 25,911 keys); flushed, they become
    /// clean and evictable.
    var dirtyKeyBound: Int { min(config.maxDirtyKeys, max(config.maxKeysInMemory / 4, 1024)) }

    /// Updates `catchingUp` from the ingest's backlog and returns the flush
    /// interval to use: the topology's, or `WorkerConfig.catchUpFlushInterval`
    /// while the consumer is far behind: from a backlog of
    /// `WorkerConfig.catchUpBacklog` messages until it is down to 1% of
    /// that. (Leaving at the entry level would flush nearly every key once
    /// more just before the final flush writes them all again.)
    func updateFlushInterval() -> Duration {
        // Behind Kafka's high watermarks, plus what the ingest has fetched
        // and the shard not yet applied: a drain's last batches still wait
        // in the ring when Kafka's lag reads 0.
        let queued = counters.handedToShard.load(ordering: .relaxed) - counters.consumed.load(ordering: .relaxed)
        let backlog = counters.backlog.load(ordering: .relaxed) + max(queued, 0)
        if !catchingUp, backlog >= config.catchUpBacklog {
            catchingUp = true
            logger.info("catching up: \(backlog) messages behind; flushing every \(config.catchUpFlushInterval) until below \(config.catchUpBacklog / 100)")
        } else if catchingUp, backlog < config.catchUpBacklog / 100 {
            catchingUp = false
            logger.info("caught up (\(backlog) messages behind): flushing every \(flushInterval) again")
        }
        return catchingUp ? max(config.catchUpFlushInterval, flushInterval) : flushInterval
    }
    var catchingUp = false

    // MARK: Applying

    func process(_ batch: RecordBatch<HandOver>) {
        let started = ContinuousClock.now
        defer { counters.batchLatency.record(micros: Int((ContinuousClock.now - started) / .microseconds(1))) }
        if case .barrier(let id, let revoked) = batch.info.control {
            flush(barrier: id, revoked: revoked ?? [])
            if let revoked {
                let gone = Set(revoked)
                for e in entities { e.evict(partitions: gone) }
                counters.keysInMemory.store(keysInMemory, ordering: .relaxed)
            }
            return
        }
        if batch.info.control == .flush {
            flush(barrier: 0)
            return
        }
        noteOffsets(batch)
        var counts = EntityShard.BatchCounts()
        for e in entities { e.apply(batch, perTopic: perTopic, into: &counts) }
        if counts.mostApplied > 0 { pendingHandOvers.append((batch.info.handedOverAt, counts.mostApplied)) }
        counters.consumed.wrappingIncrement(by: batch.count, ordering: .relaxed)
        counters.batches.wrappingIncrement(ordering: .relaxed)
        counters.applied.wrappingIncrement(by: counts.applied, ordering: .relaxed)
        counters.late.wrappingIncrement(by: counts.late, ordering: .relaxed)
        counters.invalid.wrappingIncrement(by: counts.invalid, ordering: .relaxed)
        counters.duplicatesSkipped.wrappingIncrement(by: counts.duplicates, ordering: .relaxed)
        counters.keysInMemory.store(keysInMemory, ordering: .relaxed)
    }

    /// Records the last offset of each partition in `batch`, once per run
    /// of records of one partition rather than per record (a dictionary write).
    func noteOffsets(_ batch: RecordBatch<HandOver>) {
        var run = (pid: PartitionID(topicIndex: -1, partition: -1), offset: Int64(-1))
        for i in 0..<batch.count {
            let r = batch.records[i]
            if r.pid != run.pid {
                if run.offset >= 0 { seen[run.pid] = run.offset }
                run.pid = r.pid
            }
            run.offset = r.offset
        }
        if run.offset >= 0 { seen[run.pid] = run.offset }
    }

    // MARK: Flushing

    /// Hands every dirty key and the offsets seen to the writer. `barrier`
    /// (non-zero) asks the writer to commit synchronously and report it.
    func flush(barrier: Int, revoked: [PartitionID] = []) {
        guard let index = freeFlushes.popBlocking(timeout: nil) else { return }
        flush(into: index, barrier: barrier, revoked: revoked)
    }

    func flush(into index: Int, barrier: Int, revoked: [PartitionID] = []) {
        let fb = flushes[index]
        fb.reset()
        fb.barrierID = barrier
        fb.revoked = revoked
        flushSeq += 1
        fb.seq = flushSeq
        let nowMs = Int64((ContinuousClock.now - clockOrigin) / .milliseconds(1))
        for e in entities { e.appendWrites(to: fb.writes, seq: flushSeq, nowMs: nowMs, ttl: ttl) }
        for (pid, offset) in seen { fb.commits.append((pid, offset + 1)) }
        seen.removeAll(keepingCapacity: true)
        swap(&fb.eventTimestamps, &entities[0].pendingTimestamps)
        entities[0].pendingTimestamps.removeAll(keepingCapacity: true)
        swap(&fb.handOvers, &pendingHandOvers)
        pendingHandOvers.removeAll(keepingCapacity: true)
        lastFlush = ContinuousClock.now
        _ = flushOut.pushBlocking(index, timeout: nil)
        evictIdle()
    }

    /// Above `maxKeysInMemory` (each entity's equal share of it), forgets
    /// idle clean keys whose last write Redis holds (`EntityShard.evictIdle`).
    func evictIdle() {
        let bound = max(config.maxKeysInMemory / entities.count, 1)
        let written = writtenFlush.load()
        for e in entities { e.evictIdle(bound: bound, written: written) }
        counters.keysInMemory.store(keysInMemory, ordering: .relaxed)
    }
}
