/// A connection's deliveries awaiting acknowledgement, by wire sequence number. The numbers are
/// handed out one after another (1, 2, 3, … per connection) and acknowledged in nearly the same
/// order, so the window is a ring indexed by `seq - base` rather than a hash table: no hashing
/// on the delivery path, and entries come back in sequence order.
///
/// Each slot says whether it holds an entry in a flag of its own: asking an `Entry?` whether it
/// is nil copies the whole entry (~160 bytes) out first, and the window asks at every insert and
/// acknowledgement. The flag shares the slot's storage, so the window stays one array.
struct InFlightWindow<Entry> {
    private struct Slot {
        var entry: Entry?
        var occupied = false
    }
    private var slots: [Slot] = []
    /// The sequence number in `slots[head]`; the ring spans `base ..< base + span`.
    private var base: UInt64 = 0
    // 32-bit positions keep the window at 28 bytes inside every session (a window is at most
    // the delivery window's few hundred entries wide).
    private var head32: UInt32 = 0
    private var span32: UInt32 = 0
    private var count32: UInt32 = 0
    private var head: Int {
        get { Int(head32) }
        set { head32 = UInt32(newValue) }
    }
    private var span: Int {
        get { Int(span32) }
        set { span32 = UInt32(newValue) }
    }
    /// Entries present.
    private(set) var count: Int {
        get { Int(count32) }
        set { count32 = UInt32(newValue) }
    }

    var isEmpty: Bool { count32 == 0 }
    /// Slots allocated: a window that filled far once gives its storage back when it empties.
    var capacity: Int { slots.count }

    subscript(seq: UInt64) -> Entry? {
        get {
            guard seq >= base, seq - base < UInt64(span) else { return nil }
            let index = slot(Int(seq - base))
            return slots[index].occupied ? slots[index].entry : nil
        }
        set {
            if let newValue = consume newValue { insert(newValue, at: seq) } else { removeValue(forKey: seq) }
        }
    }

    /// How many more entries may be added after `last` (the newest sequence number handed out)
    /// with at most `entries` present and at most `span` numbers from the oldest to the newest.
    /// The span bound is what keeps the ring's storage bounded when a peer never acknowledges
    /// one entry while it acknowledges all the others.
    func room(entries: Int, span limit: Int, last: UInt64) -> Int {
        let byCount = entries - count
        guard count > 0, last >= base else { return max(0, min(byCount, limit)) }
        let widthAfterLast = Int(clamping: last - base + 1)
        return max(0, min(byCount, limit - widthAfterLast))
    }

    /// Removes the entry for `seq`; returns what it held.
    @discardableResult
    mutating func removeValue(forKey seq: UInt64) -> Entry? {
        guard seq >= base, seq - base < UInt64(span) else { return nil }
        let index = slot(Int(seq - base))
        guard slots[index].occupied else { return nil }
        var old: Entry? = nil
        swap(&old, &slots[index].entry)  // moved out, not copied
        slots[index].occupied = false
        count -= 1
        trim()
        return old
    }

    /// Drops every entry and the storage.
    mutating func removeAll() { self = InFlightWindow() }

    /// Every entry, in sequence order.
    func forEach(_ body: (UInt64, Entry) -> Void) {
        for offset in 0..<span where slots[slot(offset)].occupied {
            if let entry = slots[slot(offset)].entry { body(base + UInt64(offset), entry) }
        }
    }

    private func slot(_ offset: Int) -> Int { (head + offset) & (slots.count - 1) }

    private mutating func insert(_ entry: consuming Entry, at seq: UInt64) {
        if count == 0 {
            base = seq
            head = 0
            span = 0
        }
        if seq >= base && seq - base >= UInt64(span) {
            // Past the newest (how deliveries are numbered): slots outside the span are empty,
            // so the entry is new — no look at what the slot held (a copy of a whole entry).
            let needed = Int(seq - base) + 1
            reserve(needed)
            span = needed
            count += 1
            let index = slot(Int(seq - base))
            slots[index].entry = consume entry
            slots[index].occupied = true
            return
        }
        if seq < base {
            // Below the window (not how sequence numbers are handed out, but kept correct).
            let gap = Int(base - seq)
            reserve(span + gap)
            head = (head - gap) & (slots.count - 1)
            base = seq
            span += gap
        }
        let index = slot(Int(seq - base))
        if !slots[index].occupied { count += 1 }
        slots[index].entry = entry
        slots[index].occupied = true
    }

    /// Advances past acknowledged entries at either end.
    private mutating func trim() {
        while span > 0, !slots[head].occupied {
            head = (head + 1) & (slots.count - 1)
            base += 1
            span -= 1
        }
        while span > 0, !slots[slot(span - 1)].occupied { span -= 1 }
    }

    /// Makes room for `needed` consecutive slots (a power of two, at least 8), keeping the
    /// entries at their offsets from `base`.
    private mutating func reserve(_ needed: Int) {
        guard needed > slots.count else { return }
        var size = max(8, slots.count)
        while size < needed { size *= 2 }
        var grown = [Slot](repeating: Slot(), count: size)
        for offset in 0..<span where slots[slot(offset)].occupied {
            swap(&grown[offset], &slots[slot(offset)])  // moved, not copied
        }
        slots = grown
        head = 0
    }
}
