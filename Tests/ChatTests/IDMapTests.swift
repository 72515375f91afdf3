import Testing

@testable import Chat

/// `IDMap` against a `Dictionary` doing the same operations: inserts, replacements, removals by
/// key and by index, updates through an index, key 0, and keys chosen to collide.
@Suite struct IDMapTests {
    private func expectSame(_ map: IDMap<Int>, _ model: [UInt64: Int]) {
        #expect(map.count == model.count)
        #expect(map.isEmpty == model.isEmpty)
        var seen: [UInt64: Int] = [:]
        map.forEach { key, value in seen[key] = value }
        #expect(seen == model)
        for (key, value) in model { #expect(map[key] == value) }
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func behavesLikeADictionary(seed: UInt64) {
        var generator = SplitMix(seed: seed)
        let map = IDMap<Int>()
        var model: [UInt64: Int] = [:]
        // Keys from a few ranges: small sequential ids, multiples of a power of two (same low
        // bits), and 0.
        func key() -> UInt64 {
            switch generator.next() % 3 {
            case 0: return generator.next() % 300
            case 1: return (generator.next() % 300) << 40
            default: return generator.next() % 4 == 0 ? 0 : generator.next() % 5_000
            }
        }
        for step in 0..<20_000 {
            let k = key()
            switch generator.next() % 6 {
            case 0, 1:
                map[k] = step
                model[k] = step
            case 2:
                #expect(map.removeValue(forKey: k) == model.removeValue(forKey: k))
            case 3:
                if let index = map.index(forKey: k) {
                    #expect(model[k] != nil)
                    map[at: index] += 1
                    model[k]! += 1
                } else {
                    #expect(model[k] == nil)
                }
            case 4:
                if let index = map.index(forKey: k) {
                    #expect(map.remove(at: index) == model.removeValue(forKey: k))
                }
            default:
                #expect(map[k] == model[k])
            }
            if step % 1_000 == 0 { expectSame(map, model) }
            if step == 10_000 {
                map.removeAll()
                model.removeAll()
            }
        }
        expectSame(map, model)
        for k in Array(model.keys) {
            map[k] = nil
            model[k] = nil
        }
        expectSame(map, model)
        #expect(map.isEmpty)
    }

    /// Values live in raw storage: every one the map held is released — when removed, replaced,
    /// moved by a deletion or a growth, cleared, or when the map goes away.
    @Test func releasesEveryValueItHeld() {
        final class Token {}
        var watched: [() -> Token?] = []
        func token() -> Token {
            let token = Token()
            watched.append { [weak token] in token }
            return token
        }
        do {
            let map = IDMap<Token>()
            for key in UInt64(0)..<500 { map[key] = token() }
            for key in UInt64(0)..<500 where key % 3 == 0 { map[key] = nil }
            for key in UInt64(0)..<500 where key % 3 == 1 { map[key] = token() }  // replaced
            _ = map.remove(at: map.index(forKey: 2)!)
            map.removeAll()
            for key in UInt64(1000)..<1100 { map[key] = token() }
            #expect(map.count == 100)
        }
        #expect(watched.allSatisfy { $0() == nil }, "every value released")
    }

    @Test func growsAndStaysAtMostThreeQuartersFull() {
        let map = IDMap<UInt64>()
        for key in UInt64(1)...10_000 { map[key] = key * 2 }
        #expect(map.count == 10_000)
        #expect(map.capacity >= 10_000 * 4 / 3 && map.capacity <= 32_768)
        for key in UInt64(1)...10_000 where key % 2 == 0 { map[key] = nil }
        #expect(map.count == 5_000)
        for key in UInt64(1)...10_000 { #expect(map[key] == (key % 2 == 0 ? nil : key * 2)) }
    }
}

/// A small deterministic generator (SplitMix64), so a failure repeats.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
