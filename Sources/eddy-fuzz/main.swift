#if canImport(Glibc)
import Glibc
#endif

import EddyFormats
import Foundation

/// Writes seeds for the binary harnesses: a few clickstream events encoded by EddyFormats'
/// transcoder, framed as the registry's id 1 (`eddy-fuzz seeds DIR`).
func writeSeeds(_ directory: String) throws {
    let events = [
        #"{"user_id":"u1","ts":1767225600000,"event":"view","item_id":"i1"}"#,
        #"{"user_id":"u2","ts":1767225601000,"event":"click","item_id":"i2"}"#,
        #"{"user_id":"u3","ts":1767225602000,"event":"purchase","item_id":"i3","price":12.5}"#,
    ]
    let avro = try AvroSchemaParser.parse(ClickstreamSchemas.avro)
    let proto = try ProtoDescriptors.schema(files: [ClickstreamSchemas.protobufFile])
    for format in ["avro", "protobuf"] {
        try FileManager.default.createDirectory(atPath: "\(directory)/\(format)", withIntermediateDirectories: true)
        for (i, event) in events.enumerated() {
            let obj = try JSONSerialization.jsonObject(with: Data(event.utf8)) as! [String: Any]
            var out: [UInt8] = []
            Transcoder.frame(id: 1, protobuf: format == "protobuf", into: &out)
            if format == "avro" { try Transcoder.avro(obj, avro, into: &out) } else { try Transcoder.protobuf(obj, proto, message: 0, into: &out) }
            try Data(out).write(to: URL(fileURLWithPath: "\(directory)/\(format)/event\(i).bin"))
        }
    }
}

/// Replays files: `eddy-fuzz TARGET FILE...`.
func replay() -> Int32 {
    let arguments = CommandLine.arguments
    if arguments.count == 3, arguments[1] == "seeds" {
        do { try writeSeeds(arguments[2]); return 0 } catch { print("seeds: \(error)"); return 1 }
    }
    guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[1]) else {
        print("usage: eddy-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE...  |  eddy-fuzz seeds DIR")
        return 2
    }
    for path in arguments.dropFirst(2) {
        guard let file = fopen(path, "rb") else { print("cannot open \(path)"); return 1 }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        fclose(file)
        bytes.withUnsafeBytes { run(target, $0) }
    }
    print("replayed \(arguments.count - 2) inputs through \(target.rawValue)")
    return 0
}
exit(replay())
