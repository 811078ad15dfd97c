@testable import EddyFormats
import EddyCore
import EddyTopology
import Foundation
import SwiftProtobuf
import Testing

/// The fixtures in Fixtures/ were encoded by fastavro and the Python
/// protobuf runtime (make_fixtures.py); cases.json holds each message and
/// what Eddy must read from it.
enum Fixtures {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    static func text(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }
    static func cases() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("cases.json"))) as! [String: Any]
    }
    static func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// A topology reading every path the cases check.
    static let fieldNames = ["kind", "amount", "count", "uid_old", "user.country", "added", "flag", "score",
                             "order_id", "session_no", "delta", "big", "inner.note"]
    static func topology(format: String = "json", extraSource: String = "", time: String = "{field: ts, unit: ms}",
                         fields: [String] = fieldNames) throws -> Topology {
        let features = fields.enumerated().map { "  - {name: f\($0.offset), kind: last_n, field: \($0.element), n: 1}" }
        let yaml = """
            name: t
            source: {topic: e, format: \(format)\(extraSource)}
            key: user.id
            time: \(time)
            sink: {}
            features:
            \(features.joined(separator: "\n"))
            """
        return try TopologyLoader(environment: [:]).parse(yaml, file: path("t.yaml"))
    }

    /// Registry entries for the Protobuf fixtures: ids 11 (event.proto)
    /// and 12 (event_v2.proto) from their serialized descriptors.
    static func protobufEntry(_ table: SchemaTable, file: String) throws -> SchemaEntry {
        let reg = try cases()["registry"] as! [String: [String: String]]
        let files = reg[file]!
        var protos = try files.filter { $0.key != file }.map { try Google_Protobuf_FileDescriptorProto(serializedBytes: Data(base64Encoded: $0.value)!) }
        let main = try Google_Protobuf_FileDescriptorProto(serializedBytes: Data(base64Encoded: files[file]!)!)
        protos.append(main)
        let schema = try ProtoDescriptors.schema(files: protos)
        return SchemaEntry(plans: ProtoDescriptors.messageIndexes(of: main).map { (path: $0.path, plan: table.compile(protobuf: schema, root: schema.message(named: $0.name)!)) })
    }
}

@Suite struct DecodeFixtureTests {
    func tables(_ t: Topology) throws -> (avro: SchemaTable, protobuf: SchemaTable) {
        let avro = SchemaTable(format: .avro, topology: t)
        avro.add(1, SchemaEntry(plans: [(path: [], plan: avro.compile(avro: try AvroSchemaParser.parse(Fixtures.text("event_v1.avsc"))))]))
        avro.add(2, SchemaEntry(plans: [(path: [], plan: avro.compile(avro: try AvroSchemaParser.parse(Fixtures.text("event_v2.avsc"))))]))
        avro.add(3, SchemaEntry(unknown: ()))
        avro.add(4, SchemaEntry(plans: [(path: [], plan: avro.compile(avro: try AvroSchemaParser.parse(Fixtures.text("event_badkey.avsc"))))]))
        let pb = SchemaTable(format: .protobuf, topology: t)
        pb.add(11, try Fixtures.protobufEntry(pb, file: "event.proto"))
        pb.add(12, try Fixtures.protobufEntry(pb, file: "event_v2.proto"))
        pb.add(13, SchemaEntry(unknown: ()))
        return (avro, pb)
    }

