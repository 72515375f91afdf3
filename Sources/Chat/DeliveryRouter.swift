import Reactor
import Store
import Synchronization
import Wire

/// Which loop holds which device's session, kept without locks: the entry for device `d` lives on
/// loop `d % loops` (its registry loop), sessions announce themselves there, and everything
/// addressed to a device travels as a message — to the registry loop, then to the session's
/// loop — through the loops' mailboxes.
public final class DeliveryRouter: Sendable {
    enum Message: Sendable {
        case register(device: UInt64, loop: Int, serial: UInt64)
        /// `keptDirect`: direct copies the session took and did not give back (section 20.8).
        case unregister(device: UInt64, serial: UInt64, keptDirect: UInt64)
        case wake(device: UInt64, sender: UInt64?, silent: Bool, delivery: Delivery?)
        case revoke(device: UInt64)
        case notify(device: UInt64, stanza: Stanza)
        // To an account's registry loop (account % loops):
        case accountOnline(account: UInt64, serial: UInt64, loop: Int)
        case accountOffline(account: UInt64, serial: UInt64, atMilliseconds: UInt64)
        case subscribe(owner: UInt64, serial: UInt64, loop: Int)
        case unsubscribe(owner: UInt64, serial: UInt64)
        case typing(to: UInt64, from: UInt64, device: UInt64, active: Bool)
        case sessionStanza(serial: UInt64, stanza: Stanza)
        // To the session's loop, for the session `serial` (the device's registered one, which the
        // registry loop knows; a session is found by its serial alone):
        case pull(serial: UInt64)
        /// A copy just committed for the device: delivered at once if it is next in line.
        case offer(serial: UInt64, delivery: Delivery)
        case replaced(serial: UInt64)
        case kill(serial: UInt64)
        case stanza(serial: UInt64, stanza: Stanza)
        // Direct delivery (PROTOCOL.md section 20.8):
        /// To the device's registry loop: hand the copy to its session, or store it.
        case direct(DirectCopy)
        /// To the session's loop: the copy for session `serial`.
        case directOffer(DirectCopy, serial: UInt64)
        /// To the registry loop: a copy offered to session `serial` that it could not take, or took
        /// and lost with its connection; store it.
        case directReturned(DirectCopy, serial: UInt64)
        /// To the sending session's loop: how its message ended.
        /// `copy` carries the message's id and sender (for a group message's tally, should the
        /// session have gone) without its ciphertext.
        case directSettled(serial: UInt64, copy: Delivery, toAccount: UInt64, outcome: DirectOutcome)
        /// To the registry loop of a one-to-one message's sending device: the delivery receipt
        /// for it, whose `origin` is the message's, which this acknowledgement also settles. One
        /// message where a settlement and a receipt would be two (`DirectRegistry.swift`).
        case receiptSettling(DirectCopy)
        /// To the session's loop: settle the receipt's message for session `serial`, then take
        /// the receipt.
        case directOfferSettling(DirectCopy, serial: UInt64)
        /// To the next loop: ciphertext storage this loop had to spare (`LoopRoutes.recycle`).
        case spareCiphertexts([[UInt8]])
    }

    private let mailboxes: [Mailbox<Message>]
    private let routes: [LoopBound<LoopRoutes>]
    private let serials = Atomic<UInt64>(0)
    /// Where copies that direct delivery cannot settle are stored; nil turns direct delivery off.
    let messages: MessageStore?

    /// Push notifications for devices that are not connected.
    public struct PushConfiguration: Sendable {
        public let endpoint: PushEndpoint
        public let directory: DeviceDirectory
        public let nodeID: String
        public init(endpoint: PushEndpoint, directory: DeviceDirectory, nodeID: String) {
            self.endpoint = endpoint
            self.directory = directory
            self.nodeID = nodeID
        }
    }

    /// Push outcomes, one set per loop.
    public let pushCounters: [PushCounters]
    /// The group's loops, by id.
    public let loops: [EventLoop]

    /// Call before the group's loops start.
    /// - Parameter messages: the store for copies direct delivery cannot settle (PROTOCOL.md
    ///   section 20.8); without it every message is stored first.
    public init(group: EventLoopGroup, push: PushConfiguration? = nil, messages: MessageStore? = nil) {
        self.messages = messages
        let counters = group.loops.map { _ in PushCounters() }
        pushCounters = counters
        loops = group.loops
        let routes = group.loops.map { loop in
            LoopRoutes(loop: loop, push: push.map {
                PushGateway(loop: loop, endpoint: $0.endpoint, directory: $0.directory, nodeID: $0.nodeID, counters: counters[loop.id])
            })
        }
        self.routes = zip(routes, group.loops).map { LoopBound($0, on: $1) }
        mailboxes = zip(routes, group.loops).map { routes, loop in
            Mailbox(consumer: loop) { message in routes.handle(message) }
        }
        for table in routes { table.router = self }
    }

