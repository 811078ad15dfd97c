/// The Redis Cluster hash slot of a key: `CRC16(key) mod 16384`, with the `{hash tag}` rule.
///
/// As in the Redis Cluster specification: when the key contains a `{` followed later by a `}`
/// with at least one byte between them, only the bytes between the first `{` and the first `}`
/// after it are hashed (so `{user:42}:clicks` and `{user:42}:views` share a slot); otherwise
/// (no `{`, no `}` after it, or `{}`) the whole key is hashed. The CRC is CRC16-CCITT (XMODEM:
/// polynomial 0x1021, initial value 0), computed with a 256-entry table.
public enum HashSlot {
    /// Number of hash slots in a Redis Cluster.
    public static let count = 16_384

    /// The slot of a key given as raw bytes.
    @inlinable
    public static func of(_ key: UnsafeRawBufferPointer) -> Int {
        Int(CRC16.xmodem(hashedPart(of: key))) & (count - 1)
    }

    /// The slot of a key given as any ``RedisArgument`` (a `String`, byte array, ...).
    @inlinable
    public static func of<Key: RedisArgument>(_ key: Key) -> Int {
        var slot = 0
        key.withRedisArgumentBytes { slot = of($0) }
        return slot
    }

    /// The part of `key` that is hashed: the hash tag's content if there is a non-empty one,
    /// else the whole key.
    @inlinable
    public static func hashedPart(of key: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key }
        var close = open + 1
        while close < key.count, key[close] != UInt8(ascii: "}") { close += 1 }
        guard close < key.count, close > open + 1 else { return key }
        return UnsafeRawBufferPointer(rebasing: key[(open + 1)..<close])
    }
}
