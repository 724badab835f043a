// swift-tools-version: 6.1
import PackageDescription

// The standard workload (shared/WORKLOAD.md) run against EventLog, in a
// package of its own so that the library's package stays free of benchmark
// targets. Build it in release mode:
//
//     swift build -c release --package-path Benchmarks
//     Benchmarks/.build/release/eventlog-bench --quick
let package = Package(
    name: "EventLogBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "EventLog", path: ".."),
    ],
    targets: [
        // The byte-exact event generator, FNV-1a 64 and the untimed event arena.
        .target(
            name: "Workload",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Counts malloc/calloc/realloc calls (glibc only) so each phase can
        // report allocations per event.
        .target(name: "CMallocCounter"),
        .executableTarget(
            name: "eventlog-bench",
            dependencies: [
                "Workload",
                "CMallocCounter",
                .product(name: "EventLog", package: "EventLog"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The README's main job: the workload through the library, read back and checked.
        .executableTarget(
            name: "eventlog-demo",
            dependencies: [
                "Workload",
                .product(name: "EventLog", package: "EventLog"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "WorkloadTests",
            dependencies: ["Workload", "CMallocCounter"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
