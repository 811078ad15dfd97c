/// A value that can be sent as one Redis command argument (a RESP bulk string).
///
/// Conformers expose their bytes for the duration of a closure, so encoding needs no
/// intermediate heap allocation: strings lend their UTF-8 storage, byte arrays their
/// buffer, and integers are formatted into stack memory.
public protocol RedisArgument {
    /// Calls `body` with the argument's bytes, valid only during the call.
    func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension String: RedisArgument {
    /// The UTF-8 bytes of the string.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let result = try utf8.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

extension Substring: RedisArgument {
    /// The UTF-8 bytes of the substring.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let result = try utf8.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

extension StaticString: RedisArgument {
    /// The UTF-8 bytes of the static string.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if hasPointerRepresentation {
            return try body(UnsafeRawBufferPointer(start: utf8Start, count: utf8CodeUnitCount))
        }
        return try description.withRedisArgumentBytes(body)
    }
}

extension Array: RedisArgument where Element == UInt8 {
    /// The bytes of the array, unchanged (binary safe).
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }
}

extension ArraySlice: RedisArgument where Element == UInt8 {
    /// The bytes of the slice, unchanged (binary safe).
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }
}

extension ContiguousArray: RedisArgument where Element == UInt8 {
    /// The bytes of the array, unchanged (binary safe).
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }
}

extension UnsafeRawBufferPointer: RedisArgument {
    /// The buffer itself; it must stay valid until the command has been appended.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(self)
    }
}

extension UnsafeBufferPointer: RedisArgument where Element == UInt8 {
    /// The buffer itself; it must stay valid until the command has been appended.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(self))
    }
}

extension Int: RedisArgument {
    /// The decimal representation, formatted on the stack.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withDecimalBytes(Int64(self), body)
    }
}

extension Int64: RedisArgument {
    /// The decimal representation, formatted on the stack.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withDecimalBytes(self, body)
    }
}

extension Int32: RedisArgument {
    /// The decimal representation, formatted on the stack.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withDecimalBytes(Int64(self), body)
    }
}

extension UInt32: RedisArgument {
    /// The decimal representation, formatted on the stack.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withDecimalBytes(Int64(self), body)
    }
}

extension Double: RedisArgument {
    /// Shortest round-tripping decimal form (`"1.5"`, `"1e-05"`, `"inf"`, `"-inf"`), which
    /// Redis accepts for `INCRBYFLOAT`, `ZADD` scores and the like. NaN is sent as `"nan"`,
    /// which Redis rejects.
    @inlinable
    public func withRedisArgumentBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try description.withRedisArgumentBytes(body)
    }
}

/// Formats `value` in decimal into stack memory and passes the bytes to `body`.
@inlinable
func withDecimalBytes<R>(_ value: Int64, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
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
        return try body(UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(digits)[start...]))
    }
}
