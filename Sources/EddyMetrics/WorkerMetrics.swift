import EddyCore
import Foundation
import Prometheus

/// What `/metrics` reads from a running worker. Tests build one around a
/// bare `WorkerCounters`.
public struct WorkerMetricsSource: Sendable {
    public var counters: WorkerCounters
    /// The topology's source topics, in order (topic indexes).
    public var topics: [String]
    /// Batches waiting for the shard, flushes waiting for the writer.
    public var ringOccupancy: @Sendable () -> (shard: Int, writer: Int)
    /// The rings' capacities (batches in flight, flushes in flight).
    public var ringCapacity: (shard: Int, writer: Int)

    public init(counters: WorkerCounters, topics: [String],
                ringOccupancy: @escaping @Sendable () -> (shard: Int, writer: Int) = { (0, 0) },
                ringCapacity: (shard: Int, writer: Int) = (0, 0)) {
        self.counters = counters
        self.topics = topics
        self.ringOccupancy = ringOccupancy
        self.ringCapacity = ringCapacity
    }
}

/// A worker as its HTTP endpoints see it: `/metrics` reads `metricsSource`,
/// `/healthz` asks `isRunning`, `/readyz` pings `redisURL`. EddyWorker's
/// `StreamWorker` conforms, so the server modules never import the worker.
public protocol MonitoredWorker: AnyObject, Sendable {
    /// What `/metrics` reads (before or after the worker starts).
    var metricsSource: WorkerMetricsSource { get }
    /// Whether every stage still runs.
    var isRunning: Bool { get }
    /// The Redis the worker writes to.
    var redisURL: String { get }
}

/// Exports `WorkerCounters` on scrape (see the metric list in the README
/// text of `ServeCommand`): counters and gauges are copied into the
/// registry, histograms are written from the counters' own buckets.
public final class WorkerMetricsCollector: MetricsCollector, @unchecked Sendable {
    let source: WorkerMetricsSource
    let registry: PrometheusCollectorRegistry
    // Per topic (up to WorkerCounters.maxTopics).
    let consumed: [MirroredCounter]
    let applied: [MirroredCounter]
    let late: [MirroredCounter]
    let invalid: [[MirroredCounter]]  // [topic][reason], reasons other than `late`
    let totals: [(MirroredCounter, (WorkerCounters) -> Int)]
    let keysInMemory: Gauge
    let assigned: Gauge
    let ringShard: Gauge, ringWriter: Gauge
    let lagSnapshotAge: Gauge
    // Only touched under MetricsHub's scrape lock.
    var lagGauges: [LagSeries: Gauge] = [:]

    /// One partition's lag gauge.
    struct LagSeries: Hashable {
        var topic: String
        var partition: Int32
    }

    static let lagHelp = "Consumer lag per partition: high watermark minus position (librdkafka's local view, refreshed every 2 s)."

