/// Collects the arguments of one command in a single reusable byte buffer.
///
/// ``RedisConnection`` keeps one builder and lends it to
/// ``RedisConnection/append(building:)``; its storage keeps its capacity between
/// commands, so building a command allocates nothing once the buffers have grown.
///
/// ```swift
/// try connection.append { command in
///     command.add("HSET")
///     command.addJoined("feature:user:", userID)   // one argument: "feature:user:42"
///     command.add("clicks_5m")
///     command.add(clicks)
/// }
/// ```
public struct RedisCommandBuilder {
    /// All argument bytes, back to back.
    @usableFromInline var bytes: [UInt8] = []
    /// End offset in `bytes` of each argument.
    @usableFromInline var ends: [Int] = []

    /// An empty builder.
    public init() {}

    /// Number of arguments added so far.
    @inlinable public var count: Int { ends.count }

    /// `true` when no argument has been added.
    @inlinable public var isEmpty: Bool { ends.isEmpty }

    /// Removes all arguments, keeping the allocated capacity.
    @inlinable
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
    }

    /// Adds one argument.
    @inlinable
    public mutating func add<A: RedisArgument>(_ argument: A) {
        argument.withRedisArgumentBytes { bytes.append(contentsOf: $0) }
        ends.append(bytes.count)
    }

    /// Adds one argument given as a type-erased value.
    @inlinable
    public mutating func add(_ argument: any RedisArgument) {
        argument.withRedisArgumentBytes { bytes.append(contentsOf: $0) }
        ends.append(bytes.count)
    }

    /// Adds the concatenation of `parts` as a single argument, e.g. a key built from a
    /// prefix and a numeric id: `addJoined("user:", 42)` adds `"user:42"`.
    @inlinable
    public mutating func addJoined<each Part: RedisArgument>(_ parts: repeat each Part) {
        for part in repeat each parts {
            part.withRedisArgumentBytes { bytes.append(contentsOf: $0) }
        }
        ends.append(bytes.count)
    }

    /// Adds every element of `arguments` as its own argument.
    @inlinable
    public mutating func add<S: Sequence>(contentsOf arguments: S) where S.Element: RedisArgument {
        for argument in arguments { add(argument) }
    }

    /// Adds every element of `arguments` as its own argument.
    @inlinable
    public mutating func add(contentsOf arguments: [any RedisArgument]) {
        for argument in arguments { add(argument) }
    }

    /// The bytes of argument `index`, valid only during `body`.
    func withArgument<R>(at index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = index == 0 ? 0 : ends[index - 1]
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<ends[index]])) }
    }

    /// The first argument decoded as text (the command name), for error messages.
    var commandName: String {
        guard !isEmpty else { return "" }
        return withArgument(at: 0) { String(decoding: $0, as: UTF8.self) }
    }
}
