import EddyCore

/// Replay of an entity whose key is spread over partitions
/// (`parts: per_partition`, SEMANTICS.md "Keys spread over partitions").
/// Each key's state is kept per source partition; every read merges the
/// parts (`FeatureEngine.mergeParts`):
///
/// - a row for an accepted event `e` of part `p` reads `p` as before `e`,
///   and every other part `q` holding its accepted events that arrived
///   before `q`'s first accepted event with `ts > T` (`T = e.ts`);
/// - a label at `T` reads every part that way;
/// - `final` merges every part's final state and reads it at the merged `K`.
///
/// None of this depends on how partitions interleave, so the session
/// holds every readable event (its bytes) until `finish`, then works key
/// by key. Rows are written grouped by key (keys in order of first
/// appearance), each key's rows in arrival order.
///
/// Where the partition comes from: Kafka events carry theirs (set
/// `partitionOfSource`); file lines read `partitionField` (a missing or
/// non-integer value: partition 0), or are all partition 0.
public final class PartsReplaySession {
    public let engine: FeatureEngine
    public let emit: EmitMode
    public private(set) var summary = ReplaySummary()
    let labels: LabelSet?
    public var onReject: ((Int, RejectReason, UnsafeRawBufferPointer) -> Void)?
    public var onKafkaReject: ((Int32, Int64, RejectReason, UnsafeRawBufferPointer) -> Void)?
    /// Kafka: the partition of each source number (`PartitionPlan` index);
    /// empty: the source number is the partition.
    public var partitionOfSource: [Int32] = []
    public let usesMessageKey: Bool
    /// Reads `--partition-field` from a file line.
    let partitionDecoder: EventDecoder?

    struct Stored {
        var bytes: [UInt8]
        var messageKey: [UInt8]?
        var messageTimestamp: Int64
        var ts: Int64
        var line: Int
        var source: Int32
        var offset: Int64
    }
    var events: [Stored] = []
    var keyIndex: [[UInt8]: Int] = [:]
    var keys: [[UInt8]] = []
    /// Per key: per partition, its events' indices in arrival order.
    var partsOfKey: [[Int32: [Int]]] = []
    var lineNumber = 0
    var scratch = JSONWriter(capacity: 4096)

    public init(topology: Topology, emit: EmitMode, labels: LabelSet? = nil, partitionField: FieldPath? = nil,
                binary: BinarySource? = nil) {
        engine = FeatureEngine(topology: topology, expectedKeys: 1024, binary: binary)
        self.emit = emit
        self.labels = labels
        if case .messageKey = topology.key { usesMessageKey = true } else { usesMessageKey = false }
        partitionDecoder = partitionField.map { f in
            let t = Topology(
                name: "partition", source: SourceConfig(brokers: "", topics: [], group: ""),
                key: .field(f), time: .messageTimestamp, allowedLatenessMs: 0, features: [],
                sink: SinkConfig(redisURL: "", keyPrefix: "", ttlMs: 0), deadLetter: DeadLetterConfig(topic: ""),
                maxEventBytes: topology.maxEventBytes)
            return EventDecoder(topology: t, fields: FeatureEngine.fieldTable(of: t))
        }
    }

    /// The output columns, as `ReplaySession.columns`.
    public var columns: [String] {
        let features = engine.topology.outputColumns
        if let labels { return labels.fieldNames() + features }
        return emit == .rows ? ["key", "ts"] + features : ["key", "key_time"] + features
    }

    /// The partition of a file line: `partitionField`'s integer value, else 0.
    func partition(ofLine message: UnsafeRawBufferPointer) -> Int32 {
        guard let d = partitionDecoder, d.decode(message) == nil else { return 0 }
        let s = d.field(0)
        guard s.kind == .number, s.number.isFinite, s.number == s.number.rounded(.towardZero),
              s.number >= 0, s.number <= Double(Int32.max) else { return 0 }
        return Int32(s.number)
    }

    /// A file line (arrival order is line order).
    public func consume(_ message: UnsafeRawBufferPointer, into out: inout JSONWriter) {
        lineNumber += 1
        if let reason = engine.decoder.decode(message) {
            summary.invalid[reason, default: 0] += 1
            onReject?(lineNumber, reason, message)
            return
        }
        let p = partition(ofLine: message)
        store(Stored(bytes: Array(message), messageKey: nil, messageTimestamp: 0, ts: engine.decoder.timestamp,
                     line: lineNumber, source: -1, offset: -1), partition: p)
    }

