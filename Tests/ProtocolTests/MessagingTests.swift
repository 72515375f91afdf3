import Foundation
import Noise
import SwitchboardClient
import Testing
import TestSupport
import Wire

extension TestClient {
    var accountID: UInt64 { welcome!.accountID }
    var deviceID: UInt64 { welcome!.deviceID }

    /// Sends a message and waits for its SendResult.
    func sendMessage(to account: UInt64, copies: [MessageCopy], id: MessageID = randomID(), groupID: UInt64 = 0,
                     timeout: Double = 10) -> SendResult? {
        let before = recorder.all.filter { if case .stanza(.sendResult(let r)) = $0 { return r.messageID == id } else { return false } }.count
        let target = recorder.sendResultCountSnapshot + 1
        send(.send(SendMessage(messageID: id, toAccount: account, copies: copies, groupID: groupID)))
        _ = recorder.waitUntil(timeout: timeout) { $0.sendResultCount >= target }
        let all = recorder.all.compactMap { event -> SendResult? in
            if case .stanza(.sendResult(let result)) = event, result.messageID == id { return result }
            return nil
        }
        return all.count > before ? all[before] : nil
    }

    /// Sends many messages in windows of `window` (the node allows 256 waiting sends) and
    /// waits for all their results.
    func sendAll(_ messages: [SendMessage], window: Int = 200, timeout: Double = 60) {
        var sent = 0
        let base = recorder.waitUntil(timeout: 0) { _ in true } ? recorder.sendResultCountSnapshot : 0
        while sent < messages.count {
            let chunk = messages[sent..<min(messages.count, sent + window)]
            for message in chunk { send(.send(message)) }
            sent += chunk.count
            let target = base + sent
            _ = recorder.waitUntil(timeout: timeout) { $0.sendResultCount >= target }
        }
    }

    /// Delivery receipts (kind 2) received so far, once there are at least `count`.
    func deliveryReceipts(count: Int, timeout: Double = 10) -> [Delivery] {
        _ = recorder.waitUntil(timeout: timeout) { recorder in
            recorder.allUnlocked.filter { if case .stanza(.deliver(let d)) = $0 { return d.kind == .delivered } else { return false } }.count >= count
        }
        return deliveries.filter { $0.kind == .delivered }
    }

    /// The SendResult for message `id`, if it arrives within `timeout`.
    func sendResult(for id: MessageID, timeout: Double) -> SendResult? {
        let event = recorder.waitFor(timeout: timeout) { event in
            if case .stanza(.sendResult(let r)) = event { return r.messageID == id }
            return false
        }
        if case .stanza(.sendResult(let r))? = event { return r }
        return nil
    }

    /// Deliveries received so far, in arrival order.
    var deliveries: [Delivery] {
        recorder.all.compactMap { if case .stanza(.deliver(let d)) = $0 { return d } else { return nil } }
    }

    func waitForDeliveries(_ count: Int, timeout: Double = 20) -> [Delivery] {
        _ = recorder.waitUntil(timeout: timeout) { $0.deliveryCount >= count }
        return deliveries
    }

    /// Sends a request stanza and waits for the answer carrying `requestID`.
    func request(_ stanza: Stanza, id: UInt64, timeout: Double = 10) -> Stanza? {
        send(stanza)
        let event = recorder.waitFor(timeout: timeout) { event in
            switch event {
            case .stanza(.result(let r)): return r.requestID == id
            case .stanza(.deviceList(let r, _, _)): return r == id
            case .stanza(.keyBundles(let r, _, _)): return r == id
            case .stanza(.groupInfo(let r, _, _, _)): return r == id
            default: return false
            }
        }
        if case .stanza(let answer)? = event { return answer }
        return nil
    }
}

func randomID() -> MessageID { .random() }

/// A registered account whose only device is offline: what a test needs to send to it and to
/// bring it back later.
struct OfflineAccount {
    let credentials: ClientCredentials
    let accountID: UInt64
    let deviceID: UInt64
}

extension ClientHarness {
    /// Registers `name` and disconnects its device.
    func registerOffline(port: Int, name: String) throws -> OfflineAccount {
        let client = try connect(port: port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: name))
        let account = OfflineAccount(credentials: client.credentials, accountID: client.accountID, deviceID: client.deviceID)
        client.close()
        _ = client.waitClosed()
        return account
    }
}


