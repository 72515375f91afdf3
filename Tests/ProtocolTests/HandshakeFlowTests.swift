import Foundation
import Handshake
import Noise
import SwitchboardClient
import Testing
import TestSupport
import Wire

@Suite(.serialized) struct HandshakeFlowTests {
    /// A returning client's second IK handshake takes `ss` from the loop's cache (one X25519
    /// operation fewer), and the node says so in /metrics; with --handshake-cache 0 it never does.
    @Test(arguments: [true, false])
    func returningClientsHitTheStaticSecretCache(cached: Bool) throws {
        let node = try NodeProcess.serve(["--threads", "1", "--http", "127.0.0.1:0"] + (cached ? [] : ["--handshake-cache", "0"]))
        defer { withExtendedLifetime(node) {} }
        let http = try #require(node.port(of: "http"))
        let harness = try ClientHarness()
        let first = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "carol"))
        var credentials = first.credentials
        first.close()
        _ = first.waitClosed()
        for _ in 0..<3 {
            let again = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
            #expect(again.pattern == .ik && again.welcome != nil, "error: \(String(describing: again.error))")
            credentials = again.credentials
            again.close()
            _ = again.waitClosed()
        }
        let (_, metrics) = try runTool("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(http)/metrics"])
        #expect(metrics.contains("switchboard_ik_static_secret_total{result=\"hit\"} \(cached ? 2 : 0)\n"), "\(metrics)")
        #expect(metrics.contains("switchboard_ik_static_secret_total{result=\"miss\"} \(cached ? 1 : 0)\n"), "\(metrics)")
    }

    /// The client library confirms an IK login with an empty transport frame (PROTOCOL.md 6.2):
    /// the node ends the handshake deadline on it and answers nothing.
    @Test func anEmptyFrameConfirmsAnIKLoginWithoutAnAnswer() throws {
        let node = try NodeProcess.serve(["--handshake-seconds", "1"])
        let harness = try ClientHarness()
        let first = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "erin"))
        let credentials = first.credentials
        first.close()
        _ = first.waitClosed()
        let resumed = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
        #expect(resumed.pattern == .ik && resumed.welcome != nil, "error: \(String(describing: resumed.error))")
        sleepMilliseconds(1800)  // past the handshake deadline: only a confirmed session is still open
        #expect(!resumed.isClosed, "the empty frame confirmed the session")
        #expect(resumed.ping(9))
        let stanzas = resumed.recorder.all.compactMap { event -> Stanza? in
            if case .stanza(let stanza) = event { return stanza }
            return nil
        }
        #expect(stanzas == [.pong(9)], "nothing answered the confirmation")
    }

    @Test func registerWithXXThenResumeWithIKInOneRoundTrip() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let first = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "alice", deviceName: "phone"))
        let welcome = try #require(first.welcome, "error: \(String(describing: first.error))")
        #expect(welcome.newAccount)
        #expect(welcome.accountName == "alice")
        #expect(first.pattern == .xx)
        #expect(first.roundTrips == 2, "XX: server hello, then the welcome")
        #expect(first.ping(7))
        var credentials = first.credentials
        #expect(credentials.serverKey != nil)
        first.close()
        _ = first.waitClosed()

        // Returning client: IK with the cached server key and the token.
        let second = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
        let resumed = try #require(second.welcome, "error: \(String(describing: second.error))")
        #expect(second.pattern == .ik)
        #expect(second.roundTrips == 1, "IK: the welcome arrives with the server's one handshake message")
        #expect(resumed.accountID == welcome.accountID)
        #expect(resumed.deviceID == welcome.deviceID)
        #expect(resumed.resumptionToken != welcome.resumptionToken, "tokens rotate on use")
        #expect(second.ping(8))

        // The used token cannot be presented again.
        credentials.resumptionToken = welcome.resumptionToken
        let replay = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
        #expect(replay.welcome == nil)
        #expect(replay.error?.code == .tokenReplayed)
        // Logging in with the key alone still works over IK.
        let login = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .login))
        #expect(login.welcome?.deviceID == welcome.deviceID)
        #expect(login.pattern == .ik)
    }

    /// With `--max-opening 1` a connection that never finishes its handshake keeps the next one
    /// in the backlog until its deadline; sessions that log in (XX, then IK confirmed by a frame)
    /// free their slot, so any number of them pass one after another.
    @Test func handshakesWaitForAnOpeningSlot() throws {
        let node = try NodeProcess.serve(["--threads", "1", "--max-opening", "1", "--handshake-seconds", "1"])
        let harness = try ClientHarness()
        let silent = try BlockingSocket(port: node.port)  // holds the one slot until its deadline
        let start = Date()
        let first = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "slots"))
        #expect(first.welcome != nil, "error: \(String(describing: first.error))")
        #expect(Date().timeIntervalSince(start) >= 0.9, "admitted only once the silent connection's deadline passed")
        #expect(silent.waitForClose())
        let credentials = first.credentials
        for round in 0..<3 {
            let xx = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                         hello: Hello(mode: .register, accountName: "slots\(round)"), timeout: 5)
            #expect(xx.welcome != nil && xx.pattern == .xx, "round \(round): \(String(describing: xx.error))")
            let ik = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .login), timeout: 5)
            #expect(ik.welcome != nil && ik.pattern == .ik, "round \(round): \(String(describing: ik.error))")
            #expect(ik.ping(UInt64(round)))  // confirms the IK login: its slot is free from here
        }
    }

    @Test func staleServerKeyFallsBackToXXfallback() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let first = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "bob"))
        #expect(first.welcome != nil)
        let credentials = first.credentials
        let oldKey = try #require(credentials.serverKey)
        first.close()

        // Rotate the node's key and have it reload.
        let keygen = try NodeProcess(["keygen", "--data", node.dataDirectory])
        #expect(keygen.waitForExit() == 0)
        let newKeyHex = keygen.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        node.signal(SIGHUP)
        #expect(waitUntil { node.standardError.contains("server key reloaded") })

        let again = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
        #expect(again.welcome?.deviceID == first.welcome?.deviceID, "error: \(String(describing: again.error))")
        #expect(again.pattern == .xxFallback)
        let learned = try #require(again.credentials.serverKey)
        #expect(learned != oldKey)
        #expect(encodeHex(learned) == newKeyHex)
        #expect(again.ping(1))

        let pubkey = try NodeProcess(["pubkey", "--data", node.dataDirectory])
        #expect(pubkey.waitForExit() == 0)
        #expect(pubkey.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == newKeyHex)
        // The next connection uses IK with the learned key.
        let third = try harness.connect(port: node.port, credentials: again.credentials, hello: Hello(mode: .resume))
        #expect(third.pattern == .ik)
        #expect(third.welcome != nil)
    }

    @Test func registrationAndLoginRefusals() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let unknown = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .login))
        #expect(unknown.error?.code == .unknownDevice)
        #expect(unknown.isClosed)

        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "alice"))
        #expect(alice.welcome != nil)
        let taken = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "alice"))
        #expect(taken.error?.code == .accountNameTaken)
        let invalid = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                          hello: Hello(mode: .register, accountName: "Not Valid!"))
        #expect(invalid.error?.code == .accountNameInvalid)
        let twice = try harness.connect(port: node.port, credentials: alice.credentials,
                                        hello: Hello(mode: .register, accountName: "alice2"))
        #expect(twice.error?.code == .deviceAlreadyRegistered)
        let noToken = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .resume))
        #expect(noToken.error?.code == .helloInvalid)
        // The healthy client is unaffected by all of this.
        #expect(alice.ping(3))
    }

    @Test func forgedAndMisboundTokensAreRefused() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "alice"))
        let mallory = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                          hello: Hello(mode: .register, accountName: "mallory"))
        var forged = alice.credentials
        forged.resumptionToken![40] ^= 0x01
        let forgedAttempt = try harness.connect(port: node.port, credentials: forged, hello: Hello(mode: .resume))
        #expect(forgedAttempt.error?.code == .tokenInvalid)
        // Alice's genuine token presented by Mallory's key.
        var stolen = mallory.credentials
        stolen.resumptionToken = alice.credentials.resumptionToken
        let theft = try harness.connect(port: node.port, credentials: stolen, hello: Hello(mode: .resume))
        #expect(theft.error?.code == .tokenWrongDevice)
        // A token from another node (another token key) is refused too.
        let otherNode = try NodeProcess.serve()
        var foreign = alice.credentials
        foreign.serverKey = nil
        foreign.serverRootKey = nil  // as if the other node's operator were trusted
        let elsewhere = try harness.connect(port: otherNode.port, credentials: foreign, hello: Hello(mode: .resume))
        #expect(elsewhere.error?.code == .tokenInvalid)
    }

    @Test func inviteOnlyRegistration() throws {
        let node = try NodeProcess.serve(["--registration", "invite"])
        let harness = try ClientHarness()
        let without = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                          hello: Hello(mode: .register, accountName: "carol"))
        #expect(without.error?.code == .registrationClosed)
        let wrong = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "carol", inviteCode: "nope"))
        #expect(wrong.error?.code == .inviteInvalid)
        let invite = try NodeProcess(["invite", "--data", node.dataDirectory, "--count", "2"])
        #expect(invite.waitForExit() == 0)
        let codes = invite.standardOutput.split(separator: "\n").map(String.init)
        #expect(codes.count == 2)
        let carol = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "carol", inviteCode: codes[0]))
        #expect(carol.welcome != nil, "error: \(String(describing: carol.error))")
        let reuse = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "dave", inviteCode: codes[0]))
        #expect(reuse.error?.code == .inviteInvalid)
        // A refused registration did not take the name.
        let dave = try harness.connect(port: node.port, credentials: ClientCredentials(),
                                       hello: Hello(mode: .register, accountName: "dave", inviteCode: codes[1]))
        #expect(dave.welcome != nil)
    }

    @Test func accountsSurviveARestart() throws {
        let data = NSTemporaryDirectory() + "switchboard-restart-\(UUID().uuidString)"
        var node: NodeProcess? = try NodeProcess.serve(data: data)
        let harness = try ClientHarness()
        let first = try harness.connect(port: node!.port, credentials: ClientCredentials(),
                                        hello: Hello(mode: .register, accountName: "erin"))
        let credentials = first.credentials
        node!.signal(SIGTERM)  // drain
        #expect(node!.waitForExit() == 0)
        node = try NodeProcess.serve(data: data)
        let back = try harness.connect(port: node!.port, credentials: credentials, hello: Hello(mode: .resume))
        #expect(back.pattern == .ik, "the server key persisted")
        #expect(back.welcome?.accountID == first.welcome?.accountID)
        let login = try harness.connect(port: node!.port, credentials: credentials, hello: Hello(mode: .login))
        #expect(login.welcome?.accountID == first.welcome?.accountID, "the device persisted")
    }

    /// A client that cached node A's key and root tries IK against node B (another operator, or
    /// an attacker answering in A's place): B offers XXfallback with its own key, and the client
    /// refuses before sending its hello, because A's root did not sign B's key.
    @Test func fallbackToAKeyTheTrustedRootDidNotSignIsRefused() throws {
        let nodeA = try NodeProcess.serve()
        let nodeB = try NodeProcess.serve()
        let harness = try ClientHarness()
        let onA = try harness.connect(port: nodeA.port, credentials: ClientCredentials(),
                                      hello: Hello(mode: .register, accountName: "grace"))
        let credentials = onA.credentials
        #expect(credentials.serverRootKey != nil)
        let rootA = try NodeProcess(["pubkey", "--root", "--data", nodeA.dataDirectory])
        #expect(rootA.waitForExit() == 0)
        #expect(rootA.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == encodeHex(credentials.serverRootKey!))

        let raw = try RawClient(port: nodeB.port, credentials: credentials,
                                hello: Hello(mode: .resume, resumptionToken: credentials.resumptionToken))
        let answer = try raw.handshakeAndAnswer()
        #expect(answer == nil)
        #expect(raw.handshakeError?.0 == .handshakeFailed)
        // Everything sent is the preface and the one IK frame: the hello was not repeated to B.
        #expect(raw.sent[5] == HandshakeFrameType.ik)
        #expect(raw.sent.count == 5 + 3 + (Int(raw.sent[6]) << 8 | Int(raw.sent[7])))
        #expect(harness.onLoop { true })
        // The same client still resumes on A.
        let back = try harness.connect(port: nodeA.port, credentials: credentials, hello: Hello(mode: .resume))
        #expect(back.pattern == .ik)
        #expect(back.welcome != nil)
    }
}
