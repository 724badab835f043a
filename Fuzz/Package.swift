// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for every decoder of on-disk bytes and every line of
// `eventlog append` / `eventlog import` input (issue 16). A package of its own
// (like Benchmarks/) so the library's package carries no fuzzing target and
// no unsafe flags. Build and run with scripts/fuzz.sh, which passes
// `--sanitize fuzzer --sanitize address -Xswiftc -enable-testing`: with the
// fuzzer sanitizer SwiftPM compiles the executable as a library and links
// libFuzzer's `main`, which calls `LLVMFuzzerTestOneInput` (Sources/EventLogFuzz).
let package = Package(
    name: "EventLogFuzz",
    dependencies: [
        .package(name: "EventLog", path: ".."),
        // The `eventlog` command's own dependency (its readers' files use ExpressibleByArgument).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // One binary, every target: EVENTLOG_FUZZ_TARGET picks the decoder.
        // CLI/ holds symbolic links to the `eventlog` command's JSON Lines
        // readers (an executable target cannot be imported from another package).
        .executableTarget(
            name: "EventLogFuzz",
            dependencies: [
                .product(name: "EventLog", package: "EventLog"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