    func nextSerial() -> UInt64 { serials.add(1, ordering: .relaxed).newValue }

    private func registryLoop(_ device: UInt64) -> Int { Int(device % UInt64(mailboxes.count)) }

    func send(_ message: consuming Message, toLoop loop: Int) { mailboxes[loop].send(message) }

    // MARK: Called by sessions, on their loop

    /// A session may now receive: it joins this loop's tables, the device registry and its
    /// account's presence.
    func sessionOnline(_ session: ServerSession, device: DeviceIdentity, serial: UInt64, loop: EventLoop) {
        let routes = routes(on: loop)
        routes.bySerial[serial] = session
        send(.register(device: device.deviceID, loop: loop.id, serial: serial), toLoop: registryLoop(device.deviceID))
        send(.accountOnline(account: device.accountID, serial: serial, loop: loop.id), toLoop: accountLoop(device.accountID))
    }

    /// The reverse of `sessionOnline`, and the end of the session's presence subscriptions.
    /// - Parameter keptDirect: direct copies the session took and will not give back.
    func sessionOffline(device: DeviceIdentity, serial: UInt64, subscriptions: Set<UInt64>, keptDirect: UInt64, loop: EventLoop) {
        let routes = routes(on: loop)
        routes.bySerial.removeValue(forKey: serial)
        send(.unregister(device: device.deviceID, serial: serial, keptDirect: keptDirect), toLoop: registryLoop(device.deviceID))
        send(.accountOffline(account: device.accountID, serial: serial, atMilliseconds: Authenticator.unixMilliseconds()),
             toLoop: accountLoop(device.accountID))
        for owner in subscriptions { send(.unsubscribe(owner: owner, serial: serial), toLoop: accountLoop(owner)) }
    }

    /// Something new waits for `device` in the store. With a `sender` (a message, not a receipt)
    /// a device that is not connected gets a push notification. With the stored `delivery`, a
    /// connected session can send it without reading it back from the store.
    public func wake(device: UInt64, sender: UInt64? = nil, silent: Bool = false, delivery: Delivery? = nil) {
        send(.wake(device: device, sender: sender, silent: silent, delivery: delivery), toLoop: registryLoop(device))
    }

    /// Hands a copy to its device's session without the store, or stores it when the device
    /// is not connected or copies for it are on their way to the store (section 20.8).
    func direct(_ copy: DirectCopy) { send(.direct(copy), toLoop: registryLoop(copy.device)) }

    /// A delivery receipt that also settles its message (`copy.origin`, if set) as delivered.
    func receiptSettling(_ copy: DirectCopy) { send(.receiptSettling(copy), toLoop: registryLoop(copy.device)) }

    /// Tells the sending session of `copy` (if it has one) how the copy ended.
    func settle(_ copy: DirectCopy, _ outcome: DirectOutcome) {
        guard let origin = copy.origin else { return }
        send(.directSettled(serial: origin.serial, copy: copy.delivery.withoutCiphertext, toAccount: origin.toAccount, outcome: outcome),
             toLoop: origin.loop)
    }

    /// Receipts the store queued: each device is woken with its copy.
    public func wake(_ receipts: [MessageStore.QueuedReceipt]) {
        for receipt in receipts { wake(device: receipt.device, delivery: receipt.delivery) }
    }

    /// `device` was removed from its account: end its session.
    public func revoke(device: UInt64) { send(.revoke(device: device), toLoop: registryLoop(device)) }

    private func accountLoop(_ account: UInt64) -> Int { Int(account % UInt64(mailboxes.count)) }

    /// The session gets `owner`'s presence now and at every change, until it unsubscribes.
    func subscribe(owner: UInt64, serial: UInt64, loop: EventLoop) {
        send(.subscribe(owner: owner, serial: serial, loop: loop.id), toLoop: accountLoop(owner))
    }

    /// A typing indicator for every connected device of `to` (never stored).
    func typing(to: UInt64, from: UInt64, device: UInt64, active: Bool) {
        send(.typing(to: to, from: from, device: device, active: active), toLoop: accountLoop(to))
    }

    /// Sends a stanza to `device` if it is connected (not stored otherwise).
    public func notify(device: UInt64, _ stanza: Stanza) { send(.notify(device: device, stanza: stanza), toLoop: registryLoop(device)) }

    private func routes(on loop: EventLoop) -> LoopRoutes { routes(onLoop: loop.id) }

