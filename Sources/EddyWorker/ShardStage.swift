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
/// Runs on one thread. Its only shared state is the rings and counters.
final class ShardStage {
    let config: WorkerConfig
    let engine: FeatureEngine
    /// Applies a batch's events with lookahead and prefetch, as replay does;
    /// an event is the index of its record in the batch.
    let applier: LookaheadApplier<Int>
    let batches: Pool<RecordBatch<HandOver>>
    let flushes: Pool<FlushBatch>
    let input: SPSCRing<Int>  // message batches from ingest
    let freeBatches: SPSCRing<Int>  // back to ingest
    let flushOut: SPSCRing<Int>  // to the writer
    let freeFlushes: SPSCRing<Int>  // back from the writer
    let deadLetters: DeadLetterSink
    let counters: WorkerCounters
    let logger: Logger
    /// Loads the keys not in memory from Redis.
    let loader: EntityLoader
    let prefix: [UInt8]
    let fingerprint: [UInt8]

    // Per slot, in step with `engine.store`'s slot ids.
    var appliedPartition: [PartitionID] = []
    var appliedOffset: [Int64] = []
    var isDirty: [Bool] = []
    var dirty: [Int32] = []
    /// Idle-key eviction (a second-chance clock): `used` is set when a key
    /// is loaded or applied and cleared as the hand passes; `lastFlushOf` is
    /// the flush holding the key's last write. Only keys whose last write
    /// Redis has acknowledged may go: a reload must see that write.
    var used: [Bool] = []
    var lastFlushOf: [Int] = []
    var hand = 0
    /// When each key's Redis expiry was last re-armed, ms on `clockOrigin`'s
    /// clock; -1 when unknown (loaded, or created, since).
    var ttlArmedAt: [Int64] = []
    let ttl: TTLPolicy
    let clockOrigin = ContinuousClock.now
    /// Flushes handed to the writer so far (the last one's `seq`).
    var flushSeq = 0
    let writtenFlush: ManagedAtomicBox

    /// Last offset seen per partition since the last flush, and in total.
    var seen: [PartitionID: Int64] = [:]
    var pendingTimestamps: [Int64] = []
    var pendingHandOvers: [(at: ContinuousClock.Instant, events: Int)] = []
    /// `topic:partition` per partition, the fence argument of each write.
    var partitionNameBytes: [PartitionID: [UInt8]] = [:]
    var lastFlush = ContinuousClock.now
    let flushInterval: Duration
    /// Renders the stored hash fields of dirty keys (shared with backfills).
    var entityFields: EntityFields
    var stateIncompatibleLogged = false

