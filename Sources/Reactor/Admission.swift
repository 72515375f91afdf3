/// A loop's bound on connections still opening (accepted by an admitting listener, their
/// protocol's handshake and login not finished): at `maxOpeningConnections` the admitting
/// listeners stop accepting and the kernel's backlog holds new connections. While they wait, an
/// opening connection that waits on its peer and has sent nothing for
/// `openingGraceUnderPressureMilliseconds` is closed (`.deadline`), so peers that open
/// connections and stall cannot keep the slots — and everyone else out — until the handshake
/// deadline. Connections waiting on the node's own work (a login in the store) are left alone.
/// Loop thread only (docs/decisions/0007).
final class Admission {
    private unowned let loop: EventLoop
    /// Connections counted as opening now.
    private(set) var opening = 0
    /// Opening connections in the order they were accepted; entries of connections that have
    /// since opened or closed are dropped lazily (the list is compacted once it holds more than
    /// twice the opening count, and at every relief pass).
    private var queue: [Connection] = []
    private var waiting: [Listener] = []
    private var reliefArmed = false

    init(loop: EventLoop) { self.loop = loop }

    var admits: Bool {
        let limit = loop.configuration.maxOpeningConnections
        return limit == 0 || opening < limit
    }

    func started(_ connection: Connection) {
        opening += 1
        queue.append(connection)
        if queue.count > 2 * opening + 64 { compact() }
    }

    func finished() {
        opening -= 1
        guard !waiting.isEmpty, admits else { return }
        let listeners = waiting
        waiting.removeAll()
        for listener in listeners { listener.admissionReopened() }
    }

    /// A closed listener waits no more (and pressure may be over).
    func stopWaiting(_ listener: Listener) {
        waiting.removeAll { $0 === listener }
    }

    /// `listener` stopped accepting; it hears `admissionReopened()` when a slot frees.
    func wait(_ listener: Listener) {
        loop.counters.bump(loop.counters.admissionPauses)
        waiting.append(listener)
        armRelief(in: Admission.reliefIntervalMilliseconds)
    }

    static let reliefIntervalMilliseconds = 100

    private func armRelief(in milliseconds: Int) {
        guard !reliefArmed else { return }
        reliefArmed = true
        loop.scheduleTimer(in: milliseconds) { [weak self] in self?.relieve() }
    }

    /// Under pressure (listeners waiting): closes every opening connection stalled on its peer
    /// for the grace, oldest first — all of them, not only as many as free one slot: each had
    /// the grace — and runs again while listeners still wait. At most
    /// `2 × maxOpeningConnections + 64` entries per pass.
    private func relieve() {
        reliefArmed = false
        guard !waiting.isEmpty else { return }
        let grace = UInt64(loop.configuration.openingGraceUnderPressureMilliseconds)
        let stalled = queue.filter { $0.openingStalled(for: grace) }
        for connection in stalled {
            loop.counters.bump(loop.counters.openingEvictions)
            connection.close(.deadline)  // frees its slot: the listeners may resume
        }
        compact()
        if !waiting.isEmpty { armRelief(in: Admission.reliefIntervalMilliseconds) }
    }

    private func compact() {
        queue.removeAll { !$0.isOpening }
    }
}
