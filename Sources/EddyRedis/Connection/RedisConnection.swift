import CEddyRedisTLS
import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking connection to one Redis server, with hand-made pipelining over hiredis.
///
/// Commands are *appended* to an output buffer (``append(_:)``, ``append(building:)``) and their
/// replies *read* in order (``readReply()``, ``pipeline(count:)``, ``drain(count:)``); the buffer
/// is written to the socket when the first reply is read; ``command(_:)`` does both for one command.
/// Appending encodes the command straight into a reused wire-format buffer: no heap allocation
/// per command or argument.
///
/// Not thread-safe, and deliberately not `Sendable`: create it on (or hand it to) the one thread
/// that uses it, e.g. a writer stage's thread.
///
/// After a connection-level error (``RedisError/isConnectionError``) every call throws until
/// ``reconnect()`` succeeds; ``withRetry(_:_:)`` automates that with backoff.
public final class RedisConnection {
    /// The address, credentials and database this connection uses (also for ``reconnect()``).
    public let url: RedisURL
    /// The settings this connection uses (also for ``reconnect()``).
    public let options: Options
    /// Number of appended commands whose replies have not been read yet.
    public internal(set) var pendingReplyCount = 0

    /// The hiredis context; `nil` after ``close()`` or a failed ``reconnect()``.
    var context: Hiredis.Context?
    /// The TLS session over the context's socket (`rediss://`); `nil` for plaintext. With one,
    /// writes and reads go through `CEddyRedisTLS` instead of hiredis's socket calls.
    var tlsSession: UnsafeMutableRawPointer?
    // The three buffers below skip Swift's dynamic exclusivity checks: a
    // connection is used by one thread, and a builder lent to a closure must
    // not touch its connection (documented on `append(building:)`). The
    // checks cost ~4 runtime calls (~110 instructions) per appended command,
    // two to three commands per entity a worker writes (callgrind).
    /// Commands appended but not yet handed to hiredis, already in wire format.
    @exclusivity(unchecked) var staged = RESPEncoder()
    /// Reused by ``append(building:)``.
    @exclusivity(unchecked) var builder = RedisCommandBuilder()
    /// Reused by `EVALSHA` / `FCALL` helpers.
    @exclusivity(unchecked) var scriptCall = RedisScriptCall()
    /// Staged bytes beyond which commands are handed to hiredis before the next read.
    static let stagingFlushThreshold = 64 * 1024

    /// Connects, then authenticates, selects the database, sets the client name and runs
    /// ``Options/onConnect`` as configured.
    ///
    /// - Throws: ``RedisError/connectionFailed(endpoint:reason:)``,
    ///   ``RedisError/authenticationFailed(message:)`` or the error of a failing setup command.
    public init(url: RedisURL, options: Options = Options()) throws(RedisError) {
        self.url = url
        self.options = options
        try open()
    }

    deinit {
        if let tlsSession { eddy_tls_free(tlsSession) }
        if let context { redisFree(context) }
        staged.deallocate()
        builder.deallocate()
        scriptCall.deallocate()
    }

    /// `false` once the connection is closed or has failed; it then needs ``reconnect()``.
    /// A server that vanished silently is noticed only by the next read or write.
    public var isConnected: Bool {
        guard let context else { return false }
        return context.pointee.err == 0
    }

    /// Drops the current socket (if any) and connects again with the same URL and options.
    /// Unread replies of the old connection are lost.
    public func reconnect() throws(RedisError) {
        close()
        try open()
    }

    /// Closes the socket; further calls throw until ``reconnect()``.
    public func close() {
        if let tlsSession { eddy_tls_free(tlsSession) }
        tlsSession = nil
        if let context { redisFree(context) }
        context = nil
        staged.removeAll()
        pendingReplyCount = 0
    }

    // MARK: State checks

    func usableContext() throws(RedisError) -> Hiredis.Context {
        guard let context else {
            throw .connectionLost(reason: "connection is closed; call reconnect()")
        }
        guard context.pointee.err == 0 else {
            throw .connectionLost(
                reason: "connection unusable after an earlier error (\(Hiredis.errorString(context))); call reconnect()")
        }
        return context
    }

    func requireNoPendingReplies() throws(RedisError) {
        _ = try usableContext()
        guard pendingReplyCount == 0 else {
            throw .invalidUsage("\(pendingReplyCount) pipelined replies are unread; read them before command()")
        }
    }

    func requirePending(_ count: Int) throws(RedisError) {
        _ = try usableContext()
        guard count >= 0, count <= pendingReplyCount else {
            throw .invalidUsage("asked for \(count) replies but \(pendingReplyCount) are pending")
        }
    }

    // MARK: Connection setup

    private func open() throws(RedisError) {
        let context = try Hiredis.connect(to: url.endpoint, options: options)
        self.context = context
        pendingReplyCount = 0
        if let tls = url.tls {
            do {
                tlsSession = try Hiredis.startTLS(on: context, endpoint: url.endpoint, tls: tls, options: options)
            } catch {
                close()
                throw error
            }
        }
        do {
            try handshake()
        } catch {
            close()
            if error.isConnectionError, case .connectionFailed = error {
                throw error
            } else if error.isConnectionError {
                throw .connectionFailed(endpoint: url.endpoint.description, reason: "during setup: \(error)")
            }
            throw error
        }
    }

    private func handshake() throws(RedisError) {
        if let password = url.password {
            let reply: RedisReply
            if let username = url.username {
                reply = try command("AUTH", username, password)
            } else {
                reply = try command("AUTH", password)
            }
            if case let .error(message) = reply {
                throw .authenticationFailed(message: message)
            }
        }
        if url.database != 0 {
            try command("SELECT", url.database).checked()
        }
        if let clientName = options.clientName {
            try command("CLIENT", "SETNAME", clientName).checked()
        }
        try options.onConnect?(self)
    }
}

@available(*, unavailable, message: "RedisConnection is used by one thread at a time; give each thread its own")
extension RedisConnection: Sendable {}