@Suite(.serialized) struct MessagingTests {
    @Test func twoAccountsExchangeMessagesInOrderWithDurableAcks() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        var ids: [MessageID] = []
        for index in 0..<50 {
            let id = randomID()
            ids.append(id)
            alice.send(.send(SendMessage(messageID: id, toAccount: bob.accountID,
                                         copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: Array("m\(index)".utf8))])))
        }
        let received = bob.waitForDeliveries(50)
        #expect(received.count == 50)
        #expect(received.map(\.messageID) == ids, "order per sender device and recipient device is kept")
        #expect(received.allSatisfy { $0.fromAccount == alice.accountID && $0.fromDevice == alice.deviceID })
        #expect(received.map(\.seq) == received.map(\.seq).sorted())
        #expect(String(decoding: received[7].ciphertext, as: UTF8.self) == "m7")
        #expect(alice.recorder.waitUntil(timeout: 10) { $0.sendResultCount >= 50 })
        let results = alice.recorder.all.compactMap { event -> SendResult? in
            if case .stanza(.sendResult(let r)) = event { return r } else { return nil }
        }
        #expect(results.count == 50 && results.allSatisfy { $0.code == .ok && !$0.duplicate })
        bob.send(.ack(seqs: received.map(\.seq)))
        // Reply the other way.
        let reply = alice.recorder.all.count
        _ = reply
        let answer = bob.sendMessage(to: alice.accountID, copies: [MessageCopy(deviceID: alice.deviceID, ciphertext: [1])])
        #expect(answer?.code == .ok)
        #expect(alice.waitForDeliveries(1).first?.fromAccount == bob.accountID)
    }

    @Test func duplicateIdsAreAcknowledgedAgainAndDeliveredOnce() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        let id = randomID()
        let copies = [MessageCopy(deviceID: bob.deviceID, ciphertext: [7])]
        #expect(alice.sendMessage(to: bob.accountID, copies: copies, id: id)?.duplicate == false)
        #expect(alice.sendMessage(to: bob.accountID, copies: copies, id: id)?.duplicate == true)
        #expect(alice.sendMessage(to: bob.accountID, copies: copies, id: id)?.code == .ok)
        _ = bob.waitForDeliveries(1)
        sleepMilliseconds(300)
        #expect(bob.deliveries.filter { $0.messageID == id }.count == 1)
    }

    @Test func deviceListMismatchLinkingAndRemoval() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        // Alice links a desktop.
        let desktopKey = KeyPair.generate()
        guard case .result(let added)? = alice.request(.addDevice(requestID: 1, staticKey: desktopKey.publicKey, name: "desktop"), id: 1) else {
            Issue.record("no result")
            return
        }
        #expect(added.code == .ok)
        let desktopID = try #require(added.value)
        guard case .deviceList(_, _, let devices)? = bob.request(.listDevices(requestID: 2, accountID: alice.accountID), id: 2) else {
            Issue.record("no device list")
            return
        }
        #expect(devices.map(\.deviceID) == [alice.deviceID, desktopID])
        // Bob forgets Alice's desktop: refused with the full list (Alice's two devices).
        let stale = bob.sendMessage(to: alice.accountID, copies: [MessageCopy(deviceID: alice.deviceID, ciphertext: [1])])
        #expect(stale?.code == .deviceListMismatch)
        #expect(stale?.devices == [DeviceAddress(accountID: alice.accountID, deviceID: alice.deviceID),
                                   DeviceAddress(accountID: alice.accountID, deviceID: desktopID)])
        // Alice's own message to Bob must include her desktop too.
        let own = alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [2])])
        #expect(own?.code == .deviceListMismatch)
        #expect(own?.devices.contains(DeviceAddress(accountID: alice.accountID, deviceID: desktopID)) == true)
        let fixed = bob.sendMessage(to: alice.accountID, copies: [MessageCopy(deviceID: alice.deviceID, ciphertext: [1]),
                                                                   MessageCopy(deviceID: desktopID, ciphertext: [3])])
        #expect(fixed?.code == .ok)
        // The desktop logs in and finds its copy waiting.
        let desktop = try harness.connect(port: node.port, credentials: ClientCredentials(staticKey: desktopKey), hello: Hello(mode: .login))
        #expect(desktop.welcome?.accountID == alice.accountID)
        #expect(desktop.waitForDeliveries(1).first?.ciphertext == [3])
        // Alice removes the desktop: its session ends at once and it cannot log in again.
        guard case .result(let removed)? = alice.request(.removeDevice(requestID: 3, deviceID: desktopID), id: 3) else {
            Issue.record("no result")
            return
        }
        #expect(removed.code == .ok)
        #expect(desktop.waitClosed() != nil)
        #expect(desktop.error?.code == .deviceRevoked)
        let again = try harness.connect(port: node.port, credentials: desktop.credentials, hello: Hello(mode: .resume))
        #expect(again.error?.code == .deviceRevoked)
        let login = try harness.connect(port: node.port, credentials: ClientCredentials(staticKey: desktopKey), hello: Hello(mode: .login))
        #expect(login.error?.code == .deviceRevoked)
        guard case .result(let selfRemoval)? = alice.request(.removeDevice(requestID: 4, deviceID: alice.deviceID), id: 4) else { return }
        #expect(selfRemoval.code == .notPermitted)
        guard case .result(let foreign)? = alice.request(.removeDevice(requestID: 5, deviceID: bob.deviceID), id: 5) else { return }
        #expect(foreign.code == .unknownDeviceID)
    }

    @Test func offlineRecipientGetsItsBacklogInOrderUnderFlowControl() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let offline = try harness.registerOffline(port: node.port, name: "bob")
        let (bobCredentials, bobAccount, bobDevice) = (offline.credentials, offline.accountID, offline.deviceID)
        let total = 3_000
        let ids = (0..<total).map { _ in randomID() }
        alice.sendAll(ids.map { SendMessage(messageID: $0, toAccount: bobAccount, copies: [MessageCopy(deviceID: bobDevice, ciphertext: $0.bytes)]) })
        let results = alice.recorder.all.compactMap { if case .stanza(.sendResult(let r)) = $0 { return r } else { return nil } }
        #expect(results.count == total && results.allSatisfy { $0.code == .ok })
        let bob = try harness.connect(port: node.port, credentials: bobCredentials, hello: Hello(mode: .resume))
        // Without acknowledgements the node stops at its window.
        _ = bob.waitForDeliveries(256)
        sleepMilliseconds(300)
        #expect(bob.deliveries.count == 256, "at most 256 deliveries in flight")
        var received = bob.deliveries
        while received.count < total {
            bob.send(.ack(seqs: received.suffix(256).map(\.seq)))
            let before = received.count
            received = bob.waitForDeliveries(min(total, before + 256))
            if received.count == before { break }
        }
        #expect(received.count == total)
        let firstDifference = zip(received.map(\.messageID), ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "the whole backlog, in order, once")
    }

    /// A device that never acknowledges one delivery but acknowledges all the others stops
    /// receiving 1,024 numbers after it (the node's window storage stays bounded), and gets the
    /// rest once it acknowledges that one.
    @Test func oneDeliveryLeftUnacknowledgedStopsTheConnectionAfterTheSpan() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let offline = try harness.registerOffline(port: node.port, name: "bob")
        let total = 1_300
        let ids = (0..<total).map { _ in randomID() }
        alice.sendAll(ids.map { SendMessage(messageID: $0, toAccount: offline.accountID, copies: [MessageCopy(deviceID: offline.deviceID, ciphertext: [1])]) })
        let bob = try harness.connect(port: node.port, credentials: offline.credentials, hello: Hello(mode: .resume))
        var received = bob.waitForDeliveries(256)
        var acknowledged = 1  // seq 1 is never acknowledged here
        while true {
            bob.send(.ack(seqs: received[acknowledged...].map(\.seq)))
            acknowledged = received.count
            let before = received.count
            received = bob.waitForDeliveries(min(total, before + 1), timeout: 1)
            if received.count == before { break }
        }
        #expect(received.count == 1_024, "seq 1 unacknowledged: nothing past seq 1,024")
        #expect(received.map(\.seq) == Array(1...1_024))
        bob.send(.ack(seqs: [1]))
        while received.count < total {
            let before = received.count
            received = bob.waitForDeliveries(min(total, before + 1))
            if received.count == before { break }
            bob.send(.ack(seqs: received[before...].map(\.seq)))
        }
        #expect(received.map(\.messageID) == ids, "the rest, in order, once the first is acknowledged")
    }

    @Test func keyDirectoryHandsOutEachOneTimePrekeyOnce() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        let prekeys = (1...12).map { OneTimePrekey(keyID: UInt64($0), publicKey: [UInt8](repeating: UInt8($0), count: 32)) }
        guard case .result(let published)? = alice.request(
            .publishKeys(requestID: 1, identityKey: [UInt8](repeating: 0xAA, count: 32),
                         signedPrekey: SignedPrekey(keyID: 1, publicKey: [UInt8](repeating: 0xBB, count: 32), signature: [UInt8](repeating: 0xCC, count: 64)),
                         oneTimePrekeys: prekeys), id: 1) else {
            Issue.record("no result")
            return
        }
        #expect(published.code == .ok && published.value == 12)
        var handedOut: [UInt64] = []
        for request in 0..<4 {
            guard case .keyBundles(_, _, let bundles)? = bob.request(.getKeys(requestID: UInt64(10 + request), accountID: alice.accountID, deviceID: nil),
                                                                    id: UInt64(10 + request)) else {
                Issue.record("no bundles")
                return
            }
            #expect(bundles.count == 1)
            #expect(bundles[0].identityKey == [UInt8](repeating: 0xAA, count: 32))
            #expect(bundles[0].signedPrekey?.signature.count == 64)
            if let key = bundles[0].oneTimePrekey?.keyID { handedOut.append(key) }
        }
        #expect(handedOut == [1, 2, 3, 4], "each one-time pre-key once, in order")
        // Stock is now 8 (< 10): Alice, online, is told.
        let low = alice.recorder.waitFor(timeout: 5) { event in
            if case .stanza(.prekeysLow) = event { return true }
            return false
        }
        guard case .stanza(.prekeysLow(let remaining))? = low else {
            Issue.record("no prekeys-low notice")
            return
        }
        #expect(remaining < 10)
    }

    @Test func aDeviceConnectingAgainReplacesItsOldSession() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let first = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "carol"))
        let second = try harness.connect(port: node.port, credentials: first.credentials, hello: Hello(mode: .resume))
        #expect(second.welcome != nil)
        let goodbye = first.recorder.waitFor(timeout: 5) { event in
            if case .stanza(.goodbye(let g)) = event { return g.code == .sessionReplaced }
            return false
        }
        #expect(goodbye != nil)
        #expect(first.waitClosed() != nil)
        #expect(second.ping(4))
    }

    @Test func deliveryAndReadReceiptsTravelBackToEverySenderDevice() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        let tabletKey = KeyPair.generate()
        guard case .result(let added)? = alice.request(.addDevice(requestID: 1, staticKey: tabletKey.publicKey, name: "tablet"), id: 1),
            let tabletID = added.value
        else {
            Issue.record("no tablet")
            return
        }
        let tablet = try harness.connect(port: node.port, credentials: ClientCredentials(staticKey: tabletKey), hello: Hello(mode: .login))
        let id = randomID()
        let result = alice.sendMessage(to: bob.accountID, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [1]),
                                                                  MessageCopy(deviceID: tabletID, ciphertext: [2])], id: id)
        #expect(result?.code == .ok)
        // The tablet gets its sync copy; acknowledging it makes no receipt (same account).
        let sync = tablet.waitForDeliveries(1)
        #expect(sync.first?.kind == .message && sync.first?.ciphertext == [2])
        tablet.send(.ack(seqs: sync.map(\.seq)))
        // Bob acknowledges: a delivery receipt reaches both of Alice's devices.
        let received = bob.waitForDeliveries(1)
        bob.send(.ack(seqs: received.map(\.seq)))
        for device in [alice, tablet] {
            let receipts = device.waitForDeliveries(device === tablet ? 2 : 1).filter { $0.kind == .delivered }
            #expect(receipts.count == 1)
            #expect(receipts.first?.messageID == id)
            #expect(receipts.first?.fromAccount == bob.accountID && receipts.first?.fromDevice == bob.deviceID)
            #expect(receipts.first?.ciphertext.isEmpty == true)
        }
        // Bob reads it.
        guard case .result(let readResult)? = bob.request(.receipt(requestID: 9, toAccount: alice.accountID, messageIDs: [id]), id: 9) else {
            Issue.record("no result")
            return
        }
        #expect(readResult.code == .ok)
        let reads = alice.waitForDeliveries(2).filter { $0.kind == .read }
        #expect(reads.count == 1 && reads.first?.messageID == id)
    }

    /// A recipient that neither reads its socket nor acknowledges holds up nobody: senders are
    /// answered as fast as the store commits, the node keeps at most the delivery window in
    /// flight for it, and other pairs keep talking.
    @Test func aSlowRecipientHoldsUpNobody() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let slow = try RawClient(port: node.port, hello: Hello(mode: .register, accountName: "slow"), receiveBufferBytes: 4096)
        guard case .welcome(let slowWelcome)? = try slow.handshakeAndAnswer() else {
            Issue.record("no welcome")
            return
        }
        let carol = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "carol"))
        let big = [UInt8](repeating: 0x42, count: 4_000)
        let messages = (0..<1_000).map { _ in
            SendMessage(messageID: randomID(), toAccount: slowWelcome.accountID, copies: [MessageCopy(deviceID: slowWelcome.deviceID, ciphertext: big)])
        }
        let started = Date()
        alice.sendAll(messages)
        let results = alice.recorder.all.compactMap { if case .stanza(.sendResult(let r)) = $0 { return r } else { return nil } }
        #expect(results.count == 1_000 && results.allSatisfy { $0.code == .ok })
        #expect(Date().timeIntervalSince(started) < 30)
        // Others are unaffected.
        #expect(alice.sendMessage(to: carol.accountID, copies: [MessageCopy(deviceID: carol.deviceID, ciphertext: [1])])?.code == .ok)
        #expect(carol.waitForDeliveries(1).count == 1)
        #expect(carol.ping(3))
        // The slow device, reading at last, gets exactly one window before it acknowledges.
        var count = 0
        slow.socket.setReceiveTimeout(milliseconds: 1_000)
        while let stanza = try? slow.nextStanza() {
            if case .deliver = stanza { count += 1 }
            if count == 256 { break }
        }
        #expect(count == 256)
    }

    @Test func aFullRecipientQueueRefusesTheMessageAndStoresNothing() throws {
        let node = try NodeProcess.serve(["--queue-messages", "5"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let offline = try harness.registerOffline(port: node.port, name: "bob")
        let (bobCredentials, bobAccount, bobDevice) = (offline.credentials, offline.accountID, offline.deviceID)
        for index in 0..<5 {
            #expect(alice.sendMessage(to: bobAccount, copies: [MessageCopy(deviceID: bobDevice, ciphertext: [UInt8(index)])])?.code == .ok)
        }
        let refused = alice.sendMessage(to: bobAccount, copies: [MessageCopy(deviceID: bobDevice, ciphertext: [9])])
        #expect(refused?.code == .recipientQueueFull)
        #expect(refused?.message.isEmpty == false)
        let bob = try harness.connect(port: node.port, credentials: bobCredentials, hello: Hello(mode: .resume))
        let received = bob.waitForDeliveries(5)
        sleepMilliseconds(200)
        #expect(bob.deliveries.map(\.ciphertext) == [[0], [1], [2], [3], [4]], "the refused message was not stored")
        // Acknowledged messages free the queue.
        bob.send(.ack(seqs: received.map(\.seq)))
        sleepMilliseconds(200)
        #expect(alice.sendMessage(to: bobAccount, copies: [MessageCopy(deviceID: bobDevice, ciphertext: [10])])?.code == .ok)
    }

    @Test func idsBeyondSignedRangeAreMalformedNotFatalToTheNode() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let probe = try RawClient(port: node.port, hello: Hello(mode: .register, accountName: "probe"))
        guard case .welcome? = try probe.handshakeAndAnswer() else { Issue.record("no welcome"); return }
        try probe.sendStanzas([.listDevices(requestID: 1, accountID: 1 << 63)])
        guard case .error(let error) = try probe.nextStanza() else { Issue.record("no error"); return }
        #expect(error.code == .malformedStanza)
        #expect(probe.socket.waitForClose())
        #expect(alice.ping(1), "the node lives on")
    }

    /// A device removed while its IK session was not yet confirmed (so not yet routed) is cut
    /// off the moment that session sends its first frame.
    @Test func aDeviceRemovedMidLoginIsCutOffWhenItConfirms() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let desktopKey = KeyPair.generate()
        guard case .result(let added)? = alice.request(.addDevice(requestID: 1, staticKey: desktopKey.publicKey, name: "desk"), id: 1),
            let desktopID = added.value
        else { Issue.record("no device"); return }
        var credentials = ClientCredentials(staticKey: desktopKey)
        credentials.serverKey = alice.credentials.serverKey
        credentials.serverRootKey = alice.credentials.serverRootKey
        let desktop = try RawClient(port: node.port, credentials: credentials, hello: Hello(mode: .login))
        guard case .welcome? = try desktop.handshakeAndAnswer() else { Issue.record("no welcome"); return }
        #expect(desktop.established?.pattern == .ik)
        guard case .result(let removed)? = alice.request(.removeDevice(requestID: 2, deviceID: desktopID), id: 2) else { return }
        #expect(removed.code == .ok)
        sleepMilliseconds(200)
        try desktop.sendStanzas([.ping(1)])
        var sawRevoked = false
        while let stanza = try? desktop.nextStanza() {
            if case .error(let error) = stanza, error.code == .deviceRevoked { sawRevoked = true }
        }
        #expect(sawRevoked)
        #expect(desktop.socket.waitForClose())
    }
}
