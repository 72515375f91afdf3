import Noise
import Testing
import Wire

@testable import Handshake

/// The client and server handshake machines against each other in memory.
@Suite struct HandshakeMachineTests {
    static let hello = Hello(mode: .login)
    static let welcome = Stanza.welcome(Welcome(
        accountID: 1, deviceID: 2, accountName: "a", resumptionToken: [9], tokenExpiresAt: 1,
        serverTimeMilliseconds: 2, newAccount: false, idleTimeoutSeconds: 3))

    static let root = SecretBytes.random(count: 32)
    static var rootKey: [UInt8] { ServerCertificate.rootPublicKey(seed: root) }

    /// A server whose ServerHello carries a certificate for its key, signed by `signer`.
    static func server(_ key: KeyPair, signer: SecretBytes = root) -> ServerHandshake {
        let certificate = ServerCertificate.issue(serverKey: key.publicKey, rootSeed: signer, issuedAt: 1)
        return ServerHandshake(configuration: .init(
            staticKey: key, serverHello: ServerHello(nodeID: "n", registration: 1, certificate: certificate.encoded)))
    }

    /// Splits wire bytes into handshake frames (after an optional preface).
    static func frames(_ bytes: [UInt8]) -> [(UInt8, [UInt8])] {
        var rest = bytes.starts(with: WireLimits.preface) ? Array(bytes.dropFirst(5)) : bytes
        var out: [(UInt8, [UInt8])] = []
        while rest.count >= 3 {
            let length = Int(rest[1]) << 8 | Int(rest[2])
            out.append((rest[0], Array(rest[3..<3 + length])))
            rest = Array(rest.dropFirst(3 + length))
        }
        return out
    }