    public init(_ source: WorkerMetricsSource, hub: MetricsHub) {
        self.source = source
        let r = hub.registry
        registry = r
        let topics = Array(source.topics.prefix(WorkerCounters.maxTopics))
        func perTopic(_ name: String, _ help: String) -> [MirroredCounter] {
            topics.map { MirroredCounter(r, name, [("topic", $0)], help: help) }
        }
        consumed = perTopic("eddy_worker_events_consumed_total", "Kafka messages the worker read.")
        applied = perTopic("eddy_worker_events_applied_total", "Events applied to the features.")
        late = perTopic("eddy_worker_events_late_total", "Events dropped as late (older than key time minus allowed lateness).")
        invalid = topics.map { topic in
            RejectReason.allCases.filter { $0 != .late }.map { reason in
                MirroredCounter(r, "eddy_worker_events_invalid_total", [("topic", topic), ("reason", reason.rawValue)],
                                help: "Messages that could not be read as events, by reason.")
            }
        }
        totals = [
            (MirroredCounter(r, "eddy_worker_batches_total", help: "Message batches handed from ingest to the shard."), { $0.batches.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_duplicates_skipped_total", help: "Re-read events the state loaded from Redis already held."), { $0.duplicatesSkipped.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_dead_letters_total", help: "Records sent to the dead-letter topic."), { $0.deadLettered.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_dead_letter_errors_total", help: "Dead-letter records that failed."), { $0.deadLetterErrors.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_keys_loaded_total", help: "Keys whose state was loaded from Redis."), { $0.keysLoaded.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_keys_evicted_total", help: "Keys dropped from memory."), { $0.keysEvicted.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_state_incompatible_total", help: "Keys whose stored state was written for other features."), { $0.stateIncompatible.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_flushes_total", help: "Flushes handled by the Redis writer."), { $0.flushes.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_entities_written_total", help: "Entity writes Redis applied."), { $0.entitiesWritten.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_writes_fenced_total", help: "Entity writes the fence refused (an older offset than Redis holds)."), { $0.writesFenced.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_redis_errors_total", help: "Redis failures: failed round trips and failed script replies."), { $0.redisErrors.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_schema_registry_errors_total", help: "Schema registry requests that failed (unreachable, timeout, 5xx); consumption is held meanwhile."), { $0.schemaRegistryErrors.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_redis_retries_total", help: "Redis round trips (writes, state loads) retried after a failure."), { $0.redisRetries.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_kafka_errors_total", help: "Kafka errors reported by the consumer."), { $0.kafkaErrors.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_offset_gaps_total", help: "Holes found in partition offsets and read again (records skipped by librdkafka, or transaction markers and compaction)."), { $0.offsetGaps.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_catch_up_waves_total", help: "Catch-up waves finished: groups of partitions read to the end of a large backlog, whose keys are written while the next group is read."), { $0.catchUpWaves.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_commits_total", help: "Offset commits."), { $0.commits.load(ordering: .relaxed) }),
            (MirroredCounter(r, "eddy_worker_commit_errors_total", help: "Offset commits that failed."), { $0.commitErrors.load(ordering: .relaxed) }),
        ]
        keysInMemory = r.gauge("eddy_worker_keys_in_memory", help: "Keys whose state the worker holds in memory.")
        assigned = r.gauge("eddy_worker_assigned_partitions", help: "Kafka partitions assigned to this worker.")
        ringShard = r.gauge("eddy_worker_ring_occupancy", [("ring", "shard")], help: "Items waiting in a stage ring (shard: message batches; writer: flushes).")
        ringWriter = r.gauge("eddy_worker_ring_occupancy", [("ring", "writer")], help: "Items waiting in a stage ring (shard: message batches; writer: flushes).")
        let capShard = r.gauge("eddy_worker_ring_capacity", [("ring", "shard")], help: "Capacity of a stage ring.")
        let capWriter = r.gauge("eddy_worker_ring_capacity", [("ring", "writer")], help: "Capacity of a stage ring.")
        capShard.set(Double(source.ringCapacity.shard))
        capWriter.set(Double(source.ringCapacity.writer))
        lagSnapshotAge = r.gauge("eddy_worker_consumer_lag_age_seconds", help: "Age of the per-partition lag snapshot (-1: none yet).")
    }

    public func update() {
        let c = source.counters
        if source.topics.count <= 1 {
            // One topic: the totals are that topic's.
            consumed.first?.set(c.consumed.load(ordering: .relaxed))
            applied.first?.set(c.applied.load(ordering: .relaxed))
            late.first?.set(c.late.load(ordering: .relaxed))
            let reasons = RejectReason.allCases.filter { $0 != .late }
            for (i, reason) in reasons.enumerated() { invalid.first?[i].set(c.count(reason)) }
        } else {
            let reasons = RejectReason.allCases
            for t in consumed.indices {
                consumed[t].set(c.topicConsumed[t].load(ordering: .relaxed))
                applied[t].set(c.topicApplied[t].load(ordering: .relaxed))
                late[t].set(c.topicLate[t].load(ordering: .relaxed))
                var i = 0
                for (r, reason) in reasons.enumerated() where reason != .late {
                    invalid[t][i].set(c.topicInvalidByReason[t * reasons.count + r].load(ordering: .relaxed))
                    i += 1
                }
            }
        }
        for (counter, read) in totals { counter.set(read(c)) }
        keysInMemory.set(Double(c.keysInMemory.load(ordering: .relaxed)))
        assigned.set(Double(c.assignedPartitions.load(ordering: .relaxed)))
        let rings = source.ringOccupancy()
        ringShard.set(Double(rings.shard))
        ringWriter.set(Double(rings.writer))
        updateLag()
    }

    func updateLag() {
        let (lags, at) = source.counters.partitionLag.snapshot
        lagSnapshotAge.set(at.map { Double((ContinuousClock.now - $0) / .milliseconds(1)) / 1000 } ?? -1)
        var current: Set<LagSeries> = []
        for entry in lags {
            guard let lag = entry.lag else { continue }
            let tp = LagSeries(topic: entry.topic, partition: entry.partition)
            current.insert(tp)
            let gauge = lagGauges[tp] ?? registry.gauge(
                "eddy_worker_consumer_lag", [("topic", tp.topic), ("partition", String(tp.partition))], help: Self.lagHelp)
            lagGauges[tp] = gauge
            gauge.set(Double(lag))
        }
        for (tp, gauge) in lagGauges where !current.contains(tp) {
            registry.unregisterGauge(gauge)
            lagGauges[tp] = nil
        }
    }

