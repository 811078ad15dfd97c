import EddyCore
import Foundation
import SwiftProtobuf

/// Encodes JSON events (as `JSONSerialization` reads them) as Avro or
/// Protobuf binary, for `eddy dev produce --format` and the benchmarks.
/// Tooling, not a hot path.
public enum Transcoder {
    public struct Mismatch: Error, CustomStringConvertible {
        public var description: String
    }

    // MARK: Avro

    public static func avro(_ v: Any?, _ s: AvroSchema, into out: inout [UInt8]) throws {
        let value: Any? = v is NSNull ? nil : v
        func long(_ x: Int64) {
            var u = UInt64(bitPattern: (x << 1) ^ (x >> 63))
            while u >= 0x80 { out.append(UInt8(u & 0x7F) | 0x80); u >>= 7 }
            out.append(UInt8(u))
        }
        func number() throws -> NSNumber {
            guard let n = value as? NSNumber else { throw Mismatch(description: "expected a number, got \(String(describing: value))") }
            return n
        }
        switch s {
        case .null:
            guard value == nil else { throw Mismatch(description: "expected null") }
        case .boolean: out.append(try number().boolValue ? 1 : 0)
        case .int, .long, .timestampMillis: long(try number().int64Value)
        case .timestampMicros: long(try number().int64Value * 1000)
        case .float: withUnsafeBytes(of: Float(try number().doubleValue).bitPattern.littleEndian) { out.append(contentsOf: $0) }
        case .double: withUnsafeBytes(of: try number().doubleValue.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        case .string, .bytes:
            guard let str = value as? String else { throw Mismatch(description: "expected a string") }
            long(Int64(str.utf8.count)); out.append(contentsOf: str.utf8)
        case .fixed(let size):
            out.append(contentsOf: repeatElement(0, count: size))
        case .enumeration(_, let symbols):
            guard let str = value as? String, let i = symbols.firstIndex(of: str) else { throw Mismatch(description: "not an enum symbol") }
            long(Int64(i))
        case .array(let item):
            let items = (value as? [Any]) ?? []
            if !items.isEmpty { long(Int64(items.count)); for x in items { try avro(x, item, into: &out) } }
            long(0)
        case .map(let values):
            let m = (value as? [String: Any]) ?? [:]
            if !m.isEmpty {
                long(Int64(m.count))
                for (k, x) in m.sorted(by: { $0.key < $1.key }) { try avro(k, .string, into: &out); try avro(x, values, into: &out) }
            }
            long(0)
        case .union(let branches):
            for (i, b) in branches.enumerated() where accepts(b, value) {
                long(Int64(i))
                try avro(value, b, into: &out)
                return
            }
            throw Mismatch(description: "no union branch takes \(String(describing: value))")
        case .record(let r):
            let m = (value as? [String: Any]) ?? [:]
            for f in r.fields { try avro(m[f.name], f.type, into: &out) }
        }
    }

    static func accepts(_ s: AvroSchema, _ v: Any?) -> Bool {
        switch (s, v) {
        case (.null, nil): return true
        case (.null, _), (_, nil): return false
        case (.string, is String), (.enumeration, is String), (.bytes, is String): return true
        case (.record, is [String: Any]), (.map, is [String: Any]), (.array, is [Any]): return true
        case (.int, let n as NSNumber), (.long, let n as NSNumber), (.timestampMillis, let n as NSNumber), (.timestampMicros, let n as NSNumber):
            return n.doubleValue == n.doubleValue.rounded() && String(cString: n.objCType) != "c"
        case (.float, is NSNumber), (.double, is NSNumber): return true
        case (.boolean, let n as NSNumber): return String(cString: n.objCType) == "c"
        default: return false
        }
    }

    // MARK: Protobuf

    public static func protobuf(_ m: [String: Any], _ schema: ProtoSchema, message: Int, into out: inout [UInt8]) throws {
        func varint(_ x: UInt64) {
            var u = x
            while u >= 0x80 { out.append(UInt8(u & 0x7F) | 0x80); u >>= 7 }
            out.append(UInt8(u))
        }
        for f in schema.messages[message].fields {
            guard let v = m[f.name], !(v is NSNull) else { continue }
            let n = v as? NSNumber
            func tag(_ wire: UInt64) { varint(UInt64(f.number) << 3 | wire) }
            switch f.kind {
            case .double: tag(1); withUnsafeBytes(of: (n?.doubleValue ?? 0).bitPattern.littleEndian) { out.append(contentsOf: $0) }
            case .float: tag(5); withUnsafeBytes(of: Float(n?.doubleValue ?? 0).bitPattern.littleEndian) { out.append(contentsOf: $0) }
            case .int64, .uint64, .int32, .uint32, .bool: tag(0); varint(UInt64(bitPattern: n?.int64Value ?? 0))
            case .sint32, .sint64: tag(0); let x = n?.int64Value ?? 0; varint(UInt64(bitPattern: (x << 1) ^ (x >> 63)))
            case .fixed64, .sfixed64: tag(1); withUnsafeBytes(of: (n?.int64Value ?? 0).littleEndian) { out.append(contentsOf: $0) }
            case .fixed32, .sfixed32: tag(5); withUnsafeBytes(of: Int32(truncatingIfNeeded: n?.int64Value ?? 0).littleEndian) { out.append(contentsOf: $0) }
            case .string, .bytes:
                guard let s = v as? String else { continue }
                tag(2); varint(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8)
            case .enumeration(let numbers, let names):
                guard let s = v as? String, let i = names.firstIndex(of: s) else { continue }
                tag(0); varint(UInt64(bitPattern: Int64(numbers[i])))
            case .message(let sub):
                var inner: [UInt8] = []
                if schema.messages[sub].fullName == "google.protobuf.Timestamp", let ms = n?.int64Value {
                    let sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
                    let nanos = (ms - sec * 1000) * 1_000_000
                    if sec != 0 { inner.append(8); var u = UInt64(bitPattern: sec); while u >= 0x80 { inner.append(UInt8(u & 0x7F) | 0x80); u >>= 7 }; inner.append(UInt8(u)) }
                    if nanos != 0 { inner.append(16); var u = UInt64(nanos); while u >= 0x80 { inner.append(UInt8(u & 0x7F) | 0x80); u >>= 7 }; inner.append(UInt8(u)) }
                } else if let d = v as? [String: Any] {
                    try protobuf(d, schema, message: sub, into: &inner)
                } else { continue }
                tag(2); varint(UInt64(inner.count)); out.append(contentsOf: inner)
            }
        }
    }

    /// Confluent framing: magic 0, the id, for Protobuf the index list [0].
    public static func frame(id: UInt32, protobuf: Bool, into out: inout [UInt8]) {
        out.append(0)
        withUnsafeBytes(of: id.bigEndian) { out.append(contentsOf: $0) }
        if protobuf { out.append(0) }
    }
}

/// The clickstream generator's events as Avro and Protobuf schemas.
public enum ClickstreamSchemas {
    public static let avro = """
        {"type": "record", "name": "Click", "namespace": "eddy.clickstream", "fields": [
          {"name": "user_id", "type": "string"},
          {"name": "ts", "type": ["null", "long"], "default": null},
          {"name": "event", "type": "string"},
          {"name": "item_id", "type": "string"},
          {"name": "page", "type": ["null", "string"], "default": null},
          {"name": "price", "type": ["null", "double"], "default": null}]}
        """

    /// `clickstream.proto`: message eddy.clickstream.Click.
    public static var protobufFile: Google_Protobuf_FileDescriptorProto {
        var f = Google_Protobuf_FileDescriptorProto()
        f.name = "clickstream.proto"
        f.package = "eddy.clickstream"
        f.syntax = "proto3"
        var m = Google_Protobuf_DescriptorProto()
        m.name = "Click"
        let fields: [(String, Int32, Google_Protobuf_FieldDescriptorProto.TypeEnum, Bool)] = [
            ("user_id", 1, .string, false), ("ts", 2, .int64, true), ("event", 3, .string, false),
            ("item_id", 4, .string, false), ("page", 5, .string, true), ("price", 6, .double, true),
        ]
        for (name, number, type, optional) in fields {
            var fd = Google_Protobuf_FieldDescriptorProto()
            fd.name = name; fd.number = number; fd.type = type; fd.label = .optional
            if optional {
                fd.proto3Optional = true
                fd.oneofIndex = Int32(m.oneofDecl.count)
                var o = Google_Protobuf_OneofDescriptorProto(); o.name = "_" + name
                m.oneofDecl.append(o)
            }
            m.field.append(fd)
        }
        f.messageType = [m]
        return f
    }
}
