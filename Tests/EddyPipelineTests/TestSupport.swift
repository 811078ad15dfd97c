//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import EddyPipeline
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A ring element with two fields, so torn or misplaced copies are detectable.
struct Pair: BitwiseCopyable, Sendable, Equatable {
    var seq: Int
    var triple: Int

    init(_ seq: Int) {
        self.seq = seq
        self.triple = seq &* 3
    }
}

/// A value written by a stage thread and read by the test after joining.
final class Shared<Value: Sendable>: @unchecked Sendable {
    // `@unchecked Sendable`: `storage` is only accessed under `lock`.
    private let lock = NSLock()
    private var storage: Value

    init(_ value: Value) {
        self.storage = value
    }

    var value: Value {
        get { self.lock.withLock { self.storage } }
        set { self.lock.withLock { self.storage = newValue } }
    }

    func update(_ body: (inout Value) -> Void) {
        self.lock.withLock { body(&self.storage) }
    }
}

/// What a consumer saw: how many elements arrived in order, and the first
/// problem (if any).
struct ConsumerReport: Sendable {
    var received = 0
    var failure: String?
}

/// Runs each of `bodies` on its own stage thread and waits for all of them,
/// but never longer than `deadline` overall: a hang (e.g. a lost wake-up)
/// becomes a failure message instead of a stuck test run.
///
/// - Returns: `nil` if all finished in time, otherwise a description.
func runToCompletion(
    deadline: Duration = .seconds(60),
    _ bodies: [@Sendable (StopToken) -> Void]
) -> String? {
    let clock = ContinuousClock()
    let start = clock.now
    let threads = bodies.enumerated().map { index, body in
        StageThread(name: "test-\(index)", body: body)
    }
    var hung: [String] = []
    for thread in threads {
        let remaining = max(deadline - (clock.now - start), .zero)
        if !thread.join(timeout: remaining) {
            hung.append(thread.name)
        }
    }
    guard hung.isEmpty else {
        // Ask the stuck threads to give up so that they at least stop
        // burning CPU; their bodies check the token between waits.
        threads.forEach { $0.requestStop() }
        return "threads did not finish within \(deadline): \(hung)"
    }
    return nil
}

/// Polls `condition` (every millisecond) until it holds or `timeout` passes.
/// For conditions that nobody signals through a `Parker`.
func eventually(within timeout: Duration = .seconds(30), _ condition: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while !condition() {
        guard clock.now < deadline else { return false }
        usleep(1_000)
    }
    return true
}

/// Gives the CPU away: on a 2-core machine a spinning test thread would
/// otherwise starve the thread it is waiting for.
func yieldThread() {
    sched_yield()
}

/// Per-wait timeout for blocking calls in tests. Any healthy wait in these
/// tests lasts microseconds; hitting this means a wake-up was lost.
let lostWakeUpTimeout: Duration = .seconds(10)
