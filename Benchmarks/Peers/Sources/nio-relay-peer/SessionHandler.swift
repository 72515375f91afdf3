import Glibc
import Handshake
import NIOCore
import Noise
import Wire

/// One client: the Noise Pipes handshake through the product's `ServerHandshake`, then encrypted
/// stanzas: Ping → Pong, Send → Deliver to each recipient device that is connected (in memory, no
/// store). Like the node's direct delivery (PROTOCOL.md section 20.8), the sender gets its
/// SendResult when the recipient acknowledges the copy, and a delivery receipt with it; a copy
/// for a device that is not connected is answered at once (this peer stores nothing). Replies
/// gathered during a read are sealed into frames and flushed once, at `channelReadComplete`;
/// deliveries from other connections are flushed once per event-loop tick.
final class SessionHandler: ChannelInboundHandler, @unchecked Sendable {
    // `@unchecked Sendable`: every access happens on the channel's event loop (deliveries from
    // other loops hop there with `execute`).
    typealias InboundIn = FrameUnit
    typealias OutboundOut = ByteBuffer

    private let directory: Directory
    private let decoder: FrameDecoder
    private var handshake: ServerHandshake
    private var transport: SecureTransport?
    private var outbound = OutboundFrames()
    private var context: ChannelHandlerContext?
    private var accountID: UInt64 = 0
    private var deviceID: UInt64 = 0
    private var nextSeq: UInt64 = 1
    /// Copies delivered and not acknowledged, by `seq`: whom to answer when they are.
    private var unacknowledged: [UInt64: (messageID: MessageID, sender: Directory.Route?)] = [:]
    private var flushScheduled = false

    init(directory: Directory, decoder: FrameDecoder) {
        self.directory = directory
        self.decoder = decoder
        handshake = ServerHandshake(configuration: directory.configuration)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelInactive(context: ChannelHandlerContext) {
        if deviceID != 0 { directory.detach(device: deviceID, session: self) }
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .preface:
            break
        case .handshake(let type, let body):
            receiveHandshake(type: type, body: body, context: context)
        case .transport(var frame):
            guard let transport else { return context.close(promise: nil) }
            let ok = frame.withUnsafeMutableReadableBytes { raw -> Bool in
                guard let plaintext = try? transport.open(raw) else { return false }
                return (try? StanzaCodec.forEach(UnsafeRawBufferPointer(plaintext)) { stanza in self.handle(stanza) }) != nil
            }
            if !ok { context.close(promise: nil) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushOutbound()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func receiveHandshake(type: UInt8, body: [UInt8], context: ChannelHandlerContext) {
        switch handshake.receive(type: type, body: body) {
        case .reply(let bytes):
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
        case .authenticate(let hello, let clientKey):
            decoder.mode = .transport
            finish(answer: welcome(hello, clientKey: clientKey), context: context)
        case .refuse(let error):
            decoder.mode = .transport
            finish(answer: .error(error), context: context)
            context.close(promise: nil)
        case .fail(_, _, let wire):
            if !wire.isEmpty { context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: wire)), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// Register makes a new account; resume checks the token. Nothing is stored.
    private func welcome(_ hello: Hello, clientKey: [UInt8]) -> Stanza {
        let now = UInt64(time(nil))
        switch hello.mode {
        case .register:
            accountID = directory.register()
            deviceID = accountID
        case .resume:
            guard let token = hello.resumptionToken, let claims = try? directory.tokens.open(token, deviceKey: clientKey, now: now) else {
                return .error(ErrorStanza(code: .tokenInvalid, message: "resumption token refused"))
            }
            accountID = claims.accountID
            deviceID = claims.deviceID
        case .login:
            return .error(ErrorStanza(code: .unknownDevice, message: "this peer keeps no accounts: register or resume"))
        }
        let expires = now + 86_400
        let token = directory.tokens.seal(ResumptionClaims(
            accountID: accountID, deviceID: deviceID, issuedAt: now, expiresAt: expires,
            tokenID: SecretBytes.random(count: 16).array, deviceKey: clientKey))
        return .welcome(Welcome(accountID: accountID, deviceID: deviceID, accountName: hello.accountName ?? "",
                                resumptionToken: token, tokenExpiresAt: expires, serverTimeMilliseconds: now * 1000,
                                newAccount: hello.mode == .register, idleTimeoutSeconds: 0))
    }

    private func finish(answer: Stanza, context: ChannelHandlerContext) {
        guard let (frame, established) = try? handshake.finish(with: answer) else { return context.close(promise: nil) }
        transport = established
        if let frame {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame)), promise: nil)
        } else {
            send(answer)
        }
        if case .welcome = answer {
            directory.attach(device: deviceID, Directory.Route(eventLoop: context.eventLoop, session: self))
        }
    }

    private func handle(_ stanza: Stanza) {
        switch stanza {
        case .ping(let value):
            send(.pong(value))
        case .send(let message):
            let now = UInt64(time(nil)) * 1000
            let me = context.map { Directory.Route(eventLoop: $0.eventLoop, session: self) }
            var delivered = false
            for copy in message.copies {
                guard let route = directory.route(to: copy.deviceID) else { continue }
                delivered = true
                let delivery = Delivery(seq: 0, messageID: message.messageID, fromAccount: accountID, fromDevice: deviceID,
                                        sentAtMilliseconds: now, ciphertext: copy.ciphertext)
                route.run { $0.deliver(delivery, sender: me) }
            }
            if !delivered { send(.sendResult(SendResult(messageID: message.messageID, code: .ok))) }
        case .ack(let seqs):
            for seq in seqs {
                guard let (messageID, sender) = unacknowledged.removeValue(forKey: seq), let sender else { continue }
                let receipt = Delivery(seq: 0, messageID: messageID, fromAccount: accountID, fromDevice: deviceID,
                                       sentAtMilliseconds: UInt64(time(nil)) * 1000, ciphertext: [], kind: .delivered)
                sender.run { $0.acknowledged(messageID, receipt: receipt) }
            }
        default:
            break  // the rest: nothing is stored, so nothing to do
        }
    }

    /// The recipient acknowledged one of this session's messages: answer it, and pass on the
    /// delivery receipt (which nobody waits for).
    func acknowledged(_ messageID: MessageID, receipt: Delivery) {
        send(.sendResult(SendResult(messageID: messageID, code: .ok)))
        deliver(receipt, sender: nil)
    }

    /// A message from another session of this loop (or hopped here); `sender` hears when it is
    /// acknowledged.
    func deliver(_ delivery: Delivery, sender: Directory.Route?) {
        var delivery = delivery
        delivery.seq = nextSeq
        nextSeq += 1
        if delivery.kind == .message { unacknowledged[delivery.seq] = (delivery.messageID, sender) }
        send(.deliver(delivery))
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.execute { self.flushOutbound() }
    }

    private func send(_ stanza: Stanza) {
        try? outbound.append(stanza)
    }

    private func flushOutbound() {
        flushScheduled = false
        guard let context, !outbound.isEmpty, let transport else { return }
        do {
            try outbound.seal(with: transport) { bytes in
                context.write(self.wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        context.flush()
    }
}
