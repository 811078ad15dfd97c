/// CRC16-CCITT in the XMODEM variant (polynomial 0x1021, initial value 0, no reflection,
/// no final XOR), the checksum Redis Cluster hashes keys with (`crc16("123456789") == 0x31C3`).
public enum CRC16 {
    /// The CRC of `bytes`.
    @inlinable
    public static func xmodem(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0
        table.withUnsafeBufferPointer { table in
            for byte in bytes {
                crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
            }
        }
        return crc
    }

    /// The CRC of any byte sequence (a `String`'s UTF-8 view, an array, ...).
    public static func xmodem<Bytes: Sequence>(_ bytes: Bytes) -> UInt16 where Bytes.Element == UInt8 {
        Array(bytes).withUnsafeBytes { xmodem($0) }
    }

    /// `table[b]` is the CRC register after shifting the byte `b` through a zero register.
    @usableFromInline
    static let table: [UInt16] = (0..<256).map { (byte: Int) -> UInt16 in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
