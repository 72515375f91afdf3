import Store
import Wire

/// A copy travelling from a sending session to a receiving one without the store (PROTOCOL.md
/// section 20.8): a one-to-one message, or a delivery receipt for one.
struct DirectCopy: Sendable {
    /// The receiving device.
    let device: UInt64
    /// What the device gets; its `seq` is the receiving connection's business (or the store's).
    var delivery: Delivery
    /// The sending session to answer once the copy is acknowledged or stored; nil for receipts
    /// (except on their way in `DeliveryRouter.Message.receiptSettling`, where it names the
    /// session the receipt's message came from).
    var origin: Origin?

    struct Origin: Sendable {
        let serial: UInt64
        let loop: Int
        /// The account the message went to (0 for a group message): the sender keeps its
        /// messages to one account in order.
        let toAccount: UInt64
        /// The group of a group message's copy (0: one-to-one).
        let group: UInt64
    }
}

/// How a directly sent message ended, as its sender's `SendResult` will say.
enum DirectOutcome: Sendable {
    /// The device acknowledged it; it belongs to `account`.
    case delivered(account: UInt64, device: UInt64)
    /// It is durable in the store, in `device`'s queue at `seq` (0: not kept, nothing to wait for).
    case stored(device: UInt64, seq: UInt64)
    /// The store had it from an earlier send of the same id.
    case duplicate
    case refused(ErrorCode, String)
    /// The store failed; the sender should send again.
    case failed

    init(_ result: Result<MessageStore.CopyStorage, StoreError>, device: UInt64) {
        switch result {
        case .success(.stored(let seq)): self = .stored(device: device, seq: seq)
        case .success(.dropped): self = .stored(device: device, seq: 0)
        case .success(.duplicate): self = .duplicate
        case .success(.refused(let code, let why)): self = .refused(code, why)
        case .failure: self = .failed
        }
    }

    func sendResult(messageID: MessageID) -> SendResult {
        switch self {
        case .delivered, .stored: return SendResult(messageID: messageID, code: .ok)
        case .duplicate: return SendResult(messageID: messageID, code: .ok, duplicate: true)
        case .refused(let code, let why): return SendResult(messageID: messageID, code: code, message: why)
        case .failed: return SendResult(messageID: messageID, code: .internalError, message: "the store failed; send again")
        }
    }
}

extension Delivery {
    /// This delivery with an empty ciphertext, made field by field: a copy of the whole delivery
    /// with its ciphertext emptied afterwards would retain and release the ciphertext's storage
    /// (twice per relayed message).
    var withoutCiphertext: Delivery {
        Delivery(seq: seq, messageID: messageID, fromAccount: fromAccount, fromDevice: fromDevice,
                 sentAtMilliseconds: sentAtMilliseconds, ciphertext: [], kind: kind, groupID: groupID, muted: muted,
                 deliveredCount: deliveredCount, deliveredTotal: deliveredTotal)
    }
}