    @Test func ikIsOneRoundTripAndCarriesTheWelcome() throws {
        let key = KeyPair.generate()
        var client = ClientHandshake(staticKey: .generate(), cachedServerKey: key.publicKey, hello: HandshakeMachineTests.hello)
        var server = HandshakeMachineTests.server(key)
        let first = HandshakeMachineTests.frames(try client.start())
        #expect(first.count == 1 && first[0].0 == HandshakeFrameType.ik)
        guard case .authenticate = server.receive(type: first[0].0, body: first[0].1) else {
            Issue.record("IK should reach authentication in one message")
            return
        }
        let (frame, serverTransport) = try server.finish(with: HandshakeMachineTests.welcome)
        let reply = HandshakeMachineTests.frames(try #require(frame))
        guard case .established(let established) = client.receive(type: reply[0].0, body: reply[0].1) else {
            Issue.record("client not established after one reply")
            return
        }
        #expect(established.pattern == .ik)
        #expect(established.answer == HandshakeMachineTests.welcome)
        try HandshakeMachineTests.exchange(established.transport, serverTransport)
    }

    @Test func xxTakesTheServerHelloThenTheClientHello() throws {
        let key = KeyPair.generate()
        var client = ClientHandshake(staticKey: .generate(), cachedServerKey: nil, hello: HandshakeMachineTests.hello)
        var server = HandshakeMachineTests.server(key)
        let first = HandshakeMachineTests.frames(try client.start())
        #expect(first[0].0 == HandshakeFrameType.xx && first[0].1.count == 32)
        guard case .reply(let second) = server.receive(type: first[0].0, body: first[0].1) else { Issue.record("no reply"); return }
        let secondFrame = HandshakeMachineTests.frames(second)[0]
        guard case .send(let third, let established?) = client.receive(type: secondFrame.0, body: secondFrame.1) else {
            Issue.record("client did not finish XX")
            return
        }
        #expect(established.serverKey == key.publicKey)
        #expect(established.serverHello?.nodeID == "n")
        let thirdFrame = HandshakeMachineTests.frames(third)[0]
        guard case .authenticate(let hello, _) = server.receive(type: thirdFrame.0, body: thirdFrame.1) else {
            Issue.record("server did not read the hello")
            return
        }
        #expect(hello == HandshakeMachineTests.hello)
        let (frame, serverTransport) = try server.finish(with: HandshakeMachineTests.welcome)
        #expect(frame == nil, "XX answers in the first transport frame")
        let clientTransport = established.transport
        try HandshakeMachineTests.exchange(clientTransport, serverTransport)
    }

    @Test func staleKeyFallsBackWithRolesReversed() throws {
        let key = KeyPair.generate()
        let stale = KeyPair.generate().publicKey
        var client = ClientHandshake(staticKey: .generate(), cachedServerKey: stale, trustedRoot: HandshakeMachineTests.rootKey,
                                     hello: HandshakeMachineTests.hello)
        var server = HandshakeMachineTests.server(key)
        let first = HandshakeMachineTests.frames(try client.start())
        guard case .reply(let offer) = server.receive(type: first[0].0, body: first[0].1) else { Issue.record("no fallback"); return }
        let offerFrame = HandshakeMachineTests.frames(offer)[0]
        #expect(offerFrame.0 == HandshakeFrameType.xxFallback)
        guard case .send(let answer, let established?) = client.receive(type: offerFrame.0, body: offerFrame.1) else {
            Issue.record("client did not accept the fallback")
            return
        }
        #expect(established.pattern == .xxFallback)
        #expect(established.serverKey == key.publicKey)
        #expect(established.serverRootKey == HandshakeMachineTests.rootKey)
        let answerFrame = HandshakeMachineTests.frames(answer)[0]
        guard case .authenticate = server.receive(type: answerFrame.0, body: answerFrame.1) else { Issue.record("no hello"); return }
        let (frame, serverTransport) = try server.finish(with: HandshakeMachineTests.welcome)
        #expect(frame == nil)
        let clientTransport = established.transport
        try HandshakeMachineTests.exchange(clientTransport, serverTransport)
    }

    /// The client checks the certificate before it sends its hello.
    @Test func keyChangesMustBeSignedByTheTrustedRoot() throws {
        let otherRoot = SecretBytes.random(count: 32)
        for (trusted, signer, cached, expectAccepted) in [
            (HandshakeMachineTests.rootKey, otherRoot, true, false),  // fallback, wrong root
            (nil, HandshakeMachineTests.root, true, false),  // fallback, no root known
            (HandshakeMachineTests.rootKey, otherRoot, false, false),  // first contact, pinned root differs
            (nil, otherRoot, false, true),  // first contact, nothing pinned: trust on first use
        ] as [([UInt8]?, SecretBytes, Bool, Bool)] {
            let key = KeyPair.generate()
            var client = ClientHandshake(staticKey: .generate(), cachedServerKey: cached ? KeyPair.generate().publicKey : nil,
                                         trustedRoot: trusted, hello: HandshakeMachineTests.hello)
            var server = HandshakeMachineTests.server(key, signer: signer)
            let first = HandshakeMachineTests.frames(try client.start())
            guard case .reply(let reply) = server.receive(type: first[0].0, body: first[0].1) else {
                Issue.record("no reply")
                continue
            }
            let frame = HandshakeMachineTests.frames(reply)[0]
            switch client.receive(type: frame.0, body: frame.1) {
            case .send: #expect(expectAccepted)
            case .failed(let code, _):
                #expect(!expectAccepted)
                #expect(code == .handshakeFailed)
            case .established: Issue.record("unexpected")
            }
        }
        // A certificate for a different server key is refused even from the right root.
        let key = KeyPair.generate()
        let wrong = ServerCertificate.issue(serverKey: KeyPair.generate().publicKey, rootSeed: HandshakeMachineTests.root, issuedAt: 1)
        var server = ServerHandshake(configuration: .init(
            staticKey: key, serverHello: ServerHello(nodeID: "n", registration: 1, certificate: wrong.encoded)))
        var client = ClientHandshake(staticKey: .generate(), cachedServerKey: nil, trustedRoot: HandshakeMachineTests.rootKey,
                                     hello: HandshakeMachineTests.hello)
        let first = HandshakeMachineTests.frames(try client.start())
        guard case .reply(let reply) = server.receive(type: first[0].0, body: first[0].1) else { return }
        let frame = HandshakeMachineTests.frames(reply)[0]
        guard case .failed = client.receive(type: frame.0, body: frame.1) else {
            Issue.record("a certificate for another key must be refused")
            return
        }
    }

    @Test func certificatesRoundTripAndRejectTampering() {
        let certificate = ServerCertificate.issue(serverKey: KeyPair.generate().publicKey, rootSeed: HandshakeMachineTests.root, issuedAt: 42)
        #expect(certificate.encoded.count == ServerCertificate.encodedLength)
        #expect(ServerCertificate(decoding: certificate.encoded) == certificate)
        for index in [0, 1, 40, 70, 100] {
            var tampered = certificate.encoded
            tampered[index] ^= 1
            #expect(ServerCertificate(decoding: tampered) == nil, "byte \(index)")
        }
        #expect(ServerCertificate(decoding: Array(certificate.encoded.dropLast())) == nil)
    }

    @Test func outOfOrderFramesFailTheHandshake() throws {
        var server = HandshakeMachineTests.server(.generate())
        guard case .fail(let code, _, let wire) = server.receive(type: HandshakeFrameType.xxFallback, body: [1, 2, 3]) else {
            Issue.record("expected a failure")
            return
        }
        #expect(code == .handshakeFailed)
        #expect(wire.first == HandshakeFrameType.error)
        #expect(HandshakeFrameType.parseError(Array(wire.dropFirst(3))).0 == .handshakeFailed)
    }

    /// Frames flow both ways between the two transports, several stanzas per frame.
    static func exchange(_ client: SecureTransport, _ server: SecureTransport) throws {

        var outbound = OutboundFrames()
        for value in 0..<10 { try outbound.append(.ping(UInt64(value))) }
        var wire: [UInt8] = []
        try outbound.seal(with: client) { wire += $0 }
        let length = Int(wire[0]) << 8 | Int(wire[1])
        #expect(wire.count == 2 + length, "ten stanzas, one frame")
        var ciphertext = Array(wire[2...])
        let stanzas = try ciphertext.withUnsafeMutableBytes { raw in
            try StanzaCodec.decodeAll(UnsafeRawBufferPointer(try server.open(raw)))
        }
        #expect(stanzas == (0..<10).map { .ping(UInt64($0)) })
        var back = OutboundFrames()
        try back.append(.pong(9))
        var reply: [UInt8] = []
        try back.seal(with: server) { reply += $0 }
        var replyCiphertext = Array(reply[2...])
        let answer = try replyCiphertext.withUnsafeMutableBytes { raw in
            try StanzaCodec.decodeAll(UnsafeRawBufferPointer(try client.open(raw)))
        }
        #expect(answer == [.pong(9)])
    }
}

@Suite struct OutboundFramesTests {
    @Test func stanzasBeyondOneFrameSpillIntoMoreFrames() throws {
        let key = [UInt8](repeating: 3, count: 32)
        let sender = SecureTransport(sender: CipherState.testing(key), receiver: CipherState())
        let receiver = SecureTransport(sender: CipherState(), receiver: CipherState.testing(key))
        var frames = OutboundFrames()
        let big = Stanza.error(ErrorStanza(code: .internalError, message: String(repeating: "m", count: 250)))
        let count = 300  // ~77 KB: more than one 64 KB frame
        for _ in 0..<count { try frames.append(big) }
        var wire: [UInt8] = []
        try frames.seal(with: sender) { wire += $0 }
        var offset = 0
        var received: [Stanza] = []
        var frameCount = 0
        while offset < wire.count {
            let length = Int(wire[offset]) << 8 | Int(wire[offset + 1])
            #expect(length <= WireLimits.maxNoiseMessage)
            var ciphertext = Array(wire[offset + 2..<offset + 2 + length])
            received += try ciphertext.withUnsafeMutableBytes { raw in
                try StanzaCodec.decodeAll(UnsafeRawBufferPointer(try receiver.open(raw)))
            }
            offset += 2 + length
            frameCount += 1
        }
        #expect(frameCount == 2)
        #expect(received.count == count)
        #expect(frames.isEmpty)
    }
}

@Suite struct ResumptionTokenTests {
    let sealer = TokenSealer(keyID: 1, key: SecretBytes(count: 32))
    let device = KeyPair.generate().publicKey

