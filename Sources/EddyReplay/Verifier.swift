import EddyCore
import EddyRedis
import EddyStore

/// Compares entities in Redis with a replay of the same events, both read
/// at the same time `T`:
///
/// - the serving read path (`FeatureClient`: `FCALL` of the Function
///   library, which folds the stored `_state` at `T`) against the replay's
///   features at `T`, column by column, `key_time` included; and
/// - the stored hash fields that do not come from `_state` (`_fp`, `_K`
///   and the point columns, read by `HGETALL` users) against the replay's
///   values at the key time, read with the worker's `EntityLoader`;
/// - for Kafka replays, the fence `_o:<topic>:<partition>` against the
///   offset of the key's last applied event. A key whose fence is beyond
///   the replay (a worker wrote newer events since) is counted as newer,
///   not compared.
public final class Verifier {
    public struct Mismatch: Sendable, Equatable {
        public var key: String
        public var column: String
        /// Raw JSON text (or a note in parentheses).
        public var redis: String
        public var replay: String
    }

    /// Bytes as text for a report (JSON text stays as it is).
    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    public struct Report: Sendable {
        public var checked = 0
        public var equal = 0
        public var different = 0
        public var missing = 0
        public var extra = 0
        /// Keys Redis holds at a newer offset than the replay reached.
        public var newer = 0
        public var scanned = false
        public var mismatches: [Mismatch] = []
        public var mismatchCount = 0
        /// Columns that differed, with how many keys.
        public var columnCounts: [String: Int] = [:]
        public var extraKeys: [String] = []
        public var missingKeys: [String] = []

        public var failed: Bool { different + missing + extra > 0 }

        /// Counts a checked key as equal (no `diffs`) or different, keeping
        /// the first `maxReported` differences.
        mutating func record(_ diffs: [Mismatch], maxReported: Int) {
            if diffs.isEmpty {
                equal += 1
                return
            }
            different += 1
            var seen: Set<String> = []
            for d in diffs {
                mismatchCount += 1
                if seen.insert(d.column).inserted { columnCounts[d.column, default: 0] += 1 }
                if mismatches.count < maxReported { mismatches.append(d) }
            }
        }

        mutating func recordMissing(_ key: String, maxReported: Int) {
            missing += 1
            if missingKeys.count < maxReported { missingKeys.append(key) }
        }
    }

    let session: ReplaySession
    let topology: Topology
    /// The stored fields as the worker writes them.
    var entityFields: EntityFields
    /// Where and when it reads: the key prefix, the connection, the read time T.
    let prefix: String, client: RedisClient, at: Int64
    /// Kafka replays: fence names and end offsets per source number.
    let partitionNames: [String]?
    let endOffsets: [Int64]?
    public var maxReported = 50

    /// - Parameters:
    ///   - topology: the replayed topology (its prefix is replaced by `prefix`).
    ///   - partitionNames, endOffsets: per source number of a Kafka replay
    ///     (`topic:partition` and the end of its range); nil for files.
    public init(session: ReplaySession, topology: Topology, prefix: String, client: RedisClient, at: Int64,
                partitionNames: [String]? = nil, endOffsets: [Int64]? = nil) {
        self.session = session
        var t = topology
        t.sink.keyPrefix = prefix
        self.topology = t
        self.entityFields = EntityFields(engine: session.engine)
        self.prefix = prefix
        self.client = client
        self.at = at
        self.partitionNames = partitionNames
        self.endOffsets = endOffsets
    }

    /// Checks `sample` keys of the replay (all when nil), chosen with
    /// `seed`; with `scan`, also looks for keys Redis holds under the prefix
    /// that the replay does not know.
    public func run(sample: Int?, seed: UInt64 = 1, scan: Bool) throws -> Report {
        var report = Report()
        let engine = session.engine
        let store = engine.store
        var slots: [Int32] = []
        for s in 0..<Int32(store.slotLimit) where store.isLive(s) && engine.keyTime(s) != nil { slots.append(s) }
        if let sample, sample < slots.count {
            var rng = SplitMix64(seed: seed)
            for i in 0..<sample {
                let j = i + Int(rng.next() % UInt64(slots.count - i))
                slots.swapAt(i, j)
            }
            slots.removeLast(slots.count - sample)
        }
        let client = FeatureClient(client: self.client, topology: topology)
        let stored = storedColumnNames()
        // `_fp` comes with every load; the rest are the loader's further fields.
        let loader = EntityLoader(client: self.client, prefix: Array(prefix.utf8), withFence: partitionNames != nil,
                                  fields: Array(stored.dropFirst()))
        var start = 0
        while start < slots.count {
            let chunk = Array(slots[start..<min(start + 512, slots.count)])
            start += chunk.count
            let keys = chunk.map { String(decoding: store.keyBytes($0), as: UTF8.self) }
            let served = try read(client, keys)
            let entities = try storedEntities(chunk, loader: loader)
            for (i, slot) in chunk.enumerated() {
                check(slot, key: keys[i], served: served[i], entity: entities[i], stored: stored, into: &report)
            }
        }
        if scan {
            report.scanned = true
            try findExtra(into: &report)
        }
        return report
    }

