import EddyCore
import EddyFormats
import EddyKafka
import EddyMetrics
import EddyPipeline
import Foundation
import Logging

/// The ingest thread: owns the Kafka consumer, copies messages into batches
/// from a fixed pool and hands them to the shard. When the pool is empty
/// (the shard or Redis is behind) it pauses its partitions: memory stays
/// bounded however slow Redis is.
final class IngestStage {
    let consumer: KafkaConsumer
    let topics: [String]
    let batches: Pool<RecordBatch<HandOver>>
    let free: SPSCRing<Int>
    let output: SPSCRing<Int>
    let counters: WorkerCounters
    let logger: Logger
    let barrierDone: BarrierSignal
    let drainTimeout: Duration
    /// Catch-up in waves (`CatchUpWaves`): at most this many; below 2, off.
    let catchUpWaves: Int
    let catchUpBacklog: Int
    var waves: CatchUpWaves?
    /// Partitions paused until their wave (never resumed by backpressure).
    var held: Set<TopicPartition> { Set(waves?.held ?? []) }
    /// Progress of the current wave, to notice one that stalls.
    var waveProgress = (positions: [TopicPartition: Int64](), at: ContinuousClock.now, checked: ContinuousClock.now)
    var current: Int?
    var paused: [TopicPartition] = []
    /// Partitions revoked while paused by this stage: librdkafka keeps them
    /// paused, so they are resumed when assigned again (`assigned`).
    var pausedAtRevocation: Set<TopicPartition> = []
    var assignment: Set<TopicPartition> = []
    var nextBarrier = 1
    /// Partitions whose revocation could not send its barrier in time (no
    /// free batch within `drainTimeout`: Redis down across a rebalance). The
    /// barrier is owed: it goes out with the next batch the ingest gets,
    /// before any other, so the shard forgets their keys and the writer
    /// releases their epochs before any event read after the revocation.
    /// Their revocation stays pending in `revocations` until then, so the
    /// writer cannot take a newer epoch for them (`GroupOwnership`).
    var owedRevocation: [PartitionID] = []
    /// Partitions assigned again while their revocation's barrier is owed:
    /// paused until it is sent, so none of their events reach the shard
    /// before it (the barrier would forget their new keys).
    var awaitingOwedBarrier: Set<TopicPartition> = []
    /// With the per-partition epoch fence: where revocations are recorded
    /// for the writer (`RevocationLog`).
    var revocations: RevocationLog?
    var gapsSeen = 0
    var repeatsSeen = 0
    /// When to publish the next per-partition lag snapshot (metrics).
    var nextLagSample = ContinuousClock.now
    /// The backlog the shard's catch-up mode reads (`counters.backlog`).
    var backlogEstimate = BacklogEstimate()
    /// Registry topics: fills the shard's schema table before a batch is
    /// handed over. While the registry cannot answer, consumption is held
    /// (partitions paused, the batch kept) and retried with backoff.
    let schemas: SchemaResolver?
    /// Records of the current batch whose schema ids are in the table.
    var schemasResolved = 0
    var registryBackoff = 0.1
    var registryProblem = ""

    init(consumer: KafkaConsumer, topics: [String], batches: Pool<RecordBatch<HandOver>>, free: SPSCRing<Int>,
         output: SPSCRing<Int>, counters: WorkerCounters, logger: Logger, barrierDone: BarrierSignal,
         drainTimeout: Duration, catchUpWaves: Int = 0, catchUpBacklog: Int = .max, schemas: SchemaResolver? = nil) {
        self.schemas = schemas
        self.consumer = consumer
        self.topics = topics
        self.batches = batches
        self.free = free
        self.output = output
        self.counters = counters
        self.logger = logger
        self.barrierDone = barrierDone
        self.drainTimeout = drainTimeout
        self.catchUpWaves = catchUpWaves
        self.catchUpBacklog = catchUpBacklog
    }

    struct Filler: KafkaEventSink {
        let batch: RecordBatch<HandOver>
        let counters: WorkerCounters
        let logger: Logger

        mutating func receive(_ event: KafkaConsumerEvent) {
            switch event {
            case .message(let m):
                batch.append(source: Int32(m.topicIndex), partition: m.partition, offset: m.offset,
                             timestampMs: m.timestampMs, key: m.key, value: m.payload)
            case .partitionEOF:
                break
            case .error(let e):
                counters.kafkaErrors.wrappingIncrement(ordering: .relaxed)
                logger.warning("Kafka: \(e)")
            }
        }
    }

