import EddyCore
import EddyRedis
import EddyStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a replay's final state into Redis exactly as the stream worker
/// writes entities (see `EntityLayout`): one fenced script call per key
/// with `_state`, `_fp`, `_K`, the point columns and the fence
/// `_o:<topic>:<partition>` = the offset of the key's last applied event.
///
/// The fences make a backfill safe to re-run and to run beside a worker:
/// a write lands only when its offset is newer than the one stored for that
/// partition, and the stored state is always the pure function of the
/// key's events up to the stored offset.
///
/// On a Redis Cluster (`redis+cluster://`) each key's call goes to its
/// slot's master, every master's pipeline in flight at once.
public final class RedisBackfill {
    public struct Counts: Sendable, Equatable {
        /// Keys written.
        public var written = 0
        /// Keys Redis already held at a newer (or the same) offset.
        public var fenced = 0
        /// Keys whose write failed in Redis.
        public var failed = 0
        /// The first failure message.
        public var firstError: String?
    }

    /// The server or cluster written to.
    public let url: RedisTarget
    public let topology: Topology
    public let prefix: [UInt8]
    let script = RedisScript(FencedWrite.source)
    let ttl: String
    var connection: RedisClient?
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
        self.ttl = String(topology.sink.ttlMs)
    }

    func connect() throws(ReplayError) -> RedisClient {
        if let connection { return connection }
        do {
            let c = try RedisClient(url, options: .init(connectTimeout: .seconds(5), commandTimeout: .seconds(60),
                                                                 clientName: "eddy-backfill"))
            try c.scriptLoad(script)
            connection = c
            return c
        } catch {
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
        var batch: [Int32] = []
        batch.reserveCapacity(batchSize)
        var done = 0
        var fields = EntityFields(engine: engine)

        func flush() throws(ReplayError) {
            guard !batch.isEmpty else { return }
            var attempt = 0
            while true {
                do {
                    let c = try connect()
                    let replies = try c.evalshaPipeline(script, count: batch.count) { i, call in
                        let slot = batch[i]
                        let (source, offset) = session.lastApplied(slot)!
                        call.keys.addJoined(prefix, store.keyBytes(slot))
                        call.arguments.add(partitionNames[Int(source)])
                        call.arguments.add(offset)
                        call.arguments.add(ttl)
                        // The same fields the worker stores (EntityFields).
                        fields.forEach(slot: slot) { name, value in
                            call.arguments.add(name)
                            call.arguments.add(value)
                        }
                    }
                    for reply in replies {
                        if let message = reply.errorMessage {
                            counts.failed += 1
                            if counts.firstError == nil { counts.firstError = message }
                        } else if reply.integer == 1 {
                            counts.written += 1
                        } else {
                            counts.fenced += 1
                        }
                    }
                    break
                } catch {
                    // Fenced writes make a resend harmless.
                    connection?.close()
                    connection = nil
                    attempt += 1
                    if attempt >= 5 { throw .redis("writing to Redis at \(url) failed: \(error)") }
                    usleep(useconds_t(100_000 * attempt))
                }
            }
            done += batch.count
            batch.removeAll(keepingCapacity: true)
            progress?(done)
        }

        for s in 0..<Int32(store.slotLimit) where store.isLive(s) {
            guard engine.keyTime(s) != nil, session.lastApplied(s) != nil else { continue }
            batch.append(s)
            if batch.count >= batchSize { try flush() }
        }
        try flush()
        return counts
    }

    public func close() {
        connection?.close()
        connection = nil
    }
}
