import ArgumentParser
import EddyCore
import EddyRedis
import EddyStore
import Foundation

/// `eddy get`: entities' features read at a time T, through the topology's
/// Redis Function library (see `FunctionLibrary`).
struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Read entities' features from Redis at a time T.",
        discussion: """
            Prints one JSON line per key, in order: {"key":...,"key_time":K,<every feature column read at T>}, \
            or {"key":...,"found":false} for an entity Redis does not hold. Keys are entity keys; the topology's \
            sink prefix is added (a topology with key.hash hashes them first, so give the raw key, e.g. the email). The read runs inside Redis (FCALL eddy_<topology>_features), whose Function \
            library is loaded on first use.
            """
    )

    @Option(name: .long, help: "Topology file (or name under Topologies/).")
    var topology: String

    @Argument(help: "Entity keys, without the sink prefix.")
    var keys: [String] = []

    @Option(name: .long, help: "Read time T: epoch milliseconds or RFC 3339 (default: the Redis server's clock).")
    var at: String?

    @Option(name: .long, help: "Redis URL (default: $EDDY_REDIS_URL, else the topology's sink).")
    var redis: String?

    @OptionGroup var redisCredentials: RedisCredentialOptions

    @Option(name: .long, help: "The entity to read, in a topology with `entities:` (its prefix and Function; parts merged).")
    var entity: String?

    func validate() throws {
        if keys.isEmpty { throw ValidationError("give at least one KEY") }
        if let at, ReadTime.parse(at) == nil {
            throw ValidationError("--at '\(at)' is neither epoch milliseconds nor RFC 3339 (e.g. 2024-05-01T12:40:00Z)")
        }
    }

    func run() throws {
        let t = try selectEntity(try loadTopology(topology), entity, command: "eddy get")
        let url = try resolveRedisURL(redis, topology: t, credentials: redisCredentials)
        let connection = try connectRedis(url, clientName: "eddy-get", commandTimeout: .seconds(10))
        let client = FeatureClient(client: connection, topology: t)
        let lines: [[UInt8]]
        do {
            // With `key: {hash: ...}` the keys given are raw (an email): read their HMACs.
            let objects = try client.features(keys: keys.map(t.entityKey), at: at.flatMap(ReadTime.parse))
            lines = zip(keys, objects).map { key, object in object ?? FeatureClient.notFoundObject(key: key) }
        } catch let error as RedisError where error.isConnectionError {
            throw CLIError("Redis at \(url) failed: \(error)")
        } catch {
            throw CLIError("\(error)")
        }
        var out: [UInt8] = []
        for line in lines {
            out += line
            out.append(UInt8(ascii: "\n"))
        }
        FileHandle.standardOutput.write(Data(out))
    }
}
