//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import EddyPipeline

/// Throughput micro-benchmark of ``SPSCRing``.
public enum RingBenchmark {
    /// Moves the integers `0..<items` from a producer ``StageThread`` to the
    /// calling thread through a ring, and checks that the sum arrived intact.
    ///
    /// Both sides use the blocking operations, so a full or empty ring costs
    /// a short spin and then a park rather than a busy loop.
    ///
    /// - Parameters:
    ///   - items: How many integers to move; must not be negative.
    ///   - capacity: Ring capacity (rounded up to a power of two).
    ///   - batch: Elements per push/pop call; `1` uses the single-element
    ///     operations, larger values the batch ones.
    /// - Returns: Items per second and elapsed wall-clock seconds, measured
    ///   from before the producer starts until the consumer has everything.
    public static func run(items: Int, capacity: Int, batch: Int) -> (itemsPerSecond: Double, seconds: Double) {
        precondition(items >= 0, "items must not be negative")
        precondition(batch >= 1, "batch must be at least 1")
        let ring = SPSCRing<Int>(capacity: capacity)
        let clock = ContinuousClock()
        let start = clock.now

        let producer = StageThread(name: "bench-producer") { _ in
            Self.produce(items: items, batch: batch, into: ring)
        }
        let sum = Self.consume(items: items, batch: batch, from: ring)
        producer.join()

        let elapsed = clock.now - start
        let expected = items > 0 ? (items &- 1) &* items / 2 : 0
        precondition(sum == expected, "ring benchmark lost or corrupted items: sum \(sum), expected \(expected)")
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return (itemsPerSecond: seconds > 0 ? Double(items) / seconds : 0, seconds: seconds)
    }

    private static func produce(items: Int, batch: Int, into ring: SPSCRing<Int>) {
        if batch == 1 {
            for value in 0..<items {
                _ = ring.pushBlocking(value, timeout: nil)
            }
            return
        }
        let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: batch)
        defer { buffer.deallocate() }
        var next = 0
        while next < items {
            let count = min(batch, items - next)
            for offset in 0..<count {
                buffer[offset] = next + offset
            }
            _ = ring.pushBlocking(contentsOf: UnsafeBufferPointer(rebasing: buffer[..<count]), timeout: nil)
            next += count
        }
    }

    private static func consume(items: Int, batch: Int, from ring: SPSCRing<Int>) -> Int {
        var sum = 0
        var received = 0
        if batch == 1 {
            while received < items {
                if let value = ring.popBlocking(timeout: nil) {
                    sum &+= value
                    received += 1
                }
            }
            return sum
        }
        let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: batch)
        defer { buffer.deallocate() }
        while received < items {
            let count = ring.popBlocking(into: buffer, timeout: nil)
            for index in 0..<count {
                sum &+= buffer[index]
            }
            received += count
        }
        return sum
    }
}
