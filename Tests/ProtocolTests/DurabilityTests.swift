import Foundation
import SwitchboardClient
import Testing
import TestSupport
import Wire

/// Nothing acknowledged is ever lost: the node is killed with SIGKILL while a sender streams
/// messages to an offline recipient, restarted on the same data directory, and every message the
/// sender saw acknowledged — and, after the sender retries the rest with the same ids, every
/// message — reaches the recipient exactly once.
@Suite(.serialized) struct DurabilityTests {
    @Test func sigkillUnderLoadLosesNothingAcknowledged() throws {
        let data = NSTemporaryDirectory() + "switchboard-kill-\(UUID().uuidString)"
        var node = try NodeProcess.serve(["--threads", "2"], data: data)
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let offline = try harness.registerOffline(port: node.port, name: "bob")
        let (bobCredentials, bobAccount, bobDevice) = (offline.credentials, offline.accountID, offline.deviceID)

        let total = 1_500
        let messages = (0..<total).map { index -> SendMessage in
            let id = randomID()
            return SendMessage(messageID: id, toAccount: bobAccount, copies: [MessageCopy(deviceID: bobDevice, ciphertext: id.bytes)])
        }
        func acknowledged(_ client: TestClient) -> Set<MessageID> {
            Set(client.recorder.all.compactMap { event -> MessageID? in
                if case .stanza(.sendResult(let result)) = event, result.code == .ok { return result.messageID }
                return nil
            })
        }
        // Stream in windows; kill the node once a few hundred are acknowledged, mid-window.
        var sent = 0
        while sent < total {
            for message in messages[sent..<min(total, sent + 150)] { alice.send(.send(message)) }
            sent = min(total, sent + 150)
            if acknowledged(alice).count >= 300 { break }
            let target = sent - 100
            _ = alice.recorder.waitUntil(timeout: 10) { $0.sendResultCount >= target }
        }
        node.signal(SIGKILL)
        _ = node.waitForExit()
        _ = alice.waitClosed()
        let ackedBeforeKill = acknowledged(alice)
        #expect(ackedBeforeKill.count >= 300)
        #expect(ackedBeforeKill.count < sent, "the kill came while sends were in flight")

        node = try NodeProcess.serve(["--threads", "2"], data: data)
        // The sender retries everything it has no acknowledgement for, with the same ids.
        let aliceAgain = try harness.connect(port: node.port, credentials: alice.credentials, hello: Hello(mode: .resume))
        #expect(aliceAgain.welcome != nil)
        let retry = messages.filter { !ackedBeforeKill.contains($0.messageID) }
        aliceAgain.sendAll(retry)
        let retried = aliceAgain.recorder.all.compactMap { event -> SendResult? in
            if case .stanza(.sendResult(let result)) = event { return result }
            return nil
        }
        #expect(retried.count == retry.count && retried.allSatisfy { $0.code == .ok })

        // The recipient drains everything.
        let bob = try harness.connect(port: node.port, credentials: bobCredentials, hello: Hello(mode: .resume))
        var received: [Delivery] = []
        while true {
            let before = received.count
            received = bob.waitForDeliveries(min(total, before + 256), timeout: 10)
            bob.send(.ack(seqs: received[before...].map(\.seq)))
            if received.count == before || received.count >= total { break }
        }
        sleepMilliseconds(300)
        received = bob.deliveries
        let ids = received.map(\.messageID)
        #expect(Set(ids).count == ids.count, "nothing delivered twice")
        #expect(ackedBeforeKill.isSubset(of: Set(ids)), "every message acknowledged before the kill arrived")
        #expect(Set(ids) == Set(messages.map(\.messageID)), "and, after the retries, every message")
        // Order per sender device is kept across the kill.
        let position = Dictionary(uniqueKeysWithValues: messages.enumerated().map { ($1.messageID, $0) })
        let acknowledgedOrder = ids.compactMap { ackedBeforeKill.contains($0) ? position[$0] : nil }
        #expect(acknowledgedOrder == acknowledgedOrder.sorted())
    }
}
