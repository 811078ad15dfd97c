import Testing

@testable import EddyWorker

/// The catch-up mode's backlog: a lag sample stands through short gaps
/// between fetches, and only a quiet period of empty polls means caught up.
@Suite struct BacklogEstimateTests {
    let t0 = ContinuousClock.now

    @Test func emptyPollsBetweenSlowFetchesKeepTheLagSample() {
        var b = BacklogEstimate()
        b.sampled(lag: 2_700_000)
        // A slow broker: each fetch answers after 120 ms of empty polls.
        for round in 0..<20 {
            let start = t0 + .milliseconds(150 * round)
            for step in 0..<6 { b.polled(empty: true, at: start + .milliseconds(20 * step)) }
            #expect(b.backlog(held: 0) == 2_700_000, "round \(round)")
            b.polled(empty: false, at: start + .milliseconds(130))
        }
        #expect(b.backlog(held: 0) == 2_700_000)
    }

    @Test func aQuietPeriodMeansCaughtUpWhateverTheStaleSampleSays() {
        var b = BacklogEstimate()
        b.sampled(lag: 5_000)  // watermarks not yet refreshed after the drain
        b.polled(empty: true, at: t0)
        b.polled(empty: true, at: t0 + .milliseconds(499))
        #expect(b.backlog(held: 0) == 5_000)
        b.polled(empty: true, at: t0 + .milliseconds(500))
        #expect(b.backlog(held: 0) == 0)
        // Partitions held for a later wave still count.
        #expect(b.backlog(held: 1_234) == 1_234)
        // A new sample does not undo the quiet; a message does.
        b.sampled(lag: 4_000)
        #expect(b.backlog(held: 0) == 0)
        b.polled(empty: false, at: t0 + .milliseconds(600))
        #expect(b.backlog(held: 0) == 4_000)
    }
}
