/// An object that receives timer expirations. One object can own many timers and tell them
/// apart by `tag` (a 32-bit value), so a connection's deadlines cost no closure allocation.
public protocol TimerTarget: AnyObject {
    func timerFired(tag: Int)
}

/// Identifies a scheduled timer. A handle whose timer has fired or been cancelled is inert:
/// cancelling it again is a no-op, even if its slot was reused (the generation differs).
public struct TimerHandle: Hashable, Sendable {
    let index: Int32
    let generation: UInt32

    /// A handle that names no timer.
    public static let none = TimerHandle(index: -1, generation: 0)
    public var isNone: Bool { index < 0 }
}

/// A hashed timing wheel (a class, so a firing callback may schedule and cancel re-entrantly): O(1) schedule and cancel, expiry work proportional to the timers in
/// the slots passed. Time is counted in ticks; the owner maps clock time to ticks.
///
/// Nodes live in one array (a slab) linked into per-slot doubly-linked lists by index, so
/// scheduling allocates nothing once the slab has grown to the peak number of live timers.
final class TimerWheel {
    /// 48 bytes: every connection keeps an idle timer, so the slab holds one node per connection.
    private struct Node {
        var deadline: UInt64 = 0
        /// Scheduling order (wrapping), to fire timers with equal deadlines first come first.
        var sequence: UInt32 = 0
        var prev: Int32 = -1
        var next: Int32 = -1
        var generation: UInt32 = 0
        var tag: Int32 = 0
        var state: State = .free
        var target: TimerTarget?
    }

    private enum State: UInt8 { case free, scheduled, expired }

    private let mask: UInt64
    private var heads: [Int32]
    private var tails: [Int32]
    private var nodes: [Node] = []
    private var freeHead: Int32 = -1
    private var sequence: UInt32 = 0
    private var expired: [(handle: TimerHandle, deadline: UInt64, sequence: UInt32)] = []
    private(set) var currentTick: UInt64
    /// Timers scheduled and not yet fired or cancelled.
    private(set) var count = 0

    init(slots: Int = 4096, startTick: UInt64 = 0) {
        precondition(slots > 0 && slots & (slots - 1) == 0, "slot count must be a power of two")
        mask = UInt64(slots - 1)
        heads = Array(repeating: -1, count: slots)
        tails = Array(repeating: -1, count: slots)
        currentTick = startTick
    }

    /// Schedules `target.timerFired(tag:)` for `tick` (at least one tick from now).
    func schedule(atTick tick: UInt64, target: TimerTarget, tag: Int) -> TimerHandle {
        let deadline = max(tick, currentTick + 1)
        let index = allocateNode()
        sequence &+= 1
        nodes[Int(index)].deadline = deadline
        nodes[Int(index)].sequence = sequence
        nodes[Int(index)].state = .scheduled
        nodes[Int(index)].tag = Int32(tag)
        nodes[Int(index)].target = target
        link(index, slot: Int(deadline & mask))
        count += 1
        return TimerHandle(index: index, generation: nodes[Int(index)].generation)
    }

    /// Cancels a timer. Returns false if it had already fired or been cancelled.
    @discardableResult
    func cancel(_ handle: TimerHandle) -> Bool {
        guard handle.index >= 0, Int(handle.index) < nodes.count else { return false }
        let node = nodes[Int(handle.index)]
        guard node.generation == handle.generation else { return false }
        switch node.state {
        case .free: return false
        case .scheduled: unlink(handle.index, slot: Int(node.deadline & mask))
        case .expired: break
        }
        release(handle.index)
        count -= 1
        return true
    }

    /// Moves time to `tick` and fires every timer whose deadline is at or before it, earliest
    /// first (ties in scheduling order). A callback may schedule or cancel timers, including
    /// ones that expired in the same advance and have not fired yet.
    func advance(to tick: UInt64) {
        guard tick > currentTick else { return }
        let steps = min(tick - currentTick, mask + 1)
        for step in 1...steps {
            let slot = Int((currentTick + step) & mask)
            var index = heads[slot]
            while index >= 0 {
                let next = nodes[Int(index)].next
                if nodes[Int(index)].deadline <= tick {
                    unlink(index, slot: slot)
                    nodes[Int(index)].state = .expired
                    let node = nodes[Int(index)]
                    expired.append(
                        (TimerHandle(index: index, generation: node.generation), node.deadline, node.sequence))
                }
                index = next
            }
        }
        currentTick = tick
        guard !expired.isEmpty else { return }
        if expired.count > 1 {
            expired.sort {
                $0.deadline != $1.deadline ? $0.deadline < $1.deadline : Int32(bitPattern: $0.sequence &- $1.sequence) < 0
            }
        }
        var position = 0
        while position < expired.count {
            let handle = expired[position].handle
            position += 1
            let node = nodes[Int(handle.index)]
            // Cancelled by an earlier callback of this batch?
            guard node.generation == handle.generation, node.state == .expired, let target = node.target
            else { continue }
            let tag = Int(node.tag)
            release(handle.index)
            count -= 1
            target.timerFired(tag: tag)
        }
        expired.removeAll(keepingCapacity: true)
    }

    /// Ticks until the earliest slot holding a timer, looking at most `scanLimit` slots ahead;
    /// nil when no timer is scheduled. The slot may hold only timers of later revolutions, and
    /// past the scan limit the answer is the limit: waking early is harmless, and a bounded scan
    /// keeps the cost of going to sleep small.
    static let scanLimit: UInt64 = 128

    func ticksUntilNextSlot() -> UInt64? {
        guard count > 0 else { return nil }
        let limit = min(TimerWheel.scanLimit, mask + 1)
        for step in 1...limit where heads[Int((currentTick + step) & mask)] >= 0 {
            return step
        }
        return limit
    }

    private func allocateNode() -> Int32 {
        if freeHead >= 0 {
            let index = freeHead
            freeHead = nodes[Int(index)].next
            return index
        }
        nodes.append(Node())
        return Int32(nodes.count - 1)
    }

    private func release(_ index: Int32) {
        nodes[Int(index)].state = .free
        nodes[Int(index)].target = nil
        nodes[Int(index)].generation &+= 1
        nodes[Int(index)].prev = -1
        nodes[Int(index)].next = freeHead
        freeHead = index
    }

    private func link(_ index: Int32, slot: Int) {
        nodes[Int(index)].next = -1
        nodes[Int(index)].prev = tails[slot]
        if tails[slot] >= 0 { nodes[Int(tails[slot])].next = index } else { heads[slot] = index }
        tails[slot] = index
    }

    private func unlink(_ index: Int32, slot: Int) {
        let prev = nodes[Int(index)].prev
        let next = nodes[Int(index)].next
        if prev >= 0 { nodes[Int(prev)].next = next } else { heads[slot] = next }
        if next >= 0 { nodes[Int(next)].prev = prev } else { tails[slot] = prev }
        nodes[Int(index)].prev = -1
        nodes[Int(index)].next = -1
    }
}
