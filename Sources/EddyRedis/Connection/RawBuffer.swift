/// A growable array of trivial values in manually managed memory, owned uniquely.
///
/// Used for the reusable command buffers: appending is a bounds check plus `memcpy`, with
/// none of `Array`'s copy-on-write uniqueness checks; `removeAll()` keeps the capacity.
///
/// It has no `deinit`: its owner calls ``deallocate()`` exactly once (in ``RedisConnection``'s
/// `deinit`). A `deinit` on a non-copyable struct stored in a public type makes the Swift 6.3
/// optimizer assert ("inlining a resilient function into a fragile function") in release builds.
struct RawBuffer<Element: BitwiseCopyable>: ~Copyable {
    var base: UnsafeMutablePointer<Element>
    var count: Int
    var capacity: Int

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 16)
        base = .allocate(capacity: self.capacity)
        count = 0
    }

    /// Frees the memory; the buffer must not be used afterwards.
    mutating func deallocate() {
        base.deallocate()
        count = 0
        capacity = 0
    }

    /// Empties the buffer, keeping its memory.
    mutating func removeAll() {
        count = 0
    }

    /// Makes room for `extra` more elements.
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity {
            grow(to: count + extra)
        }
    }

    mutating func grow(to minimum: Int) {
        var newCapacity = capacity * 2
        while newCapacity < minimum { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        newBase.initialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    mutating func append(_ element: Element) {
        reserve(1)
        (base + count).initialize(to: element)
        count += 1
    }

    subscript(index: Int) -> Element {
        precondition(index >= 0 && index < count, "RawBuffer index out of range")
        return base[index]
    }
}

extension RawBuffer where Element == UInt8 {
    /// Appends raw bytes.
    mutating func append(bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    /// The bytes in `range`, valid while the buffer is not mutated.
    func bytes(in range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// All bytes, valid while the buffer is not mutated.
    var allBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count)
    }
}
