// swift-tools-version: 6.1
import PackageDescription

// The suites that run threads against one log, built under ThreadSanitizer by
// scripts/tsan.sh. A package of its own (like Fuzz/ and Benchmarks/) so that
// the instrumented build holds the library and these suites only: built from
// the library's package, `--build-tests` also compiled every other suite,
// the `eventlog` command, the NATS modules with swift-nio and the snippet
// checks, none of which runs under TSan (about 300 s of the CI run's 30
// minutes). The test files are symbolic links to Tests/EventLogTests (one
// copy of each suite; `swift test` of the library runs them too, without
// TSan); scripts/tsan.sh says why each suite is here.
let package = Package(
    name: "EventLogThreadSanitizer",
    dependencies: [
        .package(name: "EventLog", path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
    ],
    targets: [
        .testTarget(
            name: "EventLogRaceTests",
            dependencies: [
                .product(name: "EventLog", package: "EventLog"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
