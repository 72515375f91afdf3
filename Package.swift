// swift-tools-version:6.0
// Switchboard: a chat edge node. The product takes no Swift package dependencies; C libraries come
// in through system-library targets under CShims/.
import PackageDescription

let package = Package(
    name: "Switchboard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchboard", targets: ["switchboard"]),
        .executable(name: "switchboard-bench", targets: ["switchboard-bench"]),
        .library(name: "Reactor", targets: ["Reactor"]),
    ],
    targets: [
        // C helpers Swift cannot express well (epoll data, accept4, eventfd, signalfd, ...).
        .target(name: "CSwitchboardShims", path: "CShims/CSwitchboardShims"),
        .systemLibrary(
            name: "CSodium", path: "CShims/CSodium", pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(
            name: "COpenSSL", path: "CShims/COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),

        .target(name: "Reactor", dependencies: ["CSwitchboardShims"]),
        // Frame and stanza codecs: pure functions over bytes.
        .target(name: "Wire"),
        // Noise Protocol Framework (revision 34) over libsodium: no I/O.
        .target(name: "Noise", dependencies: ["CSodium"]),
        // Our own command-line flag parser, shared by the node and the bench client.
        .target(name: "Flags"),
        .target(
            name: "SwitchboardServer",
            dependencies: ["Reactor", "Flags", "CSwitchboardShims", "CSodium", "COpenSSL"]),
        .executableTarget(name: "switchboard", dependencies: ["SwitchboardServer"]),
        .executableTarget(
            name: "switchboard-bench", dependencies: ["Reactor", "Flags", "CSwitchboardShims"],
            path: "Benchmarks/switchboard-bench"),

        .target(name: "TestSupport", dependencies: ["CSwitchboardShims"], path: "Tests/TestSupport"),
        .testTarget(
            name: "NoiseTests", dependencies: ["Noise"],
            resources: [.copy("Vectors")]),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CSwitchboardShims", "TestSupport"]),
        .testTarget(
            name: "NodeTests", dependencies: ["SwitchboardServer", "Flags", "Reactor", "CSwitchboardShims", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
