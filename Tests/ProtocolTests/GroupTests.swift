import Foundation
import Noise
import SwitchboardClient
import Testing
import TestSupport
import Wire

extension TestClient {
    func groupNotices(_ group: UInt64) -> [Delivery] {
        deliveries.filter { $0.kind == .groupChanged && $0.groupID == group }
    }
}

@Suite(.serialized) struct GroupTests {
    @Test func threeMembersAcrossLoopsWithAdminRulesAndStaleLists() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        let carol = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "carol"))
        let dave = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "dave"))
        guard case .result(let created)? = alice.request(.createGroup(requestID: 1, name: "trio", members: [bob.accountID, carol.accountID]), id: 1),
            let group = created.value
        else {
            Issue.record("no group")
            return
        }
        for member in [alice, bob, carol] {
            _ = member.waitForDeliveries(1)
            #expect(member.groupNotices(group).count == 1, "every member hears of the group")
        }
        guard case .groupInfo(_, _, let name, let members)? = bob.request(.getGroup(requestID: 2, groupID: group), id: 2) else {
            Issue.record("no info")
            return
        }
        #expect(name == "trio")
        #expect(members == [GroupMember(accountID: alice.accountID, admin: true), GroupMember(accountID: bob.accountID, admin: false),
                            GroupMember(accountID: carol.accountID, admin: false)])
        guard case .result(let outsider)? = dave.request(.getGroup(requestID: 3, groupID: group), id: 3) else { return }
        #expect(outsider.code == .notPermitted)

        // Sender-driven fan-out: one ciphertext per device of every other member.
        let stale = alice.sendMessage(to: 0, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [1])], groupID: group)
        #expect(stale?.code == .deviceListMismatch)
        #expect(Set(stale?.devices ?? []) == [DeviceAddress(accountID: bob.accountID, deviceID: bob.deviceID),
                                                 DeviceAddress(accountID: carol.accountID, deviceID: carol.deviceID)])
        let sent = alice.sendMessage(to: 0, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [1]),
                                                      MessageCopy(deviceID: carol.deviceID, ciphertext: [2])], groupID: group)
        #expect(sent?.code == .ok)
        for (member, text) in [(bob, [UInt8(1)]), (carol, [2])] {
            let got = member.waitForDeliveries(2).filter { $0.kind == .message }
            #expect(got.count == 1 && got[0].groupID == group && got[0].ciphertext == text && got[0].fromAccount == alice.accountID)
        }
        // Outsiders cannot send to the group; members who are not admins cannot change it.
        #expect(dave.sendMessage(to: 0, copies: [], groupID: group)?.code == .notPermitted)
        guard case .result(let refused)? = bob.request(.updateGroup(requestID: 4, groupID: group, operation: .add, accountID: dave.accountID, name: ""), id: 4)
        else { return }
        #expect(refused.code == .notPermitted)
        // The admin adds Dave and removes Carol; both hear of it, and Carol is out.
        guard case .result(let added)? = alice.request(.updateGroup(requestID: 5, groupID: group, operation: .add, accountID: dave.accountID, name: ""), id: 5),
            case .result(let removed)? = alice.request(.updateGroup(requestID: 6, groupID: group, operation: .remove, accountID: carol.accountID, name: ""), id: 6)
        else { return }
        #expect(added.code == .ok && removed.code == .ok)
        #expect(dave.waitForDeliveries(1).contains { $0.kind == .groupChanged && $0.groupID == group })
        _ = carol.waitForDeliveries(4)  // her message and three notices
        #expect(carol.groupNotices(group).count == 3, "created, Dave added, Carol removed")
        #expect(carol.sendMessage(to: 0, copies: [], groupID: group)?.code == .notPermitted)
        let after = alice.sendMessage(to: 0, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: [3]),
                                                       MessageCopy(deviceID: carol.deviceID, ciphertext: [3])], groupID: group)
        #expect(after?.code == .deviceListMismatch, "Carol's device no longer belongs")
        // The admin leaves: the longest-standing member becomes admin.
        guard case .result(let left)? = alice.request(.updateGroup(requestID: 7, groupID: group, operation: .leave, accountID: 0, name: ""), id: 7)
        else { return }
        #expect(left.code == .ok)
        guard case .groupInfo(_, _, _, let now)? = bob.request(.getGroup(requestID: 8, groupID: group), id: 8) else { return }
        #expect(now == [GroupMember(accountID: bob.accountID, admin: true), GroupMember(accountID: dave.accountID, admin: false)])
    }

    /// A member removed while messages stream to the group: every message is either accepted with
    /// the member's copy (before the removal) or refused with the corrected list (after it), and
    /// each member receives exactly the messages whose copies named it.
    @Test func membershipChangesRacingWithSends() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        let carol = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "carol"))
        guard case .result(let created)? = alice.request(.createGroup(requestID: 1, name: "race", members: [bob.accountID, carol.accountID]), id: 1),
            let group = created.value
        else { return }
        let ids = (0..<60).map { _ in randomID() }
        for (index, id) in ids.enumerated() {
            if index == 25 {
                alice.send(.updateGroup(requestID: 2, groupID: group, operation: .remove, accountID: bob.accountID, name: ""))
            }
            alice.send(.send(SendMessage(messageID: id, toAccount: 0, copies: [MessageCopy(deviceID: bob.deviceID, ciphertext: id.bytes),
                                                                               MessageCopy(deviceID: carol.deviceID, ciphertext: id.bytes)],
                                         groupID: group)))
        }
        #expect(alice.recorder.waitUntil(timeout: 20) { $0.sendResultCount >= 60 })
        let results = alice.recorder.all.compactMap { if case .stanza(.sendResult(let r)) = $0 { return r } else { return nil } }
        let accepted = results.filter { $0.code == .ok }.map(\.messageID)
        let refused = results.filter { $0.code == .deviceListMismatch }
        #expect(accepted.count + refused.count == 60, "every send is either accepted or refused with the corrected list")
        #expect(refused.allSatisfy { $0.devices == [DeviceAddress(accountID: carol.accountID, deviceID: carol.deviceID)] })
        #expect(accepted == Array(ids.prefix(accepted.count)), "the removal splits the stream in order")
        // Alice resends the refused ones with the corrected list.
        for result in refused {
            #expect(alice.sendMessage(to: 0, copies: [MessageCopy(deviceID: carol.deviceID, ciphertext: result.messageID.bytes)],
                                      id: result.messageID, groupID: group)?.code == .ok)
        }
        let carolMessages = carol.waitForDeliveries(60 + 2).filter { $0.kind == .message }
        #expect(Set(carolMessages.map(\.messageID)) == Set(ids) && carolMessages.count == 60, "Carol gets all, once")
        sleepMilliseconds(300)
        let bobMessages = bob.deliveries.filter { $0.kind == .message }.map(\.messageID)
        #expect(bobMessages == accepted, "Bob gets exactly the messages accepted with his copy")
    }

    /// Group delivery receipts are aggregated per message: the sender hears at the first delivery
    /// and when every other member's device has it — not once per device.
    @Test func groupDeliveryReceiptsAreAggregatedPerMessage() throws {
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        var members: [TestClient] = []
        for name in ["bob", "carol", "dave"] {
            members.append(try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: name)))
        }
        guard case .result(let created)? = alice.request(.createGroup(requestID: 1, name: "acks", members: members.map(\.accountID)), id: 1),
            let group = created.value
        else { return }
        let id = randomID()
        #expect(alice.sendMessage(to: 0, copies: members.map { MessageCopy(deviceID: $0.deviceID, ciphertext: [1]) }, id: id, groupID: group)?.code == .ok)
        for member in members {
            let got = member.waitForDeliveries(2)
            member.send(.ack(seqs: got.map(\.seq)))
            sleepMilliseconds(50)
        }
        _ = alice.waitForDeliveries(3)  // the group notice and two receipts
        sleepMilliseconds(300)
        let receipts = alice.deliveries.filter { $0.kind == .delivered && $0.messageID == id }
        #expect(receipts.count == 2)
        #expect(receipts.map(\.deliveredCount) == [1, 3])
        #expect(receipts.allSatisfy { $0.deliveredTotal == 3 && $0.groupID == group })
    }

    /// A copy that will never be acknowledged (its device removed) leaves the tally, so the
    /// sender still hears that every remaining copy was delivered.
    @Test func removingAnUndeliveredDeviceSettlesTheGroupReceipt() throws {
        let node = try NodeProcess.serve()
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let bob = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "bob"))
        let carol = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "carol"))
        let tabletKey = KeyPair.generate()
        guard case .result(let added)? = carol.request(.addDevice(requestID: 1, staticKey: tabletKey.publicKey, name: "tablet"), id: 1),
            let tablet = added.value,
            case .result(let created)? = alice.request(.createGroup(requestID: 2, name: "g", members: [bob.accountID, carol.accountID]), id: 2),
            let group = created.value
        else { return }
        let id = randomID()
        let copies = [MessageCopy(deviceID: bob.deviceID, ciphertext: [1]), MessageCopy(deviceID: carol.deviceID, ciphertext: [2]),
                      MessageCopy(deviceID: tablet, ciphertext: [3])]
        #expect(alice.sendMessage(to: 0, copies: copies, id: id, groupID: group)?.code == .ok)
        for member in [bob, carol] {
            let got = member.waitForDeliveries(2)
            member.send(.ack(seqs: got.map(\.seq)))
        }
        sleepMilliseconds(300)
        guard case .result(let removed)? = carol.request(.removeDevice(requestID: 3, deviceID: tablet), id: 3) else { return }
        #expect(removed.code == .ok)
        _ = alice.waitForDeliveries(3)
        sleepMilliseconds(300)
        let receipts = alice.deliveries.filter { $0.kind == .delivered && $0.messageID == id }
        #expect(receipts.map(\.deliveredCount) == [1, 2])
        #expect(receipts.map(\.deliveredTotal) == [3, 2])
    }

    @Test func aGroupOf1024MembersFansOutToEveryDevice() throws {
        _ = sb_raise_nofile_limit_for_tests()
        let node = try NodeProcess.serve(["--threads", "2"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        let batch = try harness.connectMany(count: 1_023, port: node.port) { Hello(mode: .register, accountName: "member\($0)") }
        #expect(batch.welcomed == 1_023)
        let others = batch.addresses
        guard case .result(let created)? = alice.request(.createGroup(requestID: 1, name: "big", members: others.map(\.accountID)), id: 1, timeout: 30),
            let group = created.value
        else {
            Issue.record("no group")
            return
        }
        #expect(created.code == .ok)
        guard case .result(let tooMany)? = alice.request(.updateGroup(requestID: 2, groupID: group, operation: .add, accountID: 999_999, name: ""), id: 2)
        else { return }
        #expect(tooMany.code == .overLimit, "1,024 members is the limit")
        let copies = others.map { MessageCopy(deviceID: $0.deviceID, ciphertext: [UInt8](repeating: 7, count: 16)) }
        let result = alice.sendMessage(to: 0, copies: copies, groupID: group, timeout: 30)
        #expect(result?.code == .ok)
        #expect(batch.waitForGroupMessages(1_023, timeout: 60) == 1_023)
    }
}

import CSwitchboardShims
func sb_raise_nofile_limit_for_tests() -> Int { Int(sb_raise_nofile_limit()) }

/// The node never sees plaintext: a marker sealed end to end to each member's published identity
/// key crosses the node, is opened by the members, and appears nowhere in the node's data
/// directory or logs.
@Suite(.serialized) struct EndToEndTests {
    @Test func aPlaintextMarkerAppearsNowhereOnTheNode() throws {
        let node = try NodeProcess.serve(["--log-level", "debug"])
        let harness = try ClientHarness()
        let alice = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: "alice"))
        var identities: [UInt64: KeyPair] = [:]
        var members: [TestClient] = []
        for name in ["bob", "carol"] {
            let member = try harness.connect(port: node.port, credentials: ClientCredentials(), hello: Hello(mode: .register, accountName: name))
            let identity = KeyPair.generate()
            identities[member.deviceID] = identity
            guard case .result(let published)? = member.request(
                .publishKeys(requestID: 1, identityKey: identity.publicKey, signedPrekey: nil, oneTimePrekeys: []), id: 1) else { return }
            #expect(published.code == .ok)
            members.append(member)
        }
        guard case .result(let created)? = alice.request(.createGroup(requestID: 2, name: "e2e", members: members.map(\.accountID)), id: 2),
            let group = created.value
        else { return }
        let marker = Array("PLAINTEXT-MARKER-\(UUID().uuidString)".utf8)
        var copies: [MessageCopy] = []
        for member in members {
            guard case .keyBundles(_, _, let bundles)? = alice.request(.getKeys(requestID: 10 + member.accountID, accountID: member.accountID, deviceID: nil),
                                                                       id: 10 + member.accountID),
                let identityKey = bundles.first?.identityKey, let sealed = EndToEnd.seal(marker, to: identityKey)
            else {
                Issue.record("no keys")
                return
            }
            copies.append(MessageCopy(deviceID: member.deviceID, ciphertext: sealed))
        }
        #expect(alice.sendMessage(to: 0, copies: copies, groupID: group)?.code == .ok)
        for member in members {
            let message = member.waitForDeliveries(2).first { $0.kind == .message }
            let opened = message.flatMap { EndToEnd.open($0.ciphertext, with: identities[member.deviceID]!) }
            #expect(opened == marker, "each member opens its copy")
        }
        // Nothing on the node holds the plaintext.
        let files = try FileManager.default.contentsOfDirectory(atPath: node.dataDirectory)
        #expect(files.contains("switchboard.db"))
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: node.dataDirectory + "/" + file))
            #expect(data.range(of: Data(marker)) == nil, "\(file) holds no plaintext")
        }
        #expect(!node.standardError.contains(String(decoding: marker, as: UTF8.self)))
        #expect(node.standardError.contains("logged in"), "debug logging was on")
        // And the check can see the marker where it is: the sealed copies are not it.
        #expect(EndToEnd.seal(marker, to: KeyPair.generate().publicKey).map { Data($0).range(of: Data(marker)) == nil } == true)
    }
}
