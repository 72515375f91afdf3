import CSwitchboardShims
import Foundation
import Testing
import TestSupport

/// The tests' process launcher: children start while the test process holds thousands of
/// descriptors (where Foundation's `Process.run()` crashed), inherit none of them, and report
/// output, input and exit status faithfully.
@Suite struct ChildProcessTests {
    @Test func startsBesideThousandsOfDescriptorsAndPassesNoneOfThem() throws {
        try #require(sb_raise_nofile_limit() >= 4_000, "room for 3,000 descriptors beside the other suites")
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for _ in 0..<3_000 {
            let fd = open("/dev/null", O_RDONLY)
            try #require(fd >= 0)
            held.append(fd)
        }
        for _ in 0..<20 {
            // The shell's own descriptors: 0, 1, 2 and the one `ls` reads the directory with.
            let (status, text) = try runTool("/bin/sh", ["-c", "ls /proc/self/fd"])
            #expect(status == 0)
            let listed = text.split(separator: "\n").compactMap { Int($0) }
            #expect(listed.allSatisfy { $0 <= 3 }, "inherited: \(listed)")
            #expect(Set(listed).isSuperset(of: [0, 1, 2]))
        }
    }

    @Test func inputOutputAndExitStatus() throws {
        let (status, echoed) = try runTool("/bin/cat", [], input: Array("to and fro".utf8))
        #expect(status == 0)
        #expect(echoed == "to and fro")

        let split = try ChildProcess("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(split.waitForExit() == 3)
        #expect(String(decoding: split.standardOutput, as: UTF8.self) == "out\n")
        #expect(String(decoding: split.standardError, as: UTF8.self) == "err\n")

        let missing = try runTool("/bin/sh", ["-c", "exec /nonexistent/tool"])
        #expect(missing.0 == 127)
        #expect(throws: (any Error).self) { try ChildProcess("/nonexistent/tool", []) }
    }

    @Test func signalsEndTheChildAndTheStatusSaysWhich() throws {
        let sleeper = try ChildProcess("/bin/sleep", ["30"])
        #expect(sleeper.isRunning)
        #expect(sleeper.waitForExit(timeoutMilliseconds: 50) == nil)
        sleeper.signal(SIGTERM)
        #expect(sleeper.waitForExit() == 128 + SIGTERM)
        #expect(!sleeper.isRunning)
        sleeper.signal(SIGKILL)  // reaped: no signal goes to a pid someone else may hold now
        #expect(sleeper.waitForExit() == 128 + SIGTERM)
    }

    @Test func droppingTheLastReferenceKillsAndReapsTheChild() throws {
        var sleeper: ChildProcess? = try ChildProcess("/bin/sleep", ["30"])
        let pid = try #require(sleeper?.pid)
        withExtendedLifetime(sleeper) { #expect(kill(pid, 0) == 0) }
        sleeper = nil
        // Killed and reaped: no such process (not even a zombie).
        #expect(kill(pid, 0) == -1 && errno == ESRCH)
    }
}
