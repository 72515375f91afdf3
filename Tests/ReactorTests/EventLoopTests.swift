import CSwitchboardShims
import Reactor
import Synchronization
import Testing
import TestSupport

@Suite struct EventLoopTests {
    @Test func timerFiresNoEarlierThanAskedAndRoughlyOnTime() throws {
        let harness = try LoopHarness()
        let loop = harness.group.loops[0]
        let box = ResultBox<UInt64>()
        let started = sb_monotonic_ns()
        loop.execute {
            loop.scheduleTimer(in: 50) { box.set(.success(sb_monotonic_ns())) }
        }
        let firedAt = try box.wait().get()
        let elapsedMs = (firedAt - started) / 1_000_000
        #expect(elapsedMs >= 50)
        #expect(elapsedMs < 1_000, "coarse accuracy on a loaded machine")
    }

    @Test func cancelledTimerDoesNotFireOnTheLoop() throws {
        let harness = try LoopHarness()
        let loop = harness.group.loops[0]
        let fired = Atomic<Int>(0)
        let box = ResultBox<Bool>()
        loop.execute {
            let handle = loop.scheduleTimer(in: 30) { fired.add(1, ordering: .relaxed) }
            loop.scheduleTimer(in: 10) { loop.cancelTimer(handle) }
            loop.scheduleTimer(in: 100) { box.set(.success(true)) }
        }
        _ = try box.wait().get()
        #expect(fired.load(ordering: .relaxed) == 0)
    }

    @Test func executeFromManyThreadsRunsEveryTaskOnTheLoop() throws {
        let harness = try LoopHarness()
        let loop = harness.group.loops[0]
        let count = Atomic<Int>(0)
        let wrongThread = Atomic<Int>(0)
        let threads = 4, perThread = 2_000
        runThreads(threads) { _ in
            for _ in 0..<perThread {
                loop.execute {
                    if !loop.inEventLoop { wrongThread.add(1, ordering: .relaxed) }
                    count.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(waitUntil { count.load(ordering: .relaxed) == threads * perThread })
        #expect(wrongThread.load(ordering: .relaxed) == 0)
    }
}


import Glibc
