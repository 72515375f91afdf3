import Testing

@testable import Wire

@Suite struct ByteArrayPoolTests {
    private func storage(_ array: [UInt8]) -> UnsafeRawPointer? {
        array.withUnsafeBytes { $0.baseAddress }
    }

    private func copy(_ pool: ByteArrayPool, _ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { pool.copy($0) }
    }

    @Test func aRecycledArraysStorageHoldsTheNextCopy() {
        let pool = ByteArrayPool()
        var first = copy(pool, Array(repeating: 7, count: 128))
        let address = storage(first)
        pool.recycle(&first)
        #expect(first.isEmpty)
        #expect(pool.count == 1)
        let second = copy(pool, Array(0..<100))
        #expect(second == Array(0..<100))
        #expect(storage(second) == address)
        #expect(pool.reused == 1 && pool.count == 0)
    }

    @Test func anArrayStillSharedIsNeverOverwritten() {
        let pool = ByteArrayPool()
        var array = copy(pool, Array(repeating: 1, count: 50))
        let shared = array
        pool.recycle(&array)
        let next = copy(pool, Array(repeating: 9, count: 50))
        #expect(shared == Array(repeating: 1, count: 50))
        #expect(next == Array(repeating: 9, count: 50))
        #expect(storage(next) != storage(shared))
    }

    @Test func newStorageIsRoundedUpSoSimilarSizesShareIt() {
        let pool = ByteArrayPool()
        #expect(copy(pool, [1]).capacity >= 64)
        let medium = copy(pool, Array(repeating: 2, count: 129))
        #expect(medium.capacity >= 256 && medium.capacity < 512)
        #expect(copy(pool, []).capacity == 0)  // nothing to hold: no storage
    }

    @Test func theLargestKeptSizeIsKeptAndLargerOnesAreNotRoundedUp() {
        let pool = ByteArrayPool()  // keeps storage of up to 2,048 bytes
        var top = copy(pool, Array(repeating: 1, count: 2_000))
        pool.recycle(&top)
        #expect(pool.count == 1, "asked as 2,048 bytes, whatever malloc added")
        let large = copy(pool, Array(repeating: 2, count: 3_000))
        #expect(large.capacity < 4_096, "not kept, so not rounded up")
    }

    @Test func aTooSmallArrayWaitsForASmallerCopy() {
        let pool = ByteArrayPool()
        var small = copy(pool, Array(repeating: 3, count: 60))
        let address = storage(small)
        pool.recycle(&small)
        let large = copy(pool, Array(repeating: 4, count: 1_000))
        #expect(large.count == 1_000 && pool.reused == 0 && pool.count == 1)
        let again = copy(pool, Array(repeating: 5, count: 10))
        #expect(storage(again) == address && pool.reused == 1)
    }

    @Test func keepsAtMostItsLimitAndNothingLarge() {
        let pool = ByteArrayPool(limit: 2, maxCapacity: 256)
        var big = copy(pool, Array(repeating: 0, count: 400))
        pool.recycle(&big)
        #expect(pool.count == 0 && pool.recycled == 0)
        for _ in 0..<3 {
            var array = copy(pool, Array(repeating: 0, count: 10))
            pool.recycle(&array)
        }
        #expect(pool.count == 1)  // each copy took the one recycled before it
        var a = copy(pool, [1]), b = copy(pool, [2]), c = copy(pool, [3])
        pool.recycle(&a)
        pool.recycle(&b)
        pool.recycle(&c)
        #expect(pool.count == 2)
    }

    @Test func keepsAtMostItsByteBudget() {
        // Budgeted by what malloc actually gave (sizes can differ while other tests run).
        var arrays = (0..<3).map { _ in copy(ByteArrayPool(), Array(repeating: 0, count: 100)) }
        let pool = ByteArrayPool(byteLimit: arrays[0].capacity + max(arrays[1].capacity, arrays[2].capacity))
        for index in arrays.indices { pool.recycle(&arrays[index]) }
        #expect(pool.count == 2 && pool.recycled == 2)
        #expect(!arrays[2].isEmpty)  // the budget was full: not taken
        _ = copy(pool, [1])  // takes one: room again
        pool.recycle(&arrays[2])
        #expect(pool.count == 2 && pool.recycled == 3 && arrays[2].isEmpty)
    }

    @Test func aPoolMoreThanHalfFullSparesArraysToAnother() {
        let giving = ByteArrayPool(limit: 8), taking = ByteArrayPool(limit: 8)
        for _ in 0..<4 {
            var array = copy(giving, Array(repeating: 1, count: 100))
            giving.recycle(&array)
        }
        #expect(giving.count == 1 && !giving.hasSpare)  // each copy took the one before
        var arrays = (0..<5).map { _ in copy(ByteArrayPool(), Array(repeating: 2, count: 100)) }
        let addresses = Set(arrays.map(storage))
        for index in arrays.indices { giving.recycle(&arrays[index]) }
        #expect(giving.count == 6 && giving.hasSpare)
        taking.adopt(giving.takeSpare(3))  // as a message to another loop: nobody else keeps them
        #expect(giving.count == 3 && !giving.hasSpare)
        #expect(taking.count == 3)
        let reused = copy(taking, Array(repeating: 3, count: 100))
        #expect(addresses.contains(storage(reused)), "the next copy on the other loop uses spared storage")
        #expect(reused == Array(repeating: 3, count: 100))
    }

    @Test func aSendDecodedWithAPoolTakesItsCiphertextsFromIt() throws {
        let pool = ByteArrayPool()
        var recycled = copy(pool, Array(repeating: 0, count: 200))
        let address = storage(recycled)
        pool.recycle(&recycled)
        let ciphertext = [UInt8](repeating: 0xAB, count: 150)
        let message = SendMessage(messageID: MessageID(Array(repeating: 1, count: 16)), toAccount: 5,
                                  copies: [MessageCopy(deviceID: 9, ciphertext: ciphertext)])
        let frame = StanzaCodec.encode(.send(message))
        var decoded: [Stanza] = []
        try frame.withUnsafeBytes { raw in
            try StanzaCodec.forEach(raw, reusing: pool, acks: { _ in }) { decoded.append($0) }
        }
        guard case .send(let got)? = decoded.first else {
            Issue.record("expected a Send, got \(decoded)")
            return
        }
        #expect(got == message)
        #expect(storage(got.copies[0].ciphertext) == address)
        #expect(pool.reused == 1)
    }
}
