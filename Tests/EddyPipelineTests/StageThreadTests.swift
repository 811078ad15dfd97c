//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import EddyPipeline
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct StageThreadTests {
    @Test func runsUntilStopIsRequestedThenJoins() {
        let idle = Parker(spinCount: 0, yieldCount: 0)
        let iterations = Shared(0)
        let stage = StageThread(name: "stage-loop") { stop in
            while !stop.isStopRequested {
                iterations.update { $0 += 1 }
                _ = idle.park(timeout: .milliseconds(1)) { stop.isStopRequested }
            }
        }
        #expect(stage.name == "stage-loop")
        #expect(!stage.stopToken.isStopRequested)
        #expect(eventually { iterations.value >= 1 })
        #expect(!stage.isFinished)

        stage.requestStop()
        #expect(stage.stopToken.isStopRequested)
        #expect(stage.join(timeout: .seconds(30)))
        #expect(stage.isFinished)

        // Joining again, with or without a timeout, returns immediately.
        stage.join()
        #expect(stage.join(timeout: .zero))
    }

    @Test func joinTimesOutWhileTheBodyIsStillRunning() {
        let release = StopToken()
        let parker = Parker(spinCount: 0, yieldCount: 0)
        let stage = StageThread(name: "busy") { _ in
            _ = parker.park(timeout: .seconds(30)) { release.isStopRequested }
        }
        #expect(!stage.join(timeout: .milliseconds(5)))
        #expect(!stage.isFinished)

        release.requestStop()
        parker.unpark()
        #expect(stage.join(timeout: .seconds(30)))
    }

    @Test func severalThreadsCanJoinAtOnce() {
        let stage = StageThread(name: "joined") { stop in
            while !stop.isStopRequested {
                yieldThread()
            }
        }
        let joiners = (0..<3).map { index in
            StageThread(name: "joiner-\(index)") { _ in stage.join() }
        }
        stage.requestStop()
        for joiner in joiners {
            #expect(joiner.join(timeout: .seconds(30)))
        }
        #expect(stage.isFinished)
    }

    @Test func namesTheOSThread() {
        let seen = Shared<String?>(nil)
        let stage = StageThread(name: "eddy-shard-7-with-a-long-name") { _ in
            seen.value = currentOSThreadName()
        }
        #expect(stage.join(timeout: .seconds(30)))
        #if os(Linux)
        // Linux keeps at most 15 bytes.
        #expect(seen.value == "eddy-shard-7-wi")
        #endif
    }

    @Test func repeatingCallsTheIterationUntilStopped() {
        let calls = Shared(0)
        let stage = StageThread.repeating(name: "repeating") {
            calls.update { $0 += 1 }
            yieldThread()
        }
        #expect(eventually { calls.value >= 3 })
        stage.requestStop()
        #expect(stage.join(timeout: .seconds(30)))
        #expect(calls.value >= 3)
    }

    @Test func bodyMayOwnNonSendableState() {
        final class Accumulator {  // deliberately not Sendable
            var total = 0
        }
        let accumulator = Accumulator()
        let result = Shared(0)
        let stage = StageThread(name: "owner") { _ in
            for value in 1...10 {
                accumulator.total += value
            }
            result.value = accumulator.total
        }
        #expect(stage.join(timeout: .seconds(30)))
        #expect(result.value == 55)
    }

    @Test func droppingAnUnjoinedStageStopsIt() {
        let exited = StopToken()  // used as an atomic flag
        let parker = Parker(spinCount: 0, yieldCount: 0)
        do {
            _ = StageThread(name: "orphan") { stop in
                while !stop.isStopRequested {
                    _ = parker.park(timeout: .milliseconds(1)) { false }
                }
                exited.requestStop()
            }
        }
        #expect(eventually { exited.isStopRequested })
    }
}

/// The calling thread's OS-level name, read back through `/proc` (Linux) or
/// pthreads (Darwin).
private func currentOSThreadName() -> String? {
    #if os(Linux)
    guard let file = fopen("/proc/thread-self/comm", "r") else { return nil }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 64)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
    let bytes = buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
    #else
    var buffer = [CChar](repeating: 0, count: 64)
    guard pthread_getname_np(pthread_self(), &buffer, buffer.count) == 0 else { return nil }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    #endif
}
