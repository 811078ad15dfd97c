import EddyCore
import EddyMetrics
import EddyPipeline
import EddyRedis
import EddyStore
import Foundation
import Logging

/// One entity's keys in the operator shard (`ShardStage`): its engine and
/// state, the loads of keys it does not hold, the dirty keys it hands the
/// writer, and the eviction of idle ones. A topology in the single-key form
/// has one; one with `entities:` has one per entity, all fed the same
/// batches (the topic is read once).
///
/// A `parts: per_partition` entity keeps one state per (key, source
/// partition) (SEMANTICS.md, "Keys spread over partitions"): its store is
/// keyed by `PartKey`, a part loads from and writes to its own field
/// `_p:<topic>:<partition>` of the key's hash under that partition's fence,
/// and is loaded and evicted on its own. Every part has one writer, the
/// partition's owner, so exactly-once holds as for single keys.
///
/// Used on the shard's thread only.
final class EntityShard {
    let engine: FeatureEngine
    /// Applies a batch's events with lookahead and prefetch, as replay does;
    /// an event is the index of its record in the batch.
    let applier: LookaheadApplier<Int>
    /// The entity's name in an `entities:` topology (dead-letter header), else nil.
    let name: String?
    let keysParts: Bool
    let loader: EntityLoader
    let prefix: [UInt8]
    let fingerprint: [UInt8]
    let deadLetters: DeadLetterSink
    let counters: WorkerCounters
    let logger: Logger
    let topics: [String]
    /// Whether this entity's applied events feed the freshness samples and
    /// the per-topic counts (the first entity only, so an event counts once).
    let isFirst: Bool

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
    /// When each key's Redis expiry was last re-armed, ms on the shard's
    /// clock; -1 when unknown (loaded, or created, since).
    var ttlArmedAt: [Int64] = []
    /// The shard's last flush number (the next flush is `flushSeq + 1`).
    var flushSeq = 0
    /// Event times of applied events since the last flush (`isFirst` only).
    var pendingTimestamps: [Int64] = []
    /// Renders the stored hash fields of dirty keys (shared with backfills).
    var entityFields: EntityFields
    var stateIncompatibleLogged = false
    /// `topic:partition` per partition, the fence argument of each write.
    var partitionNames: [PartitionID: [UInt8]] = [:]
    /// A stored part with its part key's header (`install`).
    var headerScratch: [UInt8] = []
    /// The decoded fields of the batch's deferred events
    /// (`EventDecoder.save`), the n-th deferred event's at n *
    /// `savedEventSize`; grown to the most a batch has deferred.
    var savedEvents: UnsafeMutableRawPointer
    var savedEventsCapacity = 0
    let savedEventSize: Int
    /// `EventDecoder.canSaveEvents` for this entity's topology: when false,
    /// deferred events are decoded again and no space is kept for them.
    let savesDeferredEvents: Bool

    init(topology: Topology, name: String?, isFirst: Bool, binary: BinarySource?, redisURL: RedisTarget,
         deadLetters: DeadLetterSink, counters: WorkerCounters, logger: Logger) {
        keysParts = topology.parts == .perPartition
        let engine = FeatureEngine(topology: topology, expectedKeys: 1 << 16, binary: binary, keysParts: keysParts)
        self.engine = engine
        self.applier = LookaheadApplier(engine: engine) { -1 }
        self.name = name
        self.isFirst = isFirst
        self.prefix = Array(topology.sink.keyPrefix.utf8)
        self.loader = EntityLoader(target: redisURL, prefix: prefix, readsParts: keysParts)
        self.entityFields = EntityFields(engine: engine)
        self.fingerprint = entityFields.fingerprint
        self.deadLetters = deadLetters
        self.counters = counters
        self.logger = logger
        self.topics = topology.source.topics
        self.savedEventSize = engine.decoder.savedEventSize
        self.savesDeferredEvents = engine.decoder.canSaveEvents
        self.savedEvents = .allocate(byteCount: 1, alignment: 16)
    }

    deinit { savedEvents.deallocate() }