    func run(_ stop: StopToken) {
        while !stop.isStopRequested {
            if current == nil {
                if let index = free.tryPop() {
                    current = index
                } else {
                    // librdkafka's own queue is bounded (queued.max.messages.kbytes),
                    // so a short wait needs no pause; pausing purges the prefetched
                    // messages, so only a long stall (Redis down) pauses.
                    let waitStart = ContinuousClock.now
                    current = free.popBlocking(timeout: .milliseconds(500))
                    if current == nil, paused.isEmpty, ContinuousClock.now - waitStart >= .milliseconds(500) { pause() }
                    continue
                }
            }
            if !owedRevocation.isEmpty, batches[current!].count == 0, batches[current!].info.control == .none {
                sendOwedBarrier()
                continue
            }
            if !paused.isEmpty, registryProblem.isEmpty { resume() }
            let batch = batches[current!]
            var filler = Filler(batch: batch, counters: counters, logger: logger)
            do {
                let polled = try consumer.poll(into: &filler, maxMessages: min(1024, batch.recordCapacity - batch.count),
                                               timeoutMs: batch.count == 0 ? 20 : 0)
                // Nothing queued locally for a while: caught up, whatever the
                // last lag sample said, except for the partitions held for a
                // later wave (`BacklogEstimate`).
                backlogEstimate.polled(empty: polled == 0 && batch.count == 0, at: ContinuousClock.now)
                publishBacklog()
            } catch {
                counters.kafkaErrors.wrappingIncrement(ordering: .relaxed)
                logger.warning("Kafka poll failed: \(error)")
                Thread.sleep(forTimeInterval: 0.1)
            }
            if consumer.offsetGaps != gapsSeen || consumer.offsetRepeats != repeatsSeen { reportGaps() }
            if !schemasReady(batch) {
                holdForRegistry(stop)
                continue
            }
            pushCurrent()
            if waves != nil { advanceWaves() }
            if ContinuousClock.now >= nextLagSample { publishLag() }
        }
        shutdown()
    }

    /// Puts the schema id of every record of `batch` not yet checked in the
    /// shard's table. False when the registry cannot answer: nothing is
    /// handed over, nothing dead-lettered.
    func schemasReady(_ batch: RecordBatch<HandOver>) -> Bool {
        guard let schemas else { return true }
        var last: UInt32 = .max
        while schemasResolved < batch.count {
            if let id = BinarySource.schemaID(batch.value(batch.records[schemasResolved])), id != last {
                do {
                    let known = schemas.table.entry(id) != nil
                    try schemas.resolve(id)
                    if !known, schemas.table.entry(id)?.unknown == true {
                        logger.warning("schema \(id): \(schemas.lastProblem ?? "unknown"); its messages go to the dead-letter topic (unknown_schema)")
                    }
                } catch {
                    counters.schemaRegistryErrors.wrappingIncrement(ordering: .relaxed)
                    if registryProblem != error.reason {
                        logger.error("\(error.reason): holding consumption until it answers (nothing is dead-lettered)")
                    }
                    registryProblem = error.reason
                    counters.schemaRegistryHeld.store(1, ordering: .relaxed)
                    return false
                }
                last = id
            }
            schemasResolved += 1
        }
        if !registryProblem.isEmpty {
            logger.notice("schema registry answers again; consuming")
            registryProblem = ""
            registryBackoff = 0.1
            counters.schemaRegistryHeld.store(0, ordering: .relaxed)
        }
        return true
    }

    /// The registry is down: pause the partitions (the batch so far is
    /// kept) and wait a backoff before the next try.
    func holdForRegistry(_ stop: StopToken) {
        if paused.isEmpty { pause() }
        let until = ContinuousClock.now + .milliseconds(Int(registryBackoff * 1000))
        while ContinuousClock.now < until, !stop.isStopRequested { Thread.sleep(forTimeInterval: 0.02) }
        registryBackoff = min(registryBackoff * 2, 5)
    }

    /// Hands the current batch to the shard if it holds anything.
    func pushCurrent() {
        guard let index = current, batches[index].count > 0 || batches[index].info.control != .none else { return }
        // Never hand over ids the table lacks (they would read as unknown).
        guard schemasReady(batches[index]) else { return }
        recordConsumeDelay(batches[index])
        batches[index].info.handedOverAt = .now
        counters.handedToShard.wrappingIncrement(by: batches[index].count, ordering: .relaxed)
        let ok = output.tryPush(index)
        precondition(ok, "the shard ring holds every batch of the pool")
        current = nil
        schemasResolved = 0
    }

    /// Kafka timestamp -> now for each message of `batch` (one clock read
    /// and one atomic add per bucket used per batch).
    func recordConsumeDelay(_ batch: RecordBatch<HandOver>) {
        guard batch.count > 0 else { return }
        let wallMs = Int64(Date().timeIntervalSince1970 * 1000)
        counters.consumeDelay.record(agesOf: (0..<batch.count).lazy.map { batch.records[$0].timestampMs }, nowMs: wallMs,
                                     scratch: &histogramScratch)
    }
    var histogramScratch: [Int] = []

