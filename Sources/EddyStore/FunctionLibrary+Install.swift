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
        do {
            try connection.functionLoad(source, replace: true)
        } catch where error.isPermissionDenied {
            // A read-only (serving) user: the worker of this topology loads the library.
            throw .server(message: """
                NOPERM the Function library \(libraryName) version \(version) is not loaded on \(connection.url), \
                and this Redis user may not load it (\(error)). Start a worker of this topology, which loads \
                it, or load it once as a user granted +function|load.
                """)
        }
        return true
    }

    /// The version of the library of this name loaded on the server, or nil
    /// when none is (or one without a version function).
    public func installedVersion(on connection: RedisConnection) throws(RedisError) -> String? {
        let reply = try connection.fcall(versionFunctionName, readOnly: true)
        if let message = reply.errorMessage {
            if Self.isMissingFunction(message) { return nil }
            throw .server(message: message)
        }
        return reply.string
    }

    /// Installs the library of `topology` on the server, or on every master of a cluster, where
    /// that master does not already run this exact version.
    ///
    /// - Returns: whether it was loaded anywhere.
    @discardableResult
    public static func install(on client: RedisClient, topology: Topology) throws(RedisError) -> Bool {
        try FunctionLibrary(topology: topology).install(on: client)
    }

    /// Loads this library (see ``install(on:force:)-(RedisConnection,_)``) on the single server or
    /// on every master of a cluster: `FCALL` runs where the key's slot lives, so each master needs
    /// it. A master that later answers "function not found" (one that joined, or was promoted
    /// empty) gets it again from the read path (`FeatureClient`, `RedisLanes`).
    ///
    /// - Returns: whether it was loaded anywhere.
    @discardableResult
    public func install(on client: RedisClient, force: Bool = false) throws(RedisError) -> Bool {
        var loaded = false
        try client.forEachMaster { (connection: RedisConnection) throws(RedisError) in
            if try install(on: connection, force: force) { loaded = true }
        }
        return loaded
    }

    /// The version loaded on the server; on a cluster, the version every master runs, or nil when
    /// some master has none or another one.
    public func installedVersion(on client: RedisClient) throws(RedisError) -> String? {
        var versions: Set<String?> = []
        try client.forEachMaster { (connection: RedisConnection) throws(RedisError) in
            versions.insert(try installedVersion(on: connection))
        }
        return versions.count == 1 ? versions.first! : nil
    }

    /// Whether an error reply says the called function is not loaded (a
    /// restarted or flushed Redis).
    public static func isMissingFunction(_ errorMessage: String) -> Bool {
        errorMessage.hasPrefix("ERR Function not found")
    }
}
