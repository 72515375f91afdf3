import Chat
import Flags
import HTTP
import Reactor
import Store

/// Everything `switchboard serve` is told on its command line, validated.
public struct ServeOptions: Sendable {
    public var listen: [SocketAddress] = [try! SocketAddress(parsing: "127.0.0.1:5222")]
    public var dataDirectory = "./switchboard-data"
    public var threads = EventLoopGroup.onlineCPUs
    public var pinCPUs = false
    public var maxConnections = 1_000_000
    public var logLevel = LogLevel.info
    public var drainSeconds = 10
    public var loop = LoopConfiguration()
    public var registration = RegistrationPolicy.open
    public var handshakeSeconds = 10
    public var tokenDays = 30
    public var maxDevices = 16
    public var maxGroupMembers = 1_024
    public var muteMinutesPerMember = 15
    public var pushEndpoint: PushEndpoint?
    public var queueLimits = MessageStore.Limits()
    /// HTTP listeners: the fallback transport and the operations endpoints (PROTOCOL.md 24–25).
    public var http: [SocketAddress] = []
    public var https: [SocketAddress] = []
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    public var httpServer = HTTPServerConnection.Configuration()
    public var handshakeCache = SessionServices.defaultStaticSecretsPerLoop

    public init() {}

    public static let specs: [FlagSpec] = [
        FlagSpec("listen", value: "HOST:PORT", repeatable: true,
                 help: "native protocol address; repeat for more (default 127.0.0.1:5222; port 0 picks one)"),
        FlagSpec("data", value: "DIR", help: "data directory, created if missing (default ./switchboard-data)"),
        FlagSpec("threads", value: "N", help: "event loops, one thread each (default: one per CPU)"),
        FlagSpec("pin-cpus", help: "pin loop i to CPU i"),
        FlagSpec("max-connections", value: "N", help: "connections the node holds at once (default 1000000)"),
        FlagSpec("log-level", value: "LEVEL", help: "debug, info, warn or error (default info)"),
        FlagSpec("drain-seconds", value: "N", help: "grace period for open work on SIGTERM/SIGINT (default 10)"),
        FlagSpec("idle-seconds", value: "N", help: "close connections silent this long; 0 never (default 300)"),
        FlagSpec("epoll", value: "MODE", help: "edge or level: how connections are registered (default edge)"),
        FlagSpec("outbound-high-watermark", value: "BYTES",
                 help: "stop reading a peer whose unsent output exceeds this (default 262144)"),
        FlagSpec("outbound-limit", value: "BYTES",
                 help: "close a peer whose unsent output exceeds this (default 4194304)"),
        FlagSpec("registration", value: "POLICY",
                 help: "open (anyone may register; the default, for development) or invite (codes from 'switchboard invite')"),
        FlagSpec("handshake-seconds", value: "N", help: "close connections that have not finished the handshake by then (default 10)"),
        FlagSpec("max-opening", value: "N",
                 help: "native connections per loop still in their handshake and login; past it new ones wait in the kernel's backlog; 0 no limit (default 256)"),
        FlagSpec("opening-grace-ms", value: "N",
                 help: "while new connections wait for --max-opening, close handshakes whose client sent nothing for this long (default 3000)"),
        FlagSpec("handshake-cache", value: "N",
                 help: "returning clients per loop whose static-key agreement is kept (97 bytes each), sparing one of an IK handshake's four X25519 operations; 0 keeps none (default 8192)"),
        FlagSpec("token-days", value: "N", help: "lifetime of resumption tokens (default 30)"),
        FlagSpec("push-url", value: "URL", help: "HTTP push gateway for devices that are offline: http://HOST:PORT/PATH (default: none)"),
        FlagSpec("max-devices", value: "N", help: "devices per account (default 16)"),
        FlagSpec("max-group-members", value: "N", help: "members per group (default 1024)"),
        FlagSpec("mute-minutes-per-member", value: "N",
                 help: "automatic group mute: N minutes per member, between 1 hour and 7 days (default 15)"),
        FlagSpec("queue-messages", value: "N", help: "messages that may wait for one device (default 100000)"),
        FlagSpec("queue-bytes", value: "BYTES", help: "bytes that may wait for one device (default 268435456)"),
        FlagSpec("retention-days", value: "N", help: "undelivered messages are dropped after this (default 30)"),
        FlagSpec("http", value: "HOST:PORT", repeatable: true,
                 help: "plain HTTP: the fallback transport (POST /v1/stream), /healthz, /readyz, /metrics, /v1/edge (default: none)"),
        FlagSpec("https", value: "HOST:PORT", repeatable: true, help: "the same over TLS; needs --tls-cert and --tls-key (default: none)"),
        FlagSpec("tls-cert", value: "FILE", help: "PEM certificate (chain) for --https; reloaded on SIGHUP"),
        FlagSpec("tls-key", value: "FILE", help: "PEM private key for --https; reloaded on SIGHUP"),
        FlagSpec("http-header-seconds", value: "N",
                 help: "a request head (and a TLS handshake) must arrive within this; idle keep-alive connections close then (default 10)"),
        FlagSpec("http-body-seconds", value: "N", help: "a request body must arrive within this after its head (default 30)"),
        FlagSpec("help", help: "print this help"),
    ]

    public static let summary = "Runs a Switchboard node in the foreground until SIGTERM or SIGINT."

