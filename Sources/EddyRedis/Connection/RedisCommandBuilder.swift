/// Collects the arguments of one command in a single reusable byte buffer.
///
/// ``RedisConnection`` owns one builder and lends it to ``RedisConnection/append(building:)``;
/// it keeps its memory between commands, so building a command allocates nothing once the
/// buffer has grown. It is non-copyable and cannot be created outside the module: it only ever
/// exists as that one reused buffer.
///
/// ```swift
/// try connection.append { command in
///     command.add("HSET")
///     command.addJoined("feature:user:", userID)   // one argument: "feature:user:42"
///     command.add("clicks_5m")
///     command.add(clicks)
/// }
/// ```
public struct RedisCommandBuilder: ~Copyable {
    /// All argument bytes, back to back.
    var bytes = RawBuffer<UInt8>(capacity: 256)
    /// End offset in `bytes` of each argument.
    var ends = RawBuffer<Int>(capacity: 16)

    init() {}

    /// Frees the storage (called once by the owning connection).
    mutating func deallocate() {
        bytes.deallocate()
        ends.deallocate()
    }

    /// Number of arguments added so far.
    public var count: Int { ends.count }

    /// `true` when no argument has been added.
    public var isEmpty: Bool { ends.count == 0 }

    /// Removes all arguments, keeping the allocated memory.
    public mutating func removeAll() {
        bytes.removeAll()
        ends.removeAll()
    }

    /// Adds one argument. (No non-generic `add(_: any RedisArgument)`
    /// beside it: that one won overload resolution for every concrete
    /// argument, so each argument of each entity write went through an
    /// existential; a type-erased value is opened into this one instead.)
    public mutating func add<A: RedisArgument>(_ argument: A) {
        argument.withRedisArgumentBytes { bytes.append(bytes: $0) }
        ends.append(bytes.count)
    }

    /// Adds raw bytes as one argument. Concrete, so callers in other modules
    /// (the entity writer's keys, fields and values) call it directly: the
    /// generic `add` is not specialized across modules and reaches the bytes
    /// through the protocol's witness table for every argument.
    public mutating func add(_ argument: UnsafeRawBufferPointer) {
        bytes.append(bytes: argument)
        ends.append(bytes.count)
    }

    /// Adds an integer as its decimal text. Concrete for the same reason as
    /// `add(_: UnsafeRawBufferPointer)` (an entity write's offset).
    public mutating func add(_ value: Int64) {
        withDecimalBytes(value) { bytes.append(bytes: $0) }
        ends.append(bytes.count)
    }

    /// Adds the concatenation of two byte ranges as one argument (a prefix
    /// and a key). Concrete for the same reason as `add(_: UnsafeRawBufferPointer)`:
    /// the variadic generic `addJoined` costs ~430 instructions per call
    /// from another module, this a bounds check and two copies.
    public mutating func addJoined(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) {
        bytes.append(bytes: first)
        bytes.append(bytes: second)
        ends.append(bytes.count)
    }

    /// Adds the concatenation of `parts` as a single argument, e.g. a key built from a
    /// prefix and a numeric id: `addJoined("user:", 42)` adds `"user:42"`.
    public mutating func addJoined<each Part: RedisArgument>(_ parts: repeat each Part) {
        for part in repeat each parts {
            part.withRedisArgumentBytes { bytes.append(bytes: $0) }
        }
        ends.append(bytes.count)
    }

    /// Adds every element of `arguments` as its own argument.
    public mutating func add<S: Sequence>(contentsOf arguments: S) where S.Element: RedisArgument {
        for argument in arguments { add(argument) }
    }

    /// Adds every element of `arguments` as its own argument.
    public mutating func add(contentsOf arguments: [any RedisArgument]) {
        for argument in arguments { add(argument) }
    }

    /// The bytes of argument `index`, valid while the builder is not mutated.
    func argument(at index: Int) -> UnsafeRawBufferPointer {
        bytes.bytes(in: (index == 0 ? 0 : ends[index - 1])..<ends[index])
    }
}
