import EddyCore
import EddyMetrics
import EddyMonitor
import EddyRedis
import Hummingbird
import Logging

/// The HTTP server of `eddy run --http HOST:PORT`: `/metrics` (the worker's
/// counters, lag, histograms and feature-value distributions, read on
/// scrape), `/healthz` (the stages run) and `/readyz` (partitions assigned
/// and Redis answers PING). No feature routes. TLS and bearer tokens as
/// `eddy serve`'s (`secure` sets them). `eddy run` runs its
/// application as a service beside the worker's.
public enum WorkerHTTP {
    /// The metrics, liveness and readiness of `worker` (started or not).
    public static func makeServer(
        listen: (host: String, port: Int), worker: any MonitoredWorker, monitor: FeatureMonitor?, hub: MetricsHub,
        started: @escaping @Sendable () -> Bool, logger: Logger,
        secure: (inout EddyHTTPServer.Options) -> Void = { _ in }
    ) throws -> EddyHTTPServer {
        let source = worker.metricsSource
        let counters = source.counters
        hub.add(WorkerMetricsCollector(source, hub: hub))
        if let monitor { hub.add(FeatureMonitorCollector(monitor)) }
        let url: RedisTarget
        do { url = try RedisTarget(parsing: worker.redisURL) } catch {
            throw WorkerHTTPError("bad Redis URL '\(Secrets.redactingURLPassword(worker.redisURL))': \(error)")
        }
        let redis = RedisLanes(target: url, lanes: 1, options: RedisLanes.defaultOptions(clientName: "eddy-run-health"))
        let kafka = HealthCheck("kafka") {
            let n = counters.assignedPartitions.load(ordering: .relaxed)
            return (n > 0, n > 0 ? "\(n) partitions assigned" : "no partitions assigned")
        }
        let registry = HealthCheck("schema_registry") {
            let held = counters.schemaRegistryHeld.load(ordering: .relaxed) != 0
            return (!held, held ? "unreachable or failing (\(counters.schemaRegistryErrors.load(ordering: .relaxed)) errors): consumption held, retrying" : "ok")
        }
        let stages = HealthCheck("stages") {
            guard started() else { return (true, "starting") }
            return worker.isRunning ? (true, "running") : (false, "a stage stopped")
        }
        var options = EddyHTTPServer.Options(host: listen.host, port: listen.port, role: "worker")
        secure(&options)
        return EddyHTTPServer(
            options: options, topologies: [], hub: hub,
            readiness: [kafka, registry, .redis(redis)], liveness: [stages], logger: logger)
    }
}

struct WorkerHTTPError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
