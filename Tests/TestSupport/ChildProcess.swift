import CSwitchboardShims
import Foundation

/// A child process started with `sb_spawn` (posix_spawn), its output read on threads of its own.
///
/// Tests do not use Foundation's `Process`: on Linux its `run()` lists /proc/self/fd to find
/// descriptors to close and copies each entry's whole 256-byte name field, reading past the end of
/// glibc's 32 KiB directory buffer once the test process holds ~1,360 descriptors (suites that
/// open many connections run beside ones that start nodes) — a crash in memcpy inside `run()`.
public final class ChildProcess: Sendable {
    /// Where a child's standard output or error goes.
    public enum Output: Sendable {
        case discard
        case capture
        /// Standard error only: into the same capture as standard output.
        case intoStandardOutput
    }

    public let pid: pid_t
    /// What the reader threads share with the caller; they hold only this, never the
    /// `ChildProcess`, so dropping it kills the child.
    private let state = State()

    /// Starts `path ARGUMENTS`; `input`, when given, is written to its standard input (else
    /// /dev/null), which is then closed.
    public init(_ path: String, _ arguments: [String], input: [UInt8]? = nil,
                standardOutput: Output = .capture, standardError: Output = .capture) throws {
        var outPipe: (read: Int32, write: Int32)?
        var errPipe: (read: Int32, write: Int32)?
        var inPipe: (read: Int32, write: Int32)?
        do {
            if standardOutput != .discard { outPipe = try Self.makePipe() }
            if standardError == .capture { errPipe = try Self.makePipe() }
            if input != nil { inPipe = try Self.makePipe() }
        } catch {
            for pipe in [outPipe, errPipe, inPipe] { if let pipe { close(pipe.read); close(pipe.write) } }
            throw error
        }
        let errTarget = standardError == .intoStandardOutput ? outPipe?.write : errPipe?.write
        var cArguments: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        let spawned = sb_spawn(path, &cArguments, nil, inPipe?.read ?? -1, outPipe?.write ?? -1, errTarget ?? -1)
        let spawnErrno = errno
        for end in [outPipe?.write, errPipe?.write, inPipe?.read] { if let end { close(end) } }
        guard spawned > 0 else {
            for end in [outPipe?.read, errPipe?.read, inPipe?.write] { if let end { close(end) } }
            throw BlockingSocket.Failure(description: "cannot start \(path): \(String(cString: strerror(spawnErrno)))")
        }
        pid = spawned
        if let outPipe { state.startReader(outPipe.read, standardError: false) }
        if let errPipe { state.startReader(errPipe.read, standardError: true) }
        if let inPipe, let input {
            sb_ignore_sigpipe()  // a child that exits without reading its input fails the write, not us
            Thread { Self.writeAll(input, to: inPipe.write) }.start()
        }
    }

    public var standardOutput: [UInt8] { state.bytes(standardError: false) }
    public var standardError: [UInt8] { state.bytes(standardError: true) }
    public var isRunning: Bool { state.status(of: pid) == nil }

    /// Sends `number` unless the child has already been reaped (its pid may be someone else's).
    public func signal(_ number: Int32) { state.signal(pid, number, unlessReaped: pid) }

    /// Waits for the child to exit and for its captured output to end (bounded by the same
    /// timeout); nil if it is still running. The exit status, or 128 + the signal that ended it.
    public func waitForExit(timeoutMilliseconds: Int = 10_000) -> Int32? {
        state.waitForExit(pid, until: Date(timeIntervalSinceNow: Double(timeoutMilliseconds) / 1000))
    }

    /// SIGKILL to the child's process group (it leads one of its own, so whatever it started
    /// holding its output goes too) and wait.
    public func terminate() {
        state.signal(-pid, SIGKILL, unlessReaped: pid)
        _ = waitForExit(timeoutMilliseconds: 30_000)
    }

    deinit { terminate() }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0, errno == EINTR { continue }
            if written <= 0 { break }
            offset += written
        }
        close(fd)
    }

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw BlockingSocket.Failure(description: "pipe: \(String(cString: strerror(errno)))")
        }
        // Close-on-exec for any other way of starting a program; sb_spawn closes them anyway.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }
}

/// A child's exit status and captured output.
private final class State: @unchecked Sendable {
    // `@unchecked Sendable`: every stored property is only touched holding `lock`.
    private let lock = NSCondition()
    private var exitStatus: Int32?
    private var out: [UInt8] = []
    private var err: [UInt8] = []
    private var openReaders = 0

    func bytes(standardError: Bool) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        return standardError ? err : out
    }

    func status(of pid: pid_t) -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        return reapLocked(pid)
    }

    /// Sends `number` to `target` (a pid, or minus a process group) while `pid` is not reaped.
    func signal(_ target: pid_t, _ number: Int32, unlessReaped pid: pid_t) {
        lock.lock()
        defer { lock.unlock() }
        if reapLocked(pid) == nil { kill(target, number) }
    }

    func waitForExit(_ pid: pid_t, until deadline: Date) -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        while reapLocked(pid) == nil {
            guard Date() < deadline else { return nil }
            _ = lock.wait(until: min(deadline, Date(timeIntervalSinceNow: 0.005)))
        }
        while openReaders > 0, lock.wait(until: deadline) {}
        return exitStatus
    }

    /// The exit status once reaped; holding `lock`.
    private func reapLocked(_ pid: pid_t) -> Int32? {
        if let exitStatus { return exitStatus }
        var raw: Int32 = 0
        let reaped = waitpid(pid, &raw, WNOHANG)
        if reaped == -1, errno == ECHILD {
            // Reaped by someone else: gone, status unknown.
            exitStatus = -1
            return exitStatus
        }
        guard reaped == pid else { return nil }
        let signal = raw & 0x7f
        exitStatus = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
        return exitStatus
    }

    func startReader(_ fd: Int32, standardError: Bool) {
        lock.lock()
        openReaders += 1
        lock.unlock()
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
                lock.lock()
                if standardError { err += buffer[0..<count] } else { out += buffer[0..<count] }
                lock.unlock()
            }
            close(fd)
            lock.lock()
            openReaders -= 1
            lock.broadcast()
            lock.unlock()
        }.start()
    }
}
