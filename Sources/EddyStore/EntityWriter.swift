import EddyRedis

/// The one write path of entities into Redis, used by the stream worker's
/// writer and by backfills: fenced batch writes (`FencedBatchWrite`),
/// pipelined, grouped by hash slot on a Redis Cluster, retried per a
/// `RetryPolicy`, with one expiry rule (`TTLPolicy`); or, for a worker in a
/// consumer group on a single server, transactions under partition epochs
/// (`PartitionEpochs`, EntityWriter+PartitionEpochs.swift).
///
/// The fence makes every write idempotent: a retry, a replay after a crash,
/// a backfill run again or beside a worker only lands where its offset is
/// newer than the one stored for that partition (or, under epochs, while
/// the writer holds the partition's newest epoch).
///
/// Used by one thread at a time; reuses its buffers from write to write.
public final class EntityWriter {
    /// What became of a batch's entities.
    public struct Counts: Sendable, Equatable {
        /// Entities written.
        public var written = 0
        /// Entities Redis already held at a newer (or the same) offset.
        public var fenced = 0
        /// Entities of calls that failed in Redis with an error that a
        /// retry cannot mend (a call carries up to
        /// `FencedBatchWrite.entitiesPerCall` entities of one slot).
        public var failed = 0
        /// Calls (or, unfenced, pipelines) that failed in Redis.
        public var failedCalls = 0
        /// The first failure message.
        public var firstError: String?

        public init() {}
    }

    /// The server or cluster written to.
    public let target: RedisTarget
    /// The expiry rule: `PEXPIRE ttl.expiryMs` on the writes whose entity
    /// asks for a re-arm (`EntityBatch.Entity.rearmTTL`).
    public let ttl: TTLPolicy
    /// false: the at-least-once baseline (`WorkerConfig.fencedWrites`):
    /// the same fields and fence field written with a plain `HSET`, no
    /// fence check (a single server only; a cluster is always fenced).
    public var fenced = true
    /// How failed writes are retried; see `untilWritten`.
    public var retry: RetryPolicy
    /// The worker's per-partition fence on a single Redis server
    /// (`PartitionEpochs`): set (with `ownership`), and with `fenced`,
    /// writes are one transaction of plain `HSET`s checked against the
    /// partitions' epochs instead of the per-entity script. nil (backfills,
    /// fixed partition assignments): the script. A Cluster always uses the
    /// script.
    public var partitionEpochs: PartitionEpochs?
    /// Confirms partition ownership with the consumer group each time an
    /// epoch is taken (`PartitionOwnership`); required with
    /// `partitionEpochs`.
    public var ownership: (any PartitionOwnership)?
    /// Reused by `groupByPartition`.
    var flushPartitions: [[UInt8]] = []
    var entityPartition: [Int32] = []
    var partitionByHash: [Int: Int] = [:]

    let options: RedisConnection.Options
    let script = RedisScript(FencedBatchWrite.source)
    var client: RedisClient?
    /// How a batch's entities group into calls on a Redis Cluster (reused).
    var clusterPlan = ClusterWritePlan()

    /// The store's retries (writes and loads): until Redis answers, waiting
    /// 100, 200, 400, 800 ms, then 1.6 s between attempts. A write must
    /// never be skipped: the offset commit that follows would lose its
    /// events. Bounded uses take a copy with fewer `maxAttempts`.
    public static let untilWritten = RetryPolicy(maxAttempts: .max, initialDelay: .milliseconds(100),
                                                 maxDelay: .milliseconds(1600), multiplier: 2, jitter: 0)

    public init(target: RedisTarget, ttl: TTLPolicy, options: RedisConnection.Options = .init(),
                retry: RetryPolicy = EntityWriter.untilWritten) {
        self.target = target
        self.ttl = ttl
        self.options = options
        self.retry = retry
    }

    /// The connection, connected (and the script loaded) on first use and
    /// after a failure.
    public func connection() throws(RedisError) -> RedisClient {
        if let client { return client }
        let c = try RedisClient(target, options: options)
        do { try c.scriptLoad(script) } catch {
            c.close()
            throw error
        }
        client = c
        return c
    }

    public func close() {
        client?.close()
        client = nil
    }

