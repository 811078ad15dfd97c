import EddyCore
import EddyDevKit
import EddyKafka
import EddyMetrics
import EddyMonitor
import EddyRedis
import EddyServer
import EddyWorker
import Foundation
import Testing

/// The worker's `/metrics`, fed from a bare `WorkerCounters`.
@Suite("Worker metrics", .serialized)
struct WorkerMetricsTests {
    /// Sets counters as the stages would.
    static func fill(_ c: WorkerCounters) {
        c.consumed.store(1000, ordering: .relaxed)
        c.applied.store(950, ordering: .relaxed)
        c.late.store(20, ordering: .relaxed)
        c.invalid.store(30, ordering: .relaxed)
        let reasons = RejectReason.allCases
        c.invalidByReason[reasons.firstIndex(of: .notJSON)!].store(25, ordering: .relaxed)
        c.invalidByReason[reasons.firstIndex(of: .missingKey)!].store(5, ordering: .relaxed)
        c.entitiesWritten.store(400, ordering: .relaxed)
        c.writesFenced.store(3, ordering: .relaxed)
        c.redisErrors.store(4, ordering: .relaxed)
        c.redisRetries.store(2, ordering: .relaxed)
        c.keysInMemory.store(321, ordering: .relaxed)
        c.flushes.store(9, ordering: .relaxed)
        c.assignedPartitions.store(2, ordering: .relaxed)
        c.partitionLag.publish([
            PartitionLag(topic: "clicks", partition: 0, highWatermark: 500, position: 480),
            PartitionLag(topic: "clicks", partition: 1, highWatermark: 70, position: 70),
            PartitionLag(topic: "clicks", partition: 2, highWatermark: nil, position: 5),
        ])
        // Flush latency: 3 ms x 6, 40 ms x 3 (µs).
        c.flushLatency.record(micros: 3000, count: 6)
        c.flushLatency.record(micros: 40_000, count: 3)
        // Batch sizes 1, 5 (exact below 8) and 1500.
        c.flushBatchSize.record(micros: 1)
        c.flushBatchSize.record(micros: 5)
        c.flushBatchSize.record(micros: 1500)
        // Freshness: 0.2 s x 100, 2 s x 10.
        c.freshness.record(micros: 200_000, count: 100)
        c.freshness.record(micros: 2_000_000, count: 10)
        c.eventFreshness.record(micros: 7_000_000, count: 4)
        c.batches.store(12, ordering: .relaxed)
        c.batchLatency.record(micros: 700, count: 12)
    }