    /// Reads `serve`'s flags.
    /// - Throws: `UsageError` with a one-line message naming the bad flag or value.
    public init(arguments: [String]) throws(UsageError) {
        let flags = try ParsedFlags(arguments, specs: ServeOptions.specs)
        let native = try ServeOptions.addresses(flags, "listen")
        if !native.isEmpty { listen = native }
        if let data = flags.value("data") {
            guard !data.isEmpty else { throw UsageError("flag '--data' needs a directory") }
            dataDirectory = data
        }
        threads = try flags.integer("threads", default: threads, range: 1...1024)
        pinCPUs = flags.isSet("pin-cpus")
        maxConnections = try flags.integer("max-connections", default: maxConnections, range: 1...100_000_000)
        if let level = flags.value("log-level") {
            guard let parsed = LogLevel(name: level) else {
                throw UsageError("flag '--log-level' needs debug, info, warn or error, not '\(level)'")
            }
            logLevel = parsed
        }
        drainSeconds = try flags.integer("drain-seconds", default: drainSeconds, range: 0...3600)
        loop.idleTimeoutMilliseconds =
            try flags.integer("idle-seconds", default: loop.idleTimeoutMilliseconds / 1000, range: 0...86_400) * 1000
        if let mode = flags.value("epoll") {
            guard let parsed = TriggerMode(rawValue: mode) else {
                throw UsageError("flag '--epoll' needs edge or level, not '\(mode)'")
            }
            loop.trigger = parsed
        }
        loop.outboundHighWatermark = try flags.integer(
            "outbound-high-watermark", default: loop.outboundHighWatermark, range: 1024...(1 << 30))
        loop.outboundLowWatermark = loop.outboundHighWatermark / 4
        loop.maxOpeningConnections = try flags.integer("max-opening", default: loop.maxOpeningConnections, range: 0...1_000_000)
        loop.openingGraceUnderPressureMilliseconds = try flags.integer(
            "opening-grace-ms", default: loop.openingGraceUnderPressureMilliseconds, range: 100...600_000)
        loop.outboundHardLimit = try flags.integer(
            "outbound-limit", default: max(loop.outboundHardLimit, loop.outboundHighWatermark * 2), range: 2048...(1 << 31))
        if let policy = flags.value("registration") {
            guard let parsed = RegistrationPolicy(rawValue: policy) else {
                throw UsageError("flag '--registration' needs open or invite, not '\(policy)'")
            }
            registration = parsed
        }
        handshakeSeconds = try flags.integer("handshake-seconds", default: handshakeSeconds, range: 1...600)
        handshakeCache = try flags.integer("handshake-cache", default: handshakeCache, range: 0...(1 << 22))
        tokenDays = try flags.integer("token-days", default: tokenDays, range: 1...365)
        maxDevices = try flags.integer("max-devices", default: maxDevices, range: 1...1000)
        maxGroupMembers = try flags.integer("max-group-members", default: maxGroupMembers, range: 2...100_000)
        muteMinutesPerMember = try flags.integer("mute-minutes-per-member", default: muteMinutesPerMember, range: 0...100_000)
        if let url = flags.value("push-url") {
            guard let endpoint = PushEndpoint(url: url) else {
                throw UsageError("flag '--push-url' needs http://HOST:PORT/PATH with an IP address or localhost, not '\(url)'")
            }
            pushEndpoint = endpoint
        }
        queueLimits.messagesPerDevice = try flags.integer(
            "queue-messages", default: queueLimits.messagesPerDevice, range: 1...100_000_000)
        queueLimits.bytesPerDevice = try flags.integer("queue-bytes", default: queueLimits.bytesPerDevice, range: 1024...(1 << 40))
        queueLimits.retentionSeconds = Int64(try flags.integer("retention-days", default: 30, range: 1...3650)) * 86_400
        http = try ServeOptions.addresses(flags, "http")
        https = try ServeOptions.addresses(flags, "https")
        tlsCertificateFile = flags.value("tls-cert")
        tlsKeyFile = flags.value("tls-key")
        if !https.isEmpty {
            guard tlsCertificateFile != nil, tlsKeyFile != nil else {
                throw UsageError("flag '--https' needs --tls-cert FILE and --tls-key FILE")
            }
        } else if tlsCertificateFile != nil || tlsKeyFile != nil {
            throw UsageError("flags '--tls-cert' and '--tls-key' are used only with --https")
        }
        httpServer.headerTimeoutMilliseconds =
            try flags.integer("http-header-seconds", default: httpServer.headerTimeoutMilliseconds / 1000, range: 1...3600) * 1000
        httpServer.bodyTimeoutMilliseconds =
            try flags.integer("http-body-seconds", default: httpServer.bodyTimeoutMilliseconds / 1000, range: 1...3600) * 1000
        guard loop.outboundHardLimit > loop.outboundHighWatermark else {
            throw UsageError("flag '--outbound-limit' must be above --outbound-high-watermark")
        }
    }

    private static func addresses(_ flags: ParsedFlags, _ name: String) throws(UsageError) -> [SocketAddress] {
        var addresses: [SocketAddress] = []
        for text in flags.all(name) {
            do {
                addresses.append(try SocketAddress(parsing: text))
            } catch {
                throw UsageError("--\(name): \(error)")
            }
        }
        return addresses
    }
}
