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

    /// The part key of `entityKey` in (topic index, partition), as bytes.
    public static func make(entityKey: some Collection<UInt8>, topicIndex: Int32, partition: Int32) -> [UInt8] {
        var out = Array(entityKey)
        out.append(0xFF)
        withUnsafeBytes(of: topicIndex.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: partition.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// The entity key of a part key.
    @inline(__always)
    public static func entityKey(of partKey: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: partKey[0..<(partKey.count - suffixLength)])
    }

    /// Calls `body` with the blob `blob` (whose header holds a key of
    /// `headerKeyLength` bytes) given the header of `key` instead; what
    /// follows the header is copied unchanged into `scratch`.
    public static func withHeader<R>(
        _ key: UnsafeRawBufferPointer, blob: UnsafeRawBufferPointer, scratch: inout [UInt8],
        _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        let old = 2 + Int(UInt16(littleEndian: blob.loadUnaligned(as: UInt16.self)))
        scratch.removeAll(keepingCapacity: true)
        withUnsafeBytes(of: UInt16(key.count).littleEndian) { scratch.append(contentsOf: $0) }
        scratch.append(contentsOf: key)
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: blob[old...]))
        return try scratch.withUnsafeBytes(body)
    }
}
