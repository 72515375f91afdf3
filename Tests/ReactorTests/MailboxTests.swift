import Glibc
import Reactor
import Synchronization
import Testing
import TestSupport

/// A message naming its producer and its place in that producer's sequence.
struct Stamped: Sendable {
    let producer: Int
    let sequence: Int
}

/// Checks per-producer order on the consumer loop.
final class OrderChecker: @unchecked Sendable {
    // `@unchecked Sendable`: `next` is touched only on the consumer loop; totals are atomic.
    private var next: [Int: Int] = [:]
    let received = Atomic<Int>(0)
    let outOfOrder = Atomic<Int>(0)

    func accept(_ message: Stamped) {
        let expected = next[message.producer, default: 0]
        if message.sequence != expected { outOfOrder.add(1, ordering: .relaxed) }
        next[message.producer] = message.sequence + 1
        received.add(1, ordering: .relaxed)
    }
}

@Suite struct MailboxTests {
    @Test(arguments: [1024, 8])
    func manyProducersNoMessageLostDuplicatedOrReordered(ringCapacity: Int) throws {
        let harness = try LoopHarness(threads: 3)
        let consumer = harness.group.loops[0]
        let checker = OrderChecker()
        let mailbox = Mailbox<Stamped>(consumer: consumer, ringCapacity: ringCapacity) { checker.accept($0) }
        let perProducer = 20_000
        // Two other loops of the group produce through their rings (small rings overflow)...
        for producerLoop in harness.group.loops.dropFirst() {
            let id = producerLoop.id
            producerLoop.execute {
                for sequence in 0..<perProducer { mailbox.send(Stamped(producer: 100 + id, sequence: sequence)) }
            }
        }
        // ...the consumer loop sends to itself, and foreign threads use the shared list.
        consumer.execute {
            for sequence in 0..<perProducer { mailbox.send(Stamped(producer: 99, sequence: sequence)) }
        }
        runThreads(4) { thread in
            for sequence in 0..<perProducer { mailbox.send(Stamped(producer: thread, sequence: sequence)) }
        }
        let total = perProducer * 7
        #expect(waitUntil(timeoutMilliseconds: 30_000) { checker.received.load(ordering: .relaxed) >= total })
        sleepMilliseconds(50)
        #expect(checker.received.load(ordering: .relaxed) == total, "nothing duplicated")
        #expect(checker.outOfOrder.load(ordering: .relaxed) == 0)
    }

    @Test func sleepingLoopIsWokenByAnotherLoop() throws {
        let harness = try LoopHarness(threads: 2)
        let checker = OrderChecker()
        let mailbox = Mailbox<Stamped>(consumer: harness.group.loops[0]) { checker.accept($0) }
        for round in 0..<50 {
            // Let the consumer fall asleep in epoll_wait, then send one message.
            sleepMilliseconds(2)
            harness.group.loops[1].execute { mailbox.send(Stamped(producer: 1, sequence: round)) }
            #expect(waitUntil(timeoutMilliseconds: 5_000) { checker.received.load(ordering: .relaxed) == round + 1 })
        }
        #expect(checker.outOfOrder.load(ordering: .relaxed) == 0)
    }
}

/// Counts the boxes alive: a message's payload.
final class LiveCount: @unchecked Sendable {
    // `@unchecked Sendable`: atomics only.
    let created = Atomic<Int>(0)
    let released = Atomic<Int>(0)
}

final class Payload: Sendable {
    let count: LiveCount
    init(_ count: LiveCount) {
        self.count = count
        count.created.add(1, ordering: .relaxed)
    }
    deinit { count.released.add(1, ordering: .sequentiallyConsistent) }
}

struct Carrying: Sendable {
    let payload: Payload
}

/// Checks, as each message is handled, that every message handled before it is gone: the
/// mailbox kept no copy of it (a copy would share its arrays, and a pool reusing them would
/// have to copy on write).
final class ReleaseChecker: @unchecked Sendable {
    // `@unchecked Sendable`: `handled` is touched only on the consumer loop; totals are atomic.
    private var handled = 0
    let done = Atomic<Int>(0)
    let heldAfterHandling = Atomic<Int>(0)
    let count: LiveCount
    init(_ count: LiveCount) { self.count = count }

    func accept(_ message: Carrying) {
        if count.released.load(ordering: .sequentiallyConsistent) != handled { heldAfterHandling.add(1, ordering: .relaxed) }
        handled += 1
        done.store(handled, ordering: .relaxed)
    }
}

extension MailboxTests {
    /// Through the consumer's own queue, a ring, a full ring's overflow and the foreign list,
    /// a handled message is released at once.
    @Test(arguments: ["own", "ring", "overflow", "foreign"])
    func handledMessagesAreNotKeptAlive(path: String) throws {
        let harness = try LoopHarness(threads: 2)
        let live = LiveCount()
        let checker = ReleaseChecker(live)
        let mailbox = Mailbox<Carrying>(consumer: harness.group.loops[0], ringCapacity: path == "overflow" ? 8 : 4_096) {
            checker.accept($0)
        }
        let burst = 3_000
        let send: @Sendable () -> Void = {
            for _ in 0..<burst { mailbox.send(Carrying(payload: Payload(live))) }
        }
        switch path {
        case "own": harness.group.loops[0].execute(send)
        case "ring", "overflow": harness.group.loops[1].execute(send)
        default: runThreads(1) { _ in send() }
        }
        #expect(waitUntil(timeoutMilliseconds: 30_000) { checker.done.load(ordering: .relaxed) == burst })
        #expect(checker.heldAfterHandling.load(ordering: .relaxed) == 0, "messages outlived their handling (\(path))")
        #expect(waitUntil(timeoutMilliseconds: 5_000) { live.released.load(ordering: .relaxed) == burst })
    }
}
