import CHiredis

/// Routed pipelines: the same shapes as ``RedisConnection``'s, with each command sent to the
/// master of its key's slot (see ``RedisClusterClient`` for redirections and retries).
extension RedisClusterClient {
    /// Sends `count` commands, `build(i, &command)` adding the arguments of command `i`, and
    /// returns the replies in command order. The argument at `keyIndex` (default 1: the first key
    /// of `GET`, `HMGET`, `HGETALL`, `SET`, ...) picks the slot; a command with fewer arguments
    /// goes to any master. `build` may be called again for a command that is resent.
    public func pipeline(count: Int, keyIndex: Int = 1,
                         _ build: (_ index: Int, _ command: inout RedisCommandBuilder) -> Void) throws(RedisError) -> [RedisReply] {
        var replies = [RedisReply](repeating: .null, count: count)
        try route(count: count, stage: { (index: Int) -> Int? in
            scratchCommand.removeAll()
            build(index, &scratchCommand)
            return scratchCommand.count > keyIndex ? HashSlot.of(scratchCommand.argument(at: keyIndex)) : nil
        }, emit: { (connection: RedisConnection) throws(RedisError) in
            try connection.appendEncoded(scratchCommand)
        }, handle: { (index: Int, reply: UnsafeMutablePointer<redisReply>) throws(RedisError) in
            replies[index] = try Hiredis.decode(reply)
        })
        return replies
    }

    /// Pipelines `count` invocations of `script` (`EVALSHA`), `build(i, &call)` adding the keys
    /// and arguments of invocation `i`; routed by the first key (all keys of one invocation must
    /// share a slot, or the node answers `CROSSSLOT`). A node that answers `NOSCRIPT` gets the
    /// script loaded and the invocations resent. Returns the replies in invocation order.
    public func evalshaPipeline(_ script: RedisScript, count: Int,
                                _ build: (_ index: Int, _ call: inout RedisScriptCall) -> Void) throws(RedisError) -> [RedisReply] {
        var replies = [RedisReply](repeating: .null, count: count)
        try invocations("EVALSHA", script.sha1, count: count, build,
                        isMissing: { $0.hasPrefix("NOSCRIPT") },
                        reload: { (connection: RedisConnection) throws(RedisError) in try connection.scriptLoad(script) },
                        handle: { (index: Int, reply: UnsafeMutablePointer<redisReply>) throws(RedisError) in
                            replies[index] = try Hiredis.decode(reply)
                        })
        return replies
    }

    /// Pipelines `count` calls of the loaded `function` (`FCALL_RO`; it must be `no-writes`), routed by the first key.
    /// Replies for which `isMissing(message)` holds (e.g. "function not found" on a new master)
    /// make the client run `reload` on that node and resend them. Returns the replies in order.
    public func fcallPipeline(_ function: String, count: Int,
                              isMissing: (String) -> Bool = { _ in false },
                              reload: (RedisConnection) throws(RedisError) -> Void = { _ in },
                              _ build: (_ index: Int, _ call: inout RedisScriptCall) -> Void) throws(RedisError) -> [RedisReply] {
        var replies = [RedisReply](repeating: .null, count: count)
        try invocations("FCALL_RO", function, count: count, build, isMissing: isMissing, reload: reload,
                        handle: { (index: Int, reply: UnsafeMutablePointer<redisReply>) throws(RedisError) in
                            replies[index] = try Hiredis.decode(reply)
                        })
        return replies
    }

    /// `EVALSHA`/`FCALL` routing by the first key of each invocation.
    func invocations(_ command: StaticString, _ name: String, count: Int,
                     _ build: (Int, inout RedisScriptCall) -> Void,
                     isMissing: (String) -> Bool,
                     reload: (RedisConnection) throws(RedisError) -> Void,
                     handle: (Int, UnsafeMutablePointer<redisReply>) throws(RedisError) -> Void) throws(RedisError) {
        try route(count: count, stage: { (index: Int) -> Int? in
            scratchCall.removeAll()
            build(index, &scratchCall)
            return scratchCall.keys.isEmpty ? nil : HashSlot.of(scratchCall.keys.argument(at: 0))
        }, emit: { (connection: RedisConnection) throws(RedisError) in
            try connection.appendInvocationEncoded(command, name, scratchCall)
        }, isMissing: isMissing, reload: reload, handle: handle)
    }
}
