import Foundation
import SwitchboardClient
import Testing
import TestSupport
import Wire

/// Direct delivery (PROTOCOL.md section 20.8): a message to a connected, caught-up device goes
/// from memory and its sender is answered when the recipient acknowledges it; what is not
/// acknowledged in time, or lost with a connection, is stored — and whatever the sender was
/// answered for survives SIGKILL.
@Suite(.serialized) struct DirectDeliveryTests {
    /// Alice and Bob online, and one stored message between them so that Alice's session knows
    /// Bob's device list (the first message always takes the stored path).
    private func pair(_ harness: ClientHarness, port: Int) throws -> (alice: TestClient, bob: TestClient) {
        let alice = try harness.connect(port: port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        #expect(alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [0])])?.code == .ok)
        bob.send(.ack(seqs: bob.waitForDeliveries(1).map(\.seq)))
        alice.send(.ack(seqs: alice.deliveryReceipts(count: 1).map(\.seq)))
        return (alice, bob)
    }

    /// Receives until `client` has `count` deliveries (or 20 s pass), acknowledging each batch as
    /// it comes, from delivery `acknowledged` on.
    private func receiveAcknowledging(_ client: TestClient, until count: Int, after acknowledged: Int = 0) {
        var acknowledged = acknowledged
        let deadline = Date().addingTimeInterval(20)
        while acknowledged < count && Date() < deadline {
            let got = client.waitForDeliveries(acknowledged + 1, timeout: 0.2)
            if got.count > acknowledged {
                client.send(.ack(seqs: got[acknowledged...].map(\.seq)))
                acknowledged = got.count
            }
        }
    }

    @Test func theSenderIsAnsweredWhenTheRecipientAcknowledges() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let (alice, bob) = try pair(harness, port: node.port)
        let id = randomID()
        alice.send(.send(SendMessage(messageID: id, toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [9, 9])])))
        let got = bob.waitForDeliveries(2)
        #expect(got.count == 2 && got[1].messageID == id && got[1].ciphertext == [9, 9] && got[1].fromAccount == alice.accountID)
        // Wire numbers count this connection's deliveries.
        #expect(got.map(\.seq) == [1, 2])
        // Delivered, not acknowledged: not durable either, so no answer yet.
        #expect(alice.sendResult(for: id, timeout: 0.4) == nil)
        bob.send(.ack(seqs: [got[1].seq]))
        let answer = alice.sendResult(for: id, timeout: 10)
        #expect(answer?.code == .ok && answer?.duplicate == false)
        let receipt = alice.deliveryReceipts(count: 2).last
        #expect(receipt?.messageID == id && receipt?.fromAccount == bob.accountID)
        // Sent again on the same connection: answered as a duplicate, not delivered again.
        let again = alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [9, 9])], id: id)
        #expect(again?.code == .ok && again?.duplicate == true)
        sleepMilliseconds(300)
        #expect(bob.deliveries.filter { $0.messageID == id }.count == 1)
    }

    /// The acknowledgement of a direct message settles it and sends its delivery receipt in one
    /// step when the sending session is still the device's; when the device reconnected in
    /// between, the receipt goes to the new session and the old one, gone, is answered by nobody.
    @Test func aReceiptForASenderThatReconnectedReachesItsNewSession() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let (alice, bob) = try pair(harness, port: node.port)
        let id = randomID()
        alice.send(.send(SendMessage(messageID: id, toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [5])])))
        let got = bob.waitForDeliveries(2)
        #expect(got.last?.messageID == id)
        alice.close()
        _ = alice.waitClosed()
        let aliceAgain = try harness.connect(port: node.port, credentials: alice.credentials, hello: Hello(mode: .resume))
        bob.send(.ack(seqs: [got[1].seq]))
        let receipt = aliceAgain.deliveryReceipts(count: 1).last
        #expect(receipt?.messageID == id && receipt?.fromAccount == bob.accountID)
        #expect(aliceAgain.sendResult(for: id, timeout: 0.3) == nil, "the new session did not send it")
        // The next message (the new session's first: stored) goes on as usual, with its receipt.
        let next = randomID()
        #expect(aliceAgain.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [6])], id: next)?.code == .ok)
        let more = bob.waitForDeliveries(3)
        #expect(more.last?.messageID == next)
        bob.send(.ack(seqs: [more[2].seq]))
        #expect(aliceAgain.deliveryReceipts(count: 2).last?.messageID == next)
    }

    @Test func answeredCopiesSurviveSigkillAndUnansweredOnesAreSentAgain() throws {
        let data = NSTemporaryDirectory() + "switchboard-direct-\(UUID().uuidString)"
        var node = try NodeProcess.serve(data: data)
        let harness = try ClientHarness()
        let (alice, bob) = try pair(harness, port: node.port)
        let bobCredentials = bob.credentials
        // Never acknowledged: stored after the deadline, and only then answered.
        let stored = randomID()
        alice.send(.send(SendMessage(messageID: stored, toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [1])])))
        #expect(bob.waitForDeliveries(2).last?.messageID == stored)
        #expect(alice.sendResult(for: stored, timeout: 0.4) == nil)
        #expect(alice.sendResult(for: stored, timeout: 10)?.code == .ok)
        // Sent right before the kill: delivered, never answered.
        let unanswered = randomID()
        alice.send(.send(SendMessage(messageID: unanswered, toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [2])])))
        #expect(bob.waitForDeliveries(3).last?.messageID == unanswered)
        // The stored copy is not sent a second time on the connection that has it.
        #expect(bob.deliveries.filter { $0.messageID == stored }.count == 1)
        node.signal(SIGKILL)
        _ = node.waitForExit()
        #expect(alice.sendResult(for: unanswered, timeout: 0) == nil)
        _ = alice.waitClosed()
        _ = bob.waitClosed()

        node = try NodeProcess.serve(data: data)
        let aliceAgain = try harness.connect(port: node.port, credentials: alice.credentials, hello: Hello(mode: .resume))
        // The sender sends again what it has no answer for (the recipient is offline: stored).
        #expect(aliceAgain.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [2])], id: unanswered)?.code == .ok)
        let bobAgain = try harness.connect(port: node.port, credentials: bobCredentials, hello: Hello(mode: .resume))
        let redelivered = bobAgain.waitForDeliveries(2)
        #expect(redelivered.map(\.messageID) == [stored, unanswered], "the answered copy survived; the other came again")
        #expect(redelivered.map(\.seq) == [1, 2])
    }

    @Test func aClosedConnectionGivesItsCopiesToTheStoreInOrder() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let (alice, bob) = try pair(harness, port: node.port)
        let bobCredentials = bob.credentials
        let ids = (0..<5).map { _ in randomID() }
        for id in ids {
            alice.send(.send(SendMessage(messageID: id, toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: id.bytes)])))
        }
        #expect(bob.waitForDeliveries(6).dropFirst().map(\.messageID) == ids)
        bob.close()
        _ = bob.waitClosed()
        // Stored when the connection ended, before the acknowledgement deadline.
        let started = Date()
        for id in ids { #expect(alice.sendResult(for: id, timeout: 10)?.code == .ok) }
        #expect(Date().timeIntervalSince(started) < 0.9)
        let bobAgain = try harness.connect(port: node.port, credentials: bobCredentials, hello: Hello(mode: .resume))
        let again = bobAgain.waitForDeliveries(5)
        #expect(again.map(\.messageID) == ids)
        bobAgain.send(.ack(seqs: again.map(\.seq)))
        #expect(alice.deliveryReceipts(count: 6).dropFirst().map(\.messageID) == ids)
    }

    /// A backlog in the store goes first: copies that found the window full wait in the store, and
    /// copies sent while that backlog is delivered must not overtake it.
    @Test func copiesSentDuringABacklogFollowIt() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let (alice, bob) = try pair(harness, port: node.port)
        func batch(_ count: Int) -> [SendMessage] {
            (0..<count).map { _ in
                let id = randomID()
                return SendMessage(messageID: id, toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: id.bytes)])
            }
        }
        let first = batch(256), second = batch(100), third = batch(100)
        for message in first { alice.send(.send(message)) }
        let window = bob.waitForDeliveries(257)
        #expect(window.count == 257)
        // Unacknowledged for a second: stored, then answered.
        #expect(alice.recorder.waitUntil(timeout: 10) { $0.sendResultCount >= 257 })
        // The window is full: these wait (in memory for a second, then in the store).
        for message in second { alice.send(.send(message)) }
        #expect(alice.recorder.waitUntil(timeout: 10) { $0.sendResultCount >= 357 })
        #expect(bob.deliveries.count == 257)
        // Acknowledging starts the backlog; the third batch is sent while it is delivered.
        bob.send(.ack(seqs: window.dropFirst().map(\.seq)))
        for message in third { alice.send(.send(message)) }
        receiveAcknowledging(bob, until: 457, after: 257)
        let ids = bob.deliveries.dropFirst().map(\.messageID)
        let expected = (first + second + third).map(\.messageID)
        #expect(ids.count == expected.count)
        #expect(Array(zip(ids, expected)).firstIndex { $0.0 != $0.1 } == nil, "in order, once each")
        #expect(bob.deliveries.map(\.seq) == Array(1...UInt64(bob.deliveries.count)))
    }

    /// Alice and Carol fill Bob's window (256 deliveries he does not acknowledge: two senders, so
    /// that Alice stays under her own limit of 256 sends waiting for an answer); then Alice sends
    /// five more, which wait on the node. Returns Bob's deliveries and the five.
    private func fullWindow(_ harness: ClientHarness, port: Int) throws
        -> (alice: TestClient, bob: TestClient, window: [Delivery], more: [SendMessage], sent: [MessageID: (TestClient, SendMessage)]) {
        let (alice, bob) = try pair(harness, port: port)
        let carol = try harness.connect(port: port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "carol"))
        #expect(carol.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [1])])?.code == .ok)
        bob.send(.ack(seqs: [bob.waitForDeliveries(2)[1].seq]))
        func message() -> SendMessage {
            let id = randomID()
            return SendMessage(messageID: id, toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: id.bytes)])
        }
        var sent: [MessageID: (TestClient, SendMessage)] = [:]
        for (client, count) in [(alice, 200), (carol, 56)] {
            for _ in 0..<count {
                let sending = message()
                sent[sending.messageID] = (client, sending)
                client.send(.send(sending))
            }
        }
        let window = bob.waitForDeliveries(258)
        #expect(window.count == 258)
        let more = (0..<5).map { _ in message() }
        for message in more { alice.send(.send(message)) }
        sleepMilliseconds(50)
        #expect(bob.deliveries.count == 258, "the window is full: nothing more is sent")
        return (alice, bob, window, more, sent)
    }

    /// Copies that find the recipient's window full wait on the node and go directly once the
    /// device acknowledges: they are not stored, so their sender is answered only when the device
    /// acknowledges them too.
    @Test func copiesThatFindTheWindowFullWaitAndGoDirectly() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let (alice, bob, window, more, _) = try fullWindow(harness, port: node.port)
        bob.send(.ack(seqs: window.dropFirst(2).map(\.seq)))
        let got = bob.waitForDeliveries(263)
        #expect(got.dropFirst(258).map(\.messageID) == more.map(\.messageID), "after the window, in order")
        // Delivered and not acknowledged: a stored copy would have been answered by now.
        #expect(alice.sendResult(for: more[4].messageID, timeout: 0.3) == nil)
        bob.send(.ack(seqs: got.dropFirst(258).map(\.seq)))
        for message in more { #expect(alice.sendResult(for: message.messageID, timeout: 10)?.code == .ok) }
        #expect(bob.deliveries.count == 263)
    }

    /// The node killed while the recipient has copies acknowledged, delivered and unacknowledged,
    /// and waiting for its full window: every message its sender was answered for reaches it, the
    /// senders send again what they have no answer for, and the device gets every message, each
    /// once after the restart, in each sender's order.
    @Test func copiesWaitingWhenTheNodeIsKilledAreNotLost() throws {
        let data = NSTemporaryDirectory() + "switchboard-direct-\(UUID().uuidString)"
        var node = try NodeProcess.serve(data: data)
        let harness = try ClientHarness()
        let (alice, bob, window, more, firstSent) = try fullWindow(harness, port: node.port)
        var sent = firstSent
        var order: [ObjectIdentifier: [MessageID]] = [:]  // each sender's messages as it sent them
        for delivery in window.dropFirst(2) {
            if let (client, message) = sent[delivery.messageID] { order[ObjectIdentifier(client), default: []].append(message.messageID) }
        }
        for message in more { sent[message.messageID] = (alice, message) }
        let bobCredentials = bob.credentials
        // Ten acknowledged: room for the five waiting, which go out now.
        let acknowledged = Array(window.dropFirst(2).prefix(10))
        bob.send(.ack(seqs: acknowledged.map(\.seq)))
        #expect(bob.waitForDeliveries(263).count == 263)
        // Six more: five fill the window again, one waits behind it when the node is killed.
        let last = (0..<6).map { _ in
            SendMessage(messageID: randomID(), toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [7])])
        }
        for message in last {
            sent[message.messageID] = (alice, message)
            alice.send(.send(message))
        }
        #expect(bob.waitForDeliveries(268).count == 268)
        sleepMilliseconds(50)
        order[ObjectIdentifier(alice), default: []] += (more + last).map(\.messageID)
        node.signal(SIGKILL)
        _ = node.waitForExit()
        let answered = Set(sent.filter { $0.value.0.sendResult(for: $0.key, timeout: 0)?.code == .ok }.keys)
        let acknowledgedIDs = Set(acknowledged.map(\.messageID))
        #expect(acknowledgedIDs.isSubset(of: answered) || acknowledged.isEmpty)

        node = try NodeProcess.serve(data: data)
        for (key, ids) in order {
            guard let client = sent[ids[0]]?.0 else { continue }
            let again = try harness.connect(port: node.port, credentials: client.credentials, hello: Hello(mode: .resume))
            let resend = ids.filter { !answered.contains($0) }.compactMap { sent[$0]?.1 }
            for message in resend { again.send(.send(message)) }
            #expect(again.recorder.waitUntil(timeout: 20) { $0.sendResultCount >= resend.count }, "\(key) answered")
        }
        let bobAgain = try harness.connect(port: node.port, credentials: bobCredentials, hello: Hello(mode: .resume))
        receiveAcknowledging(bobAgain, until: sent.count - acknowledgedIDs.count)
        sleepMilliseconds(200)
        let again = bobAgain.deliveries.map(\.messageID)
        #expect(again.count == Set(again).count, "each once after the restart")
        #expect(Set(again).union(acknowledgedIDs) == Set(sent.keys), "every message reached the device")
        #expect(Set(again).isDisjoint(with: acknowledgedIDs), "none it acknowledged came again")
        for (key, ids) in order {
            #expect(again.filter { id in ids.contains(id) } == ids.filter { !acknowledgedIDs.contains($0) }, "in the order \(key) sent them")
        }
    }

    /// Copies waiting for the window when the connection ends go to the store after the ones
    /// delivered, and reach the device's next connection in that order.
    @Test func waitingCopiesAreStoredInOrderWhenTheConnectionEnds() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let (alice, bob, window, more, _) = try fullWindow(harness, port: node.port)
        let bobCredentials = bob.credentials
        bob.close()
        _ = bob.waitClosed()
        // Stored when the connection ended, before the deadline.
        let started = Date()
        for message in more { #expect(alice.sendResult(for: message.messageID, timeout: 10)?.code == .ok) }
        #expect(Date().timeIntervalSince(started) < 0.9)
        let bobAgain = try harness.connect(port: node.port, credentials: bobCredentials, hello: Hello(mode: .resume))
        receiveAcknowledging(bobAgain, until: 261)
        // The order of each sender's messages is kept (PROTOCOL.md section 20.3); Alice's five
        // waiting ones come after her delivered ones.
        let again = bobAgain.deliveries
        #expect(again.count == 261, "all, once each")
        func from(_ deliveries: some Sequence<Delivery>, alice isAlice: Bool) -> [MessageID] {
            deliveries.filter { ($0.fromAccount == alice.accountID) == isAlice }.map(\.messageID)
        }
        #expect(from(again, alice: true) == from(window.dropFirst(2), alice: true) + more.map(\.messageID))
        #expect(from(again, alice: false) == from(window.dropFirst(2), alice: false))
    }

    /// One sender's group and one-to-one messages to the same device interleaved: the group ones
    /// go through the store, the others directly, and the device still gets them in sending order.
    @Test func groupAndDirectMessagesKeepTheirOrder() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let (alice, bob) = try pair(harness, port: node.port)
        guard case .result(let created)? = alice.request(.createGroup(requestID: 1, name: "two", members: [bob.accountID]), id: 1),
            let group = created.value
        else {
            Issue.record("no group")
            return
        }
        var acknowledged = bob.waitForDeliveries(2).count  // the warm-up and "group changed"
        bob.send(.ack(seqs: bob.deliveries.map(\.seq)))
        let messages = (0..<300).map { index -> SendMessage in
            let id = randomID()
            return index % 3 == 0
                ? SendMessage(messageID: id, toAccount: 0, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: id.bytes)], groupID: group)
                : SendMessage(messageID: id, toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: id.bytes)])
        }
        for message in messages[0..<150] { alice.send(.send(message)) }
        var sent = 150
        let deadline = Date().addingTimeInterval(30)
        while acknowledged < 302 && Date() < deadline {
            let got = bob.waitForDeliveries(acknowledged + 1, timeout: 0.2)
            if got.count > acknowledged {
                bob.send(.ack(seqs: got[acknowledged...].map(\.seq)))
                acknowledged = got.count
            }
            if sent < 300 && alice.recorder.sendResultCountSnapshot >= sent - 50 {
                for message in messages[sent..<sent + 50] { alice.send(.send(message)) }
                sent += 50
            }
        }
        let ids = bob.deliveries.filter { $0.kind == .message }.dropFirst().map(\.messageID)
        #expect(ids.count == messages.count)
        #expect(Array(zip(ids, messages.map(\.messageID))).firstIndex { $0.0 != $0.1 } == nil, "in sending order")
        #expect(alice.recorder.waitUntil(timeout: 10) { $0.sendResultCount >= 301 })
    }

    /// The recipient reconnects again and again while messages stream to it, acknowledging only
    /// part of what each connection gets: copies in flight to a connection that ends are stored
    /// before later ones, so every connection sees the sender's messages in sending order, none
    /// twice, and in the end every message arrives and every send is answered.
    @Test func aRecipientThatKeepsReconnectingLosesNothingAndSeesOrder() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let (alice, firstBob) = try pair(harness, port: node.port)
        let total = 600
        let messages = (0..<total).map { _ -> SendMessage in
            let id = randomID()
            return SendMessage(messageID: id, toAccount: firstBob.accountID, copies: [MessageCopy(deviceID: firstBob.deviceID, ciphertext: id.bytes)])
        }
        let position = Dictionary(uniqueKeysWithValues: messages.enumerated().map { ($1.messageID, $0) })
        var sent = 0
        func sendMore() {
            while sent < total && sent - (alice.recorder.sendResultCountSnapshot - 1) < 150 {
                for message in messages[sent..<min(total, sent + 50)] { alice.send(.send(message)) }
                sent = min(total, sent + 50)
            }
        }
        var bob = firstBob
        var connections: [[Int]] = []
        var received = Set<Int>()
        let deadline = Date().addingTimeInterval(60)
        for round in 0..<40 where received.count < total && Date() < deadline {
            // Each connection but the last few lives ~120 ms and acknowledges half of what it got.
            let churning = round < 8
            var acknowledged = round == 0 ? 1 : 0
            let until = Date().addingTimeInterval(churning ? 0.12 : 2)
            while Date() < until && received.count < total {
                sendMore()
                let got = bob.waitForDeliveries(acknowledged + 1, timeout: 0.05).filter { $0.kind == .message }
                let fresh = got.count > acknowledged ? Array(got[acknowledged...]) : []
                let toAck = churning ? Array(fresh.prefix((fresh.count + 1) / 2)) : fresh
                if !toAck.isEmpty {
                    bob.send(.ack(seqs: toAck.map(\.seq)))
                    for delivery in toAck { if let index = position[delivery.messageID] { received.insert(index) } }
                }
                acknowledged += toAck.count
                if churning && toAck.count < fresh.count { break }  // leave with some unacknowledged
            }
            connections.append(bob.deliveries.filter { $0.kind == .message }.compactMap { position[$0.messageID] })
            let credentials = bob.credentials  // its resumption token is the last welcome's
            bob.close()
            _ = bob.waitClosed()
            bob = try harness.connect(port: node.port, credentials: credentials, hello: Hello(mode: .resume))
            #expect(bob.welcome != nil)
        }
        #expect(received.count == total, "every message acknowledged by the recipient in the end (\(received.count))")
        for (index, seen) in connections.enumerated() {
            #expect(seen == seen.sorted() && Set(seen).count == seen.count, "connection \(index): in sending order, none twice")
        }
        #expect(alice.recorder.waitUntil(timeout: 10) { $0.sendResultCount >= total + 1 })
        let results = alice.recorder.all.compactMap { if case .stanza(.sendResult(let r)) = $0 { return r } else { return nil } }
        #expect(results.count == total + 1 && results.allSatisfy { $0.code == .ok })
    }

    /// Many messages while the recipient acknowledges in bursts: some go directly, some through
    /// the store (window full, backlog, deadline); every one arrives once and in order.
    @Test func mixedPathsKeepOrderAndDeliverOnce() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let (alice, bob) = try pair(harness, port: node.port)
        let total = 900
        let messages = (0..<total).map { _ -> SendMessage in
            let id = randomID()
            return SendMessage(messageID: id, toAccount: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: id.bytes)])
        }
        var sent = 0
        var acknowledged = 1
        let deadline = Date().addingTimeInterval(60)
        while acknowledged < total + 1 && Date() < deadline {
            if sent < total && sent - (alice.recorder.sendResultCountSnapshot - 1) < 100 {
                for message in messages[sent..<min(total, sent + 100)] { alice.send(.send(message)) }
                sent = min(total, sent + 100)
            }
            let got = bob.waitForDeliveries(acknowledged + 1, timeout: 0.2)
            if got.count > acknowledged {
                // Acknowledge in bursts, sometimes late, so the window fills and deadlines pass.
                if got.count % 3 == 0 { sleepMilliseconds(150) }
                bob.send(.ack(seqs: got[acknowledged...].map(\.seq)))
                acknowledged = got.count
            }
        }
        #expect(alice.recorder.waitUntil(timeout: 20) { $0.sendResultCount >= total + 1 })
        let ids = bob.deliveries.dropFirst().map(\.messageID)
        #expect(ids.count == total)
        #expect(Array(zip(ids, messages.map(\.messageID))).firstIndex { $0.0 != $0.1 } == nil, "all, once each, in order")
        let results = alice.recorder.all.compactMap { if case .stanza(.sendResult(let r)) = $0 { return r } else { return nil } }
        #expect(results.count == total + 1 && results.allSatisfy { $0.code == .ok })
    }
}
