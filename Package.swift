// swift-tools-version: 6.1
import PackageDescription

// Linux only: no Apple platform is declared, because none is built or tested, and the library uses Linux system
// calls (inotify, fallocate, sync_file_range, SEEK_DATA/SEEK_HOLE) and Glibc (README, "Platforms").
let package = Package(
    name: "EventLog",
    products: [
        .library(name: "EventLog", targets: ["EventLog"]),
        .library(name: "NATSClient", targets: ["NATSClient"]),
        .library(name: "EventLogNATS", targets: ["EventLogNATS"]),
        .library(name: "EventLogSourcing", targets: ["EventLogSourcing"]),
        .executable(name: "eventlog", targets: ["EventLogCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.70.0"),
        // AES-256-GCM for encryption at rest (`LogOptions.encryption`); Ed25519 for NATS NKey authentication.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // `swift package generate-documentation` (the DocC catalog, Sources/EventLog/EventLog.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // CRC32C (Castagnoli): SSE4.2 / ARMv8 CRC instructions chosen at run time,
        // with a portable table-driven fallback that is also the tests' oracle.
        .target(name: "CCRC32C"),
        // Linux system calls the Swift importer cannot see (fallocate, sync_file_range).
        .target(name: "CSystemCalls", dependencies: ["CCRC32C"]),
        // The system liblz4 (Debian: liblz4-dev).
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        .target(
            name: "EventLog",
            dependencies: [
                "CCRC32C",
                "CLZ4",
                "CSystemCalls",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The part of the NATS protocol (and JetStream's JSON API) the relay and the inbox need, on swift-nio.
        // Knows nothing of EventLog.
        .target(
            name: "NATSClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The outbox relay (log -> JetStream) and the inbox (JetStream -> log): EventLog on one side, NATS on the other.
        .target(
            name: "EventLogNATS",
            dependencies: ["EventLog", "NATSClient"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Event sourcing on the log: typed events with schema upcasting, aggregates with snapshots,
        // checkpointed projections, outbox helpers. Foundation's JSON lives here, never in `EventLog`.
        .target(
            name: "EventLogSourcing",
            dependencies: ["EventLog"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The `eventlog` command (a module name that differs from the library's by more than case).
        .executableTarget(
            name: "EventLogCLI",
            dependencies: [
                "EventLog",
                "EventLogNATS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // A test's child program: an application with a SIGBUS handler of its own
        // (MappedReadGuardTests). Not a product.
        .executableTarget(
            name: "SignalChainCheck",
            dependencies: ["EventLog"],
            path: "Tests/SignalChainCheck",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // A client of EventLog: every Swift snippet of README.md and of the DocC articles (generated into
        // Tests/ClientCheck by scripts/readme-snippets.py), in functions and as top-level code. It imports
        // EventLog as a user's package does (no @testable, and EventLog declares nothing `package`-wide), so an
        // API drift or a compiler crash on a documented pattern fails `swift build --build-tests`. Nothing runs
        // it. Not a product.
        .executableTarget(
            name: "ClientCheck",
            dependencies: [
                "EventLog",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/ClientCheck",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // A test's child program: runs a projection until it is killed (EventLogSourcingTests). Not a product.
        .executableTarget(
            name: "SourcingCrashChild",
            dependencies: ["EventLog", "EventLogSourcing"],
            path: "Tests/SourcingCrashChild",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "EventLogSourcingTests",
            dependencies: [
                "EventLog", "EventLogSourcing", "SourcingCrashChild",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "EventLogTests",
            dependencies: [
                "EventLog", "CCRC32C", "EventLogCLI", "NATSClient", "EventLogNATS", "SignalChainCheck",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
