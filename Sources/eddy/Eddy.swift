import ArgumentParser

@main
struct Eddy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eddy",
        abstract: "Streaming real-time features: Kafka events in, fresh and exact ML features in Redis.",
        subcommands: [RunCommand.self, CheckCommand.self, ReplayCommand.self, VerifyCommand.self, BenchCommand.self, DevCommand.self, GetCommand.self, ServeCommand.self, DriftCommand.self]
    )
}
