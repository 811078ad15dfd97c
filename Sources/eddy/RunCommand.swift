import ArgumentParser
import Atomics
import CEddySupport
import EddyCore
import EddyMetrics
import EddyMonitor
import EddyServer
import EddyWorker
import Foundation
import Logging
import Metrics
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand, StopsOnTerminationSignals {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the stream worker: consume the topology's topic, keep every entity's features fresh in Redis.",
        discussion: """
            Many workers with the same topology form one Kafka consumer group and share the partitions. \
            --brokers and --redis (or EDDY_BROKERS and EDDY_REDIS_URL) override the topology file. \
            SIGTERM or SIGINT: stop consuming, flush, commit, leave the group, exit 0.
            """
    )

    @Argument(help: "Topology file, or a name under Topologies/ (e.g. clickstream).")
    var topology: String

    @Option(help: "Kafka bootstrap servers (overrides the file and EDDY_BROKERS).")
    var brokers: String?

    @Option(help: "Redis URL (overrides the file and EDDY_REDIS_URL).")
    var redis: String?

    @OptionGroup var redisCredentials: RedisCredentialOptions

    @Option(help: "Kafka consumer group (overrides the file).")
    var group: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Option(help: "Seconds between progress lines in the log (0: none).")
    var statsInterval: Double = 10

    @Option(help: "Keys kept in memory; beyond it idle keys are evicted and reload from Redis when they return.")
    var maxKeys: Int?

    @Option(help: "Serve /metrics (Prometheus), /healthz and /readyz on HOST:PORT (':PORT' for all interfaces).")
    var http: String?

    @OptionGroup(title: "HTTP port security (with --http)") var security: HTTPSecurityOptions

    @Option(name: .customLong("assign"), help: ArgumentHelp(
        "Read fixed partitions without group management: 'all', or a list like 0-7,12 (of every source topic).",
        discussion: "No rebalance: a restarted worker reads again at once, from the group's committed offsets. Run one worker per partition set."))
    var assign: String?

    @Option(help: "Catching up: from this many messages waiting in the assigned partitions until 1% of it, flush every --catch-up-flush-ms instead of the topology's flush_interval.")
    var catchUpBacklog = WorkerConfig.defaultCatchUpBacklog

    @Option(name: .customLong("catch-up-flush-ms"), help: "Flush interval in ms while catching up (see --catch-up-backlog).")
    var catchUpFlushMs = Int(WorkerConfig.defaultCatchUpFlushInterval / .milliseconds(1))

    @Option(help: ArgumentHelp(
        "Read a backlog of --catch-up-backlog messages or more found at assignment in up to this many waves of partitions (1: all at once).",
        discussion: "Each wave's keys are written to Redis while the next wave is read, instead of all keys at the end."))
    var catchUpWaves = WorkerConfig.defaultCatchUpWaves

    @Option(help: ArgumentHelp(
        "How writes are fenced on a single Redis server: partition (one epoch per partition per flush, plain HSETs) or entity (the per-entity offset script). A Cluster and --assign always use entity.",
        valueName: "partition|entity"))
    var fence: String = WorkerConfig.Fence.partitionEpochs.rawValue

    @Option(name: .customLong("drain-timeout"), help: ArgumentHelp(
        "Seconds a revocation or a shutdown waits for the in-flight writes to reach Redis.",
        discussion: "A revocation that waits longer (Redis down across a rebalance) lets the rebalance go on; the revoked partitions' keys are dropped and their epochs released as soon as the pipeline moves again, before any of their events is read again."))
    var drainTimeout = WorkerConfig.defaultDrainTimeoutSeconds

    @Flag(inversion: .prefixedNo, help: ArgumentHelp(
        "Flush dirty keys as soon as the Redis writer is idle and no events wait (group commit).",
        discussion: "With --no-flush-when-idle the shard always waits the topology's flush_interval, coalescing more writes per key at the cost of freshness."))
    var flushWhenIdle = true

    func validate() throws {
        if http == nil, security.tlsCert != nil || security.tlsKey != nil || security.authTokenFile != nil {
            throw ValidationError("--tls-cert, --tls-key and --auth-token-file secure the --http port: give --http HOST:PORT too")
        }
        if let http, EddyHTTPServer.parseListen(http) == nil { throw ValidationError("--http '\(http)' is not HOST:PORT") }
        if let assign, Self.assignment(assign) == nil {
            throw ValidationError("--assign '\(assign)' is not 'all' or a list of partitions like 0-7,12")
        }
        if catchUpBacklog < 1 { throw ValidationError("--catch-up-backlog must be at least 1") }
        if catchUpWaves < 1 { throw ValidationError("--catch-up-waves must be at least 1") }
        if catchUpFlushMs < 1 { throw ValidationError("--catch-up-flush-ms must be at least 1") }
        if !(drainTimeout > 0 && drainTimeout <= 3600) { throw ValidationError("--drain-timeout must be between 0 and 3600 seconds (say 30)") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        logToStandardError(level: level)
        let logger = Logger(label: "eddy.run")
        // Flat memory over days: keep librdkafka's large buffers out of the heap.
        _ = eddy_fix_mmap_threshold(128 * 1024)
        var t = try loadTopology(topology)
        if t.isMultiEntity && t.source.format != "json" {
            // Each entity's decoder reads its own fields; the binary plans are compiled for one field table.
            throw CLIError("topology \(t.name) has several entities and source.format \(t.source.format): eddy run reads "
                + "`entities:` topologies from JSON topics only so far. Use one topology per entity, or a JSON topic.")
        }
        if let group { t.source.group = group }
        let env = ProcessInfo.processInfo.environment
        var config = WorkerConfig(
            topology: t, brokers: brokers ?? env["EDDY_BROKERS"].flatMap { $0.isEmpty ? nil : $0 },
            redisURL: try resolveRedisURL(redis, topology: t, credentials: redisCredentials).urlTextWithCredentials)
        if let maxKeys { config.maxKeysInMemory = max(maxKeys, 1) }
        if let assign, let assignment = Self.assignment(assign) { config.assignment = assignment }
        config.catchUpBacklog = catchUpBacklog
        config.catchUpFlushInterval = .milliseconds(catchUpFlushMs)
        config.catchUpWaves = catchUpWaves
        config.flushWhenIdle = flushWhenIdle
        config.drainTimeoutSeconds = drainTimeout
        guard let fence = WorkerConfig.Fence(rawValue: fence) else {
            throw ValidationError("--fence must be partition or entity, not '\(fence)'")
        }
        config.fence = fence
        let messages = try MessageFormat.kafka(t)
        config.binary = messages.binary
        config.schemaResolver = messages.resolver
        // Feature monitoring reads each written state as the topology's; with
        // `entities:` the writes are several entities' (not monitored yet).
        let monitor = http == nil || t.isMultiEntity ? nil : FeatureMonitor(topology: t)
        config.writtenStateObserver = monitor
        let worker = StreamWorker(config: config, logger: logger)

        let started = ManagedAtomic(false)
        var services: [any Service] = []
        if let http {
            // Stopped after the worker (services stop in reverse order), so
            // /metrics and /readyz answer while it flushes.
            let hub = MetricsHub()
            MetricsSystem.bootstrap(hub.factory)
            let secured = try security.resolve(logger: logger)
            let server = try WorkerHTTP.makeServer(
                listen: EddyHTTPServer.parseListen(http)!, worker: worker, monitor: monitor, hub: hub,
                started: { started.load(ordering: .relaxed) }, logger: logger, secure: { $0.secure(secured) })
            let scheme = secured.tls == nil ? "http" : "https"
            let app = try server.makeApplication { port in
                logger.info("metrics on \(scheme)://\(EddyHTTPServer.parseListen(http)!.host):\(port)/metrics, health on /healthz and /readyz")
            }
            services.append(FailureLabel(app, "eddy run: cannot serve HTTP on \(http)"))
        }
        services.append(FailureLabel(
            StreamWorkerService(
                worker: worker, statsInterval: statsInterval > 0 ? .seconds(statsInterval) : nil,
                stopTimeout: .seconds(Self.stopTimeoutSeconds),
                onStarted: { started.store(true, ordering: .relaxed) }),
            "eddy run"))
        try await ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }

    /// How long a stop may take before the process exits anyway (status 1).
    static let stopTimeoutSeconds = 25

    /// `--assign`: `all` or a list like `0-7,12`; nil for anything else.
    static func assignment(_ text: String) -> PartitionAssignment? {
        if text == "all" { return .fixed(partitions: nil) }
        var out: Set<Int32> = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int32(bounds[0]), let high = Int32(bounds.last!),
                  low >= 0, low <= high else { return nil }
            out.formUnion(low...high)
        }
        return .fixed(partitions: out.sorted())
    }
}