    @Test func everyFixtureCase() throws {
        let t = try Fixtures.topology()
        let (avro, pb) = try tables(t)
        let engines = [
            "avro": FeatureEngine(topology: t, binary: BinarySource(table: avro)),
            "protobuf": FeatureEngine(topology: t, binary: BinarySource(table: pb)),
        ]
        let cases = try Fixtures.cases()["cases"] as! [[String: Any]]
        #expect(cases.count == 18)
        var reasons: Set<String> = []
        for c in cases {
            let name = c["name"] as! String
            let e = engines[c["format"] as! String]!
            var bytes = Fixtures.bytes(hex: c["hex"] as! String)
            let rejected = bytes.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) }
            if let reason = c["reason"] as? String {
                #expect(rejected?.rawValue == reason, "\(name)")
                reasons.insert(reason)
                continue
            }
            #expect(rejected == nil, "\(name): \(String(describing: rejected))")
            guard rejected == nil else { continue }
            let d = e.decoder
            #expect(String(decoding: d.key, as: UTF8.self) == c["key"] as! String, "\(name)")
            #expect(d.timestamp == (c["ts"] as! NSNumber).int64Value, "\(name)")
            for (path, want) in c["fields"] as! [String: Any] {
                let i = d.fields.index(of: FieldPath(dotted: path))!
                let s = d.field(i)
                let label = "\(name): \(path)"
                switch want {
                case let m as [String: Any] where m["missing"] != nil: #expect(s.kind == .missing, "\(label)")
                case is NSNull: #expect(s.kind == .null, "\(label)")
                case let str as String:
                    #expect(s.kind == .string, "\(label)")
                    #expect(String(decoding: d.fieldBytes(i), as: UTF8.self) == str, "\(label)")
                case let n as NSNumber where String(cString: n.objCType) == "c":
                    #expect(s.kind == .bool && s.boolValue == n.boolValue, "\(label)")
                case let n as NSNumber:
                    #expect(s.kind == .number, "\(label)")
                    #expect(s.number == n.doubleValue, "\(label): \(s.number)")
                default: Issue.record("\(label): unexpected \(want)")
                }
            }
        }
        #expect(reasons == ["bad_magic", "truncated", "unknown_schema", "schema_mismatch"])
    }

    /// Mutated and random bytes never crash a decoder: each is read or
    /// refused with a reason. (Also a Protobuf field repeated many times,
    /// which rewrites its slot's text each time.)
    @Test func mutatedInputIsReadOrRefusedNeverACrash() throws {
        let t = try Fixtures.topology()
        let (avro, pb) = try tables(t)
        let engines = ["avro": FeatureEngine(topology: t, binary: BinarySource(table: avro)),
                       "protobuf": FeatureEngine(topology: t, binary: BinarySource(table: pb))]
        let cases = try Fixtures.cases()["cases"] as! [[String: Any]]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        var refused = 0, read = 0
        for round in 0..<20_000 {
            let c = cases[round % cases.count]
            let e = engines[c["format"] as! String]!
            var bytes = Fixtures.bytes(hex: c["hex"] as! String)
            switch next() % 4 {
            case 0: for _ in 0..<(1 + next() % 4) where bytes.count > 5 { bytes[5 + Int(next() % UInt64(bytes.count - 5))] = UInt8(next() & 0xFF) }
            case 1: bytes = Array(bytes.prefix(Int(next() % UInt64(bytes.count + 1))))
            case 2: bytes = Array(bytes.prefix(6)) + (0..<Int(next() % 64)).map { _ in UInt8(next() & 0xFF) }
            default: bytes.insert(UInt8(next() & 0xFF), at: Int(next() % UInt64(bytes.count + 1)))
            }
            let r = bytes.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) }
            if r == nil { read += 1 } else { refused += 1 }
        }
        #expect(refused > 1000 && read > 100, "read \(read), refused \(refused)")
        // Field 8 (count, an int32 with text for last_n) 10,000 times: the last wins.
        var msg: [UInt8] = [0, 0, 0, 0, 11, 2, 2, 0x0A, 0x04, 0x0A, 0x02, 0x75, 0x31, 0x12, 0x02, 0x08, 0x01]
        for k in 0..<10_000 { msg += [0x40, UInt8(k % 100)] }
        let e = engines["protobuf"]!
        #expect(msg.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) } == nil)
        let i = e.decoder.fields.index(of: FieldPath(dotted: "count"))!
        #expect(String(decoding: e.decoder.fieldBytes(i), as: UTF8.self) == "99")
    }

    /// Numbers read by last_n keep their text, as JSON's do.
    @Test func numberTextForLastN() throws {
        let t = try Fixtures.topology()
        let (avro, _) = try tables(t)
        let e = FeatureEngine(topology: t, binary: BinarySource(table: avro))
        let c = (try Fixtures.cases()["cases"] as! [[String: Any]])[0]
        var bytes = Fixtures.bytes(hex: c["hex"] as! String)
        #expect(bytes.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) } == nil)
        func text(_ p: String) -> String { String(decoding: e.decoder.fieldBytes(e.decoder.fields.index(of: FieldPath(dotted: p))!), as: UTF8.self) }
        #expect(text("amount") == "12.5")
        #expect(text("count") == "7")
        #expect(text("score") == "1.5")
    }

    /// The fixed-descriptor mode reads bare messages (no framing).
    @Test func bareProtobufWithDescriptorSet() throws {
        let t = try Fixtures.topology(format: "protobuf", extraSource: ", descriptor: event.desc, message: shop.Event",
                                      fields: Fixtures.fieldNames.filter { $0 != "uid_old" && $0 != "added" })
        let schema = try ProtoDescriptors.schema(files: ProtoDescriptors.files(descriptorSet: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("event.desc")))))
        let plan = TopologyFields(t).protobufPlan(schema, root: schema.message(named: "shop.Event")!)
        let e = FeatureEngine(topology: t, binary: BinarySource(fixed: plan))
        let c = try Fixtures.cases()["bare_protobuf"] as! [String: Any]
        var bytes = Fixtures.bytes(hex: c["hex"] as! String)
        #expect(bytes.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) } == nil)
        #expect(String(decoding: e.decoder.key, as: UTF8.self) == "u1")
        #expect(e.decoder.timestamp == 1_767_225_600_005)
    }

    /// What `eddy check` reports: paths into arrays, maps, bytes and
    /// scalars, paths ending at records, names the writer lacks.
    @Test func planIssues() throws {
        let s = try AvroSchemaParser.parse(Fixtures.text("event_v1.avsc"))
        let paths = ["tags.x", "attrs.k", "payload.x", "user", "count.x", "nope", "user.id"].map { FieldPath(dotted: $0) }
        let plan = BinaryPlan.avro(s, paths: paths, keyField: 6, timeField: -1)
        let byField = Dictionary(grouping: plan.issues, by: \.field)
        #expect(byField[0]?.first?.message.contains("an array") == true)
        #expect(byField[1]?.first?.message.contains("a map") == true)
        #expect(byField[2]?.first?.message.contains("bytes") == true)
        #expect(byField[3]?.first?.message.contains("a record") == true)
        #expect(byField[4]?.first?.message.contains("an int") == true)
        #expect(byField[5]?.first?.message.contains("not a field") == true)
        #expect(byField[6] == nil)
        #expect(!plan.mismatch)
        let pschema = try ProtoDescriptors.schema(files: ProtoDescriptors.files(descriptorSet: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("event.desc")))))
        let pplan = BinaryPlan.protobuf(pschema, root: pschema.message(named: "shop.Event")!,
                                        paths: ["tags", "attrs.x", "user", "ts", "ts.seconds"].map { FieldPath(dotted: $0) })
        let p = Dictionary(grouping: pplan.issues, by: \.field)
        #expect(p[0]?.first?.message.contains("an array") == true)
        #expect(p[1]?.first?.message.contains("a map") == true)
        #expect(p[2]?.first?.message.contains("a message") == true)
        #expect(p[3] == nil)
        #expect(p[4]?.first?.message.contains("Timestamp") == true)
    }
}

