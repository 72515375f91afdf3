import CSwitchboardShims
import Foundation
import Chat
import Glibc
import HTTP
import Handshake
import Noise
import Reactor
import Store
import Synchronization
import TLS

/// A running node: its loops, their listeners and the drain on SIGTERM/SIGINT. The composition
/// root: the one place that knows every module.
public final class Node: @unchecked Sendable {
    // `@unchecked Sendable`: `listeners[i]` and `draining` state are touched only on loop i /
    // loop 0 respectively (through `execute`); the rest is immutable after `start()`.
    public let options: ServeOptions
    let logger: Logger
    let group: EventLoopGroup
    let dataDirectory: DataDirectory
    let store: StoreThread
    public let services: SessionServices
    /// Session counters, one set per loop.
    public let metrics: [SessionMetrics]
    /// HTTP counters, one set per loop.
    let httpMetrics: [HTTPMetrics]
    /// The certificate for `--https`, reloaded on SIGHUP.
    let tls: TLSContext?
    let state = NodeState()
    private var listeners: [[Listener]] = []
    private var signals: SignalSource?
    private var drainStarted = false
    private var drainForced = false
    /// The addresses actually bound (port 0 resolved).
    public private(set) var boundAddresses: [SocketAddress] = []
    public private(set) var boundHTTP: [SocketAddress] = []
    public private(set) var boundHTTPS: [SocketAddress] = []

    public enum StartError: Error, CustomStringConvertible {
        case dataDirectory(String, Int32)
        case crypto
        case system(SystemError, String)
        case store(String)
        case tls(TLSError)

        public var description: String {
            switch self {
            case .dataDirectory(let path, let code):
                return "cannot create data directory '\(path)': \(String(cString: strerror(code)))"
            case .crypto: return "libsodium failed to initialise"
            case .system(let error, let context): return "\(context): \(error)"
            case .store(let why): return why
            case .tls(let error): return "cannot set up TLS: \(error)"
            }
        }
    }

    public init(options: ServeOptions) throws(StartError) {
        self.options = options
        self.logger = Logger(level: options.logLevel)
        guard CryptoLibraries.initialise() else { throw .crypto }
        try Node.makeDirectory(options.dataDirectory)
        dataDirectory = DataDirectory(path: options.dataDirectory)
        let logger = self.logger
        do {
            group = try EventLoopGroup(
                threads: options.threads, configuration: options.loop, maxConnections: options.maxConnections)
        } catch {
            throw .system(error, "cannot create event loops")
        }
        do {
            let database = try SQLiteDatabase(path: dataDirectory.databasePath)
            try AccountStore.migrate(database)
            let tokenLifetime = UInt64(options.tokenDays) * 86_400
            let revoked = try AccountStore.revokedDevices(database, since: Int64(time(nil)) - Int64(tokenLifetime))
            store = StoreThread(database: database)
            let identity = try dataDirectory.serverIdentity()
            let directory = DeviceDirectory(thread: store, maxDevicesPerAccount: options.maxDevices)
            let nodeID = try dataDirectory.nodeID()
            let push = options.pushEndpoint.map { DeliveryRouter.PushConfiguration(endpoint: $0, directory: directory, nodeID: nodeID) }
            let messages = MessageStore(thread: store, limits: options.queueLimits)
            services = SessionServices(
                staticKey: identity.key, certificate: identity.certificate.encoded, accounts: AccountStore(thread: store),
                directory: directory,
                messages: messages,
                groups: GroupStore(thread: store, maxMembers: options.maxGroupMembers,
                                   messagesPerDevice: options.queueLimits.messagesPerDevice),
                mutes: MuteStore(thread: store, minutesPerMember: UInt64(options.muteMinutesPerMember)),
                router: DeliveryRouter(group: group, push: push, messages: messages),
                tokens: TokenSealer(keyID: 1, key: try dataDirectory.tokenKey()),
                ledger: TokenLedger(revokedDevices: revoked), registration: options.registration,
                nodeID: nodeID, tokenLifetimeSeconds: tokenLifetime,
                handshakeTimeoutMilliseconds: options.handshakeSeconds * 1000,
                idleTimeoutSeconds: UInt64(options.loop.idleTimeoutMilliseconds / 1000),
                staticSecretsPerLoop: options.handshakeCache,
                log: { event in Node.log(event, logger) })
        } catch {
            throw .store("cannot open the data directory '\(options.dataDirectory)': \(error)")
        }
        metrics = (0..<options.threads).map { _ in SessionMetrics() }
        httpMetrics = (0..<options.threads).map { _ in HTTPMetrics() }
        if let certificate = options.tlsCertificateFile, let key = options.tlsKeyFile {
            do {
                tls = try TLSContext(certificateFile: certificate, keyFile: key)
            } catch {
                throw .tls(error)
            }
        } else {
            tls = nil
        }
    }

