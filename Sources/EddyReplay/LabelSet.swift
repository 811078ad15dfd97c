import EddyCore

/// Label rows `(key, ts)` for a point-in-time training set. Each row gets
/// the features read at `T = ts` from the key's state holding every accepted
/// event that arrived before the first event with `ts > T` (SEMANTICS.md).
public final class LabelSet {
    /// The label lines as given; each output row extends its object.
    let lines: [[UInt8]]
    let keys: [[UInt8]]
    let times: [Int64]
    /// Filled when attached: label indices grouped by slot, ascending `T`.
    var order: [Int] = []
    var cursor: [Int32: (next: Int, end: Int)] = [:]
    var results: [[UInt8]]
    var labelSlots: Set<Int32> = []
    var scratch = JSONWriter(capacity: 4096)

    /// Parses JSON Lines of objects with `key` (string or number) and `ts`
    /// (epoch milliseconds).
    public init(path: String) throws {
        var lines: [[UInt8]] = [], keys: [[UInt8]] = [], times: [Int64] = []
        let topology = Topology(
            name: "labels", source: SourceConfig(brokers: "", topics: [], group: ""),
            key: .field(FieldPath(["key"])), time: .field(FieldPath(["ts"]), .milliseconds),
            allowedLatenessMs: 0, features: [], sink: SinkConfig(redisURL: "", keyPrefix: "", ttlMs: 0),
            deadLetter: DeadLetterConfig(topic: ""))
        let decoder = EventDecoder(topology: topology, fields: FieldTable(paths: FeatureEngine.fieldPaths(of: topology)))
        let reader = try LineReader(path: path)
        var n = 0
        try reader.forEachLine { line in
            n += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }
            if let reason = decoder.decode(line) {
                throw ReplayError.badLabel(line: n, "\(reason.explanation); each line must be {\"key\": ..., \"ts\": <epoch ms>}")
            }
            var trimmed = Array(line)
            while let last = trimmed.last, last == 0x20 || last == 0x09 { trimmed.removeLast() }
            lines.append(trimmed)
            keys.append(Array(decoder.key))
            times.append(decoder.timestamp)
            return true
        }
        self.lines = lines
        self.keys = keys
        self.times = times
        self.results = Array(repeating: [], count: lines.count)
    }

    public var count: Int { lines.count }

    /// Every member name of the label objects, in order of first
    /// appearance (the label columns of a CSV header).
    public func fieldNames() -> [String] {
        var names: [String] = []
        var seen: Set<String> = []
        for line in lines {
            _ = line.withUnsafeBytes { b in
                JSONMembers.forEach(b) { name, _ in
                    let n = String(decoding: name, as: UTF8.self)
                    if seen.insert(n).inserted { names.append(n) }
                }
            }
        }
        return names
    }

    /// With `key: {hash: ...}`: each label's entity key (its key's HMAC), written in place of
    /// the raw key unless `rawKeys`.
    var hashedKeys: [[UInt8]]?

    /// Creates each label key's slot, so label keys are found by slot alone. Label files hold
    /// raw keys: with `key: {hash: ...}` they are hashed as the events' keys are.
    func attach(to engine: FeatureEngine, rawKeys: Bool = false) {
        var entityKeys = keys
        if let hashing = engine.topology.keyHashing {
            let hasher = KeyHasher(hashing)
            entityKeys = keys.map { key in
                var out = [UInt8](repeating: 0, count: KeyHashing.hexLength)
                key.withUnsafeBytes { k in out.withUnsafeMutableBufferPointer { _ = hasher.hash(k, into: $0.baseAddress!) } }
                return out
            }
            if !rawKeys { hashedKeys = entityKeys }
        }
        var bySlot: [Int32: [Int]] = [:]
        for i in 0..<entityKeys.count {
            let slot = entityKeys[i].withUnsafeBytes { k in
                let h = hashKey(k)
                let s = engine.store.lookup(k, hash: h)
                return s >= 0 ? s : engine.insertEmpty(k, hash: h)
            }
            bySlot[slot, default: []].append(i)
            labelSlots.insert(slot)
        }
        for (slot, list) in bySlot {
            let sorted = list.sorted { (times[$0], $0) < (times[$1], $1) }
            cursor[slot] = (order.count, order.count + sorted.count)
            order.append(contentsOf: sorted)
        }
    }

    /// Before an accepted event at `ts` is applied: rows for labels with `T < ts`.
    @inline(__always)
    func emitBefore(slot: Int32, ts: Int64, engine: FeatureEngine) {
        guard var c = cursor[slot], c.next < c.end else { return }
        while c.next < c.end, times[order[c.next]] < ts {
            emit(order[c.next], slot: slot, engine: engine)
            c.next += 1
        }
        cursor[slot] = c
    }

    func emitRemaining(engine: FeatureEngine) {
        for (slot, c) in cursor {
            for i in c.next..<c.end { emit(order[i], slot: slot, engine: engine) }
            cursor[slot] = (c.end, c.end)
        }
    }

    func emit(_ label: Int, slot: Int32, engine: FeatureEngine) {
        scratch.reset()
        engine.writeFeatures(slot, at: times[label], into: &scratch)
        results[label] = scratch.bytes
    }

    /// Label keys with no accepted event (not counted as replayed keys).
    func unseenKeys(engine: FeatureEngine) -> Int {
        labelSlots.filter { engine.keyTime($0) == nil }.count
    }

    /// Writes one row per label, in the labels file's order: the label
    /// object extended with the features.
    func write(to output: OutputFile) throws(ReplayError) {
        for i in 0..<lines.count {
            var line = lines[i]
            guard line.last == UInt8(ascii: "}") else { continue }
            if let hashedKeys { line = Self.replacingKey(line, with: hashedKeys[i]) }
            line.removeLast()
            output.writer.raw(line)
            let empty = line.reversed().first { $0 != 0x20 && $0 != 0x09 } == UInt8(ascii: "{")
            if !empty { output.writer.raw(UInt8(ascii: ",")) }
            output.writer.raw(results[i])
            output.writer.raw("}\n")
            try output.flushIfNeeded()
        }
    }

    /// The label object with its `key` member's value replaced by `key` (a JSON string).
    static func replacingKey(_ line: [UInt8], with key: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        let ok = line.withUnsafeBytes { text in
            JSONMembers.forEach(text) { name, range in
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                var w = JSONWriter(capacity: name.count + 3)
                w.string(name)
                out += w.bytes
                out.append(UInt8(ascii: ":"))
                if name.elementsEqual("key".utf8) {
                    var k = JSONWriter(capacity: key.count + 2)
                    key.withUnsafeBytes { k.string($0) }
                    out += k.bytes
                } else {
                    out += line[range]
                }
            }
        }
        out.append(UInt8(ascii: "}"))
        return ok ? out : line
    }
}
