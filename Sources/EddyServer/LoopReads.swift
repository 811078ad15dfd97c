import EddyRedis
import NIOCore
import NIOPosix

/// Single-key feature reads on the event loop that handles the request,
/// over a Redis connection that loop owns: the request, its `FCALL` and the
/// reply never leave the loop's thread (a lane costs two thread wakeups per
/// batch, which on a 2-core box are most of a read's latency).
///
/// Only the common case is read here: a connected loop, a library a lane
/// has already checked, and a reply that is the entity's object or null.
/// Everything else falls back to the lanes, which install the library,
/// retry, and turn failures into 503/500: the loop has no connection yet
/// (connecting starts, in the background), the connection is lost (its reads
/// in flight fall back), an error reply (a missing function, `EDDYSTATE`,
/// `WRONGTYPE`), or no reply within the command timeout (the connection is
/// closed). A loop whose connection attempt failed tries again after
/// `cooldown`. Single Redis servers only: a cluster reads through lanes.
final class LoopReads: Sendable {
    /// The server, its credentials, and the lanes' timeouts and client name.
    struct Settings: Sendable {
        var url: RedisURL
        var connectTimeout: Duration
        var commandTimeout: Duration
        var clientName: String?
        var cooldown: Duration
    }

    /// Why a loop read gave up (the caller reads through a lane instead).
    struct Fallback: Error {
        let reason: String
    }

    let settings: Settings
    private let loops: [ObjectIdentifier: NIOLoopBoundBox<LoopConnection>]

    /// A connection slot for every loop of `group` (connected on first use).
    init(settings: Settings, group: MultiThreadedEventLoopGroup) {
        self.settings = settings
        var loops: [ObjectIdentifier: NIOLoopBoundBox<LoopConnection>] = [:]
        for loop in group.makeIterator() {
            loops[ObjectIdentifier(loop)] = .makeBoxSendingValue(LoopConnection(settings: settings, loop: loop), eventLoop: loop)
        }
        self.loops = loops
    }

    /// `FCALL function 1 key [at]` on `loop`'s connection: the object, or
    /// nil for an entity Redis does not hold; a `Fallback` failure for
    /// anything else. Nil (no future) when the loop is not connected, or
    /// not one of ours. Call on `loop`.
    func fcall(_ function: String, key: String, at: Int64?, on loop: any EventLoop) -> EventLoopFuture<[UInt8]?>? {
        guard let connection = loops[ObjectIdentifier(loop)]?.value else { return nil }
        return connection.fcall(function, key: key, at: at)
    }
}

/// One loop's connection to Redis; used on that loop only.
final class LoopConnection {
    enum State {
        case idle
        case connecting
        case ready(Channel, LoopRedisHandler)
        case coolingDown(until: NIODeadline)
    }

    let settings: LoopReads.Settings
    let loop: any EventLoop
    private var state = State.idle

    init(settings: LoopReads.Settings, loop: any EventLoop) {
        self.settings = settings
        self.loop = loop
    }

    func fcall(_ function: String, key: String, at: Int64?) -> EventLoopFuture<[UInt8]?>? {
        switch state {
        case .ready(let channel, let handler):
            var command = channel.allocator.buffer(capacity: 64 + function.utf8.count + key.utf8.count)
            let atText = at.map { String($0) }
            command.writeRESPArrayHeader(atText == nil ? 4 : 5)
            command.writeRESPBulk("FCALL_RO")
            command.writeRESPBulk(function)
            command.writeRESPBulk("1")
            command.writeRESPBulk(key)
            if let atText { command.writeRESPBulk(atText) }
            return handler.send(command).flatMapThrowing { reply in
                switch reply {
                case .bulk(let bytes): return bytes
                case .null: return nil
                case .error(let message): throw LoopReads.Fallback(reason: message)
                case .status, .other: throw LoopReads.Fallback(reason: "unexpected reply \(reply)")
                }
            }
        case .idle:
            connect()
            return nil
        case .coolingDown(let until):
            if NIODeadline.now() >= until { connect() }
            return nil
        case .connecting:
            return nil
        }
    }

