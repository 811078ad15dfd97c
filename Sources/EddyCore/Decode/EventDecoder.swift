/// Turns one message into a key, an event time and the extracted fields,
/// or a `RejectReason`. One decoder per thread; it reuses its buffers, so a
/// decode allocates nothing.
///
/// The key bytes and field values stay valid until the next `decode`.
public final class EventDecoder {
    public let fields: FieldTable
    let trie: TrieView
    let slots: UnsafeMutablePointer<FieldSlot>
    var scratch: UnsafeMutablePointer<UInt8>
    var scratchCapacity: Int
    let keySource: KeySource
    let keyField: Int
    /// A composite key's field indices (none otherwise) and the buffer its
    /// key text is built in (escaping at most doubles each part).
    let compositeFields: [Int]
    /// Whether the key is composite (a plain flag: the message-key path
    /// tests only it).
    let hasCompositeKey: Bool
    let compositeKey: UnsafeMutablePointer<UInt8>
    let timeSource: TimeSource
    let timeField: Int
    let timeUnit: TimeUnit
    let maxEventBytes: Int
    /// Avro or Protobuf instead of JSON.
    public let binary: BinarySource?
    /// Per field: whether a binary number needs its text (key, last_n).
    let needsText: UnsafeMutablePointer<Bool>
    /// A Protobuf message-index path being read.
    let indexPath: UnsafeMutablePointer<Int32>
    /// The last schema id's plan (Avro, or Protobuf's first message).
    var lastSchemaID: UInt32 = .max
    var lastPlan: Unmanaged<BinaryPlan>?

    /// The current event's buffer (valid during and after `decode`).
    var buffer: UnsafePointer<UInt8>
    /// The current event's entity key: the raw key, or its hex HMAC (`keyHashing`).
    public private(set) var key: UnsafeRawBufferPointer
    /// The current event's key as the event holds it (== `key` without hashing).
    public private(set) var rawKey: UnsafeRawBufferPointer
    /// With `key: {hash: ...}`: the HMAC context and the buffer `key` points into.
    let keyHasher: KeyHasher?
    let hashedKey: UnsafeMutablePointer<UInt8>
    /// The current event's time, epoch milliseconds.
    public private(set) var timestamp: Int64 = 0
    /// `hashKey(key)`, computed once per event.
    public private(set) var keyHash: UInt64 = 0
    /// The worker's `parts: per_partition` entities keep one state per
    /// (key, source partition): with `keysParts`, `key` (and `keyHash`) is
    /// the entity key followed by `PartKey` naming `part`, which the caller
    /// sets before each `decode`. Off everywhere else.
    public let keysParts: Bool
    public var part: (topicIndex: Int32, partition: Int32) = (0, 0)
    let partKey: UnsafeMutablePointer<UInt8>

    /// - Parameter extraPaths: fields to extract besides those the topology
    ///   uses (none needed by the core itself).
    public init(topology: Topology, fields: FieldTable, binary: BinarySource? = nil, keysParts: Bool = false) {
        self.keysParts = keysParts
        self.partKey = .allocate(capacity: keysParts ? 2 * maxKeyBytes + PartKey.suffixLength : 1)
        self.fields = fields
        self.trie = TrieView(fields)
        self.slots = .allocate(capacity: max(fields.paths.count, 1))
        self.slots.initialize(repeating: FieldSlot(), count: max(fields.paths.count, 1))
        self.scratchCapacity = 4096
        self.scratch = .allocate(capacity: scratchCapacity)
        self.keySource = topology.key
        self.timeSource = topology.time
        if case .field(let p) = topology.key { keyField = fields.index(of: p)! } else { keyField = -1 }
        if case .fields(let ps) = topology.key { compositeFields = ps.map { fields.index(of: $0)! } } else { compositeFields = [] }
        self.hasCompositeKey = !compositeFields.isEmpty
        self.compositeKey = .allocate(capacity: compositeFields.isEmpty ? 1 : 2 * maxKeyBytes + compositeFields.count + 2)
        if case .field(let p, let u) = topology.time {
            timeField = fields.index(of: p)!
            timeUnit = u
        } else {
            timeField = -1
            timeUnit = .milliseconds
        }
        self.maxEventBytes = topology.maxEventBytes
        self.binary = binary
        if let b = binary { precondition((b.table?.paths ?? b.fixed!.paths) == fields.paths, "plans compiled for other paths") }
        self.needsText = .allocate(capacity: max(fields.paths.count, 1))
        self.needsText.initialize(repeating: false, count: max(fields.paths.count, 1))
        if keyField >= 0 { needsText[keyField] = true }
        for i in compositeFields { needsText[i] = true }
        for f in topology.features {
            if case .lastN(let p, _, _) = f.kind, let i = fields.index(of: p) { needsText[i] = true }
        }
        self.indexPath = .allocate(capacity: 16)
        self.buffer = UnsafePointer(scratch)
        self.key = UnsafeRawBufferPointer(start: nil, count: 0)
        self.rawKey = self.key
        self.keyHasher = topology.keyHashing.map { KeyHasher($0) }
        self.hashedKey = .allocate(capacity: KeyHashing.hexLength)
    }

