/// A fast, deterministic 64-bit hash of key bytes.
///
/// Used for the in-memory key index and for routing keys to shards; it never
/// reaches stored state or output, so it can change between versions.
@inline(__always)
public func hashKey(_ key: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: key.count)
    guard let base = key.baseAddress else { return mix(h) }
    var i = 0
    let n = key.count
    while i + 8 <= n {
        let k = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        h = (h ^ mix(k)) &* 0x9FB2_1C65_1E98_DF25
        i += 8
    }
    if i < n {
        var k: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            k |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift += 8; i += 1
        }
        h = (h ^ mix(k)) &* 0x9FB2_1C65_1E98_DF25
    }
    return mix(h)
}

@inline(__always)
private func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
