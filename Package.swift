// swift-tools-version:6.0
// Switchboard: a chat edge node. The product takes no Swift package dependencies; C libraries come
// in through system-library targets under CShims/.
import PackageDescription

// Release builds drop the runtime's dynamic exclusivity checks (5% of the node's time when
// relaying: every access to a class's stored property records itself in a thread-local set) and
// optimize across modules, so generic types of one module (the Reactor's Mailbox and SPSCRing)
// are specialized for the types another module sends through them (+25% relay throughput).
// Debug builds, which run the tests, keep the checks. docs/decisions/0006-release-build-settings.md.
let releaseSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release))]

let package = Package(
    name: "Switchboard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchboard", targets: ["switchboard"]),
        .executable(name: "switchboard-bench", targets: ["switchboard-bench"]),
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "SwitchboardClient", targets: ["SwitchboardClient"]),
        // For the reference peers in Benchmarks/Peers, which speak the protocol through these.
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "Noise", targets: ["Noise"]),
        .library(name: "Handshake", targets: ["Handshake"]),
    ],
    targets: [
        // C helpers Swift cannot express well (epoll data, accept4, eventfd, signalfd, ...).
        .target(name: "CSwitchboardShims", path: "CShims/CSwitchboardShims"),
        .systemLibrary(
            name: "CSodium", path: "CShims/CSodium", pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(
            name: "CSQLite", path: "CShims/CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(
            name: "COpenSSL", path: "CShims/COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),

        .target(name: "Reactor", dependencies: ["CSwitchboardShims"], swiftSettings: releaseSettings),
        // Frame and stanza codecs: pure functions over bytes.
        .target(name: "Wire", swiftSettings: releaseSettings),
        // Noise Protocol Framework (revision 34) over libsodium: no I/O.
        .target(name: "Noise", dependencies: ["CSodium", "COpenSSL"], swiftSettings: releaseSettings),
        // Switchboard's use of Noise: handshake state machines, secure transport, tokens. No I/O.
        .target(name: "Handshake", dependencies: ["Wire", "Noise", "CSodium"], swiftSettings: releaseSettings),
        // Storage the domain needs: the embedded SQLite store on its own thread.
        .target(name: "Store", dependencies: ["Reactor", "Wire", "CSQLite"], swiftSettings: releaseSettings),
        // Sessions (handshake, login, stanzas) and later routing, delivery, groups.
        .target(name: "Chat", dependencies: ["Reactor", "Wire", "Noise", "Handshake", "Store"], swiftSettings: releaseSettings),
        // TLS on memory BIOs over any stream of the Reactor (OpenSSL does no I/O of its own).
        .target(name: "TLS", dependencies: ["Reactor", "COpenSSL"], swiftSettings: releaseSettings),
        // HTTP/1.1 server and the chunked stream client on the Reactor; routes come from the
        // composition root, so it knows no domain rules.
        .target(name: "HTTP", dependencies: ["Reactor"], swiftSettings: releaseSettings),
        // The Swift client library: handshake, framing, credentials; on our Reactor.
        .target(name: "SwitchboardClient", dependencies: ["Reactor", "Wire", "Noise", "Handshake", "CSodium", "HTTP", "TLS"], swiftSettings: releaseSettings),
        // Our own command-line flag parser, shared by the node and the bench client.
        .target(name: "Flags"),
        .target(
            name: "SwitchboardServer",
            dependencies: [
                "Reactor", "Flags", "Chat", "Store", "Noise", "Handshake", "Wire", "HTTP", "TLS", "CSwitchboardShims", "CSodium",
                "COpenSSL",
            ], swiftSettings: releaseSettings),
        .executableTarget(name: "switchboard", dependencies: ["SwitchboardServer"]),
        .executableTarget(
            name: "switchboard-bench", dependencies: ["Reactor", "Flags", "SwitchboardClient", "Wire", "Noise", "TLS", "CSwitchboardShims"],
            path: "Benchmarks/switchboard-bench"),

        .target(name: "TestSupport", dependencies: ["CSwitchboardShims", "Reactor"], path: "Tests/TestSupport"),
        .testTarget(
            name: "NoiseTests", dependencies: ["Noise", "CSodium", "COpenSSL", "TestSupport"],
            resources: [.copy("Vectors")]),
        .testTarget(
            name: "ProtocolTests",
            dependencies: ["SwitchboardClient", "Handshake", "Wire", "Noise", "Reactor", "Store", "CSQLite", "TestSupport", "CSwitchboardShims"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "ChatTests", dependencies: ["Chat", "Wire"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "TLS", "Reactor", "TestSupport", "CSwitchboardShims"]),
        .testTarget(name: "HandshakeTests", dependencies: ["Handshake", "Noise", "Wire"]),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CSwitchboardShims", "TestSupport"]),
        .testTarget(
            name: "NodeTests", dependencies: ["SwitchboardServer", "Flags", "Reactor", "CSwitchboardShims", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
