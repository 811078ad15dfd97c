import NIOCore
import NIOHTTPTypes

/// Closes a connection that does not deliver a complete request head within `timeout` of
/// opening or of its previous response ending: an idle keep-alive connection, and a slow
/// client trickling header bytes (slowloris), which an idle timer alone never notices. The close
/// is silent: a 408 written on an idle keep-alive connection would be read by a client as the
/// answer to the next request it sends there (seen with URLSession). While a request is being
/// answered no deadline runs,
/// so a slow read from Redis is never cut. Other connections are unaffected either way:
/// every connection is non-blocking on the event loops.
final class RequestHeadDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    /// Requests whose head arrived and whose response has not ended.
    private var open = 0

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            open += 1
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), open > 0 {
            open -= 1
            if open == 0 { arm(context: context) }
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    private func arm(context: ChannelHandlerContext) {
        deadline?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            handler.expire(context: context)
        }
    }

    private func expire(context: ChannelHandlerContext) {
        deadline = nil
        guard open == 0, context.channel.isActive else { return }
        context.close(promise: nil)
    }
}
