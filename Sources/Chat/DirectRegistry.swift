import Reactor
import Store
import Wire

/// The registry loop's part of direct delivery (PROTOCOL.md section 20.8). A device's copies all
/// pass its registry loop, which keeps their order: a copy goes to the device's session, or to the
/// store when the device is not connected or earlier copies are on their way there; and while
/// copies offered to a session that has since left are not all accounted for (taken, or given
/// back to be stored), later copies wait here so they cannot overtake them.
struct DirectLedger {
    var offered: UInt64 = 0
    var returned: UInt64 = 0
    /// Known once the session has left: how many it took and did not give back.
    var kept: UInt64?

    /// Copies that may still come back from a session that left.
    var outstanding: UInt64? { kept.map { offered - returned - $0 } }
}

/// A device's registered session, and the ledger of direct copies offered to it. When the
/// session leaves or is replaced its ledger moves to `LoopRoutes.directLedgers` until every copy
/// is accounted for, so that in the steady state (one session, nothing outstanding elsewhere) a
/// copy costs one lookup here; the other tables are empty and not consulted.
struct RegistryEntry {
    var loop: Int
    var serial: UInt64
    /// The registered session's ledger without `kept` (known only once it left): 32 bytes per
    /// connected device, 40 with its slot's key in the registry's `IDMap`.
    var offered: UInt64 = 0
    var returned: UInt64 = 0

    var ledger: DirectLedger { DirectLedger(offered: offered, returned: returned) }
}

extension LoopRoutes {
    func routeDirect(_ copy: DirectCopy) {
        let device = copy.device
        if let index = offerTarget(device) {
            offer(.directOffer(copy, serial: registry[at: index].serial), at: index)
        } else if !waitingDirect.isEmpty, waitingDirect[device] != nil {
            waitingDirect[device]!.append(copy)
        } else if awaitsReturns(device) {
            waitingDirect[device] = [copy]
        } else {
            storeDirect(copy)
        }
    }

    /// The registry entry of `device` when a copy may go to its session now: the device is
    /// connected, no earlier copies wait here or are on their way to the store, and no session
    /// that left may still give copies back. In the steady state, one lookup.
    private func offerTarget(_ device: UInt64) -> IDMap<RegistryEntry>.Index? {
        guard waitingDirect.isEmpty || waitingDirect[device] == nil, storingDirect.isEmpty || storingDirect[device] == nil,
            let index = registry.index(forKey: device), !awaitsReturns(device)
        else { return nil }
        return index
    }

    /// Sends an offer to the session of the entry at `index`, counting it in its ledger.
    private func offer(_ message: consuming DeliveryRouter.Message, at index: IDMap<RegistryEntry>.Index) {
        registry[at: index].offered += 1
        router.send(message, toLoop: registry[at: index].loop)
    }

    /// A delivery receipt that also settles its message (`copy.origin`). When the message's
    /// sending session is the device's registered one and the receipt can be offered to it now,
    /// both travel in one message; otherwise the settlement goes to the sending session and the
    /// receipt is routed like any copy.
    func routeSettlingReceipt(_ copy: DirectCopy) {
        guard let origin = copy.origin else { return routeDirect(copy) }
        if let index = offerTarget(copy.device), registry[at: index].serial == origin.serial {
            offer(.directOfferSettling(copy, serial: origin.serial), at: index)
            return
        }
        router.settle(copy, .delivered(account: copy.delivery.fromAccount, device: copy.delivery.fromDevice))
        var receipt = copy
        receipt.origin = nil
        routeDirect(receipt)
    }

    func directReturned(_ copy: DirectCopy, from serial: UInt64) {
        storeDirect(copy)
        if registry[copy.device]?.serial == serial {
            registry[copy.device]!.returned += 1
        } else {
            directLedgers[copy.device]?[serial]?.returned += 1
        }
        settleLedgers(copy.device)
    }