    /// Loop `id`'s part of the router (its ciphertext pool: `ciphertexts`, `recycle`). On that loop.
    func routes(onLoop id: Int) -> LoopRoutes { routes[id].value }

    /// Gives back a copy session `serial` could not take (or took and lost with its connection):
    /// the registry stores it.
    func returnDirect(_ copy: DirectCopy, from serial: UInt64) {
        send(.directReturned(copy, serial: serial), toLoop: registryLoop(copy.device))
    }
}

/// One loop's part of the router: the sessions on this loop by device, and the registry shard
/// of the devices this loop is the registry loop for. Touched only on its loop.
final class LoopRoutes {
    /// Tells every watcher of `account` its presence now.
    private func announce(_ account: UInt64) {
        guard let router, let state = accounts[account], let watching = watchers[account] else { return }
        let stanza = Stanza.presence(accountID: account, online: !state.sessions.isEmpty, lastSeenMilliseconds: state.lastSeen)
        watching.forEach { serial, loop in router.send(.sessionStanza(serial: serial, stanza: stanza), toLoop: loop) }
    }

    unowned let loop: EventLoop
    /// Strong, set once by the router: the router, its loops and their mailboxes live as long as
    /// the node (loops and their mailboxes already hold each other). A weak reference would give
    /// the router a side table and send every retain and release of it down the runtime's slow
    /// path — 10% of the node's time when relaying.
    var router: DeliveryRouter!
    let push: PushGateway?
    /// Where sessions on this loop copy the ciphertexts of the Sends they read.
    let ciphertexts = ByteArrayPool()
    static let spareBatch = 256

    /// Gives a delivered copy's ciphertext back. Storage travels with messages from the loop that
    /// read them to the loop that delivered them: a loop that delivers more than it reads has
    /// more than it reuses and passes a batch on to the next loop (in turn, so with one loop per
    /// core every pool is fed), where one that reads more would otherwise allocate.
    func recycle(_ ciphertext: inout [UInt8]) {
        ciphertexts.recycle(&ciphertext)
        guard ciphertexts.hasSpare, let router, router.loops.count > 1 else { return }
        router.send(.spareCiphertexts(ciphertexts.takeSpare(LoopRoutes.spareBatch)), toLoop: (loop.id + 1) % router.loops.count)
    }
    /// The registered session of each device this loop is the registry of, with the direct
    /// copies offered to it (`DirectRegistry.swift`).
    let registry = IDMap<RegistryEntry>()
    /// This loop's online sessions by serial. Messages for a device's session name its serial
    /// (the registry entry knows it), so no index by device is kept here.
    let bySerial = IDMap<ServerSession>()
    /// Devices removed while this node runs: a session of theirs that registers later (it was
    /// still logging in at the removal) is closed at once.
    var revoked: Set<UInt64> = []
    /// Registry shard, direct delivery (`DirectRegistry.swift`): copies sent to the store and not
    /// yet back, copies offered to each session and given back, and copies waiting for copies
    /// still out to a session that left — all by device.
    var storingDirect: [UInt64: Int] = [:]
    var directLedgers: [UInt64: SerialMap<DirectLedger>] = [:]
    var waitingDirect: [UInt64: [DirectCopy]] = [:]
    /// Accounts this loop is the registry of: their connected sessions, last seen, watchers.
    var accounts: [UInt64: AccountPresence] = [:]
    /// Of those accounts, the sessions watching them (serial -> loop): apart, because most
    /// accounts have no watcher and every connected account has an entry above.
    var watchers: [UInt64: SerialMap<Int>] = [:]

    /// 32 bytes (loops as Int32 keep the map's inline entry at 24): one per connected account.
    struct AccountPresence {
        var sessions = SerialMap<Int32>()  // serial -> loop
        var lastSeen: UInt64 = 0
    }

    init(loop: EventLoop, push: PushGateway?) {
        self.loop = loop
        self.push = push
    }

    /// `router` is set by `DeliveryRouter.init` before any mailbox can deliver a message.
    func handle(_ message: DeliveryRouter.Message) {
        // The relay path's messages first, without binding the router here (a retain and a
        // release per message; most of them need it only when a session cannot take a copy).
        switch message {
        case .direct(let copy):
            routeDirect(copy)
        case .directOffer(let copy, let serial):
            if let session = bySerial[serial], session.takeDirect(copy) { return }
            router?.returnDirect(copy, from: serial)
        case .directReturned(let copy, let serial):
            directReturned(copy, from: serial)
        case .receiptSettling(let copy):
            routeSettlingReceipt(copy)
        case .directOfferSettling(var copy, let serial):
            let session = bySerial[serial]
            if let session, let origin = copy.origin {
                session.directSettled(messageID: copy.delivery.messageID, toAccount: origin.toAccount,
                                      outcome: .delivered(account: copy.delivery.fromAccount, device: copy.delivery.fromDevice))
            }
            copy.origin = nil
            if let session, session.takeDirect(copy) { return }
            router?.returnDirect(copy, from: serial)
        case .directSettled(let serial, let copy, let toAccount, let outcome):
            if let session = bySerial[serial] {
                if copy.groupID != 0 {
                    session.groupCopySettled(messageID: copy.messageID, group: copy.groupID, outcome: outcome)
                } else {
                    session.directSettled(messageID: copy.messageID, toAccount: toAccount, outcome: outcome)
                }
            } else if copy.groupID != 0 {
                groupCopySettledLate(copy, outcome)
            }
        default:
            handleControl(message)
        }
    }

