// libFuzzer harnesses for the parsers that take untrusted input. One binary, the target
// chosen by EDDY_FUZZ_TARGET (fuzzing) or the first argument (replaying files):
//
//   json        JSON messages through the engine: the hand-written JSON scanner, field paths,
//               numbers and times, then the operators, filters and reads on what it accepted
//   topology    the topology loader (YAML through Yams, then every check of `eddy check`)
//   expression  `derived:` expressions: parse, compile and evaluate
//   http-path   the feature server's fast-path request target parser
//   resp        the RESP decoders: the server's event-loop decoder and hiredis's reader
//   avro        Confluent-framed Avro messages (clickstream schema, id 1) through the engine
//   protobuf    Confluent-framed Protobuf messages (clickstream descriptor, id 1) through the engine
//
// `.ci/fuzz` builds it with `-sanitize=fuzzer,address` and EDDY_FUZZING=1, which makes
// Package.swift leave out main.swift (libFuzzer supplies `main`), and runs each target for a
// fixed number of executions from its committed seeds in Tests/FuzzCorpus/<target>. Built
// normally, main.swift makes it a replayer: `eddy-fuzz TARGET FILE...` runs each file once (a
// crash reproduces that way).

#if canImport(Glibc)
import Glibc
#endif
import EddyCore
import EddyFormats
import EddyRedis
import EddyServer
import EddyStore
import EddyTopology
import NIOCore

enum FuzzTarget: String, CaseIterable {
    case json, topology, expression, httpPath = "http-path", resp, avro, protobuf
}

/// The clickstream topology with a nested path and a filter: the decoder's and the
/// operators' usual shape.
enum Fuzz {
    static let topology: Topology = {
    let text = """
        name: fuzz
        source: {brokers: "localhost:9092", topic: t, group: g}
        key: user.id
        time: {field: ts, unit: ms}
        features:
          - {name: items, kind: last_n, field: item_id, n: 5, distinct: true}
          - {name: s, kind: session, gap: 30m}
          - {name: clicks, kind: count, window: 1h, hop: 5m, where: 'event == "click" and price > 2'}
          - {name: spend, kind: sum, field: price, window: 1h}
        derived:
          - {name: ratio, expr: "spend / max(clicks, 1)"}
        sink: {redis: "redis://127.0.0.1:6379", prefix: "f:", ttl: 1d}
        """
    do { return try TopologyLoader(environment: [:]).parse(text, file: "<fuzz>") } catch {
        fatalError("the fuzz topology is invalid: \(error)")
    }
    }()
}

/// The engine the JSON target feeds; renewed now and then so that the keys of millions of
/// inputs do not pile up in one state store.
nonisolated(unsafe) var jsonEngine: FeatureEngine?
nonisolated(unsafe) var jsonInputs = 0

func fuzzJSON(_ bytes: UnsafeRawBufferPointer) {
    jsonInputs += 1
    if jsonEngine == nil || jsonInputs % 10_000 == 0 { jsonEngine = FeatureEngine(topology: Fuzz.topology) }
    let engine = jsonEngine!
    if case .accepted(let slot) = engine.process(bytes, messageKey: nil, messageTimestamp: 0) {
        var w = JSONWriter()
        engine.writeFeatures(slot, at: 1_767_225_600_000, into: &w)
        engine.writeFeatures(slot, at: -1, into: &w)
    }
}

/// The clickstream topology (built in) with one registered writer schema, id 1, in `format`:
/// the binary decoders' plans, the framing and the operators behind them.
final class BinaryHarness {
    let engine: FeatureEngine
    let topology: Topology

    init(_ format: BinaryPlan.Format) {
        do {
            var t = try TopologyLoader(environment: [:]).parse(EmbeddedTopologies.all["clickstream"]!, file: "<clickstream>")
            t.source.format = format == .avro ? "avro" : "protobuf"
            let table = SchemaTable(format: format, topology: t)
            let fields = TopologyFields(t)
            if format == .avro {
                table.add(1, SchemaEntry(plans: [(path: [], plan: fields.avroPlan(try AvroSchemaParser.parse(ClickstreamSchemas.avro)))]))
            } else {
                let proto = try ProtoDescriptors.schema(files: [ClickstreamSchemas.protobufFile])
                table.add(1, SchemaEntry(plans: [(path: [0], plan: fields.protobufPlan(proto, root: 0))]))
            }
            topology = t
            engine = FeatureEngine(topology: t, binary: BinarySource(table: table))
        } catch {
            fatalError("the \(format) fuzz harness cannot be set up: \(error)")
        }
    }
}

nonisolated(unsafe) var binaryHarnesses: [BinaryPlan.Format: BinaryHarness] = [:]
nonisolated(unsafe) var binaryInputs = 0

func fuzzBinary(_ format: BinaryPlan.Format, _ bytes: UnsafeRawBufferPointer) {
    binaryInputs += 1
    if binaryHarnesses[format] == nil || binaryInputs % 10_000 == 0 { binaryHarnesses[format] = BinaryHarness(format) }
    let engine = binaryHarnesses[format]!.engine
    if case .accepted(let slot) = engine.process(bytes, messageKey: nil, messageTimestamp: 0) {
        var w = JSONWriter()
        engine.writeFeatures(slot, at: 1_767_225_600_000, into: &w)
    }
}

func fuzzTopologyText(_ bytes: UnsafeRawBufferPointer) {
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? TopologyLoader(environment: ["V": "1"]).parse(text, file: "<fuzz>")
}

func fuzzExpression(_ bytes: UnsafeRawBufferPointer) {
    let text = String(decoding: bytes, as: UTF8.self)
    guard let parsed = try? DerivedParser.parse(text) else { return }
    var names: [String: Int] = [:]
    let program = DerivedProgram(parsed.expression) { name in
        if let i = names[name] { return i }
        names[name] = names.count
        return names.count - 1
    }
    let inputs: [Double] = (0..<max(names.count, 1)).map { i in
        [1, 0, -2.5, .nan, 1e308, -0.0, 3][i % 7]
    }
    _ = program.evaluate(inputs.map { $0.isNaN ? nil : $0 })
}

func fuzzHTTPPath(_ bytes: UnsafeRawBufferPointer) {
    let path = "/v1/features/" + String(decoding: bytes, as: UTF8.self)
    _ = FastPathRoutes.parseRead(path)
    _ = FastPathRoutes.parseRead(String(decoding: bytes, as: UTF8.self))
}

func fuzzRESP(_ bytes: UnsafeRawBufferPointer) {
    var buffer = ByteBuffer(bytes: bytes)
    while let reply = try? RESPReplyDecoder.parse(&buffer) { _ = reply }
    _ = try? RESPBytes.replies(in: bytes)
}

func run(_ target: FuzzTarget, _ bytes: UnsafeRawBufferPointer) {
    switch target {
    case .json: fuzzJSON(bytes)
    case .topology: fuzzTopologyText(bytes)
    case .expression: fuzzExpression(bytes)
    case .httpPath: fuzzHTTPPath(bytes)
    case .resp: fuzzRESP(bytes)
    case .avro: fuzzBinary(.avro, bytes)
    case .protobuf: fuzzBinary(.protobuf, bytes)
    }
}

/// Read once, on the first input (a static is initialised lazily; a global in main.swift is not).
enum Selected {
    static let target: FuzzTarget = {
    let name = getenv("EDDY_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        fatalError("set EDDY_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return t
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    run(Selected.target, UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
