import CHiredis

/// Reading replies by tallying them instead of building them.
///
/// hiredis' reader builds every reply through a table of functions
/// (`redisReplyObjectFunctions`): by default a `redisReply` per reply and per
/// array element, each allocated and then freed by the caller. Write
/// pipelines only need to know how many replies failed, and with which first
/// message: a worker's `MULTI` of ~300 entity writes answers `+QUEUED` for
/// each queued command and then an `EXEC` array of ~300 integers, and
/// building and freeing those objects cost ~3k instructions per entity write
/// (callgrind). While tallying, the reader gets functions that record what
/// the caller needs in a ``ReplyTally`` and return a placeholder.
struct ReplyTally {
    /// The type of the last top-level reply (`REDIS_REPLY_*`).
    var topType: Int32 = 0
    /// The element count of the last top-level array.
    var topElements = 0
    /// Error replies at the top level, and the first one's message.
    var topErrors = 0
    var firstTopError: String?
    /// Error replies inside a top-level array (`EXEC`'s), and the first one's message.
    var nestedErrors = 0
    var firstNestedError: String?

    /// Forgets the last top-level reply's shape and nested errors (not the top-level errors).
    mutating func startReply() {
        topType = 0
        topElements = 0
        nestedErrors = 0
        firstNestedError = nil
    }
}

/// What the tallying functions return for every reply: never dereferenced
/// by hiredis, never freed (the reader is handed back its own functions
/// before anything could free it).
nonisolated(unsafe) private let tallyPlaceholder = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)

private func tally(of task: UnsafePointer<redisReadTask>?) -> UnsafeMutablePointer<ReplyTally> {
    task!.pointee.privdata.assumingMemoryBound(to: ReplyTally.self)
}

private func record(_ task: UnsafePointer<redisReadTask>?, type: Int32, elements: Int = 0, message: () -> String) {
    let t = tally(of: task)
    let topLevel = task!.pointee.parent == nil
    if topLevel {
        t.pointee.topType = type
        t.pointee.topElements = elements
    }
    guard type == REDIS_REPLY_ERROR else { return }
    if topLevel {
        t.pointee.topErrors += 1
        if t.pointee.firstTopError == nil { t.pointee.firstTopError = message() }
    } else {
        t.pointee.nestedErrors += 1
        if t.pointee.firstNestedError == nil { t.pointee.firstNestedError = message() }
    }
}

/// The reader's functions while tallying (one table for the process,
/// written once here and only read after: `nonisolated(unsafe)` is safe).
nonisolated(unsafe) private let tallyFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
    let table = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    table.initialize(to: redisReplyObjectFunctions(
        createString: { task, text, length in
            record(task, type: task!.pointee.type) {
                String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self)
            }
            return tallyPlaceholder
        },
        createArray: { task, elements in
            record(task, type: REDIS_REPLY_ARRAY, elements: Int(elements)) { "" }
            return tallyPlaceholder
        },
        createInteger: { task, _ in
            record(task, type: REDIS_REPLY_INTEGER) { "" }
            return tallyPlaceholder
        },
        createNil: { task in
            record(task, type: REDIS_REPLY_NIL) { "" }
            return tallyPlaceholder
        },
        freeObject: { _ in }))
    return table
}()

extension RedisConnection {
    /// Runs `body` with the reader tallying replies into the ``ReplyTally``
    /// it is given; replies read inside are placeholders and must not be
    /// looked at or freed. The reader gets its own functions back after.
    func withTallyingReader<R>(_ body: (UnsafeMutablePointer<ReplyTally>) throws(RedisError) -> R) throws(RedisError) -> R {
        let context = try usableContext()
        guard let reader = context.pointee.reader else { throw .protocolError(reason: "hiredis context without a reader") }
        let savedFunctions = reader.pointee.fn
        let savedPrivdata = reader.pointee.privdata
        let t = UnsafeMutablePointer<ReplyTally>.allocate(capacity: 1)
        t.initialize(to: ReplyTally())
        reader.pointee.fn = tallyFunctions
        reader.pointee.privdata = UnsafeMutableRawPointer(t)
        defer {
            // A reply left half read by a failure holds placeholders: drop it
            // before the default functions could try to free it (the
            // connection is unusable after such a failure anyway).
            reader.pointee.reply = nil
            reader.pointee.fn = savedFunctions
            reader.pointee.privdata = savedPrivdata
            t.deinitialize(count: 1)
            t.deallocate()
        }
        return try body(t)
    }

    /// Whether hiredis' reader holds a reply it has begun (tests: nothing
    /// tallied may be left there).
    var readerHoldsPartialReply: Bool { context?.pointee.reader?.pointee.reply != nil }

    /// The next reply, read while tallying (``withTallyingReader(_:)``).
    func skipTalliedReply(_ t: UnsafeMutablePointer<ReplyTally>) throws(RedisError) {
        t.pointee.startReply()
        _ = try nextRawReply()
    }
}