    func claims(expiresAt: UInt64) -> ResumptionClaims {
        ResumptionClaims(accountID: 5, deviceID: 6, issuedAt: 100, expiresAt: expiresAt, tokenID: [UInt8](repeating: 1, count: 16),
                         deviceKey: device)
    }

    @Test func sealsAndOpens() throws {
        let token = sealer.seal(claims(expiresAt: 1000))
        #expect(token.count == TokenSealer.sealedLength)
        #expect(try sealer.open(token, deviceKey: device, now: 999) == claims(expiresAt: 1000))
    }

    @Test func refusesExpiredForgedForeignAndMisbound() throws {
        let token = sealer.seal(claims(expiresAt: 1000))
        #expect(throws: ErrorCode.tokenExpired) { try sealer.open(token, deviceKey: device, now: 1000) }
        var forged = token
        forged[50] ^= 1
        #expect(throws: ErrorCode.tokenInvalid) { try sealer.open(forged, deviceKey: device, now: 1) }
        #expect(throws: ErrorCode.tokenInvalid) { try sealer.open(Array(token.dropLast()), deviceKey: device, now: 1) }
        let other = TokenSealer(keyID: 1, key: SecretBytes.random(count: 32))
        #expect(throws: ErrorCode.tokenInvalid) { try other.open(token, deviceKey: device, now: 1) }
        let rotated = TokenSealer(keyID: 2, key: SecretBytes(count: 32))
        #expect(throws: ErrorCode.tokenInvalid) { try rotated.open(token, deviceKey: device, now: 1) }
        #expect(throws: ErrorCode.tokenWrongDevice) { try sealer.open(token, deviceKey: KeyPair.generate().publicKey, now: 1) }
    }
}
