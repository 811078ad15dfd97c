import CHiredis

/// A reply as hiredis parsed it, read in place: no ``RedisReply`` values,
/// arrays or byte copies are made until the reader asks for them. Valid
/// only inside the ``RedisConnection/withNextReply(_:)`` call that lends it.
///
/// Why: a worker loads every key it has not seen with an `HMGET`; on
/// high-cardinality traffic most of those keys are not in Redis and the
/// reply is an array of nils, which decoding into ``RedisReply`` allocated
/// for (an array per reply) before reading it as "not stored".
public struct RedisReplyView {
    let reply: UnsafePointer<redisReply>

    init(_ reply: UnsafePointer<redisReply>) { self.reply = reply }

    /// The nil bulk string or nil array.
    public var isNull: Bool { reply.pointee.type == REDIS_REPLY_NIL }

    /// The message of an error reply; else `nil`.
    public var errorMessage: String? { Hiredis.errorMessage(reply) }

    /// The number of elements of an array reply; 0 for any other reply.
    public var count: Int { reply.pointee.type == REDIS_REPLY_ARRAY ? Int(reply.pointee.elements) : 0 }

    /// Element `index` of an array reply; `nil` past its end or for any
    /// other reply.
    public subscript(index: Int) -> RedisReplyView? {
        guard index >= 0, index < count, let element = reply.pointee.element[index] else { return nil }
        return RedisReplyView(element)
    }

    /// A copy of a bulk string's bytes; `nil` for any other reply.
    public var bytes: [UInt8]? {
        guard reply.pointee.type == REDIS_REPLY_STRING else { return nil }
        let r = reply.pointee
        return r.len == 0 ? [] : [UInt8](UnsafeRawBufferPointer(start: r.str, count: r.len))
    }

    /// A bulk string or status read as a decimal integer (`parseDecimalInt64`:
    /// what `Int64(String)` accepts); `nil` otherwise.
    public var decimalInteger: Int64? {
        let r = reply.pointee
        guard r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS, let str = r.str else { return nil }
        return parseDecimalInt64(UnsafeRawBufferPointer(start: str, count: r.len))
    }
}

extension RedisConnection {
    /// Reads the next reply and lends it to `body` undecoded (see
    /// ``RedisReplyView``); the view must not outlive the call. Error replies
    /// are lent like any other; only connection and protocol failures throw.
    public func withNextReply<R>(_ body: (RedisReplyView) throws(RedisError) -> R) throws(RedisError) -> R {
        let reply = try nextRawReply()
        defer { freeReplyObject(reply) }
        return try body(RedisReplyView(reply))
    }
}
