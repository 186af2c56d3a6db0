// swift-tools-version: 6.1
// libFuzzer targets for the wire decoders. Build and run them with `scripts/fuzz` from the
// repository root; they link only with `swift build -sanitize=fuzzer`, which supplies `main`.
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "BackchannelFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, so the product reference works whatever the clone's directory is called.
        .package(name: "Backchannel", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // The hub's handling of a JSON poll, shared by the targets that end in one.
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "BackchannelProtocol", package: "Backchannel")],
            swiftSettings: strictSettings
        ),
        // JSON poll bodies (`POST /v1/poll`): decode, validate, re-encode.
        .executableTarget(
            name: "FuzzPoll",
            dependencies: ["FuzzSupport"],
            swiftSettings: strictSettings
        ),
        // SOAP 1.2 poll envelopes with the hub's XML limits, and the XML reader underneath.
        .executableTarget(
            name: "FuzzSOAP",
            dependencies: [.product(name: "BackchannelProtocol", package: "Backchannel")],
            swiftSettings: strictSettings
        ),
        // WebSocket frames as the hub's socket reads them (NIOWebSocket's frame decoder), and
        // each complete message decoded as a poll.
        .executableTarget(
            name: "FuzzWebSocket",
            dependencies: [
                "FuzzSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
