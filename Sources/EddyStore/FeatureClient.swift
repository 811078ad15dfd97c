import EddyCore
import EddyRedis

/// Reads entities' features at a time `T` from Redis through the topology's
/// Function library (see `FunctionLibrary`), with pipelined `FCALL`s; on a
/// Redis Cluster each `FCALL` goes to the master of its key's slot.
///
/// The library is installed on first use (on every master of a cluster), and
/// again on a server that answers that the function does not exist (a
/// restarted or flushed Redis, a new master) or when the loaded library reads
/// other features than this topology's. Connection failures are thrown as
/// `RedisError`; reconnecting a single server is the caller's choice
/// (`RedisConnection.reconnect()`), after which reads go on as before.
///
/// Like its `RedisClient`, a feature client is used by one thread at a time
/// and is not `Sendable`.
public final class FeatureClient {
    /// The server or cluster the reads go through.
    public let client: RedisClient
    /// The topology whose features are read.
    public let topology: Topology
    /// The Function library generated from `topology`.
    public let library: FunctionLibrary
    /// Prepended to entity keys to make Redis keys (`topology.sink.keyPrefix`).
    public let keyPrefix: String
    /// Whether this client has checked or loaded the library.
    private var installed = false
    /// Keys per pipeline, bounding the replies held at once.
    static let batchSize = 512

    /// A client reading `topology`'s features through one server's `connection`.
    public convenience init(connection: RedisConnection, topology: Topology) {
        self.init(client: .single(connection), topology: topology)
    }

    /// A client reading `topology`'s features from a single server or a cluster.
    public init(client: RedisClient, topology: Topology) {
        self.client = client
        self.topology = topology
        self.library = FunctionLibrary(topology: topology)
        self.keyPrefix = topology.sink.keyPrefix
    }

    /// The features of each entity key (without the sink prefix) read at
    /// `t` (epoch ms; nil: the Redis server's clock), in the order of
    /// `keys`: the JSON object text the library returns, or nil when the
    /// entity does not exist.
    ///
    /// - Throws: `RedisError` when Redis cannot be reached or fails as a
    ///   whole; `ServingError` when the read of one key fails.
    public func features(keys: [String], at t: Int64? = nil) throws -> [[UInt8]?] {
        var results: [[UInt8]?] = []
        results.reserveCapacity(keys.count)
        var start = keys.startIndex
        while start < keys.endIndex {
            let end = min(start + Self.batchSize, keys.endIndex)
            results.append(contentsOf: try read(keys[start..<end], at: t))
            start = end
        }
        return results
    }

    /// One JSON line per key, as `eddy get` prints them: the library's
    /// object, or `{"key":"<key>","found":false}`.
    public func jsonLines(keys: [String], at t: Int64? = nil) throws -> [[UInt8]] {
        zip(keys, try features(keys: keys, at: t)).map { key, object in object ?? Self.notFoundObject(key: key) }
    }

    /// `{"key":"<key>","found":false}`, the line for an entity that does not exist.
    public static func notFoundObject(key: String) -> [UInt8] {
        var w = JSONWriter(capacity: key.utf8.count + 32)
        w.raw("{\"key\":")
        w.string(key)
        w.raw(",\"found\":false}")
        return w.bytes
    }

    // MARK: Pipelines

    private func read(_ keys: ArraySlice<String>, at t: Int64?) throws -> [[UInt8]?] {
        if !installed {
            try library.install(on: client)
            installed = true
        }
        var replies = try call(keys, at: t)
        if try needsReinstall(replies) {
            try library.install(on: client, force: true)
            replies = try call(keys, at: t)
        }
        return try zip(keys, replies).map { key, reply in try Self.decode(reply, key: key) }
    }

    /// One `FCALL` per key, pipelined (per master on a cluster); a server
    /// that answers "function not found" gets the library and the calls again.
    private func call(_ keys: ArraySlice<String>, at t: Int64?) throws(RedisError) -> [RedisReply] {
        let library = library
        return try client.fcallPipeline(
            library.functionName, count: keys.count, isMissing: FunctionLibrary.isMissingFunction,
            reload: { (connection: RedisConnection) throws(RedisError) in try library.install(on: connection, force: true) }
        ) { i, call in
            call.keys.addJoined(keyPrefix, keys[keys.startIndex + i])
            if let t { call.arguments.add(t) }
        }
    }

    /// Whether the replies show a missing library, or state errors caused
    /// by another version of the library having been loaded since.
    private func needsReinstall(_ replies: [RedisReply]) throws(RedisError) -> Bool {
        var stateError = false
        for case .error(let message) in replies {
            if FunctionLibrary.isMissingFunction(message) { return true }
            if message.hasPrefix("EDDYSTATE") { stateError = true }
        }
        return stateError ? try library.installedVersion(on: client) != library.version : false
    }

    private static func decode(_ reply: RedisReply, key: String) throws(ServingError) -> [UInt8]? {
        switch reply {
        case .bulk(let bytes): return bytes
        case .null: return nil
        case .error(let message): throw .readFailed(key: key, message: message)
        default: throw .unexpectedReply(key: key, reply: reply.description)
        }
    }
}

@available(*, unavailable, message: "FeatureClient uses one RedisClient; give each thread its own client")
extension FeatureClient: Sendable {}
