import EddyCore
import Foundation
import SwiftProtobuf

/// Reads Protobuf descriptors (a `FileDescriptorSet` from
/// `protoc --descriptor_set_out --include_imports`, or a registry's
/// serialized `FileDescriptorProto`s) into EddyCore's `ProtoSchema`.
public enum ProtoDescriptors {
    public static func files(descriptorSet data: Data) throws -> [Google_Protobuf_FileDescriptorProto] {
        do {
            return try Google_Protobuf_FileDescriptorSet(serializedBytes: data).file
        } catch {
            throw SchemaError("not a FileDescriptorSet (make it with `protoc --descriptor_set_out=FILE --include_imports`): \(error)")
        }
    }

    /// Every message of `files`, by full name (imports included: a field
    /// whose type is in another file needs that file here).
    public static func schema(files: [Google_Protobuf_FileDescriptorProto]) throws -> ProtoSchema {
        // Pass 1: names of every message and enum.
        var messageNames: [String] = []
        var descriptors: [(Google_Protobuf_DescriptorProto, String, Bool)] = []  // (message, full name, proto3)
        var enums: [String: Google_Protobuf_EnumDescriptorProto] = [:]
        func walk(_ m: Google_Protobuf_DescriptorProto, prefix: String, proto3: Bool) {
            let full = prefix.isEmpty ? m.name : prefix + "." + m.name
            messageNames.append(full)
            descriptors.append((m, full, proto3))
            for e in m.enumType { enums[full + "." + e.name] = e }
            for n in m.nestedType { walk(n, prefix: full, proto3: proto3) }
        }
        for f in files {
            let proto3 = f.syntax == "proto3"
            for e in f.enumType { enums[f.package.isEmpty ? e.name : f.package + "." + e.name] = e }
            for m in f.messageType { walk(m, prefix: f.package, proto3: proto3) }
        }
        var index: [String: Int] = [:]
        for (i, n) in messageNames.enumerated() { index[n] = i }

        // Pass 2: fields.
        var messages: [ProtoMessage] = []
        for (m, full, proto3) in descriptors {
            var fields: [ProtoField] = []
            for f in m.field {
                let typeName = f.typeName.hasPrefix(".") ? String(f.typeName.dropFirst()) : f.typeName
                let kind: ProtoField.Kind
                switch f.type {
                case .double: kind = .double
                case .float: kind = .float
                case .int64: kind = .int64
                case .uint64: kind = .uint64
                case .int32: kind = .int32
                case .fixed64: kind = .fixed64
                case .fixed32: kind = .fixed32
                case .bool: kind = .bool
                case .string: kind = .string
                case .bytes: kind = .bytes
                case .uint32: kind = .uint32
                case .sfixed32: kind = .sfixed32
                case .sfixed64: kind = .sfixed64
                case .sint32: kind = .sint32
                case .sint64: kind = .sint64
                case .enum:
                    guard let e = enums[typeName] else { throw SchemaError("field \(full).\(f.name): enum \(typeName) is not in the descriptors (include imports)") }
                    kind = .enumeration(numbers: e.value.map(\.number), names: e.value.map(\.name))
                case .message, .group:
                    guard let i = index[typeName] else { throw SchemaError("field \(full).\(f.name): message \(typeName) is not in the descriptors (include imports)") }
                    kind = .message(i)
                default:
                    throw SchemaError("field \(full).\(f.name) has an unknown type")
                }
                let repeated = f.label == .repeated
                let isMessage: Bool = { if case .message = kind { return true }; return false }()
                let presence = !repeated && (isMessage || f.hasOneofIndex || f.proto3Optional || (!proto3 && f.label == .optional) || f.label == .required)
                fields.append(ProtoField(name: f.name, number: f.number, kind: kind, repeated: repeated, hasPresence: presence))
            }
            messages.append(ProtoMessage(fullName: full, fields: fields, isMapEntry: m.options.mapEntry))
        }
        return ProtoSchema(messages: messages)
    }

    /// The Confluent message-index path of each message defined in `file`
    /// (`[i]` for its i-th top-level message, `[i, j]` for a nested one), with
    /// the message's full name.
    public static func messageIndexes(of file: Google_Protobuf_FileDescriptorProto) -> [(path: [Int32], name: String)] {
        var out: [(path: [Int32], name: String)] = []
        func walk(_ m: Google_Protobuf_DescriptorProto, _ path: [Int32], _ prefix: String) {
            let full = prefix.isEmpty ? m.name : prefix + "." + m.name
            out.append((path, full))
            for (j, n) in m.nestedType.enumerated() { walk(n, path + [Int32(j)], full) }
        }
        for (i, m) in file.messageType.enumerated() { walk(m, [Int32(i)], file.package) }
        return out
    }
}
