import ArgumentParser
import EddyDevKit
import EddyReplay
import Foundation

struct DevCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Development helpers: generated data, a local Kafka (mock cluster), a producer.",
        subcommands: [DevBrokerCommand.self, DevRegistryCommand.self, DevProduceCommand.self, GenerateCommand.self]
    )
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write reproducible clickstream events as JSON Lines."
    )

    @Option(help: "Number of events.") var count = 1000
    @Option(help: "Distinct users.") var users = 100
    @Option(help: "Generator seed.") var seed: UInt64 = 42
    @Option(help: "Output file; - for standard output.") var out = "-"

    func run() throws {
        let output = try OutputFile(path: out)
        var gen = ClickstreamGenerator(seed: seed, users: users)
        var line: [UInt8] = []
        for _ in 0..<count {
            line.removeAll(keepingCapacity: true)
            gen.next(into: &line)
            line.append(0x0A)
            output.writer.raw(line)
            try output.flushIfNeeded()
        }
        try output.flush()
    }
}