    /// A Kafka message; `source` is its `PartitionPlan` index.
    public func consume(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer?, timestampMs: Int64,
                        source: Int32, offset: Int64, into out: inout JSONWriter) {
        if let reason = engine.decoder.decode(message, messageKey: usesMessageKey ? key : nil, messageTimestamp: timestampMs) {
            summary.invalid[reason, default: 0] += 1
            onKafkaReject?(source, offset, reason, message)
            return
        }
        let p = Int(source) < partitionOfSource.count ? partitionOfSource[Int(source)] : source
        store(Stored(bytes: Array(message), messageKey: usesMessageKey ? key.map { Array($0) } : nil,
                     messageTimestamp: timestampMs, ts: engine.decoder.timestamp, line: 0, source: source, offset: offset),
              partition: p)
    }

    func store(_ e: Stored, partition p: Int32) {
        let key = Array(engine.decoder.key)
        let k: Int
        if let i = keyIndex[key] { k = i } else {
            k = keys.count
            keyIndex[key] = k
            keys.append(key)
            partsOfKey.append([:])
        }
        partsOfKey[k][p, default: []].append(events.count)
        events.append(e)
    }

    /// Decodes stored event `i` again (into the engine's decoder).
    func redecode(_ i: Int) {
        let e = events[i]
        let r: RejectReason? = e.bytes.withUnsafeBytes { b in
            if let mk = e.messageKey {
                return mk.withUnsafeBytes { engine.decoder.decode(b, messageKey: $0, messageTimestamp: e.messageTimestamp) }
            }
            return engine.decoder.decode(b, messageKey: nil, messageTimestamp: e.messageTimestamp)
        }
        precondition(r == nil, "a stored event decodes again")
    }

    /// A fresh empty slot for (key, partition, role).
    func freshSlot(_ key: [UInt8], _ p: Int32, _ role: UInt8) -> Int32 {
        var partKey = key
        partKey.append(0xFF)
        withUnsafeBytes(of: p.littleEndian) { partKey.append(contentsOf: $0) }
        partKey.append(role)
        return partKey.withUnsafeBytes { k in
            let h = hashKey(k)
            let s = engine.store.lookup(k, hash: h)
            if s >= 0 { engine.store.remove(s) }
            return engine.insertEmpty(k, hash: h)
        }
    }

    func apply(_ i: Int, to slot: Int32) {
        redecode(i)
        engine.apply(slot, from: engine.decoder)
    }