    @Test("counters, gauges, lag and histograms match the counters they are read from")
    func oneTopic() throws {
        let c = WorkerCounters()
        let hub = MetricsHub()
        hub.add(WorkerMetricsCollector(
            WorkerMetricsSource(counters: c, topics: ["clicks"], ringOccupancy: { (3, 1) }, ringCapacity: (8, 4)), hub: hub))
        Self.fill(c)
        let m = parsePrometheus(String(decoding: hub.scrape(), as: UTF8.self))
        let topic = ["topic": "clicks"]
        #expect(m.types["eddy_worker_events_consumed_total"] == "counter")
        #expect(m["eddy_worker_events_consumed_total", topic] == 1000)
        #expect(m["eddy_worker_events_applied_total", topic] == 950)
        #expect(m["eddy_worker_events_late_total", topic] == 20)
        #expect(m["eddy_worker_events_invalid_total", ["topic": "clicks", "reason": "not_json"]] == 25)
        #expect(m["eddy_worker_events_invalid_total", ["topic": "clicks", "reason": "missing_key"]] == 5)
        #expect(m["eddy_worker_events_invalid_total", ["topic": "clicks", "reason": "bad_ts"]] == 0)
        #expect(m["eddy_worker_events_invalid_total", ["topic": "clicks", "reason": "late"]] == nil)
        #expect(m["eddy_worker_entities_written_total"] == 400)
        #expect(m["eddy_worker_writes_fenced_total"] == 3)
        #expect(m["eddy_worker_redis_errors_total"] == 4)
        #expect(m["eddy_worker_redis_retries_total"] == 2)
        #expect(m["eddy_worker_flushes_total"] == 9)
        #expect(m.types["eddy_worker_keys_in_memory"] == "gauge")
        #expect(m["eddy_worker_keys_in_memory"] == 321)
        #expect(m["eddy_worker_assigned_partitions"] == 2)
        #expect(m["eddy_worker_ring_occupancy", ["ring": "shard"]] == 3)
        #expect(m["eddy_worker_ring_occupancy", ["ring": "writer"]] == 1)
        #expect(m["eddy_worker_ring_capacity", ["ring": "shard"]] == 8)
        #expect(m["eddy_worker_consumer_lag", ["topic": "clicks", "partition": "0"]] == 20)
        #expect(m["eddy_worker_consumer_lag", ["topic": "clicks", "partition": "1"]] == 0)
        // Unknown high watermark: no series rather than a wrong one.
        #expect(m["eddy_worker_consumer_lag", ["topic": "clicks", "partition": "2"]] == nil)
        #expect((m["eddy_worker_consumer_lag_age_seconds"] ?? -1) >= 0)

        #expect(m.types["eddy_worker_flush_duration_seconds"] == "histogram")
        #expect(m["eddy_worker_flush_duration_seconds_count"] == 9)
        #expect(abs((m["eddy_worker_flush_duration_seconds_sum"] ?? 0) - 0.138) < 1e-9)
        #expect(m["eddy_worker_flush_duration_seconds_bucket", ["le": "0.0025"]] == 0)
        #expect(m["eddy_worker_flush_duration_seconds_bucket", ["le": "0.005"]] == 6)
        #expect(m["eddy_worker_flush_duration_seconds_bucket", ["le": "0.025"]] == 6)
        #expect(m["eddy_worker_flush_duration_seconds_bucket", ["le": "0.05"]] == 9)
        #expect(m["eddy_worker_flush_entities_bucket", ["le": "1"]] == 1)
        #expect(m["eddy_worker_flush_entities_bucket", ["le": "5"]] == 2)
        #expect(m["eddy_worker_flush_entities_bucket", ["le": "1000"]] == 2)
        #expect(m["eddy_worker_flush_entities_bucket", ["le": "2000"]] == 3)
        #expect(m["eddy_worker_flush_entities_sum"] == 1506)
        #expect(m["eddy_worker_kafka_freshness_seconds_bucket", ["le": "0.25"]] == 100)
        #expect(m["eddy_worker_kafka_freshness_seconds_bucket", ["le": "1"]] == 100)
        #expect(m["eddy_worker_kafka_freshness_seconds_bucket", ["le": "2.5"]] == 110)
        #expect(m["eddy_worker_event_time_freshness_seconds_count"] == 4)
        #expect(m["eddy_worker_event_time_freshness_seconds_bucket", ["le": "5"]] == 0)
        #expect(m["eddy_worker_event_time_freshness_seconds_bucket", ["le": "10"]] == 4)
        #expect(m["eddy_worker_batches_total"] == 12)
        #expect(m["eddy_worker_batch_duration_seconds_bucket", ["le": "0.001"]] == 12)
        #expect(m["eddy_worker_state_load_duration_seconds_count"] == 0)

        // A scrape later: new values, and a revoked partition's lag series is gone.
        c.consumed.wrappingIncrement(by: 5, ordering: .relaxed)
        c.partitionLag.publish([PartitionLag(topic: "clicks", partition: 1, highWatermark: 90, position: 75)])
        let m2 = parsePrometheus(String(decoding: hub.scrape(), as: UTF8.self))
        #expect(m2["eddy_worker_events_consumed_total", topic] == 1005)
        #expect(m2["eddy_worker_consumer_lag", ["topic": "clicks", "partition": "1"]] == 15)
        #expect(m2["eddy_worker_consumer_lag", ["topic": "clicks", "partition": "0"]] == nil)
    }

