import EddyDevKit
import EddyKafka
import Testing

/// What one consumer generation saw and committed.
private struct Generation: Sendable {
    var firstOffsets: [Int32: Int64] = [:]
    var applied: [Int32: [Int64]] = [:]
    var committed: [TopicPartitionOffset] = []
    var eofOffsets: [Int32: Int64] = [:]
    var committedReadBack: [TopicPartitionOffset] = []
}

@Suite struct CommitResumeTests {
    static let topic = "events"
    static let partitions: [Int32] = [0, 1]

    /// Runs one consumer generation: applies records until `stopAfter` are
    /// applied (ignoring the rest of the batch, which is never committed),
    /// or until EOF on every partition if `stopAfter` is nil; then commits
    /// last applied + 1 per partition, closes, and reports.
    private func runGeneration(_ cluster: MockCluster, group: String, stopAfter: Int?) throws -> Generation {
        let consumer = try KafkaConsumer(config: groupConfig(cluster, group: group), topics: [Self.topic],
                                         partitionEOF: true)
        var generation = Generation()
        var appliedCount = 0
        try pollUntil([consumer], what: "generation of group \(group)", { _, event in
            switch event {
            case .message(let view):
                if let stopAfter, appliedCount >= stopAfter { return }
                if generation.firstOffsets[view.partition] == nil { generation.firstOffsets[view.partition] = view.offset }
                generation.applied[view.partition, default: []].append(view.offset)
                appliedCount += 1
            case .partitionEOF(let eof):
                generation.eofOffsets[eof.partition] = eof.nextOffset
            case .error:
                break
            }
        }, done: {
            if let stopAfter { return appliedCount >= stopAfter }
            return generation.eofOffsets.count == Self.partitions.count
        })
        generation.committed = generation.applied.map {
            TopicPartitionOffset(topic: Self.topic, partition: $0.key, offset: $0.value.last! + 1)
        }
        try consumer.commit(offsets: generation.committed)
        generation.committedReadBack = try consumer.committed(
            partitions: Self.partitions.map { TopicPartition(topic: Self.topic, partition: $0) })
        try consumer.close()
        return generation
    }

    @Test func newMemberResumesExactlyAtCommittedOffsetsIncludingAfterEOF() async throws {
        let cluster = try MockCluster(topics: [(name: Self.topic, partitions: 2)])
        let group = "resume"
        let (first, second, third, produced) = try await onThread {
            () throws -> (Generation, Generation, Generation, [Int32: Int64]) in
            let producer = try KafkaProducer(config: producerConfig(cluster))
            for i in 0..<1_000 {
                try producer.produce(topic: Self.topic, partition: Int32(i % 2), value: Array("m\(i)".utf8))
            }
            try producer.flush(timeoutMs: 30_000)

            // 1: stop mid-way and commit.
            let first = try runGeneration(cluster, group: group, stopAfter: 300)
            // 2: resume, read to EOF on both partitions, commit there.
            let second = try runGeneration(cluster, group: group, stopAfter: nil)
            // 3: after new records arrive, resume after the EOF commit.
            for i in 0..<20 {
                try producer.produce(topic: Self.topic, partition: Int32(i % 2), value: Array("n\(i)".utf8))
            }
            try producer.flush(timeoutMs: 30_000)
            let third = try runGeneration(cluster, group: group, stopAfter: nil)
            return (first, second, third, [0: 510, 1: 510])
        }

        // Generation 1 committed exactly what it applied.
        #expect(first.applied.values.map(\.count).reduce(0, +) == 300)
        #expect(Set(first.committedReadBack.filter { $0.offset != KafkaOffset.invalid }) == Set(first.committed))

        // Generation 2 starts exactly at the commits: no skip, no duplicate.
        for commit in first.committed {
            #expect(second.firstOffsets[commit.partition] == commit.offset)
        }
        for partition in Self.partitions {
            let all = (first.applied[partition] ?? []) + (second.applied[partition] ?? [])
            #expect(all == Array(0..<500), "partition \(partition) not read exactly once")
            // After EOF, last applied + 1 is the high watermark, not position + 1.
            #expect(second.eofOffsets[partition] == 500)
            #expect(second.committed.first { $0.partition == partition }?.offset == 500)
        }

        // Generation 3 sees exactly the 10 new records per partition.
        for partition in Self.partitions {
            #expect(third.applied[partition] == Array(500..<510))
            #expect(third.eofOffsets[partition] == produced[partition])
        }
    }
}
