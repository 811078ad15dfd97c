import ArgumentParser
import EddyCore
import EddyMonitor
import EddyRedis
import EddyStore
import Foundation

/// `eddy drift`: Population Stability Index of each numeric feature's
/// current distribution in Redis against a saved baseline.
struct DriftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Compare the features in Redis with a saved baseline (PSI per numeric feature).",
        discussion: """
            Samples up to --sample entity keys (SCAN of the topology's sink prefix), reads their features at T \
            through the Function library, and buckets every numeric column (window features, session events and \
            duration) into fixed log-scale buckets plus a null bin. With --save-baseline FILE the distributions are \
            saved; with --baseline FILE each feature's PSI against it is printed, and features with PSI > 0.2 are \
            flagged (exit status 1 when any is). PSI = sum over bins of (current - baseline) * ln(current / baseline) \
            on bin shares, empty shares counted as 0.0001.
            """
    )

    @Option(name: .long, help: "Topology file (or name under Topologies/).")
    var topology: String

    @Option(name: .long, help: "Baseline file to compare with.")
    var baseline: String?

    @Option(name: .long, help: "Write the current distributions to this file as the new baseline.")
    var saveBaseline: String?

    @Option(name: .long, help: "Redis URL (default: $EDDY_REDIS_URL, else the topology's sink).")
    var redis: String?

    @OptionGroup var redisCredentials: RedisCredentialOptions

    @Option(name: .long, help: "Entity keys to sample.")
    var sample: Int = 10_000

    @Option(name: .long, help: "Read time T: epoch milliseconds or RFC 3339 (default: the Redis server's clock).")
    var at: String?

    @Option(name: .long, help: "The entity to sample, in a topology with `entities:` (its prefix and Function; parts merged).")
    var entity: String?

    func validate() throws {
        if (baseline == nil) == (saveBaseline == nil) {
            throw ValidationError("give either --baseline FILE (compare) or --save-baseline FILE (save)")
        }
        if sample < 1 { throw ValidationError("--sample must be at least 1") }
        if let at, ReadTime.parse(at) == nil {
            throw ValidationError("--at '\(at)' is neither epoch milliseconds nor RFC 3339 (e.g. 2024-05-01T12:40:00Z)")
        }
    }

    func run() throws {
        let t = try selectEntity(try loadTopology(topology), entity, command: "eddy drift")
        let columns = FeatureBuckets.driftColumns(t)
        if columns.isEmpty { throw CLIError("topology \(t.name) has no numeric features to monitor") }
        var saved: Drift.Baseline?
        if let baseline {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: baseline)) } catch {
                throw CLIError("cannot read baseline \(baseline): \(error.localizedDescription)")
            }
            do { saved = try Drift.Baseline.decode(data) } catch {
                throw CLIError("\(baseline) is not a drift baseline: \(error)")
            }
            if saved!.topology != t.name {
                throw CLIError("\(baseline) is a baseline of topology '\(saved!.topology)', not '\(t.name)'")
            }
        }

        let url = try resolveRedisURL(redis, topology: t, credentials: redisCredentials)
        let connection = try connectRedis(url, clientName: "eddy-drift", commandTimeout: .seconds(30))
        let readAt = at.flatMap(ReadTime.parse)
        let keys: [String]
        let current: (features: [String: FeatureDistribution], entities: Int)
        do {
            keys = try Drift.sampleKeys(connection, prefix: t.sink.keyPrefix, limit: sample)
            current = try Drift.distributions(FeatureClient(client: connection, topology: t), keys: keys, at: readAt)
        } catch {
            throw CLIError("reading from Redis at \(url) failed: \(error)")
        }
        printError("sampled \(current.entities) entities of \(t.name) (prefix \"\(t.sink.keyPrefix)\") from \(url)")

        if let saveBaseline {
            let b = Drift.Baseline(topology: t.name, createdAtMs: Int64(Date().timeIntervalSince1970 * 1000),
                                   readAtMs: readAt, sampledKeys: current.entities, features: current.features)
            do { try b.encoded().write(to: URL(fileURLWithPath: saveBaseline)) } catch {
                throw CLIError("cannot write \(saveBaseline): \(error.localizedDescription)")
            }
            if current.entities == 0 { printError("warning: no entities found; the baseline is empty") }
            print("saved the distributions of \(columns.count) features over \(current.entities) entities to \(saveBaseline)")
            return
        }
        let rows = Drift.compare(baseline: saved!.features, current: current.features, order: columns)
        print(Drift.report(rows))
        let flagged = rows.filter(\.flagged)
        if !flagged.isEmpty {
            printError("drift: \(flagged.map(\.feature).joined(separator: ", ")) over PSI \(PSI.threshold)")
            throw ExitCode(1)
        }
    }
}
