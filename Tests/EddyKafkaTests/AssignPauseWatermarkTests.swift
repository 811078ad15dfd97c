import EddyDevKit
import EddyKafka
import Testing

private struct Replay: Sendable {
    var watermarks0: (low: Int64, high: Int64)
    var watermarks1: (low: Int64, high: Int64)
    /// Batched `watermarks(_:)` of partitions 0 and 1: [low0, high0, low1, high1].
    var batched: [Int64]
    var offsets: [Int32: [Int64]]
    var eof: [Int32: Int64]
    var header: [UInt8]?
    var partitionCount: Int
    var topics: [String]
    var timeLookup: [TopicPartitionOffset]
}

private struct PauseRun: Sendable {
    var offsetsWhilePaused: [Int32: [Int64]]
    var offsetsAfterResume: [Int32: [Int64]]
}

@Suite struct AssignPauseWatermarkTests {
    let topic = "replay"

    private func fill(_ producer: KafkaProducer, partition: Int32, from: Int, count: Int) throws {
        for i in from..<(from + count) {
            try producer.produce(topic: topic, partition: partition, key: nil, value: Array("v\(i)".utf8),
                                 headers: [KafkaHeader(key: "seq", string: "\(i)")])
        }
    }

    @Test func explicitAssignWithStartOffsetsAndWatermarks() async throws {
        let cluster = try MockCluster(topics: [(name: topic, partitions: 2)])
        let topic = self.topic
        let replay = try await onThread { () throws -> Replay in
            let producer = try KafkaProducer(config: producerConfig(cluster))
            try fill(producer, partition: 0, from: 0, count: 100)
            try fill(producer, partition: 1, from: 0, count: 50)
            try producer.flush(timeoutMs: 30_000)

            // No topics, no group.id: a group-less consumer for bounded replays.
            let consumer = try KafkaConsumer(config: ["bootstrap.servers": cluster.bootstrapServers,
                                                      "fetch.wait.max.ms": "50"],
                                             topics: [], partitionEOF: true)
            let marks0 = try consumer.watermarks(topic: topic, partition: 0)
            let marks1 = try consumer.watermarks(topic: topic, partition: 1)
            let both = try consumer.watermarks([TopicPartition(topic: topic, partition: 0),
                                                TopicPartition(topic: topic, partition: 1)])
            let batched = [0, 1].flatMap { p in
                both[TopicPartition(topic: topic, partition: Int32(p))].map { [$0.low, $0.high] } ?? []
            }
            try consumer.assign([TopicPartitionOffset(topic: topic, partition: 0, offset: 40),
                                 TopicPartitionOffset(topic: topic, partition: 1, offset: KafkaOffset.beginning)])
            var offsets: [Int32: [Int64]] = [:]
            var eof: [Int32: Int64] = [:]
            var header: [UInt8]?
            try pollUntil([consumer], what: "EOF on both partitions", { _, event in
                switch event {
                case .message(let view):
                    offsets[view.partition, default: []].append(view.offset)
                    if view.partition == 0, view.offset == 40, let value = view.header("seq"), let value {
                        header = Array(value)
                    }
                case .partitionEOF(let e): eof[e.partition] = e.nextOffset
                case .error: break
                }
            }, done: { eof.count == 2 })
            let count = try consumer.partitionCount(topic: topic)
            let topics = consumer.topics
            let timeLookup = try consumer.offsetsForTimes(
                [TopicPartition(topic: topic, partition: 0), TopicPartition(topic: topic, partition: 1)],
                timestampMs: 0)
            try consumer.close()
            return Replay(watermarks0: marks0, watermarks1: marks1, batched: batched, offsets: offsets, eof: eof,
                          header: header, partitionCount: count, topics: topics, timeLookup: timeLookup)
        }
        #expect(replay.watermarks0 == (0, 100))
        #expect(replay.watermarks1 == (0, 50))
        #expect(replay.batched == [0, 100, 0, 50])
        #expect(replay.offsets[0] == Array(40..<100))
        #expect(replay.offsets[1] == Array(0..<50))
        #expect(replay.eof == [0: 100, 1: 50])
        #expect(replay.header == Array("40".utf8))
        #expect(replay.partitionCount == 2)
        #expect(replay.topics == [topic])
        // One answer per partition. A real broker answers 0 here; the mock
        // answers every timestamp lookup with the logical end (-1).
        #expect(replay.timeLookup.map(\.partition) == [0, 1])
        for answer in replay.timeLookup {
            #expect(answer.offset == 0 || answer.offset == KafkaOffset.end, "\(answer)")
        }
    }