    private func connect() {
        state = .connecting
        let settings = settings
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(settings.connectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPReplyDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        LoopRedisHandler(eventLoop: channel.eventLoop, commandTimeout: TimeAmount(settings.commandTimeout)))
                }
            }
        let connected: EventLoopFuture<Channel>
        switch settings.url.endpoint {
        case .tcp(let host, let port): connected = bootstrap.connect(host: host, port: port)
        case .unix(let path): connected = bootstrap.connect(unixDomainSocketPath: path)
        }
        connected.assumeIsolated().flatMap { channel in
            do {
                let handler = try channel.pipeline.syncOperations.handler(type: LoopRedisHandler.self)
                return Self.handshake(channel, handler, settings: settings).map { channel }
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.whenComplete { result in
            switch result {
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: LoopRedisHandler.self) else {
                    channel.close(promise: nil)
                    self.state = .idle
                    return
                }
                self.state = .ready(channel, handler)
                channel.closeFuture.assumeIsolated().whenComplete { _ in
                    if case .ready(let c, _) = self.state, c === channel { self.state = .idle }
                }
            case .failure:
                connected.whenSuccess { $0.close(promise: nil) }
                self.state = .coolingDown(until: .now() + TimeAmount(settings.cooldown))
            }
        }
    }

    /// `AUTH`, `SELECT` and `CLIENT SETNAME`, as `RedisConnection` does; any error reply fails.
    private static func handshake(_ channel: Channel, _ handler: LoopRedisHandler,
                                  settings: LoopReads.Settings) -> EventLoopFuture<Void> {
        var commands: [[String]] = []
        let url = settings.url
        if let password = url.password {
            commands.append(url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if url.database != 0 { commands.append(["SELECT", String(url.database)]) }
        if let name = settings.clientName { commands.append(["CLIENT", "SETNAME", name]) }
        let replies = commands.map { words in
            var buffer = channel.allocator.buffer(capacity: 64)
            buffer.writeRESPArrayHeader(words.count)
            for w in words { buffer.writeRESPBulk(w) }
            return handler.send(buffer)
        }
        return EventLoopFuture.whenAllSucceed(replies, on: channel.eventLoop).flatMapThrowing { replies in
            for case .error(let message) in replies { throw LoopReads.Fallback(reason: message) }
        }
    }
}

/// Matches replies to the commands sent, in order; fails the commands in
/// flight when the connection closes, and closes it when the oldest has
/// waited longer than `commandTimeout`.
final class LoopRedisHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = LoopReply
    typealias OutboundOut = ByteBuffer

    private let eventLoop: any EventLoop
    private let commandTimeout: TimeAmount
    private var pending = CircularBuffer<(promise: EventLoopPromise<LoopReply>, sent: NIODeadline)>()
    private var context: ChannelHandlerContext?
    private var timeoutCheck: RepeatedTask?
    private var flushQueued = false

    init(eventLoop: any EventLoop, commandTimeout: TimeAmount) {
        self.eventLoop = eventLoop
        self.commandTimeout = commandTimeout
    }

    /// Sends `command`; its reply completes the future. On the channel's loop.
    ///
    /// The flush waits for the loop's queued tasks: the requests read
    /// together are handled as tasks queued together, and their commands
    /// leave in one write (Redis sees a pipeline, and wakes once).
    func send(_ command: ByteBuffer) -> EventLoopFuture<LoopReply> {
        guard let context else {
            return eventLoop.makeFailedFuture(LoopReads.Fallback(reason: "not connected"))
        }
        let promise = context.eventLoop.makePromise(of: LoopReply.self)
        pending.append((promise, .now()))
        context.write(wrapOutboundOut(command), promise: nil)
        if !flushQueued {
            flushQueued = true
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute {
                let handler = bound.value
                handler.flushQueued = false
                handler.context?.flush()
            }
        }
        return promise.futureResult
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let timeout = commandTimeout
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeoutCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
            let handler = bound.value
            if let oldest = handler.pending.first, NIODeadline.now() - oldest.sent > timeout {
                handler.context?.close(promise: nil)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeoutCheck?.cancel()
        failAll(LoopReads.Fallback(reason: "connection closed"))
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard let first = pending.popFirst() else {
            context.close(promise: nil)  // a reply to nothing: out of step
            return
        }
        first.promise.succeed(reply)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeoutCheck?.cancel()
        failAll(LoopReads.Fallback(reason: "connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(LoopReads.Fallback(reason: "\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let p = pending.popFirst() { p.promise.fail(error) }
    }
}

extension TimeAmount {
    init(_ d: Duration) {
        let c = d.components
        self = .nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
    }
}

extension ByteBuffer {
    mutating func writeRESPArrayHeader(_ count: Int) {
        writeStaticString("*")
        writeString(String(count))
        writeStaticString("\r\n")
    }

    mutating func writeRESPBulk(_ s: String) {
        writeStaticString("$")
        writeString(String(s.utf8.count))
        writeStaticString("\r\n")
        writeString(s)
        writeStaticString("\r\n")
    }
}
