// eventlog-bench: the standard workload (shared/WORKLOAD.md) on EventLog,
// all phases in one process. See Options.usage, and README.md beside
// Package.swift.
import EventLog
import Foundation
import Workload

#if canImport(Glibc)
import Glibc
#endif

let options: Options
do {
    options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    if let message = error.message {
        printError("eventlog-bench: \(message)\n\n\(Options.usage)")
        exit(2)
    }
    print(Options.usage)
    exit(0)
}

if let count = options.check {
    let (digest, bytes) = workloadCheck(count: count)
    print("fnv1a64 \(digest.hex) count \(count) bytes \(bytes)")
    exit(0)
}

/// The temporary directory to delete on exit (also on SIGINT/SIGTERM).
nonisolated(unsafe) var temporaryRoot: String?

func cleanUp() {
    if let root = temporaryRoot, !options.keep { removeTree(root) }
    temporaryRoot = nil
}

func run() throws {
    let machine = Machine.current()
    let source = SourceState.current()
    let root: String
    if let directory = options.directory {
        try createDirectory(directory)
        root = directory
    } else {
        root = try makeTemporaryDirectory()
        temporaryRoot = root
    }
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { sig in
            cleanUp()
            _exit(128 + sig)
        }
    }
    if !allocationCountingWorks() {
        printError("warning: allocation counting is not in effect; allocs_* figures are meaningless")
    }

    printError("""
        eventlog-bench: N=\(options.n) A2=\(options.a2Events) A3=\(options.a3Appends) R3=\(options.r3Reads) \
        rounds=\(options.rounds) dir=\(root)
        machine: \(machine.cores) cores, \(machine.memoryBytes >> 20) MiB, \(machine.kernel)
        """)

    var results = Results()
    var expectations: Expectations?
    for r in 1...options.rounds {
        var round = Round(options: options, directory: root, results: results)
        if options.stores.contains("a") {
            let start = now()
            try round.runStoreA(suffix: "", compression: .none, expectations: &expectations)
            printError("round \(r): A1, R1, R3 done (\(formatValue(now() - start)) s)")
        }
        if options.stores.contains("lz4") {
            let start = now()
            try round.runStoreA(suffix: "-lz4", compression: .lz4, expectations: &expectations)
            printError("round \(r): A1-lz4, R1-lz4, R3-lz4 done (\(formatValue(now() - start)) s)")
        }
        if options.stores.contains("b") {
            let start = now()
            try round.runStoreB()
            printError("round \(r): A2, A3 done (\(formatValue(now() - start)) s)")
        }
        results = round.results
    }
    results.add("process", "peak_rss_mb", Double(peakRSSBytes()) / 1e6, durability: "-")

    fflush(nil)
    print("""

        EventLog, standard workload: N=\(options.n), A2 \(options.a2Events) events, A3 \(options.a3Appends) appends, \
        R3 \(options.r3Reads) reads, \(options.rounds) round\(options.rounds == 1 ? "" : "s")
        machine: \(machine.cores) cores, \(machine.memoryBytes >> 20) MiB, \(machine.kernel)
        engine: \(source?.description ?? "unknown source state")

        """)
    print(results.table(rounds: options.rounds))
    fflush(nil)

    if let path = options.jsonPath {
        let json = results.json(
            machine: machine, source: source, n: options.n, rounds: options.rounds,
            phaseSizes: ["a2_events": options.a2Events, "a3_appends": options.a3Appends, "r3_reads": options.r3Reads])
        do { try json.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw BenchError("cannot write \(path): \(error)")
        }
        printError("wrote \(path)")
    }
}

do {
    try run()
    cleanUp()
} catch {
    printError("eventlog-bench: \(error)")
    cleanUp()
    exit(1)
}
