/// A first-in first-out queue for one thread: what a loop sends to its own mailbox, or what a
/// session keeps waiting in order. Unlike the rings between loops it has no fixed capacity (its
/// user bounds what it pushes), no atomics, and elements are moved in and out, never copied, so
/// an element's arrays are not shared with a slot left behind; popping the first moves nothing
/// else (an array's `removeFirst` shifts every element behind it).
///
/// It grows by doubling; once empty it keeps up to `keptCapacity` slots, so a steady stream of
/// bursts allocates nothing after the first, and gives back storage a larger burst needed.
public final class LoopQueue<Element> {
    private var storage: UnsafeMutablePointer<Element>?
    private var capacity = 0
    private var head = 0
    public private(set) var count = 0
    public let keptCapacity: Int

    /// - Parameter keptCapacity: slots kept while empty (a power of two).
    public init(keptCapacity: Int) {
        precondition(keptCapacity > 0 && keptCapacity & (keptCapacity - 1) == 0, "keptCapacity must be a power of two")
        self.keptCapacity = keptCapacity
    }

    deinit {
        if let storage {
            for offset in 0..<count { (storage + ((head + offset) & (capacity - 1))).deinitialize(count: 1) }
            storage.deallocate()
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// A copy of the oldest element, which stays queued.
    public var first: Element? { count > 0 ? storage![head] : nil }

    /// Slots allocated (for tests).
    var allocatedSlots: Int { capacity }

    // Not inlined: called with the element's address, it initializes the slot with one copy
    // (inlined into `Mailbox.send` it made two).
    @inline(never)
    public func push(_ element: consuming Element) {
        if count == capacity { grow() }
        (storage! + ((head + count) & (capacity - 1))).initialize(to: element)
        count += 1
    }

    /// Pops up to `limit` of the elements present when it starts, in order, into `body`;
    /// elements `body` pushes wait for the next call. Returns how many it popped.
    @inline(__always)
    @discardableResult
    public func drain(limit: Int, _ body: (Element) -> Void) -> Int {
        let n = min(count, limit)
        var popped = 0
        // `count > 0`: a body that drained this queue itself has left nothing (maybe not even storage).
        while popped < n && count > 0 {
            let element = (storage! + head).move()
            head = (head + 1) & (capacity - 1)
            count -= 1
            popped += 1
            body(element)
        }
        if count == 0 {
            head = 0
            if capacity > keptCapacity {
                storage?.deallocate()
                storage = nil
                capacity = 0
            }
        }
        return popped
    }

    private func grow() {
        let size = max(16, capacity * 2)
        let grown = UnsafeMutablePointer<Element>.allocate(capacity: size)
        if let storage {
            for offset in 0..<count {
                (grown + offset).moveInitialize(from: storage + ((head + offset) & (capacity - 1)), count: 1)
            }
            storage.deallocate()
        }
        storage = grown
        capacity = size
        head = 0
    }
}
