import CSwitchboardShims
import Glibc

/// A failed system call: the call's name and the `errno` it left.
public struct SystemError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking call: done with a value, or the kernel said "try later".
public enum IOResult<Value> {
    case processed(Value)
    case wouldBlock
}

/// Errnos that can only mean a bug in this process (a descriptor we do not own, a bad pointer).
@inline(__always)
private func isProgrammerError(_ code: Int32) -> Bool {
    code == EBADF || code == EFAULT
}

/// Runs a system call: retries `EINTR`, reports `EAGAIN` as `.wouldBlock`, traps on errnos that
/// mean a bug, and throws `SystemError` carrying the call name for everything else.
@inline(__always)
func systemCall<T: FixedWidthInteger>(
    _ name: StaticString, _ body: () -> T
) throws(SystemError) -> IOResult<T> {
    while true {
        let result = body()
        if result >= 0 { return .processed(result) }
        let code = sb_errno()
        switch code {
        case EINTR: continue
        case EAGAIN: return .wouldBlock
        default:
            if isProgrammerError(code) {
                preconditionFailure("\(name) failed with errno \(code): a descriptor or pointer is wrong")
            }
            throw SystemError(call: "\(name)", errno: code)
        }
    }
}

/// Like `systemCall` for calls that never legitimately return `EAGAIN`.
@inline(__always)
@discardableResult
func blockingCall<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws(SystemError) -> T {
    switch try systemCall(name, body) {
    case .processed(let value): return value
    case .wouldBlock: throw SystemError(call: "\(name)", errno: EAGAIN)
    }
}

/// Closes a descriptor this process owns. `EINTR` on close is not retried (Linux has already
/// released the descriptor); any other failure means a bug.
func closeDescriptor(_ fd: Int32) {
    if Glibc.close(fd) != 0 {
        let code = sb_errno()
        precondition(code != EBADF, "close(\(fd)): descriptor was not open")
    }
}

/// Nanoseconds on the monotonic clock (for measuring durations).
public func monotonicNanoseconds() -> UInt64 { sb_monotonic_ns() }
