/// Writes commands in the RESP wire format (`*argc`, then `$len` + bytes per argument) into a
/// reusable buffer, which ``RedisConnection`` hands to `redisAppendFormattedCommand`.
struct RESPEncoder {
    private(set) var buffer: [UInt8] = []

    /// Starts a new command of `argumentCount` arguments, discarding the previous one.
    mutating func begin(argumentCount: Int) {
        buffer.removeAll(keepingCapacity: true)
        buffer.append(UInt8(ascii: "*"))
        appendDecimal(argumentCount)
        appendCRLF()
    }

    /// Appends one argument as a bulk string.
    mutating func argument(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(UInt8(ascii: "$"))
        appendDecimal(bytes.count)
        appendCRLF()
        buffer.append(contentsOf: bytes)
        appendCRLF()
    }

    /// Appends one argument from a value.
    mutating func argument<A: RedisArgument>(_ value: A) {
        value.withRedisArgumentBytes { argument($0) }
    }

    /// Appends every argument collected in `builder`.
    mutating func arguments(of builder: RedisCommandBuilder) {
        for index in 0..<builder.count {
            builder.withArgument(at: index) { argument($0) }
        }
    }

    private mutating func appendDecimal(_ value: Int) {
        withDecimalBytes(Int64(value)) { buffer.append(contentsOf: $0) }
    }

    private mutating func appendCRLF() {
        buffer.append(0x0D)
        buffer.append(0x0A)
    }
}
