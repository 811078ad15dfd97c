import EddyCore
import EddyFormats
import EddyStore

/// Everything `eddy run` needs beyond the topology.
public struct WorkerConfig: Sendable {
    public var topology: Topology
    /// Kafka bootstrap servers (overrides the topology's).
    public var brokers: String
    /// Redis URL (overrides the topology's).
    public var redisURL: String
    /// Messages per ingest batch.
    public var batchSize = 2048
    /// Ingest batches in flight between ingest and the shard: with the batch
    /// size, the bound on buffered messages (backpressure beyond it).
    public var batchesInFlight = 8
    /// Flushes in flight between the shard and the Redis writer.
    public var flushesInFlight = 2
    /// The least time between two offset commits (barriers and shutdown
    /// commit at once). Commits follow the writes they cover; a restart
    /// re-reads at most this much more, and the fences skip it.
    public var commitInterval: Duration = .milliseconds(100)
    /// How the worker gets its partitions: as a consumer-group member
    /// (the default), or a fixed set read without group management.
    public var assignment: PartitionAssignment = .group
    /// Group commit: when the Redis writer is idle and no events are
    /// waiting, flush dirty keys at once instead of at the end of the
    /// topology's `flush_interval` (which still bounds the wait while the
    /// writer is busy). Fresher features at a modest rate; under load the
    /// writer is never idle and flushes coalesce as before.
    public var flushWhenIdle = true
    /// Flush early when this many keys are dirty (or a quarter of
    /// `maxKeysInMemory`, if that is fewer: dirty keys cannot be evicted).
    public var maxDirtyKeys = 500_000
    /// Catching up: once the assigned partitions are this many messages
    /// behind their high watermarks (a restart after downtime, a backfill
    /// through the worker), and until they are down to 1% of it, the shard
    /// flushes every `catchUpFlushInterval` instead of the topology's
    /// `flush_interval`. High enough that a worker merely a few seconds
    /// behind keeps flushing every few ms.
    /// Behind like that, features are seconds stale anyway; fewer, larger
    /// flushes write each busy key once instead of many times, so the
    /// worker catches up sooner (Kafka Streams' record cache, whose
    /// default commit interval is 30 s, trades the same way).
    public var catchUpBacklog = WorkerConfig.defaultCatchUpBacklog
    /// The flush interval while catching up (see `catchUpBacklog`).
    public var catchUpFlushInterval = WorkerConfig.defaultCatchUpFlushInterval
    /// A backlog of at least `catchUpBacklog` messages found when
    /// partitions are assigned is read in up to this many waves of
    /// partitions, each wave's keys written while the next is read
    /// (`CatchUpWaves`). Below 2: all partitions at once.
    public var catchUpWaves = WorkerConfig.defaultCatchUpWaves
    public static let defaultCatchUpWaves = 8
    public static let defaultCatchUpBacklog = 200_000
    public static let defaultCatchUpFlushInterval: Duration = .seconds(3)
    /// Keys kept in memory; beyond it the least recently flushed clean keys
    /// are evicted (they reload from Redis when they come back).
    public var maxKeysInMemory = 2_000_000
    /// Fenced (exactly-once) entity writes. `false` writes each entity with a
    /// plain `HSET` + `PEXPIRE` instead: at least once, a re-read after a
    /// crash applies events twice. Only the benchmark baseline that measures
    /// what the fences cost (`eddy bench worker --compare-unfenced`); single
    /// Redis only.
    public var fencedWrites = true
    /// How fenced writes are fenced on a single Redis server for a group
    /// member: `.partitionEpochs` (one epoch per partition, checked once per
    /// flush, entities written with plain `HSET`s: `PartitionEpochs`) or
    /// `.perEntity` (the per-entity offset script, as a Cluster, a backfill
    /// and fixed assignments always use).
    public var fence: Fence = .partitionEpochs
    public enum Fence: String, Sendable, CaseIterable { case partitionEpochs = "partition", perEntity = "entity" }
    /// How long a rebalance or shutdown may wait for in-flight writes.
    public var drainTimeoutSeconds = Self.defaultDrainTimeoutSeconds
    public static let defaultDrainTimeoutSeconds = 30.0
    /// Metrics hook: sees the state blobs of each flush once Redis has taken
    /// them (e.g. feature-value monitoring). nil: nothing extra is done.
    public var writtenStateObserver: (any WrittenStateObserver)?
    /// Avro or Protobuf messages (nil: JSON). With a registry, its table is
    /// filled by `schemaResolver` on the ingest thread before each batch is
    /// handed to the shard.
    public var binary: BinarySource?
    public var schemaResolver: SchemaResolver?

    public init(topology: Topology, brokers: String? = nil, redisURL: String? = nil) {
        self.topology = topology
        self.brokers = brokers ?? topology.source.brokers
        self.redisURL = redisURL ?? topology.sink.redisURL
    }

    /// The topology of each entity the worker keeps: the topology itself in
    /// the single-key form, else each of its `entities:`.
    public var entityTopologies: [Topology] {
        topology.entityTopologies
    }

    /// librdkafka properties for the group consumer: the topology's
    /// pass-through properties over Eddy's defaults.
    public var consumerProperties: [String: String] {
        var p: [String: String] = [
            "bootstrap.servers": brokers,
            "group.id": topology.source.group,
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "fetch.wait.max.ms": "5",
            "queued.max.messages.kbytes": "65536",
            // librdkafka 2.0 checks queued.min.messages against the one queue
            // all partitions share; once it fills, every partition backs off
            // (~500 ms): the bound that matters is the kbytes one above.
            "queued.min.messages": "10000000",
            "fetch.error.backoff.ms": "20",
        ]
        for (k, v) in topology.source.properties { p[k] = v }
        return p
    }

    /// Producer properties for the dead-letter topic.
    public var producerProperties: [String: String] {
        // linger 1 ms: offsets wait for dead letters to be delivered.
        var p: [String: String] = ["bootstrap.servers": brokers, "compression.type": "lz4", "linger.ms": "1"]
        for (k, v) in topology.source.properties where k.hasPrefix("security.") || k.hasPrefix("sasl.") || k.hasPrefix("ssl.") {
            p[k] = v
        }
        return p
    }
}

/// How a worker gets its partitions.
public enum PartitionAssignment: Sendable, Equatable {
    /// Consumer-group membership (cooperative-sticky): workers share the
    /// partitions and take over each other's when one leaves or dies, after
    /// the group notices (`session.timeout.ms`) and rebalances.
    case group
    /// These partitions of every source topic (nil: all of them), read
    /// without joining the group: no rebalance, so a restarted worker reads
    /// again at once, from the group's committed offsets (the
    /// `auto.offset.reset` end where none). Offsets are still committed to
    /// the group. The operator runs one worker per partition set (e.g. a
    /// Kubernetes StatefulSet); fenced writes keep Redis exact even if two
    /// workers read the same partition for a while.
    case fixed(partitions: [Int32]?)
}
