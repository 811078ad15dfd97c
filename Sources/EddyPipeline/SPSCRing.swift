//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import Atomics

/// A bounded, lock-free, single-producer single-consumer ring buffer.
///
/// Exactly one thread may act as the **producer** (``tryPush(_:)``,
/// ``push(contentsOf:)``, ``pushBlocking(_:timeout:)``,
/// ``pushBlocking(contentsOf:timeout:)``) and exactly one thread as the
/// **consumer** (``tryPop()``, ``pop(into:)``, ``popBlocking(timeout:)``,
/// ``popBlocking(into:timeout:)``) at any one time. ``count``, ``isEmpty`` and
/// ``capacity`` may be read from anywhere.
///
/// Elements are `BitwiseCopyable`, so slots are plain memory: pushing and
/// popping are copies, with no reference counting and no deinitialization.
///
/// ### Design
/// - Slots live in one allocation of ``capacity`` elements; capacity is a
///   power of two so an index maps to a slot with a mask.
/// - `head` (next slot to pop) and `tail` (next slot to push) are free-running
///   atomic counters, each written by one side only: the producer publishes a
///   slot with a *release* store of `tail`, the consumer observes it with an
///   *acquire* load, and symmetrically for `head`.
/// - Each side caches the last value it read of the other side's index and
///   only reloads it when the cached value says "full" (producer) or "empty"
///   (consumer), so the shared lines are touched rarely.
/// - `tail`, `head` and the two caches each sit on their own 128-byte-aligned
///   line to avoid false sharing.
/// - Blocking is layered on top with two ``Parker``s: the consumer parks on
///   ``consumerParker`` when empty, the producer on ``producerParker`` when
///   full. Every push/pop calls `unpark()` on the other side's parker, which
///   costs one full memory fence and takes no lock unless that side is
///   asleep. The fence is what makes wake-ups reliable; it is paid per call,
///   so prefer the batch operations on hot paths.
public final class SPSCRing<Element: BitwiseCopyable> {
    /// The number of elements the ring can hold (a power of two).
    public let capacity: Int

    /// `capacity - 1`; maps a free-running index to its slot.
    @usableFromInline
    let mask: Int

    /// `capacity` slots, written by the producer and read by the consumer.
    /// Always holds trivial values, so it is never deinitialized.
    @usableFromInline
    let slots: UnsafeMutablePointer<Element>

    /// Next index the producer writes. Written by the producer only.
    @usableFromInline
    let tail: UnsafeAtomic<Int>

    /// Next index the consumer reads. Written by the consumer only.
    @usableFromInline
    let head: UnsafeAtomic<Int>

    /// Producer-private: last value of `head` the producer loaded.
    @usableFromInline
    let producerCachedHead: UnsafeMutablePointer<Int>

    /// Consumer-private: last value of `tail` the consumer loaded.
    @usableFromInline
    let consumerCachedTail: UnsafeMutablePointer<Int>

    /// Where the consumer sleeps while the ring is empty; unparked by every
    /// push. Several rings may share one parker so a stage can wait on all of
    /// its inputs at once.
    public let consumerParker: Parker

    /// Where the producer sleeps while the ring is full; unparked by every pop.
    public let producerParker: Parker

    /// The four cache lines holding `tail`, the producer cache, `head` and the
    /// consumer cache.
    private let indexLines: UnsafeMutableRawPointer

    /// Creates an empty ring.
    ///
    /// - Parameters:
    ///   - capacity: The minimum number of elements the ring must hold;
    ///     rounded up to the next power of two. Must be at least 1.
    ///   - consumerParker: Parker for a consumer waiting for elements; pass a
    ///     shared one when a consumer reads several rings.
    ///   - producerParker: Parker for a producer waiting for space.
    public init(
        capacity minimumCapacity: Int,
        consumerParker: Parker = Parker(),
        producerParker: Parker = Parker()
    ) {
        precondition(minimumCapacity >= 1, "capacity must be at least 1")
        precondition(minimumCapacity <= 1 << (Int.bitWidth - 2), "capacity too large")
        let capacity = minimumCapacity <= 1 ? 1 : 1 << (Int.bitWidth - (minimumCapacity - 1).leadingZeroBitCount)
        self.capacity = capacity
        self.mask = capacity - 1
        // Whole cache lines, so that no unrelated heap object shares the
        // first or last slot's line.
        let slotBytes = capacity * MemoryLayout<Element>.stride
        self.slots = UnsafeMutableRawPointer.allocate(
            byteCount: (slotBytes + CacheLine.stride - 1) / CacheLine.stride * CacheLine.stride,
            alignment: max(CacheLine.stride, MemoryLayout<Element>.alignment)
        ).bindMemory(to: Element.self, capacity: capacity)
        self.consumerParker = consumerParker
        self.producerParker = producerParker

        let lines = CacheLine.allocate(count: 4)
        self.indexLines = lines
        func atomic(onLine line: Int) -> UnsafeAtomic<Int> {
            let storage = (lines + line * CacheLine.stride)
                .bindMemory(to: Int.AtomicRepresentation.self, capacity: 1)
            storage.initialize(to: .init(0))
            return UnsafeAtomic(at: storage)
        }
        func plain(onLine line: Int) -> UnsafeMutablePointer<Int> {
            let storage = (lines + line * CacheLine.stride).bindMemory(to: Int.self, capacity: 1)
            storage.initialize(to: 0)
            return storage
        }
        self.tail = atomic(onLine: 0)
        self.producerCachedHead = plain(onLine: 1)
        self.head = atomic(onLine: 2)
        self.consumerCachedTail = plain(onLine: 3)
    }

    deinit {
        // Elements and indices are trivial types: deallocation is enough.
        self.slots.deallocate()
        self.indexLines.deallocate()
    }

    /// The number of elements currently in the ring.
    ///
    /// Exact when read by the producer or consumer while the other side is
    /// idle; otherwise a snapshot suitable for metrics.
    public var count: Int {
        // Load `head` first: `tail` only grows, so the difference can't be negative.
        let head = self.head.load(ordering: .relaxed)
        let tail = self.tail.load(ordering: .relaxed)
        return min(max(tail &- head, 0), self.capacity)
    }

    /// Whether the ring holds no elements. Exact for the consumer (nothing
    /// else can remove elements); a snapshot for anyone else.
    @inlinable
    public var isEmpty: Bool {
        self.head.load(ordering: .relaxed) == self.tail.load(ordering: .acquiring)
    }
}

// `@unchecked Sendable`: the ring is meant to be shared by exactly two
// threads. Slot memory is handed over with release/acquire on `tail`/`head`,
// each cached index is only touched by its own side, and the parkers are
// thread-safe. The single-producer/single-consumer discipline itself cannot be
// checked by the compiler and is the caller's contract. Elements cross threads,
// so the ring is only `Sendable` when its elements are.
extension SPSCRing: @unchecked Sendable where Element: Sendable {}