    init(config: WorkerConfig, batches: Pool<RecordBatch<HandOver>>, flushes: Pool<FlushBatch>, input: SPSCRing<Int>,
         freeBatches: SPSCRing<Int>, flushOut: SPSCRing<Int>, freeFlushes: SPSCRing<Int>,
         deadLetters: DeadLetterSink, counters: WorkerCounters, logger: Logger, redisURL: RedisTarget,
         writtenFlush: ManagedAtomicBox) {
        self.config = config
        let engine = FeatureEngine(topology: config.topology, expectedKeys: 1 << 16, binary: config.binary)
        self.engine = engine
        self.applier = LookaheadApplier(engine: engine) { -1 }
        self.batches = batches
        self.flushes = flushes
        self.input = input
        self.freeBatches = freeBatches
        self.flushOut = flushOut
        self.freeFlushes = freeFlushes
        self.deadLetters = deadLetters
        self.counters = counters
        self.logger = logger
        self.prefix = Array(config.topology.sink.keyPrefix.utf8)
        self.loader = EntityLoader(target: redisURL, prefix: prefix)
        self.entityFields = EntityFields(engine: engine)
        self.fingerprint = entityFields.fingerprint
        self.flushInterval = .milliseconds(config.topology.sink.flushIntervalMs)
        self.ttl = TTLPolicy(ttlMs: config.topology.sink.ttlMs)
        self.writtenFlush = writtenFlush
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
            let due = !dirty.isEmpty || !seen.isEmpty
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
            if !dirty.isEmpty || !seen.isEmpty {
                // Again: the ingest may have found a backlog while the shard waited.
                let interval = updateFlushInterval()
                let writerIdle = config.flushWhenIdle && !catchingUp && input.isEmpty && freeFlushes.count == flushes.count
                if writerIdle || dirty.count >= dirtyKeyBound || ContinuousClock.now - lastFlush >= interval {
                    if let free = freeFlushes.tryPop() { flush(into: free, barrier: 0) }
                }
            } else {
                lastFlush = ContinuousClock.now
            }
            if stop.isStopRequested && input.isEmpty {
                if !dirty.isEmpty || !seen.isEmpty { flush(barrier: 0) }
                return
            }
        }
    }

    /// Dirty keys that make the shard flush early: `maxDirtyKeys`, but at
    /// most a quarter of `maxKeysInMemory`. Dirty keys cannot be evicted, so
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
            if let revoked { evict(partitions: Set(revoked)) }
            return
        }
        if batch.info.control == .flush {
            flush(barrier: 0)
            return
        }
        var hooks = Hooks(shard: self, batch: batch)
        // The last offset per partition, recorded once per run of records
        // of one partition rather than per record (a dictionary write).
        var run = (pid: PartitionID(topicIndex: -1, partition: -1), offset: Int64(-1))
        defer { if run.offset >= 0 { seen[run.pid] = run.offset } }
        for i in 0..<batch.count {
            let r = batch.records[i]
            let pid = PartitionID(topicIndex: r.topicIndex, partition: r.partition)
            if pid != run.pid {
                if run.offset >= 0 { seen[run.pid] = run.offset }
                run.pid = pid
            }
            run.offset = r.offset
            // Decoded now, applied `depth - 1` events later (its key's
            // state prefetched meanwhile); the rest at `drain`.
            applier.push(&hooks) { event, decoder in
                event = i
                return decoder.decode(batch.value(r), messageKey: batch.key(r), messageTimestamp: r.timestampMs)
            }
        }
        applier.drain(&hooks)
        if !hooks.deferred.isEmpty {
            // Hold the events of keys not in memory until their state
            // arrives: one pipelined round trip for the whole batch.
            let loadStart = ContinuousClock.now
            if !finishEarlyLoads(&hooks.missing) { load(hooks.missing) }
            counters.loadLatency.record(micros: Int((ContinuousClock.now - loadStart) / .microseconds(1)))
            hooks.missing = MissingKeys()
            let waiting = hooks.deferred
            hooks.deferred.removeAll()
            for i in waiting {
                let r = batch.records[i]
                applier.applyNow(i, &hooks) {
                    $0.decode(batch.value(r), messageKey: batch.key(r), messageTimestamp: r.timestampMs)
                }
            }
            precondition(hooks.deferred.isEmpty, "a loaded key is in memory")
        }
        if hooks.applied > 0 { pendingHandOvers.append((batch.info.handedOverAt, hooks.applied)) }
        counters.consumed.wrappingIncrement(by: batch.count, ordering: .relaxed)
        counters.batches.wrappingIncrement(ordering: .relaxed)
        counters.applied.wrappingIncrement(by: hooks.applied, ordering: .relaxed)
        counters.late.wrappingIncrement(by: hooks.late, ordering: .relaxed)
        counters.invalid.wrappingIncrement(by: hooks.invalid, ordering: .relaxed)
        counters.duplicatesSkipped.wrappingIncrement(by: hooks.duplicates, ordering: .relaxed)
        if hooks.perTopic {
            for t in 0..<WorkerCounters.maxTopics where hooks.tally[3 * t] > 0 {
                counters.topicConsumed[t].wrappingIncrement(by: hooks.tally[3 * t], ordering: .relaxed)
                counters.topicApplied[t].wrappingIncrement(by: hooks.tally[3 * t + 1], ordering: .relaxed)
                counters.topicLate[t].wrappingIncrement(by: hooks.tally[3 * t + 2], ordering: .relaxed)
            }
        }
        counters.keysInMemory.store(engine.store.count, ordering: .relaxed)
    }

    /// What the shard does around each apply of one batch: skips what the
    /// state loaded from Redis already holds, defers events whose key is
    /// not in memory (requesting its state at once), dead-letters rejected
    /// and late events, marks applied keys dirty, and counts.
    ///
    /// The shard and batch are Unmanaged, used through
    /// `_withUnsafeGuaranteedRef`: both outlive `process`, and reaching them
    /// costs no retain/release per event.
    struct Hooks: ApplyHooks {
        let shard: Unmanaged<ShardStage>
        let batch: Unmanaged<RecordBatch<HandOver>>
        /// The batch's records (it does not grow while it is applied).
        let records: UnsafeMutablePointer<RecordBatch<HandOver>.Record>
        var applied = 0, late = 0, invalid = 0, duplicates = 0
        /// Events (record indices) waiting for their key's state.
        var deferred: [Int] = []
        var missing = MissingKeys()
        /// Metrics per topic, only for topologies with several topics.
        let perTopic: Bool
        var tally: [Int]

        init(shard: ShardStage, batch: RecordBatch<HandOver>) {
            self.shard = .passUnretained(shard)
            self.batch = .passUnretained(batch)
            records = batch.records
            perTopic = shard.config.topology.source.topics.count > 1
            tally = perTopic ? [Int](repeating: 0, count: 3 * WorkerCounters.maxTopics) : []
        }

        /// Keys not in memory are loaded from Redis first.
        var createsKeys: Bool { false }

        /// Not an event the state loaded from Redis already holds.
        @inline(__always)
        func admit(_ i: Int, slot: Int32, decoded: EventDecoder) -> Bool {
            let r = records[i]
            return shard._withUnsafeGuaranteedRef { !$0.holds(r, slot) }
        }

        @inline(__always)
        mutating func finished(_ i: Int, _ outcome: ApplyOutcome, decoded: EventDecoder) {
            let r = records[i]
            if perTopic { ShardStage.tally(&tally, r.topicIndex, outcome) }
            switch outcome {
            case .applied(let slot):
                shard._withUnsafeGuaranteedRef { $0.applied(r, to: slot) }
                applied += 1
            case .late:
                shard._withUnsafeGuaranteedRef { s in batch._withUnsafeGuaranteedRef { s.deadLetter(.late, $0, r) } }
                late += 1
            case .invalid(let reason):
                shard._withUnsafeGuaranteedRef { s in batch._withUnsafeGuaranteedRef { s.rejected($0, r, reason) } }
                invalid += 1
            case .skipped:
                duplicates += 1
            case .deferred:
                let key = decoded.key
                let hash = decoded.keyHash  // hashKey(key), computed once by the decoder
                if !ShardStage.isMissing(key, hash: hash, in: missing) {
                    shard._withUnsafeGuaranteedRef { $0.requestEarly(Array(key), hash: hash, r.pid, &missing) }
                }
                deferred.append(i)
            }
        }
    }

    /// Per-topic metrics of one batch (several topics only): consumed,
    /// applied and late per topic slot, added to the counters once per
    /// batch. Invalid events are counted per topic and reason in `rejected`.
    @inline(__always)
    static func tally(_ t: inout [Int], _ topicIndex: Int32, _ outcome: ApplyOutcome) {
        let s = 3 * WorkerCounters.topicSlot(topicIndex)
        switch outcome {
        case .deferred: return
        case .applied: t[s + 1] += 1
        case .late: t[s + 2] += 1
        case .invalid, .skipped: break
        }
        t[s] += 1
    }

    /// Counts and dead-letters an event its decoder refused.
    func rejected(_ batch: RecordBatch<HandOver>, _ r: RecordBatch<HandOver>.Record, _ reason: RejectReason) {
        let reasonIndex = RejectReason.allCases.firstIndex(of: reason)!
        counters.invalidByReason[reasonIndex].wrappingIncrement(ordering: .relaxed)
        counters.topicInvalidByReason[WorkerCounters.topicSlot(r.topicIndex) * RejectReason.allCases.count + reasonIndex]
            .wrappingIncrement(ordering: .relaxed)
        deadLetter(reason, batch, r)
    }

    func deadLetter(_ reason: RejectReason, _ batch: RecordBatch<HandOver>, _ r: RecordBatch<HandOver>.Record) {
        deadLetters.send(reason, topicIndex: r.topicIndex, partition: r.partition, offset: r.offset,
                         timestampMs: r.timestampMs, key: batch.key(r), value: batch.value(r))
    }

    /// Whether the state of `slot` (loaded from Redis) already holds event `r`.
    @inline(__always)
    func holds(_ r: RecordBatch<HandOver>.Record, _ slot: Int32) -> Bool {
        let s = Int(slot)
        return s < appliedOffset.count && appliedPartition[s] == r.pid && r.offset <= appliedOffset[s]
    }

    /// Marks `slot` dirty after event `r` was applied to it.
    @inline(__always)
    func applied(_ r: RecordBatch<HandOver>.Record, to slot: Int32) {
        track(slot)
        appliedPartition[Int(slot)] = r.pid
        appliedOffset[Int(slot)] = r.offset
        used[Int(slot)] = true
        lastFlushOf[Int(slot)] = flushSeq + 1  // the next flush writes it
        if !isDirty[Int(slot)] {
            isDirty[Int(slot)] = true
            dirty.append(slot)
        }
        pendingTimestamps.append(r.timestampMs)
    }

    /// Grows the per-slot arrays to cover `slot`.
    @inline(__always)
    func track(_ slot: Int32) {
        while Int(slot) >= appliedOffset.count {
            appliedOffset.append(-1)
            appliedPartition.append(PartitionID(topicIndex: -1, partition: -1))
            isDirty.append(false)
            used.append(false)
            lastFlushOf.append(0)
            ttlArmedAt.append(-1)
        }
    }

    // MARK: Loading

    /// Keys of one batch that are not in memory, in the order first seen,
    /// with the partition of their first event. On a single Redis server
    /// their state is requested while the batch is still being applied
    /// (`requestEarly`), so Redis answers while the shard works.
    struct MissingKeys {
        /// The keys, first seen first, and the partition of each one's first event.
        var order: [[UInt8]] = []
        var pids: [PartitionID] = []
        /// Position in `order` by `hashKey` of the key. On realistic traffic
        /// most events miss (a new user): the fast key hash the decoder
        /// already computed replaces a dictionary keyed by `[UInt8]`,
        /// whose hashing fed the hasher byte by byte and which needed the key
        /// copied into an array before every lookup. A hash shared by two
        /// keys keeps the first; the other is found by a scan of `order`.
        var positions: [UInt64: Int32] = [:]
        /// Requests appended but not yet written to the socket.
        var unsent = 0
        /// nil: load at the end of the batch (`load`); set to nil on failure.
        var connection: RedisConnection?
        var connectionChosen = false
    }

    /// Whether `key` (hashed `hash`) is already among the missing keys.
    @inline(__always)
    static func isMissing(_ key: UnsafeRawBufferPointer, hash: UInt64, in missing: MissingKeys) -> Bool {
        guard let p = missing.positions[hash] else { return false }
        if missing.order[Int(p)].elementsEqual(key) { return true }
        return missing.order.contains { $0.elementsEqual(key) }  // a hash collision: rare
    }

    /// Appends the load request (`EntityLoader`) of a newly missing key,
    /// written to the socket 64 requests at a time. Only on a single server:
    /// a cluster's routed pipeline loads at the end of the batch, as it does
    /// when Redis cannot be reached now (`load` retries).
    @inline(__always)
    func requestEarly(_ key: [UInt8], hash: UInt64, _ pid: PartitionID, _ missing: inout MissingKeys) {
        if missing.positions[hash] == nil { missing.positions[hash] = Int32(missing.order.count) }
        missing.order.append(key)
        missing.pids.append(pid)
        if !missing.connectionChosen {
            missing.connectionChosen = true
            missing.connection = loader.singleConnection()
        }
        guard let c = missing.connection else { return }
        do {
            try c.append(building: { loadRequest(key, pid, into: &$0) })
            missing.unsent += 1
            if missing.unsent >= 64 {
                try c.send()
                missing.unsent = 0
            }
        } catch {
            abandonEarlyLoads(&missing)
        }
    }

    /// Reads the early requests' replies and installs the keys. False when
    /// there were none or any failed: then `load` does it all again (the
    /// connection, whose replies are out of step, is dropped).
    func finishEarlyLoads(_ missing: inout MissingKeys) -> Bool {
        guard let c = missing.connection, !missing.order.isEmpty else { return false }
        do {
            var replies: [RedisReply] = []
            replies.reserveCapacity(missing.order.count)
            for _ in missing.order { replies.append(try c.readReply()) }
            installLoaded(missing, try loader.entities(from: replies))
            return true
        } catch {
            abandonEarlyLoads(&missing)
            return false
        }
    }

    func abandonEarlyLoads(_ missing: inout MissingKeys) {
        counters.redisErrors.wrappingIncrement(ordering: .relaxed)
        missing.connection = nil
        loader.dropConnection()
    }

    /// The load request of a key: its state, its fingerprint and its fence
    /// for the partition of its first event.
    @inline(__always)
    func loadRequest(_ key: [UInt8], _ pid: PartitionID, into b: inout RedisCommandBuilder) {
        loader.request(key, fence: partitionNameBytes(pid), into: &b)
    }

    /// Installs the loaded entities of `missing.order`, in order.
    func installLoaded(_ missing: MissingKeys, _ entities: [StoredEntity]) {
        for (i, (key, entity)) in zip(missing.order, entities).enumerated() { install(key, pid: missing.pids[i], entity) }
        counters.keysLoaded.wrappingIncrement(by: missing.order.count, ordering: .relaxed)
    }

    /// Loads the missing keys' state from Redis in one pipeline (routed per
    /// key's slot on a cluster), retrying until Redis answers; absent keys
    /// start empty.
    func load(_ missing: MissingKeys) {
        let keys = missing.order
        let entities: [StoredEntity]
        do {
            entities = try loader.load(count: keys.count, onRetry: { error, attempt, wait in
                counters.redisErrors.wrappingIncrement(ordering: .relaxed)
                counters.redisRetries.wrappingIncrement(ordering: .relaxed)
                logger.warning("loading \(keys.count) keys from Redis failed, retrying in \(Int(wait / .milliseconds(1))) ms: \(error)")
            }) { i, b in
                loadRequest(keys[i], missing.pids[i], into: &b)
            }
        } catch {
            preconditionFailure("the shard's loads retry until Redis answers: \(error)")
        }
        installLoaded(missing, entities)
    }

    func install(_ key: [UInt8], pid: PartitionID, _ entity: StoredEntity) {
        let slot = key.withUnsafeBytes { k in engine.insertEmpty(k, hash: hashKey(k)) }
        track(slot)
        appliedPartition[Int(slot)] = pid
        appliedOffset[Int(slot)] = entity.fence ?? -1
        isDirty[Int(slot)] = false
        used[Int(slot)] = true
        lastFlushOf[Int(slot)] = 0
        ttlArmedAt[Int(slot)] = -1
        guard let state = entity.state else { return }
        if !entity.isCompatible(fingerprint: fingerprint, key: key) {
            counters.stateIncompatible.wrappingIncrement(ordering: .relaxed)
            if !stateIncompatibleLogged {
                stateIncompatibleLogged = true
                logger.error("""
                    state in Redis was written by a different topology version (features changed); \
                    such keys start empty here. Backfill a new prefix with `eddy replay --emit redis --prefix` \
                    and switch over instead of changing features in place.
                    """)
            }
            return
        }
        state.withUnsafeBytes { engine.store.replace(slot, with: $0) }
    }

    func partitionName(_ pid: PartitionID) -> String {
        "\(config.topology.source.topics[Int(pid.topicIndex)]):\(pid.partition)"
    }

    /// `partitionName` as bytes, made once per partition.
    @inline(__always)
    func partitionNameBytes(_ pid: PartitionID) -> [UInt8] {
        if let name = partitionNameBytes[pid] { return name }
        let name = Array(partitionName(pid).utf8)
        partitionNameBytes[pid] = name
        return name
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
        let store = engine.store
        let nowMs = Int64((ContinuousClock.now - clockOrigin) / .milliseconds(1))
        for slot in dirty {
            isDirty[Int(slot)] = false
            guard store.isLive(slot), engine.keyTime(slot) != nil else { continue }
            let armedAt = ttlArmedAt[Int(slot)]
            let rearm = ttl.shouldRearm(lastMs: armedAt < 0 ? nil : armedAt, nowMs: nowMs)
            if rearm { ttlArmedAt[Int(slot)] = nowMs }
            fb.writes.append(slot: slot, prefix: prefix, fields: &entityFields,
                             partition: partitionNameBytes(appliedPartition[Int(slot)]),
                             offset: appliedOffset[Int(slot)], rearmTTL: rearm)
        }
        dirty.removeAll(keepingCapacity: true)
        for (pid, offset) in seen { fb.commits.append((pid, offset + 1)) }
        seen.removeAll(keepingCapacity: true)
        swap(&fb.eventTimestamps, &pendingTimestamps)
        pendingTimestamps.removeAll(keepingCapacity: true)
        swap(&fb.handOvers, &pendingHandOvers)
        pendingHandOvers.removeAll(keepingCapacity: true)
        lastFlush = ContinuousClock.now
        _ = flushOut.pushBlocking(index, timeout: nil)
        evictIdle()
    }

    /// Above `maxKeysInMemory`, forgets clean keys that were not used since
    /// the clock hand last passed and whose last write Redis holds; they
    /// reload from Redis on their next event. Stops at the bound, or after
    /// two turns of the clock (everything else is dirty or in flight).
    func evictIdle() {
        let store = engine.store
        let bound = config.maxKeysInMemory
        guard store.count > bound, store.slotLimit > 0 else { return }
        let written = writtenFlush.load()
        var evicted = 0
        var steps = 2 * store.slotLimit
        while store.count > bound && steps > 0 {
            steps -= 1
            let s = hand
            hand = hand + 1 < store.slotLimit ? hand + 1 : 0
            guard s < used.count, store.isLive(Int32(s)), !isDirty[s], lastFlushOf[s] <= written else { continue }
            if used[s] {
                used[s] = false
                continue
            }
            store.remove(Int32(s))
            appliedOffset[s] = -1
            appliedPartition[s] = PartitionID(topicIndex: -1, partition: -1)
            evicted += 1
        }
        counters.keysEvicted.wrappingIncrement(by: evicted, ordering: .relaxed)
        counters.keysInMemory.store(store.count, ordering: .relaxed)
    }

    /// Forgets the keys last written from revoked partitions (their new
    /// owner loads them from Redis). Call right after a flush.
    func evict(partitions: Set<PartitionID>) {
        let store = engine.store
        var evicted = 0
        for s in 0..<Int32(store.slotLimit) where store.isLive(s) {
            if Int(s) < appliedPartition.count, partitions.contains(appliedPartition[Int(s)]) {
                store.remove(s)
                appliedOffset[Int(s)] = -1
                appliedPartition[Int(s)] = PartitionID(topicIndex: -1, partition: -1)
                evicted += 1
            }
        }
        counters.keysEvicted.wrappingIncrement(by: evicted, ordering: .relaxed)
        counters.keysInMemory.store(store.count, ordering: .relaxed)
    }
}
