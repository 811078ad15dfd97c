import CHiredis

/// Lua scripts: `SCRIPT LOAD` and `EVALSHA`, reloading the script when the server answers `NOSCRIPT`
/// (after a restart without persistence, a `SCRIPT FLUSH`, or a fail-over).
extension RedisConnection {
    /// Loads `source` into the server's script cache and returns its SHA-1.
    @discardableResult
    public func scriptLoad(_ source: String) throws(RedisError) -> String {
        let reply = try command("SCRIPT", "LOAD", source).checked()
        guard let sha = reply.string else {
            throw .unexpectedReply(command: "SCRIPT LOAD", reply: reply.description)
        }
        return sha
    }

    /// Loads `script` and checks that the server computed the same SHA-1.
    public func scriptLoad(_ script: RedisScript) throws(RedisError) {
        let sha = try scriptLoad(script.source)
        guard sha == script.sha1 else {
            throw .unexpectedReply(command: "SCRIPT LOAD", reply: "SHA-1 \(sha), expected \(script.sha1)")
        }
    }

    /// Appends `EVALSHA sha numkeys keys... args...` without reading the reply; a `NOSCRIPT` error
    /// reply is left to the caller. Prefer ``evalshaPipeline(_:count:_:)``, which handles it.
    public func appendEvalsha(_ script: RedisScript, _ build: (inout RedisScriptCall) -> Void) throws(RedisError) {
        try appendInvocation("EVALSHA", script.sha1, build)
    }

    /// Runs `script` once and returns its reply (error replies included), loading the script first
    /// if the server does not know it.
    public func evalsha(_ script: RedisScript,
                        keys: [any RedisArgument] = [],
                        arguments: [any RedisArgument] = []) throws(RedisError) -> RedisReply {
        let replies = try evalshaPipeline(script, count: 1) { _, call in
            call.keys.add(contentsOf: keys)
            call.arguments.add(contentsOf: arguments)
        }
        return replies[0]
    }

    /// Pipelines `count` invocations of `script`, `build(i, &call)` adding the keys and arguments of
    /// invocation `i`, and returns the replies in invocation order.
    ///
    /// Invocations answered with `NOSCRIPT` had no effect; the script is then loaded and those
    /// invocations are sent again (calling `build` again for their indices, so it must be
    /// repeatable). They therefore run after the rest of the batch.
    public func evalshaPipeline(_ script: RedisScript, count: Int,
                                _ build: (_ index: Int, _ call: inout RedisScriptCall) -> Void) throws(RedisError) -> [RedisReply] {
        var replies: [RedisReply] = []
        replies.reserveCapacity(count)
        let missing = try sendScriptBatch(script, indices: 0..<count, build) { _, reply throws(RedisError) in
            replies.append(try Hiredis.decode(reply))
        }
        try reloadAndResend(script, missing: missing, build) { index, reply throws(RedisError) in
            replies[index] = try Hiredis.decode(reply)
        }
        return replies
    }

    /// Like ``evalshaPipeline(_:count:_:)`` but discards the replies without decoding them,
    /// counting error replies; the fast path for write scripts.
    @discardableResult
    public func evalshaPipelineDrain(_ script: RedisScript, count: Int,
                                     _ build: (_ index: Int, _ call: inout RedisScriptCall) -> Void) throws(RedisError) -> PipelineSummary {
        var errors: [Int: String] = [:]
        let missing = try sendScriptBatch(script, indices: 0..<count, build) { index, reply in
            if let message = Hiredis.errorMessage(reply) { errors[index] = message }
        }
        try reloadAndResend(script, missing: missing, build) { index, reply in
            errors[index] = Hiredis.errorMessage(reply)
        }
        var summary = PipelineSummary()
        summary.replyCount = count
        for index in errors.keys.sorted() {
            summary.recordError(errors[index]!)
        }
        return summary
    }

    /// Loads the script and resends the invocations that got `NOSCRIPT`, a few rounds at most.
    private func reloadAndResend(
        _ script: RedisScript, missing: [Int],
        _ build: (Int, inout RedisScriptCall) -> Void,
        _ handle: (Int, UnsafeMutablePointer<redisReply>) throws(RedisError) -> Void
    ) throws(RedisError) {
        var pending = missing
        var rounds = 0
        while !pending.isEmpty, rounds < 3 {
            rounds += 1
            try scriptLoad(script)
            pending = try sendScriptBatch(script, indices: pending, build, handle)
        }
    }

    /// Appends `EVALSHA` for each index, reads the replies and passes each to `handle` (a
    /// `NOSCRIPT` reply too); returns the indices that got `NOSCRIPT`.
    private func sendScriptBatch<Indices: Collection<Int>>(
        _ script: RedisScript, indices: Indices,
        _ build: (Int, inout RedisScriptCall) -> Void,
        _ handle: (Int, UnsafeMutablePointer<redisReply>) throws(RedisError) -> Void
    ) throws(RedisError) -> [Int] {
        try requireNoPendingReplies()
        for index in indices {
            try appendInvocation("EVALSHA", script.sha1) { build(index, &$0) }
        }
        var missing: [Int] = []
        for index in indices {
            let reply = try nextRawReply()
            defer { freeReplyObject(reply) }
            if let message = Hiredis.errorMessage(reply), message.hasPrefix("NOSCRIPT") {
                missing.append(index)
            }
            try handle(index, reply)
        }
        return missing
    }
}
