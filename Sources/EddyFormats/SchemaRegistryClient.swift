import EddyCore
import SwiftProtobuf
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The registry could not answer (unreachable, timed out, 5xx): not the
/// message's fault. The worker holds consumption and retries.
public struct RegistryUnavailable: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One schema as the registry returns it.
public struct RegistrySchema: Sendable, Equatable {
    public struct Reference: Sendable, Equatable {
        public var name: String
        public var subject: String
        public var version: Int
    }
    /// AVRO (the default), PROTOBUF or JSON.
    public var schemaType: String
    /// Avro: the JSON schema. Protobuf: a base64 `FileDescriptorProto`
    /// (asked for with `format=serialized`).
    public var schema: String
    public var references: [Reference]
}

/// A Confluent-compatible schema registry client: `GET /schemas/ids/{id}`
/// (and for Protobuf its references, `GET /subjects/{s}/versions/{v}`),
/// with basic auth. Blocking; used off the hot path, once per schema id.
public final class SchemaRegistryClient: @unchecked Sendable {
    public let settings: SchemaRegistrySettings
    let session: URLSession
    let timeout: TimeInterval

    public init(settings: SchemaRegistrySettings, timeout: TimeInterval = 5) {
        self.settings = settings
        self.timeout = timeout
        if let ca = settings.caFile, !ca.isEmpty {
            // swift-corelibs-foundation's URLSession (libcurl) reads its CA
            // bundle from this variable.
            setenv("URLSessionCertificateAuthorityInfoFile", ca, 1)
        }
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = timeout
        c.requestCachePolicy = .reloadIgnoringLocalCacheData
        session = URLSession(configuration: c)
    }

    public enum Answer: Sendable, Equatable {
        case found(RegistrySchema)
        case notFound
    }

    /// The writer schema with `id`.
    public func schema(id: UInt32, format: BinaryPlan.Format) throws(RegistryUnavailable) -> Answer {
        try get("/schemas/ids/\(id)" + (format == .protobuf ? "?format=serialized" : ""))
    }

    /// A referenced schema (Protobuf imports).
    public func schema(subject: String, version: Int, format: BinaryPlan.Format) throws(RegistryUnavailable) -> Answer {
        let s = subject.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? subject
        return try get("/subjects/\(s)/versions/\(version)" + (format == .protobuf ? "?format=serialized" : ""))
    }

    /// Registers `schema` under `subject` (`POST /subjects/{s}/versions`)
    /// and returns its id.
    public func register(subject: String, schema: String, schemaType: String) throws -> UInt32 {
        var base = settings.url
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base + "/subjects/\(subject)/versions") else { throw SchemaError("bad registry URL") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/vnd.schemaregistry.v1+json", forHTTPHeaderField: "Content-Type")
        if let u = settings.username {
            request.setValue("Basic \(Data("\(u):\(settings.password ?? "")".utf8).base64EncodedString())", forHTTPHeaderField: "Authorization")
        }
        var body: [String: Any] = ["schema": schema]
        if schemaType != "AVRO" { body["schemaType"] = schemaType }
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        session.dataTask(with: request) { data, response, error in
            box.data = data; box.status = (response as? HTTPURLResponse)?.statusCode ?? 0; box.error = error
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + timeout + 1)
        guard box.status == 200, let data = box.data,
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let id = obj["id"] as? Int
        else {
            throw SchemaError("registering \(subject) at \(settings.url) failed: HTTP \(box.status) \(box.error.map { "\($0)" } ?? "")")
        }
        return UInt32(id)
    }

    func get(_ path: String) throws(RegistryUnavailable) -> Answer {
        var base = settings.url
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base + path) else { throw RegistryUnavailable("bad registry URL \(settings.url)") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.setValue("application/vnd.schemaregistry.v1+json", forHTTPHeaderField: "Accept")
        if let u = settings.username {
            let token = Data("\(u):\(settings.password ?? "")".utf8).base64EncodedString()
            request.setValue("Basic \(token)", forHTTPHeaderField: "Authorization")
        }
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        let task = session.dataTask(with: request) { data, response, error in
            box.data = data
            box.status = (response as? HTTPURLResponse)?.statusCode ?? 0
            box.error = error
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + timeout + 1) == .timedOut {
            task.cancel()
            throw RegistryUnavailable("schema registry \(settings.url) did not answer within \(Int(timeout)) s")
        }
        if let e = box.error { throw RegistryUnavailable("schema registry \(settings.url) unreachable: \(e.localizedDescription)") }
        switch box.status {
        case 200:
            guard let data = box.data, let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let schema = obj["schema"] as? String
            else { throw RegistryUnavailable("schema registry \(settings.url) answered \(path) with no schema") }
            let refs = ((obj["references"] as? [[String: Any]]) ?? []).compactMap { r -> RegistrySchema.Reference? in
                guard let n = r["name"] as? String, let s = r["subject"] as? String, let v = r["version"] as? Int else { return nil }
                return RegistrySchema.Reference(name: n, subject: s, version: v)
            }
            return .found(RegistrySchema(schemaType: (obj["schemaType"] as? String) ?? "AVRO", schema: schema, references: refs))
        case 404:
            return .notFound
        case 401, 403:
            throw RegistryUnavailable("schema registry \(settings.url) refused the credentials (HTTP \(box.status))")
        default:
            throw RegistryUnavailable("schema registry \(settings.url) answered HTTP \(box.status) for \(path)")
        }
    }

