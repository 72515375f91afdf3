// swift-tools-version:6.0
// Reference peers for the benchmark suite, kept out of the product package: a relay written the
// way a Swift engineer would write it on SwiftNIO, speaking exactly Switchboard's protocol through
// the product's own Wire, Noise and Handshake modules.
import PackageDescription

let package = Package(
    name: "SwitchboardPeers",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(name: "Switchboard", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "nio-relay-peer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Wire", package: "Switchboard"),
                .product(name: "Noise", package: "Switchboard"),
                .product(name: "Handshake", package: "Switchboard"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
