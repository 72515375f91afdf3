import Testing

@testable import Reactor

@Suite struct LoopQueueTests {
    final class Tracked {
        let value: Int
        let onRelease: (Int) -> Void
        init(_ value: Int, onRelease: @escaping (Int) -> Void) {
            self.value = value
            self.onRelease = onRelease
        }
        deinit { onRelease(value) }
    }

    @Test func firstInFirstOutAcrossGrowthAndWrapping() {
        let queue = LoopQueue<Int>(keptCapacity: 64)
        var next = 0
        var expected = 0
        // Push and pop unevenly so the ring wraps, then grows while wrapped.
        for round in 0..<50 {
            for _ in 0..<(round % 7 + 3) {
                queue.push(next)
                next += 1
            }
            #expect(queue.first == expected, "the oldest, left in place")
            _ = queue.drain(limit: round % 5 + 1) { value in
                #expect(value == expected)
                expected += 1
            }
        }
        _ = queue.drain(limit: .max) { value in
            #expect(value == expected)
            expected += 1
        }
        #expect(expected == next)
        #expect(queue.isEmpty)
        #expect(queue.first == nil)
    }

    @Test func drainTakesOnlyWhatWasThereWhenItStarted() {
        let queue = LoopQueue<Int>(keptCapacity: 16)
        for value in 0..<10 { queue.push(value) }
        var seen: [Int] = []
        // Each element handled pushes another (more than the storage holds, so it grows mid-drain).
        let popped = queue.drain(limit: .max) { value in
            seen.append(value)
            queue.push(100 + value)
            queue.push(200 + value)
        }
        #expect(popped == 10)
        #expect(seen == Array(0..<10))
        #expect(queue.count == 20)
        var after: [Int] = []
        _ = queue.drain(limit: .max) { after.append($0) }
        #expect(after == (0..<10).flatMap { [100 + $0, 200 + $0] })
    }

    @Test func storageIsKeptUpToItsLimitAndGivenBackBeyond() {
        let queue = LoopQueue<Int>(keptCapacity: 64)
        for value in 0..<64 { queue.push(value) }
        _ = queue.drain(limit: .max) { _ in }
        #expect(queue.allocatedSlots == 64, "a burst within the limit keeps its storage")
        for value in 0..<65 { queue.push(value) }
        #expect(queue.allocatedSlots == 128)
        _ = queue.drain(limit: 10) { _ in }
        #expect(queue.allocatedSlots == 128, "kept while elements remain")
        _ = queue.drain(limit: .max) { _ in }
        #expect(queue.allocatedSlots == 0, "a burst beyond the limit gives its storage back")
    }

    @Test func everyElementIsReleasedOnceWhetherPoppedOrLeftInTheQueue() {
        var released: [Int] = []
        do {
            let queue = LoopQueue<Tracked>(keptCapacity: 16)
            for value in 0..<40 { queue.push(Tracked(value) { released.append($0) }) }
            _ = queue.drain(limit: 25) { _ in }
            #expect(released == Array(0..<25), "popped ones are released as they are handled")
        }
        #expect(released == Array(0..<40), "the queue's deinit releases what it still held")
    }
}