    /// Binds every listener on every loop and starts the loop threads. Call once, from the
    /// thread that created the node, after `SignalSource.blockSignals()`.
    public func start() throws(StartError) {
        let limit = sb_raise_nofile_limit()
        var bound: [SocketAddress] = options.listen
        var boundHTTP = options.http, boundHTTPS = options.https
        let services = self.services, metrics = self.metrics, httpMetrics = self.httpMetrics, state = self.state
        let routes = HTTPEndpoints(
            services: services, sessionMetrics: metrics,
            exposition: MetricsExposition(loops: group.loops, sessions: metrics, http: httpMetrics,
                                          push: services.router.pushCounters, store: store.metrics),
            state: state
        ).routes()
        let configuration = options.httpServer
        let isDraining: @Sendable () -> Bool = { state.isDraining }
        for loop in group.loops {
            var mine: [Listener] = []
            do {
                mine += try bind(&bound, on: loop, admitting: true) { loop in
                    ServerSession(services: services, metrics: metrics[loop.id])
                }
                mine += try bind(&boundHTTP, on: loop) { loop in
                    HTTPServerConnection(routes: routes, configuration: configuration, metrics: httpMetrics[loop.id], isDraining: isDraining)
                }
                if let tls {
                    mine += try bind(&boundHTTPS, on: loop) { loop in
                        let counters = httpMetrics[loop.id]
                        let http = HTTPServerConnection(routes: routes, configuration: configuration, metrics: counters,
                                                        overTLS: true, isDraining: isDraining)
                        let stream = TLSStream(context: tls, inner: http, handshakeMilliseconds: configuration.headerTimeoutMilliseconds)
                        stream.onHandshake = { ok in counters.bump(ok ? .tlsHandshakes : .tlsHandshakeFailures) }
                        return stream
                    }
                }
            } catch {
                for listener in listeners.joined() { listener.close() }
                for listener in mine { listener.close() }
                throw error
            }
            listeners.append(mine)
        }
        self.boundHTTP = boundHTTP
        self.boundHTTPS = boundHTTPS
        boundAddresses = bound
        let loop0 = group.loops[0]
        do {
            signals = try SignalSource(on: loop0) { [unowned self] signal in self.received(signal) }
        } catch {
            throw .system(error, "cannot receive signals")
        }
        store.start()
        schedulePurge()
        state.markStarted(nodeID: services.nodeID, native: bound, http: boundHTTP, https: boundHTTPS)
        group.start(pinToCPUs: options.pinCPUs)
        logger.info("node started", [
            "node_id": services.nodeID,
            "server_key": encodeHex(services.currentStaticKey.publicKey),
            "root_key": (try? dataDirectory.rootSeed()).map { encodeHex(ServerCertificate.rootPublicKey(seed: $0)) } ?? "",
            "registration": options.registration.rawValue,
            "listen": bound.map(\.description).joined(separator: ","),
            "http": boundHTTP.map(\.description).joined(separator: ","),
            "https": boundHTTPS.map(\.description).joined(separator: ","),
            "threads": "\(group.loops.count)",
            "data": options.dataDirectory,
            "max_connections": "\(options.maxConnections)",
            "nofile": "\(limit)",
            "epoll": options.loop.trigger.rawValue,
            "libraries": CryptoLibraries.versions,
        ])
    }

