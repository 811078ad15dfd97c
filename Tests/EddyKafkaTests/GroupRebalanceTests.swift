import EddyDevKit
import EddyKafka
import Testing

/// Rebalance callbacks seen by one member, in order.
private final class RebalanceLog {
    var assigned: [[TopicPartition]] = []
    var revoked: [[TopicPartition]] = []
    /// Assignment size observed inside onRevoke (before the unassign).
    var assignmentInsideRevoke: [Int] = []
    var commitErrorsInsideRevoke: [KafkaError] = []

    func handlers() -> RebalanceHandlers {
        RebalanceHandlers(
            onAssign: { [self] _, partitions in assigned.append(partitions) },
            onRevoke: { [self] consumer, partitions in
                revoked.append(partitions)
                assignmentInsideRevoke.append((try? consumer.assignment().count) ?? -1)
                // Commit inside the handler, as the engine's worker does.
                let offsets = partitions.map { TopicPartitionOffset($0, offset: 1) }
                do throws(KafkaError) { try consumer.commit(offsets: offsets) } catch { commitErrorsInsideRevoke.append(error) }
            })
    }
}

private struct Outcome: Sendable {
    var aloneA: Set<TopicPartition>
    var finalA: Set<TopicPartition>
    var finalB: Set<TopicPartition>
    var revokedA: [[TopicPartition]]
    var assignmentInsideRevokeA: [Int]
    var assignedB: [[TopicPartition]]
    /// Commit errors in A's revoke while B joined (group mid-rebalance).
    var commitErrorsWhileRebalancing: [KafkaError]
    /// Commit errors in the revokes run by close() (group stable).
    var commitErrorsOnClose: [KafkaError] = []
    var revokedOnCloseA: Int
    var survivorRevokes = 0
}

@Suite struct GroupRebalanceTests {
    @Test func secondMemberTriggersCooperativeRevokeAndPartitionsAreShared() async throws {
        let topic = "shared"
        let cluster = try MockCluster(topics: [(name: topic, partitions: 6)])
        let all = Set((0..<6).map { TopicPartition(topic: topic, partition: Int32($0)) })
        let outcome = try await onThread { () throws -> Outcome in
            let producer = try KafkaProducer(config: producerConfig(cluster))
            try produceKeyed(producer, topic: topic, count: 600, keys: 60)

            let logA = RebalanceLog()
            let logB = RebalanceLog()
            let a = try KafkaConsumer(config: groupConfig(cluster, group: "pair"), topics: [topic],
                                      handlers: logA.handlers())
            try pollUntil([a], what: "first member's assignment", { _, _ in },
                          done: { Set(try a.assignment()).count == 6 })
            let aloneA = Set(try a.assignment())

            let b = try KafkaConsumer(config: groupConfig(cluster, group: "pair"), topics: [topic],
                                      handlers: logB.handlers())
            try pollUntil([a, b], what: "partitions shared by both members", { _, _ in }, done: {
                let assignedA = Set(try a.assignment())
                let assignedB = Set(try b.assignment())
                return !assignedA.isEmpty && !assignedB.isEmpty && assignedA.union(assignedB) == all
                    && assignedA.isDisjoint(with: assignedB)
            })
            let outcome = Outcome(
                aloneA: aloneA, finalA: Set(try a.assignment()), finalB: Set(try b.assignment()),
                revokedA: logA.revoked, assignmentInsideRevokeA: logA.assignmentInsideRevoke,
                assignedB: logB.assigned, commitErrorsWhileRebalancing: logA.commitErrorsInsideRevoke,
                revokedOnCloseA: 0)
            let revokesBeforeClose = logA.revoked.count
            try a.close()
            // The survivor takes over everything (cooperatively: an assign only).
            try pollUntil([b], what: "survivor owning all partitions", { _, _ in },
                          done: { Set(try b.assignment()) == all })
            try b.close()
            var result = outcome
            result.revokedOnCloseA = logA.revoked.count - revokesBeforeClose
            result.survivorRevokes = logB.revoked.count
            result.commitErrorsOnClose = Array(logA.commitErrorsInsideRevoke.dropFirst(outcome.commitErrorsWhileRebalancing.count))
                + logB.commitErrorsInsideRevoke
            return result
        }

        #expect(outcome.aloneA == all)
        #expect(!outcome.finalA.isEmpty && !outcome.finalB.isEmpty)
        #expect(outcome.finalA.union(outcome.finalB) == all)
        #expect(outcome.finalA.isDisjoint(with: outcome.finalB))
        // Cooperative: A gave up only the partitions that moved to B, and its
        // revoke handler ran while it still owned them.
        let revokedA = Set(outcome.revokedA.flatMap { $0 })
        #expect(!revokedA.isEmpty)
        #expect(revokedA == outcome.finalB)
        #expect(outcome.assignmentInsideRevokeA.first == 6)
        // A commit from onRevoke while the group is still rebalancing may be
        // refused by the coordinator; only such rebalance errors are acceptable.
        let rebalanceCodes: Set<KafkaErrorCode> = [.rebalanceInProgress, .illegalGeneration, .unknownMemberId]
        #expect(outcome.commitErrorsWhileRebalancing.allSatisfy { rebalanceCodes.contains($0.code) },
                "\(outcome.commitErrorsWhileRebalancing)")
        // Revokes run by close() happen in a stable group: commits succeed.
        #expect(outcome.commitErrorsOnClose.isEmpty, "\(outcome.commitErrorsOnClose)")
        #expect(Set(outcome.assignedB.flatMap { $0 }) == outcome.finalB)
        // Closing revokes the remaining partitions through the handler.
        #expect(outcome.revokedOnCloseA == 1)
        // B was never revoked until its own close.
        #expect(outcome.survivorRevokes == 1)
    }
}

