// swift-tools-version: 6.1
import PackageDescription
import Foundation

/// `.ci/fuzz` builds `eddy-fuzz` with EDDY_FUZZING=1: libFuzzer then supplies `main`, so the
/// harness leaves out its own (main.swift, the replayer of saved inputs).
let fuzzing = ProcessInfo.processInfo.environment["EDDY_FUZZING"] == "1"

/// Runtime exclusivity checks off, in release builds only (see the targets
/// that use it for what each measured).
let uncheckedExclusivity: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Eddy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "eddy", targets: ["eddy"]),
        .library(name: "EddyCore", targets: ["EddyCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
    ],
    targets: [
        // libFuzzer harnesses (.ci/fuzz builds them with -sanitize=fuzzer,address); built
        // normally, a replayer of saved inputs.
        .executableTarget(name: "eddy-fuzz", dependencies: [
            "EddyCore", "EddyFormats", "EddyRedis", "EddyServer", "EddyStore", "EddyTopology",
            .product(name: "NIOCore", package: "swift-nio"),
        ], exclude: fuzzing ? ["main.swift"] : ["FuzzMain.swift"],
        swiftSettings: fuzzing ? [.unsafeFlags(["-parse-as-library"])] : []),
        // Debian's C libraries, as system library modules.
        .systemLibrary(
            name: "CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(
            name: "CHiredis", pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]),
        // XXH64 for distinct_count (SEMANTICS.md): Debian's libxxhash, not a
        // hash written here.
        .systemLibrary(
            name: "CXXHash", pkgConfig: "libxxhash",
            providers: [.apt(["libxxhash-dev"])]),

        // Pure, deterministic feature core: no I/O, no clocks, no threads.
        // One C inline: a prefetch hint for the memory-bound key lookups;
        // and XXH64 from libxxhash (CXXHash) for distinct_count.
        //
        // `uncheckedExclusivity` (release builds only) is set on the four
        // targets whose hot paths were measured with it (callgrind, the
        // numbers beside each). Exclusivity holds there by construction:
        // each engine, batch and stage object is used by one thread at a
        // time. Everywhere else the runtime checks stay on.
        // Also HMAC-SHA256 of entity keys (`key: {hash: sha256}`), through OpenSSL's libcrypto.
        .target(name: "CEddySupport", linkerSettings: [.linkedLibrary("crypto")]),
        // Unchecked: the runtime checks cost 13% of the replay hot path.
        .target(name: "EddyCore", dependencies: ["CEddySupport", "CXXHash"], swiftSettings: uncheckedExclusivity),
        // YAML topology files -> validated, compiled plans.
        .target(name: "EddyTopology", dependencies: [
            "EddyCore", "EddyFormats", .product(name: "Yams", package: "Yams"),
        ]),
        // Replay over files (JSON Lines, gzip) or a bounded Kafka range:
        // point-in-time rows, labels, CSV, backfills into Redis, verify.
        // Unchecked: with the checks, `eddy bench replay --events 200000`
        // ran 2.2% more instructions in ReplaySession.consume and 3.9% more
        // in finish (2026-12-06).
        .target(name: "EddyReplay", dependencies: ["EddyCore", "EddyKafka", "EddyPipeline", "EddyRedis", "EddyStore", "CZlib"],
                swiftSettings: uncheckedExclusivity),
        // Avro and Protobuf: writer schemas (Avro JSON, FileDescriptorSets)
        // parsed into EddyCore's pure schema model, the Confluent schema
        // registry client, Avro object container files. The decoding
        // itself is EddyCore's (BinaryPlan).
        .target(name: "EddyFormats", dependencies: [
            "EddyCore", "CZlib",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // Lock-free SPSC rings, stage threads, parking.
        .target(name: "EddyPipeline", dependencies: [
            .product(name: "Atomics", package: "swift-atomics"),
        ]),
        // librdkafka consumer and producer.
        .target(name: "EddyKafka", dependencies: ["CRdKafka"]),
        // hiredis connection with hand pipelining. Checked: unchecking it
        // changed the worker's writer by under 0.2% of instructions per
        // entity written (2026-12-06).
        // TLS for hiredis 0.14 (which has none): OpenSSL from Debian's libssl-dev over the
        // socket hiredis opens; hiredis keeps its buffers and RESP reader.
        .target(name: "CEddyRedisTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto"), .linkedLibrary("hiredis")]),
        .target(name: "EddyRedis", dependencies: ["CHiredis", "CEddyRedisTLS"]),

        // The entity store in Redis: the layout, the one fenced write script
        // and EntityWriter, EntityLoader, StoredEntity (the stored blob), and
        // reads at time T (the generated Function library, FeatureClient).
        // Unchecked: the checks on EntityBatch's buffers made the shard's
        // flush 55% more instructions per entity (12.7k against 8.2k,
        // `eddy bench worker --events 100000` under callgrind, 2026-12-06).
        .target(name: "EddyStore", dependencies: ["EddyCore", "EddyRedis"],
                swiftSettings: uncheckedExclusivity),
        // Prometheus text, latency histograms, the worker's counters and
        // their collectors (what `/metrics` shows).
        .target(name: "EddyMetrics", dependencies: [
            "EddyCore",
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // Feature-value monitoring: distributions of what is written, drift (PSI).
        .target(name: "EddyMonitor", dependencies: [
            "EddyCore", "EddyRedis", "EddyStore",
            .product(name: "Atomics", package: "swift-atomics"),
        ]),
        // The stream worker: Kafka -> rings -> operator shard -> Redis.
        // Unchecked: the checks made the shard's apply loop
        // (ShardStage.process) 22% more instructions over the same 100k
        // events (843M against 689M, callgrind, 2026-12-06).
        .target(name: "EddyWorker", dependencies: [
            "EddyCore", "EddyFormats", "EddyPipeline", "EddyKafka", "EddyRedis", "EddyStore", "EddyMetrics",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ], swiftSettings: uncheckedExclusivity),

        // HTTP: feature reads (`eddy serve`), /metrics, /healthz, /readyz
        // (also for `eddy run --http`). Never imports the worker or Kafka.
        .target(name: "EddyServer", dependencies: [
            "EddyCore", "EddyRedis", "EddyStore", "EddyMetrics", "EddyMonitor",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Atomics", package: "swift-atomics"),
        ]),

        // The web console of `eddy serve` at /ui: server-rendered HTML and inline SVG (pure
        // renderers in Views/SVG), its own Redis reads, the workers' /metrics scraper.
        .target(name: "EddyConsole", dependencies: [
            "EddyCore", "EddyRedis", "EddyStore", "EddyMonitor", "EddyServer",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),

        // Dev and test tooling, kept out of the product modules: the mock
        // Kafka cluster host, redis-server (cluster) processes, the event
        // generator, ring and Redis benchmarks, a bare HTTP GET. Used by
        // `eddy dev`, `eddy bench` and the tests.
        .target(name: "EddyDevKit", dependencies: [
            "EddyCore", "EddyFormats", "CRdKafka", "EddyKafka", "EddyRedis", "EddyPipeline", "EddyReplay",
        ]),

        .executableTarget(name: "eddy", dependencies: [
            "EddyCore", "EddyTopology", "EddyReplay", "EddyPipeline", "EddyKafka", "EddyRedis",
            "EddyStore", "EddyMetrics", "EddyMonitor", "EddyWorker", "EddyServer", "EddyConsole", "EddyDevKit", "EddyFormats",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "EddyCoreTests", dependencies: [
            "EddyCore", "EddyTopology", "EddyReplay", "EddyDevKit",
            .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        .testTarget(name: "EddyFormatsTests", dependencies: [
            "EddyFormats", "EddyCore", "EddyTopology",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ], exclude: ["Fixtures"]),
        .testTarget(name: "EddyTopologyTests", dependencies: ["EddyTopology", "EddyCore"]),
        .testTarget(name: "EddyPipelineTests", dependencies: ["EddyPipeline", "EddyDevKit"]),
        .testTarget(name: "EddyKafkaTests", dependencies: ["EddyKafka", "EddyDevKit"]),
        .testTarget(name: "EddyRedisTests", dependencies: ["EddyRedis", "EddyDevKit"]),
        .testTarget(name: "EddyStoreTests", dependencies: ["EddyStore", "EddyCore", "EddyTopology", "EddyRedis", "EddyReplay", "EddyDevKit"]),
        .testTarget(name: "EddyServerTests", dependencies: [
            "EddyServer", "EddyMetrics", "EddyMonitor", "EddyStore", "EddyCore", "EddyTopology", "EddyRedis",
            "EddyWorker", "EddyKafka", "EddyDevKit",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "EddyConsoleTests", dependencies: ["EddyConsole", "EddyCore", "EddyMonitor", "EddyTopology"]),
        .testTarget(name: "EddyWorkerTests", dependencies: [
            "EddyWorker", "EddyKafka", "EddyCore", "EddyMetrics", "EddyPipeline", "EddyDevKit",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "EddyIntegrationTests", dependencies: [
            "EddyFormats", "EddyKafka", "EddyRedis", "EddyCore", "EddyReplay", "EddyTopology", "EddyDevKit",
        ]),
    ]
)
