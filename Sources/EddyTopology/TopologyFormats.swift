import EddyCore
import EddyFormats
import Foundation
import Yams

/// `source.format: avro | protobuf` and where its schemas come from.
struct FormatSettings {
    var registry: SchemaRegistrySettings?
    var schemaFile: String?
    var descriptorFile: String?
    var message: String?
}

extension NodeReader {
    /// A path relative to the topology file's folder, made absolute.
    func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent()
        return dir.appendingPathComponent(path).standardizedFileURL.path
    }

    /// Reads `schema_registry`, `schema`, `descriptor` and `message`,
    /// checking they fit the format. Nil when they do not.
    mutating func formatSettings(_ m: [String: Node], format: String) -> FormatSettings? {
        var out = FormatSettings()
        var ok = true
        if let r = m["schema_registry"] {
            if let rm = mapping(r, "source.schema_registry", allowed: ["url", "username", "password", "ca_file"]) {
                if let u = rm["url"], let url = string(u, "schema_registry.url") {
                    if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                        report(u, "schema_registry.url '\(url)' is not an http(s) URL", fix: "e.g. url: http://localhost:8081")
                        ok = false
                    }
                    out.registry = SchemaRegistrySettings(
                        url: url, username: rm["username"].flatMap { string($0, "schema_registry.username") },
                        password: rm["password"].flatMap { string($0, "schema_registry.password") },
                        caFile: rm["ca_file"].flatMap { string($0, "schema_registry.ca_file") }.map(resolve))
                } else {
                    report(r, "schema_registry has no url", fix: "add `url: http://localhost:8081` (secrets as ${VAR})")
                    ok = false
                }
            } else { ok = false }
        }
        if let n = m["schema"], let s = string(n, "source.schema") { out.schemaFile = resolve(s) }
        if let n = m["descriptor"], let s = string(n, "source.descriptor") { out.descriptorFile = resolve(s) }
        if let n = m["message"], let s = string(n, "source.message") { out.message = s }
        switch format {
        case "json":
            for k in ["schema_registry", "schema", "descriptor", "message"] where m[k] != nil {
                report(m[k], "source.\(k) is for Avro and Protobuf topics, and this source is JSON", fix: "set `format: avro` or `format: protobuf`, or remove \(k)")
                ok = false
            }
        case "avro":
            for k in ["descriptor", "message"] where m[k] != nil {
                report(m[k], "source.\(k) is for Protobuf topics", fix: "Avro takes `schema: FILE.avsc` or `schema_registry`")
                ok = false
            }
            if out.registry == nil && out.schemaFile == nil {
                report(m["format"], "an Avro source needs its writer schemas", fix: "add `schema_registry: {url: http://localhost:8081}` or `schema: events.avsc`")
                ok = false
            }
            if out.registry != nil && out.schemaFile != nil {
                report(m["schema"], "source has both schema_registry and schema", fix: "keep one: the registry (messages carry a schema id) or a fixed schema (bare messages)")
                ok = false
            }
        case "protobuf":
            if m["schema"] != nil {
                report(m["schema"], "source.schema is for Avro topics", fix: "Protobuf takes `descriptor: FILE.desc` and `message: pkg.Type`, or `schema_registry`")
                ok = false
            }
            if out.registry == nil && out.descriptorFile == nil {
                report(m["format"], "a Protobuf source needs its writer schemas", fix: "add `schema_registry: {url: http://localhost:8081}`, or `descriptor: events.desc` (protoc --descriptor_set_out=events.desc --include_imports) and `message: pkg.Event`")
                ok = false
            }
            if out.descriptorFile != nil && out.message == nil {
                report(m["descriptor"], "source.descriptor needs the message type too", fix: "add `message: pkg.Event`")
                ok = false
            }
            // Both: the registry gives writer schemas, the descriptor is the
            // reader (paths resolve to its field numbers).
        default: break
        }
        return ok ? out : nil
    }

    /// Compiles the fixed schema for the topology's paths and reports each
    /// path the schema cannot serve at the place it was written.
    mutating func checkFixedSchema(_ t: Topology, sourceNode: Node?) {
        let fields = TopologyFields(t)
        do {
            let plan = try FixedSchemas.plan(for: t)
            for issue in plan.issues {
                let path = fields.paths[issue.field]
                let node = pathNodes[path]
                let which = issue.field == fields.keyField || t.key.paths.contains(path) ? "key" : (issue.field == fields.timeField ? "time" : "field")
                report(node ?? sourceNode, "\(which) path '\(path)': \(issue.message)",
                       fix: "name a field the writer schema has, with dots through records/messages only")
            }
        } catch {
            report(sourceNode, "cannot read the source's schema: \(error)", fix: "check source.schema / source.descriptor / source.message")
        }
    }
}

/// Fixed writer schemas (no registry), compiled for a topology.
public enum FixedSchemas {
    /// The plan of `t`'s `schema:` or `descriptor:` + `message:`.
    public static func plan(for t: Topology) throws -> BinaryPlan {
        let fields = TopologyFields(t)
        if let f = t.source.schemaFile {
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else { throw SchemaError("cannot read \(f)") }
            return fields.avroPlan(try AvroSchemaParser.parse(text))
        }
        if let f = t.source.descriptorFile, let message = t.source.message {
            guard let data = FileManager.default.contents(atPath: f) else { throw SchemaError("cannot read \(f)") }
            let schema = try ProtoDescriptors.schema(files: ProtoDescriptors.files(descriptorSet: data))
            guard let root = schema.message(named: message) else {
                throw SchemaError("message \(message) is not in \(f) (messages: \(schema.messages.filter { !$0.isMapEntry }.map(\.fullName).joined(separator: ", ")))")
            }
            return fields.protobufPlan(schema, root: root)
        }
        throw SchemaError("the source has no fixed schema")
    }

    /// The Protobuf reader schema of `descriptor` + `message`.
    public static func readerSchema(for t: Topology) throws -> (schema: ProtoSchema, root: Int) {
        guard let f = t.source.descriptorFile, let message = t.source.message else { throw SchemaError("no descriptor") }
        guard let data = FileManager.default.contents(atPath: f) else { throw SchemaError("cannot read \(f)") }
        let schema = try ProtoDescriptors.schema(files: ProtoDescriptors.files(descriptorSet: data))
        guard let root = schema.message(named: message) else { throw SchemaError("message \(message) is not in \(f)") }
        return (schema, root)
    }

    /// How to read `t`'s messages: nil for JSON; a fixed plan; or, with a
    /// registry, an empty table that `SchemaResolver` fills.
    public static func binarySource(for t: Topology) throws -> BinarySource? {
        switch t.source.format {
        case "avro", "protobuf":
            let format: BinaryPlan.Format = t.source.format == "avro" ? .avro : .protobuf
            if t.source.schemaRegistry != nil {
                let table = SchemaTable(format: format, topology: t)
                if format == .protobuf, t.source.descriptorFile != nil { table.protobufReader = try readerSchema(for: t) }
                return BinarySource(table: table)
            }
            return BinarySource(fixed: try plan(for: t))
        default:
            return nil
        }
    }
}
