import EddyCore
import EddyRedis

extension FunctionLibrary {
    /// Generates the library of `topology` and installs it on `connection`
    /// unless the server already has this exact version.
    ///
    /// - Returns: whether the library was loaded.
    /// - Throws: `RedisError` from the connection or `FUNCTION LOAD`.
    @discardableResult
    public static func install(on connection: RedisConnection, topology: Topology) throws(RedisError) -> Bool {
        try FunctionLibrary(topology: topology).install(on: connection)
    }

    /// Loads this library with `FUNCTION LOAD REPLACE`, unless `force` is
    /// false and the server already runs this `version`. Idempotent; safe
    /// when several clients install at once (they load the same code).
    ///
    /// - Returns: whether the library was loaded.
    /// - Throws: `RedisError` from the connection or `FUNCTION LOAD`.
    @discardableResult
    public func install(on connection: RedisConnection, force: Bool = false) throws(RedisError) -> Bool {
        if !force, try installedVersion(on: connection) == version { return false }
        try connection.functionLoad(source, replace: true)
        return true
    }

    /// The version of the library of this name loaded on the server, or nil
    /// when none is (or one without a version function).
    public func installedVersion(on connection: RedisConnection) throws(RedisError) -> String? {
        let reply = try connection.fcall(versionFunctionName)
        if let message = reply.errorMessage {
            if Self.isMissingFunction(message) { return nil }
            throw .server(message: message)
        }
        return reply.string
    }

    /// Whether an error reply says the called function is not loaded (a
    /// restarted or flushed Redis).
    public static func isMissingFunction(_ errorMessage: String) -> Bool {
        errorMessage.hasPrefix("ERR Function not found")
    }
}
