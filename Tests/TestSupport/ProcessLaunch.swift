import Foundation

/// Starts a child process with every other launch in the test process held back: Foundation's
/// `Process.run()` on Linux is not safe to call from several threads at once (seen crashing in
/// memcpy inside `run()` when suites running in parallel started processes together).
public func launch(_ process: Process) throws {
    launchLock.lock()
    defer { launchLock.unlock() }
    try process.run()
}

private let launchLock = NSLock()
