/// A value that can be sent as one Redis command argument (a RESP bulk string).
///
/// Conformers expose their bytes for the duration of a closure, so encoding needs no
/// intermediate heap allocation: strings lend their UTF-8 storage, byte arrays their
/// buffer, and integers are formatted into stack memory.
public protocol RedisArgument {
    /// Calls `body` exactly once with the argument's bytes, valid only during the call.
    func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void)
}

extension String: RedisArgument {
    /// The UTF-8 bytes of the string.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        var copy = self   // no copy of the bytes: `withUTF8` is mutating only to make bridged strings native
        copy.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
}

extension Substring: RedisArgument {
    /// The UTF-8 bytes of the substring.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        var copy = self   // no copy of the bytes: `withUTF8` is mutating only to make bridged strings native
        copy.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
}

extension StaticString: RedisArgument {
    /// The UTF-8 bytes of the static string.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        if hasPointerRepresentation {
            body(UnsafeRawBufferPointer(start: utf8Start, count: utf8CodeUnitCount))
        } else {
            description.withRedisArgumentBytes(body)
        }
    }
}

extension Array: RedisArgument where Element == UInt8 {
    /// The bytes of the array, unchanged (binary safe).
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        withUnsafeBytes(body)
    }
}

extension ArraySlice: RedisArgument where Element == UInt8 {
    /// The bytes of the slice, unchanged (binary safe).
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        withUnsafeBytes(body)
    }
}

extension ContiguousArray: RedisArgument where Element == UInt8 {
    /// The bytes of the array, unchanged (binary safe).
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        withUnsafeBytes(body)
    }
}

extension UnsafeRawBufferPointer: RedisArgument {
    /// The buffer itself; it must stay valid until the command has been appended.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        body(self)
    }
}

extension UnsafeBufferPointer: RedisArgument where Element == UInt8 {
    /// The buffer itself; it must stay valid until the command has been appended.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        body(UnsafeRawBufferPointer(self))
    }
}

extension Int: RedisArgument {
    /// The decimal representation, formatted on the stack.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        withDecimalBytes(Int64(self), body)
    }
}

extension Int64: RedisArgument {
    /// The decimal representation, formatted on the stack.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        withDecimalBytes(self, body)
    }
}

extension Int32: RedisArgument {
    /// The decimal representation, formatted on the stack.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        withDecimalBytes(Int64(self), body)
    }
}

extension UInt32: RedisArgument {
    /// The decimal representation, formatted on the stack.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        withDecimalBytes(Int64(self), body)
    }
}

extension Double: RedisArgument {
    /// Shortest round-tripping decimal form (`"1.5"`, `"1e-05"`, `"inf"`, `"-inf"`), which
    /// Redis accepts for `INCRBYFLOAT`, `ZADD` scores and the like. NaN is sent as `"nan"`,
    /// which Redis rejects.
    @inlinable
    public func withRedisArgumentBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        description.withRedisArgumentBytes(body)
    }
}

/// Formats `value` in decimal into stack memory and passes the bytes to `body`.
@inlinable
func withDecimalBytes(_ value: Int64, _ body: (UnsafeRawBufferPointer) -> Void) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var magnitude = value.magnitude
        var start = digits.count
        repeat {
            start -= 1
            digits[start] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 0x30
            magnitude /= 10
        } while magnitude > 0
        if value < 0 {
            start -= 1
            digits[start] = UInt8(ascii: "-")
        }
        body(UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(digits)[start...]))
    }
}
