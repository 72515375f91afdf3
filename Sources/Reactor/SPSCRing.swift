import Synchronization

/// A bounded single-producer single-consumer ring. One thread pushes, one thread pops; the two
/// meet only through the `head` and `tail` atomics (release on publish, acquire on observe).
///
/// `@unchecked Sendable`: the storage slots are written only by the producer before it publishes
/// `tail` and read only by the consumer after it observes `tail`, and freed slots are handed back
/// through `head` the same way, so no slot is ever touched by both threads at once.
final class SPSCRing<Element>: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<Element>
    let capacity: Int
    private let mask: Int
    private let head = Atomic<Int>(0)  // next slot to pop; written by the consumer
    private let tail = Atomic<Int>(0)  // next slot to push; written by the producer

    init(capacity: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "capacity must be a power of two")
        self.capacity = capacity
        self.mask = capacity - 1
        self.storage = .allocate(capacity: capacity)
    }

    deinit {
        var index = head.load(ordering: .relaxed)
        let end = tail.load(ordering: .relaxed)
        while index != end {
            (storage + (index & mask)).deinitialize(count: 1)
            index &+= 1
        }
        storage.deallocate()
    }

    /// Producer side: true when a push would find no free slot.
    var isFull: Bool { tail.load(ordering: .relaxed) &- head.load(ordering: .acquiring) == capacity }

    /// Producer side; the ring must not be full (`isFull`). Takes the element over (no copy).
    func push(_ element: consuming Element) {
        let t = tail.load(ordering: .relaxed)
        precondition(t &- head.load(ordering: .acquiring) < capacity, "push into a full ring")
        (storage + (t & mask)).initialize(to: element)
        tail.store(t &+ 1, ordering: .releasing)
    }

    /// Consumer side: pops up to `limit` elements in order into `body`; returns how many.
    func drain(limit: Int, _ body: (Element) -> Void) -> Int {
        let h = head.load(ordering: .relaxed)
        let available = tail.load(ordering: .acquiring) &- h
        let n = min(available, limit)
        var index = h
        for _ in 0..<n {
            let element = (storage + (index & mask)).move()
            index &+= 1
            // Hand the slot back before running the body, so a body that produces into a
            // full ring of its own never waits on us.
            head.store(index, ordering: .releasing)
            body(element)
        }
        return n
    }

    /// Either side: true when nothing is waiting (a snapshot).
    var isEmpty: Bool { tail.load(ordering: .acquiring) == head.load(ordering: .acquiring) }
}
