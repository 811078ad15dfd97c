//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import Atomics

// Producer side of `SPSCRing`: only the single producer thread may call these.
extension SPSCRing {
    /// Appends `element` unless the ring is full.
    ///
    /// - Returns: `false` if the ring was full and nothing was pushed.
    @inlinable
    public func tryPush(_ element: Element) -> Bool {
        let tail = self.tail.load(ordering: .relaxed)
        if tail &- self.producerCachedHead.pointee == self.capacity {
            // Looks full: refresh our view of the consumer. Acquire pairs with
            // the consumer's release of `head`, so its reads of the slot we are
            // about to overwrite are complete.
            self.producerCachedHead.pointee = self.head.load(ordering: .acquiring)
            if tail &- self.producerCachedHead.pointee == self.capacity {
                return false
            }
        }
        (self.slots + (tail & self.mask)).initialize(to: element)
        self.tail.store(tail &+ 1, ordering: .releasing)
        self.consumerParker.unpark()
        return true
    }

    /// Appends as many elements of `elements` as fit, in order.
    ///
    /// - Returns: How many elements were pushed (a prefix of `elements`);
    ///   `0` if the ring was full.
    @inlinable
    public func push(contentsOf elements: UnsafeBufferPointer<Element>) -> Int {
        guard let source = elements.baseAddress, elements.count > 0 else { return 0 }
        let tail = self.tail.load(ordering: .relaxed)
        var free = self.capacity &- (tail &- self.producerCachedHead.pointee)
        if free < elements.count {
            self.producerCachedHead.pointee = self.head.load(ordering: .acquiring)
            free = self.capacity &- (tail &- self.producerCachedHead.pointee)
            if free == 0 {
                return 0
            }
        }
        let pushed = min(free, elements.count)
        let start = tail & self.mask
        let firstRun = min(pushed, self.capacity &- start)
        (self.slots + start).initialize(from: source, count: firstRun)
        if firstRun < pushed {
            self.slots.initialize(from: source + firstRun, count: pushed &- firstRun)
        }
        self.tail.store(tail &+ pushed, ordering: .releasing)
        self.consumerParker.unpark()
        return pushed
    }

    /// Whether at least one element can be pushed. Producer-side check used
    /// as the parking condition; acquire so a `true` result also makes the
    /// consumer's reads of the freed slots happen-before our overwrite.
    @inlinable
    var producerHasSpace: Bool {
        let tail = self.tail.load(ordering: .relaxed)
        return tail &- self.head.load(ordering: .acquiring) < self.capacity
    }
}
