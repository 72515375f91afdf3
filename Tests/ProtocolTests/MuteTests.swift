import Foundation
import Store
import SwitchboardClient
import Testing
import TestSupport
import Wire

@Suite(.serialized) struct MuteTests {
    @Test func automaticDurationGrowsWithTheGroupWithinBounds() {
        let hour: UInt64 = 3_600_000
        #expect(MuteStore.automaticDuration(members: nil, minutesPerMember: 15) == 8 * hour, "a chat: 8 hours")
        #expect(MuteStore.automaticDuration(members: 3, minutesPerMember: 15) == hour, "at least an hour")
        #expect(MuteStore.automaticDuration(members: 100, minutesPerMember: 15) == 25 * hour)
        #expect(MuteStore.automaticDuration(members: 1_024, minutesPerMember: 15) == 7 * 24 * hour, "at most 7 days")
        #expect(MuteStore.automaticDuration(members: .max, minutesPerMember: 15) == 7 * 24 * hour)
        #expect(MuteStore.automaticDuration(members: 100, minutesPerMember: 30) == 50 * hour, "the factor is a flag")
    }

    static func mute(_ client: TestClient, _ request: MuteRequest) -> RequestResult? {
        guard case .result(let result)? = client.request(.mute(request), id: request.requestID) else { return nil }
        return result
    }

    @Test func mutesSuppressOrSilencePushesFlagDeliveriesAndEndOnTheirOwn() throws {
        let receiver = try PushTests.Receiver(failFirst: 0)
        defer { receiver.stop() }
        let node = try NodeProcess.serve(["--push-url", "http://127.0.0.1:\(receiver.port)/push"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        guard case .result(let registered)? = bob.request(.registerPush(requestID: 1, token: "tok"), id: 1) else { return }
        #expect(registered.code == .ok)
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        // Bob mutes his chat with Alice (no pushes) for a minute.
        let chatMute = MuteTests.mute(bob, MuteRequest(requestID: 2, chatAccount: alice.accountID, untilMilliseconds: now + 60_000))
        #expect(chatMute?.code == .ok && chatMute?.value == now + 60_000)
        // Online: the delivery says it is muted.
        #expect(alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [1])])?.code == .ok)
        let online = bob.waitForDeliveries(1)
        #expect(online.first?.muted == true)
        bob.send(.ack(seqs: online.map(\.seq)))
        // Offline: no push at all.
        let credentials = bob.credentials
        bob.close()
        _ = bob.waitClosed()
        sleepMilliseconds(100)
        #expect(alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [2])])?.code == .ok)
        sleepMilliseconds(700)
        #expect(receiver.requests.isEmpty, "a muted chat sends no push")
        // Silent pushes instead, for a short while; then the mute ends by itself.
        let back = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
        // Long enough for the steps below on a loaded machine (CI once took more than 6 s over
        // them, with suites running in parallel); the test then waits for its end.
        let shortMute = MuteTests.mute(back, MuteRequest(requestID: 3, chatAccount: alice.accountID,
                                                          untilMilliseconds: UInt64(Date().timeIntervalSince1970 * 1000) + 15_000, silent: true))
        #expect(shortMute?.code == .ok)
        let muteEnd = shortMute?.value ?? 0
        let waiting = back.waitForDeliveries(1)
        back.send(.ack(seqs: waiting.map(\.seq)))
        let again = back.credentials
        back.close()
        _ = back.waitClosed()
        sleepMilliseconds(100)
        #expect(alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [3])])?.code == .ok)
        #expect(waitUntil(timeoutMilliseconds: 5_000) { receiver.requests.count >= 1 })
        #expect(UInt64(Date().timeIntervalSince1970 * 1000) < muteEnd, "the steps outlasted the mute")
        #expect(receiver.requests.first?.contains("\"silent\":true") == true, "\(receiver.requests)")
        let now2 = UInt64(Date().timeIntervalSince1970 * 1000)
        if muteEnd + 200 > now2 { sleepMilliseconds(Int(muteEnd + 200 - now2)) }  // the mute is over
        let resumed = try harness.connect(port: node.port, credentials: again, hello: Hello(mode: .resume))
        let pending = resumed.waitForDeliveries(1)
        resumed.send(.ack(seqs: pending.map(\.seq)))
        resumed.close()
        _ = resumed.waitClosed()
        sleepMilliseconds(100)
        #expect(alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [4])])?.code == .ok)
        #expect(waitUntil(timeoutMilliseconds: 5_000) { receiver.requests.count >= 2 })
        #expect(receiver.requests.last?.contains("\"silent\":false") == true, "after its end the mute has no effect")
    }

    @Test func groupMutesAreForMembersAndAutomaticMutesScaleWithTheGroup() throws {
        let node = try NodeProcess.serve(["--mute-minutes-per-member", "30"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        let outsider = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "eve"))
        guard case .result(let created)? = alice.request(.createGroup(requestID: 1, name: "g", members: [bob.accountID]), id: 1),
            let group = created.value
        else { return }
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let automatic = MuteTests.mute(bob, MuteRequest(requestID: 2, groupID: group, automatic: true))
        #expect(automatic?.code == .ok)
        // Two members: the proportional 60 minutes.
        let duration = (automatic?.value ?? 0) - before
        #expect(duration >= 3_600_000 && duration < 3_600_000 + 10_000)
        #expect(MuteTests.mute(outsider, MuteRequest(requestID: 3, groupID: group, automatic: true))?.code == .notPermitted)
        #expect(alice.sendMessage(to: 0, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [1])], groupID: group)?.code == .ok)
        #expect(bob.waitForDeliveries(2).first { $0.kind == .message }?.muted == true)
        // Unmuting (until 0) lifts it.
        #expect(MuteTests.mute(bob, MuteRequest(requestID: 4, groupID: group))?.value == 0)
        #expect(alice.sendMessage(to: 0, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [2])], groupID: group)?.code == .ok)
        #expect(bob.waitForDeliveries(3).last?.muted == false)
    }
}
