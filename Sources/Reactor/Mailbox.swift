import CSwitchboardShims
import Synchronization

/// Something an event loop drains on each iteration.
protocol InboxSource: AnyObject, Sendable {
    /// Runs on the consumer loop: handles up to `limit` waiting items, returns how many.
    func drain(limit: Int) -> Int
    /// The consumer loop: whether items are waiting (a snapshot of what other threads sent).
    var hasPending: Bool { get }
}

/// A multi-producer queue into one event loop. Other loops of the same group each push into a
/// ring of their own (single producer, single consumer: no lock, no allocation per message);
/// the consumer's own messages go into a queue only it touches (`LoopQueue`: no capacity to
/// overflow, nothing atomic); threads that are not loops of the group (the store thread, tests)
/// share one locked list. Messages from one producer arrive in the order it sent them.
///
/// When a loop's ring is full the loop keeps the overflow in a list only it touches and moves it
/// into the ring on its next iterations, so a producer never blocks on a slow consumer.
///
/// `@unchecked Sendable`: `rings[i]` is pushed only by loop `i` and drained only by the consumer;
/// `overflow[i]` is touched only by loop `i` (checked with `precondition` on entry); `own` only
/// by the consumer (pushed when the producer is the consumer, drained and asked by it); the
/// foreign list is behind a `Mutex`; `handler` runs only on the consumer loop.
public final class Mailbox<Message: Sendable>: InboxSource, @unchecked Sendable {
    public let consumer: EventLoop
    /// The consumer's group (`EventLoop.groupToken`): producers of the same group have a ring.
    private let groupToken: Int
    private let rings: [SPSCRing<Message>]
    /// The consumer's messages to itself, and the consumer's index among the producers.
    private let own: LoopQueue<Message>
    private let consumerIndex: Int
    /// Messages a full ring could not take, moved out one by one (nil once moved into the ring).
    private var overflow: [[Message?]]
    private var overflowHead: [Int]
    private let foreign = Mutex<[Message]>([])
    private let foreignCount = Atomic<Int>(0)
    private let handler: (Message) -> Void

    /// Creates a mailbox into `consumer`; `handler` runs on that loop for every message.
    /// - Parameter ringCapacity: slots per producer loop (a power of two).
    public init(consumer: EventLoop, ringCapacity: Int = 1024, handler: @escaping (Message) -> Void) {
        self.consumer = consumer
        let producers = consumer.groupSize
        self.groupToken = consumer.groupToken
        // The consumer never uses its own ring (`own` takes its messages): one slot.
        self.rings = (0..<producers).map { SPSCRing(capacity: $0 == consumer.id ? 1 : ringCapacity) }
        self.own = LoopQueue(keptCapacity: 4 * ringCapacity)
        self.consumerIndex = consumer.id
        self.overflow = Array(repeating: [], count: producers)
        self.overflowHead = Array(repeating: 0, count: producers)
        self.handler = handler
        consumer.addInboxSource(self)
    }

    /// Sends a message to the consumer loop. Any thread may call this.
    public func send(_ message: consuming Message) {
        // The producer loop and its ring are borrowed, not retained: both live as long as the
        // group (this runs on the producer's own thread, and the mailbox holds its rings). The
        // retains and releases were a fifth of this function's cost, four times per relayed message.
        if let raw = sb_current_loop() {
            let producer = Unmanaged<EventLoop>.fromOpaque(raw)
            let (token, index) = producer._withUnsafeGuaranteedRef { ($0.groupToken, $0.id) }
            if token == groupToken, index < rings.count {
                var pending: Message? = consume message  // moved into a queue below, not copied
                if index == consumerIndex {
                    own.push(pending.take()!)  // drained later in this iteration: no wake-up owed
                    return
                }
                if overflow[index].isEmpty {
                    rings.withUnsafeBufferPointer { rings in
                        Unmanaged.passUnretained(rings[index])._withUnsafeGuaranteedRef { ring in
                            if !ring.isFull { ring.push(pending.take()!) }
                        }
                    }
                    if pending == nil {
                        producer._withUnsafeGuaranteedRef { $0.wakeLater(consumer) }
                        return
                    }
                    producer._withUnsafeGuaranteedRef { $0.flushLater(self) }  // once per overflow episode
                }
                overflow[index].append(pending.take())
                return
            }
        }
        let item = message
        foreign.withLock { $0.append(item) }
        foreignCount.add(1, ordering: .sequentiallyConsistent)
        consumer.wakeUp()
    }

    /// Runs on a producer loop: moves its overflow into its ring; true when some remains.
    func flushOverflow(from producer: EventLoop) -> Bool {
        let index = producer.id
        let start = overflowHead[index]
        var head = start
        while head < overflow[index].count, !rings[index].isFull {
            // Moved, not copied: a copy left in the list would share the message's arrays
            // (a ciphertext the pool hands out again would then be copied on write).
            rings[index].push(overflow[index][head].take()!)
            head += 1
        }
        if head > start { producer.wakeLater(consumer) }
        if head == overflow[index].count {
            // A burst's high-water mark is not kept: a ring's worth of capacity at most (one list
            // per producer per consumer: more would add up on a node of many loops).
            overflow[index].removeAll(keepingCapacity: overflow[index].capacity <= rings[index].capacity)
            overflowHead[index] = 0
            return false
        }
        if head > overflow[index].count / 2 {  // compact: do not keep what was already moved
            overflow[index].removeFirst(head)
            head = 0
        }
        overflowHead[index] = head
        return true
    }

    func drain(limit: Int) -> Int {
        var handled = 0
        // The consumer's own queue in its ring's place, so every producer keeps the same turn.
        for index in rings.indices where handled < limit {
            handled += index == consumerIndex ? own.drain(limit: limit - handled, handler) : rings[index].drain(limit: limit - handled, handler)
        }
        if handled < limit && foreignCount.load(ordering: .sequentiallyConsistent) > 0 {
            var batch = foreign.withLock { list -> [Message] in
                let taken = list
                list.removeAll(keepingCapacity: false)
                return taken
            }
            foreignCount.subtract(batch.count, ordering: .sequentiallyConsistent)
            handled += batch.count
            // Popped, not iterated: the batch keeps no copy of a message once it is handled.
            batch.reverse()
            while let message = batch.popLast() { handler(message) }
        }
        return handled
    }

    var hasPending: Bool {
        if foreignCount.load(ordering: .sequentiallyConsistent) > 0 { return true }
        if !own.isEmpty { return true }  // asked by the consumer loop only (`InboxSource`)
        for ring in rings where !ring.isEmpty { return true }
        return false
    }
}
