// eventlog-bench: the standard workload (Benchmarks/WORKLOAD.md) on EventLog and,
// in the same process, on SQLite, LMDB and RocksDB. See Options.usage, and
// README.md beside Package.swift.
import Foundation
import Harness
import Workload

#if canImport(Glibc)
import Glibc
#endif

let arguments = Array(CommandLine.arguments.dropFirst())

// The writer that open-kill9 kills: `eventlog-bench __append-until-killed DIR N`.
if arguments.first == EventLogPhases.crashChildCommand {
    guard arguments.count == 3, let events = Int(arguments[2]) else {
        printError("usage: eventlog-bench \(EventLogPhases.crashChildCommand) DIR EVENTS")
        exit(2)
    }
    EventLogPhases.appendUntilKilled(path: arguments[1], events: events)
}

let options: Options
do {
    options = try Options.parse(arguments)
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

func main() throws {
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
        eventlog-bench: N=\(options.ns.map(String.init).joined(separator: ",")) rounds=\(options.rounds) \
        systems=\(options.systems.map(\.name).joined(separator: ",")) dir=\(root)
        """)

    var run = try runBenchmarks(
        options, directory: root, executable: EventLogPhases.currentExecutable(), progress: { printError($0) })
    run.command = "eventlog-bench " + arguments.joined(separator: " ")

    print("")
    print(run.textReport())
    fflush(nil)

    if let path = options.jsonPath {
        do { try run.jsonData().write(to: URL(fileURLWithPath: path)) } catch {
            throw BenchError("cannot write \(path): \(error)")
        }
        printError("wrote \(path)")
    }
    if let directory = options.reportDirectory {
        try run.writeReport(to: directory)
        printError("wrote \(directory)/chart.svg and \(directory)/summary.md")
    }
}

do {
    try main()
    cleanUp()
} catch {
    printError("eventlog-bench: \(error)")
    cleanUp()
    exit(1)
}
