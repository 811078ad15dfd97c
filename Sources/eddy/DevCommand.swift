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
        abstract: "Write reproducible clickstream events as JSON Lines.",
        discussion: """
            Events start at 2026-01-01 and span --span-ms, a little out of order, with 0.2% arriving 20 \
            minutes late. With --population realistic, every user is seen once about users × 3.2 events have \
            been written (the summary on standard error gives the exact count for the settings).
            """
    )

    @Option(help: "Number of events.") var count = 1000
    @Option(help: "Distinct users.") var users = 100
    @Option(help: "Generator seed.") var seed: UInt64 = 42
    @Option(help: "Output file; - for standard output.") var out = "-"
    @Option(help: "Milliseconds of event time the events span (default: 86 ms per event, or a day with --population realistic).")
    var spanMs: Int64?
    @OptionGroup var population: PopulationOptions

    func run() throws {
        let output = try OutputFile(path: out)
        let span = spanMs ?? (population.population == "realistic" ? 86_400_000 : 86 * Int64(count))
        let step = max(1, span / Int64(max(1, count)))
        var gen = ClickstreamGenerator(seed: seed, users: users, stepMs: step, population: population.parameters(users: users))
        if let p = gen.population {
            printError("realistic population: \(users) users, \(p.sessions) sessions; every user seen after ~\(p.eventsForEveryUser) events")
        }
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
