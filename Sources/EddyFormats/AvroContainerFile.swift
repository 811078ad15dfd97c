import CZlib
import EddyCore
import Foundation

/// Reads an Avro object container file (`.avro`): the header's writer
/// schema, then each datum's bytes, block by block (codecs `null` and
/// `deflate`). For `eddy replay --input file.avro`.
public final class AvroContainerReader {
    public let schemaText: String
    public let schema: AvroSchema
    public let codec: String
    let data: [UInt8]
    var pos: Int
    let sync: [UInt8]
    /// Splits a block into datums (a plan that only skips).
    let skipper: BinaryPlan
    var block: [UInt8] = []
    var blockPos = 0
    var blockLeft = 0

    public static func looksLikeContainer(path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        return (try? h.read(upToCount: 4)).map { Array($0) == [0x4F, 0x62, 0x6A, 0x01] } ?? false
    }

    public init(path: String) throws {
        guard let d = FileManager.default.contents(atPath: path) else { throw SchemaError("cannot read \(path)") }
        let data = Array(d)
        guard data.count >= 4, data[0..<4] == [0x4F, 0x62, 0x6A, 0x01] else {
            throw SchemaError("\(path) is not an Avro object container file (no 'Obj\\u{1}' magic)")
        }
        var pos = 4
        var meta: [String: [UInt8]] = [:]
        func long() throws -> Int64 {
            var r: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard pos < data.count, shift < 64 else { throw SchemaError("\(path): the header is truncated") }
                let b = data[pos]; pos += 1
                r |= UInt64(b & 0x7F) << shift
                if b < 0x80 { break }
                shift += 7
            }
            return Int64(bitPattern: (r >> 1) ^ (0 &- (r & 1)))
        }
        func bytes() throws -> [UInt8] {
            let n = Int(try long())
            guard n >= 0, pos + n <= data.count else { throw SchemaError("\(path): the header is truncated") }
            defer { pos += n }
            return Array(data[pos..<pos + n])
        }
        while true {
            var count = try long()
            if count == 0 { break }
            if count < 0 { count = -count; _ = try long() }
            for _ in 0..<count {
                let k = String(decoding: try bytes(), as: UTF8.self)
                meta[k] = try bytes()
            }
        }
        guard pos + 16 <= data.count else { throw SchemaError("\(path): the header is truncated") }
        sync = Array(data[pos..<pos + 16])
        pos += 16
        guard let s = meta["avro.schema"] else { throw SchemaError("\(path): the header has no avro.schema") }
        schemaText = String(decoding: s, as: UTF8.self)
        schema = try AvroSchemaParser.parse(schemaText)
        codec = meta["avro.codec"].map { String(decoding: $0, as: UTF8.self) } ?? "null"
        guard codec == "null" || codec == "deflate" else {
            throw SchemaError("\(path): codec \(codec) is not supported (null and deflate are)")
        }
        skipper = BinaryPlan.avro(schema, paths: [])
        self.data = data
        self.pos = pos
    }

    /// Calls `body` with each datum's bytes, in file order.
    public func forEachDatum(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        while pos < data.count {
            var count = 0, size = 0
            try data.withUnsafeBufferPointer { d in
                var i = pos
                func long() throws -> Int64 {
                    var r: UInt64 = 0, shift: UInt64 = 0
                    while true {
                        guard i < d.count, shift < 64 else { throw SchemaError("a block header is truncated") }
                        let b = d[i]; i += 1
                        r |= UInt64(b & 0x7F) << shift
                        if b < 0x80 { break }
                        shift += 7
                    }
                    return Int64(bitPattern: (r >> 1) ^ (0 &- (r & 1)))
                }
                count = Int(try long())
                size = Int(try long())
                pos = i
            }
            guard count >= 0, size >= 0, pos + size + 16 <= data.count else { throw SchemaError("a block is truncated") }
            let raw = Array(data[pos..<pos + size])
            pos += size
            guard Array(data[pos..<pos + 16]) == sync else { throw SchemaError("a block's sync marker does not match the header's") }
            pos += 16
            let payload = codec == "deflate" ? try Self.inflateRaw(raw) : raw
            try payload.withUnsafeBytes { p in
                var at = 0
                for _ in 0..<count {
                    let rest = UnsafeRawBufferPointer(rebasing: p[at...])
                    guard let n = skipper.avroDatumLength(rest) else { throw SchemaError("a datum does not match the file's schema") }
                    try body(UnsafeRawBufferPointer(rebasing: rest[..<n]))
                    at += n
                }
            }
        }
    }

    /// Raw deflate (RFC 1951), as Avro's deflate codec writes it.
    static func inflateRaw(_ input: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw SchemaError("zlib inflateInit failed")
        }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { inp in
            stream.next_in = inp.baseAddress
            stream.avail_in = UInt32(inp.count)
            while true {
                let r: Int32 = chunk.withUnsafeMutableBufferPointer { c in
                    stream.next_out = c.baseAddress
                    stream.avail_out = UInt32(c.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                out.append(contentsOf: chunk[0..<(chunk.count - Int(stream.avail_out))])
                if r == Z_STREAM_END { return Z_OK }
                if r != Z_OK { return r }
                if stream.avail_in == 0 && stream.avail_out != 0 { return Z_OK }
            }
        }
        guard status == Z_OK else { throw SchemaError("a deflate block is corrupt (zlib \(status))") }
        return out
    }
}
