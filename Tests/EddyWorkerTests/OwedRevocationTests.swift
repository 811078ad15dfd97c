import EddyCore
import EddyDevKit
import EddyKafka
import EddyMetrics
import EddyPipeline
import Foundation
import Logging
import Synchronization
import Testing

@testable import EddyWorker

/// A revocation whose barrier finds no free batch within the drain timeout
/// (Redis down across a rebalance holds every batch in the pipeline): the
/// ingest stage, against the mock cluster over TCP, with this test as its
/// shard. The rebalance must go on; the barrier is owed and must be the
/// first batch out once one frees, before any event of those partitions read
/// after the revocation; the revocation stays pending for the writer until
/// then; and partitions assigned back meanwhile are not read before it.
@Suite(.serialized) struct OwedRevocationTests {
    let topic = "owed"

    @Test func aRevocationWithoutAFreeBatchSendsItsBarrierFirstOnceOneFrees() throws {
        let cluster = try MockCluster(topics: [(name: topic, partitions: 4)])
        let producer = try KafkaProducer(config: ["bootstrap.servers": cluster.bootstrapServers])
        func produce(_ count: Int, tag: String) throws {
            for i in 0..<count {
                try producer.produce(topic: topic, key: Array("k\(i % 40)".utf8), value: Array("\(tag)-\(i)".utf8))
            }
            _ = try producer.flush(timeoutMs: 30_000)
        }
        let all = Set((0..<4).map { TopicPartition(topic: topic, partition: Int32($0)) })
        let properties = [
            "bootstrap.servers": cluster.bootstrapServers, "group.id": "owed",
            "session.timeout.ms": "6000", "heartbeat.interval.ms": "300",
            "topic.metadata.refresh.interval.ms": "1000", "fetch.wait.max.ms": "50",
        ]

        // The ingest stage as the worker builds it, with a pool of two batches.
        let relay = RebalanceRelay()
        let consumer = try KafkaConsumer(config: properties, topics: [topic], handlers: RebalanceHandlers(
            onAssign: { _, partitions in relay.ingest?.assigned(partitions) },
            onRevoke: { _, partitions in relay.ingest?.revoked(partitions) }))
        let pool = Pool((0..<2).map { _ in RecordBatch(recordCapacity: 256, byteCapacity: 256 * 64, info: HandOver()) })
        let free = SPSCRing<Int>(capacity: 2), output = SPSCRing<Int>(capacity: 2)
        for i in 0..<2 { _ = free.tryPush(i) }
        let barrierDone = BarrierSignal()
        let ingest = IngestStage(consumer: consumer, topics: [topic], batches: pool, free: free, output: output,
                                 counters: WorkerCounters(), logger: Logger(label: "owed-test"), barrierDone: barrierDone,
                                 drainTimeout: .seconds(1))
        let revocations = RevocationLog()
        ingest.revocations = revocations
        relay.ingest = ingest
        let box = UncheckedBox(ingest)
        let ingestThread = StageThread(name: "owed-ingest") { stop in box.value.run(stop) }

        /// What the shard saw, in order: each batch's barrier (its revoked
        /// partitions) or its records' partitions and values.
        enum Seen { case barrier(id: Int, revoked: Set<Int32>), record(partition: Int32, value: String) }
        var seen: [Seen] = []
        var retained: Int?
        /// Plays the shard (and the writer's barrier acknowledgement) until
        /// `done`; with `retain`, keeps the first batch that holds records.
        func drain(seconds: Int, retain: Bool = false, done: () -> Bool) -> Bool {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while !done() {
                if ContinuousClock.now > deadline { return false }
                guard let index = output.popBlocking(timeout: .milliseconds(20)) else { continue }
                let batch = pool[index]
                if case .barrier(let id, let revoked) = batch.info.control {
                    seen.append(.barrier(id: id, revoked: Set((revoked ?? []).map(\.partition))))
                    barrierDone.signal(id)
                }
                for i in 0..<batch.count {
                    let r = batch.records[i]
                    seen.append(.record(partition: r.partition, value: String(decoding: batch.value(r), as: UTF8.self)))
                }
                if retain, retained == nil, batch.count > 0 {
                    retained = index
                    continue
                }
                batch.reset(HandOver())
                _ = free.tryPush(index)
            }
            return true
        }
        func records(tagged tag: String) -> [(partition: Int32, value: String)] {
            seen.compactMap { if case .record(let p, let v) = $0, v.hasPrefix(tag + "-") { (p, v) } else { nil } }
        }

        // 1. The member owns every partition and the first events flow.
        try produce(200, tag: "a")
        #expect(drain(seconds: 60) { records(tagged: "a").count == 200 }, "the first events arrive")
        #expect(Set(try consumer.assignment()) == all)

        // 2. The pipeline fills: the shard keeps a batch (stuck on Redis), the
        // ingest holds the other, empty, polling.
        try produce(1, tag: "b")
        #expect(drain(seconds: 30, retain: true) { retained != nil })
        usleep(300_000)

        // 3. A second member joins (polled here): the first revokes
        // partitions inside a poll, finds no free batch within the drain
        // timeout, and lets the rebalance go on. Its barrier is owed: the
        // first batch out after the poll (the ingest's own, empty) carries
        // it, and until the writer reaches it the revocation stays pending.
        let second = try KafkaConsumer(config: properties, topics: [topic])
        func pollSecond() throws { try second.poll(maxMessages: 100, timeoutMs: 50) { _ in } }
        var owedBarrier: Set<Int32>?
        var pendingAtBarrier = false
        let deadline = ContinuousClock.now + .seconds(60)
        while owedBarrier == nil && ContinuousClock.now < deadline {
            try pollSecond()
            guard let index = output.tryPop() else { continue }
            let batch = pool[index]
            if case .barrier(let id, let revoked?) = batch.info.control, !revoked.isEmpty {
                owedBarrier = Set(revoked.map(\.partition))
                pendingAtBarrier = revoked.allSatisfy { revocations.isPending(Array("\(topic):\($0.partition)".utf8)) }
                revocations.acknowledge(revoked.map { Array("\(topic):\($0.partition)".utf8) })  // the writer, at the barrier
                barrierDone.signal(id)
            }
            #expect(batch.count == 0, "no records between the revocation and its barrier")
            batch.reset(HandOver())
            _ = free.tryPush(index)
        }
        let owed = try #require(owedBarrier, "the revocation's barrier was sent once a batch was free")
        #expect(!owed.isEmpty && owed.count < 4)
        #expect(pendingAtBarrier, "the revocation stayed pending for the writer until its barrier")
        #expect(!revocations.isPending(Array("\(topic):\(owed.first!)".utf8)))
        if let index = retained {  // the shard moves again
            pool[index].reset(HandOver())
            _ = free.tryPush(index)
            retained = nil
        }
        // The rebalance settles: the partitions are shared.
        var settled = false
        while !settled && ContinuousClock.now < deadline + .seconds(60) {
            try pollSecond()
            _ = drain(seconds: 1) { true }
            while let index = output.tryPop() {
                if case .barrier(let id, let revoked) = pool[index].info.control {
                    revocations.acknowledge((revoked ?? []).map { Array("\(topic):\($0.partition)".utf8) })
                    barrierDone.signal(id)
                }
                pool[index].reset(HandOver())
                _ = free.tryPush(index)
            }
            let mine = Set(try consumer.assignment()), theirs = Set(try second.assignment())
            settled = !theirs.isEmpty && mine.union(theirs) == all && mine.isDisjoint(with: theirs)
        }
        #expect(settled, "both members own partitions")

        // 4. The second member leaves; the partitions come back to the first,
        // which reads every new event.
        try second.close()
        #expect(drain(seconds: 60) { (try? consumer.assignment()).map { Set($0) == all } ?? false }, "the partitions came back")
        try produce(400, tag: "c")
        #expect(drain(seconds: 60) { records(tagged: "c").count == 400 }, "every new event arrives")
        #expect(Set(records(tagged: "c").map(\.partition)) == Set((0..<4).map { Int32($0) }))

        ingestThread.requestStop()
        #expect(drain(seconds: 30) { ingestThread.isFinished }, "the ingest stops")
        ingestThread.join()
        #expect(ingest.owedRevocation.isEmpty && ingest.awaitingOwedBarrier.isEmpty)
    }
}
