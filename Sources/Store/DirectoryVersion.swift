import Synchronization

/// Counts changes to what decides where a one-to-one message may go without the store: device
/// lists (registration, added and removed devices) and mutes. Store jobs bump it on the store
/// thread as they make such a change; loops compare it with the version a cached answer was read
/// at (PROTOCOL.md section 20.8), so a stale cache sends the message the stored way.
public final class DirectoryVersion: Sendable {
    private let counter = Atomic<UInt64>(0)

    public init() {}

    /// The current version. Any thread.
    public var current: UInt64 { counter.load(ordering: .acquiring) }

    /// Store thread only, inside the job making the change.
    func bump() { counter.add(1, ordering: .releasing) }
}
