import EddyKafka
import Testing

@testable import EddyWorker

/// The catch-up wave plan: which partitions are read together, when the
/// next wave starts, and what a revoke does to the plan.
@Suite struct CatchUpWavesTests {
    func tp(_ p: Int32) -> TopicPartition { TopicPartition(topic: "t", partition: p) }

    func backlog(_ p: Int32, _ start: Int64, _ end: Int64) -> CatchUpWaves.Backlog {
        .init(partition: tp(p), start: start, end: end)
    }

    @Test func balancesWavesByMessagesAndSkipsPartitionsWithoutBacklog() throws {
        // 8 behind (sizes 800, 700, ..., 100) and one caught up.
        let backlogs = (0..<8).map { backlog(Int32($0), 1000, 1000 + Int64(800 - 100 * $0)) } + [backlog(8, 50, 50)]
        let plan = try #require(CatchUpWaves.plan(backlogs, waves: 4, minimumBacklog: 1000))
        #expect(plan.waves.count == 4)
        // Largest first into the lightest wave: {800,100} {700,200} {600,300} {500,400}.
        #expect(plan.waves.map(\.backlog) == [900, 900, 900, 900])
        #expect(Set(plan.waves.flatMap(\.targets.keys)) == Set((0..<8).map { tp(Int32($0)) }))
        #expect(!plan.held.contains(tp(8)) && !plan.current.contains(tp(8)), "a caught-up partition is never held")
        #expect(plan.held.count == 6 && plan.heldBacklog == 2700)
        for p in plan.held {
            let h = try #require(plan.heldPartition(p))
            #expect(h.behind == 800 - 100 * Int64(p.partition) && h.target == 1000 + h.behind)
        }
        #expect(plan.current.allSatisfy { plan.heldPartition($0) == nil })
        #expect(plan.waves[0].targets[tp(0)] == 1800 || plan.waves[0].targets[tp(7)] == 1100)
    }

    @Test func noWavesForASmallBacklogOrASinglePartition() {
        let small = (0..<4).map { backlog(Int32($0), 0, 10) }
        #expect(CatchUpWaves.plan(small, waves: 4, minimumBacklog: 41) == nil)
        #expect(CatchUpWaves.plan(small, waves: 4, minimumBacklog: 40) != nil)
        #expect(CatchUpWaves.plan([backlog(0, 0, 1_000_000), backlog(1, 5, 5)], waves: 8, minimumBacklog: 1) == nil)
        #expect(CatchUpWaves.plan(small, waves: 1, minimumBacklog: 1) == nil)
        // Fewer partitions behind than waves: one partition a wave.
        #expect(CatchUpWaves.plan(small, waves: 8, minimumBacklog: 1)?.waves.count == 4)
    }

    @Test func advancesOnlyWhenEveryPartitionOfTheWaveReachedItsTarget() throws {
        let planned = CatchUpWaves.plan([backlog(0, 0, 100), backlog(1, 0, 100), backlog(2, 0, 60), backlog(3, 0, 40)],
                                        waves: 2, minimumBacklog: 1)
        var plan = try #require(planned)
        // {100, 40} and {100, 60}; the current one is either.
        let first = Set(plan.current)
        let second = Set(plan.held)
        #expect(first.count == 2 && second.count == 2 && first.isDisjoint(with: second))
        var positions: [TopicPartition: Int64] = [:]
        for p in first { positions[p] = 10 }
        #expect(plan.advance(positions: positions) == nil)
        // One partition at its end, the other not yet known.
        let (a, b) = (Array(first)[0], Array(first)[1])
        #expect(plan.advance(positions: [a: 100]) == nil)
        let targets = plan.waves[0].targets
        #expect(plan.advance(positions: [a: targets[a]!, b: targets[b]! - 1]) == nil)
        let advanced = plan.advance(positions: [a: targets[a]!, b: targets[b]!])
        let next = try #require(advanced)
        #expect(Set(next) == second && plan.held.isEmpty && plan.heldBacklog == 0 && plan.completed == 1)
        let last = plan.waves[0].targets
        #expect(plan.advance(positions: last.mapValues { $0 + 5 }) == [])
        #expect(plan.isFinished && plan.completed == 2)
    }

    @Test func aWaveCanEndShortOfItsTargets() throws {
        let planned = CatchUpWaves.plan((0..<4).map { backlog(Int32($0), 0, 100) }, waves: 2, minimumBacklog: 1)
        var plan = try #require(planned)
        let held = plan.held
        #expect(plan.finishCurrent() == held)
        #expect(plan.completed == 1 && plan.held.isEmpty)
        #expect(plan.finishCurrent().isEmpty && plan.isFinished)
        #expect(plan.finishCurrent().isEmpty && plan.completed == 2)
    }

    @Test func aRevokeDropsPartitionsAndReleasesTheNextWaveIfTheCurrentOneIsGone() throws {
        let planned = CatchUpWaves.plan((0..<6).map { backlog(Int32($0), 0, 100) }, waves: 3, minimumBacklog: 1)
        var plan = try #require(planned)
        let current = plan.current, held = plan.held
        // Revoking a held partition changes nothing for the current wave.
        #expect(plan.remove([held[0]]).isEmpty)
        #expect(plan.held.count == 3 && plan.heldBacklog == 300)
        // Revoking the current wave's partitions starts the next one.
        let next = plan.remove(Set(current))
        #expect(!next.isEmpty && Set(next).isDisjoint(with: current))
        #expect(plan.current == next && plan.waves.count <= 2)
        // Revoking everything finishes the plan.
        _ = plan.remove(Set((0..<6).map { tp(Int32($0)) }))
        #expect(plan.isFinished && plan.current.isEmpty)
    }
}
