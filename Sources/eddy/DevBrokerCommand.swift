import ArgumentParser
import EddyDevKit
import EddyKafka
import Foundation
import UnixSignals

struct DevBrokerCommand: AsyncParsableCommand, StopsOnTerminationSignals {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Host librdkafka's mock Kafka cluster (for development and tests) until SIGTERM.",
        discussion: """
            Prints the bootstrap address. The mock cluster has no admin API, so every topic it will \
            need is created here: the --topic names, and each --topology's topics and dead-letter topic \
            (clickstream's by default). It keeps about 5 MB per partition and drops the oldest beyond that.
            """
    )

    @Option(help: "Partitions per topic.") var partitions = 8
    @Option(help: "Brokers in the mock cluster.") var brokers = 1
    @Option(name: .customLong("topic"), help: "A topic to create (repeatable).") var topics: [String] = []
    @Option(name: .customLong("topology"), help: "Create this topology's topics (repeatable).") var topologies: [String] = []
    @Option(help: "Also write the bootstrap address to this file.") var bootstrapFile: String?

    func run() async throws {
        // Trapped before the cluster's threads start (see `prepareProcess`).
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        var names = topics
        let sources = topologies.isEmpty && topics.isEmpty ? ["clickstream"] : topologies
        for name in sources {
            let t = try loadTopology(name)
            names += t.source.topics
            if t.deadLetter.enabled { names.append(t.deadLetter.topic) }
        }
        var unique: [String] = []
        for n in names where !unique.contains(n) { unique.append(n) }
        let cluster: MockCluster
        do {
            cluster = try MockCluster(brokers: brokers, topics: unique.map { ($0, partitions) })
        } catch {
            throw CLIError("cannot start the mock cluster: \(error)")
        }
        if let bootstrapFile {
            try (cluster.bootstrapServers + "\n").write(toFile: bootstrapFile, atomically: true, encoding: .utf8)
        }
        print(cluster.bootstrapServers)
        fflush(nil)  // all streams: stdout is a global var Swift 6 will not touch
        printError("mock Kafka at \(cluster.bootstrapServers): topics \(unique.joined(separator: ", ")) with \(partitions) partitions each")
        for await _ in signals { break }
        cluster.shutdown()
    }
}
