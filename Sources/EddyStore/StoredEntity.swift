import EddyRedis

/// The one reader of what Eddy stores for an entity (see `EntityLayout`):
/// the hash fields a load asks for (`EntityLoader`), and the header of the
/// state blob `_state`.
///
/// A state blob starts with its key's length (UInt16), the key, and the
/// key time `K` (Int64, `Int64.min` before the key's first event); the
/// features' sections follow (EddyCore's layout).
public struct StoredEntity {
    /// `_state`: nil when the entity is not stored.
    public var state: [UInt8]?
    /// `_fp`: the fingerprint of the topology the state was built with.
    public var fingerprint: [UInt8]?
    /// `_o:<partition>` of the partition asked for: the offset of the last
    /// event of that partition in the stored state.
    public var fence: Int64?
    /// The further fields asked for (`EntityLoader.fields`), in order;
    /// nil where absent.
    public var fields: [[UInt8]?]

    public init(state: [UInt8]? = nil, fingerprint: [UInt8]? = nil, fence: Int64? = nil, fields: [[UInt8]?] = []) {
        self.state = state
        self.fingerprint = fingerprint
        self.fence = fence
        self.fields = fields
    }

    /// An `EntityLoader` request's reply (`HMGET key _state _fp [_o:<partition>] fields...`);
    /// an error or anything but an array reads as an entity not stored.
    public init(reply: RedisReply, hasFence: Bool, fieldCount: Int) {
        let items = reply.array ?? []
        func item(_ i: Int) -> RedisReply? { i < items.count ? items[i] : nil }
        self.state = item(0)?.bytes
        self.fingerprint = item(1)?.bytes
        self.fence = hasFence ? item(2)?.string.flatMap { Int64($0) } : nil
        let first = hasFence ? 3 : 2
        self.fields = (0..<fieldCount).map { item(first + $0)?.bytes }
    }

    /// The same, read in place from hiredis' reply: an entity Redis does
    /// not have (an array of nils, the common case on high-cardinality
    /// traffic) costs no allocation.
    public init(view reply: RedisReplyView, hasFence: Bool, fieldCount: Int) {
        self.state = reply[0]?.bytes
        self.fingerprint = reply[1]?.bytes
        self.fence = hasFence ? reply[2]?.decimalInteger : nil
        let first = hasFence ? 3 : 2
        self.fields = fieldCount == 0 ? [] : (0..<fieldCount).map { reply[first + $0]?.bytes }
    }

    /// Whether the stored state can be read as `key`'s with a topology of
    /// `fingerprint`: written under that fingerprint, and its blob is
    /// `key`'s. False when nothing is stored.
    public func isCompatible(fingerprint expected: [UInt8], key: [UInt8]) -> Bool {
        guard let state, fingerprint == expected else { return false }
        return state.withUnsafeBytes { blob in
            key.withUnsafeBytes { Self.state(blob, isOf: $0) }
        }
    }

    // MARK: The state blob's header

    /// The key time `K` of a state blob; nil before the key's first event or
    /// when the blob is too short to hold it.
    @inline(__always)
    public static func keyTime(ofState blob: UnsafeRawBufferPointer) -> Int64? {
        guard blob.count >= 2 else { return nil }
        let kOffset = 2 + Int(UInt16(littleEndian: blob.loadUnaligned(as: UInt16.self)))
        guard blob.count >= kOffset + 8 else { return nil }
        let k = blob.loadUnaligned(fromByteOffset: kOffset, as: Int64.self)
        return k == Int64.min ? nil : k
    }

    /// Whether a state blob is `key`'s: it starts with `key`'s header and
    /// is long enough to hold a key time.
    public static func state(_ blob: UnsafeRawBufferPointer, isOf key: UnsafeRawBufferPointer) -> Bool {
        guard blob.count >= 2 + key.count + 8, Int(UInt16(littleEndian: blob.loadUnaligned(as: UInt16.self))) == key.count else {
            return false
        }
        return key.elementsEqual(UnsafeRawBufferPointer(rebasing: blob[2..<(2 + key.count)]))
    }
}
