import EddyRedis

/// The one read of stored entities' hashes: `HMGET <prefix><key> _state _fp
/// [_o:<partition>] [fields...]`, pipelined (routed per key's slot on a
/// Redis Cluster), read back as `StoredEntity`. The worker's shard loads
/// the keys it does not hold in memory with it; `eddy verify` reads what
/// it compares with it.
///
/// A "not now" reply (`EntityWriter.isRetryable`, e.g. `LOADING` after a
/// restart) is no answer: taking it for an absent key would restart the key
/// empty, so it fails the load, which is retried per `retry`.
///
/// Used by one thread at a time.
public final class EntityLoader {
    /// Prepended to entity keys to make Redis keys.
    public let prefix: [UInt8]
    /// Whether requests ask for a fence (`_o:<partition>`).
    public let withFence: Bool
    /// Fields asked for after the fence (e.g. `_K` and the point columns),
    /// read into `StoredEntity.fields`.
    public let fields: [String]
    /// How failed loads are retried (default: until Redis answers).
    public var retry: RetryPolicy
    /// `parts: per_partition`: requests read the part of the fence's
    /// partition (`_p:<partition>`) where others read `_state`.
    public let readsParts: Bool

    let connect: () throws -> RedisClient
    var client: RedisClient?
    /// false: the caller's client, never closed here.
    let ownsConnection: Bool

    /// A loader connecting to `target` on first use and after a failure.
    public init(target: RedisTarget, prefix: [UInt8], withFence: Bool = true, fields: [String] = [],
                options: RedisConnection.Options = .init(), retry: RetryPolicy = EntityWriter.untilWritten,
                readsParts: Bool = false) {
        precondition(!readsParts || withFence, "a part is named by its fence's partition")
        self.readsParts = readsParts
        self.prefix = prefix
        self.withFence = withFence
        self.fields = fields
        self.retry = retry
        self.connect = { try RedisClient(target, options: options) }
        self.ownsConnection = true
    }

    /// A loader reading through `client` (reconnecting it is the caller's
    /// job); by default a failed load is not retried.
    public init(client: RedisClient, prefix: [UInt8], withFence: Bool = true, fields: [String] = [],
                retry: RetryPolicy = .never) {
        self.readsParts = false
        self.prefix = prefix
        self.withFence = withFence
        self.fields = fields
        self.retry = retry
        self.client = client
        self.connect = { client }
        self.ownsConnection = false
    }

    public func connection() throws -> RedisClient {
        if let client { return client }
        let c = try connect()
        client = c
        return c
    }

    /// Drops the connection (its replies may be out of step); the next use
    /// connects again. A caller's client is left alone.
    public func dropConnection() {
        guard ownsConnection else { return }
        client?.close()
        client = nil
    }

    /// The single server's connection, connected, for requests appended
    /// ahead of reading their replies (`request`, `entities(from:)`); nil on
    /// a cluster or when Redis cannot be reached now.
    public func singleConnection() -> RedisConnection? {
        guard case .single(let c)? = try? connection(), c.isConnected else { return nil }
        return c
    }

    /// Builds the request for entity `key`; `fence` is the partition name
    /// (`topic:partition`) of the fence to read, when `withFence` (and of
    /// the part read instead of `_state`, when `readsParts`).
    @inline(__always)
    public func request<Key: RedisArgument, Partition: RedisArgument>(
        _ key: Key, fence: Partition, into b: inout RedisCommandBuilder
    ) {
        key.withRedisArgumentBytes { k in
            fence.withRedisArgumentBytes { f in request(bytes: k, fence: f, into: &b) }
        }
    }

    /// `request` for a key and a partition name already in bytes: the
    /// worker's load of every key it has not seen, and what the generic
    /// `request` builds. Concrete, because a generic builder is not
    /// specialized across modules: its witness-table calls cost ~1,700
    /// instructions per request (callgrind, `eddy bench worker
    /// --distribution realistic`).
    public func request(bytes key: UnsafeRawBufferPointer, fence: UnsafeRawBufferPointer, into b: inout RedisCommandBuilder) {
        typealias Name = EntityLayout.Bytes
        Self.hmget.withUnsafeBytes { b.add($0) }
        prefix.withUnsafeBytes { b.addJoined($0, key) }
        if readsParts {
            Name.partFieldPrefix.withUnsafeBytes { b.addJoined($0, fence) }
        } else {
            Name.stateField.withUnsafeBytes { b.add($0) }
        }
        Name.fingerprintField.withUnsafeBytes { b.add($0) }
        if withFence { Name.offsetFieldPrefix.withUnsafeBytes { b.addJoined($0, fence) } }
        for f in fields { b.add(f) }
    }

    private static let hmget = Array("HMGET".utf8)

    /// The entities in replies to `request`, in order; throws when any
    /// reply says "not now".
    public func entities(from replies: [RedisReply]) throws(RedisError) -> [StoredEntity] {
        if let retry = replies.lazy.compactMap(\.errorMessage).first(where: EntityWriter.isRetryable) {
            throw RedisError.server(message: retry)
        }
        return replies.map { StoredEntity(reply: $0, hasFence: withFence, fieldCount: fields.count) }
    }

    /// Reads the next pipelined reply of a `request` as an entity, without
    /// decoding it into ``RedisReply`` (``StoredEntity/init(view:hasFence:fieldCount:)``).
    /// A retryable error reply throws, as in `entities(from:)`; any other
    /// error reads as an entity not stored.
    public func readEntity(from connection: RedisConnection) throws(RedisError) -> StoredEntity {
        let hasFence = withFence
        let fieldCount = fields.count
        return try connection.withNextReply { (reply) throws(RedisError) -> StoredEntity in
            if let message = reply.errorMessage, EntityWriter.isRetryable(message) {
                throw RedisError.server(message: message)
            }
            return StoredEntity(view: reply, hasFence: hasFence, fieldCount: fieldCount)
        }
    }

    /// Loads `count` entities in one pipeline, `build(i, &b)` making entity
    /// `i`'s request with `request`; retried per `retry` (a failed attempt
    /// drops the connection). `onRetry` is called before each retry's wait
    /// with the error, the attempt that failed (1-based) and the wait.
    /// Throws the last error once `retry` gives up.
    public func load(count: Int,
                     onRetry: (_ error: any Error, _ attempt: Int, _ wait: Duration) -> Void = { _, _, _ in },
                     _ build: (_ index: Int, _ command: inout RedisCommandBuilder) -> Void) throws -> [StoredEntity]
    {
        guard count > 0 else { return [] }
        var failedAttempt = 0
        return try retry.run(shouldRetry: { (error: any Error) in
            onRetry(error, failedAttempt, retry.backoff(beforeRetry: failedAttempt))
            return true
        }) { (attempt: Int) throws -> [StoredEntity] in
            do {
                return try entities(from: try connection().pipeline(count: count, build))
            } catch {
                failedAttempt = attempt
                dropConnection()
                throw error
            }
        }
    }
}
