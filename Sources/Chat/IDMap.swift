/// A hash map from 64-bit ids (devices, sessions, accounts) to values, for the tables a relayed
/// message looks up several times on its way (the registry, sessions by serial, a sender's
/// paths and routes). `Dictionary` hashes every key with SipHash — about 140 instructions a
/// lookup, 5% of the node's instructions when relaying; here a key is spread by one
/// multiplication (Fibonacci hashing) and found by linear probing in tables kept at most 3/4
/// full. The ids are the node's own (sequential rowids and serials) or, for a sender's tables,
/// client-chosen but at most 256 per session (its sends waiting for answers): a client that
/// picks ids landing in one slot makes its own lookups probe up to 256 slots, no more. (A random
/// seed mixed into the key cost 6% more instructions per relayed message: measured, not kept.)
///
/// A class, owned by one object and touched on one loop: values live in raw storage, initialized
/// only in occupied slots (a key of 0 marks an empty one), so a slot costs the key and the value
/// and no optional's tag — the registry's entry stays at 40 bytes a slot, as in a `Dictionary`.
final class IDMap<Value> {
    private var keys: [UInt64] = []
    private var values: UnsafeMutablePointer<Value>?
    /// The entry for key 0, which cannot mark itself in `keys`.
    private var zero: Value?
    private var stored = 0  // entries in the slots
    private var shift: UInt64 = 64

    /// A position of an entry, valid until the map is next changed other than through it.
    struct Index: Equatable {
        fileprivate let slot: Int  // -1: the entry for key 0
    }

    init() {}

    deinit {
        removeAll()
    }

    var count: Int { stored + (zero == nil ? 0 : 1) }
    var isEmpty: Bool { stored == 0 && zero == nil }
    /// Slots allocated (for tests and memory accounting).
    var capacity: Int { keys.count }

    @inline(__always)
    private func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// The slot holding `key`, or nil.
    @inline(__always)
    private func find(_ key: UInt64) -> Int? {
        guard stored > 0 else { return nil }
        let mask = keys.count - 1
        var slot = home(key)
        while true {
            let found = keys[slot]
            if found == key { return slot }
            if found == 0 { return nil }
            slot = (slot + 1) & mask
        }
    }

    func index(forKey key: UInt64) -> Index? {
        if key == 0 { return zero == nil ? nil : Index(slot: -1) }
        return find(key).map { Index(slot: $0) }
    }

    /// The value at `index`.
    subscript(at index: Index) -> Value {
        get { index.slot < 0 ? zero! : values![index.slot] }
        set {
            if index.slot < 0 { zero = newValue } else { values![index.slot] = newValue }
        }
    }

    subscript(key: UInt64) -> Value? {
        get {
            if key == 0 { return zero }
            guard let slot = find(key) else { return nil }
            return values![slot]
        }
        set {
            if let newValue = consume newValue { insert(newValue, forKey: key) } else { removeValue(forKey: key) }
        }
    }

    private func insert(_ value: consuming Value, forKey key: UInt64) {
        if key == 0 {
            zero = consume value
            return
        }
        if let slot = find(key) {
            values![slot] = consume value
            return
        }
        if (stored + 1) * 4 > keys.count * 3 { grow() }
        let mask = keys.count - 1
        var slot = home(key)
        while keys[slot] != 0 { slot = (slot + 1) & mask }
        keys[slot] = key
        (values! + slot).initialize(to: consume value)
        stored += 1
    }

    @discardableResult
    func removeValue(forKey key: UInt64) -> Value? {
        if key == 0 {
            defer { zero = nil }
            return zero
        }
        guard let slot = find(key) else { return nil }
        return remove(at: Index(slot: slot))
    }

    /// Removes the entry at `index` (backward-shift deletion: the entries after it in its probe
    /// run move up, so no tombstones are left).
    @discardableResult
    func remove(at index: Index) -> Value {
        if index.slot < 0 {
            defer { zero = nil }
            return zero!
        }
        let values = values!
        let mask = keys.count - 1
        var hole = index.slot
        let removed = (values + hole).move()
        keys[hole] = 0
        stored -= 1
        var next = (hole + 1) & mask
        while keys[next] != 0 {
            let wanted = home(keys[next])
            // The entry at `next` may fill the hole unless its home lies cyclically in (hole, next].
            let stays = hole <= next ? (hole < wanted && wanted <= next) : (hole < wanted || wanted <= next)
            if !stays {
                keys[hole] = keys[next]
                keys[next] = 0
                (values + hole).moveInitialize(from: values + next, count: 1)
                hole = next
            }
            next = (next + 1) & mask
        }
        return removed
    }

    private func grow() {
        let size = Swift.max(8, keys.count * 2)
        let oldKeys = keys
        let oldValues = values
        keys = [UInt64](repeating: 0, count: size)
        let grown = UnsafeMutablePointer<Value>.allocate(capacity: size)
        values = grown
        shift = UInt64(64 - size.trailingZeroBitCount)
        let mask = size - 1
        for (slot, key) in oldKeys.enumerated() where key != 0 {
            var target = home(key)
            while keys[target] != 0 { target = (target + 1) & mask }
            keys[target] = key
            (grown + target).moveInitialize(from: oldValues! + slot, count: 1)
        }
        oldValues?.deallocate()
    }

    /// Drops every entry and the storage.
    func removeAll() {
        if let values {
            for (slot, key) in keys.enumerated() where key != 0 { (values + slot).deinitialize(count: 1) }
            values.deallocate()
        }
        values = nil
        keys = []
        zero = nil
        stored = 0
        shift = 64
    }

    /// Every entry, in no particular order.
    func forEach(_ body: (UInt64, Value) -> Void) {
        if let zero { body(0, zero) }
        guard let values else { return }
        for (slot, key) in keys.enumerated() where key != 0 { body(key, values[slot]) }
    }
}
