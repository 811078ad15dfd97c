import NIOCore

/// A RESP2 reply, as the event-loop reads (`LoopReads`) need it.
package enum LoopReply: Sendable, Equatable {
    case bulk([UInt8])
    /// A null bulk string (or null array).
    case null
    case status(String)
    case error(String)
    /// An integer or an array (read whole, contents not kept).
    case other
}

/// Decodes RESP2 replies (what hiredis speaks: no `HELLO 3`) from a Redis
/// connection, one `LoopReply` per reply.
///
/// Why not EddyRedis' hiredis reader: that reader owns its input buffer and
/// builds a malloc'd `redisReply` tree per reply, so the event loop would
/// copy every `ByteBuffer` into it and free a tree per read. Here a reply is
/// read in place from NIO's buffer, and the fast path only needs bulk bytes,
/// null, status and error (arrays and integers are skipped, not built).
package struct RESPReplyDecoder: ByteToMessageDecoder {
    package typealias InboundOut = LoopReply

    struct ProtocolError: Error, CustomStringConvertible {
        let description: String
    }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var view = buffer
        guard let reply = try Self.parse(&view) else { return .needMoreData }
        buffer.moveReaderIndex(to: view.readerIndex)
        context.fireChannelRead(wrapInboundOut(reply))
        return .continue
    }

    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        try decode(context: context, buffer: &buffer)
    }

    /// The next whole reply, consumed from `buffer`; nil (and `buffer` in
    /// some partly read state) when more bytes are needed.
    package static func parse(_ buffer: inout ByteBuffer) throws -> LoopReply? {
        guard let type = buffer.readInteger(as: UInt8.self), let line = readLine(&buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .status(line)
        case UInt8(ascii: "-"): return .error(line)
        case UInt8(ascii: ":"): return .other
        case UInt8(ascii: "$"):
            guard let length = Int(line), length >= -1 else { throw ProtocolError(description: "bad bulk length '\(line)'") }
            if length == -1 { return .null }
            guard buffer.readableBytes >= length + 2, let bytes = buffer.readBytes(length: length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 2)
            return .bulk(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int(line), count >= -1 else { throw ProtocolError(description: "bad array length '\(line)'") }
            if count == -1 { return .null }
            for _ in 0..<count {
                guard try parse(&buffer) != nil else { return nil }
            }
            return .other
        default:
            throw ProtocolError(description: "unexpected reply type byte \(type)")
        }
    }

    /// The text up to the next CRLF (consumed with it), or nil.
    private static func readLine(_ buffer: inout ByteBuffer) -> String? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")), cr + 1 < view.endIndex else { return nil }
        let line = buffer.readString(length: cr - view.startIndex)
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }
}
