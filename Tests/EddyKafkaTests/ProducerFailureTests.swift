import EddyDevKit
import EddyKafka
import Testing

@Suite struct ProducerFailureTests {
    @Test func flushReportsFailuresWhileTheBrokerIsDown() async throws {
        let cluster = try MockCluster(topics: [(name: "dlq", partitions: 1)])
        let (firstFlush, failure, stats) = try await onThread { () throws -> (DeliveryStats, KafkaError?, DeliveryStats) in
            let producer = try KafkaProducer(config: producerConfig(cluster).merging(
                ["message.timeout.ms": "1500"], uniquingKeysWith: { $1 }))
            try producer.produce(topic: "dlq", value: Array("ok".utf8))
            let firstFlush = try producer.flush(timeoutMs: 10_000)

            try cluster.setBrokerDown(1)
            for i in 0..<10 {
                try producer.produce(topic: "dlq", value: Array("lost \(i)".utf8))
            }
            var failure: KafkaError?
            do throws(KafkaError) {
                try producer.flush(timeoutMs: 20_000)
            } catch {
                failure = error
            }
            try cluster.setBrokerUp(1)
            return (firstFlush, failure, producer.stats)
        }
        #expect(firstFlush.delivered == 1 && firstFlush.failed == 0)
        let error = try #require(failure as KafkaError?)
        #expect(error.code == .messageTimedOut)
        #expect(error.message.contains("10 message(s) failed"))
        #expect(stats.failed == 10)
        #expect(stats.delivered == 1)
        #expect(stats.lastError?.code == .messageTimedOut)
    }

    @Test func retriableProduceErrorsAreRetriedTransparently() async throws {
        let cluster = try MockCluster(topics: [(name: "retry", partitions: 1)])
        try cluster.pushRequestErrors(apiKey: .produce,
                                      errors: [.notLeaderForPartition, .requestTimedOut, .notLeaderForPartition])
        let stats = try await onThread { () throws -> DeliveryStats in
            let producer = try KafkaProducer(config: producerConfig(cluster))
            for i in 0..<5 { try producer.produce(topic: "retry", value: Array("r\(i)".utf8)) }
            return try producer.flush(timeoutMs: 30_000)
        }
        #expect(stats.delivered == 5)
        #expect(stats.failed == 0)
    }

    @Test func unknownPropertyIsNamedInTheError() throws {
        let error = #expect(throws: KafkaError.self) {
            _ = try KafkaProducer(config: ["bootstrap.servers": "127.0.0.1:1", "no.such.property": "1"])
        }
        #expect(error?.property == "no.such.property")
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("no.such.property") == true, "\(String(describing: error))")
    }

    @Test func invalidValueIsNamedInTheError() throws {
        let error = #expect(throws: KafkaError.self) {
            _ = try KafkaConsumer(config: ["group.id": "g", "session.timeout.ms": "soon"], topics: ["t"])
        }
        #expect(error?.property == "session.timeout.ms")
        #expect(error?.message.contains("soon") == true, "\(String(describing: error))")
        #expect(error?.message.contains("session.timeout.ms") == true)
    }

    @Test func subscribingWithoutGroupIdIsRejected() throws {
        let error = #expect(throws: KafkaError.self) {
            _ = try KafkaConsumer(config: ["bootstrap.servers": "127.0.0.1:1"], topics: ["t"])
        }
        #expect(error?.property == "group.id")
    }

    @Test func mockClusterRejectsUseAfterShutdown() throws {
        let cluster = try MockCluster(brokers: 3)
        #expect(cluster.bootstrapServers.split(separator: ",").count == 3)
        try cluster.createTopic(name: "t", partitions: 2)
        try cluster.setRoundTripTime(broker: 2, ms: 5)
        cluster.shutdown()
        cluster.shutdown()
        let error = #expect(throws: KafkaError.self) { try cluster.createTopic(name: "u", partitions: 1) }
        #expect(error?.code == .destroyed)
    }
}