    /// Opens one listener per address on `loop`; the first loop resolves port 0 and later loops
    /// reuse the port it got (SO_REUSEPORT).
    /// Native listeners are admitting (`--max-opening`): a session tells its connection when its
    /// login is done.
    private func bind(_ addresses: inout [SocketAddress], on loop: EventLoop, admitting: Bool = false,
                      _ makeHandler: @escaping (EventLoop) -> ConnectionHandler) throws(StartError) -> [Listener] {
        var opened: [Listener] = []
        for (index, address) in addresses.enumerated() {
            do {
                let listener = try Listener(address: address, on: loop, admitting: admitting, makeHandler: makeHandler)
                var lastWarning: UInt64 = 0
                listener.onDescriptorsExhausted = { [logger] code in
                    // At most one line per second per loop: the condition can last.
                    guard loop.now >= lastWarning + 1000 || lastWarning == 0 else { return }
                    lastWarning = max(loop.now, 1)
                    logger.warn("accept paused: out of descriptors", [
                        "errno": "\(code)", "loop": "\(loop.id)",
                        "count": "\(loop.counters.acceptDescriptorExhausted.load(ordering: .relaxed))",
                    ])
                }
                addresses[index] = listener.address
                opened.append(listener)
            } catch {
                for listener in opened { listener.close() }
                throw .system(error, "cannot listen on \(address)")
            }
        }
        return opened
    }

    /// Drops messages past their retention, now and every hour (loop 0).
    private func schedulePurge() {
        services.messages.purge(nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        group.loops[0].scheduleTimer(in: 3_600_000) { [weak self] in self?.schedulePurge() }
    }

    /// Blocks until every loop has stopped (after a drain).
    public func wait() {
        group.join()
        store.stop()
        logger.info("node stopped")
    }

    private static func log(_ event: SessionEvent, _ logger: Logger) {
        switch event {
        case .handshakeFailed(let code, let reason):
            logger.debug("handshake failed", ["code": code.name, "reason": reason])
        case .loginRefused(let code):
            logger.debug("login refused", ["code": code.name])
        case .loggedIn(let account, let device, let pattern, let mode):
            logger.debug("logged in", ["account": "\(account)", "device": "\(device)", "pattern": pattern, "mode": "\(mode)"])
        }
    }

    // MARK: Drain

    /// Loop 0: SIGTERM/SIGINT drain; a second one forces the close at once.
    private func received(_ signal: Int32) {
        switch signal {
        case SIGTERM, SIGINT:
            if drainStarted {
                logger.warn("second stop signal: closing every connection now")
                forceClose()
            } else {
                beginDrain(signal: signal)
            }
        case SIGHUP:
            do {
                let (key, certificate) = try dataDirectory.serverIdentity()
                services.replaceStaticKey(key, certificate: certificate.encoded)
                logger.info("server key reloaded", ["server_key": encodeHex(key.publicKey)])
            } catch {
                logger.error("server key reload failed", ["error": "\(error)"])
            }
            if let tls {
                do {
                    try tls.reload()
                    logger.info("TLS certificate reloaded", ["cert": options.tlsCertificateFile ?? ""])
                } catch {
                    logger.error("TLS certificate reload failed; keeping the old one", ["error": "\(error)"])
                }
            }
        default:
            break
        }
    }

    private func beginDrain(signal: Int32) {
        drainStarted = true
        state.markDraining()
        let grace = options.drainSeconds
        logger.info("draining", ["signal": signal == SIGTERM ? "SIGTERM" : "SIGINT",
                                 "connections": "\(group.connectionCount)", "grace_seconds": "\(grace)"])
        for loop in group.loops {
            loop.execute { [self] in
                for listener in listeners[loop.id] { listener.close() }
                for connection in loop.liveConnections {
                    connection.handler.connectionShouldDrain(connection)
                }
            }
        }
        let loop0 = group.loops[0]
        loop0.scheduleTimer(in: grace * 1000) { [self] in forceClose() }
        pollDrained()
    }

    private func pollDrained() {
        let loop0 = group.loops[0]
        loop0.scheduleTimer(in: 20) { [self] in
            if drainForced { return }
            if group.connectionCount == 0 {
                logger.info("drained")
                finish()
            } else {
                pollDrained()
            }
        }
    }

    private func forceClose() {
        guard !drainForced else { return }
        drainForced = true
        logger.warn("grace period over: closing remaining connections",
                    ["connections": "\(group.connectionCount)"])
        finish()
    }

    private func finish() {
        drainForced = true
        signals?.close()
        for loop in group.loops {
            loop.execute {
                for connection in loop.liveConnections { connection.close(.draining) }
                loop.stop()
            }
        }
    }

    private static func makeDirectory(_ path: String) throws(StartError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o700) != 0 {
                let code = sb_errno()
                guard code == EEXIST else { throw .dataDirectory(path, code) }
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw .dataDirectory(path, ENOTDIR)
        }
    }
}
