/// A small map from session serial numbers to values that keeps its first entry inline: a device
/// or an account nearly always has one session, and a dictionary of its own for each would cost
/// an allocation per connection. Further entries (a reconnect replacing an older session, an
/// account on several devices) go to an ordinary dictionary.
struct SerialMap<Value> {
    private var firstKey: UInt64 = 0
    private var firstValue: Value?
    private var rest: [UInt64: Value] = [:]

    var isEmpty: Bool { firstValue == nil && rest.isEmpty }

    subscript(key: UInt64) -> Value? {
        get {
            if let value = firstValue, firstKey == key { return value }
            return rest.isEmpty ? nil : rest[key]  // no hashing for the usual single entry
        }
        set {
            if let newValue {
                if firstValue == nil || firstKey == key {
                    firstKey = key
                    firstValue = newValue
                } else {
                    rest[key] = newValue
                }
            } else if firstValue != nil && firstKey == key {
                if let (key, value) = rest.first {
                    rest.removeValue(forKey: key)
                    firstKey = key
                    firstValue = value
                } else {
                    firstValue = nil
                }
            } else if !rest.isEmpty {
                rest.removeValue(forKey: key)
            }
        }
    }

    /// Removes the entry for `key`; returns what it held.
    @discardableResult
    mutating func removeValue(forKey key: UInt64) -> Value? {
        let old = self[key]
        self[key] = nil
        return old
    }

    /// Every entry; the first one first.
    func forEach(_ body: (UInt64, Value) -> Void) {
        if let value = firstValue { body(firstKey, value) }
        for (key, value) in rest { body(key, value) }
    }
}
