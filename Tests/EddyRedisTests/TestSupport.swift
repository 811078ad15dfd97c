import EddyDevKit
import EddyRedis
import Testing

/// Starts a throwaway redis-server (see `RedisServerProcess`) and a connection to it.
func withRedis(options: [String: String] = [:],
               connectionOptions: RedisConnection.Options = .init(),
               _ body: (RedisServerProcess, RedisConnection) throws -> Void) throws {
    let server = try RedisServerProcess(options: options)
    let connection = try RedisConnection(url: server.url, options: connectionOptions)
    try body(server, connection)
}

/// The error `body` throws, or `nil`.
func caughtError<E: Error>(_ body: () throws(E) -> Void) -> E? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

extension RedisReply {
    /// A bulk reply holding the UTF-8 of `text`.
    static func bulk(_ text: String) -> RedisReply { .bulk(Array(text.utf8)) }
}
