import EddyKafka
import Foundation

/// Catching up in waves (`CatchUpWaves`): planned when partitions are
/// assigned, advanced after each poll.
extension IngestStage {
    /// Looks up the backlog of newly assigned partitions and, when it is
    /// large, holds all but the first wave's. They are paused before the
    /// lookups so that nothing is fetched only to be purged by a pause.
    func planWaves(_ partitions: [TopicPartition]) {
        do { try consumer.pause(partitions) } catch {
            logger.warning("pausing partitions to plan a catch-up failed, reading them all at once: \(error)")
            try? consumer.resume(partitions)  // any that did pause
            return
        }
        var plan: CatchUpWaves?
        do {
            let committed = try consumer.committed(partitions: partitions, timeoutMs: 5_000)
            let marks = try consumer.watermarks(partitions, timeoutMs: 5_000)
            let backlogs = committed.compactMap { c -> CatchUpWaves.Backlog? in
                guard let m = marks[c.topicPartition] else { return nil }
                // Nothing committed: the consumer starts at the log start (auto.offset.reset
                // earliest); were it "latest", nothing is read and the wave ends after the idle timeout.
                return CatchUpWaves.Backlog(partition: c.topicPartition, start: c.offset >= 0 ? c.offset : m.low, end: m.high)
            }
            plan = CatchUpWaves.plan(backlogs, waves: catchUpWaves, minimumBacklog: catchUpBacklog)
        } catch {
            logger.info("no catch-up in waves: looking up the backlog failed (\(error))")
        }
        let hold = Set(plan?.held ?? [])
        do { try consumer.resume(partitions.filter { !hold.contains($0) }) } catch {
            logger.warning("resuming partitions after planning a catch-up failed, resuming all: \(error)")
            return
        }
        guard let plan else { return }
        waves = plan
        waveProgress = ([:], .now, .now)
        publishLag()  // the shard starts coalescing at once
        logger.info("catching up on \(plan.waves.reduce(0) { $0 + $1.backlog }) messages in \(plan.waves.count) waves of partitions, writing each wave's keys while the next is read; wave 1: \(Self.describe(plan.current))")
    }

    /// After a poll: when the current wave's partitions are all read up to
    /// their targets, asks the shard to flush and releases the next wave.
    func advanceWaves() {
        guard var plan = waves else { return }
        let wave = plan.current
        let positions = consumer.deliveredPositions(wave)
        if let next = plan.advance(positions: positions) {
            endWave(next: next, plan: plan)
            if !plan.isFinished { logger.info("catch-up wave \(plan.completed) done; wave \(plan.completed + 1): \(Self.describe(next))") }
            return
        }
        let now = ContinuousClock.now
        defer { waveProgress.checked = now }
        // Progress, or a pause in polling (backpressure, a rebalance): the
        // wave is not idle.
        if positions != waveProgress.positions || now - waveProgress.checked > .milliseconds(200) {
            waveProgress = (positions, now, now)
        } else if now - waveProgress.at > Self.waveIdleTimeout {
            // Short of a target that is never delivered (a transaction's
            // commit marker ends the log), or Kafka is unreachable: move on.
            logger.info("catch-up wave \(plan.completed + 1): nothing read for \(Self.waveIdleTimeout) short of the high watermark; going on")
            endWave(next: plan.finishCurrent(), plan: plan)
        }
    }

    /// After a wave: its keys are flushed, and the next wave is read.
    func endWave(next: [TopicPartition], plan: CatchUpWaves) {
        requestFlush()
        counters.catchUpWaves.wrappingIncrement(ordering: .relaxed)
        release(next, plan: plan)
    }

    /// A wave whose partitions deliver nothing for this long while the
    /// ingest polls ends.
    static let waveIdleTimeout: Duration = .seconds(1)

    /// Resumes `partitions` and makes `plan` (nil: none) the current one.
    func release(_ partitions: [TopicPartition], plan: CatchUpWaves?) {
        // Backpressure resumes the others, the owed barrier its own.
        let resumable = partitions.filter { !paused.contains($0) && !awaitingOwedBarrier.contains($0) }
        do { try consumer.resume(resumable) } catch {
            counters.kafkaErrors.wrappingIncrement(ordering: .relaxed)
            logger.warning("resuming the next catch-up wave failed, retrying: \(error)")
            Thread.sleep(forTimeInterval: 0.1)
            return
        }
        if let plan, !plan.isFinished {
            waves = plan
        } else {
            if plan?.isFinished == true { logger.info("caught up in waves") }
            waves = nil
        }
        waveProgress = ([:], .now, .now)
    }

    /// A revoke takes partitions out of the waves.
    func dropFromWaves(_ revoked: Set<TopicPartition>) {
        guard var plan = waves else { return }
        let next = plan.remove(revoked)
        if plan.isFinished {
            waves = nil
        } else if !next.isEmpty {
            release(next, plan: plan)
        } else {
            waves = plan
        }
    }

    /// Has the shard flush now without waiting for the writer (the keys
    /// of a finished wave): a control batch after the wave's events.
    func requestFlush() {
        pushCurrent()
        guard let index = free.popBlocking(timeout: drainTimeout) else { return }
        batches[index].info.control = .flush
        let pushed = output.tryPush(index)
        precondition(pushed, "the shard ring holds every batch of the pool")
    }

    static func describe(_ partitions: [TopicPartition]) -> String {
        partitions.map(\.description).sorted().joined(separator: ", ")
    }
}
