import ArgumentParser
import EddyDevKit
import Foundation
import UnixSignals

struct DevRegistryCommand: AsyncParsableCommand, StopsOnTerminationSignals {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Serve an in-memory, Confluent-compatible schema registry (for development and tests) until SIGTERM.",
        discussion: """
            Prints its URL. Register with POST /subjects/SUBJECT/versions {"schema": ..., "schemaType": ...}; \
            read with GET /schemas/ids/ID, GET /subjects, GET /subjects/SUBJECT/versions[/V]. \
            Protobuf schemas are kept as given: register a base64 FileDescriptorProto (as `eddy dev produce --format protobuf` does).
            """
    )

    @Option(help: "Port on 127.0.0.1 (0: any free port).") var port = 8081
    @Option(help: "Also write the URL to this file.") var urlFile: String?

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let registry: DevRegistry
        do { registry = try DevRegistry(port: port) } catch { throw CLIError("cannot start the registry: \(error)") }
        if let urlFile { try (registry.url + "\n").write(toFile: urlFile, atomically: true, encoding: .utf8) }
        print(registry.url)
        fflush(nil)
        printError("schema registry at \(registry.url)")
        for await _ in signals { break }
        registry.stop()
    }
}
