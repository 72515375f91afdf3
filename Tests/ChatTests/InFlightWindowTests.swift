import Testing
import Wire

@testable import Chat

/// The delivery window against a dictionary doing the same operations: sequence numbers handed
/// out in order, acknowledged out of order, entries replaced, and now and then one below the window.
@Suite struct InFlightWindowTests {
    /// A small deterministic generator (the test must not depend on the run).
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    /// The paths the random test reaches rarely: a window sliding far enough that the ring's
    /// head wraps many times, growing while it is wrapped, and entries inserted below the window
    /// with the head at 0 (a negative wrap) and with growth.
    @Test func slidesWrapsGrowsAndTakesEntriesBelowItsBase() {
        var window = InFlightWindow<UInt64>()
        var model: [UInt64: UInt64] = [:]
        func check(_ what: String) {
            #expect(window.count == model.count, "\(what)")
            var seen: [UInt64] = []
            window.forEach { seq, value in
                seen.append(seq)
                #expect(value == seq &* 3, "\(what): value of \(seq)")
            }
            #expect(seen == model.keys.sorted(), "\(what)")
        }
        func put(_ seq: UInt64) { window[seq] = seq &* 3; model[seq] = seq &* 3 }
        // Slide a window of 20 over 1,000 numbers, acknowledging the oldest: the head wraps ~60 times.
        var next: UInt64 = 1_000
        for _ in 0..<20 { put(next); next += 1 }
        for step in 0..<1_000 {
            let oldest = next - 20
            #expect(window.removeValue(forKey: oldest) == model.removeValue(forKey: oldest))
            put(next); next += 1
            if step % 50 == 0 { check("sliding, step \(step)") }
        }
        // Grow to 100 entries while the head is somewhere inside the ring.
        for _ in 0..<80 { put(next); next += 1 }
        check("grown while wrapped")
        // Empty it, then start over so the head is 0, and insert below the base: first a small
        // gap (a negative wrap within the storage), then one wider than the storage (growth).
        for seq in model.keys.sorted() { #expect(window.removeValue(forKey: seq) == model.removeValue(forKey: seq)) }
        check("emptied")
        for seq: UInt64 in 5_000..<5_004 { put(seq) }
        put(4_998)
        check("below the base, wrapped")
        put(4_900)
        check("below the base, grown")
        #expect(window[4_999] == nil && window[4_950] == nil)
        for seq in model.keys.sorted().reversed() { #expect(window.removeValue(forKey: seq) == model.removeValue(forKey: seq)) }
        check("emptied from the newest")
        #expect(window.isEmpty)
    }

    @Test func behavesLikeADictionaryUnderRandomAcknowledgements() {
        var window = InFlightWindow<String>()
        var model: [UInt64: String] = [:]
        var random = Generator(state: 42)
        var nextSeq: UInt64 = 100  // leaves room for numbers below the first
        for step in 0..<20_000 {
            switch random.next(10) {
            case 0..<4:  // deliver
                window[nextSeq] = "d\(nextSeq)"
                model[nextSeq] = "d\(nextSeq)"
                nextSeq += 1
            case 4..<8:  // acknowledge one of the last 40
                let seq = nextSeq - 1 - UInt64(random.next(40))
                #expect(window.removeValue(forKey: seq) == model.removeValue(forKey: seq))
            case 8:  // replace (a copy on its way to the store)
                let seq = nextSeq - 1 - UInt64(random.next(40))
                if model[seq] != nil {
                    window[seq] = "s\(seq)"
                    model[seq] = "s\(seq)"
                }
            default:  // re-insert below the window, or remove with the setter
                let seq = nextSeq - 1 - UInt64(random.next(60))
                if random.next(2) == 0 {
                    window[seq] = "r\(seq)"
                    model[seq] = "r\(seq)"
                } else {
                    window[seq] = nil
                    model[seq] = nil
                }
            }
            #expect(window.count == model.count, "step \(step)")
            if step % 97 == 0 {
                var seen: [(UInt64, String)] = []
                window.forEach { seen.append(($0, $1)) }
                #expect(seen.map(\.0) == model.keys.sorted(), "step \(step): in sequence order")
                #expect(seen.allSatisfy { model[$0.0] == $0.1 })
            }
        }
        for seq in model.keys { #expect(window[seq] == model[seq]) }
        #expect(window[nextSeq] == nil)
        #expect(window[0] == nil)
    }

    @Test func roomIsBoundedByEntriesAndBySpan() {
        var window = InFlightWindow<Int>()
        #expect(window.room(entries: 256, span: 1_024, last: 0) == 256)
        window[1] = 1  // never acknowledged
        for seq in UInt64(2)...1_000 {
            window[seq] = Int(seq)
            window.removeValue(forKey: seq)
        }
        #expect(window.count == 1 && window.room(entries: 256, span: 1_024, last: 1_000) == 24)
        for seq in UInt64(1_001)...1_024 { window[seq] = 0 }
        #expect(window.room(entries: 256, span: 1_024, last: 1_024) == 0, "1,024 numbers from the oldest")
        #expect(window.capacity <= 2_048, "storage follows the span, and the span is bounded")
        window.removeValue(forKey: 1)
        #expect(window.room(entries: 256, span: 1_024, last: 1_024) == 256 - 24)
    }

    @Test func anEmptiedWindowStartsAgainWhereverTheNextNumberIs() {
        var window = InFlightWindow<Int>()
        for seq in UInt64(1)...100 { window[seq] = Int(seq) }
        #expect(window.capacity == 128)
        for seq in UInt64(1)...100 { window.removeValue(forKey: seq) }
        #expect(window.isEmpty)
        window[1_000_000] = 7  // no gap of a million slots is kept
        #expect(window[1_000_000] == 7 && window.count == 1 && window.capacity == 128)
        window.removeAll()
        #expect(window.capacity == 0 && window[1_000_000] == nil)
    }
}

@Suite struct RecentSendsTests {
    /// Sixteen pseudo-random bytes, as a client's ids are.
    static func id(_ n: Int) -> MessageID {
        var random = InFlightWindowTests.Generator(state: UInt64(n) &+ 1)
        return MessageID((0..<16).map { _ in UInt8(random.next(256)) })
    }

    /// Against a plain list of the last 64 ids, with records, updates and forgets at random, and
    /// ids drawn from a small pool whose folded words share index slots (long probe runs).
    @Test func behavesLikeAListOfTheLastSixtyFourUnderRandomUse() {
        var recent = RecentSends()
        var model: [(id: MessageID, path: RecentSends.Path)?] = []  // oldest first; nil = forgotten
        var random = InFlightWindowTests.Generator(state: 7)
        // The folded word's low 7 bits pick the slot: vary only bits above them (the second
        // word from its second byte on), so all ids share three home slots.
        let pool = (0..<300).map { n -> MessageID in
            var bytes = [UInt8](repeating: 0, count: 16)
            bytes[0] = UInt8(n % 3)
            bytes[9] = UInt8(truncatingIfNeeded: n)
            bytes[10] = UInt8(truncatingIfNeeded: n >> 8)
            return MessageID(bytes)
        }
        func modelPath(_ id: MessageID) -> RecentSends.Path? {
            model.last { $0?.id == id }??.path
        }
        for step in 0..<20_000 {
            let id = pool[random.next(pool.count)]
            switch random.next(4) {
            case 0, 1:
                let path = RecentSends.Path.directPending(account: UInt64(step))
                let known = modelPath(id) != nil
                recent.record(id, path, absent: !known)
                if let at = model.lastIndex(where: { $0?.id == id }) {
                    model[at] = (id, path)
                } else {
                    model.append((id, path))
                    if model.count > RecentSends.capacity { model.removeFirst() }
                }
            case 2:
                recent.forget(id)
                if let at = model.lastIndex(where: { $0?.id == id }) { model[at] = nil }
            default:
                break
            }
            #expect(recent.path(of: id) == modelPath(id), "step \(step)")
        }
        for id in pool { #expect(recent.path(of: id) == modelPath(id)) }
    }

    @Test func remembersTheLastSixtyFourIdsAndForgetsOlderOnes() {
        var recent = RecentSends()
        for n in 0..<(RecentSends.capacity + 13) {
            #expect(recent.path(of: Self.id(n)) == nil)
            recent.record(Self.id(n), .directPending(account: UInt64(n)), absent: true)
            #expect(recent.path(of: Self.id(n)) == .directPending(account: UInt64(n)), "id \(n), found at any position")
        }
        for n in 0..<13 { #expect(recent.path(of: Self.id(n)) == nil, "id \(n) is older than the last 64") }
        for n in 13..<(RecentSends.capacity + 13) { #expect(recent.path(of: Self.id(n)) != nil) }
        recent.record(Self.id(20), .directDone)
        #expect(recent.path(of: Self.id(20)) == .directDone)
        recent.forget(Self.id(20))
        #expect(recent.path(of: Self.id(20)) == nil)
    }
}
