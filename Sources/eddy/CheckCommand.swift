import ArgumentParser
import EddyTopology

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate topology files and print their compiled plans.",
        discussion: "Exit status 0 only when every file is valid. Errors name file:line:column, what is wrong and how to fix it."
    )

    @Argument(help: "Topology YAML files.")
    var files: [String]

    func run() throws {
        let loader = TopologyLoader()
        var failed = false
        for file in files {
            do {
                let t = try loader.load(path: file)
                print("\(file): OK")
                print(t.planDescription)
            } catch {
                failed = true
                printError(error.description)
            }
        }
        if failed { throw ExitCode(1) }
    }
}