    // MARK: Reads

    /// Features at T through the serving path; a key whose read fails is
    /// returned as `.failure(message)`.
    func read(_ client: FeatureClient, _ keys: [String]) throws -> [Result<[UInt8]?, ServingError>] {
        do {
            return try client.features(keys: keys, at: at).map { .success($0) }
        } catch is ServingError {
            // Isolate the keys whose read failed.
            return try keys.map { key in
                do { return .success(try client.features(keys: [key], at: at)[0]) } catch let e as ServingError {
                    return .failure(e)
                }
            }
        }
    }

    /// `_fp` first, then `_K` and the point columns (`sink.layout: lean`:
    /// `_fp` alone).
    func storedColumnNames() -> [String] {
        if topology.sink.layout == .lean { return [EntityLayout.fingerprintField] }
        var names = [EntityLayout.fingerprintField, EntityLayout.keyTimeField]
        for f in topology.features {
            for (c, name) in f.outputNames.enumerated() where EntityLayout.isStoredColumn(f, column: c) {
                names.append(name)
            }
        }
        return names
    }

    /// The stored entities of `slots`: `_fp`, (Kafka) the key's fence, then
    /// `_K` and the point columns (`loader.fields`).
    func storedEntities(_ slots: [Int32], loader: EntityLoader) throws -> [StoredEntity] {
        let store = session.engine.store
        return try loader.load(count: slots.count) { i, b in
            let slot = slots[i]
            // A key without an applied event has no fence to compare.
            let fence = partitionNames.flatMap { names in session.lastApplied(slot).map { names[Int($0.0)] } } ?? ""
            loader.request(store.keyBytes(slot), fence: fence, into: &b)
        }
    }

    // MARK: Comparing

    func check(_ slot: Int32, key: String, served: Result<[UInt8]?, ServingError>, entity: StoredEntity,
               stored: [String], into report: inout Report) {
        let engine = session.engine
        report.checked += 1
        var diffs: [Mismatch] = []

        // The fence first: Redis may simply be ahead of the replay.
        if let partitionNames, let (source, offset) = session.lastApplied(slot) {
            let name = EntityLayout.offsetFieldPrefix + partitionNames[Int(source)]
            let redisOffset = entity.fence
            if let redisOffset, redisOffset > offset {
                report.newer += 1
                return
            }
            if case .success(.some) = served, redisOffset != offset {
                diffs.append(Mismatch(key: key, column: name, redis: redisOffset.map(String.init) ?? "(absent)",
                                      replay: String(offset)))
            }
        }

        // Features at T through the serving path.
        var expected = JSONWriter(capacity: 512)
        expected.raw("{\"key\":")
        expected.string(session.engine.store.keyBytes(slot))
        expected.raw(",\"key_time\":")
        expected.int(engine.keyTime(slot)!)
        expected.raw(UInt8(ascii: ","))
        engine.writeFeatures(slot, at: at, into: &expected)
        expected.raw(UInt8(ascii: "}"))
        switch served {
        case .failure(let error):
            var message = "\(error)"
            if case .readFailed(_, let m) = error { message = m }
            diffs.append(Mismatch(key: key, column: "(read)", redis: "(error: \(message))", replay: "(features)"))
        case .success(nil):
            report.recordMissing(key, maxReported: maxReported)
            return
        case .success(.some(let got)):
            diffs += Self.compareObjects(key: key, redis: got, replay: expected.bytes)
        }

        // Stored fields: _fp, _K and the point columns at the key time, as
        // the worker writes them (`_state` is compared through the read above).
        var values: [String: [UInt8]] = [:]
        entityFields.forEach(slot: slot) { name, value in
            let n = String(decoding: name, as: UTF8.self)
            if n != EntityLayout.stateField { values[n] = Array(value) }
        }
        for (i, name) in stored.enumerated() {
            let want = values[name] ?? []
            let have = i == 0 ? entity.fingerprint : entity.fields[i - 1]
            guard let have else {
                diffs.append(Mismatch(key: key, column: name, redis: "(absent)", replay: String(decoding: want, as: UTF8.self)))
                continue
            }
            if !Self.sameValue(have, want) {
                diffs.append(Mismatch(key: key, column: name, redis: Self.text(have),
                                      replay: String(decoding: want, as: UTF8.self)))
            }
        }

        report.record(diffs, maxReported: maxReported)
    }

