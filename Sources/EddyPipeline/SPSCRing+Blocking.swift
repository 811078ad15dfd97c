//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import Atomics

// Blocking variants of `SPSCRing`'s operations: they try the lock-free path
// first, then spin briefly and park (see `Parker`) instead of busy-waiting.
// The SPSC contract of the non-blocking operations applies unchanged.
extension SPSCRing {
    /// Consumer: pops up to `buffer.count` elements into `buffer`, waiting up
    /// to `timeout` for the first one if the ring is empty.
    ///
    /// Use a finite timeout in stage loops so that periodic work (flush ticks,
    /// stop requests) still runs while the input is idle.
    ///
    /// - Parameters:
    ///   - buffer: Destination, filled from index 0; may be uninitialized.
    ///   - timeout: The longest time to wait, or `nil` to wait indefinitely.
    /// - Returns: How many elements were popped; `0` only if the timeout expired
    ///   (or `buffer` is empty).
    @inlinable
    public func popBlocking(into buffer: UnsafeMutableBufferPointer<Element>, timeout: Duration?) -> Int {
        let popped = self.pop(into: buffer)
        guard popped == 0, buffer.count > 0 else { return popped }
        guard self.consumerParker.park(timeout: timeout, until: { self.consumerHasElements }) else {
            return 0
        }
        return self.pop(into: buffer)
    }

    /// Consumer: removes and returns the oldest element, waiting up to
    /// `timeout` for one if the ring is empty.
    ///
    /// - Parameter timeout: The longest time to wait, or `nil` to wait indefinitely.
    /// - Returns: The element, or `nil` if the timeout expired.
    @inlinable
    public func popBlocking(timeout: Duration?) -> Element? {
        if let element = self.tryPop() {
            return element
        }
        guard self.consumerParker.park(timeout: timeout, until: { self.consumerHasElements }) else {
            return nil
        }
        return self.tryPop()
    }

    /// Producer: appends `element`, waiting up to `timeout` for space if the
    /// ring is full (backpressure).
    ///
    /// - Parameter timeout: The longest time to wait, or `nil` to wait indefinitely.
    /// - Returns: `false` if the timeout expired and nothing was pushed.
    @inlinable
    public func pushBlocking(_ element: Element, timeout: Duration?) -> Bool {
        if self.tryPush(element) {
            return true
        }
        guard self.producerParker.park(timeout: timeout, until: { self.producerHasSpace }) else {
            return false
        }
        return self.tryPush(element)
    }

    /// Producer: appends all of `elements` in order, waiting for space as often
    /// as needed, for at most `timeout` overall.
    ///
    /// - Parameter timeout: The longest total time to wait, or `nil` to wait
    ///   indefinitely.
    /// - Returns: How many elements were pushed: `elements.count` unless the
    ///   timeout expired, in which case a prefix was pushed.
    @inlinable
    public func pushBlocking(contentsOf elements: UnsafeBufferPointer<Element>, timeout: Duration?) -> Int {
        var pushed = self.push(contentsOf: elements)
        guard pushed < elements.count else { return pushed }
        let deadline = MonotonicDeadline.after(timeout)
        while pushed < elements.count {
            let remaining = deadline.map { Duration.nanoseconds(max($0.remainingNanoseconds, 0)) }
            guard self.producerParker.park(timeout: remaining, until: { self.producerHasSpace }) else {
                return pushed
            }
            pushed += self.push(contentsOf: UnsafeBufferPointer(rebasing: elements[pushed...]))
        }
        return pushed
    }
}
