// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Backchannel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "backchannel", targets: ["backchannel"]),
        .library(name: "BackchannelProtocol", targets: ["BackchannelProtocol"]),
        .library(name: "BackchannelAgent", targets: ["BackchannelAgent"]),
        .library(name: "BackchannelHub", targets: ["BackchannelHub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        .target(
            name: "BackchannelProtocol",
            swiftSettings: strictSettings
        ),
        // End-to-end security that does not trust the hub: Ed25519 command signatures, the
        // device's trust policy and nonce ledger, and multi-audience sealed payloads (HPKE).
        .target(
            name: "BackchannelSecurity",
            dependencies: [
                "BackchannelProtocol",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // Transport security: a private CA, hub and device certificates, NIOSSL configurations.
        .target(
            name: "BackchannelTLS",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        // Power-management computations: interval data, tariffs and bills, supplier choice, load
        // shedding, power quality, topology, reliability, tamper detection, Green Button. No I/O.
        .target(
            name: "BackchannelPower",
            dependencies: ["BackchannelProtocol"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BackchannelStore",
            dependencies: ["BackchannelProtocol"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BackchannelSQLite",
            dependencies: [
                "BackchannelStore",
                "BackchannelProtocol",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BackchannelHub",
            dependencies: [
                "BackchannelStore",
                "BackchannelProtocol",
                "BackchannelPower",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                "BackchannelTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [
                .copy("Resources/openapi.json"), .copy("Resources/backchannel.wsdl"), .copy("Resources/dashboard"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BackchannelAgent",
            dependencies: [
                "BackchannelProtocol",
                "BackchannelSecurity",
                "BackchannelTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "WSClient", package: "swift-websocket"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BackchannelClient",
            dependencies: [
                "BackchannelProtocol",
                "BackchannelSecurity",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BackchannelSimulator",
            dependencies: [
                "BackchannelAgent",
                "BackchannelClient",
                "BackchannelProtocol",
                "BackchannelPower",
                "BackchannelSecurity",
                "BackchannelTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "backchannel",
            dependencies: [
                "BackchannelProtocol",
                "BackchannelStore",
                "BackchannelSQLite",
                "BackchannelHub",
                "BackchannelAgent",
                "BackchannelClient",
                "BackchannelSimulator",
                "BackchannelPower",
                "BackchannelSecurity",
                "BackchannelTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BackchannelProtocolTests",
            dependencies: ["BackchannelProtocol"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BackchannelStoreTests",
            dependencies: ["BackchannelStore", "BackchannelSQLite", "BackchannelProtocol"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BackchannelHubTests",
            dependencies: [
                "BackchannelHub", "BackchannelStore", "BackchannelSQLite", "BackchannelProtocol",
                "BackchannelAgent", "BackchannelSimulator", "BackchannelClient", "BackchannelSecurity",
                "BackchannelTLS",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BackchannelSecurityTests",
            dependencies: [
                "BackchannelSecurity", "BackchannelTLS", "BackchannelProtocol",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BackchannelPowerTests",
            dependencies: ["BackchannelPower", "BackchannelProtocol"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BackchannelAgentTests",
            dependencies: ["BackchannelAgent", "BackchannelProtocol", "BackchannelSecurity"],
            swiftSettings: strictSettings
        ),
    ]
)
