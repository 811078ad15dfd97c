import ArgumentParser
import EddyCore
import EddyReplay
import Foundation

extension EmitMode: ExpressibleByArgument {}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a topology's operators over historical events (JSON Lines).",
        discussion: """
            --emit rows: one point-in-time row per accepted event, with every feature read at T = event ts \
            from the key's state before the event. --emit final: one line per key with its key time and every \
            feature read at T = key time. --labels FILE: one row per label {"key":..., "ts":...}, the label \
            object extended with the features at T = ts. A summary goes to standard error.
            """
    )

    @Option(name: .long, help: "Topology file (or name under Topologies/).")
    var topology: String

    @Option(name: .long, help: "Events, JSON Lines in arrival order; - for standard input.")
    var input: [String] = []

    @Option(name: .long, help: "rows or final.")
    var emit: EmitMode = .final

    @Option(name: .long, help: "Labels file (JSON Lines of {\"key\":..., \"ts\":...}).")
    var labels: String?

    @Option(name: .long, help: "Output file; - for standard output.")
    var out: String = "-"

    @Option(name: .long, help: "Write rejected events here, one JSON line each: line number, reason, and the original text as \"event\" (or \"event_base64\" when it is not UTF-8).")
    var deadLetter: String?

    func validate() throws {
        if input.isEmpty { throw ValidationError("give --input FILE (or - for standard input)") }
    }

    func run() throws {
        let t = try loadTopology(topology)
        let labelSet = try labels.map { path in
            do { return try LabelSet(path: path) } catch { throw CLIError("\(path): \(error)") }
        }
        let session = ReplaySession(topology: t, emit: emit, labels: labelSet)
        let output = try OutputFile(path: out)
        let dlq = try deadLetter.map { try OutputFile(path: $0) }
        if let dlq {
            session.onReject = { line, reason, bytes in
                dlq.writer.raw("{\"line\":")
                dlq.writer.int(Int64(line))
                dlq.writer.raw(",\"reason\":")
                dlq.writer.string(reason.rawValue)
                if String(validating: bytes, as: UTF8.self) != nil {
                    dlq.writer.raw(",\"event\":")
                    dlq.writer.string(bytes)
                } else {
                    dlq.writer.raw(",\"event_base64\":")
                    dlq.writer.string(Data(bytes).base64EncodedString())
                }
                dlq.writer.raw("}\n")
                try? dlq.flushIfNeeded()
            }
        }
        let start = monotonicSeconds()
        for path in input {
            let reader = try LineReader(path: path)
            try reader.forEachLine { line in
                if line.isEmpty { return true }
                session.consume(line, into: &output.writer)
                try output.flushIfNeeded()
                return true
            }
        }
        try session.finish(to: output)
        try output.flush()
        try dlq?.flush()
        session.setSeconds(monotonicSeconds() - start)
        printError("replay \(t.name): \(session.summary.description)")
    }
}