    final class ResultBox: @unchecked Sendable {
        var data: Data?
        var status = 0
        var error: Error?
    }
}

/// Fills a `SchemaTable` from the registry: once per schema id, it fetches
/// the writer schema, parses it and compiles a plan for the topology's
/// fields. A 404 (or a schema Eddy cannot read) is remembered as unknown,
/// so its messages are dead letters (`unknown_schema`); an unreachable
/// registry throws `RegistryUnavailable` and nothing is remembered.
public final class SchemaResolver: @unchecked Sendable {
    public let table: SchemaTable
    let client: SchemaRegistryClient
    /// Why the last unknown schema was unknown, for logs.
    public private(set) var lastProblem: String?
    public private(set) var fetched = 0

    public init(table: SchemaTable, client: SchemaRegistryClient) {
        self.table = table
        self.client = client
    }

    /// Makes sure `id` is in the table.
    public func resolve(_ id: UInt32) throws(RegistryUnavailable) {
        if table.entry(id) != nil { return }
        let entry: SchemaEntry
        switch try client.schema(id: id, format: table.format) {
        case .notFound:
            lastProblem = "the schema registry has no schema \(id)"
            entry = SchemaEntry(unknown: ())
        case .found(let s):
            fetched += 1
            do {
                entry = try compile(s)
            } catch let e as RegistryUnavailable {
                throw e
            } catch {
                lastProblem = "schema \(id): \(error)"
                entry = SchemaEntry(unknown: ())
            }
        }
        table.add(id, entry)
    }

    /// Resolves the schema id of every Confluent-framed message in `values`
    /// (messages without the magic byte are left to the decoder).
    public func resolve<S: Sequence>(messages values: S) throws(RegistryUnavailable) where S.Element == UnsafeRawBufferPointer {
        var last: UInt32 = .max
        for v in values {
            guard let id = BinarySource.schemaID(v), id != last else { continue }
            last = id
            try resolve(id)
        }
    }

    func compile(_ s: RegistrySchema) throws -> SchemaEntry {
        switch table.format {
        case .avro:
            guard s.schemaType.uppercased() == "AVRO" else { throw SchemaError("it is a \(s.schemaType) schema, not Avro") }
            return SchemaEntry(plans: [(path: [], plan: table.compile(avro: try AvroSchemaParser.parse(s.schema)))])
        case .protobuf:
            guard s.schemaType.uppercased() == "PROTOBUF" else { throw SchemaError("it is a \(s.schemaType) schema, not Protobuf") }
            var files: [Google_Protobuf_FileDescriptorProto] = []
            var seen: Set<String> = []
            func addReferences(_ refs: [RegistrySchema.Reference]) throws {
                for r in refs where !seen.contains(r.subject + "/\(r.version)") {
                    seen.insert(r.subject + "/\(r.version)")
                    guard case .found(let rs) = try client.schema(subject: r.subject, version: r.version, format: .protobuf) else {
                        throw SchemaError("its reference \(r.name) (\(r.subject) version \(r.version)) is not in the registry")
                    }
                    try addReferences(rs.references)
                    files.append(try Self.fileDescriptor(rs.schema))
                }
            }
            try addReferences(s.references)
            let main = try Self.fileDescriptor(s.schema)
            files.append(main)
            let schema = try ProtoDescriptors.schema(files: files)
            var plans: [(path: [Int32], plan: BinaryPlan)] = []
            for (path, name) in ProtoDescriptors.messageIndexes(of: main) {
                guard let root = schema.message(named: name) else { continue }
                plans.append((path: path, plan: table.compile(protobuf: schema, root: root)))
            }
            return SchemaEntry(plans: plans)
        }
    }

    static func fileDescriptor(_ base64: String) throws -> Google_Protobuf_FileDescriptorProto {
        guard let data = Data(base64Encoded: base64) else {
            throw SchemaError("the registry gave .proto text; Eddy reads Protobuf schemas as serialized descriptors (GET ...?format=serialized)")
        }
        return try Google_Protobuf_FileDescriptorProto(serializedBytes: data)
    }
}
