import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// The limits of a request head, each answered with its own status (RFC 9110, RFC 6585):
///
/// - request line (method, target, version) over `maxRequestLineBytes`: 414 URI Too Long;
/// - one header line (`name: value`) over `maxHeaderLineBytes`, the head over `maxHeadBytes`,
///   or more than `maxHeaderFields` fields: 431 Request Header Fields Too Large.
///
/// NIO's decoder runs with looser, hard limits (``hardDecoderLimits``) so that heads within
/// them reach this handler whole and are measured here; a head past even those is refused by
/// the decoder itself (`headerOverflow`), answered 431 as well (which part overflowed the
/// decoder does not tell).
///
/// Every request before the refused one is answered first, in order (the fast path's reads and
/// the router's replies both pass through here); then the refusal is written with
/// `Connection: close`, the output is closed (a FIN, so the client reads the answer rather
/// than a reset) and the connection is closed fully a little later, input discarded meanwhile.
final class RequestHeadLimits: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Limits: Sendable {
        var maxRequestLineBytes: Int
        var maxHeaderLineBytes: Int
        var maxHeadBytes: Int
        var maxHeaderFields: Int
    }

    /// What NIO's HTTP decoder is given: past these it stops buffering a head (a client cannot
    /// make a connection hold more than 64 KiB of head).
    static let hardDecoderLimits = (fieldBytes: 64 * 1024, listBytes: 64 * 1024, fields: 1000)

    /// How long the connection stays half-open after a refusal, its input discarded.
    static let lingerAfterRefusal = TimeAmount.seconds(2)

    private let limits: Limits
    /// Requests passed on whose response has not ended.
    private var owed = 0
    /// Set once a head broke a limit: everything after it is dropped.
    private var refusal: (status: HTTPResponse.Status, message: String)?
    private var answered = false

    init(limits: Limits) { self.limits = limits }

    /// Why `request` breaks a limit, or nil. Measured as the bytes of its HTTP/1.1 text.
    static func check(_ request: HTTPRequest, limits: Limits) -> (status: HTTPResponse.Status, message: String)? {
        let target = (request.path ?? "/").utf8.count
            + (request.authority.map { ($0.utf8.count) + (request.scheme?.utf8.count ?? 4) + 3 } ?? 0)
        let requestLine = request.method.rawValue.utf8.count + 1 + target + 1 + 8
        if requestLine > limits.maxRequestLineBytes {
            return (.init(code: 414, reasonPhrase: "URI Too Long"),
                    "the request line is \(requestLine) bytes, over the limit of \(limits.maxRequestLineBytes)")
        }
        if request.headerFields.count > limits.maxHeaderFields {
            return (.init(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                    "\(request.headerFields.count) header fields, over the limit of \(limits.maxHeaderFields)")
        }
        var head = requestLine + 2
        for field in request.headerFields {
            let line = field.name.rawName.utf8.count + 2 + field.value.utf8.count
            if line > limits.maxHeaderLineBytes {
                return (.init(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                        "the header line \(field.name.rawName) is \(line) bytes, over the limit of \(limits.maxHeaderLineBytes)")
            }
            head += line + 2
        }
        if head > limits.maxHeadBytes {
            return (.init(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                    "the request head is \(head) bytes, over the limit of \(limits.maxHeadBytes)")
        }
        return nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refusal != nil { return }
        let part = unwrapInboundIn(data)
        if case .head(let request) = part {
            if let refused = Self.check(request, limits: limits) {
                refuse(refused, context: context)
                return
            }
            owed += 1
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if refusal != nil { return }  // the decoder's complaints about what follows a refused head
        if let parse = error as? HTTPParserError, parse == .headerOverflow {
            refuse((.init(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                    "the request head is over the decoder's limit of \(Self.hardDecoderLimits.listBytes) bytes or \(Self.hardDecoderLimits.fields) fields"),
                   context: context)
            return
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let isEnd: Bool
        if case .end = unwrapOutboundIn(data) { isEnd = true } else { isEnd = false }
        context.write(data, promise: promise)
        if isEnd, owed > 0 {
            owed -= 1
            answerWhenDue(context: context)
        }
    }

    private func refuse(_ refused: (status: HTTPResponse.Status, message: String), context: ChannelHandlerContext) {
        refusal = refused
        answerWhenDue(context: context)
    }

    private func answerWhenDue(context: ChannelHandlerContext) {
        guard let refusal, owed == 0, !answered, context.channel.isActive else { return }
        answered = true
        let body = Array("{\"error\":\(EddyHTTPServer.quote(refusal.message))}".utf8)
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.count)
        fields[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: refusal.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.whenComplete { _ in
            let context = loopBound.value
            let closeOutput = context.eventLoop.makePromise(of: Void.self)
            context.close(mode: .output, promise: closeOutput)
            closeOutput.futureResult.whenFailure { _ in loopBound.value.close(promise: nil) }
            context.eventLoop.scheduleTask(in: Self.lingerAfterRefusal) {
                loopBound.value.close(promise: nil)
            }
        }
    }
}