    /// Writes every entity of `batch`, retrying the whole batch per `retry`
    /// (the fences make a resend harmless). `onRetry` is called before each
    /// retry's wait with the error, the attempt that failed (1-based) and
    /// the wait. Throws the last error once `retry` gives up.
    public func write(_ batch: EntityBatch,
                      onRetry: (_ error: any Error, _ attempt: Int, _ wait: Duration) -> Void = { _, _, _ in })
        throws -> Counts
    {
        guard !batch.isEmpty else { return Counts() }
        var failedAttempt = 0
        return try retry.run(shouldRetry: { (error: any Error) in
            onRetry(error, failedAttempt, retry.backoff(beforeRetry: failedAttempt))
            return true
        }) { (attempt: Int) throws -> Counts in
            do {
                return try writeOnce(batch)
            } catch {
                failedAttempt = attempt
                close()
                throw error
            }
        }
    }

    func writeOnce(_ batch: EntityBatch) throws -> Counts {
        let per = FencedBatchWrite.entitiesPerCall
        switch try connection() {
        case .single(let redis) where !fenced:
            return try writeUnfenced(batch, to: redis)
        case .single(let redis) where partitionEpochs != nil && ownership != nil:
            return try writeEpochFenced(batch, to: redis)
        case .single(let redis):
            let calls = (batch.count + per - 1) / per
            let replies = try batch.bytes.withUnsafeBytes { bytes in
                try redis.evalshaPipeline(script, count: calls) { c, call in
                    call.arguments.add(ttl.expiryMs)
                    for i in (c * per)..<min((c + 1) * per, batch.count) {
                        Self.addEntity(i, of: batch, bytes: bytes, to: &call)
                    }
                }
            }
            return try Self.count(replies) { c in min((c + 1) * per, batch.count) - c * per }
        case .cluster(let cluster):
            let replies = try writeClustered(batch, to: cluster)
            let plan = clusterPlan
            return try Self.count(replies) { c in plan.entities(ofCall: c).count }
        }
    }

    /// Counts the replies of the calls; `entitiesIn(c)` is how many
    /// entities call `c` carried. A "not now" error throws (retry).
    static func count(_ replies: [RedisReply], entitiesIn: (Int) -> Int) throws(RedisError) -> Counts {
        if let retry = replies.lazy.compactMap(\.errorMessage).first(where: Self.isRetryable) {
            throw RedisError.server(message: retry)
        }
        var counts = Counts()
        for (c, reply) in replies.enumerated() {
            let inCall = entitiesIn(c)
            if let message = reply.errorMessage {
                counts.failed += inCall
                counts.failedCalls += 1
                if counts.firstError == nil { counts.firstError = message }
            } else {
                let n = Int(reply.integer ?? 0)
                counts.written += n
                counts.fenced += inCall - n
            }
        }
        return counts
    }

    /// Error replies that say "not now" (Redis loading, out of memory, a
    /// failover, ...): the write (or load) did not happen and must be
    /// retried, never skipped, or the commit that follows would lose its
    /// events (a load would restart the key empty).
    public static func isRetryable(_ message: String) -> Bool {
        if RedisError.server(message: message).isTransient { return true }
        switch RedisError.server(message: message).serverErrorCode {
        case "OOM", "READONLY", "NOREPLICAS", "NOSCRIPT", "MISCONF": return true
        default: return false
        }
    }