    private func handleControl(_ message: DeliveryRouter.Message) {
        guard let router else { return }
        switch message {
        case .register(let device, let loop, let serial):
            if revoked.contains(device) {
                router.send(.kill(serial: serial), toLoop: loop)  // removed while it was logging in
                return
            }
            if let old = registry[device], old.serial != serial {
                // A device connects again: the newer session (higher serial) wins, whichever
                // registration arrives first; the older one is closed.
                if old.serial > serial {
                    router.send(.replaced(serial: serial), toLoop: loop)
                    return
                }
                router.send(.replaced(serial: old.serial), toLoop: old.loop)
                keepLedger(of: old, device: device)
            }
            registry[device] = RegistryEntry(loop: loop, serial: serial)
            // A wake may have found no entry just before this: let the session look again.
            router.send(.pull(serial: serial), toLoop: loop)
        case .unregister(let device, let serial, let kept):
            if let entry = registry[device], entry.serial == serial {
                registry.removeValue(forKey: device)
                keepLedger(of: entry, device: device)
            }
            directSessionLeft(device: device, serial: serial, kept: kept)
        case .wake(let device, let sender, let silent, let delivery):
            if let entry = registry[device] {
                router.send(delivery.map { .offer(serial: entry.serial, delivery: $0) } ?? .pull(serial: entry.serial), toLoop: entry.loop)
            } else if let sender {
                push?.notify(device: device, sender: sender, silent: silent)
            }
        case .revoke(let device):
            revoked.insert(device)
            if let entry = registry.removeValue(forKey: device) {
                router.send(.kill(serial: entry.serial), toLoop: entry.loop)
                keepLedger(of: entry, device: device)
            }
        case .notify(let device, let stanza):
            if let entry = registry[device] { router.send(.stanza(serial: entry.serial, stanza: stanza), toLoop: entry.loop) }
        case .pull(let serial):
            bySerial[serial]?.pullDeliveries()
        case .offer(let serial, let delivery):
            bySerial[serial]?.offer(delivery)
        case .replaced(let serial):
            bySerial[serial]?.replacedByNewerSession()
        case .kill(let serial):
            bySerial[serial]?.revoked()
        case .stanza(let serial, let stanza):
            bySerial[serial]?.push(stanza)
        case .accountOnline(let account, let serial, let loop):
            let wasOnline = !(accounts[account]?.sessions.isEmpty ?? true)
            accounts[account, default: AccountPresence()].sessions[serial] = Int32(loop)
            if !wasOnline { announce(account) }
        case .accountOffline(let account, let serial, let at):
            guard accounts[account]?.sessions.removeValue(forKey: serial) != nil else { return }
            if accounts[account]?.sessions.isEmpty == true {
                accounts[account]?.lastSeen = at
                announce(account)
            }
        case .subscribe(let owner, let serial, let loop):
            watchers[owner, default: SerialMap()][serial] = loop
            let state = accounts[owner] ?? AccountPresence()
            router.send(.sessionStanza(serial: serial, stanza: .presence(
                accountID: owner, online: !state.sessions.isEmpty, lastSeenMilliseconds: state.lastSeen)), toLoop: loop)
        case .unsubscribe(let owner, let serial):
            watchers[owner]?.removeValue(forKey: serial)
            if watchers[owner]?.isEmpty == true { watchers.removeValue(forKey: owner) }
        case .typing(let to, let from, let device, let active):
            accounts[to]?.sessions.forEach { serial, loop in
                router.send(.sessionStanza(serial: serial, stanza: .typing(accountID: from, deviceID: device, active: active)), toLoop: Int(loop))
            }
        case .sessionStanza(let serial, let stanza):
            bySerial[serial]?.push(stanza)
        case .spareCiphertexts(let arrays):
            ciphertexts.adopt(arrays)
        case .direct, .directOffer, .directReturned, .receiptSettling, .directOfferSettling, .directSettled:
            break  // handled in `handle`
        }
    }
}
