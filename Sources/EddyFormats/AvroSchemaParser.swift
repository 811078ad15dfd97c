import EddyCore
import Foundation

/// A schema that could not be read, with what to fix.
public struct SchemaError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Parses Avro JSON schemas (`.avsc`, a registry's `schema` string) into
/// EddyCore's `AvroSchema`. Named types are inlined where referenced;
/// recursive types are refused.
public enum AvroSchemaParser {
    public static func parse(_ text: String) throws -> AvroSchema {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch {
            throw SchemaError("the Avro schema is not valid JSON: \(error.localizedDescription)")
        }
        var named: [String: AvroSchema] = [:]
        var defining: Set<String> = []
        return try parse(json, namespace: nil, named: &named, defining: &defining)
    }

    static func fullName(_ name: String, _ namespace: String?) -> String {
        if name.contains(".") { return name }
        if let ns = namespace, !ns.isEmpty { return ns + "." + name }
        return name
    }

    static func parse(_ json: Any, namespace: String?, named: inout [String: AvroSchema],
                      defining: inout Set<String>) throws -> AvroSchema
    {
        if let name = json as? String {
            switch name {
            case "null": return .null
            case "boolean": return .boolean
            case "int": return .int
            case "long": return .long
            case "float": return .float
            case "double": return .double
            case "bytes": return .bytes
            case "string": return .string
            default:
                let full = fullName(name, namespace)
                if defining.contains(full) || defining.contains(name) {
                    throw SchemaError("the Avro schema is recursive at '\(name)', which Eddy does not read")
                }
                if let s = named[full] ?? named[name] { return s }
                throw SchemaError("the Avro schema names an unknown type '\(name)'")
            }
        }
        if let branches = json as? [Any] {
            return .union(try branches.map { try parse($0, namespace: namespace, named: &named, defining: &defining) })
        }
        guard let obj = json as? [String: Any] else { throw SchemaError("the Avro schema has a value that is not a type: \(json)") }
        guard let type = obj["type"] else { throw SchemaError("an Avro schema object has no \"type\"") }
        let logical = obj["logicalType"] as? String
        if let t = type as? String {
            switch t {
            case "record", "error":
                guard let name = obj["name"] as? String else { throw SchemaError("an Avro record has no \"name\"") }
                let ns = (obj["namespace"] as? String) ?? (name.contains(".") ? String(name[..<name.lastIndex(of: ".")!]) : namespace)
                let full = fullName(name, ns)
                defining.insert(full)
                guard let fields = obj["fields"] as? [[String: Any]] else { throw SchemaError("Avro record \(name) has no \"fields\" array") }
                var out: [AvroField] = []
                for f in fields {
                    guard let fname = f["name"] as? String, let ftype = f["type"] else {
                        throw SchemaError("a field of Avro record \(name) has no \"name\" or \"type\"")
                    }
                    let aliases = (f["aliases"] as? [String]) ?? []
                    out.append(AvroField(name: fname, aliases: aliases,
                                         type: try parse(ftype, namespace: ns, named: &named, defining: &defining)))
                }
                defining.remove(full)
                let s = AvroSchema.record(AvroRecord(name: full, fields: out))
                named[full] = s
                for a in (obj["aliases"] as? [String]) ?? [] { named[fullName(a, ns)] = s }
                return s
            case "enum":
                guard let name = obj["name"] as? String, let symbols = obj["symbols"] as? [String] else {
                    throw SchemaError("an Avro enum needs \"name\" and \"symbols\"")
                }
                let ns = (obj["namespace"] as? String) ?? namespace
                let s = AvroSchema.enumeration(name: fullName(name, ns), symbols: symbols)
                named[fullName(name, ns)] = s
                return s
            case "fixed":
                guard let name = obj["name"] as? String, let size = obj["size"] as? Int else {
                    throw SchemaError("an Avro fixed needs \"name\" and \"size\"")
                }
                let s = AvroSchema.fixed(size: size)
                named[fullName(name, (obj["namespace"] as? String) ?? namespace)] = s
                return s
            case "array":
                guard let items = obj["items"] else { throw SchemaError("an Avro array has no \"items\"") }
                return .array(try parse(items, namespace: namespace, named: &named, defining: &defining))
            case "map":
                guard let values = obj["values"] else { throw SchemaError("an Avro map has no \"values\"") }
                return .map(try parse(values, namespace: namespace, named: &named, defining: &defining))
            case "long" where logical == "timestamp-millis" || logical == "local-timestamp-millis":
                return .timestampMillis
            case "long" where logical == "timestamp-micros" || logical == "local-timestamp-micros":
                return .timestampMicros
            default:
                return try parse(t, namespace: namespace, named: &named, defining: &defining)
            }
        }
        return try parse(type, namespace: namespace, named: &named, defining: &defining)
    }
}
