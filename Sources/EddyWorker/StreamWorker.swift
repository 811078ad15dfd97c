import EddyCore
import EddyKafka
import EddyMetrics
import EddyPipeline
import EddyRedis
import EddyStore
import Foundation
import Logging

/// `eddy run`: a Kafka consumer-group member that keeps every entity's
/// features fresh in Redis, exactly once.
///
///     Kafka ─▶ [ingest] ─ring─▶ [shard: decode, lateness, operators] ─ring─▶ [writer: fenced writes] ─▶ Redis
///                 ▲ free batches ◀─┘                 ▲ free flushes ◀─┘         └─ then commit offsets
///
/// Three threads, bounded SPSC rings of batch indices between them; batches
/// come from fixed pools, so memory is bounded and a slow Redis pauses the
/// Kafka partitions.
public final class StreamWorker: @unchecked Sendable {
    // Set once in `start`, then only read; the stages own the rest.
    public let config: WorkerConfig
    public let counters = WorkerCounters()
    let logger: Logger
    var ingest: StageThread?
    var shard: StageThread?
    var writer: StageThread?
    var shardRing: SPSCRing<Int>?
    var flushRing: SPSCRing<Int>?

    public init(config: WorkerConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// Entity hashes hold the state blob (a few hundred bytes), so Redis's
    /// default `hash-max-listpack-value` (64) stores them as hashtables:
    /// twice the memory, and about a third more Redis CPU per update at a
    /// steady rate (Deploy/README.md, sizing). Advice when the setting is below what
    /// Deploy/ ships; nil when it is not, or when `CONFIG` is not allowed
    /// (managed Redis often renames it).
    static func listpackAdvice(_ reply: RedisReply) -> String? {
        guard let pair = reply.array, pair.count == 2, let value = pair[1].string.flatMap({ Int($0) }),
              value < recommendedListpackValue
        else { return nil }
        return "hash-max-listpack-value is \(value): entity hashes use the hashtable encoding, about twice the memory "
            + "and a third more Redis CPU per write than listpacks; set it to \(recommendedListpackValue) "
            + "(CONFIG SET hash-max-listpack-value \(recommendedListpackValue), and in redis.conf)"
    }

    /// What Deploy/ configures Redis with.
    static let recommendedListpackValue = 1024

    /// Checks Redis and Kafka, then starts the three stages. Throws with a
    /// clear message when either is unreachable.
    public func start() throws {
        let t = config.topology
        let redisURL: RedisTarget
        do { redisURL = try RedisTarget(parsing: config.redisURL) } catch {
            throw WorkerError("bad Redis URL '\(Secrets.redactingURLPassword(config.redisURL))': \(error)")
        }
        do {
            // A single server, or every master of a cluster.
            let probe = try RedisClient(redisURL)
            try probe.forEachMaster { (c: RedisConnection) throws(RedisError) in _ = try c.command("PING").checked() }
            try probe.scriptLoad(RedisScript(FencedBatchWrite.source))
            // The read path: one FCALL returns features at any time T (per entity).
            for entity in config.entityTopologies { try FunctionLibrary.install(on: probe, topology: entity) }
            try probe.forEachMaster { (c: RedisConnection) throws(RedisError) in
                // Advice only: a least-privilege user has no CONFIG, and needs none.
                let reply = try c.command("CONFIG", "GET", "hash-max-listpack-value")
                if reply.errorMessage == nil, let advice = Self.listpackAdvice(reply) {
                    logger.notice("Redis at \(c.url): \(advice)")
                }
            }
            probe.close()
        } catch where error.isPermissionDenied {
            throw WorkerError("""
                Redis at \(redisURL) refused user '\(redisURL.username ?? "default")': \(error). The worker needs \
                its ACL role: keys \(config.entityTopologies.map { "~\($0.sink.keyPrefix)*" }.joined(separator: " ")), the commands its writes, loads and Function use \
                (README, "Redis ACLs"); check the user and password (URL, --redis-password-file or EDDY_REDIS_PASSWORD).
                """)
        } catch {
            throw WorkerError("cannot reach Redis at \(redisURL): \(error). Start it or pass --redis URL (or EDDY_REDIS_URL).")
        }

        let batchPool = Pool((0..<config.batchesInFlight).map { _ in
            RecordBatch(recordCapacity: config.batchSize, byteCapacity: config.batchSize * 256, info: HandOver())
        })
        let flushPool = Pool((0..<config.flushesInFlight).map { _ in FlushBatch() })
        let shardRing = SPSCRing<Int>(capacity: config.batchesInFlight)
        let freeBatches = SPSCRing<Int>(capacity: config.batchesInFlight)
        for i in 0..<batchPool.count { _ = freeBatches.tryPush(i) }
        let flushRing = SPSCRing<Int>(capacity: config.flushesInFlight)
        let freeFlushes = SPSCRing<Int>(capacity: config.flushesInFlight)
        for i in 0..<flushPool.count { _ = freeFlushes.tryPush(i) }
        self.shardRing = shardRing
        self.flushRing = flushRing
        let barrierDone = BarrierSignal()
        // The last flush the writer has written (keys of older flushes may be evicted).
        let writtenFlush = ManagedAtomicBox()

        let coordinator = RebalanceRelay()
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(
                config: config.consumerProperties, topics: config.assignment == .group ? t.source.topics : [],
                handlers: RebalanceHandlers(
                    onAssign: { _, partitions in coordinator.ingest?.assigned(partitions) },
                    onRevoke: { _, partitions in coordinator.ingest?.revoked(partitions) }))
            // Fail fast on an unreachable cluster or a missing topic.
            for topic in t.source.topics { _ = try consumer.partitionCount(topic: topic, timeoutMs: 10_000) }
        } catch where error.code == .invalidArgument {
            // librdkafka refused its settings (e.g. an unknown SASL mechanism, a missing CA
            // file): its reason names the property. Values are never quoted here.
            throw WorkerError("the Kafka client settings were refused: \(error). Fix source.properties in the topology.")
        } catch {
            throw WorkerError("cannot reach Kafka at \(config.brokers) for topics \(t.source.topics): \(error). Start it or pass --brokers LIST (or EDDY_BROKERS).")
        }
        let deadLetters: DeadLetterSink
        do { deadLetters = try DeadLetterSink(config: config, counters: counters) } catch {
            throw WorkerError("cannot create the dead-letter producer: \(error)")
        }

        let ingestStage = IngestStage(
            consumer: consumer, topics: t.source.topics, batches: batchPool, free: freeBatches, output: shardRing,
            counters: counters, logger: logger, barrierDone: barrierDone,
            drainTimeout: .seconds(config.drainTimeoutSeconds),
            catchUpWaves: config.catchUpWaves, catchUpBacklog: config.catchUpBacklog, schemas: config.schemaResolver)
        coordinator.ingest = ingestStage
        if case .fixed(let partitions) = config.assignment {
            let assigned = try assignFixed(partitions, of: t.source.topics, consumer: consumer)
            ingestStage.assigned(assigned)
        }
        let shardStage = ShardStage(
            config: config, batches: batchPool, flushes: flushPool, input: shardRing, freeBatches: freeBatches,
            flushOut: flushRing, freeFlushes: freeFlushes, deadLetters: deadLetters, counters: counters,
            logger: logger, redisURL: redisURL, writtenFlush: writtenFlush)
        let writerStage = WriterStage(
            flushes: flushPool, input: flushRing, free: freeFlushes, counters: counters, logger: logger,
            redisURL: redisURL, ttlMs: t.sink.ttlMs, topics: t.source.topics,
            committer: OffsetCommitter(consumer: consumer, counters: counters, logger: logger),
            deadLetters: deadLetters, barrierDone: barrierDone, writtenFlush: writtenFlush)
        writerStage.fenced = config.fencedWrites
        if config.fencedWrites, config.fence == .partitionEpochs, config.assignment == .group, case .single = redisURL {
            let log = RevocationLog()
            ingestStage.revocations = log
            writerStage.usePartitionEpochs(entityPrefix: t.sink.keyPrefix, consumer: consumer, log: log)
        }
        writerStage.commitInterval = config.commitInterval
        writerStage.observer = config.writtenStateObserver

        logger.info("consuming \(t.source.topics.joined(separator: ", ")) from \(config.brokers) as group \(t.source.group); writing \(config.entityTopologies.map { "\($0.features.count) features\($0.entityName.map { " of entity \($0)" } ?? "") under prefix \"\($0.sink.keyPrefix)\"" }.joined(separator: ", ")) of topology \(t.name) to \(redisURL); dead letters to \(t.deadLetter.enabled ? t.deadLetter.topic : "nowhere (disabled)")")
        let w = UncheckedBox(writerStage), s = UncheckedBox(shardStage), i = UncheckedBox(ingestStage)
        writer = StageThread(name: "eddy-writer") { stop in w.value.run(stop) }
        shard = StageThread(name: "eddy-shard") { stop in s.value.run(stop) }
        ingest = StageThread(name: "eddy-ingest") { stop in i.value.run(stop) }
    }

    /// Assigns `partitions` of every topic (nil: all) at the group's
    /// committed offsets, or where `auto.offset.reset` says if none.
    func assignFixed(_ partitions: [Int32]?, of topics: [String], consumer: KafkaConsumer) throws -> [TopicPartition] {
        do {
            var wanted: [TopicPartition] = []
            for topic in topics {
                let count = try consumer.partitionCount(topic: topic, timeoutMs: 10_000)
                let ids = partitions ?? Array(0..<Int32(count))
                if let missing = ids.first(where: { $0 < 0 || $0 >= count }) {
                    throw WorkerError("topic \(topic) has \(count) partitions; there is no partition \(missing) to read (--assign)")
                }
                wanted += ids.map { TopicPartition(topic: topic, partition: $0) }
            }
            let reset = config.consumerProperties["auto.offset.reset"] ?? "earliest"
            let start = ["latest", "largest", "end"].contains(reset) ? KafkaOffset.end : KafkaOffset.beginning
            let committed = try consumer.committed(partitions: wanted)
            try consumer.assign(committed.map { $0.offset >= 0 ? $0 : TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: start) })
            logger.info("reading \(wanted.count) fixed partitions without group management (\(committed.filter { $0.offset >= 0 }.count) with committed offsets)")
            return wanted
        } catch let error as WorkerError {
            throw error
        } catch {
            throw WorkerError("cannot assign the fixed partitions of \(topics) at \(config.brokers): \(error)")
        }
    }

    /// Stops consuming, flushes and commits everything applied, leaves the
    /// group and joins the stages.
    public func stop() {
        ingest?.requestStop()
        ingest?.join()
        shard?.requestStop()
        shard?.join()
        writer?.requestStop()
        writer?.join()
        logger.info("stopped: \(summary)")
    }

    /// Whether any stage ended on its own (it should not).
    public var isRunning: Bool { !(ingest?.isFinished ?? true) }

    /// One line of counts, for logs.
    public var summary: String {
        let c = counters
        return "consumed \(c.consumed.load(ordering: .relaxed)), applied \(c.applied.load(ordering: .relaxed)), late \(c.late.load(ordering: .relaxed)), invalid \(c.invalid.load(ordering: .relaxed)), duplicates skipped \(c.duplicatesSkipped.load(ordering: .relaxed)), entities written \(c.entitiesWritten.load(ordering: .relaxed)), fenced \(c.writesFenced.load(ordering: .relaxed)), keys in memory \(c.keysInMemory.load(ordering: .relaxed)), redis errors \(c.redisErrors.load(ordering: .relaxed)), evicted \(c.keysEvicted.load(ordering: .relaxed)), offset gaps \(c.offsetGaps.load(ordering: .relaxed))"
    }

    /// Ring occupancy (batches waiting for the shard, flushes waiting for the writer).
    public var ringOccupancy: (shard: Int, writer: Int) { (shardRing?.count ?? 0, flushRing?.count ?? 0) }
}

/// Routes librdkafka's rebalance callbacks (which run inside the ingest
/// thread's poll) to the ingest stage created after the consumer.
final class RebalanceRelay: @unchecked Sendable {
    var ingest: IngestStage?
}

/// Moves a stage object onto its thread.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}

/// A startup failure with a message for the user.
public struct WorkerError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
