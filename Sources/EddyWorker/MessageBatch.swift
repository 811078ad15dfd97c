/// One consumed message inside a `MessageBatch`: where it came from and
/// where its bytes are in the batch's buffer.
struct MessageRecord {
    var topicIndex: Int32
    var partition: Int32
    var offset: Int64
    var timestampMs: Int64
    /// -1 when the message has no key.
    var keyStart: Int32
    var keyLength: Int32
    var valueStart: Int32
    var valueLength: Int32
}

/// What a batch asks of the shard besides its messages.
enum BatchControl: Sendable, Equatable {
    case none
    /// Flush everything applied so far, commit it, then forget the keys of
    /// these partitions (a revoke); `nil` keeps all keys.
    case barrier(id: Int, revoked: [PartitionID]?)
    /// Flush everything applied so far now, without waiting for the writer
    /// (the end of a catch-up wave).
    case flush
}

/// A topic index and partition, packed for cheap hashing.
struct PartitionID: Hashable, Sendable {
    var topicIndex: Int32
    var partition: Int32
}

/// Messages copied out of librdkafka by the ingest thread and handed to the
/// shard by index through a ring. Owned by exactly one thread at a time:
/// whoever popped its index last.
final class MessageBatch {
    private(set) var bytes: UnsafeMutableRawPointer
    private(set) var byteCapacity: Int
    private(set) var byteCount = 0
    private(set) var records: UnsafeMutablePointer<MessageRecord>
    let recordCapacity: Int
    private(set) var count = 0
    var control = BatchControl.none
    /// When ingest handed the batch to the shard (pipeline latency).
    var handedOverAt = ContinuousClock.now

    init(recordCapacity: Int, byteCapacity: Int) {
        self.recordCapacity = recordCapacity
        self.byteCapacity = byteCapacity
        bytes = .allocate(byteCount: byteCapacity, alignment: 16)
        records = .allocate(capacity: recordCapacity)
    }

    deinit {
        bytes.deallocate()
        records.deallocate()
    }

    var isFull: Bool { count == recordCapacity }

    func reset() {
        count = 0
        byteCount = 0
        control = .none
    }

    /// Copies one message in. Grows the byte buffer for a large message.
    func append(topicIndex: Int, partition: Int32, offset: Int64, timestampMs: Int64,
                key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?) {
        let need = (key?.count ?? 0) + (value?.count ?? 0)
        if byteCount + need > byteCapacity {
            var cap = byteCapacity * 2
            while byteCount + need > cap { cap *= 2 }
            let n = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16)
            n.copyMemory(from: bytes, byteCount: byteCount)
            bytes.deallocate()
            bytes = n
            byteCapacity = cap
        }
        var r = MessageRecord(topicIndex: Int32(topicIndex), partition: partition, offset: offset,
                              timestampMs: timestampMs, keyStart: -1, keyLength: 0, valueStart: 0, valueLength: 0)
        if let key, let base = key.baseAddress {
            r.keyStart = Int32(byteCount)
            r.keyLength = Int32(key.count)
            (bytes + byteCount).copyMemory(from: base, byteCount: key.count)
            byteCount += key.count
        }
        r.valueStart = Int32(byteCount)
        if let value, let base = value.baseAddress {
            r.valueLength = Int32(value.count)
            (bytes + byteCount).copyMemory(from: base, byteCount: value.count)
            byteCount += value.count
        }
        records[count] = r
        count += 1
    }

    @inline(__always)
    func value(_ r: MessageRecord) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes + Int(r.valueStart), count: Int(r.valueLength))
    }

    @inline(__always)
    func key(_ r: MessageRecord) -> UnsafeRawBufferPointer? {
        r.keyStart < 0 ? nil : UnsafeRawBufferPointer(start: bytes + Int(r.keyStart), count: Int(r.keyLength))
    }
}

/// A fixed set of objects handed between two threads by index. The array
/// never changes; each element is used by one thread at a time, as the
/// rings that carry the indices guarantee.
final class Pool<Element: AnyObject>: @unchecked Sendable {
    let items: [Element]
    init(_ items: [Element]) { self.items = items }
    subscript(i: Int) -> Element { items[i] }
    var count: Int { items.count }
}
