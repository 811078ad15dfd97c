//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import EddyPipeline
import Testing

/// A real producer thread and a real consumer thread move a sequence through
/// a tiny ring, so it wraps and flips between full and empty constantly; the
/// consumer checks every element arrives once, in order, intact.
///
/// Serialized: each test already uses both cores.
@Suite(.serialized) struct SPSCRingConcurrencyTests {
    static let itemCount = stressItemCount

    @Test func singleElementOperations() {
        let ring = SPSCRing<Pair>(capacity: 8)
        let itemCount = Self.itemCount
        let report = Shared(ConsumerReport())
        let hang = runToCompletion([
            { stop in
                var seq = 0
                while seq < itemCount, !stop.isStopRequested {
                    if ring.tryPush(Pair(seq)) {
                        seq += 1
                    } else {
                        yieldThread()
                    }
                }
            },
            { stop in
                var checker = SequenceChecker()
                while checker.received < itemCount, !stop.isStopRequested {
                    if let element = ring.tryPop() {
                        checker.check(element)
                    } else {
                        yieldThread()
                    }
                }
                report.value = checker.report
            },
        ])
        #expect(hang == nil)
        #expect(report.value.failure == nil)
        #expect(report.value.received == itemCount)
        #expect(ring.isEmpty)
    }

    @Test func batchOperations() {
        let ring = SPSCRing<Pair>(capacity: 8)
        let itemCount = Self.itemCount
        let report = Shared(ConsumerReport())
        let hang = runToCompletion([
            { stop in
                // Chunks of 1...13: often larger than the free space, so
                // pushes are partial and the remainder is retried.
                let chunk = UnsafeMutableBufferPointer<Pair>.allocate(capacity: 13)
                defer { chunk.deallocate() }
                var seq = 0
                var round = 0
                while seq < itemCount, !stop.isStopRequested {
                    let size = min(1 + round % 13, itemCount - seq)
                    round += 1
                    for offset in 0..<size {
                        chunk[offset] = Pair(seq + offset)
                    }
                    var pushed = 0
                    while pushed < size, !stop.isStopRequested {
                        let n = ring.push(contentsOf: UnsafeBufferPointer(rebasing: chunk[pushed..<size]))
                        if n == 0 {
                            yieldThread()
                        }
                        pushed += n
                    }
                    seq += size
                }
            },
            { stop in
                let buffer = UnsafeMutableBufferPointer<Pair>.allocate(capacity: 11)
                defer { buffer.deallocate() }
                var checker = SequenceChecker()
                var round = 0
                while checker.received < itemCount, !stop.isStopRequested {
                    let size = 1 + round % 11
                    round += 1
                    let popped = ring.pop(into: UnsafeMutableBufferPointer(rebasing: buffer[..<size]))
                    if popped == 0 {
                        yieldThread()
                    }
                    for element in buffer[..<popped] {
                        checker.check(element)
                    }
                }
                report.value = checker.report
            },
        ])
        #expect(hang == nil)
        #expect(report.value.failure == nil)
        #expect(report.value.received == itemCount)
    }

    /// With spin-free parkers every empty/full transition goes through the
    /// sleep/wake protocol (a few microseconds each, hence fewer items); with
    /// the default parkers spinning absorbs most transitions. A lost wake-up
    /// shows up as a timed-out wait.
    @Test(arguments: [
        (spinCount: 0, yieldCount: 0, itemCount: 100_000),
        (spinCount: 256, yieldCount: 8, itemCount: 1_000_000),
    ])
    func blockingSingleElementOperations(spinCount: Int, yieldCount: Int, itemCount: Int) {
        let ring = SPSCRing<Pair>(
            capacity: 8,
            consumerParker: Parker(spinCount: spinCount, yieldCount: yieldCount),
            producerParker: Parker(spinCount: spinCount, yieldCount: yieldCount))
        let report = Shared(ConsumerReport())
        let producerFailure = Shared<String?>(nil)
        let hang = runToCompletion([
            { stop in
                for seq in 0..<itemCount where !stop.isStopRequested {
                    guard ring.pushBlocking(Pair(seq), timeout: lostWakeUpTimeout) else {
                        producerFailure.value = "push of \(seq) timed out: lost wake-up?"
                        return
                    }
                }
            },
            { stop in
                var checker = SequenceChecker()
                while checker.received < itemCount, !stop.isStopRequested {
                    guard let element = ring.popBlocking(timeout: lostWakeUpTimeout) else {
                        checker.fail("pop after \(checker.received) timed out: lost wake-up?")
                        break
                    }
                    checker.check(element)
                }
                report.value = checker.report
            },
        ])
        #expect(hang == nil)
        #expect(producerFailure.value == nil)
        #expect(report.value.failure == nil)
        #expect(report.value.received == itemCount)
    }

