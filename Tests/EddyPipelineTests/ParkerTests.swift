//===----------------------------------------------------------------------===//
//
// This source file is part of the Eddy open source project
//
//===----------------------------------------------------------------------===//

import EddyPipeline
import Testing

@Suite struct ParkerTests {
    @Test func returnsAtOnceWhenTheConditionAlreadyHolds() {
        let parker = Parker(spinCount: 0, yieldCount: 0)
        #expect(parker.park(timeout: nil) { true })
    }

    @Test func timesOutWhenNothingHappens() {
        let parker = Parker(spinCount: 4, yieldCount: 1)
        var checks = 0
        #expect(!parker.park(timeout: .milliseconds(5)) {
            checks += 1
            return false
        })
        #expect(checks >= 5)
        #expect(!parker.park(timeout: .zero) { false })
    }

    @Test func unparkWithNobodyParkedIsHarmless() {
        let parker = Parker()
        parker.unpark()
        parker.unpark()
        #expect(parker.park(timeout: .zero) { true })
    }

    /// The waiter sleeps without a timeout; only `unpark()` can release it.
    @Test func unparkWakesASleepingWaiter() {
        let parker = Parker(spinCount: 0, yieldCount: 0)
        let ready = StopToken()  // used as an atomic flag
        let woke = Shared(false)
        let waiter = StageThread(name: "parked") { _ in
            woke.value = parker.park(timeout: nil) { ready.isStopRequested }
        }
        ready.requestStop()
        parker.unpark()
        #expect(waiter.join(timeout: .seconds(30)))
        #expect(woke.value)
    }

    /// Many hand-offs between two threads, each side sleeping without a
    /// timeout until the other one moves: any lost wake-up deadlocks, which
    /// the deadline turns into a failure.
    @Test func pingPongNeverLosesAWakeUp() {
        let rounds = 20_000
        let ping = Parker(spinCount: 0, yieldCount: 0)
        let pong = Parker(spinCount: 0, yieldCount: 0)
        let ball = SPSCRing<Int>(capacity: 1)
        let back = SPSCRing<Int>(capacity: 1)
        let received = Shared(0)
        let hang = runToCompletion([
            { stop in
                for round in 0..<rounds where !stop.isStopRequested {
                    _ = ball.tryPush(round)
                    pong.unpark()
                    guard ping.park(timeout: lostWakeUpTimeout, until: { !back.isEmpty }) else { return }
                    _ = back.tryPop()
                }
            },
            { stop in
                var count = 0
                while count < rounds, !stop.isStopRequested {
                    guard pong.park(timeout: lostWakeUpTimeout, until: { !ball.isEmpty }) else { break }
                    if ball.tryPop() == count {
                        count += 1
                    }
                    _ = back.tryPush(count)
                    ping.unpark()
                }
                received.value = count
            },
        ])
        #expect(hang == nil)
        #expect(received.value == rounds)
    }
}
