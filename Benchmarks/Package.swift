// swift-tools-version: 6.1
import PackageDescription

// The standard workload (WORKLOAD.md) run against EventLog and, in the
// same process, against SQLite, LMDB and RocksDB (Sources/Harness/Peers);
// plus micro-benchmarks (ordo-one/benchmark). A package of its
// own, so that the library's package stays free of benchmark targets and of
// the peers' system libraries. Build it in release mode:
//
//     bash Benchmarks/scripts/install-peers.sh      # libsqlite3-dev liblmdb-dev librocksdb-dev
//     swift build -c release --package-path Benchmarks --product eventlog-bench
//     Benchmarks/.build/release/eventlog-bench --quick
let package = Package(
    name: "EventLogBenchmarks",
    dependencies: [
        .package(name: "EventLog", path: ".."),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
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
        // The peers' C libraries, as Debian ships them.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),
        // The phase runner, the stores it drives (EventLog and one file per
        // peer), results, table, JSON and the SVG/Markdown report.
        .target(
            name: "Harness",
            dependencies: [
                "Workload",
                "CMallocCounter",
                "CSQLite",
                "CLMDB",
                "CRocksDB",
                .product(name: "EventLog", package: "EventLog"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                // EventLog's group commit figures in the C phases (a MetricsFactory of the harness's own).
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "eventlog-bench",
            dependencies: ["Harness", "Workload", "CMallocCounter"],
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
        // The NATS relay's and inbox's speed against a running nats-server -js (scripts/nats-bench.sh).
        .executableTarget(
            name: "eventlog-nats-bench",
            dependencies: [
                .product(name: "EventLog", package: "EventLog"),
                .product(name: "EventLogNATS", package: "EventLog"),
                .product(name: "NATSClient", package: "EventLog"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // EventLogSourcing's figures: an aggregate's load with snapshots, a projection's throughput.
        .executableTarget(
            name: "eventlog-sourcing-bench",
            dependencies: [
                .product(name: "EventLog", package: "EventLog"),
                .product(name: "EventLogSourcing", package: "EventLog"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Micro-benchmarks: `swift package benchmark` (see README.md). The
        // plugin finds them under Benchmarks/<Name>/.
        .executableTarget(
            name: "EventLogMicro",
            dependencies: [
                "Workload",
                .product(name: "EventLog", package: "EventLog"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/EventLogMicro",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .testTarget(
            name: "WorkloadTests",
            dependencies: ["Workload", "CMallocCounter"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HarnessTests",
            dependencies: ["Harness", "Workload"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
