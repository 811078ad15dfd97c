import Foundation
import Testing

/// `eddy check` takes topologies as `eddy run` does: a path, or a name
/// (Topologies/NAME.yaml, else the embedded topology), as Deploy/quickstart.sh
/// calls it.
@Suite struct CheckCommandTests {
    /// `eddy check name` run from `dir`; its status and output.
    static func check(_ name: String, from dir: URL) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.eddy)
        p.arguments = ["check", name]
        p.currentDirectoryURL = dir
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func namesResolveAsForRun() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        // No Topologies/ here: the embedded clickstream.
        let embedded = try Self.check("clickstream", from: dir)
        #expect(embedded.status == 0 && embedded.output.contains("clickstream: OK") && embedded.output.contains("topology clickstream"),
                "\(embedded.output)")
        // A file of that name under Topologies/ comes first.
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("Topologies"), withIntermediateDirectories: true)
        try "name: broken\n".write(to: dir.appendingPathComponent("Topologies/clickstream.yaml"), atomically: true, encoding: .utf8)
        let local = try Self.check("clickstream", from: dir)
        #expect(local.status == 1 && local.output.contains("Topologies/clickstream.yaml:1:1: error"), "\(local.output)")
        // An unknown name is an unreadable file, named.
        let missing = try Self.check("nosuch", from: dir)
        #expect(missing.status == 1 && missing.output.contains("nosuch:0:0: error: cannot read the file"), "\(missing.output)")
    }

    /// `eddy run --drain-timeout` is checked before anything starts.
    @Test func runRefusesADrainTimeoutOutOfRange() throws {
        let dir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        for bad in ["0", "-1", "nan", "3601"] {
            let r = try Harness.capture(["run", "clickstream", "--drain-timeout=\(bad)"], in: dir)
            #expect(r.status != 0 && r.err.contains("--drain-timeout must be between 0 and 3600 seconds"), "\(bad): \(r.err)")
        }
    }
}
