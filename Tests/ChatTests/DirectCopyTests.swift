import Testing
import Wire

@testable import Chat

@Suite struct DirectCopyTests {
    /// A settlement carries the delivery without its ciphertext, every other field kept (the
    /// header is built field by field, so a field added to `Delivery` must be added there too).
    @Test func withoutCiphertextKeepsEveryOtherField() {
        let full = Delivery(seq: 9, messageID: MessageID(repeating: 4, count: 12), fromAccount: 1 << 40, fromDevice: 77,
                            sentAtMilliseconds: 1_764_000_000_123, ciphertext: [1, 2, 3], kind: .read, groupID: 5, muted: true,
                            deliveredCount: 3, deliveredTotal: 8)
        var expected = full
        expected.ciphertext = []
        #expect(full.withoutCiphertext == expected)
        #expect(full.ciphertext == [1, 2, 3], "the original keeps its ciphertext")
    }
}
