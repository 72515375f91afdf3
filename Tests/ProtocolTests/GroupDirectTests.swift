import Foundation
import SwitchboardClient
import Testing
import TestSupport
import Wire

/// Group messages delivered directly (PROTOCOL.md section 20.8): the sender is answered when every
/// copy is acknowledged or stored, and the two aggregated delivery receipts (section 22) count
/// every copy, whichever way it went.
@Suite(.serialized) struct GroupDirectTests {
    private struct Trio {
        let alice: TestClient, bob: TestClient, carol: TestClient
        let group: UInt64
        func copies(_ body: [UInt8]) -> [MessageCopy] {
            [MessageCopy(deviceID: bob.deviceID, ciphertext: body), MessageCopy(deviceID: carol.deviceID, ciphertext: body)]
        }

        /// Alice sends a group message after the warm-up; what Bob and Carol get.
        func send(_ id: MessageID, _ body: [UInt8]) -> (toBob: Delivery?, toCarol: Delivery?) {
            alice.send(.send(SendMessage(messageID: id, toAccount: 0, copies: copies(body), groupID: group)))
            return (bob.waitForDeliveries(3).last, carol.waitForDeliveries(3).last)
        }
    }

    /// Alice, Bob and Carol online in one group, and one stored group message acknowledged by
    /// everyone, so Alice's session knows the group's devices.
    private func trio(_ harness: ClientHarness, port: Int) throws -> Trio? {
        let alice = try harness.connect(port: port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        let carol = try harness.connect(port: port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "carol"))
        guard case .result(let created)? = alice.request(.createGroup(requestID: 1, name: "trio", members: [bob.accountID, carol.accountID]), id: 1),
            let group = created.value
        else { return nil }
        let trio = Trio(alice: alice, bob: bob, carol: carol, group: group)
        #expect(alice.sendMessage(to: 0, copies: trio.copies([0]), groupID: group)?.code == .ok)
        for member in [bob, carol] {
            let got = member.waitForDeliveries(2)  // "group changed", then the message
            member.send(.ack(seqs: got.map(\.seq)))
        }
        _ = alice.deliveryReceipts(count: 2)  // first and last of the stored message
        alice.send(.ack(seqs: alice.deliveries.map(\.seq)))
        return trio
    }

    /// A fresh node with the trio on it.
    private func start() throws -> (node: NodeProcess, harness: ClientHarness, trio: Trio) {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        return (node, harness, try #require(try trio(harness, port: node.port), "the group was created"))
    }

    @Test func answeredWhenEveryCopyIsAcknowledgedWithFirstAndLastReceipts() throws {
        let (node, harness, trio) = try start()
        // The harness runs the clients' event loops: it must outlive them, as the node must.
        defer { withExtendedLifetime((node, harness)) {} }
        let id = randomID()
        let (toBob, toCarol) = trio.send(id, [5, 5])
        #expect(toBob?.messageID == id && toBob?.groupID == trio.group && toCarol?.messageID == id && toCarol?.ciphertext == [5, 5])
        #expect(trio.alice.sendResult(for: id, timeout: 0.3) == nil, "not answered before the copies are acknowledged")
        trio.bob.send(.ack(seqs: [toBob!.seq]))
        let first = trio.alice.deliveryReceipts(count: 3).last
        #expect(first?.messageID == id && first?.deliveredCount == 1 && first?.deliveredTotal == 2 && first?.fromAccount == trio.bob.accountID)
        #expect(trio.alice.sendResult(for: id, timeout: 0.3) == nil, "one copy is still unacknowledged")
        trio.carol.send(.ack(seqs: [toCarol!.seq]))
        #expect(trio.alice.sendResult(for: id, timeout: 10)?.code == .ok)
        let last = trio.alice.deliveryReceipts(count: 4).last
        #expect(last?.messageID == id && last?.deliveredCount == 2 && last?.deliveredTotal == 2 && last?.fromAccount == trio.carol.accountID)
    }

    /// Carol does not acknowledge in time: her copy is stored, Alice is answered, and Carol's late
    /// acknowledgement of the stored copy completes the tally, so the last receipt still comes.
    @Test func aStoredCopyCompletesTheTallyThroughTheStore() throws {
        let (node, harness, trio) = try start()
        // The harness runs the clients' event loops: it must outlive them, as the node must.
        defer { withExtendedLifetime((node, harness)) {} }
        let id = randomID()
        let (toBob, toCarol) = trio.send(id, [6])
        trio.bob.send(.ack(seqs: [toBob!.seq]))
        #expect(trio.alice.deliveryReceipts(count: 3).last?.deliveredCount == 1)
        #expect(trio.alice.sendResult(for: id, timeout: 0.3) == nil)
        // After the 1-second deadline Carol's copy is durable: Alice is answered.
        #expect(trio.alice.sendResult(for: id, timeout: 10)?.code == .ok)
        #expect(trio.carol.deliveries.filter { $0.messageID == id }.count == 1, "stored, not sent again")
        sleepMilliseconds(200)
        trio.carol.send(.ack(seqs: [toCarol!.seq]))
        let last = trio.alice.deliveryReceipts(count: 4).last
        #expect(last?.messageID == id && last?.deliveredCount == 2 && last?.deliveredTotal == 2)
        sleepMilliseconds(300)
        #expect(trio.alice.deliveryReceipts(count: 4).count == 4, "exactly one first and one last receipt")
    }

    /// The sender disconnects before every copy is acknowledged: the count goes to the store, and
    /// the last receipt waits there for the sender's next connection.
    @Test func receiptsOutliveTheSendersConnection() throws {
        let (node, harness, trio) = try start()
        // The harness runs the clients' event loops: it must outlive them, as the node must.
        defer { withExtendedLifetime((node, harness)) {} }
        let id = randomID()
        let (toBob, toCarol) = trio.send(id, [7])
        trio.bob.send(.ack(seqs: [toBob!.seq]))
        #expect(trio.alice.deliveryReceipts(count: 3).last?.deliveredCount == 1)
        let credentials = trio.alice.credentials
        trio.alice.close()
        _ = trio.alice.waitClosed()
        sleepMilliseconds(100)
        trio.carol.send(.ack(seqs: [toCarol!.seq]))
        sleepMilliseconds(300)
        let again = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
        // The first receipt comes again too (Alice never acknowledged it); wait for the last.
        _ = again.recorder.waitUntil(timeout: 10) { recorder in
            recorder.allUnlocked.contains { if case .stanza(.deliver(let d)) = $0 { return d.deliveredCount == 2 } else { return false } }
        }
        let last = again.deliveryReceipts(count: 1).first { $0.deliveredCount == 2 }
        #expect(last?.messageID == id && last?.deliveredTotal == 2)
    }

    /// A group whose only member is the sender: sends with no copies are answered and do not
    /// hold up later sends.
    @Test func aGroupOfOneDoesNotWedgeTheSender() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        guard case .result(let created)? = alice.request(.createGroup(requestID: 1, name: "me", members: []), id: 1), let group = created.value
        else {
            Issue.record("no group")
            return
        }
        for _ in 0..<3 { #expect(alice.sendMessage(to: 0, copies: [], groupID: group)?.code == .ok) }
        #expect(alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [1])])?.code == .ok)
    }
}
