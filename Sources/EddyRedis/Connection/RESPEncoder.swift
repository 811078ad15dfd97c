/// Writes commands in the RESP wire format (`*argc`, then `$len` + bytes per argument) into a
/// reusable buffer that ``RedisConnection`` hands to hiredis in one piece per batch.
struct RESPEncoder: ~Copyable {
    var buffer = RawBuffer<UInt8>(capacity: 64 * 1024)

    /// `true` when nothing is buffered.
    var isEmpty: Bool { buffer.count == 0 }

    /// Bytes buffered.
    var count: Int { buffer.count }

    /// Frees the storage (called once by the owning connection).
    mutating func deallocate() {
        buffer.deallocate()
    }

    /// Forgets everything buffered.
    mutating func removeAll() {
        buffer.removeAll()
    }

    /// Appends a command made of `arguments`; returns `false` (appending nothing) if there are none.
    mutating func command<each Argument: RedisArgument>(_ arguments: repeat each Argument) -> Bool {
        var count = 0
        for _ in repeat each arguments { count += 1 }
        guard count > 0 else { return false }
        header(count)
        for argument in repeat each arguments {
            argument.withRedisArgumentBytes { self.argument($0) }
        }
        return true
    }

    /// Appends a command made of the builder's arguments; `false` if it has none.
    mutating func command(_ builder: borrowing RedisCommandBuilder) -> Bool {
        guard !builder.isEmpty else { return false }
        header(builder.count)
        arguments(of: builder)
        return true
    }

    /// Appends `command name numkeys keys... arguments...` (the `EVALSHA` / `FCALL` shape).
    mutating func invocation<Name: RedisArgument>(_ command: StaticString, _ name: Name,
                                                  _ call: borrowing RedisScriptCall) {
        header(3 + call.keys.count + call.arguments.count)
        command.withRedisArgumentBytes { argument($0) }
        name.withRedisArgumentBytes { argument($0) }
        call.keys.count.withRedisArgumentBytes { argument($0) }
        arguments(of: call.keys)
        arguments(of: call.arguments)
    }

    mutating func header(_ argumentCount: Int) {
        buffer.append(UInt8(ascii: "*"))
        decimal(argumentCount)
        crlf()
    }

    /// `$<length>\r\n<bytes>\r\n`, written straight into the reserved
    /// space. Why not `append`s: a worker's flush encodes ~20 arguments per
    /// entity write, and five appends plus the generic digit writer cost
    /// ~190 instructions per argument (callgrind), this ~40 plus the copy.
    @inline(__always)
    mutating func argument(_ bytes: UnsafeRawBufferPointer) {
        let length = bytes.count
        buffer.reserve(length + 25)  // `$`, up to 19 digits, two CRLFs
        let start = UnsafeMutableRawPointer(buffer.base + buffer.count)
        let end = Self.copy(bytes, to: Self.lengthHeader(length, at: start))
        end.storeBytes(of: 0x0D, as: UInt8.self)
        end.storeBytes(of: 0x0A, toByteOffset: 1, as: UInt8.self)
        buffer.count += end + 2 - start
    }

    /// One argument made of two byte ranges back to back (a prefix and a
    /// key, a field prefix and a partition), written as `argument` writes one.
    mutating func argument(joining first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) {
        let length = first.count + second.count
        buffer.reserve(length + 25)
        let start = UnsafeMutableRawPointer(buffer.base + buffer.count)
        let end = Self.copy(second, to: Self.copy(first, to: Self.lengthHeader(length, at: start)))
        end.storeBytes(of: 0x0D, as: UInt8.self)
        end.storeBytes(of: 0x0A, toByteOffset: 1, as: UInt8.self)
        buffer.count += end + 2 - start
    }

    /// Copies `part` to `end`; returns the new end.
    @inline(__always)
    private static func copy(_ part: UnsafeRawBufferPointer, to end: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        guard let source = part.baseAddress, part.count > 0 else { return end }
        end.copyMemory(from: source, byteCount: part.count)
        return end + part.count
    }

    /// Writes `$<length>\r\n` at `start` (room reserved); returns where the
    /// argument's bytes go.
    @inline(__always)
    private static func lengthHeader(_ length: Int, at start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
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
        let end = start + 1 + digits
        end.storeBytes(of: 0x0D, as: UInt8.self)
        end.storeBytes(of: 0x0A, toByteOffset: 1, as: UInt8.self)
        return end + 2
    }

    /// Drops what was encoded after the first `count` bytes (a command
    /// abandoned half way).
    mutating func truncate(to count: Int) {
        buffer.count = min(buffer.count, count)
    }

    private mutating func arguments(of builder: borrowing RedisCommandBuilder) {
        for index in 0..<builder.count {
            argument(builder.argument(at: index))
        }
    }

    private mutating func decimal(_ value: Int) {
        if value < 10, value >= 0 {
            buffer.append(UInt8(truncatingIfNeeded: value) &+ 0x30)
        } else {
            withDecimalBytes(Int64(value)) { buffer.append(bytes: $0) }
        }
    }

    private mutating func crlf() {
        buffer.append(0x0D)
        buffer.append(0x0A)
    }
}
