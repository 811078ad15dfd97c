import ArgumentParser
import EddyCore
import EddyTopology
import Foundation

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate topology files and print their compiled plans.",
        discussion: "Exit status 0 only when every file is valid. Errors name file:line:column, what is wrong and how to fix it."
    )

    @Argument(help: "Topology YAML files, or names (Topologies/NAME.yaml, else the embedded one), as eddy run takes them.")
    var files: [String]

    func run() throws {
        let loader = TopologyLoader()
        var failed = false
        for file in files {
            do {
                let t = try Self.load(file, with: loader)
                print("\(file): OK")
                print(t.planDescription)
            } catch {
                failed = true
                printError(error.description)
            }
        }
        if failed { throw ExitCode(1) }
    }

    /// A path, or a name resolved as `loadTopology` does, with the loader's
    /// own diagnostics (file:line:column) on errors.
    static func load(_ nameOrPath: String, with loader: TopologyLoader) throws(TopologyErrors) -> Topology {
        let fm = FileManager.default
        if !fm.fileExists(atPath: nameOrPath), !nameOrPath.contains("/"), !nameOrPath.hasSuffix(".yaml") {
            let candidate = "Topologies/\(nameOrPath).yaml"
            if fm.fileExists(atPath: candidate) { return try loader.load(path: candidate) }
            if let text = EmbeddedTopologies.all[nameOrPath] { return try loader.parse(text, file: "<embedded \(nameOrPath).yaml>") }
        }
        return try loader.load(path: nameOrPath)
    }
}
