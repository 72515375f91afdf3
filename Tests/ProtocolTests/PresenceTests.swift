import Foundation
import SwitchboardClient
import Testing
import TestSupport
import Wire

@Suite(.serialized) struct PresenceTests {
    static func presences(_ client: TestClient, of account: UInt64) -> [(online: Bool, lastSeen: UInt64)] {
        client.recorder.all.compactMap { event in
            if case .stanza(.presence(let owner, let online, let lastSeen)) = event, owner == account { return (online, lastSeen) }
            return nil
        }
    }

    @Test func presenceIsSharedOnlyWithAllowedAccountsAndFollowsConnections() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        guard case .result(let refused)? = bob.request(.presenceSubscribe(requestID: 1, accountID: alice.accountID), id: 1) else {
            Issue.record("no result")
            return
        }
        #expect(refused.code == .notPermitted)
        guard case .result(let allowed)? = alice.request(.presenceAllow(requestID: 2, accountID: bob.accountID, allowed: true), id: 2) else {
            Issue.record("no result")
            return
        }
        #expect(allowed.code == .ok)
        guard case .result(let subscribed)? = bob.request(.presenceSubscribe(requestID: 3, accountID: alice.accountID), id: 3) else {
            Issue.record("no result")
            return
        }
        #expect(subscribed.code == .ok)
        #expect(bob.recorder.waitUntil(timeout: 5) { _ in PresenceTests.presencesUnlocked(bob, alice.accountID).count >= 1 })
        #expect(PresenceTests.presences(bob, of: alice.accountID).first?.online == true)

        let credentials = alice.credentials
        alice.close()
        #expect(bob.recorder.waitUntil(timeout: 5) { _ in PresenceTests.presencesUnlocked(bob, alice.accountID).count >= 2 })
        let offline = PresenceTests.presences(bob, of: alice.accountID)[1]
        #expect(offline.online == false)
        #expect(offline.lastSeen > 1_700_000_000_000, "last seen is a Unix time in milliseconds")

        let back = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
        #expect(back.welcome != nil)
        #expect(bob.recorder.waitUntil(timeout: 5) { _ in PresenceTests.presencesUnlocked(bob, alice.accountID).count >= 3 })
        #expect(PresenceTests.presences(bob, of: alice.accountID)[2].online == true)
    }

    static func presencesUnlocked(_ client: TestClient, _ account: UInt64) -> [Bool] {
        client.recorder.allUnlocked.compactMap { event in
            if case .stanza(.presence(let owner, let online, _)) = event, owner == account { return online }
            return nil
        }
    }

    @Test func typingReachesConnectedDevicesAndIsNeverStored() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        // Bob's arrival reaches his account's presence shard through his loop's mailbox and
        // alice's indicator through hers; the two may cross (PROTOCOL.md 21.4), so alice repeats
        // it, as a typing client does, within the 5-a-second limit.
        var typing: Recorder.Event?
        for _ in 0..<10 where typing == nil {
            alice.send(.typing(accountID: bob.accountID, deviceID: 0, active: true))
            typing = bob.recorder.waitFor(timeout: 0.5) { event in
                if case .stanza(.typing) = event { return true }
                return false
            }
        }
        guard case .stanza(.typing(let from, let device, let active))? = typing else {
            Issue.record("no typing indicator")
            return
        }
        #expect(from == alice.accountID && device == alice.deviceID && active)
        // Not stored: a device that was offline never sees it.
        let credentials = bob.credentials
        bob.close()
        _ = bob.waitClosed()
        sleepMilliseconds(100)
        alice.send(.typing(accountID: bob.accountID, deviceID: 0, active: true))
        #expect(alice.ping(5))
        let again = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
        #expect(again.ping(6))
        sleepMilliseconds(200)
        #expect(!again.recorder.all.contains { if case .stanza(.typing) = $0 { return true } else { return false } })
    }
}
