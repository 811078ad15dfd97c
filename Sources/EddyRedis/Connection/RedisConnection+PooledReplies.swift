import CHiredis

/// Reading replies into memory the connection keeps, instead of hiredis'
/// own allocations.
///
/// hiredis' reader builds every reply through a table of functions
/// (`redisReplyObjectFunctions`): by default it `calloc`s a `redisReply` per
/// reply and per array element, `malloc`s each string, and the caller frees
/// them all (`freeReplyObject`). A worker loads every key it does not hold
/// with an `HMGET`, and on high-cardinality traffic that is nearly every
/// event; an absent key's reply is an array of nils: five allocations and
/// frees, ~1.5k instructions of a ~2.9k-instruction read (callgrind). While a
/// reply is read pooled, the reader gets functions that build the same
/// `redisReply` structures in a ``ReplyPool``, which forgets them all at once
/// after the reply is used. The structures are hiredis' own, so
/// ``RedisReplyView`` reads them unchanged.
final class ReplyPool {
    /// Bytes per chunk; a reply bigger than that gets a chunk of its own.
    static let chunkSize = 16 * 1024

    /// Every chunk (start, size); the first is kept across resets.
    private var chunks: [(UnsafeMutableRawPointer, Int)] = []
    private var current: UnsafeMutableRawPointer
    private var used = 0
    private var capacity: Int

    init() {
        current = .allocate(byteCount: Self.chunkSize, alignment: 16)
        capacity = Self.chunkSize
        chunks.reserveCapacity(8)
        chunks.append((current, capacity))
    }

    /// `count` bytes, 16-byte aligned, valid until `reset`. Never moves what
    /// it handed out before (a reply's arrays point at its elements), so a
    /// full chunk is followed by a new one, not grown.
    func allocate(_ count: Int) -> UnsafeMutableRawPointer {
        let size = (count + 15) & ~15
        if used + size > capacity {
            let c = max(Self.chunkSize, size)
            current = .allocate(byteCount: c, alignment: 16)
            capacity = c
            used = 0
            chunks.append((current, c))
        }
        let p = current + used
        used += size
        return p
    }

    /// Forgets everything handed out; frees every chunk but the first.
    func reset() {
        if chunks.count > 1 {
            for (p, _) in chunks.dropFirst() { p.deallocate() }
            chunks.removeSubrange(1...)
        }
        (current, capacity) = chunks[0]
        used = 0
    }

    /// Chunks held now (tests: a big reply's chunks are given back).
    var chunkCount: Int { chunks.count }

    deinit {
        for (p, _) in chunks { p.deallocate() }
    }
}

private func pool(of task: UnsafePointer<redisReadTask>?) -> ReplyPool {
    Unmanaged<ReplyPool>.fromOpaque(task!.pointee.privdata).takeUnretainedValue()
}

/// A `redisReply` of `type` in the pool, linked into its parent array as
/// hiredis' own functions do.
private func pooledReply(_ task: UnsafePointer<redisReadTask>?, _ pool: ReplyPool, type: Int32) -> UnsafeMutablePointer<redisReply> {
    let r = pool.allocate(MemoryLayout<redisReply>.stride).bindMemory(to: redisReply.self, capacity: 1)
    r.initialize(to: redisReply(type: type, integer: 0, len: 0, str: nil, elements: 0, element: nil))
    if let parent = task!.pointee.parent {
        let array = parent.pointee.obj.assumingMemoryBound(to: redisReply.self)
        array.pointee.element[Int(task!.pointee.idx)] = r
    }
    return r
}

/// The reader's functions while reading pooled (one table for the process,
/// written once here and only read after: `nonisolated(unsafe)` is safe).
nonisolated(unsafe) let pooledFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
    let table = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    table.initialize(to: redisReplyObjectFunctions(
        createString: { task, text, length in
            let p = pool(of: task)
            let r = pooledReply(task, p, type: task!.pointee.type)
            // NUL-terminated, as hiredis' own strings are.
            let buffer = p.allocate(length + 1).bindMemory(to: CChar.self, capacity: length + 1)
            if length > 0 { buffer.update(from: text!, count: length) }
            buffer[length] = 0
            r.pointee.str = buffer
            r.pointee.len = length
            return UnsafeMutableRawPointer(r)
        },
        createArray: { task, elements in
            let p = pool(of: task)
            let r = pooledReply(task, p, type: REDIS_REPLY_ARRAY)
            if elements > 0 {
                let n = Int(elements)
                let vector = p.allocate(n * MemoryLayout<UnsafeMutablePointer<redisReply>?>.stride)
                    .bindMemory(to: UnsafeMutablePointer<redisReply>?.self, capacity: n)
                vector.initialize(repeating: nil, count: n)
                r.pointee.element = vector
                r.pointee.elements = n
            }
            return UnsafeMutableRawPointer(r)
        },
        createInteger: { task, value in
            let r = pooledReply(task, pool(of: task), type: REDIS_REPLY_INTEGER)
            r.pointee.integer = value
            return UnsafeMutableRawPointer(r)
        },
        createNil: { task in
            UnsafeMutableRawPointer(pooledReply(task, pool(of: task), type: REDIS_REPLY_NIL))
        },
        freeObject: { _ in }))
    return table
}()

extension RedisConnection {
    /// ``withNextReply(_:)`` with the reply built in the connection's
    /// ``ReplyPool`` (see there): for many small replies read in place, such
    /// as a worker's loads. The view must not outlive the call.
    public func withNextPooledReply<R>(_ body: (RedisReplyView) throws(RedisError) -> R) throws(RedisError) -> R {
        let context = try usableContext()
        guard let reader = context.pointee.reader else { throw .protocolError(reason: "hiredis context without a reader") }
        let savedFunctions = reader.pointee.fn
        let savedPrivdata = reader.pointee.privdata
        reader.pointee.fn = pooledFunctions
        reader.pointee.privdata = Unmanaged.passUnretained(replyPool).toOpaque()
        defer {
            // A reply left half read by a failure is in the pool: drop it
            // before the default functions could try to free it (the
            // connection is unusable after such a failure: `usableContext`).
            reader.pointee.reply = nil
            reader.pointee.fn = savedFunctions
            reader.pointee.privdata = savedPrivdata
            replyPool.reset()
        }
        return try body(RedisReplyView(try nextRawReply()))
    }
}

extension RESPBytes {
    /// ``replies(in:)`` read pooled, as ``RedisConnection/withNextPooledReply(_:)``
    /// reads: the fuzzer checks both give the same replies.
    package static func pooledReplies(in bytes: UnsafeRawBufferPointer) throws(RedisError) -> [RedisReply] {
        try replies(in: bytes, pool: ReplyPool())
    }
}