    /// Column-by-column differences between two feature objects.
    static func compareObjects(key: String, redis: [UInt8], replay: [UInt8]) -> [Mismatch] {
        guard let have = JSONMembers.members(redis) else {
            return [Mismatch(key: key, column: "(reply)", redis: String(decoding: redis, as: UTF8.self), replay: "(object)")]
        }
        let want = JSONMembers.members(replay) ?? []
        var out: [Mismatch] = []
        var haveByName: [String: [UInt8]] = [:]
        for m in have { haveByName[m.name] = m.value }
        for m in want {
            guard let h = haveByName.removeValue(forKey: m.name) else {
                out.append(Mismatch(key: key, column: m.name, redis: "(absent)", replay: String(decoding: m.value, as: UTF8.self)))
                continue
            }
            if !Self.sameValue(h, m.value) {
                out.append(Mismatch(key: key, column: m.name, redis: String(decoding: h, as: UTF8.self),
                                    replay: String(decoding: m.value, as: UTF8.self)))
            }
        }
        for m in have where haveByName[m.name] != nil {
            out.append(Mismatch(key: key, column: m.name, redis: String(decoding: m.value, as: UTF8.self), replay: "(absent)"))
        }
        return out
    }

    /// Equal JSON texts, or numbers with the same value (`2` and `2.0`).
    static func sameValue(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        if a == b { return true }
        guard let x = Double(String(decoding: a, as: UTF8.self)), let y = Double(String(decoding: b, as: UTF8.self)) else {
            return false
        }
        return x == y
    }

    // MARK: Extra keys

    /// SCANs the prefix for keys the replay does not have (`findExtraKeys`).
    func findExtra(into report: inout Report) throws {
        let store = session.engine.store
        let engine = session.engine
        try Self.findExtraKeys(client: client, prefix: prefix, partitionNames: partitionNames, endOffsets: endOffsets,
                               maxReported: maxReported, into: &report) { k in
            let s = store.lookup(k, hash: hashKey(k))
            return s >= 0 && engine.keyTime(s) != nil
        }
    }

    /// SCANs `prefix` for keys that `known` says the replay does not have.
    /// For a Kafka replay, a key with a fence at or past the end of the
    /// replayed range of its partition was written from newer events:
    /// newer, not extra.
    static func findExtraKeys(client: RedisClient, prefix: String, partitionNames: [String]?, endOffsets: [Int64]?,
                              maxReported: Int, into report: inout Report,
                              known: (UnsafeRawBufferPointer) -> Bool) throws {
        let pattern = GlobPattern.keys(withPrefix: prefix)
        let prefixBytes = Array(prefix.utf8)
        var candidates: [[UInt8]] = []
        // A cluster's keys are spread over its masters: SCAN each.
        for connection in try client.masterConnections() {
            var cursor = "0"
            repeat {
                let reply = try connection.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000").checked()
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                    throw RedisError.unexpectedReply(command: "SCAN", reply: reply.description)
                }
                cursor = next
                for item in parts[1].array ?? [] {
                    guard let redisKey = item.bytes, redisKey.count >= prefixBytes.count else { continue }
                    // The worker's partition epochs live under the prefix too.
                    if PartitionEpochs.isEpochKey(redisKey, entityPrefix: prefix) { continue }
                    let entity = Array(redisKey[prefixBytes.count...])
                    if !entity.withUnsafeBytes(known) { candidates.append(entity) }
                }
            } while cursor != "0"
        }
        guard !candidates.isEmpty else { return }
        var ends: [String: Int64] = [:]
        if let partitionNames, let endOffsets {
            for (i, n) in partitionNames.enumerated() { ends[EntityLayout.offsetFieldPrefix + n] = endOffsets[i] }
        }
        var start = 0
        while start < candidates.count {
            let chunk = Array(candidates[start..<min(start + 512, candidates.count)])
            start += chunk.count
            var replies: [RedisReply] = []
            if !ends.isEmpty {
                replies = try client.pipeline(count: chunk.count) { i, b in
                    b.add("HGETALL")
                    b.addJoined(prefixBytes, chunk[i])
                }
            }
            for (i, key) in chunk.enumerated() {
                var newer = false
                if !ends.isEmpty, let items = replies[i].array {
                    var j = 0
                    while j + 1 < items.count {
                        if let name = items[j].string, let end = ends[name],
                            let o = items[j + 1].string.flatMap({ Int64($0) }), o >= end { newer = true }
                        j += 2
                    }
                }
                if newer {
                    report.newer += 1
                } else {
                    report.extra += 1
                    if report.extraKeys.count < maxReported { report.extraKeys.append(String(decoding: key, as: UTF8.self)) }
                }
            }
        }
    }
}
