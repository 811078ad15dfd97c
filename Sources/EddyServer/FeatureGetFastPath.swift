import EddyStore
import Foundation
import HTTPTypes
import Metrics
import NIOCore
import NIOHTTPTypes

/// What the fast path needs from the server: the topologies it may answer
/// and the metrics a read updates. Shared by every connection's handler.
package struct FastPathRoutes: Sendable {
    struct Topology: Sendable {
        let reader: TopologyReader
        let loopReads: LoopReads
        let found: Metrics.Counter
        let missing: Metrics.Counter
        /// Reads answered here (the rest of the route's reads went through the router).
        let answered: Metrics.Counter
    }

    /// By topology name; only topologies read on the event loops (single Redis servers).
    let topologies: [String: Topology]
    /// With bearer tokens, a read without an accepted one is left to the router (a 401).
    let tokens: BearerTokens?
    let ok: (count: Metrics.Counter, duration: Metrics.Timer)
    let notFound: (count: Metrics.Counter, duration: Metrics.Timer)

    static let route = "/v1/features/{topology}/{key}"
    static let prefix = Array("/v1/features/".utf8)

    /// A request the fast path answers: the topology, the decoded key and read time.
    struct Plan {
        let topology: Topology
        let key: String
        /// What Redis holds: `key`, or its HMAC (`key: {hash: ...}`).
        let entityKey: String
        let at: Int64?
        /// `Connection: close`: the connection closes after the reply.
        let close: Bool
    }

    /// `GET /v1/features/{topology}/{key}[?at=T]` with no body, for a
    /// topology whose library a lane has checked; nil for anything else
    /// (Hummingbird's router answers it, errors included).
    func plan(_ request: HTTPRequest) -> Plan? {
        guard request.method == .get, let path = request.path,
              request.headerFields[.contentLength] == nil || request.headerFields[.contentLength] == "0",
              request.headerFields[.transferEncoding] == nil
        else { return nil }
        if let tokens, !tokens.allows(authorization: request.headerFields[.authorization]) { return nil }
        var close = false
        if let connection = request.headerFields[.connection]?.lowercased() {
            guard connection == "close" || connection == "keep-alive" else { return nil }  // an upgrade, say
            close = connection == "close"
        }
        guard let read = Self.parseRead(path), let topology = topologies[read.topology],
              topology.reader.libraryChecked.load(ordering: .relaxed)
        else { return nil }
        return Plan(topology: topology, key: read.key, entityKey: topology.reader.topology.entityKey(read.key),
                    at: read.at, close: close)
    }

    /// The parts of `/v1/features/{topology}/{key}[?at=T]`, percent-decoded; nil for any other
    /// path, or one the router answers better (a lone `at=T` that parses is the only query taken).
    /// Takes untrusted bytes: fuzzed by `eddy-fuzz http-path`.
    package static func parseRead(_ path: String) -> (topology: String, key: String, at: Int64?)? {
        let utf8 = path.utf8
        guard utf8.starts(with: Self.prefix) else { return nil }
        let rest = utf8.dropFirst(Self.prefix.count)
        let pathEnd = rest.firstIndex(of: UInt8(ascii: "?")) ?? rest.endIndex
        guard let slash = rest[..<pathEnd].firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let name = rest[..<slash]
        let rawKey = rest[rest.index(after: slash)..<pathEnd]
        guard !name.isEmpty, !rawKey.isEmpty, !rawKey.contains(UInt8(ascii: "/")) else { return nil }
        var at: Int64?
        if pathEnd != rest.endIndex {
            // Only a lone `at=T` that parses; anything else gets the router's answer.
            let query = Substring(rest[rest.index(after: pathEnd)...])
            guard query.hasPrefix("at="), !query.contains("&") else { return nil }
            let text = query.dropFirst(3)
            guard let t = ReadTime.parse(text.removingPercentEncoding ?? String(text)) else { return nil }
            at = t
        }
        return (EddyHTTPServer.percentDecoded(Substring(name)), EddyHTTPServer.percentDecoded(Substring(rawKey)), at)
    }
}

