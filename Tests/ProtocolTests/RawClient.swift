import Glibc
import Handshake
import Noise
import SwitchboardClient
import TestSupport
import Wire

/// A client on a plain blocking socket driving the pure handshake and transport types by hand:
/// no Reactor, so tests can drip-feed bytes, replay frames and send garbage.
final class RawClient {
    let socket: BlockingSocket
    private var handshake: ClientHandshake
    private(set) var transport: SecureTransport?
    private var assembler = FrameAssembler(mode: .handshake)
    private var inbox: [Stanza] = []
    private(set) var established: ClientHandshake.Established?
    private(set) var handshakeError: (ErrorCode, String)?
    /// Every byte sent, in order.
    private(set) var sent: [UInt8] = []
    var dripFeed = false

    init(port: Int, credentials: ClientCredentials = ClientCredentials(), hello: Hello, receiveBufferBytes: Int? = nil) throws {
        socket = try BlockingSocket(port: port, receiveBufferBytes: receiveBufferBytes)
        _ = setsockopt(socket.fd, Int32(IPPROTO_TCP), TCP_NODELAY, [Int32(1)], 4)
        handshake = ClientHandshake(staticKey: credentials.staticKey, cachedServerKey: credentials.serverKey, hello: hello)
    }

    func send(_ bytes: [UInt8]) throws {
        sent += bytes
        if dripFeed {
            for byte in bytes {
                try socket.send([byte])
                usleep(200)
            }
        } else {
            try socket.send(bytes)
        }
    }

    /// Runs the handshake to its end; returns the server's answer (welcome or error), or nil
    /// if the server refused the handshake itself (`handshakeError`).
    func handshakeAndAnswer() throws -> Stanza? {
        try send(try handshake.start())
        while established == nil && handshakeError == nil {
            try pump()
        }
        if handshakeError != nil { return nil }
        if let answer = established?.answer { return answer }
        return try nextStanza()
    }

    /// Reads one socket read's worth and processes it.
    func pump() throws {
        var bytes = try socket.receiveSome()
        guard !bytes.isEmpty else { throw BlockingSocket.Failure(description: "server closed") }
        var failure: Error?
        bytes.withUnsafeMutableBytes { raw in
            do {
                try assembler.feed(raw) { (unit) throws(FrameError) -> FrameAssembler.Mode? in
                    switch unit {
                    case .preface: return .handshake
                    case .handshake(let type, let body):
                        switch self.handshake.receive(type: type, body: Array(body)) {
                        case .send(let reply, let established):
                            do { try self.send(reply) } catch { failure = error }
                            if let established {
                                self.established = established
                                self.transport = established.transport
                                return .transport
                            }
                            return .handshake
                        case .established(let established):
                            self.established = established
                            self.transport = established.transport
                            return .transport
                        case .failed(let code, let reason):
                            self.handshakeError = (code, reason)
                            return nil
                        }
                    case .transport(let ciphertext):
                        do {
                            let plaintext = try self.transport!.open(ciphertext)
                            self.inbox += try StanzaCodec.decodeAll(UnsafeRawBufferPointer(plaintext))
                        } catch {
                            failure = error
                            return nil
                        }
                        return .transport
                    }
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    func nextStanza() throws -> Stanza {
        while inbox.isEmpty { try pump() }
        return inbox.removeFirst()
    }

    func withTransport(_ body: (SecureTransport) throws -> Void) throws {
        try body(transport!)
    }

    /// Seals stanzas into one frame and sends it; returns the frame's bytes.
    @discardableResult
    func sendStanzas(_ stanzas: [Stanza]) throws -> [UInt8] {
        var frames = OutboundFrames()
        for stanza in stanzas { try frames.append(stanza) }
        var wire: [UInt8] = []
        try frames.seal(with: transport!) { wire += $0 }
        try send(wire)
        return wire
    }
}