    @Test(arguments: [
        (spinCount: 0, yieldCount: 0, itemCount: 200_000),
        (spinCount: 256, yieldCount: 8, itemCount: 1_000_000),
    ])
    func blockingBatchOperations(spinCount: Int, yieldCount: Int, itemCount: Int) {
        let ring = SPSCRing<Pair>(
            capacity: 8,
            consumerParker: Parker(spinCount: spinCount, yieldCount: yieldCount),
            producerParker: Parker(spinCount: spinCount, yieldCount: yieldCount))
        let report = Shared(ConsumerReport())
        let producerFailure = Shared<String?>(nil)
        let hang = runToCompletion([
            { stop in
                let chunk = UnsafeMutableBufferPointer<Pair>.allocate(capacity: 13)
                defer { chunk.deallocate() }
                var seq = 0
                var round = 0
                while seq < itemCount, !stop.isStopRequested {
                    let size = min(1 + round % 13, itemCount - seq)
                    round += 1
                    for offset in 0..<size {
                        chunk[offset] = Pair(seq + offset)
                    }
                    let pushed = ring.pushBlocking(
                        contentsOf: UnsafeBufferPointer(rebasing: chunk[..<size]), timeout: lostWakeUpTimeout)
                    guard pushed == size else {
                        producerFailure.value = "push of \(seq + pushed) timed out: lost wake-up?"
                        return
                    }
                    seq += size
                }
            },
            { stop in
                let buffer = UnsafeMutableBufferPointer<Pair>.allocate(capacity: 11)
                defer { buffer.deallocate() }
                var checker = SequenceChecker()
                var round = 0
                while checker.received < itemCount, !stop.isStopRequested {
                    let size = 1 + round % 11
                    round += 1
                    let popped = ring.popBlocking(
                        into: UnsafeMutableBufferPointer(rebasing: buffer[..<size]), timeout: lostWakeUpTimeout)
                    guard popped > 0 else {
                        checker.fail("pop after \(checker.received) timed out: lost wake-up?")
                        break
                    }
                    for element in buffer[..<popped] {
                        checker.check(element)
                    }
                }
                report.value = checker.report
            },
        ])
        #expect(hang == nil)
        #expect(producerFailure.value == nil)
        #expect(report.value.failure == nil)
        #expect(report.value.received == itemCount)
    }

    /// One consumer waits on two rings through one shared parker, as an
    /// operator shard fed by several ingest threads would.
    @Test func consumerParksOnSeveralRingsAtOnce() {
        let itemCount = 50_000
        let sharedParker = Parker(spinCount: 0, yieldCount: 0)
        let rings = (0..<2).map { _ in
            SPSCRing<Pair>(capacity: 8, consumerParker: sharedParker, producerParker: Parker())
        }
        let reports = Shared([ConsumerReport](repeating: ConsumerReport(), count: 2))
        let producers: [@Sendable (StopToken) -> Void] = rings.map { ring in
            { stop in
                for seq in 0..<itemCount where !stop.isStopRequested {
                    _ = ring.pushBlocking(Pair(seq), timeout: lostWakeUpTimeout)
                }
            }
        }
        let consumer: @Sendable (StopToken) -> Void = { stop in
            var checkers = [SequenceChecker(), SequenceChecker()]
            while checkers.contains(where: { $0.received < itemCount }), !stop.isStopRequested {
                let ready = sharedParker.park(timeout: lostWakeUpTimeout) {
                    rings.contains { !$0.isEmpty }
                }
                guard ready else {
                    checkers[0].fail("shared park timed out: lost wake-up?")
                    break
                }
                for (index, ring) in rings.enumerated() {
                    while let element = ring.tryPop() {
                        checkers[index].check(element)
                    }
                }
            }
            reports.value = checkers.map(\.report)
        }
        let hang = runToCompletion(producers + [consumer])
        #expect(hang == nil)
        for report in reports.value {
            #expect(report.failure == nil)
            #expect(report.received == itemCount)
        }
    }
}

/// Elements moved by each stress test.
let stressItemCount = 5_000_000

/// Checks that elements arrive as `Pair(0), Pair(1), ...` and remembers the
/// first deviation. Keeps counting after a failure so the producer can finish.
struct SequenceChecker {
    private(set) var received = 0
    private(set) var failure: String?

    mutating func check(_ element: Pair) {
        if self.failure == nil, element != Pair(self.received) {
            self.failure = "element #\(self.received) was \(element)"
        }
        self.received += 1
    }

    mutating func fail(_ message: String) {
        if self.failure == nil {
            self.failure = message
        }
    }

    var report: ConsumerReport {
        ConsumerReport(received: self.received, failure: self.failure)
    }
}
