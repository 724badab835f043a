// swift-tools-version: 6.1
// A client of EventLog, as a user's package would be: it depends on EventLog by path and compiles every Swift
// snippet of the README (generated into Sources/ClientCheck by scripts/readme-snippets.py), in functions and in
// top-level code, so an API drift or a compiler crash on a documented pattern fails the test command
// (scripts/test.sh builds it; nothing runs).
import PackageDescription

let package = Package(
    name: "ClientCheck",
    dependencies: [
        .package(name: "EventLog", path: "../.."),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "ClientCheck",
            dependencies: [
                .product(name: "EventLog", package: "EventLog"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
