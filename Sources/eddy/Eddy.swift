import ArgumentParser

@main
struct Eddy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eddy",
        abstract: "Streaming real-time features: Kafka events in, fresh and exact ML features in Redis.",
        subcommands: [RunCommand.self, CheckCommand.self, ReplayCommand.self, VerifyCommand.self, BenchCommand.self, DevCommand.self, GetCommand.self, ServeCommand.self, DriftCommand.self, ACLCommand.self]
    )

    /// ArgumentParser's own main, but for one step: a command that stops on
    /// SIGTERM/SIGINT prepares the process here, on the main thread, before
    /// anything has started another thread (see `blockTerminationSignals`).
    static func main() async {
        do {
            var command = try parseAsRoot()
            (command as? StopsOnTerminationSignals)?.prepareProcess()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
