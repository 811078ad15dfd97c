/// Messages copied into one buffer by a reading thread (the worker's ingest,
/// replay's Kafka poller) and applied by another, so the client library's
/// messages are freed where they were read. Owned by one thread at a time:
/// whoever the ring that carries it handed it to last.
///
/// `Info` is what the reading side tells the applying side besides the
/// records (the worker's control and hand-over time, replay's progress).
public final class RecordBatch<Info> {
    /// One message: where it came from and where its bytes are.
    public struct Record {
        /// Which input it came from, as the reading side numbers them (the
        /// worker: the topic index; replay: the partition plan's index).
        public var source: Int32
        public var partition: Int32
        public var offset: Int64
        public var timestampMs: Int64
        /// The value's first byte in the buffer; the key follows the value.
        public var start: Int
        public var valueLength: Int32
        /// -1: the message has no key.
        public var keyLength: Int32

        @inlinable
        public init(source: Int32, partition: Int32, offset: Int64, timestampMs: Int64, start: Int,
                    valueLength: Int32, keyLength: Int32) {
            self.source = source
            self.partition = partition
            self.offset = offset
            self.timestampMs = timestampMs
            self.start = start
            self.valueLength = valueLength
            self.keyLength = keyLength
        }
    }

    // Stored under other names so the inlinable append may set them and
    // users only read them.
    @usableFromInline var _records: UnsafeMutablePointer<Record>
    @usableFromInline var _recordCapacity: Int
    @usableFromInline var _count = 0
    @usableFromInline var _bytes: UnsafeMutableRawPointer
    @usableFromInline var _byteCapacity: Int
    @usableFromInline var _byteCount = 0
    public var info: Info

    @inlinable public var records: UnsafeMutablePointer<Record> { _records }
    @inlinable public var recordCapacity: Int { _recordCapacity }
    @inlinable public var count: Int { _count }
    @inlinable public var bytes: UnsafeMutableRawPointer { _bytes }

    public init(recordCapacity: Int, byteCapacity: Int, info: Info) {
        _recordCapacity = max(recordCapacity, 1)
        _byteCapacity = max(byteCapacity, 1)
        _records = .allocate(capacity: _recordCapacity)
        _bytes = .allocate(byteCount: _byteCapacity, alignment: 16)
        self.info = info
    }

    deinit {
        _records.deallocate()
        _bytes.deallocate()
    }

    public var isFull: Bool { count >= recordCapacity }

    /// Forgets the records (and sets `info`).
    public func reset(_ info: Info) {
        _count = 0
        _byteCount = 0
        self.info = info
    }

    /// Copies one message in; `key` nil: it has none. Grows for a large
    /// message or past `recordCapacity`.
    @inlinable @inline(__always)
    public func append(source: Int32, partition: Int32, offset: Int64, timestampMs: Int64,
                       key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?) {
        let valueLength = value?.count ?? 0, keyLength = key?.count ?? -1
        let need = valueLength + max(keyLength, 0)
        if _byteCount + need > _byteCapacity || _count == _recordCapacity { grow(need) }
        if valueLength > 0 { (_bytes + _byteCount).copyMemory(from: value!.baseAddress!, byteCount: valueLength) }
        if keyLength > 0 { (_bytes + _byteCount + valueLength).copyMemory(from: key!.baseAddress!, byteCount: keyLength) }
        (_records + _count).initialize(to: Record(
            source: source, partition: partition, offset: offset, timestampMs: timestampMs,
            start: _byteCount, valueLength: Int32(valueLength), keyLength: Int32(keyLength)))
        _count += 1
        _byteCount += need
    }

    @usableFromInline
    func grow(_ need: Int) {
        if _byteCount + need > _byteCapacity {
            _byteCapacity = max(_byteCapacity * 2, _byteCount + need)
            let larger = UnsafeMutableRawPointer.allocate(byteCount: _byteCapacity, alignment: 16)
            larger.copyMemory(from: _bytes, byteCount: _byteCount)
            _bytes.deallocate()
            _bytes = larger
        }
        if _count == _recordCapacity {
            _recordCapacity *= 2
            let larger = UnsafeMutablePointer<Record>.allocate(capacity: _recordCapacity)
            larger.moveInitialize(from: _records, count: _count)
            _records.deallocate()
            _records = larger
        }
    }

    @inlinable @inline(__always)
    public func value(_ r: Record) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes + r.start, count: Int(r.valueLength))
    }

    @inlinable @inline(__always)
    public func key(_ r: Record) -> UnsafeRawBufferPointer? {
        r.keyLength < 0 ? nil : UnsafeRawBufferPointer(start: bytes + r.start + Int(r.valueLength), count: Int(r.keyLength))
    }
}