    @Test func pausedPartitionIsNotDeliveredUntilResumed() async throws {
        let cluster = try MockCluster(topics: [(name: topic, partitions: 2)])
        let topic = self.topic
        let run = try await onThread { () throws -> PauseRun in
            let producer = try KafkaProducer(config: producerConfig(cluster))
            try fill(producer, partition: 0, from: 0, count: 10)
            try fill(producer, partition: 1, from: 0, count: 10)
            try producer.flush(timeoutMs: 30_000)

            let consumer = try KafkaConsumer(config: ["bootstrap.servers": cluster.bootstrapServers,
                                                      "fetch.wait.max.ms": "50"],
                                             topics: [], partitionEOF: true)
            let p0 = TopicPartition(topic: topic, partition: 0)
            let p1 = TopicPartition(topic: topic, partition: 1)
            try consumer.assign([TopicPartitionOffset(p0, offset: 0), TopicPartitionOffset(p1, offset: 0)])
            var eof: [Int32: Int64] = [:]
            var offsets: [Int32: [Int64]] = [:]
            let handle = { (_: Int, event: KafkaConsumerEvent) in
                switch event {
                case .message(let view): offsets[view.partition, default: []].append(view.offset)
                case .partitionEOF(let e): eof[e.partition] = e.nextOffset
                case .error: break
                }
            }
            try pollUntil([consumer], what: "initial EOF", handle, done: { eof[0] == 10 && eof[1] == 10 })

            // Pause partition 1, then append to both: only partition 0 moves.
            try consumer.pause([p1])
            offsets = [:]
            try fill(producer, partition: 0, from: 10, count: 10)
            try fill(producer, partition: 1, from: 10, count: 10)
            try producer.flush(timeoutMs: 30_000)
            try pollUntil([consumer], what: "partition 0 EOF while 1 is paused", handle, done: { eof[0] == 20 })
            // A little more polling: a paused partition must stay silent.
            try consumer.poll(timeoutMs: 300) { handle(0, $0) }
            let whilePaused = offsets

            offsets = [:]
            try consumer.resume([p1])
            try pollUntil([consumer], what: "partition 1 EOF after resume", handle, done: { eof[1] == 20 })
            try consumer.close()
            return PauseRun(offsetsWhilePaused: whilePaused, offsetsAfterResume: offsets)
        }
        #expect(run.offsetsWhilePaused[0] == Array(10..<20))
        #expect(run.offsetsWhilePaused[1] == nil)
        #expect(run.offsetsAfterResume[1] == Array(10..<20))
        #expect(run.offsetsAfterResume[0] == nil)
    }
}

/// Backpressure pauses and resumes partitions many times while records flow;
/// every record must still be delivered exactly once, in order. librdkafka
/// 2.0 could resume past records it had purged from a batch (#4208), which
/// lost events in the worker under load; `resume` seeks to the tracked position.
@Suite struct PauseResumeStressTests {
    @Test func manyPausesNeitherSkipNorRepeatRecords() async throws {
        let topic = "pausing"
        let partitions: Int32 = 4
        let perPartition = 25_000
        let cluster = try MockCluster(topics: [(name: topic, partitions: Int(partitions))])
        let (offsets, gaps) = try await onThread { () throws -> ([Int32: [Int64]], Int) in
            let producer = try KafkaProducer(config: producerConfig(cluster).merging(["linger.ms": "20"]) { $1 })
            for i in 0..<perPartition {
                for p in 0..<partitions {
                    try producer.produce(topic: topic, partition: p, key: nil, value: Array("v\(i)".utf8))
                }
            }
            try producer.flush(timeoutMs: 60_000)
            let consumer = try KafkaConsumer(config: ["bootstrap.servers": cluster.bootstrapServers,
                                                      "fetch.wait.max.ms": "10"],
                                             topics: [], partitionEOF: false)
            let all = (0..<partitions).map { TopicPartition(topic: topic, partition: $0) }
            try consumer.assign(all.map { TopicPartitionOffset($0, offset: KafkaOffset.beginning) })
            var offsets: [Int32: [Int64]] = [:]
            var total = 0
            var polls = 0
            let deadline = ContinuousClock.now + .seconds(120)
            while total < perPartition * Int(partitions), ContinuousClock.now < deadline {
                try consumer.poll(maxMessages: 300, timeoutMs: 50) { event in
                    if case .message(let m) = event {
                        offsets[m.partition, default: []].append(m.offset)
                        total += 1
                    }
                }
                polls += 1
                if polls % 2 == 0 {
                    try consumer.pause(all)
                    try consumer.poll(maxMessages: 300, timeoutMs: 0) { event in
                        if case .message(let m) = event {
                            offsets[m.partition, default: []].append(m.offset)
                            total += 1
                        }
                    }
                    try consumer.resume(all)
                }
            }
            let gaps = consumer.offsetGaps
            try consumer.close()
            return (offsets, gaps)
        }
        #expect(gaps == 0)
        for p in 0..<partitions {
            let got = offsets[p] ?? []
            let firstGap = zip(got, got.dropFirst()).first { $0.1 != $0.0 + 1 }
            #expect(got.count == perPartition && got.first == 0 && firstGap == nil,
                    "partition \(p): \(got.count) records, first \(got.first ?? -1), first break \(firstGap.map { "\($0.0) -> \($0.1)" } ?? "none")")
        }
    }
}