@Suite struct FormatTopologyTests {
    func errors(_ source: String, fields: [String] = ["kind"]) -> String {
        do {
            _ = try Fixtures.topology(format: "avro", extraSource: source, fields: fields)
            return ""
        } catch { return "\(error)" }
    }

    /// `eddy check` names the line and column of a path the schema cannot serve.
    @Test func checkReportsPathsWithPositions() throws {
        let e = errors(", schema: event_v1.avsc", fields: ["kind", "tags.first", "attrs.k", "payload.x"])
        #expect(e.contains("t.yaml:8:37: error: field path 'tags.first': goes into an array"), "\(e)")
        #expect(e.contains("t.yaml:9:37: error: field path 'attrs.k': goes into a map"), "\(e)")
        #expect(e.contains("t.yaml:10:37: error: field path 'payload.x': goes into bytes"), "\(e)")
        #expect(errors(", schema: event_v1.avsc", fields: ["kind", "user.country"]) == "")
    }

    @Test func settingsMustFitTheFormat() throws {
        #expect(errors("").contains("an Avro source needs its writer schemas"))
        #expect(errors(", schema: x.avsc, schema_registry: {url: http://r:8081}").contains("both schema_registry and schema"))
        #expect(errors(", schema_registry: {url: ftp://r}").contains("is not an http(s) URL"))
        #expect(errors(", descriptor: event.desc").contains("source.descriptor is for Protobuf topics"))
        let t = try Fixtures.topology(format: "avro", extraSource: ", schema_registry: {url: http://r:8081, username: u, password: p}")
        #expect(t.source.schemaRegistry == SchemaRegistrySettings(url: "http://r:8081", username: "u", password: "p"))
        #expect(t.source.format == "avro")
    }
}

@Suite struct ProtobufReaderTests {
    /// With a reader descriptor beside the registry, paths resolve to the
    /// reader's field numbers: v2 renamed `delta` (11) to `change`, and
    /// `delta` still reads it; `count` (8), removed in v2, is missing.
    @Test func fieldsResolveByNumberThroughTheReader() throws {
        let t = try Fixtures.topology(format: "protobuf", extraSource: ", descriptor: event.desc, message: shop.Event, schema_registry: {url: \"http://127.0.0.1:1\"}",
                                      fields: Fixtures.fieldNames.filter { $0 != "uid_old" && $0 != "added" })
        let source = try #require(try FixedSchemas.binarySource(for: t))
        let table = try #require(source.table)
        #expect(table.protobufReader != nil)
        table.add(12, try Fixtures.protobufEntry(table, file: "event_v2.proto"))
        let e = FeatureEngine(topology: t, binary: source)
        let c = (try Fixtures.cases()["cases"] as! [[String: Any]]).first { $0["name"] as? String == "protobuf v2 evolution" }!
        var bytes = Fixtures.bytes(hex: c["hex"] as! String)
        #expect(bytes.withUnsafeMutableBytes { e.decode(UnsafeRawBufferPointer($0)) } == nil)
        let d = e.decoder
        let delta = d.field(d.fields.index(of: FieldPath(dotted: "delta"))!)
        #expect(delta.kind == .number && delta.number == 9)
        #expect(d.field(d.fields.index(of: FieldPath(dotted: "count"))!).kind == .missing)
        #expect(String(decoding: d.fieldBytes(d.fields.index(of: FieldPath(dotted: "kind"))!), as: UTF8.self) == "REFUND")
    }
}
