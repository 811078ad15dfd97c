import EddyCore
import EddyFormats
import EddyTopology
import Foundation

/// How a command reads the topology's messages: JSON (no `binary`), Avro
/// or Protobuf with a fixed schema, or with a schema registry (`resolver`
/// fills the table by schema id).
struct MessageFormat {
    var binary: BinarySource?
    var resolver: SchemaResolver?
    /// `--input` files are Avro object container files.
    var containerFiles = false

    /// For Kafka: the topology's `source.format`.
    static func kafka(_ t: Topology) throws -> MessageFormat {
        let binary: BinarySource?
        do { binary = try FixedSchemas.binarySource(for: t) } catch { throw CLIError("\(error)") }
        var f = MessageFormat(binary: binary)
        if let table = binary?.table, let settings = t.source.schemaRegistry {
            f.resolver = SchemaResolver(table: table, client: SchemaRegistryClient(settings: settings))
        }
        return f
    }

    /// For `--input` files: JSON Lines, or Avro object container files
    /// (read with the first file's writer schema).
    static func files(_ t: Topology, inputs: [String]) throws -> MessageFormat {
        let avro = inputs.map { $0 != "-" && AvroContainerReader.looksLikeContainer(path: $0) }
        guard avro.contains(true) else { return MessageFormat() }
        guard !avro.contains(false) else {
            throw CLIError("--input mixes Avro container files and JSON Lines; replay them separately")
        }
        let first: AvroContainerReader
        do { first = try AvroContainerReader(path: inputs[0]) } catch { throw CLIError("\(error)") }
        let plan = TopologyFields(t).avroPlan(first.schema)
        for issue in plan.issues where !plan.missingFields.contains(issue.field) {
            printError("warning: \(inputs[0]): field '\(plan.paths[issue.field])' \(issue.message)")
        }
        return MessageFormat(binary: BinarySource(fixed: plan), containerFiles: true)
    }

    /// Puts schema `id` in the table, retrying with backoff while the
    /// registry cannot be reached (replay has no deadline to keep).
    func resolveBlocking(_ id: UInt32) {
        guard let resolver else { return }
        var delay = 0.2
        var warned = ""
        while true {
            do {
                try resolver.resolve(id)
                if !warned.isEmpty { printError("schema registry: answering again") }
                if resolver.table.entry(id)?.unknown == true, let p = resolver.lastProblem { printError("warning: \(p); its messages are dead letters (unknown_schema)") }
                return
            } catch {
                if error.reason != warned { printError("schema registry: \(error.reason); retrying"); warned = error.reason }
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 5)
            }
        }
    }
}