    deinit {
        trie.deallocate()
        slots.deinitialize(count: max(fields.paths.count, 1))
        slots.deallocate()
        scratch.deallocate()
        needsText.deallocate()
        indexPath.deallocate()
        hashedKey.deallocate()
        compositeKey.deallocate()
        partKey.deallocate()
    }

    /// Decodes one message.
    /// - Parameters:
    ///   - message: the message value (JSON).
    ///   - messageKey: the Kafka message key, for `key: kafka`.
    ///   - messageTimestamp: the Kafka timestamp, for `time: kafka`.
    /// - Returns: nil when the event is readable, else why not.
    @inline(__always)
    public func decode(
        _ message: UnsafeRawBufferPointer, messageKey: UnsafeRawBufferPointer? = nil, messageTimestamp: Int64 = 0
    ) -> RejectReason? {
        guard message.count <= maxEventBytes else { return .tooLarge }
        if let b = binary { return decodeBinary(b, message, messageKey: messageKey, messageTimestamp: messageTimestamp) }
        guard let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count > 0 else {
            return .notJSON
        }
        if message.count > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = max(message.count, scratchCapacity * 2)
            scratch = .allocate(capacity: scratchCapacity)
        }
        let n = fields.paths.count
        for f in 0..<n { slots[f].kind = .missing }
        buffer = base
        var scanner = JSONScanner(base, message.count, trie: trie, slots: slots, scratch: scratch)
        do { try scanner.scanDocument() } catch { return error }
        return finish(messageKey: messageKey, messageTimestamp: messageTimestamp)
    }

    // MARK: Keeping a decoded event

    /// The bytes `save(into:)` writes.
    public var savedEventSize: Int { 16 + fields.paths.count * MemoryLayout<FieldSlot>.stride }

    /// Whether this topology's events can be saved at all (JSON, a key from
    /// one field, no HMAC or part key); then `save` still refuses an event
    /// with a string unescaped into scratch.
    public var canSaveEvents: Bool { binary == nil && keyField >= 0 && keyHasher == nil && !keysParts }

    /// Saves the decoded event so that `restore(from:message:)` can make a
    /// decoder of the same topology hold it again without scanning it: the
    /// worker applies an event whose key it must first load from Redis
    /// after the load, and decoding it again cost ~1.5k instructions (on
    /// realistic traffic half the events). Only when every field and the
    /// key lie in the message's own bytes: JSON with no string unescaped
    /// into scratch, a key from one field (no HMAC, composite or part key).
    /// Returns false otherwise; then the caller decodes the message again.
    public func save(into p: UnsafeMutableRawPointer) -> Bool {
        guard canSaveEvents else { return false }
        let n = fields.paths.count
        for f in 0..<n where slots[f].inScratch { return false }
        p.storeBytes(of: timestamp, as: Int64.self)
        p.storeBytes(of: keyHash, toByteOffset: 8, as: UInt64.self)
        (p + 16).copyMemory(from: slots, byteCount: n * MemoryLayout<FieldSlot>.stride)
        return true
    }

    /// Makes this decoder hold the event that `save(into:)` kept at `p`, as
    /// decoding `message` (the same bytes, still in place) would.
    public func restore(from p: UnsafeRawPointer, message: UnsafeRawBufferPointer) {
        let n = fields.paths.count
        UnsafeMutableRawPointer(slots).copyMemory(from: p + 16, byteCount: n * MemoryLayout<FieldSlot>.stride)
        buffer = message.baseAddress!.assumingMemoryBound(to: UInt8.self)
        timestamp = p.loadUnaligned(as: Int64.self)
        keyHash = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let k = slots[keyField]
        key = UnsafeRawBufferPointer(start: bytes(of: k), count: Int(k.length))
        rawKey = key
    }

    /// The key and the event time from the extracted fields.
    @inline(__always)
    func finish(messageKey: UnsafeRawBufferPointer?, messageTimestamp: Int64) -> RejectReason? {
        // Key.
        if keyField >= 0 {
            let s = slots[keyField]
            switch s.kind {
            case .missing, .null: return .missingKey
            case .string, .number:
                guard s.length > 0 else { return .badKey }
                guard s.length <= maxKeyBytes else { return .keyTooLong }
                key = UnsafeRawBufferPointer(start: bytes(of: s), count: Int(s.length))
            default: return .badKey
            }
        } else if hasCompositeKey {
            if let r = buildCompositeKey() { return r }
        } else {
            guard let mk = messageKey, mk.count > 0 else { return .missingKey }
            guard mk.count <= maxKeyBytes else { return .keyTooLong }
            key = mk
        }

        rawKey = key
        if let keyHasher {
            guard keyHasher.hash(key, into: hashedKey) else { return .badKey }
            key = UnsafeRawBufferPointer(start: hashedKey, count: KeyHashing.hexLength)
        }
        if keysParts {
            key = PartKey.make(entityKey: key, topicIndex: part.topicIndex, partition: part.partition, in: partKey)
        }
        keyHash = hashKey(key)

        // Event time.
        if timeField >= 0 {
            let s = slots[timeField]
            switch s.kind {
            case .missing, .null: return .missingTime
            case .number:
                guard let t = binary == nil ? numberToMillis(s) : binaryNumberToMillis(s) else { return .badTime }
                timestamp = t
            case .string where timeUnit == .rfc3339:
                guard let t = parseRFC3339(bytes(of: s), Int(s.length)) else { return .badTime }
                timestamp = t
            default: return .badTime
            }
        } else {
            timestamp = messageTimestamp
        }
        return nil
    }

    /// A composite key's text: each part as a single key's text would be,
    /// `\` and `|` escaped with `\`, joined by `|`. Every part must be
    /// there and be a non-empty string or number; the text at most
    /// `maxKeyBytes`.
    @inline(never)
    func buildCompositeKey() -> RejectReason? {
        var n = 0
        for (i, f) in compositeFields.enumerated() {
            let s = slots[f]
            switch s.kind {
            case .missing, .null: return .missingKey
            case .string, .number:
                guard s.length > 0 else { return .badKey }
                guard n + Int(s.length) < maxKeyBytes else { return .keyTooLong }
                if i > 0 { compositeKey[n] = UInt8(ascii: "|"); n += 1 }
                CompositeKey.appendEscaped(UnsafeRawBufferPointer(start: bytes(of: s), count: Int(s.length)), to: compositeKey, at: &n)
                guard n <= maxKeyBytes else { return .keyTooLong }
            default: return .badKey
            }
        }
        key = UnsafeRawBufferPointer(start: compositeKey, count: n)
        return nil
    }

    /// A binary format's number (no text): logical times as they are,
    /// others in the topology's unit.
    @inline(__always)
    func binaryNumberToMillis(_ s: FieldSlot) -> Int64? {
        guard s.number.isFinite else { return nil }
        if s.isTime { return Int64(s.number) }
        switch timeUnit {
        case .milliseconds:
            guard abs(s.number) < 9e15 else { return nil }
            return Int64(s.number.rounded(.down))
        case .seconds:
            guard abs(s.number) < 9e12 else { return nil }
            return Int64((s.number * 1000).rounded(.down))
        case .rfc3339:
            return nil
        }
    }

    /// Decodes one Avro or Protobuf message (see `BinarySource`).
    func decodeBinary(
        _ b: BinarySource, _ message: UnsafeRawBufferPointer, messageKey: UnsafeRawBufferPointer?, messageTimestamp: Int64
    ) -> RejectReason? {
        guard let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count > 0 else {
            return .truncated
        }
        let plan: BinaryPlan
        var start = 0
        if let fixed = b.fixed {
            plan = fixed
        } else {
            guard base[0] == 0 else { return .badMagic }
            guard message.count >= 5 else { return .truncated }
            let id = UInt32(base[1]) << 24 | UInt32(base[2]) << 16 | UInt32(base[3]) << 8 | UInt32(base[4])
            start = 5
            var first = true
            if b.format == .protobuf {
                // Message indexes: a zigzag varint count, then the indexes;
                // a lone 0 means [0], the first message.
                var i = 5
                var n = 0
                do {
                    let count = try readZigzag(base, &i, message.count)
                    guard count >= 0, count <= 16 else { return .truncated }
                    if count == 0 { indexPath[0] = 0; n = 1 } else {
                        for k in 0..<Int(count) { indexPath[k] = Int32(truncatingIfNeeded: try readZigzag(base, &i, message.count)) }
                        n = Int(count)
                    }
                } catch { return error }
                start = i
                first = n == 1 && indexPath[0] == 0
                if !first {
                    guard let entry = b.table!.entry(id) else { return .unknownSchema }
                    guard let p = entry.plan(for: UnsafeBufferPointer(start: indexPath, count: n)) else { return .unknownSchema }
                    plan = p
                    return run(plan, base, start, message.count, messageKey, messageTimestamp)
                }
            }
            if id == lastSchemaID, let p = lastPlan {
                plan = p.takeUnretainedValue()
            } else {
                guard let entry = b.table!.entry(id), !entry.unknown else { return .unknownSchema }
                guard let p = entry.first else { return .unknownSchema }
                plan = p
                lastSchemaID = id
                lastPlan = .passUnretained(p)
            }
        }
        return run(plan, base, start, message.count, messageKey, messageTimestamp)
    }

    @inline(__always)
    func run(_ plan: BinaryPlan, _ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int,
             _ messageKey: UnsafeRawBufferPointer?, _ messageTimestamp: Int64) -> RejectReason? {
        if plan.mismatch { return .schemaMismatch }
        if plan.maxTextBytes > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = plan.maxTextBytes
            scratch = .allocate(capacity: scratchCapacity)
        }
        let n = fields.paths.count
        for f in 0..<n { slots[f].kind = .missing }
        buffer = base
        var r = BinaryRun(plan: plan, p: base, start: start, end: end, slots: slots, scratch: scratch, needsText: needsText)
        do {
            if plan.format == .avro { try r.avro(plan.avroRoot) } else { try r.protoMessage(plan.protoRoot, until: end) }
        } catch { return error }
        return finish(messageKey: messageKey, messageTimestamp: messageTimestamp)
    }

    @inline(__always)
    func numberToMillis(_ s: FieldSlot) -> Int64? {
        let p = buffer + Int(s.start)
        switch timeUnit {
        case .milliseconds:
            if let v = parseJSONInteger(p, Int(s.length)) { return v }
            guard s.number.isFinite, abs(s.number) < 9e15 else { return nil }
            return Int64(s.number.rounded(.down))
        case .seconds:
            if let v = parseJSONInteger(p, Int(s.length)), abs(v) < 9_000_000_000_000 { return v * 1000 }
            guard s.number.isFinite, abs(s.number) < 9e12 else { return nil }
            return Int64((s.number * 1000).rounded(.down))
        case .rfc3339:
            return nil
        }
    }

    /// The bytes of a string, number or raw object/array field.
    @inline(__always)
    func bytes(of s: FieldSlot) -> UnsafePointer<UInt8> {
        s.inScratch ? UnsafePointer(scratch + Int(s.start)) : buffer + Int(s.start)
    }

    /// The extracted field at `index` for the current event.
    @inline(__always)
    public func field(_ index: Int) -> FieldSlot { slots[index] }

    /// The raw bytes of field `index` (string content unescaped, number text,
    /// object or array JSON text).
    @inline(__always)
    public func fieldBytes(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        let s = slots[index]
        return UnsafeBufferPointer(start: bytes(of: s), count: Int(s.length))
    }
}
