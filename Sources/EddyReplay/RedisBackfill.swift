import EddyCore
import EddyRedis
import EddyStore

/// Writes a replay's final state into Redis through the stream worker's
/// write path (`EntityWriter`, see `EntityLayout`): per key `_state`, `_fp`,
/// `_K`, the point columns and the fence `_o:<topic>:<partition>` = the
/// offset of the key's last applied event, with the same fenced batch
/// script and expiry rule (`TTLPolicy`: a key's first write by a writer
/// re-arms its expiry).
///
/// The fences make a backfill safe to re-run and to run beside a worker:
/// a write lands only when its offset is newer than the one stored for that
/// partition, and the stored state is always the pure function of the
/// key's events up to the stored offset.
///
/// On a Redis Cluster (`redis+cluster://`) keys are grouped by slot and
/// each call goes to its slot's master, every master's pipeline in flight
/// at once. A failed batch is sent again (up to `retry`'s attempts).
public final class RedisBackfill {
    public struct Counts: Sendable, Equatable {
        /// Keys written.
        public var written = 0
        /// Keys Redis already held at a newer (or the same) offset.
        public var fenced = 0
        /// Keys whose write failed in Redis (with the other keys of their
        /// call: `EntityWriter.Counts.failed`).
        public var failed = 0
        /// The first failure message.
        public var firstError: String?
    }

    /// The server or cluster written to.
    public let url: RedisTarget
    public let topology: Topology
    public let prefix: [UInt8]
    let writer: EntityWriter
    /// Attempts per batch before the backfill fails, with the store's waits
    /// between them (100, 200, 400, 800 ms).
    public static let retry: RetryPolicy = {
        var p = EntityWriter.untilWritten
        p.maxAttempts = 5
        return p
    }()
    /// Keys per pipelined batch.
    public var batchSize = 1000

    /// - Parameter prefix: the Redis key prefix (default: the topology's sink prefix).
    public convenience init(url: RedisURL, topology: Topology, prefix: String? = nil) {
        self.init(target: .single(url), topology: topology, prefix: prefix)
    }

    /// - Parameter prefix: the Redis key prefix (default: the topology's sink prefix).
    public init(target: RedisTarget, topology: Topology, prefix: String? = nil) {
        self.url = target
        self.topology = topology
        self.prefix = Array((prefix ?? topology.sink.keyPrefix).utf8)
        self.writer = EntityWriter(
            target: target, ttl: TTLPolicy(ttlMs: topology.sink.ttlMs),
            options: .init(connectTimeout: .seconds(5), commandTimeout: .seconds(60), clientName: "eddy-backfill"),
            retry: Self.retry)
    }

    func connect() throws(ReplayError) -> RedisClient {
        do { return try writer.connection() } catch {
            throw .redis("cannot reach Redis at \(url): \(error)")
        }
    }

    /// Checks Redis and installs the topology's Function library (the read
    /// path), as the worker does at start.
    public func prepare() throws(ReplayError) {
        let c = try connect()
        do { try FunctionLibrary.install(on: c, topology: topology) } catch {
            throw .redis("installing the Function library failed: \(error)")
        }
    }

    /// Writes every key of `session` (made with `trackOffsets`) that has an
    /// applied event. `partitionNames[source]` is the fence name
    /// (`topic:partition`) of each source number the events carried.
    /// Calls `progress(keysDone)` after each batch.
    public func write(_ session: ReplaySession, partitionNames: [String],
                      progress: ((Int) -> Void)? = nil) throws(ReplayError) -> Counts {
        let engine = session.engine
        let store = engine.store
        var counts = Counts()
        let batch = EntityBatch()
        var done = 0
        var fields = EntityFields(engine: engine)
        let fences = partitionNames.map { Array($0.utf8) }
        // Each key is written once: its first write by this writer.
        let rearm = writer.ttl.shouldRearm(lastMs: nil, nowMs: 0)

        func flush() throws(ReplayError) { try flushBatch(batch, into: &counts, done: &done, progress: progress) }

        for s in 0..<Int32(store.slotLimit) where store.isLive(s) {
            guard engine.keyTime(s) != nil, let (source, offset) = session.lastApplied(s) else { continue }
            batch.append(slot: s, prefix: prefix, fields: &fields, partition: fences[Int(source)], offset: offset,
                         rearmTTL: rearm)
            if batch.count >= batchSize { try flush() }
        }
        try flush()
        return counts
    }

    /// Writes `batch` (if it holds anything), adds what became of it to
    /// `counts`, empties it and reports progress: the one flush of `write`
    /// and `writeParts`.
    func flushBatch(_ batch: EntityBatch, into counts: inout Counts, done: inout Int,
                    progress: ((Int) -> Void)?) throws(ReplayError) {
        guard !batch.isEmpty else { return }
        do {
            let written = try writer.write(batch)
            counts.written += written.written
            counts.fenced += written.fenced
            counts.failed += written.failed
            if counts.firstError == nil { counts.firstError = written.firstError }
        } catch {
            throw .redis("writing to Redis at \(url) failed: \(error)")
        }
        done += batch.count
        batch.reset()
        progress?(done)
    }

    /// Writes the parts of a `parts: per_partition` entity
    /// (`PartsReplaySession.finalParts`): per key and source partition the
    /// field `_p:<topic>:<partition>` (the part) and `_fp`, fenced by
    /// `_o:<topic>:<partition>` = the offset of the part's last accepted
    /// event. `partitionNames[source]` is each source's `topic:partition`.
    public func writeParts(_ parts: [PartsReplaySession.FinalPart], partitionNames: [String],
                           progress: ((Int) -> Void)? = nil) throws(ReplayError) -> Counts {
        var counts = Counts()
        let batch = EntityBatch()
        var done = 0
        let rearm = writer.ttl.shouldRearm(lastMs: nil, nowMs: 0)
        let fp = Array(EntityLayout.fingerprint(topology).utf8)
        func flush() throws(ReplayError) { try flushBatch(batch, into: &counts, done: &done, progress: progress) }
        for part in parts {
            // Kafka: the part of partition <topic>:<p> at its offset. Files:
            // `file:<p>` at the line number of its last event, so running the
            // same files again is fenced part by part.
            let fromFile = part.source < 0
            let name = Array((fromFile ? "file:\(part.partition)" : partitionNames[Int(part.source)]).utf8)
            batch.append(redisKey: prefix + part.key,
                         fields: [(Array(EntityLayout.partFieldPrefix.utf8) + name, part.blob),
                                  (Array(EntityLayout.fingerprintField.utf8), fp)],
                         partition: name, offset: fromFile ? Int64(part.line) : part.offset, rearmTTL: rearm)
            if batch.count >= batchSize { try flush() }
        }
        try flush()
        return counts
    }

    public func close() {
        writer.close()
    }
}
