// swift-tools-version: 6.1
// An event-sourced order service on Hummingbird with EventLog as its only store (issue 14; README.md here).
// Its own package, so the library's build stays light: it depends on EventLog by path, as a user's package would.
import PackageDescription

let package = Package(
    name: "OrderService",
    products: [
        .executable(name: "order-service", targets: ["OrderService"]),
    ],
    dependencies: [
        .package(name: "EventLog", path: "../.."),
        // No traits: Hummingbird's default ones (swift-configuration support, URL-encoded forms on full Foundation)
        // are not used here, and swift-configuration would only lengthen the build.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "OrderService",
            dependencies: [
                .product(name: "EventLog", package: "EventLog"),
                .product(name: "EventLogSourcing", package: "EventLog"),
                .product(name: "EventLogNATS", package: "EventLog"),
                .product(name: "NATSClient", package: "EventLog"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "OrderServiceTests",
            dependencies: [
                "OrderService",
                .product(name: "EventLog", package: "EventLog"),
                .product(name: "NATSClient", package: "EventLog"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
