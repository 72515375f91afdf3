import Foundation
import Handshake
import Noise
import SwitchboardClient
import Testing
import TestSupport
import Wire

/// Every kind of bad input gets its error code (where the channel allows) and a close, and
/// leaves the node and its other connections serving.
@Suite(.serialized) struct BadInputTests {
    /// Reads a plaintext handshake error frame, then expects the close.
    static func expectHandshakeError(_ socket: BlockingSocket, _ code: ErrorCode) throws {
        let header = try socket.receive(exactly: 3)
        #expect(header[0] == HandshakeFrameType.error)
        let body = try socket.receive(exactly: Int(header[1]) << 8 | Int(header[2]))
        let (received, reason) = HandshakeFrameType.parseError(body)
        #expect(received == code, "reason: \(reason)")
        #expect(!reason.isEmpty)
        #expect(socket.waitForClose())
    }

    @Test func prefaceAndHandshakeFramingErrors() throws {
        let node = try NodeProcess.serve(["--handshake-seconds", "1"])
        let harness = try ClientHarness()
        let healthy = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                          hello: Hello(mode: .register, accountName: "healthy"))
        #expect(healthy.welcome != nil)

        let http = try BlockingSocket(port: node.port)
        try http.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try BadInputTests.expectHandshakeError(http, .badPreface)

        let future = try BlockingSocket(port: node.port)
        try future.send([0x53, 0x57, 0x42, 0x44, 0x02])
        try BadInputTests.expectHandshakeError(future, .unsupportedVersion)

        let unknownType = try BlockingSocket(port: node.port)
        try unknownType.send(WireLimits.preface + [0x09, 0x00, 0x01, 0x00])
        try BadInputTests.expectHandshakeError(unknownType, .handshakeFailed)

        let xxWithPayload = try BlockingSocket(port: node.port)
        try xxWithPayload.send(WireLimits.preface + HandshakeFrameType.frame(0x01, [UInt8](repeating: 7, count: 40)))
        try BadInputTests.expectHandshakeError(xxWithPayload, .handshakeFailed)

        let shortIK = try BlockingSocket(port: node.port)
        try shortIK.send(WireLimits.preface + HandshakeFrameType.frame(0x02, [1, 2, 3]))
        try BadInputTests.expectHandshakeError(shortIK, .handshakeFailed)

        // Garbage where an IK message belongs looks like a stale key: the node offers
        // XXfallback; garbage in reply to that ends it.
        let garbage = try BlockingSocket(port: node.port)
        try garbage.send(WireLimits.preface + HandshakeFrameType.frame(0x02, (0..<120).map { UInt8($0) }))
        let offer = try garbage.receive(exactly: 3)
        #expect(offer[0] == HandshakeFrameType.xxFallback)
        _ = try garbage.receive(exactly: Int(offer[1]) << 8 | Int(offer[2]))
        try garbage.send(HandshakeFrameType.frame(0x03, [UInt8](repeating: 1, count: 80)))
        // That was the client's last handshake message: a real client would now read transport
        // frames only, so the node closes without a plaintext error.
        #expect(try garbage.receiveSome().isEmpty)

