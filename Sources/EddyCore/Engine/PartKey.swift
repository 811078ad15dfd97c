/// The key under which the worker keeps one part of a `parts:
/// per_partition` entity in memory (SEMANTICS.md, "Keys spread over
/// partitions"): the entity key, then `0xFF`, the topic index and the
/// partition (little-endian Int32s). The suffix has a fixed length, so the
/// entity key is the part key less its last `suffixLength` bytes, and two
/// (key, partition) pairs never share a part key.
///
/// Only the in-memory store sees part keys: in Redis a part is the field
/// `_p:<topic>:<partition>` of the entity's hash, and its blob's header
/// holds the entity key (`withHeader`).
public enum PartKey {
    public static let suffixLength = 9

    /// Writes `entityKey` and the suffix into `buffer` (room for
    /// `entityKey.count + suffixLength` bytes) and returns the part key.
    @inline(__always)
    public static func make(entityKey: UnsafeRawBufferPointer, topicIndex: Int32, partition: Int32,
                            in buffer: UnsafeMutablePointer<UInt8>) -> UnsafeRawBufferPointer {
        let n = entityKey.count
        if n > 0 { UnsafeMutableRawPointer(buffer).copyMemory(from: entityKey.baseAddress!, byteCount: n) }
        buffer[n] = 0xFF
        UnsafeMutableRawPointer(buffer + n + 1).storeBytes(of: topicIndex.littleEndian, as: Int32.self)
        UnsafeMutableRawPointer(buffer + n + 5).storeBytes(of: partition.littleEndian, as: Int32.self)
        return UnsafeRawBufferPointer(start: buffer, count: n + suffixLength)
    }

    /// The entity key of a part key.
    @inline(__always)
    public static func entityKey(of partKey: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: partKey[0..<(partKey.count - suffixLength)])
    }

    /// The state blob `blob` with `key` in its header instead of the key
    /// it holds: passed to `append` in three pieces (the key's length, the
    /// key, everything after the old header). The one rewrite between a
    /// part key (in memory) and the entity key (in Redis and replay).
    @inline(__always)
    public static func rewriteHeader(_ blob: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                                     _ append: (UnsafeRawBufferPointer) -> Void) {
        let old = 2 + Int(UInt16(littleEndian: blob.loadUnaligned(as: UInt16.self)))
        withUnsafeBytes(of: UInt16(key.count).littleEndian) { append($0) }
        append(key)
        append(UnsafeRawBufferPointer(rebasing: blob[old...]))
    }

    /// Calls `body` with `blob` given `key`'s header (`rewriteHeader`),
    /// built in `scratch`.
    public static func withHeader<R>(
        _ key: UnsafeRawBufferPointer, blob: UnsafeRawBufferPointer, scratch: inout [UInt8],
        _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        scratch.removeAll(keepingCapacity: true)
        rewriteHeader(blob, key: key) { scratch.append(contentsOf: $0) }
        return try scratch.withUnsafeBytes(body)
    }
}