    /// Appends an entity's write as a plain `HSET` of its offset field and
    /// fields, and its `PEXPIRE` when due (the unfenced baseline, and inside
    /// a partition-epoch transaction). Returns the commands appended.
    func appendPlainWrite(_ e: EntityBatch.Entity, of batch: EntityBatch, bytes: UnsafeRawBufferPointer,
                          to redis: RedisConnection) throws -> Int {
        // Every argument encoded as it is added (the count is known), through
        // concrete `add`s: no builder copy in between, and no generic adds,
        // which are not specialized across modules (~430 instructions for
        // the joined offset field, ~1,700 for a variadic PEXPIRE; callgrind).
        let key = UnsafeRawBufferPointer(rebasing: bytes[e.keyStart..<(e.keyStart + e.keyLength)])
        try redis.append(argumentCount: 4 + e.fieldCount, encoding: { b in
            Self.hset.withUnsafeBytes { b.add($0) }
            b.add(key)
            EntityLayout.Bytes.offsetFieldPrefix.withUnsafeBytes {
                b.addJoined($0, UnsafeRawBufferPointer(rebasing: bytes[e.partitionStart..<(e.partitionStart + e.partitionLength)]))
            }
            b.add(e.offset)
            for f in e.fieldsStart..<(e.fieldsStart + e.fieldCount) {
                let (start, length) = batch.fieldRanges[f]
                b.add(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
            }
        })
        guard e.rearmTTL else { return 1 }
        let expiry = ttl.expiryMs
        try redis.append(argumentCount: 3, encoding: { b in
            Self.pexpire.withUnsafeBytes { b.add($0) }
            b.add(key)
            b.add(expiry)
        })
        return 2
    }

    private static let hset = Array("HSET".utf8)
    private static let pexpire = Array("PEXPIRE".utf8)

    /// The at-least-once baseline: the same fields and offset, written
    /// unconditionally. Redis does not say which entity an error was for,
    /// so all count as written.
    func writeUnfenced(_ batch: EntityBatch, to redis: RedisConnection) throws -> Counts {
        var replies = 0
        try batch.bytes.withUnsafeBytes { bytes in
            for e in batch.entities { replies += try appendPlainWrite(e, of: batch, bytes: bytes, to: redis) }
        }
        let summary = try redis.drain(count: replies)
        var counts = Counts()
        counts.written = batch.count
        if let message = summary.firstError {
            if Self.isRetryable(message) { throw RedisError.server(message: message) }
            counts.failedCalls = 1
            counts.firstError = message
        }
        return counts
    }

    // MARK: Calls

    private static let rearm: StaticString = "1", keep: StaticString = "0"

    /// Adds entity `i`'s key and its `FencedBatchWrite` arguments (partition,
    /// offset, re-arm flag, field count, field/value pairs) to `call`.
    @inline(__always)
    static func addEntity(_ i: Int, of batch: EntityBatch, bytes: UnsafeRawBufferPointer, to call: inout RedisScriptCall) {
        let e = batch.entities[i]
        call.keys.add(UnsafeRawBufferPointer(rebasing: bytes[e.keyStart..<(e.keyStart + e.keyLength)]))
        call.arguments.add(UnsafeRawBufferPointer(rebasing: bytes[e.partitionStart..<(e.partitionStart + e.partitionLength)]))
        call.arguments.add(e.offset)
        call.arguments.add(e.rearmTTL ? rearm : keep)
        call.arguments.add(e.fieldCount / 2)
        for f in e.fieldsStart..<(e.fieldsStart + e.fieldCount) {
            let (start, length) = batch.fieldRanges[f]
            call.arguments.add(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
        }
    }

    /// On a Redis Cluster a `FencedBatchWrite` call may only carry keys of
    /// one hash slot, so a batch's entities are grouped by slot (up to
    /// `entitiesPerCall` per call; an entity alone in its slot goes alone),
    /// and the client sends each master its calls in one pipeline, every
    /// master's pipeline written before any reply is read. One reply per
    /// call of `clusterPlan`, in plan order.
    func writeClustered(_ batch: EntityBatch, to cluster: RedisClusterClient) throws -> [RedisReply] {
        clusterPlan.make(for: batch, entitiesPerCall: FencedBatchWrite.entitiesPerCall)
        let plan = clusterPlan
        return try batch.bytes.withUnsafeBytes { bytes in
            try cluster.evalshaPipeline(script, count: plan.callCount) { c, call in
                call.arguments.add(ttl.expiryMs)
                for position in plan.entities(ofCall: c) {
                    Self.addEntity(plan.entity(at: position), of: batch, bytes: bytes, to: &call)
                }
            }
        }
    }
}

/// A batch's entities sorted by hash slot and cut into calls of one slot
/// each. Its arrays keep their capacity from batch to batch.
struct ClusterWritePlan {
    /// `slot << 32 | entity index`, sorted: by slot, then batch order.
    private(set) var slotted: [UInt64] = []
    /// Start of each call in `slotted`, then `slotted.count`.
    private(set) var callStarts: [Int] = []

    mutating func make(for batch: EntityBatch, entitiesPerCall per: Int) {
        slotted.removeAll(keepingCapacity: true)
        batch.bytes.withUnsafeBytes { bytes in
            for (i, e) in batch.entities.enumerated() {
                let key = UnsafeRawBufferPointer(rebasing: bytes[e.keyStart..<(e.keyStart + e.keyLength)])
                slotted.append(UInt64(HashSlot.of(key)) << 32 | UInt64(i))
            }
        }
        slotted.sort()
        callStarts.removeAll(keepingCapacity: true)
        var start = 0
        while start < slotted.count {
            callStarts.append(start)
            let slot = slotted[start] >> 32
            var end = start + 1
            while end < slotted.count, end - start < per, slotted[end] >> 32 == slot { end += 1 }
            start = end
        }
        callStarts.append(slotted.count)
    }

    var callCount: Int { max(callStarts.count - 1, 0) }

    /// Positions in `slotted` of call `c`'s entities.
    func entities(ofCall c: Int) -> Range<Int> { callStarts[c]..<callStarts[c + 1] }

    /// The entity index at `position`.
    func entity(at position: Int) -> Int { Int(truncatingIfNeeded: slotted[position] & 0xFFFF_FFFF) }
}
