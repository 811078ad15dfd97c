/// RESP's framing of one command argument, `$<length>\r\n<bytes>\r\n`, in
/// one place: the connection's encoder writes every argument with it, and a
/// caller that renders many arguments ahead of time (`EntityBatch`, the
/// fields of a flush) keeps them framed, so the writer copies them into a
/// command as one block (``RedisArgumentEncoder/addFramed(_:count:)``)
/// instead of encoding ~18 arguments per entity write one by one.
public enum RESPArgument {
    /// The most bytes framing adds to an argument: `$`, up to 19 digits,
    /// two CRLFs.
    public static let maxOverhead = 24

    /// Writes `bytes` framed at `start`, which has room for
    /// `bytes.count + maxOverhead` bytes; returns where it ended.
    @inlinable @inline(__always)
    public static func write(_ bytes: UnsafeRawBufferPointer, at start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        let end = copy(bytes, to: header(length: bytes.count, at: start))
        return crlf(at: end)
    }

    /// Writes two byte ranges framed as one argument (a prefix and a key).
    @inlinable @inline(__always)
    public static func write(joining first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                             at start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        let end = copy(second, to: copy(first, to: header(length: first.count + second.count, at: start)))
        return crlf(at: end)
    }

    /// Writes `$<length>\r\n` at `start`; returns where the argument's bytes go.
    @inlinable @inline(__always)
    public static func header(length: Int, at start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        start.storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
        var digits = 1
        var rest = length / 10
        while rest > 0 { digits += 1; rest /= 10 }
        var value = length
        var at = digits
        repeat {
            start.storeBytes(of: UInt8(truncatingIfNeeded: value % 10) &+ 0x30, toByteOffset: at, as: UInt8.self)
            value /= 10
            at -= 1
        } while at > 0
        return crlf(at: start + 1 + digits)
    }

    @inlinable @inline(__always)
    static func copy(_ part: UnsafeRawBufferPointer, to end: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        guard let source = part.baseAddress, part.count > 0 else { return end }
        end.copyMemory(from: source, byteCount: part.count)
        return end + part.count
    }

    /// Writes `\r\n` at `end`; returns where it ended.
    @inlinable @inline(__always)
    public static func crlf(at end: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        end.storeBytes(of: 0x0D, as: UInt8.self)
        end.storeBytes(of: 0x0A, toByteOffset: 1, as: UInt8.self)
        return end + 2
    }

    /// Calls `body` with each argument of `block`, framed arguments back to
    /// back; returns how many there were, or `nil` (stopping there) where
    /// the block is not framed arguments.
    @discardableResult
    public static func forEach(in block: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) -> Int? {
        var p = 0, count = 0
        let n = block.count
        while p < n {
            guard block[p] == UInt8(ascii: "$") else { return nil }
            p += 1
            // At most 18 digits: 19 nines overflow an Int (and no argument is that long).
            var length = 0, digits = 0
            while p < n, block[p] >= 0x30, block[p] <= 0x39, digits < 18 {
                length = length * 10 + Int(block[p] - 0x30)
                p += 1
                digits += 1
            }
            guard digits > 0, p + 1 < n, block[p] == 0x0D, block[p + 1] == 0x0A else { return nil }
            p += 2
            guard length <= n - p - 2, block[p + length] == 0x0D, block[p + length + 1] == 0x0A else { return nil }
            body(UnsafeRawBufferPointer(rebasing: block[p..<(p + length)]))
            p += length + 2
            count += 1
        }
        return count
    }
}