    func blobCopy(_ slot: Int32) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: engine.store.blob(slot), count: engine.store.length(slot)))
    }

    /// Works through every key and writes rows, final lines or label rows.
    public func finish(to output: OutputFile) throws(ReplayError) {
        var labelsOfKey: [[UInt8]: [Int]] = [:]
        if let labels { for i in 0..<labels.count { labelsOfKey[labels.keys[i], default: []].append(i) } }
        let lateness = engine.topology.allowedLatenessMs
        for k in keys.indices {
            let key = keys[k]
            let ps = partsOfKey[k].keys.sorted()
            // Lateness per part: its own K.
            var accepted: [Int32: [Int]] = [:]
            for p in ps {
                let list = acceptedEvents(partsOfKey[k][p]!, lateness: lateness)
                accepted[p] = list
                summary.accepted += list.count
            }

            // Each part's own pass: its state before each accepted event
            // (rows), and its final state.
            var requests: [(t: Int64, part: Int32, seq: Int, own: [UInt8])] = []
            var finals: [Int32: [UInt8]] = [:]
            for p in ps {
                let slot = freshSlot(key, p, 0)
                for i in accepted[p]! {
                    if emit == .rows && labels == nil { requests.append((events[i].ts, p, i, blobCopy(slot))) }
                    apply(i, to: slot)
                }
                finals[p] = blobCopy(slot)
                engine.store.remove(slot)
            }

            if labels == nil && emit == .final {
                let parts = ps.map { p in (p, finals[p]!) }
                let merged = merge(key, parts)
                merged.withUnsafeBytes { b in
                    let kt = b.baseAddress!.loadUnaligned(fromByteOffset: 2 + key.count, as: Int64.self)
                    output.writer.raw("{\"key\":")
                    key.withUnsafeBytes { output.writer.string($0) }
                    output.writer.raw(",\"key_time\":")
                    output.writer.int(kt)
                    output.writer.raw(UInt8(ascii: ","))
                    engine.writeFeatures(blob: b.baseAddress!, at: kt, into: &output.writer)
                    output.writer.raw("}\n")
                }
                try output.flushIfNeeded()
                continue
            }

            // Labels of this key: part -1, every part read at T.
            let myLabels = labelsOfKey.removeValue(forKey: key) ?? []
            for l in myLabels { requests.append((labels!.times[l], -1, l, [])) }
            requests.sort { ($0.t, $0.part == -1 ? 1 : 0, $0.seq) < ($1.t, $1.part == -1 ? 1 : 0, $1.seq) }

            // Every part at T: its accepted events before its first one with ts > T.
            var atSlot: [Int32: Int32] = [:]
            var next: [Int32: Int] = [:]
            for p in ps { atSlot[p] = freshSlot(key, p, 1); next[p] = 0 }
            var rows: [(seq: Int, bytes: [UInt8])] = []
            for r in requests {
                for p in ps {
                    let list = accepted[p]!
                    var j = next[p]!
                    while j < list.count, events[list[j]].ts <= r.t { apply(list[j], to: atSlot[p]!); j += 1 }
                    next[p] = j
                }
                var parts: [(Int32, [UInt8])] = []
                for p in ps {
                    if p == r.part { parts.append((p, r.own)) } else { parts.append((p, blobCopy(atSlot[p]!))) }
                }
                let merged = merge(key, parts)
                scratch.reset()
                if r.part >= 0 {
                    scratch.raw("{\"key\":")
                    key.withUnsafeBytes { scratch.string($0) }
                    scratch.raw(",\"ts\":")
                    scratch.int(r.t)
                    scratch.raw(UInt8(ascii: ","))
                    merged.withUnsafeBytes { engine.writeFeatures(blob: $0.baseAddress!, at: r.t, into: &scratch) }
                    scratch.raw("}\n")
                    rows.append((r.seq, scratch.bytes))
                } else {
                    merged.withUnsafeBytes { engine.writeFeatures(blob: $0.baseAddress!, at: r.t, into: &scratch) }
                    labels!.results[r.seq] = scratch.bytes
                }
            }
            for p in ps { engine.store.remove(atSlot[p]!) }
            rows.sort { $0.seq < $1.seq }
            for row in rows {
                output.writer.raw(row.bytes)
                try output.flushIfNeeded()
            }
        }
        summary.keys = keys.count
        if let labels {
            // Label keys without events: the empty state.
            for (_, list) in labelsOfKey {
                for l in list {
                    scratch.reset()
                    engine.writeFeatures(-1, at: labels.times[l], into: &scratch)
                    labels.results[l] = scratch.bytes
                }
            }
            try labels.write(to: output)
        }
    }

    func merge(_ key: [UInt8], _ parts: [(Int32, [UInt8])]) -> [UInt8] {
        engine.mergeParts(key: key, parts)
    }

    /// The events of one part (in arrival order) that are not late against
    /// the part's own key time; late ones are counted and dead-lettered.
    func acceptedEvents(_ part: [Int], lateness: Int64) -> [Int] {
        var kTime: Int64? = nil
        var list: [Int] = []
        list.reserveCapacity(part.count)
        for i in part {
            let e = events[i]
            if let kt = kTime, e.ts < kt - lateness {
                summary.late += 1
                e.bytes.withUnsafeBytes { b in
                    if e.source >= 0 { onKafkaReject?(e.source, e.offset, .late, b) } else { onReject?(e.line, .late, b) }
                }
                continue
            }
            kTime = max(kTime ?? e.ts, e.ts)
            list.append(i)
        }
        return list
    }

    /// One part's final state, for `RedisBackfill.writeParts`.
    public struct FinalPart {
        public var key: [UInt8]
        /// The Kafka source number (`PartitionPlan` index) and offset of
        /// the part's last accepted event (-1 and -1 for files).
        public var source: Int32
        public var offset: Int64
        /// The part's partition (files: the `--partition-field` value) and
        /// the line of its last accepted event over all inputs (files).
        public var partition: Int32
        public var line: Int
        /// The part's state blob, with `key` in its header.
        public var blob: [UInt8]
    }

    /// Every (key, partition) part's final state; late and invalid events
    /// are counted as `finish` counts them.
    public func finalParts() -> [FinalPart] {
        var out: [FinalPart] = []
        let lateness = engine.topology.allowedLatenessMs
        for k in keys.indices {
            let key = keys[k]
            for p in partsOfKey[k].keys.sorted() {
                let slot = freshSlot(key, p, 0)
                let list = acceptedEvents(partsOfKey[k][p]!, lateness: lateness)
                summary.accepted += list.count
                for i in list { apply(i, to: slot) }
                let last = list.last!  // a part's first event is never late
                var blob: [UInt8] = []
                key.withUnsafeBytes { k in
                    PartKey.rewriteHeader(UnsafeRawBufferPointer(start: engine.store.blob(slot), count: engine.store.length(slot)),
                                          key: k) { blob.append(contentsOf: $0) }
                }
                engine.store.remove(slot)
                out.append(FinalPart(key: key, source: events[last].source, offset: events[last].offset,
                                     partition: p, line: events[last].line, blob: blob))
            }
        }
        summary.keys = keys.count
        return out
    }

    public func setSeconds(_ s: Double) { summary.seconds = s }
}
