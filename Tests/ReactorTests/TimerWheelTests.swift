import Testing

@testable import Reactor

/// Records the tags of fired timers in order.
private final class Recorder: TimerTarget {
    var fired: [Int] = []
    var onFire: ((Int) -> Void)?
    func timerFired(tag: Int) {
        fired.append(tag)
        onFire?(tag)
    }
}

@Suite struct TimerWheelTests {
    @Test func firesInDeadlineOrderWithTiesInSchedulingOrder() {
        let wheel = TimerWheel(slots: 64)
        let recorder = Recorder()
        _ = wheel.schedule(atTick: 5, target: recorder, tag: 50)
        _ = wheel.schedule(atTick: 3, target: recorder, tag: 30)
        _ = wheel.schedule(atTick: 5, target: recorder, tag: 51)
        _ = wheel.schedule(atTick: 1, target: recorder, tag: 10)
        wheel.advance(to: 2)
        #expect(recorder.fired == [10])
        wheel.advance(to: 10)
        #expect(recorder.fired == [10, 30, 50, 51])
        #expect(wheel.count == 0)
    }

    @Test func doesNotFireBeforeItsTick() {
        let wheel = TimerWheel(slots: 8)
        let recorder = Recorder()
        // Same slot as tick 3, two revolutions later.
        _ = wheel.schedule(atTick: 19, target: recorder, tag: 19)
        wheel.advance(to: 3)
        wheel.advance(to: 11)
        #expect(recorder.fired.isEmpty)
        wheel.advance(to: 18)
        #expect(recorder.fired.isEmpty)
        wheel.advance(to: 19)
        #expect(recorder.fired == [19])
    }

    @Test func cancelledTimersNeverFireAndStaleHandlesAreInert() {
        let wheel = TimerWheel(slots: 16)
        let recorder = Recorder()
        let a = wheel.schedule(atTick: 4, target: recorder, tag: 1)
        let b = wheel.schedule(atTick: 4, target: recorder, tag: 2)
        #expect(wheel.cancel(a))
        #expect(!wheel.cancel(a))
        wheel.advance(to: 4)
        #expect(recorder.fired == [2])
        #expect(!wheel.cancel(b), "fired timers cannot be cancelled")
        // The slab slot of `a` is reused; the old handle must not cancel the new timer.
        let c = wheel.schedule(atTick: 6, target: recorder, tag: 3)
        #expect(c.index == a.index || c.index == b.index)
        #expect(!wheel.cancel(a))
        wheel.advance(to: 6)
        #expect(recorder.fired == [2, 3])
    }

    @Test func callbackMayCancelAnotherTimerExpiringInTheSameAdvance() {
        let wheel = TimerWheel(slots: 16)
        let recorder = Recorder()
        _ = wheel.schedule(atTick: 2, target: recorder, tag: 1)
        let second = wheel.schedule(atTick: 3, target: recorder, tag: 2)
        // Both expire in one advance; the first cancels the second and schedules a third.
        recorder.onFire = { tag in
            if tag == 1 {
                wheel.cancel(second)
                _ = wheel.schedule(atTick: 7, target: recorder, tag: 3)
            }
        }
        wheel.advance(to: 5)
        #expect(recorder.fired == [1])
        #expect(wheel.count == 1)
        wheel.advance(to: 7)
        #expect(recorder.fired == [1, 3])
    }

    @Test func jumpLongerThanARevolutionFiresEverythingDueInOrder() {
        let wheel = TimerWheel(slots: 8)
        let recorder = Recorder()
        for tick in [40, 3, 17, 9, 100] {
            _ = wheel.schedule(atTick: UInt64(tick), target: recorder, tag: tick)
        }
        wheel.advance(to: 50)
        #expect(recorder.fired == [3, 9, 17, 40])
        wheel.advance(to: 100)
        #expect(recorder.fired == [3, 9, 17, 40, 100])
    }

    @Test func manyTimersWithRandomCancellations() {
        let wheel = TimerWheel(slots: 256)
        let recorder = Recorder()
        var generator = SystemRandomNumberGenerator()
        var handles: [(TimerHandle, Int)] = []
        for tag in 0..<100_000 {
            let tick = UInt64.random(in: 1...5_000, using: &generator)
            handles.append((wheel.schedule(atTick: tick, target: recorder, tag: tag), Int(tick)))
        }
        var expected: [Int: Int] = [:]  // tag -> tick
        for (index, entry) in handles.enumerated() {
            if index % 3 == 0 {
                #expect(wheel.cancel(entry.0))
            } else {
                expected[index] = entry.1
            }
        }
        #expect(wheel.count == expected.count)
        var tick: UInt64 = 0
        while tick < 5_000 {
            tick += UInt64.random(in: 1...40, using: &generator)
            wheel.advance(to: tick)
        }
        #expect(recorder.fired.count == expected.count)
        #expect(Set(recorder.fired) == Set(expected.keys))
        let ticks = recorder.fired.map { expected[$0]! }
        #expect(ticks == ticks.sorted(), "timers fire in deadline order")
        #expect(wheel.count == 0)
        #expect(wheel.ticksUntilNextSlot() == nil)
    }
}
