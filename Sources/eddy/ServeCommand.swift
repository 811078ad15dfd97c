import ArgumentParser
import EddyConsole
import EddyCore
import EddyMetrics
import EddyMonitor
import EddyRedis
import EddyServer
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `eddy serve`: features over HTTP, read from Redis at a time T through
/// each topology's Function library; plus /metrics, /healthz and /readyz.
struct ServeCommand: AsyncParsableCommand, StopsOnTerminationSignals {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve features over HTTP (reads from Redis at a time T), with /metrics, /healthz and /readyz.",
        discussion: """
            GET  /v1/features/{topology}/{key}[?at=T]  one entity: the FCALL eddy_<topology>_features object \
            (404 {"key":...,"found":false} when Redis does not hold it). A topology with `entities:` is served \
            as one topology per entity, {topology} = <topology>_<entity> (its parts merged).
            POST /v1/features/{topology}[?at=T]        body ["k1","k2",...]: a JSON list in key order, pipelined \
            to Redis ({"key":...,"found":false} for unknown keys). Body limit 1 MiB (413), 10000 keys.
            T is epoch milliseconds or RFC 3339 (default: the Redis server's clock). Redis unreachable: 503, \
            and the next request reconnects. GET /metrics is Prometheus text; /readyz is 200 while Redis answers.
            """
    )

    @Option(name: .long, help: "Topology file (or name under Topologies/); repeat to serve several.")
    var topology: [String] = []

    @Option(name: .long, help: "Listen address HOST:PORT (':PORT' for all interfaces).")
    var listen: String = "127.0.0.1:8080"

    @Option(name: .long, help: "Redis URL for every topology (default: $EDDY_REDIS_URL, else each topology's sink).")
    var redis: String?

    @OptionGroup var redisCredentials: RedisCredentialOptions

    @OptionGroup var security: HTTPSecurityOptions

    @Option(help: """
        Seconds a connection may take to deliver a complete request head, from opening or from its \
        previous response: idle keep-alive connections and slow clients (slowloris) are closed.
        """)
    var requestHeadTimeout: Double = 30

    @Option(help: """
        Redis connections per Redis URL; each batches the requests that arrive while it waits. One lane \
        pipelines everything queued during a round trip and wakes least; more help when large POSTs \
        would delay single reads.
        """)
    var lanes: Int = 1

    @Flag(inversion: .prefixedNo, help: """
        Read single keys from a single Redis server on the event loop that handles the request, over that \
        loop's own connection (no thread hop); anything unusual still goes through a lane.
        """)
    var eventLoopReads = true

    @Option(help: """
        Event loop threads (default: one per core). Each handles its connections' requests and owns a \
        connection to Redis; on a machine Redis and the callers share, fewer loops mean fewer thread wakeups.
        """)
    var eventLoops: Int?

    @Flag(inversion: .prefixedNo, help: "Serve the web console at /ui (needs the same bearer token as the API, or its /ui/login cookie).")
    var console = true

    @Option(parsing: .upToNextOption, help: """
        Workers' /metrics URLs (http://HOST:PORT/metrics, from `eddy run --http`) the console's Workers view \
        scrapes; repeat or list several.
        """)
    var workerMetrics: [String] = []

    @Option(help: "Seconds between scrapes of --worker-metrics (the console keeps 15 minutes).")
    var scrapeInterval: Double = 5

    @Option(help: "A file whose first token line (blank lines and # comments skipped) is sent as a bearer token with each scrape of --worker-metrics (workers run with --http and --auth-token-file).")
    var workerMetricsTokenFile: String?

    @Option(help: "A drift baseline saved by `eddy drift --save-baseline`, drawn beside the console's distributions with PSI; repeat for several topologies.")
    var driftBaseline: [String] = []

    @Option(help: "Entities the console samples (SCAN of the prefix) for its Distributions view.")
    var consoleSample: Int = 1000

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func validate() throws {
        if let eventLoops, eventLoops < 1 { throw ValidationError("--event-loops must be at least 1") }
        if topology.isEmpty { throw ValidationError("give at least one --topology FILE") }
        if EddyHTTPServer.parseListen(listen) == nil { throw ValidationError("--listen '\(listen)' is not HOST:PORT") }
        if lanes < 1 { throw ValidationError("--lanes must be at least 1") }
        if scrapeInterval < 0.1 { throw ValidationError("--scrape-interval must be at least 0.1 seconds") }
        if consoleSample < 1 { throw ValidationError("--console-sample must be at least 1") }
        for url in workerMetrics.flatMap({ $0.split(separator: ",").map(String.init) }) where MetricsFetch.parse(url) == nil {
            throw ValidationError("--worker-metrics '\(url)' is not http://HOST:PORT/PATH")
        }
    }

    /// Request handlers then run on the event loop that read the request
    /// (no hop to Swift's cooperative pool and back per request; 2 threads
    /// rather than 4 on a 2-core box), and Redis lanes resume them there.
    /// Nothing in `serve` blocks a concurrency thread.
    func prepareProcess() {
        blockTerminationSignals()
        if let eventLoops { NIOSingletons.groupLoopCountSuggestion = eventLoops }
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        logToStandardError(level: level)
        let logger = Logger(label: "eddy.serve")
        var pools: [String: RedisLanes] = [:]
        var served: [EddyHTTPServer.Served] = []
        var targets: [String: RedisTarget] = [:]
        // An `entities:` topology is served as one topology per entity,
        // named <topology>_<entity> like its Function: /v1/features/shop_items/{key}.
        let loaded = try topology.flatMap { try loadTopology($0).entityTopologies }
        for t in loaded {
            if served.contains(where: { $0.topology.name == t.name }) {
                throw CLIError("topology name '\(t.name)' is given twice")
            }
            let text = redisURLText(redis, sink: t.sink.redisURL)
            let url = try resolveRedisURL(text, sink: text, credentials: redisCredentials)
            let pool = pools[text] ?? RedisLanes(target: url, lanes: lanes, readOnEventLoops: eventLoopReads)
            pools[text] = pool
            served.append(.init(topology: t, redis: pool))
            targets[t.name] = url
        }
        let (host, port) = EddyHTTPServer.parseListen(listen)!
        let hub = MetricsHub()
        MetricsSystem.bootstrap(hub.factory)
        let secured = try security.resolve(logger: logger)
        let webConsole = console ? try makeConsole(served.map(\.topology), targets: targets, tokens: secured.tokens) : nil
        webConsole?.start()
        let server = EddyHTTPServer(
            options: {
                var o = EddyHTTPServer.Options(host: host, port: port, role: "serve")
                o.secure(secured)
                o.requestHeadTimeout = .milliseconds(Int64(max(requestHeadTimeout, 0.01) * 1000))
                if let webConsole { o.extraRoutes = { webConsole.register(on: $0) } }
                return o
            }(),
            topologies: served, hub: hub,
            readiness: pools.keys.sorted().map { HealthCheck.redis(pools[$0]!, name: "redis \(pools[$0]!.target)") },
            logger: logger)
        for (_, pool) in pools.sorted(by: { $0.key < $1.key }) {
            let (ok, detail) = await pool.ping()
            if !ok { logger.warning("Redis at \(pool.target) does not answer yet (\(detail)); reads return 503 until it does") }
        }
        logger.info("serving \(served.map(\.topology.name).joined(separator: ", ")) on \(secured.tls == nil ? "http" : "https")://\(host):\(port)")
        let app = try server.makeApplication()
        do {
            try await ServiceGroup(configuration: .init(
                services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
        } catch {
            throw CLIError("eddy serve: \(error)")
        }
    }
}

extension ServeCommand {
    /// The /ui console: its own Redis connections per topology, the baselines, the scraper.
    func makeConsole(_ topologies: [Topology], targets: [String: RedisTarget], tokens: BearerTokens?) throws -> Console {
        var options = Console.Options()
        options.sample = consoleSample
        options.workerMetrics = workerMetrics.flatMap { $0.split(separator: ",").map(String.init) }
        options.scrapeInterval = scrapeInterval
        if let workerMetricsTokenFile {
            guard let text = try? String(contentsOfFile: workerMetricsTokenFile, encoding: .utf8) else {
                throw CLIError("--worker-metrics-token-file: cannot read \(workerMetricsTokenFile)")
            }
            guard let token = text.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) })
                .first(where: { !$0.isEmpty && !$0.hasPrefix("#") })
            else { throw CLIError("--worker-metrics-token-file: \(workerMetricsTokenFile) holds no token (one per line; # comments)") }
            options.workerMetricsToken = token
        }
        for file in driftBaseline {
            let b: Drift.Baseline
            do { b = try Drift.Baseline.decode(Data(contentsOf: URL(fileURLWithPath: file))) } catch {
                throw CLIError("--drift-baseline \(file): \(error)")
            }
            guard topologies.contains(where: { $0.name == b.topology }) else {
                throw CLIError("--drift-baseline \(file) is a baseline of topology '\(b.topology)', which is not served")
            }
            options.baselines[b.topology] = b
        }
        return Console(topologies: topologies, connect: { t in
            try RedisClient(targets[t.name]!, options: .init(connectTimeout: .seconds(2), commandTimeout: .seconds(10),
                                                             clientName: "eddy-console"))
        }, tokens: tokens, options: options)
    }
}
