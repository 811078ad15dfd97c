/// Redis 7 functions: `FUNCTION LOAD` and `FCALL`.
extension RedisConnection {
    /// Loads a function library (source starting with `#!lua name=<library>`) and returns the
    /// library name. With `replace` (the default) an existing library of that name is replaced,
    /// which makes loading at start-up idempotent.
    @discardableResult
    public func functionLoad(_ source: String, replace: Bool = true) throws(RedisError) -> String {
        let reply = replace
            ? try command("FUNCTION", "LOAD", "REPLACE", source)
            : try command("FUNCTION", "LOAD", source)
        guard let name = try reply.checked().string else {
            throw .unexpectedReply(command: "FUNCTION LOAD", reply: reply.description)
        }
        return name
    }

    /// Appends `FCALL function numkeys keys... args...` without reading the reply; with
    /// `readOnly`, `FCALL_RO`, which needs a `no-writes` function and is all a read-only ACL
    /// user may be granted (Eddy's read functions are `no-writes`).
    public func appendFcall(_ function: String, readOnly: Bool = false,
                            _ build: (inout RedisScriptCall) -> Void) throws(RedisError) {
        if readOnly {
            try appendInvocation("FCALL_RO", function, build)
        } else {
            try appendInvocation("FCALL", function, build)
        }
    }

    /// Calls a loaded function and returns its reply (error replies included); `readOnly` as
    /// for ``appendFcall(_:readOnly:_:)``.
    public func fcall(_ function: String,
                      keys: [any RedisArgument] = [],
                      arguments: [any RedisArgument] = [],
                      readOnly: Bool = false) throws(RedisError) -> RedisReply {
        try requireNoPendingReplies()
        try appendFcall(function, readOnly: readOnly) { call in
            call.keys.add(contentsOf: keys)
            call.arguments.add(contentsOf: arguments)
        }
        return try readReply()
    }
}
