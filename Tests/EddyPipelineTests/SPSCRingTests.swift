//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import EddyPipeline
import Testing

/// Single-threaded behaviour of `SPSCRing`: the test is both producer and consumer.
@Suite struct SPSCRingTests {
    @Test(arguments: [(1, 1), (2, 2), (3, 4), (5, 8), (8, 8), (9, 16), (1000, 1024), (1024, 1024)])
    func capacityIsRoundedUpToAPowerOfTwo(requested: Int, expected: Int) {
        let ring = SPSCRing<Int>(capacity: requested)
        #expect(ring.capacity == expected)
    }

    @Test func emptyRingPopsNothing() {
        let ring = SPSCRing<Int>(capacity: 4)
        #expect(ring.isEmpty)
        #expect(ring.count == 0)
        #expect(ring.tryPop() == nil)

        var storage = [Int](repeating: -1, count: 3)
        let popped = storage.withUnsafeMutableBufferPointer { ring.pop(into: $0) }
        #expect(popped == 0)
        #expect(storage == [-1, -1, -1])
    }

    @Test func fullRingRefusesPushes() {
        let ring = SPSCRing<Int>(capacity: 4)
        for value in 0..<4 {
            #expect(ring.tryPush(value))
        }
        #expect(ring.count == 4)
        #expect(!ring.tryPush(99))
        #expect([7, 8].withUnsafeBufferPointer { ring.push(contentsOf: $0) } == 0)

        // Freeing one slot admits exactly one more element.
        #expect(ring.tryPop() == 0)
        #expect(ring.tryPush(4))
        #expect(!ring.tryPush(5))
        #expect((1...4).map { _ in ring.tryPop() } == [1, 2, 3, 4])
        #expect(ring.isEmpty)
    }

    @Test func preservesOrderAcrossManyWrapArounds() {
        let ring = SPSCRing<Pair>(capacity: 4)
        var next = 0
        var expected = 0
        // Vary the fill level so the indices wrap at every offset.
        for round in 0..<10_000 {
            let pushes = round % (ring.capacity + 1)
            for _ in 0..<pushes where ring.tryPush(Pair(next)) {
                next += 1
            }
            #expect(ring.count == next - expected)
            while let element = ring.tryPop() {
                #expect(element == Pair(expected))
                expected += 1
            }
        }
        #expect(expected == next)
        #expect(next > 10_000)
    }

    @Test func batchPushAcceptsOnlyWhatFits() {
        let ring = SPSCRing<Int>(capacity: 8)
        #expect(Array(0..<5).withUnsafeBufferPointer { ring.push(contentsOf: $0) } == 5)
        #expect(Array(5..<11).withUnsafeBufferPointer { ring.push(contentsOf: $0) } == 3)
        #expect(ring.count == 8)
        #expect([Int]().withUnsafeBufferPointer { ring.push(contentsOf: $0) } == 0)

        #expect(drain(ring, chunk: 3) == [[0, 1, 2], [3, 4, 5], [6, 7]])
    }

    @Test func batchPopReturnsWhatIsAvailable() {
        let ring = SPSCRing<Int>(capacity: 8)
        #expect(Array(0..<3).withUnsafeBufferPointer { ring.push(contentsOf: $0) } == 3)

        let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: 10)
        defer { buffer.deallocate() }
        #expect(ring.pop(into: buffer) == 3)
        #expect(Array(buffer[..<3]) == [0, 1, 2])
        #expect(ring.pop(into: buffer) == 0)
        #expect(ring.pop(into: UnsafeMutableBufferPointer(rebasing: buffer[..<0])) == 0)
    }

    @Test func batchOperationsSplitAtTheWrapPoint() {
        let ring = SPSCRing<Int>(capacity: 8)
        var next = 0
        var received: [Int] = []
        // Chunk sizes that do not divide the capacity move the wrap point
        // around, so both single- and two-segment copies are exercised.
        for round in 0..<2_000 {
            let chunk = Array(next..<(next + 1 + round % 7))
            next += chunk.withUnsafeBufferPointer { ring.push(contentsOf: $0) }
            received += drain(ring, chunk: 1 + round % 5, maxChunks: 1).joined()
        }
        received += drain(ring, chunk: 8).joined()
        #expect(received == Array(0..<next))
    }

    @Test func blockingOperationsTimeOutInsteadOfHanging() {
        let ring = SPSCRing<Int>(capacity: 2)
        #expect(ring.popBlocking(timeout: .milliseconds(1)) == nil)
        #expect(ring.pushBlocking(1, timeout: .zero))
        #expect(ring.pushBlocking(2, timeout: .zero))
        #expect(!ring.pushBlocking(3, timeout: .milliseconds(1)))
        let pushed = [3, 4, 5].withUnsafeBufferPointer {
            ring.pushBlocking(contentsOf: $0, timeout: .milliseconds(1))
        }
        #expect(pushed == 0)
        #expect(ring.popBlocking(timeout: nil) == 1)
        #expect(ring.popBlocking(timeout: .zero) == 2)

        let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4)
        defer { buffer.deallocate() }
        #expect(ring.popBlocking(into: buffer, timeout: .milliseconds(1)) == 0)
    }
}

/// Pops everything from `ring`, `chunk` elements per call.
private func drain(_ ring: SPSCRing<Int>, chunk: Int, maxChunks: Int = .max) -> [[Int]] {
    let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: chunk)
    defer { buffer.deallocate() }
    var chunks: [[Int]] = []
    while chunks.count < maxChunks {
        let popped = ring.pop(into: buffer)
        guard popped > 0 else { break }
        chunks.append(Array(buffer[..<popped]))
    }
    return chunks
}
