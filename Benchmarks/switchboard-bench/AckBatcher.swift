import Reactor
import SwitchboardClient

/// The sequence numbers a bench client owes the node, sent as one Ack once `batch` have gathered
/// or 100 ms after the first, whichever comes first: a trickle of deliveries is still acknowledged
/// well inside the node's one-second deadline for direct copies (PROTOCOL.md section 20.8), so
/// none goes to the store because the client sat on it. Loop thread only.
final class AckBatcher {
    static let flushMilliseconds = 100
    let batch: Int
    unowned let loop: EventLoop
    private var pending: [UInt64] = []
    private var flushArmed = false

    init(batch: Int, loop: EventLoop) {
        self.batch = max(1, batch)
        self.loop = loop
    }

    func add(_ seq: UInt64, on client: ClientConnection) {
        pending.append(seq)
        if pending.count >= batch {
            flush(client)
        } else if !flushArmed {
            flushArmed = true
            _ = loop.scheduleTimer(in: AckBatcher.flushMilliseconds) { [weak self, weak client] in
                guard let self else { return }
                self.flushArmed = false
                if let client { self.flush(client) }
            }
        }
    }

    func flush(_ client: ClientConnection) {
        guard !pending.isEmpty else { return }
        client.send(.ack(seqs: pending))
        pending.removeAll(keepingCapacity: true)
    }
}
