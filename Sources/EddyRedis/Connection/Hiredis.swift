import CEddyRedisTLS
import CHiredis
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin, internal wrappers over the hiredis C API.
enum Hiredis {
    typealias Context = UnsafeMutablePointer<redisContext>

    /// Opens a blocking connection, applies the socket options and returns it, or throws.
    static func connect(to endpoint: RedisURL.Endpoint,
                        options: RedisConnection.Options) throws(RedisError) -> Context {
        IgnoreSIGPIPE.ensure()
        let connectTimeout = timeval(options.connectTimeout)
        let context: Context?
        switch endpoint {
        case let .tcp(host, port):
            context = redisConnectWithTimeout(host, Int32(port), connectTimeout)
        case let .unix(path):
            context = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        guard let context else {
            throw .connectionFailed(endpoint: endpoint.description, reason: "cannot allocate a hiredis context")
        }
        if context.pointee.err != 0 {
            let reason = errorString(context)
            redisFree(context)
            throw .connectionFailed(endpoint: endpoint.description, reason: reason)
        }
        // hiredis 0.14 reuses the connect timeout for reads; replace it with the command timeout
        // (zero means "block until the reply arrives").
        var failed = redisSetTimeout(context, timeval(options.commandTimeout ?? .zero)) != REDIS_OK
        if !failed, options.tcpKeepAlive, case .tcp = endpoint {
            failed = redisEnableKeepAlive(context) != REDIS_OK
        }
        if failed {
            let reason = errorString(context)
            redisFree(context)
            throw .connectionFailed(endpoint: endpoint.description, reason: reason)
        }
        return context
    }

    /// Runs the TLS handshake on a connected context (see `CEddyRedisTLS`), within
    /// `options.connectTimeout`, and returns the session; the context's own timeouts are set again
    /// afterwards. Throws ``RedisError/connectionFailed(endpoint:reason:)`` naming the host.
    static func startTLS(on context: Context, endpoint: RedisURL.Endpoint, tls: RedisTLS,
                         options: RedisConnection.Options) throws(RedisError) -> UnsafeMutableRawPointer {
        guard case let .tcp(host, _) = endpoint else {
            throw .connectionFailed(endpoint: endpoint.description, reason: "TLS needs a TCP endpoint")
        }
        _ = redisSetTimeout(context, timeval(options.connectTimeout))
        var message = [CChar](repeating: 0, count: 512)
        let session: UnsafeMutableRawPointer? = withOptionalCString(tls.caFile) { ca in
            withOptionalCString(tls.certFile) { cert in
                withOptionalCString(tls.keyFile) { key in
                    withOptionalCString(tls.serverName) { name in
                        var settings = eddy_tls_settings(ca_file: ca, cert_file: cert, key_file: key, server_name: name,
                                                         insecure: tls.insecure ? 1 : 0)
                        return eddy_tls_connect(UnsafeMutableRawPointer(context), host, &settings, &message, message.count)
                    }
                }
            }
        }
        guard let session else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .connectionFailed(endpoint: endpoint.description, reason: reason)
        }
        guard redisSetTimeout(context, timeval(options.commandTimeout ?? .zero)) == REDIS_OK else {
            eddy_tls_free(session)
            throw .connectionFailed(endpoint: endpoint.description, reason: errorString(context))
        }
        return session
    }

    private static func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let text else { return body(nil) }
        return text.withCString { body($0) }
    }

    /// The context's `errstr`.
    static func errorString(_ context: Context) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Maps the context's error state (after a failed read or write) to a ``RedisError``.
    /// `savedErrno` is `errno` captured right after the failing call.
    static func error(of context: Context, errno savedErrno: Int32) -> RedisError {
        let reason = errorString(context)
        switch context.pointee.err {
        case REDIS_ERR_IO where savedErrno == EAGAIN || savedErrno == EWOULDBLOCK:
            return .timedOut(reason: "no reply within the command timeout (\(reason))")
        case REDIS_ERR_PROTOCOL:
            return .protocolError(reason: reason)
        case REDIS_ERR_EOF:
            return .connectionLost(reason: reason.isEmpty ? "server closed the connection" : reason)
        default:
            return .connectionLost(reason: reason.isEmpty ? "I/O error" : reason)
        }
    }

    /// Converts a hiredis reply tree into a ``RedisReply``.
    static func decode(_ reply: UnsafePointer<redisReply>) throws(RedisError) -> RedisReply {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulk(r.len == 0 ? [] : [UInt8](UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_STATUS:
            return .status(text(r))
        case REDIS_REPLY_ERROR:
            return .error(text(r))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                guard let element = r.element[index] else {
                    throw .protocolError(reason: "array reply with a missing element")
                }
                elements.append(try decode(element))
            }
            return .array(elements)
        default:
            throw .protocolError(reason: "unknown reply type \(r.type)")
        }
    }

    /// The message of an error reply, or `nil` if the reply is not an error.
    static func errorMessage(_ reply: UnsafePointer<redisReply>) -> String? {
        reply.pointee.type == REDIS_REPLY_ERROR ? text(reply.pointee) : nil
    }

    private static func text(_ r: redisReply) -> String {
        r.len == 0 ? "" : String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self)
    }
}

extension timeval {
    /// A `timeval` for a non-negative duration (negative durations become zero).
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) {
            self.init(tv_sec: 0, tv_usec: 0)
        } else {
            self.init(tv_sec: .init(seconds), tv_usec: .init(attoseconds / 1_000_000_000_000))
        }
    }
}

/// hiredis's RESP reader over bytes from anywhere (not a socket): what every
/// reply Eddy reads from Redis goes through, reachable for the fuzzer
/// (`eddy-fuzz resp`) and for tests.
package enum RESPBytes {
    /// The complete replies in `bytes`, in order, decoded as connections decode them; a
    /// protocol error throws ``RedisError/protocolError(reason:)``. Bytes after the last
    /// complete reply are ignored.
    package static func replies(in bytes: UnsafeRawBufferPointer) throws(RedisError) -> [RedisReply] {
        guard let reader = redisReaderCreate() else { throw .invalidUsage("cannot create a RESP reader") }
        defer { redisReaderFree(reader) }
        if bytes.count > 0,
           redisReaderFeed(reader, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count) != REDIS_OK {
            throw .protocolError(reason: "feed failed")
        }
        var replies: [RedisReply] = []
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
                let reason = withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                throw .protocolError(reason: reason)
            }
            guard let raw else { return replies }
            defer { freeReplyObject(raw) }
            replies.append(try Hiredis.decode(raw.assumingMemoryBound(to: redisReply.self)))
        }
    }
}
