import Atomics
import Dispatch
import EddyMetrics
import EddyMonitor
import EddyRedis
import Foundation
import Hummingbird
import Logging
import Metrics

/// The HTTP server of `eddy run --http HOST:PORT`: `/metrics` (the worker's
/// counters, lag, histograms and feature-value distributions, read on
/// scrape), `/healthz` (the stages run) and `/readyz` (partitions assigned
/// and Redis answers PING). No feature routes.
public final class WorkerHTTP: Sendable {
    public let hub: MetricsHub
    let running: RunningServer
    let started: ManagedAtomic<Bool>
    /// The bound port.
    public var port: Int { running.port }

    private init(hub: MetricsHub, running: RunningServer, started: ManagedAtomic<Bool>) {
        self.hub = hub
        self.running = running
        self.started = started
    }

    /// The metrics, liveness and readiness of `worker` (started or not).
    public static func makeServer(
        listen: (host: String, port: Int), worker: any MonitoredWorker, monitor: FeatureMonitor?, hub: MetricsHub,
        started: @escaping @Sendable () -> Bool, logger: Logger
    ) throws -> EddyHTTPServer {
        let source = worker.metricsSource
        let counters = source.counters
        hub.add(WorkerMetricsCollector(source, hub: hub))
        if let monitor { hub.add(FeatureMonitorCollector(monitor)) }
        let url: RedisTarget
        do { url = try RedisTarget(parsing: worker.redisURL) } catch {
            throw WorkerHTTPError("bad Redis URL '\(worker.redisURL)': \(error)")
        }
        let redis = RedisLanes(target: url, lanes: 1, options: RedisLanes.defaultOptions(clientName: "eddy-run-health"))
        let kafka = HealthCheck("kafka") {
            let n = counters.assignedPartitions.load(ordering: .relaxed)
            return (n > 0, n > 0 ? "\(n) partitions assigned" : "no partitions assigned")
        }
        let stages = HealthCheck("stages") {
            guard started() else { return (true, "starting") }
            return worker.isRunning ? (true, "running") : (false, "a stage stopped")
        }
        return EddyHTTPServer(
            options: .init(host: listen.host, port: listen.port, role: "worker"), topologies: [], hub: hub,
            readiness: [kafka, .redis(redis)], liveness: [stages], logger: logger)
    }

    /// Starts serving on `listen` (HOST:PORT) and returns once the port is
    /// bound; throws when it cannot be.
    public static func start(listen: String, worker: any MonitoredWorker, monitor: FeatureMonitor?, logger: Logger) throws
        -> WorkerHTTP
    {
        guard let address = EddyHTTPServer.parseListen(listen) else { throw WorkerHTTPError("--http '\(listen)' is not HOST:PORT") }
        let hub = MetricsHub()
        MetricsSystem.bootstrap(hub.factory)
        let startedFlag = ManagedAtomic<Bool>(false)
        let server = try makeServer(listen: address, worker: worker, monitor: monitor, hub: hub,
                                    started: { startedFlag.load(ordering: .relaxed) }, logger: logger)
        let done = DispatchSemaphore(value: 0)
        let result = StartResult()
        Task {
            do { result.set(.success(try await server.start())) } catch { result.set(.failure(error)) }
            done.signal()
        }
        done.wait()
        switch result.get()! {
        case .failure(let error):
            throw WorkerHTTPError("cannot serve HTTP on \(listen): \(error)")
        case .success(let running):
            logger.info("metrics on http://\(address.host):\(running.port)/metrics, health on /healthz and /readyz")
            return WorkerHTTP(hub: hub, running: running, started: startedFlag)
        }
    }

    /// The worker has started: `/healthz` now follows its stages.
    public func markStarted() { started.store(true, ordering: .relaxed) }

    /// Stops serving (waits for requests in flight, at most 5 s).
    public func stop() {
        let done = DispatchSemaphore(value: 0)
        let running = self.running
        Task {
            await running.stop()
            done.signal()
        }
        _ = done.wait(timeout: .now() + 5)
    }
}

struct WorkerHTTPError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The outcome of starting, handed from the starting task.
final class StartResult: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<RunningServer, any Error>?
    func set(_ v: Result<RunningServer, any Error>) { lock.lock(); value = v; lock.unlock() }
    func get() -> Result<RunningServer, any Error>? { lock.lock(); defer { lock.unlock() }; return value }
}