        #expect(healthy.ping(1), "other connections are unaffected")
    }

    @Test func handshakesThatDoNotFinishAreCutAtTheDeadline() throws {
        let node = try NodeProcess.serve(["--handshake-seconds", "1"])
        let silent = try BlockingSocket(port: node.port)
        let prefaceOnly = try BlockingSocket(port: node.port)
        try prefaceOnly.send(WireLimits.preface)
        let truncated = try BlockingSocket(port: node.port)
        try truncated.send(WireLimits.preface + [0x01, 0x01, 0x00] + [UInt8](repeating: 0, count: 10))  // promises 256 bytes
        let started = Date()
        #expect(silent.waitForClose())
        #expect(prefaceOnly.waitForClose())
        #expect(truncated.waitForClose())
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed >= 0.5 && elapsed < 4, "closed after \(elapsed) s")
        let harness = try ClientHarness()
        let after = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "after"))
        #expect(after.welcome != nil)
    }

    @Test func forgedReplayedAndGarbageFramesEndTheSession() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let healthy = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                          hello: Hello(mode: .register, accountName: "healthy"))

        // Forged: one ciphertext bit flipped.
        let forger = try RawClient(port: node.port, hello: Hello(mode: .register, accountName: "forger"))
        guard case .welcome? = try forger.handshakeAndAnswer() else { Issue.record("no welcome"); return }
        var frame = try BadInputTests.sealed(forger, [.ping(1)])
        frame[frame.count - 3] ^= 0x10
        try forger.send(frame)
        #expect(try forger.nextStanza() == .error(ErrorStanza(code: .decryptFailed, message: "a frame failed authentication")))
        #expect(forger.socket.waitForClose())

        // Replayed: a valid frame sent twice.
        let replayer = try RawClient(port: node.port, hello: Hello(mode: .register, accountName: "replayer"))
        guard case .welcome? = try replayer.handshakeAndAnswer() else { Issue.record("no welcome"); return }
        let original = try replayer.sendStanzas([.ping(5)])
        #expect(try replayer.nextStanza() == .pong(5))
        try replayer.send(original)
        if case .error(let error) = try replayer.nextStanza() {
            #expect(error.code == .decryptFailed)
        } else {
            Issue.record("a replayed frame must be refused")
        }
        #expect(replayer.socket.waitForClose())

        // Garbage after the handshake: a well-framed blob that is not ciphertext, and a frame
        // shorter than its tag.
        for blob in [[0x00, 0x20] + [UInt8](repeating: 0xAB, count: 32), [0x00, 0x05, 1, 2, 3, 4, 5]] {
            let sprayer = try RawClient(port: node.port, hello: Hello(mode: .register, accountName: "sprayer\(blob.count)"))
            guard case .welcome? = try sprayer.handshakeAndAnswer() else { Issue.record("no welcome"); return }
            try sprayer.send(blob)
            if case .error(let error) = try sprayer.nextStanza() {
                #expect(error.code == .decryptFailed)
            } else {
                Issue.record("garbage must be refused")
            }
            #expect(sprayer.socket.waitForClose())
        }
        #expect(healthy.ping(2), "other connections are unaffected")
    }

    @Test func stanzaLevelErrors() throws {
        let node = try NodeProcess.serve()
        let client = try RawClient(port: node.port, hello: Hello(mode: .register, accountName: "stanzas"))
        guard case .welcome? = try client.handshakeAndAnswer() else { Issue.record("no welcome"); return }
        // An unknown stanza type is answered, and the connection stays open.
        try client.sendStanzas([.unknown(type: 9999)])
        guard case .error(let unsupported) = try client.nextStanza() else { Issue.record("no error"); return }
        #expect(unsupported.code == .unsupportedStanza)
        #expect(unsupported.reference == 9999)
        try client.sendStanzas([.hello(Hello(mode: .login))])
        guard case .error(let late) = try client.nextStanza() else { Issue.record("no error"); return }
        #expect(late.code == .notAllowedNow)
        try client.sendStanzas([.ping(3)])
        #expect(try client.nextStanza() == .pong(3))
        // A stanza whose length runs past its frame ends the session.
        var frames = OutboundFrames()
        let truncatedPing: [UInt8] = [0x05, 0x09, 0x02]  // type 5, length 9, but 1 byte of body
        try truncatedPing.withUnsafeBytes { try frames.append(encoded: $0) }
        var wire: [UInt8] = []
        try client.withTransport { transport in try frames.seal(with: transport) { wire += $0 } }
        try client.send(wire)
        guard case .error(let malformed) = try client.nextStanza() else { Issue.record("no error"); return }
        #expect(malformed.code == .malformedStanza)
        #expect(client.socket.waitForClose())
    }

    @Test func oversizedHelloFieldsAreRefused() throws {
        let node = try NodeProcess.serve()
        let longName = String(repeating: "d", count: 300)
        let client = try RawClient(port: node.port, hello: Hello(mode: .register, accountName: "longdevice", deviceName: longName))
        let answer = try client.handshakeAndAnswer()
        if let answer, case .error(let error) = answer {
            #expect(error.code == .helloInvalid)
        } else {
            #expect(client.handshakeError?.0 == .helloInvalid, "got \(String(describing: answer))")
        }
    }

    /// A valid stream drip-fed one byte at a time is read exactly like one sent whole.
    @Test func dripFedHandshakeAndFramesWork() throws {
        let node = try NodeProcess.serve()
        let whole = try RawClient(port: node.port, hello: Hello(mode: .register, accountName: "whole"))
        guard case .welcome? = try whole.handshakeAndAnswer() else { Issue.record("no welcome"); return }
        let credentials = ClientCredentials(staticKey: KeyPair.generate())
        let drip = try RawClient(port: node.port, credentials: credentials, hello: Hello(mode: .register, accountName: "drip"))
        drip.dripFeed = true
        guard case .welcome(let welcome)? = try drip.handshakeAndAnswer() else { Issue.record("no welcome"); return }
        try drip.sendStanzas([.ping(1), .ping(2), .ping(3)])
        #expect(try drip.nextStanza() == .pong(1))
        #expect(try drip.nextStanza() == .pong(2))
        #expect(try drip.nextStanza() == .pong(3))
        // And an IK resumption, drip-fed.
        var cached = credentials
        cached.serverKey = drip.established?.serverKey
        cached.resumptionToken = welcome.resumptionToken
        let again = try RawClient(port: node.port, credentials: cached, hello: Hello(mode: .resume, resumptionToken: welcome.resumptionToken))
        again.dripFeed = true
        guard case .welcome? = try again.handshakeAndAnswer() else { Issue.record("no welcome on IK"); return }
        #expect(again.established?.pattern == .ik)
    }

    /// A recorded IK first message replayed by someone without the device's keys gets an answer
    /// it cannot read, and the session is closed at the handshake deadline because it never
    /// sends a valid frame.
    @Test func replayedIKMessagesNeverBecomeLiveSessions() throws {
        let node = try NodeProcess.serve(["--handshake-seconds", "1"])
        let harness = try ClientHarness()
        let device = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                         hello: Hello(mode: .register, accountName: "victim"))
        let credentials = device.credentials
        let genuine = try RawClient(port: node.port, credentials: credentials, hello: Hello(mode: .login))
        guard case .welcome? = try genuine.handshakeAndAnswer() else { Issue.record("no welcome"); return }
        let recorded = genuine.sent
        try genuine.sendStanzas([.ping(1)])  // the genuine client confirms its session
        #expect(try genuine.nextStanza() == .pong(1))

        let replay = try BlockingSocket(port: node.port)
        try replay.send(recorded)
        let header = try replay.receive(exactly: 3)
        #expect(header[0] == HandshakeFrameType.ik, "the node answers; the answer is sealed to keys the replayer lacks")
        _ = try replay.receive(exactly: Int(header[1]) << 8 | Int(header[2]))
        let started = Date()
        #expect(replay.waitForClose())
        #expect(Date().timeIntervalSince(started) < 4)
        sleepMilliseconds(1500)
        try genuine.sendStanzas([.ping(2)])
        #expect(try genuine.nextStanza() == .pong(2), "the confirmed session outlives the deadline")
    }

    static func sealed(_ client: RawClient, _ stanzas: [Stanza]) throws -> [UInt8] {
        // Seal with the client's transport without sending (so the nonce advances as if sent).
        var frames = OutboundFrames()
        for stanza in stanzas { try frames.append(stanza) }
        var wire: [UInt8] = []
        try client.withTransport { transport in try frames.seal(with: transport) { wire += $0 } }
        return wire
    }
}
