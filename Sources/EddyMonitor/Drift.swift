import EddyCore
import EddyRedis
import EddyStore
import Foundation

/// # Drift
///
/// `eddy drift` compares the distribution of each monitored numeric feature
/// and each derived column (`FeatureBuckets.driftColumns`) now with a saved baseline, by the
/// Population Stability Index (`PSI`) over `FeatureBuckets` (plus a null
/// bin):
///
/// 1. sample: `SCAN 0 MATCH <sink prefix>* TYPE hash COUNT 1000` until
///    `--sample N` entity keys (default 10000) or the end of the keyspace;
/// 2. read each through `FeatureClient` (the Function library, pipelined) at
///    `T` (default: the Redis server's clock, so windows are current);
/// 3. bucket every monitored column's value;
/// 4. `--save-baseline FILE` writes these distributions as JSON; otherwise
///    `--baseline FILE` is read and each feature's PSI printed, flagging
///    PSI > 0.2. Exit status 1 when any feature is flagged.
///
/// The sample is SCAN order (hash-table order, effectively random over
/// keys), not a uniform random sample; with N in the thousands the PSI of
/// two samples of an unchanged population stays well below 0.1.
public enum Drift {
    /// A saved baseline (`eddy drift --save-baseline`).
    public struct Baseline: Codable, Equatable, Sendable {
        public var format = "eddy-drift-baseline/1"
        public var topology: String
        /// When it was taken (wall clock, epoch ms).
        public var createdAtMs: Int64
        /// The read time used (nil: the Redis server's clock).
        public var readAtMs: Int64?
        public var sampledKeys: Int
        /// `FeatureBuckets.upperBounds` when it was taken (checked on load).
        public var bucketUpperBounds: [Double]
        /// Per monitored column name.
        public var features: [String: FeatureDistribution]

        public init(topology: String, createdAtMs: Int64, readAtMs: Int64?, sampledKeys: Int,
                    features: [String: FeatureDistribution]) {
            self.topology = topology
            self.createdAtMs = createdAtMs
            self.readAtMs = readAtMs
            self.sampledKeys = sampledKeys
            self.bucketUpperBounds = FeatureBuckets.upperBounds
            self.features = features
        }

        public func encoded() throws -> Data {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            return try e.encode(self)
        }

        public static func decode(_ data: Data) throws -> Baseline {
            let b = try JSONDecoder().decode(Baseline.self, from: data)
            guard b.bucketUpperBounds == FeatureBuckets.upperBounds,
                b.features.values.allSatisfy({ $0.counts.count == FeatureBuckets.count })
            else { throw DriftError("the baseline was saved with other buckets; save it again") }
            return b
        }
    }

    /// One feature's comparison.
    public struct Row: Sendable, Equatable {
        public var feature: String
        /// nil when either side has no values.
        public var psi: Double?
        public var baselineCount: Int
        public var currentCount: Int
        public var flagged: Bool { (psi ?? 0) > PSI.threshold }
    }

    /// Compares every feature of the baseline with the current distributions.
    public static func compare(baseline: [String: FeatureDistribution], current: [String: FeatureDistribution],
                               order: [String]? = nil) -> [Row] {
        let names = order ?? baseline.keys.sorted()
        return names.compactMap { name in
            guard let b = baseline[name] else { return nil }
            let c = current[name] ?? FeatureDistribution()
            return Row(feature: name, psi: PSI.compute(expected: b, actual: c), baselineCount: b.total,
                       currentCount: c.total)
        }
    }

    /// Up to `limit` entity keys (without the prefix) found by SCAN on the
    /// server, or on each master of a cluster in turn.
    public static func sampleKeys(_ client: RedisClient, prefix: String, limit: Int) throws -> [String] {
        var keys: [String] = []
        for connection in try client.masterConnections() where keys.count < limit {
            keys += try sampleKeys(connection, prefix: prefix, limit: limit - keys.count)
        }
        return keys
    }

    /// Up to `limit` entity keys (without the prefix) found by SCAN.
    public static func sampleKeys(_ connection: RedisConnection, prefix: String, limit: Int) throws -> [String] {
        var keys: [String] = []
        var seen: Set<[UInt8]> = []
        var cursor = "0"
        let pattern = GlobPattern.keys(withPrefix: prefix)
        let prefixBytes = Array(prefix.utf8)
        repeat {
            let reply = try connection.command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000, "TYPE", "hash").checked()
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let found = parts[1].array else {
                throw DriftError("unexpected SCAN reply: \(reply)")
            }
            cursor = next
            for k in found {
                guard let bytes = k.bytes, bytes.count >= prefixBytes.count, Array(bytes.prefix(prefixBytes.count)) == prefixBytes,
                    seen.insert(bytes).inserted
                else { continue }
                keys.append(String(decoding: bytes.dropFirst(prefixBytes.count), as: UTF8.self))
                if keys.count >= limit { return keys }
            }
        } while cursor != "0"
        return keys
    }

    /// Reads `keys` at `t` and buckets every monitored column.
    /// Returns the distributions and the number of entities read.
    public static func distributions(_ client: FeatureClient, keys: [String], at t: Int64?) throws
        -> (features: [String: FeatureDistribution], entities: Int)
    {
        let columns = FeatureBuckets.driftColumns(client.topology)
        var result: [String: FeatureDistribution] = [:]
        for c in columns { result[c] = FeatureDistribution() }
        var entities = 0
        for object in try client.features(keys: keys, at: t) {
            guard let object, let values = parseObject(object) else { continue }
            entities += 1
            for c in columns {
                result[c]!.add(values[c] ?? nil)
            }
        }
        return (result, entities)
    }

    /// The numeric members of a features object (null and non-numbers as nil).
    static func parseObject(_ bytes: [UInt8]) -> [String: Double?]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
        var values: [String: Double?] = [:]
        for (k, v) in object {
            if let n = v as? NSNumber, !(v is Bool) {
                values[k] = n.doubleValue
            } else if let b = v as? Bool {
                values[k] = b ? 1 : 0
            } else {
                values[k] = .some(nil)
            }
        }
        return values
    }


    /// A table for the terminal: feature, PSI, counts, verdict.
    public static func report(_ rows: [Row]) -> String {
        func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(n - s.count, 0))
            return left ? s + fill : fill + s
        }
        let width = max(rows.map(\.feature.count).max() ?? 0, 7)
        var lines = [pad("feature", width, left: true) + "      psi   baseline    current  verdict"]
        for r in rows {
            let psi = r.psi.map { String(format: "%.4f", $0) } ?? "n/a"
            let verdict = r.psi == nil ? "no data" : r.flagged ? "DRIFT (> \(PSI.threshold))" : r.psi! > 0.1 ? "moderate" : "stable"
            lines.append(pad(r.feature, width, left: true) + pad(psi, 9) + pad(String(r.baselineCount), 11)
                         + pad(String(r.currentCount), 11) + "  " + verdict)
        }
        return lines.joined(separator: "\n")
    }
}

public struct DriftError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