    /// Where the `n`-th deferred event of a batch is saved, growing the space.
    @inline(__always)
    func savedEvent(_ n: Int) -> UnsafeMutableRawPointer {
        if n >= savedEventsCapacity {
            let capacity = max(256, 2 * n)
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity * savedEventSize, alignment: 16)
            grown.copyMemory(from: savedEvents, byteCount: savedEventsCapacity * savedEventSize)
            savedEvents.deallocate()
            savedEvents = grown
            savedEventsCapacity = capacity
        }
        return savedEvents + n * savedEventSize
    }

    /// What applying one batch did, summed over the shard's entities.
    struct BatchCounts {
        var applied = 0, late = 0, invalid = 0, duplicates = 0
        /// The most events applied to one entity (pipeline-latency weight).
        var mostApplied = 0
    }

    // MARK: Applying

    /// Applies every record of `batch` to this entity's keys, loading the
    /// keys it does not hold first.
    func apply(_ batch: RecordBatch<HandOver>, perTopic: Bool, into counts: inout BatchCounts) {
        var hooks = Hooks(shard: self, batch: batch, perTopic: perTopic && isFirst)
        let keysParts = self.keysParts
        for i in 0..<batch.count {
            let r = batch.records[i]
            // Decoded now, applied `depth - 1` events later (its key's
            // state prefetched meanwhile); the rest at `drain`.
            applier.push(&hooks) { event, decoder in
                event = i
                if keysParts { decoder.part = (r.topicIndex, r.partition) }
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
            for (n, (i, saved)) in waiting.enumerated() {
                let r = batch.records[i]
                if saved {
                    let p = UnsafeRawPointer(savedEvents + n * savedEventSize)
                    applier.applyNow(i, &hooks) {
                        $0.restore(from: p, message: batch.value(r))
                        return nil
                    }
                    continue
                }
                applier.applyNow(i, &hooks) {
                    if keysParts { $0.part = (r.topicIndex, r.partition) }
                    return $0.decode(batch.value(r), messageKey: batch.key(r), messageTimestamp: r.timestampMs)
                }
            }
            precondition(hooks.deferred.isEmpty, "a loaded key is in memory")
        }
        counts.applied += hooks.applied
        counts.late += hooks.late
        counts.invalid += hooks.invalid
        counts.duplicates += hooks.duplicates
        counts.mostApplied = max(counts.mostApplied, hooks.applied)
        if hooks.perTopic {
            for t in 0..<WorkerCounters.maxTopics where hooks.tally[3 * t] > 0 {
                counters.topicConsumed[t].wrappingIncrement(by: hooks.tally[3 * t], ordering: .relaxed)
                counters.topicApplied[t].wrappingIncrement(by: hooks.tally[3 * t + 1], ordering: .relaxed)
                counters.topicLate[t].wrappingIncrement(by: hooks.tally[3 * t + 2], ordering: .relaxed)
            }
        }
    }

    /// What the shard does around each apply of one batch: skips what the
    /// state loaded from Redis already holds, defers events whose key is
    /// not in memory (requesting its state at once), dead-letters rejected
    /// and late events, marks applied keys dirty, and counts.
    ///
    /// The shard and batch are Unmanaged, used through
    /// `_withUnsafeGuaranteedRef`: both outlive `apply`, and reaching them
    /// costs no retain/release per event.
    struct Hooks: ApplyHooks {
        let shard: Unmanaged<EntityShard>
        let batch: Unmanaged<RecordBatch<HandOver>>
        /// The batch's records (it does not grow while it is applied).
        let records: UnsafeMutablePointer<RecordBatch<HandOver>.Record>
        var applied = 0, late = 0, invalid = 0, duplicates = 0
        /// Events (record indices) waiting for their key's state, and
        /// whether their decoded fields were saved (`EntityShard.savedEvent`).
        var deferred: [(index: Int, saved: Bool)] = []
        var missing = MissingKeys()
        /// Metrics per topic, only for topologies with several topics.
        let perTopic: Bool
        var tally: [Int]

        init(shard: EntityShard, batch: RecordBatch<HandOver>, perTopic: Bool) {
            self.shard = .passUnretained(shard)
            self.batch = .passUnretained(batch)
            records = batch.records
            self.perTopic = perTopic
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
            if perTopic { EntityShard.tally(&tally, r.topicIndex, outcome) }
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
                if !EntityShard.isMissing(key, hash: hash, in: missing) {
                    shard._withUnsafeGuaranteedRef { $0.requestEarly(Array(key), hash: hash, r.pid, &missing) }
                }
                let saved = shard._withUnsafeGuaranteedRef {
                    $0.savesDeferredEvents && decoded.save(into: $0.savedEvent(deferred.count))
                }
                deferred.append((i, saved))
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
                         timestampMs: r.timestampMs, key: batch.key(r), value: batch.value(r), entity: name)
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
        if isFirst { pendingTimestamps.append(r.timestampMs) }
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
        /// The keys (part keys for parts), first seen first, and the
        /// partition of each one's first event.
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
            // Every reply read before any key is installed: a failure part
            // way leaves memory as it was for `load` to start over.
            var entities: [StoredEntity] = []
            entities.reserveCapacity(missing.order.count)
            for _ in missing.order { entities.append(try loader.readEntity(from: c)) }
            installLoaded(missing, entities)
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

    /// The load request of a key: its state (a part: the part of `pid`),
    /// its fingerprint and its fence for the partition of its first event.
    @inline(__always)
    func loadRequest(_ key: [UInt8], _ pid: PartitionID, into b: inout RedisCommandBuilder) {
        partitionName(pid).withUnsafeBytes { fence in
            key.withUnsafeBytes { k in
                loader.request(bytes: keysParts ? PartKey.entityKey(of: k) : k, fence: fence, into: &b)
            }
        }
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

    /// Puts a loaded key (a part key for parts) in memory, with its stored
    /// state when that is compatible, else empty.
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
        // A stored part's header holds the entity key, the store's the part key.
        let storedKey = keysParts ? Array(key.dropLast(PartKey.suffixLength)) : key
        if !entity.isCompatible(fingerprint: fingerprint, key: storedKey) {
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
        if keysParts {
            key.withUnsafeBytes { k in
                state.withUnsafeBytes { s in
                    PartKey.withHeader(k, blob: s, scratch: &headerScratch) { engine.store.replace(slot, with: $0) }
                }
            }
        } else {
            state.withUnsafeBytes { engine.store.replace(slot, with: $0) }
        }
    }

    /// `topic:partition` as bytes, made once per partition.
    @inline(__always)
    func partitionName(_ pid: PartitionID) -> [UInt8] {
        if let name = partitionNames[pid] { return name }
        let name = Array("\(topics[Int(pid.topicIndex)]):\(pid.partition)".utf8)
        partitionNames[pid] = name
        return name
    }

    // MARK: Flushing

    /// Appends every dirty key's write to `writes`, for flush `seq`.
    func appendWrites(to writes: EntityBatch, seq: Int, nowMs: Int64, ttl: TTLPolicy) {
        flushSeq = seq
        let store = engine.store
        for slot in dirty {
            isDirty[Int(slot)] = false
            guard store.isLive(slot), engine.keyTime(slot) != nil else { continue }
            let armedAt = ttlArmedAt[Int(slot)]
            let rearm = ttl.shouldRearm(lastMs: armedAt < 0 ? nil : armedAt, nowMs: nowMs)
            if rearm { ttlArmedAt[Int(slot)] = nowMs }
            let partition = partitionName(appliedPartition[Int(slot)])
            if keysParts {
                writes.appendPart(slot: slot, of: store, prefix: prefix, fingerprint: fingerprint,
                                  partition: partition, offset: appliedOffset[Int(slot)], rearmTTL: rearm)
            } else {
                writes.append(slot: slot, prefix: prefix, fields: &entityFields, partition: partition,
                              offset: appliedOffset[Int(slot)], rearmTTL: rearm)
            }
        }
        dirty.removeAll(keepingCapacity: true)
    }

    /// Above `bound` keys, forgets clean keys that were not used since the
    /// clock hand last passed and whose last write Redis holds (flush
    /// `written` or older); they reload from Redis on their next event.
    /// Stops at the bound, or after two turns of the clock (everything
    /// else is dirty or in flight).
    func evictIdle(bound: Int, written: Int) {
        let store = engine.store
        guard store.count > bound, store.slotLimit > 0 else { return }
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
    }
}
