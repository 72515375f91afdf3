import Testing
import Wire

@testable import Chat

/// The check that a group Send's copies go exactly to the devices the store listed, which decides
/// whether the message may be delivered directly (PROTOCOL.md section 20.8).
@Suite struct DirectRouteTests {
    private func copies(_ devices: [UInt64]) -> MessageCopies {
        MessageCopies(devices.map { MessageCopy(deviceID: $0, ciphertext: [1]) })
    }

    @Test func theSameDevicesInAnyOrderCover() {
        let listed: [UInt64] = Array(stride(from: 3, to: 600, by: 3))  // 199 devices: four bitmap words
        #expect(ServerSession.copies(copies(listed.reversed()), coverExactly: listed))
        #expect(ServerSession.copies(copies(listed.shuffled()), coverExactly: listed))
    }

    @Test func aMissingUnknownOrRepeatedDeviceDoesNot() {
        let listed: [UInt64] = [10, 20, 30, 40, 70, 130]
        #expect(!ServerSession.copies(copies([10, 20, 30, 40, 70]), coverExactly: listed))  // one missing
        #expect(!ServerSession.copies(copies([10, 20, 30, 40, 70, 131]), coverExactly: listed))  // unknown
        #expect(!ServerSession.copies(copies([10, 20, 30, 40, 70, 70]), coverExactly: listed))  // repeated
        #expect(!ServerSession.copies(copies([5, 10, 20, 30, 40, 70]), coverExactly: listed))  // below the first
        #expect(!ServerSession.copies(copies([10, 20, 30, 40, 70, 130, 140]), coverExactly: listed))  // one more
    }
}