    /// Latency bounds (seconds) for the worker's histograms.
    static let secondsBounds: [Double] = [
        0.0005, 0.001, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
    ]
    /// Entities-per-flush bounds.
    static let sizeBounds: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]

    public func emit(into buffer: inout [UInt8]) {
        let c = source.counters
        PrometheusText.help(&buffer, "eddy_worker_flush_duration_seconds",
                            "Time to write one flush to Redis, including retries.", type: "histogram")
        Self.export(c.flushLatency, &buffer, name: "eddy_worker_flush_duration_seconds", scale: 1e-6, bounds: Self.secondsBounds)
        PrometheusText.help(&buffer, "eddy_worker_batch_duration_seconds",
                            "Time the shard spent applying one message batch (state loads included).", type: "histogram")
        Self.export(c.batchLatency, &buffer, name: "eddy_worker_batch_duration_seconds", scale: 1e-6, bounds: Self.secondsBounds)
        PrometheusText.help(&buffer, "eddy_worker_state_load_duration_seconds",
                            "Loading missing keys' state from Redis, per batch that needed it.", type: "histogram")
        Self.export(c.loadLatency, &buffer, name: "eddy_worker_state_load_duration_seconds", scale: 1e-6, bounds: Self.secondsBounds)
        PrometheusText.help(&buffer, "eddy_worker_flush_entities", "Entities written per flush.", type: "histogram")
        Self.export(c.flushBatchSize, &buffer, name: "eddy_worker_flush_entities", scale: 1, bounds: Self.sizeBounds)
        PrometheusText.help(&buffer, "eddy_worker_kafka_freshness_seconds",
                            "Kafka message timestamp to Redis write acknowledged, per event.", type: "histogram")
        Self.export(c.freshness, &buffer, name: "eddy_worker_kafka_freshness_seconds", scale: 1e-6, bounds: Self.secondsBounds)
        PrometheusText.help(&buffer, "eddy_worker_kafka_consume_delay_seconds",
                            "Kafka message timestamp to handed to the shard, per event: the part of the Kafka freshness spent before the worker's pipeline (producer batching, broker, fetch).",
                            type: "histogram")
        Self.export(c.consumeDelay, &buffer, name: "eddy_worker_kafka_consume_delay_seconds", scale: 1e-6, bounds: Self.secondsBounds)
        PrometheusText.help(&buffer, "eddy_worker_pipeline_latency_seconds",
                            "Handed to the worker's shard to Redis write acknowledged, per event: the worker's own part of the Kafka freshness.",
                            type: "histogram")
        Self.export(c.pipelineLatency, &buffer, name: "eddy_worker_pipeline_latency_seconds", scale: 1e-6, bounds: Self.secondsBounds)
        PrometheusText.help(&buffer, "eddy_worker_event_time_freshness_seconds",
                            "Event time of a written entity's newest event (key time K) to Redis write acknowledged, per written entity.",
                            type: "histogram")
        Self.export(c.eventFreshness, &buffer, name: "eddy_worker_event_time_freshness_seconds", scale: 1e-6,
                    bounds: Self.secondsBounds)
    }

    /// Writes a `LatencyHistogram` (log-linear buckets, 8 per power of two)
    /// at Prometheus bounds: a fine bucket is counted at the first bound not
    /// below its largest value, so a quantile read from the result errs high
    /// by at most one fine bucket (1/8 of a power of two); exact below 8.
    static func export(_ h: LatencyHistogram, _ buffer: inout [UInt8], name: String, scale: Double, bounds: [Double],
                       labels: [(String, String)] = []) {
        let buckets = h.snapshot()
        var cumulative = Array(repeating: 0, count: bounds.count)
        var total = 0
        for b in buckets {
            total += b.count
            // Observations are integers: the bucket's largest is upper - 1.
            let edge = Double(b.upper - 1) * scale
            if let i = bounds.firstIndex(where: { $0 >= edge }) { cumulative[i] += b.count }
        }
        for i in cumulative.indices.dropFirst() { cumulative[i] += cumulative[i - 1] }
        PrometheusText.histogram(&buffer, name: name, labels: labels, bounds: bounds, cumulative: cumulative,
                                 count: total, sum: Double(h.sumMicros.load(ordering: .relaxed)) * scale)
    }
}