    /// librdkafka 2.0 fetching from a wrong offset (see `KafkaConsumer.poll`):
    /// counted and logged; the consumer already repaired it.
    func reportGaps() {
        let holes = consumer.offsetGaps - gapsSeen, repeats = consumer.offsetRepeats - repeatsSeen
        gapsSeen = consumer.offsetGaps
        repeatsSeen = consumer.offsetRepeats
        counters.offsetGaps.wrappingIncrement(by: holes, ordering: .relaxed)
        if holes > 0 {
            logger.warning("found \(holes) holes in partition offsets; reading those partitions again from before each hole (librdkafka skipped records, or the topic has transaction markers or compaction)")
        }
        if repeats > 0 { logger.info("dropped \(repeats) records Kafka delivered again") }
    }

    /// Publishes each assigned partition's lag (for `/metrics`) and their
    /// sum (the shard's catch-up signal), from librdkafka's local state (no
    /// broker round trip), every 100 ms.
    func publishLag() {
        nextLagSample = ContinuousClock.now + .milliseconds(100)
        var lags = consumer.localLag(Array(assignment))
        if let plan = waves {
            // Held partitions are not fetched, so librdkafka knows no lag for them: the planned one.
            for i in lags.indices where lags[i].lag == nil {
                if let h = plan.heldPartition(TopicPartition(topic: lags[i].topic, partition: lags[i].partition)) {
                    lags[i].highWatermark = h.target
                    lags[i].position = h.target - h.behind
                }
            }
        }
        counters.partitionLag.publish(lags)
        backlogEstimate.sampled(lag: lags.reduce(0) { $0 + Int($1.lag ?? 0) })
        publishBacklog()
    }

    func publishBacklog() {
        counters.backlog.store(backlogEstimate.backlog(held: Int(waves?.heldBacklog ?? 0)), ordering: .relaxed)
    }

    func pause() {
        paused = Array(assignment)
        guard !paused.isEmpty else { return }
        do { try consumer.pause(paused) } catch { logger.warning("pausing partitions failed: \(error)") }
        logger.debug("backpressure: paused \(paused.count) partitions")
    }

