import NIOCore
import Wire

/// What the decoder cuts the byte stream into (PROTOCOL.md sections 3, 4, 6).
enum FrameUnit {
    case preface
    case handshake(type: UInt8, body: [UInt8])
    case transport(ByteBuffer)
}

enum PeerError: Error {
    case badPreface
    case frameTooShort
}

/// Cuts the inbound stream into the preface, handshake frames and transport frames. The session
/// handler switches `mode` to `.transport` when the handshake is done; NIO calls `decode` again
/// only after the previous unit was handled, so the switch lands between frames.
final class FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = FrameUnit

    enum Mode { case preface, handshake, transport }
    var mode = Mode.preface

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch mode {
        case .preface:
            guard let bytes = buffer.readBytes(length: WireLimits.preface.count) else { return .needMoreData }
            guard bytes == WireLimits.preface else { throw PeerError.badPreface }
            mode = .handshake
            context.fireChannelRead(wrapInboundOut(.preface))
        case .handshake:
            guard let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self),
                  buffer.readableBytes >= 3 + Int(length) else { return .needMoreData }
            let type = buffer.readInteger(as: UInt8.self)!
            buffer.moveReaderIndex(forwardBy: 2)
            let body = buffer.readBytes(length: Int(length))!
            context.fireChannelRead(wrapInboundOut(.handshake(type: type, body: body)))
        case .transport:
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
                  buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
            guard Int(length) >= WireLimits.tagLength else { throw PeerError.frameTooShort }
            buffer.moveReaderIndex(forwardBy: 2)
            context.fireChannelRead(wrapInboundOut(.transport(buffer.readSlice(length: Int(length))!)))
        }
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        .needMoreData
    }
}