    /// A session left or was replaced: copies offered to it may still come back, so its ledger
    /// stays until they are all accounted for (nothing to keep when none was offered).
    func keepLedger(of entry: RegistryEntry, device: UInt64) {
        guard entry.offered > 0 else { return }
        directLedgers[device, default: SerialMap()][entry.serial] = entry.ledger
    }

    func directSessionLeft(device: UInt64, serial: UInt64, kept: UInt64) {
        directLedgers[device]?[serial]?.kept = kept
        settleLedgers(device)
    }

    /// Whether a session other than the registered one may still give copies back.
    private func awaitsReturns(_ device: UInt64) -> Bool {
        guard !directLedgers.isEmpty, let ledgers = directLedgers[device] else { return false }
        let current = registry[device]?.serial
        var waiting = false
        ledgers.forEach { serial, ledger in
            guard serial != current else { return }
            if ledger.outstanding.map({ $0 > 0 }) ?? (ledger.offered > ledger.returned) { waiting = true }
        }
        return waiting
    }

    /// Forgets sessions that left with every copy accounted for; once nothing can come back,
    /// sends on the copies that waited, in order.
    private func settleLedgers(_ device: UInt64) {
        guard var ledgers = directLedgers[device] else { return }
        var done: [UInt64] = []
        var storedByLeaver = false
        ledgers.forEach { serial, ledger in
            if ledger.outstanding == 0 {
                done.append(serial)
                if (ledger.kept ?? 0) > 0 { storedByLeaver = true }
            }
        }
        for serial in done { ledgers.removeValue(forKey: serial) }
        if ledgers.isEmpty { directLedgers.removeValue(forKey: device) } else { directLedgers[device] = ledgers }
        if storedByLeaver, let entry = registry[device] {
            // A session that left may have stored copies itself after the current one's first
            // pull: let the current one look again before later copies reach it.
            router.send(.pull(serial: entry.serial), toLoop: entry.loop)
        }
        guard !awaitsReturns(device), let waiting = waitingDirect.removeValue(forKey: device) else { return }
        for copy in waiting { routeDirect(copy) }
    }

    /// Stores a direct copy no session could take, answers its sender, and wakes the device as
    /// the stored path would.
    func storeDirect(_ copy: DirectCopy) {
        guard let router, let messages = router.messages else { return }
        storingDirect[copy.device, default: 0] += 1
        let bound = LoopBound(self, on: loop)
        messages.store(copy: copy.delivery, for: copy.device, on: loop) { result in
            let routes = bound.value
            if let left = routes.storingDirect[copy.device], left > 1 {
                routes.storingDirect[copy.device] = left - 1
            } else {
                routes.storingDirect.removeValue(forKey: copy.device)
            }
            router.settle(copy, DirectOutcome(result, device: copy.device))
            if case .success(.stored(let seq)) = result {
                var stored = copy.delivery
                stored.seq = seq
                let isMessage = stored.kind == .message
                routes.handle(.wake(device: copy.device, sender: isMessage ? stored.fromAccount : nil, silent: false, delivery: stored))
            }
        }
    }

    /// A group copy settled after its sender's session closed (it left a tally in the store).
    func groupCopySettledLate(_ copy: Delivery, _ outcome: DirectOutcome) {
        guard let router, let messages = router.messages else { return }
        let delivered: Bool, by: (account: UInt64, device: UInt64)
        switch outcome {
        case .delivered(let account, let device): (delivered, by) = (true, (account, device))
        case .duplicate: (delivered, by) = (true, (0, 0))
        case .stored(_, let seq) where seq != 0: return  // its acknowledgement counts it
        case .stored, .refused, .failed: (delivered, by) = (false, (0, 0))
        }
        messages.countGroupCopy(messageID: copy.messageID, group: copy.groupID, senderAccount: copy.fromAccount,
                                senderDevice: copy.fromDevice, delivered: delivered, by: by,
                                nowMilliseconds: Int64(Authenticator.unixMilliseconds()), on: loop) { receipts in
            router.wake(receipts)
        }
    }
}