/// Answers the hot route, a single-key feature read, in the channel
/// pipeline, before Hummingbird: the request is parsed, its `FCALL` sent on
/// the loop's own Redis connection (`LoopReads`), and the reply written,
/// all on the connection's event loop without a Swift task, an async
/// sequence or a hop (those are most of the server's CPU per read on a
/// 2-core box).
///
/// Everything else goes on to Hummingbird untouched: other routes, odd
/// requests (a body, an upgrade, an unknown topology, a bad `at`), and reads the loop cannot answer (no connection yet, an error
/// reply, a timeout), which are handed over as if never seen, so the router
/// answers them the usual way (lanes, retries, 503/500). Replies keep the
/// order of the requests: while a read is in flight later requests wait
/// here, and while the router owes replies later reads go to it too.
final class FeatureGetFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The read this handler is answering.
    private struct InFlight {
        let id: Int
        let plan: FastPathRoutes.Plan
        let start: UInt64
        /// The request's `.end` has been read.
        var ended = false
        /// Redis's answer, once it came: the object, or nil for no entity.
        var reply: [UInt8]??
    }

    /// Requests held while a read is in flight; reading stops at this many parts.
    static let maxHeldParts = 32

    private let routes: FastPathRoutes
    private var inFlight: InFlight?
    private var nextID = 0
    /// Requests handed to the router whose reply has not ended yet.
    private var routerOwes = 0
    private var held = CircularBuffer<HTTPRequestPart>()
    private var readHeld = false
    private var quiesceHeld = false
    /// A `Connection: close` read was answered: the rest is dropped.
    private var closing = false
    /// An error from the HTTP decoder (a malformed request) that arrived
    /// while reads before it were in flight or held: passed on (and so
    /// answered with a 400 and a close) only once they are answered.
    private var heldError: (any Error)?
    private var date = (second: 0, value: "")

    init(routes: FastPathRoutes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing { return }
        let part = unwrapInboundIn(data)
        if !held.isEmpty || inFlight?.ended == true {
            held.append(part)  // a later request: it waits its turn
        } else if inFlight != nil {
            finishReading(part, context: context)
        } else {
            handle(part, context: context)
        }
    }

    /// The rest of the request in flight: no body is expected (none is announced).
    private func finishReading(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        guard case .end = part, var current = inFlight else { return }
        current.ended = true
        inFlight = current
        if current.reply != nil { answer(context: context) }
    }

    /// Starts a read, or hands `part` on to the router (then true).
    @discardableResult
    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) -> Bool {
        guard case .head(let request) = part, routerOwes == 0, let plan = routes.plan(request),
              let reply = plan.topology.loopReads.fcall(
                  plan.topology.reader.library.functionName, key: plan.topology.reader.prefix + plan.entityKey,
                  at: plan.at, on: context.eventLoop)
        else {
            if case .head = part { routerOwes += 1 }
            context.fireChannelRead(wrapInboundOut(part))
            return true
        }
        nextID &+= 1
        let id = nextID
        inFlight = InFlight(id: id, plan: plan, start: DispatchTime.now().uptimeNanoseconds)
        reply.assumeIsolated().whenComplete { result in
            guard var current = self.inFlight, current.id == id else { return }  // the connection went away
            switch result {
            case .success(let object):
                current.reply = .some(object)
                self.inFlight = current
                if current.ended { self.answer(context: context) }
            case .failure:
                self.handOver(request: request, context: context)
            }
        }
        return false
    }

    /// The loop could not read: the router answers the request instead.
    private func handOver(request: HTTPRequest, context: ChannelHandlerContext) {
        guard let current = inFlight else { return }
        inFlight = nil
        routerOwes += 1
        context.fireChannelRead(wrapInboundOut(.head(request)))
        if current.ended {
            context.fireChannelRead(wrapInboundOut(.end(nil)))
            drainHeld(context: context)
        } else {
            passHeldErrorWhenIdle(context: context)
        }
        // Outside a read cycle: the router's async channel takes what it was given at read-complete.
        context.fireChannelReadComplete()
        // Else the request's `.end` is still to come, and goes on by itself.
    }

    private func answer(context: ChannelHandlerContext) {
        guard let current = inFlight, case .some(let object) = current.reply else { return }
        inFlight = nil
        let topology = current.plan.topology
        let status: HTTPResponse.Status
        let body: [UInt8]
        if let object {
            status = .ok
            body = object
            topology.found.increment()
        } else {
            status = .notFound
            body = FeatureClient.notFoundObject(key: current.plan.key)
            topology.missing.increment()
        }
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.count)
        fields[.date] = httpDate()
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        context.write(wrapOutboundOut(.body(buffer)), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        let metrics = object == nil ? routes.notFound : routes.ok
        metrics.count.increment()
        metrics.duration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - current.start))
        topology.answered.increment()
        if current.plan.close {
            closing = true
            held.removeAll()
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        if quiesceHeld {
            // Shutting down: this reply was the last; the router's handler closes the connection.
            quiesceHeld = false
            held.removeAll()
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            return
        }
        drainHeld(context: context)
    }

    /// Handles the held parts until a read is in flight and its request read whole.
    private func drainHeld(context: ChannelHandlerContext) {
        var handedOn = false
        while !closing, inFlight?.ended != true, let part = held.popFirst() {
            if inFlight != nil {
                finishReading(part, context: context)
            } else {
                handedOn = handle(part, context: context) || handedOn
            }
        }
        if handedOn { context.fireChannelReadComplete() }
        if readHeld, held.count < Self.maxHeldParts {
            readHeld = false
            context.read()
        }
        passHeldErrorWhenIdle(context: context)
    }

    /// A malformed request closes the connection with a 400 (Hummingbird's
    /// answer), but every request before it is answered first, in order.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let current = inFlight, !current.ended {
            inFlight = nil  // the bad request is this one: it gets the 400
            held.removeAll()
        }
        if inFlight != nil || !held.isEmpty {
            if heldError == nil { heldError = error }
            return
        }
        context.fireErrorCaught(error)
    }

    private func passHeldErrorWhenIdle(context: ChannelHandlerContext) {
        guard let error = heldError, inFlight == nil, held.isEmpty, !closing else { return }
        heldError = nil
        context.fireErrorCaught(error)
    }

    func read(context: ChannelHandlerContext) {
        if held.count >= Self.maxHeldParts {
            readHeld = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), routerOwes > 0 { routerOwes -= 1 }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, inFlight != nil {
            quiesceHeld = true  // passed on once the read in flight is answered
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inFlight = nil
        held.removeAll()
        heldError = nil
        context.fireChannelInactive()
    }

    /// `Date` as HTTP wants it (RFC 9110 IMF-fixdate), made once a second.
    private func httpDate() -> String {
        var now = time(nil)
        if now != date.second {
            var parts = tm()
            gmtime_r(&now, &parts)
            var buffer = [CChar](repeating: 0, count: 40)
            let n = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            date = (now, String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return date.value
    }
}
