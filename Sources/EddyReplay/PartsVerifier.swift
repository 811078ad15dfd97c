import EddyCore
import EddyRedis
import EddyStore

/// `Verifier` for a `parts: per_partition` entity (SEMANTICS.md, "Keys
/// spread over partitions"): each key's final parts from a
/// `PartsReplaySession`, merged, against Redis read at the same time `T`:
///
/// - the serving read path (`FeatureClient`: the Function merges the
///   stored parts `_p:<partition>` at `T`) against the merged replay, column
///   by column, `key_time` included;
/// - `_fp`;
/// - for Kafka replays, that Redis holds exactly the replay's parts, and every part's fence `_o:<topic>:<partition>` against
///   the offset of the part's last accepted event. A key with a part whose
///   fence is beyond the replay (a worker wrote newer events since) is
///   counted as newer, not compared. (A file replay's fences, `file:<p>`,
///   name no Kafka partition: not compared.)
public final class PartsVerifier {
    let session: PartsReplaySession
    /// The replay's final parts, and each key's parts (indices into `parts`).
    let parts: [PartsReplaySession.FinalPart]
    var keys: [[UInt8]] = []
    var partsOfKey: [[UInt8]: [Int]] = [:]
    let topology: Topology
    let prefix: String, client: RedisClient, at: Int64
    let partitionNames: [String]?
    let endOffsets: [Int64]?
    public var maxReported = 50
    /// `_fp` as the worker writes it.
    let fingerprint: [UInt8]

    public init(session: PartsReplaySession, parts: [PartsReplaySession.FinalPart], topology: Topology, prefix: String,
                client: RedisClient, at: Int64, partitionNames: [String]? = nil, endOffsets: [Int64]? = nil) {
        self.session = session
        self.parts = parts
        var t = topology
        t.sink.keyPrefix = prefix
        self.topology = t
        self.fingerprint = Array(EntityLayout.fingerprint(t).utf8)
        self.prefix = prefix
        self.client = client
        self.at = at
        self.partitionNames = partitionNames
        self.endOffsets = endOffsets
        for (i, p) in parts.enumerated() {
            if partsOfKey[p.key] == nil { keys.append(p.key) }
            partsOfKey[p.key, default: []].append(i)
        }
    }

    /// Checks `sample` keys of the replay (all when nil), chosen with
    /// `seed`; with `scan`, also looks for keys Redis holds under the prefix
    /// that the replay does not know.
    public func run(sample: Int?, seed: UInt64 = 1, scan: Bool) throws -> Verifier.Report {
        var report = Verifier.Report()
        var chosen = keys
        if let sample, sample < chosen.count {
            var rng = SplitMix64(seed: seed)
            for i in 0..<sample { chosen.swapAt(i, i + Int(rng.next() % UInt64(chosen.count - i))) }
            chosen.removeLast(chosen.count - sample)
        }
        let features = FeatureClient(client: client, topology: topology)
        let prefixBytes = Array(prefix.utf8)
        var start = 0
        while start < chosen.count {
            let chunk = Array(chosen[start..<min(start + 512, chosen.count)])
            start += chunk.count
            let names = chunk.map { String(decoding: $0, as: UTF8.self) }
            let served = try features.features(keys: names, at: at)
            let hashes = try client.pipeline(count: chunk.count) { i, b in
                b.add("HGETALL")
                b.addJoined(prefixBytes, chunk[i])
            }
            for (i, key) in chunk.enumerated() {
                check(key, name: names[i], served: served[i], hash: hashes[i], into: &report)
            }
        }
        if scan {
            report.scanned = true
            let known = partsOfKey
            try Verifier.findExtraKeys(client: client, prefix: prefix, partitionNames: partitionNames,
                                       endOffsets: endOffsets, maxReported: maxReported, into: &report) { known[Array($0)] != nil }
        }
        return report
    }

    func check(_ key: [UInt8], name: String, served: [UInt8]?, hash: RedisReply, into report: inout Verifier.Report) {
        report.checked += 1
        var fields: [String: [UInt8]] = [:]
        let items = hash.array ?? []
        for j in stride(from: 0, to: items.count - 1, by: 2) {
            if let n = items[j].string { fields[n] = items[j + 1].bytes ?? [] }
        }
        let mine = partsOfKey[key]!.map { parts[$0] }
        var diffs: [Verifier.Mismatch] = []
        if let partitionNames {
            // The fences first: Redis may simply be ahead of the replay.
            for p in mine {
                let fence = EntityLayout.offsetFieldPrefix + partitionNames[Int(p.source)]
                let stored = fields[fence].flatMap { Int64(String(decoding: $0, as: UTF8.self)) }
                if let stored, stored > p.offset {
                    report.newer += 1
                    return
                }
                if served != nil, stored != p.offset {
                    diffs.append(.init(key: name, column: fence, redis: stored.map(String.init) ?? "(absent)", replay: String(p.offset)))
                }
            }
            // Every part of the replay is stored (one that reads the same at T
            // may still matter at another T), and no other (another topic or partition).
            let expected = Set(mine.map { EntityLayout.partFieldPrefix + partitionNames[Int($0.source)] })
            for n in expected.sorted() where served != nil && fields[n] == nil {
                diffs.append(.init(key: name, column: n, redis: "(absent)", replay: "(a part)"))
            }
            for n in fields.keys.sorted() where n.hasPrefix(EntityLayout.partFieldPrefix) && !expected.contains(n) {
                diffs.append(.init(key: name, column: n, redis: "(a part)", replay: "(absent)"))
            }
        }
        guard let served else {
            report.recordMissing(name, maxReported: maxReported)
            return
        }
        let merged = session.merge(key, mine.map { ($0.partition, $0.blob) })
        var expected = JSONWriter(capacity: 512)
        merged.withUnsafeBytes { b in
            let kt = StoredEntity.keyTime(ofState: b) ?? 0
            expected.raw("{\"key\":")
            expected.string(key)
            expected.raw(",\"key_time\":")
            expected.int(kt)
            expected.raw(UInt8(ascii: ","))
            session.engine.writeFeatures(blob: b.baseAddress!, at: at, into: &expected)
            expected.raw(UInt8(ascii: "}"))
        }
        diffs += Verifier.compareObjects(key: name, redis: served, replay: expected.bytes)
        let fp = fingerprint
        if fields[EntityLayout.fingerprintField] != fp {
            diffs.append(.init(key: name, column: EntityLayout.fingerprintField,
                               redis: fields[EntityLayout.fingerprintField].map(Verifier.text) ?? "(absent)",
                               replay: Verifier.text(fp)))
        }
        report.record(diffs, maxReported: maxReported)
    }
}
