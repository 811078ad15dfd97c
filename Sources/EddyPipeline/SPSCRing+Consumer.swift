//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import Atomics

// Consumer side of `SPSCRing`: only the single consumer thread may call these.
extension SPSCRing {
    /// Removes and returns the oldest element, or `nil` if the ring is empty.
    @inlinable
    public func tryPop() -> Element? {
        let head = self.head.load(ordering: .relaxed)
        if head == self.consumerCachedTail.pointee {
            // Looks empty: refresh our view of the producer. Acquire pairs with
            // the producer's release of `tail`, making the slot contents visible.
            self.consumerCachedTail.pointee = self.tail.load(ordering: .acquiring)
            if head == self.consumerCachedTail.pointee {
                return nil
            }
        }
        let element = self.slots[head & self.mask]
        self.head.store(head &+ 1, ordering: .releasing)
        self.producerParker.unpark()
        return element
    }

    /// Moves up to `buffer.count` of the oldest elements into `buffer`, in
    /// order, starting at index 0.
    ///
    /// `buffer` may be uninitialized memory; the first `n` elements are
    /// initialized on return.
    ///
    /// - Returns: How many elements were popped (`n`); `0` if the ring was empty.
    @inlinable
    public func pop(into buffer: UnsafeMutableBufferPointer<Element>) -> Int {
        guard let destination = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let head = self.head.load(ordering: .relaxed)
        var available = self.consumerCachedTail.pointee &- head
        if available < buffer.count {
            self.consumerCachedTail.pointee = self.tail.load(ordering: .acquiring)
            available = self.consumerCachedTail.pointee &- head
            if available == 0 {
                return 0
            }
        }
        let popped = min(available, buffer.count)
        let start = head & self.mask
        let firstRun = min(popped, self.capacity &- start)
        destination.initialize(from: self.slots + start, count: firstRun)
        if firstRun < popped {
            (destination + firstRun).initialize(from: self.slots, count: popped &- firstRun)
        }
        self.head.store(head &+ popped, ordering: .releasing)
        self.producerParker.unpark()
        return popped
    }

    /// Whether at least one element can be popped. Consumer-side check used as
    /// the parking condition; acquire so that a `true` result makes the slot
    /// contents visible.
    @inlinable
    var consumerHasElements: Bool {
        self.head.load(ordering: .relaxed) != self.tail.load(ordering: .acquiring)
    }
}