@Suite struct CloseDuringFirstJoinTests {
    /// librdkafka 2.0 aborts when a sticky member is destroyed between its
    /// JoinGroup and SyncGroup responses (#4312); close() must wait that out.
    @Test func closingBetweenJoinGroupAndSyncGroupIsSafe() async throws {
        let cluster = try MockCluster(topics: [(name: "joining", partitions: 2)])
        // Hold the SyncGroup response for 4 s; the mock answers JoinGroup
        // after ~3 s, so closing at ~4.5 s lands inside the window.
        try cluster.pushBrokerRequestErrors(broker: 1, apiKey: .syncGroup, responses: [(.noError, 4_000)])
        let (assignedBeforeClose, revokedOnClose) = try await onThread { () throws -> (Int, Int) in
            var assigned = 0
            var revoked = 0
            let consumer = try KafkaConsumer(
                config: groupConfig(cluster, group: "joining"), topics: ["joining"],
                handlers: RebalanceHandlers(onAssign: { _, p in assigned += p.count },
                                            onRevoke: { _, p in revoked += p.count }))
            let deadline = ContinuousClock.now.advanced(by: .milliseconds(4_500))
            while ContinuousClock.now < deadline {
                try consumer.poll(timeoutMs: 100) { _ in }
            }
            let before = assigned
            try consumer.close()
            return (before, revoked)
        }
        // Still in the window when close() started; it then completed the join
        // and revoked the partitions cleanly instead of crashing.
        #expect(assignedBeforeClose == 0)
        #expect(revokedOnClose == 2)
    }
}

/// librdkafka keeps an application's pause of a partition across its
/// revocation (it clears only its own rebalance pause): assigned again, the
/// partition is not fetched until resumed. The worker's ingest therefore
/// resumes partitions it had paused (backpressure, held catch-up waves, a
/// schema registry outage) when they come back (`IngestStage.assigned`);
/// this pins the behaviour it works around.
@Suite struct PauseAcrossRevocationTests {
    @Test func aPartitionPausedWhenRevokedIsNotFetchedWhenAssignedAgainUntilResumed() async throws {
        let topic = "paused"
        let cluster = try MockCluster(topics: [(name: topic, partitions: 4)])
        let all = Set((0..<4).map { TopicPartition(topic: topic, partition: Int32($0)) })
        let (moved, fromMovedWhilePaused, fromMovedAfterResume) = try await onThread { () throws -> (Int, Int, Int) in
            let producer = try KafkaProducer(config: producerConfig(cluster))
            let a = try KafkaConsumer(config: groupConfig(cluster, group: "paused"), topics: [topic])
            try pollUntil([a], what: "the first member owning every partition", { _, _ in },
                          done: { Set(try a.assignment()) == all })
            try a.pause(Array(all))
            // A second member takes some partitions (revoked from A while
            // paused), then leaves: they come back to A.
            let b = try KafkaConsumer(config: groupConfig(cluster, group: "paused"), topics: [topic])
            try pollUntil([a, b], what: "partitions shared by both members", { _, _ in }, done: {
                let assignedB = Set(try b.assignment())
                let assignedA = Set(try a.assignment())
                return !assignedB.isEmpty && assignedA.union(assignedB) == all
            })
            let moved = Set(try b.assignment())
            try b.close()
            try pollUntil([a], what: "the first member owning every partition again", { _, _ in },
                          done: { Set(try a.assignment()) == all })
            try produceKeyed(producer, topic: topic, count: 400, keys: 40)
            func countFromMoved(for seconds: Int, stopAtFirst: Bool) throws -> Int {
                var n = 0
                let until = ContinuousClock.now.advanced(by: .seconds(seconds))
                while ContinuousClock.now < until && !(stopAtFirst && n > 0) {
                    try a.poll(maxMessages: 1000, timeoutMs: 50) { event in
                        if case .message(let m) = event, moved.contains(TopicPartition(topic: topic, partition: m.partition)) { n += 1 }
                    }
                }
                return n
            }
            let whilePaused = try countFromMoved(for: 3, stopAtFirst: false)
            try a.resume(Array(moved))
            let afterResume = try countFromMoved(for: 20, stopAtFirst: true)
            try a.close()
            return (moved.count, whilePaused, afterResume)
        }
        #expect(moved > 0)
        #expect(fromMovedWhilePaused == 0, "assigned again, the partitions are still paused")
        #expect(fromMovedAfterResume > 0, "resumed, they are fetched")
    }
}