    @Test("several topics are counted per topic")
    func severalTopics() throws {
        let c = WorkerCounters()
        let hub = MetricsHub()
        hub.add(WorkerMetricsCollector(WorkerMetricsSource(counters: c, topics: ["a", "b"]), hub: hub))
        c.topicConsumed[0].store(10, ordering: .relaxed)
        c.topicConsumed[1].store(7, ordering: .relaxed)
        c.topicApplied[1].store(6, ordering: .relaxed)
        c.topicLate[0].store(1, ordering: .relaxed)
        let reasons = RejectReason.allCases
        c.topicInvalidByReason[1 * reasons.count + reasons.firstIndex(of: .badTime)!].store(1, ordering: .relaxed)
        let m = parsePrometheus(String(decoding: hub.scrape(), as: UTF8.self))
        #expect(m["eddy_worker_events_consumed_total", ["topic": "a"]] == 10)
        #expect(m["eddy_worker_events_consumed_total", ["topic": "b"]] == 7)
        #expect(m["eddy_worker_events_applied_total", ["topic": "b"]] == 6)
        #expect(m["eddy_worker_events_late_total", ["topic": "a"]] == 1)
        #expect(m["eddy_worker_events_invalid_total", ["topic": "b", "reason": "bad_ts"]] == 1)
        #expect(m["eddy_worker_events_invalid_total", ["topic": "a", "reason": "bad_ts"]] == 0)
    }

    @Test("the worker's HTTP server: /metrics with feature values, /readyz follows assignment and Redis")
    func workerServer() async throws {
        let redis = try RedisServerProcess()
        let t = try exampleTopology("clickstream")
        var config = WorkerConfig(topology: t, brokers: "127.0.0.1:1", redisURL: redis.url.description)
        let monitor = FeatureMonitor(topology: t)
        config.writtenStateObserver = monitor
        let worker = StreamWorker(config: config, logger: quietLogger)  // never started
        let hub = MetricsHub()
        let server = try WorkerHTTP.makeServer(
            listen: ("127.0.0.1", 0), worker: worker, monitor: monitor, hub: hub, started: { false }, logger: quietLogger)
        // What the writer would hand the monitor after a flush.
        let e = engine(t, clickstreamEvents(users: 10, perUser: 4))
        observeAll(e, monitor)
        worker.counters.consumed.store(40, ordering: .relaxed)

        try await run(server) { port, _ in
            let notReady = try await get(port, "/readyz")
            #expect(notReady.status == 503)
            let checks = (notReady.json as? [String: Any])?["checks"] as? [String: [String: Any]]
            #expect(checks?["kafka"]?["ok"] as? Bool == false)
            #expect(checks?["redis"]?["ok"] as? Bool == true)
            #expect(try await get(port, "/healthz").status == 200)
            worker.counters.assignedPartitions.store(3, ordering: .relaxed)
            #expect(try await get(port, "/readyz").status == 200)
            // No feature routes on the worker.
            #expect(try await get(port, "/v1/features/clickstream/u1").status == 404)

            let m = parsePrometheus(try await get(port, "/metrics").text)
            #expect(m["eddy_worker_events_consumed_total", ["topic": "clickstream"]] == 40)
            #expect(m["eddy_worker_assigned_partitions"] == 3)
            #expect(m["eddy_feature_entities_observed_total", ["topology": "clickstream"]] == 10)
            #expect(m["eddy_feature_value_count", ["topology": "clickstream", "feature": "session_events"]] == 10)
            // Every user has 4 events in one session.
            #expect(m["eddy_feature_value_bucket", ["topology": "clickstream", "feature": "session_events", "le": "2"]] == 0)
            #expect(m["eddy_feature_value_bucket", ["topology": "clickstream", "feature": "session_events", "le": "5"]] == 10)
            #expect(m["eddy_feature_value_sum", ["topology": "clickstream", "feature": "session_events"]] == 40)
            #expect(m["eddy_feature_value_null_total", ["topology": "clickstream", "feature": "clicks_1h"]] == 0)

            redis.stop(.kill)
            try await Task.sleep(for: .milliseconds(1100))
            let redisDown = try await get(port, "/readyz")
            #expect(redisDown.status == 503)
            let downChecks = (redisDown.json as? [String: Any])?["checks"] as? [String: [String: Any]]
            #expect(downChecks?["redis"]?["ok"] as? Bool == false)
        }
    }
}