    /// Resumes the paused partitions (except those held for a later wave).
    /// On failure they are paused again and retried on the next turn.
    func resume() {
        do {
            let held = self.held
            try consumer.resume(paused.filter { !held.contains($0) && !awaitingOwedBarrier.contains($0) })
            paused = []
            // A resumed partition is fetched again from scratch (the pause
            // purged what was prefetched): the wave's idle clock starts now,
            // not at its last delivery before the backpressure.
            if waves != nil { waveProgress = (waveProgress.positions, .now, .now) }
        } catch {
            counters.kafkaErrors.wrappingIncrement(ordering: .relaxed)
            logger.warning("resuming \(paused.count) partitions failed, retrying: \(error)")
            do { try consumer.pause(paused) } catch { logger.warning("pausing partitions again failed: \(error)") }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    // MARK: Rebalances and shutdown

    func assigned(_ partitions: [TopicPartition]) {
        assignment.formUnion(partitions)
        counters.assignedPartitions.store(assignment.count, ordering: .relaxed)
        logger.info("assigned \(partitions.count) partitions: \(partitions.map(\.description).sorted().joined(separator: ", "))")
        // librdkafka keeps an application's pause of a partition across its
        // revocation (it clears only its own rebalance pause): a partition
        // revoked while paused here (backpressure, a held wave) and assigned
        // again would never be fetched. `resume` (next turn, or once
        // backpressure lets go) resumes it with the others.
        let stillPaused = partitions.filter { pausedAtRevocation.remove($0) != nil && !paused.contains($0) }
        paused += stillPaused
        if waves == nil, catchUpWaves >= 2, partitions.count >= 2 { planWaves(partitions) }
        holdUntilOwedBarrier(partitions)
    }

    /// Pauses the newly assigned `partitions` whose earlier revocation still
    /// owes its barrier (`owedRevocation`), until it is sent. Last in
    /// `assigned`, after anything there that resumes partitions.
    func holdUntilOwedBarrier(_ partitions: [TopicPartition]) {
        guard !owedRevocation.isEmpty else { return }
        let owed = Set(owedRevocation)
        let waiting = partitions.filter { partitionID($0).map(owed.contains) ?? false }
        guard !waiting.isEmpty else { return }
        awaitingOwedBarrier.formUnion(waiting)
        do { try consumer.pause(waiting) } catch {
            // The barrier goes out with the next batch, before any event of
            // this poll is handed over; a partition that fetches meanwhile
            // only delivers its events into that later batch.
            logger.warning("pausing \(waiting.count) partitions until their earlier revocation is done failed: \(error)")
        }
        logger.info("assigned \(waiting.count) partitions again before their earlier revocation was done: reading them once it is")
    }

    /// Sends the barrier of the revocations that could not send theirs
    /// (`owedRevocation`) in the current batch, which is empty, without
    /// waiting for it: the rebalance it belongs to is long over.
    func sendOwedBarrier() {
        guard let index = current else { return }
        let revoked = takeOwedRevocation()
        batches[index].info.control = .barrier(id: nextBarrier, revoked: revoked)
        nextBarrier += 1
        pushCurrent()
        logger.notice("the \(Set(revoked).count) partitions revoked before their writes finished are handed back now: their keys are dropped, their epochs released")
    }

    /// The owed revocations, for the barrier about to carry them; partitions
    /// assigned again meanwhile fetch again (through `resume`, which keeps
    /// held waves held).
    func takeOwedRevocation() -> [PartitionID] {
        let owed = owedRevocation
        owedRevocation = []
        for tp in awaitingOwedBarrier where assignment.contains(tp) && !paused.contains(tp) { paused.append(tp) }
        awaitingOwedBarrier = []
        return owed
    }

    /// A partition of our topics as the pipeline numbers it.
    func partitionID(_ tp: TopicPartition) -> PartitionID? {
        topics.firstIndex(of: tp.topic).map { PartitionID(topicIndex: Int32($0), partition: tp.partition) }
    }

    /// Inside the revoke callback: flush and commit everything applied,
    /// drop those partitions' keys, then let the rebalance go on.
    func revoked(_ partitions: [TopicPartition]) {
        let held = self.held
        // (Those held for an owed barrier are paused in librdkafka too.)
        pausedAtRevocation.formUnion(partitions.filter {
            paused.contains($0) || held.contains($0) || awaitingOwedBarrier.contains($0)
        })
        assignment.subtract(partitions)
        counters.assignedPartitions.store(assignment.count, ordering: .relaxed)
        paused.removeAll { partitions.contains($0) }
        awaitingOwedBarrier.subtract(partitions)  // still owed: assigned again, they wait again
        if waves != nil { dropFromWaves(Set(partitions)) }
        let ids = partitions.compactMap(partitionID)
        if barrier(revoked: ids, insidePoll: true) {
            logger.info("revoked \(partitions.count) partitions after flushing and committing them")
        } else {
            logger.error("revoked \(partitions.count) partitions before their writes finished (Redis unavailable?): their keys are dropped and their epochs released when the pipeline moves again; fences keep the state exact meanwhile")
        }
    }

    /// Sends a barrier through the shard and waits until the writer has
    /// written and committed everything before it.
    ///
    /// Inside a poll (a rebalance callback) the current batch is empty
    /// (batches are pushed after every poll) and the poll will still fill
    /// it, so the barrier always takes a batch of its own.
    @discardableResult
    func barrier(revoked: [PartitionID]?, insidePoll: Bool) -> Bool {
        if !insidePoll { pushCurrent() }
        // Recorded before the rebalance can go on: the writer's epoch fence
        // must know these partitions' assignment ended (GroupOwnership).
        // And before waiting for a free batch: a writer that retries the
        // ownership confirmation of these partitions holds batches until it
        // sees the revocation.
        let revokedNames = revoked.map { $0.map { Array("\(topics[Int($0.topicIndex)]):\($0.partition)".utf8) } }
        if let revokedNames, let revocations { revocations.begin(revokedNames) }
        guard let index = free.popBlocking(timeout: drainTimeout) else {
            // The rebalance must go on (the free batch may come back only
            // after this callback returns), but the barrier is not dropped:
            // it is owed, and their revocation stays pending for the writer
            // until it gets there.
            if let revoked { owedRevocation += revoked }
            return false
        }
        let id = nextBarrier
        nextBarrier += 1
        // This barrier carries any owed one too (it is the first batch out).
        var carried = revoked
        if !owedRevocation.isEmpty { carried = (revoked ?? []) + takeOwedRevocation() }
        batches[index].info.control = .barrier(id: id, revoked: carried)
        let pushed = output.tryPush(index)
        precondition(pushed, "the shard ring holds every batch of the pool")
        return barrierDone.wait(for: id, timeout: drainTimeout)
    }

    /// Flush and commit, then leave the group.
    func shutdown() {
        if !barrier(revoked: nil, insidePoll: false) { logger.error("shutdown: in-flight writes did not finish in time") }
        do { try consumer.close() } catch { logger.warning("closing the consumer: \(error)") }
        if let index = current { _ = free.tryPush(index); current = nil }
    }
}
