import Foundation

/// Command-line settings of `eventlog-bench`.
public struct Options: Sendable {
    public var sizes = PhaseSizes.standard
    public var rounds = 3
    /// The N of each run: one, or `--scale`'s list.
    public var ns: [Int] = [1_000_000]
    public var isScale = false
    public var isQuick = false
    public var systems: [SystemID] = SystemID.allCases
    /// Parent directory of the stores; nil: a fresh temporary one, deleted at exit.
    public var directory: String?
    /// Keep the stores after the run (for inspection).
    public var keep = false
    public var jsonPath: String?
    public var reportDirectory: String?
    /// `--check N`: print the generator's digest of N events and exit.
    public var check: Int?
    /// Phase groups to skip: EventLog's extra "lz4", "enc", "open", "scavenge", and every system's "concurrent" (C phases).
    public var skip: Set<String> = []
    public static let extraGroups = ["lz4", "enc", "concurrent", "open", "scavenge"]
    /// The streams-scale phase group (`--streams-scale LIST`); runs when it has counts.
    public var streamsScale = StreamsScaleSizes()
    /// `--batch-cache-bytes`: EventLog's encrypted store's `LogOptions.batchCacheBytes` (nil: its default).
    public var batchCacheBytes: Int?
    /// `--compression-unit-bytes`: EventLog's LZ4 store's `LogOptions.compressionUnitBytes` (nil: its default).
    public var compressionUnitBytes: Int?
    /// `--dictionary-unit-bytes`: EventLog's LZ4 store's `LogOptions.dictionaryUnitBytes` (nil: its default).
    public var dictionaryUnitBytes: Int?
    /// `--crash-events`, when given (default: N).
    var explicitCrashEvents: Int?

    public init() {}

    /// The phase sizes for one N of the run.
    public func sizes(n: Int) -> PhaseSizes {
        var sizes = self.sizes
        sizes.n = n
        sizes.crashEvents = skip.contains("open") ? 0 : (explicitCrashEvents ?? n)
        return sizes
    }

    public static let usage = """
        usage: eventlog-bench [--quick | --scale] [--n N] [--rounds R] [--systems LIST]
                              [--json FILE] [--report DIR] [--dir PATH] [--keep]
                              [--a2 N] [--a3 N] [--r2 N] [--r3 N] [--threads LIST]
                              [--appends-per-thread N] [--crash-events N] [--skip GROUPS]
                              [--batch-cache-bytes N] [--compression-unit-bytes N] [--dictionary-unit-bytes N]
                              [--check N] [--streams-scale LIST [--only-streams-scale]
                              [--streams-reads N] [--streams-appends N] [--streams-kill-events N]]

        The standard workload (Benchmarks/WORKLOAD.md) on EventLog and, in the same
        process and interleaved round by round, on SQLite, LMDB and RocksDB.

          --n N        events in A1 (default 1000000)
          --rounds R   rounds; the table gives median and min–max (default 3; --quick: 1)
          --quick      small sizes, EventLog and SQLite, one round (< 60 s): N 100000,
                       A2 10000, A3 500, R2 200, R3 20000, 250 appends per thread
          --scale      run N = 100000, 1000000 and 10000000 (or --scale-n LIST) and show
                       how each phase's cost grows with N
          --systems LIST  comma-separated: eventlog, sqlite, sqlite-tuned, lmdb, rocksdb,
                       rocksdb-tuned, or all (default all; --quick: eventlog,sqlite)
          --json FILE  write {"machine", "n", "rounds", "results": [...]} to FILE
          --report DIR write chart.svg and summary.md to DIR
          --dir PATH   put the stores under PATH (default: a fresh directory under
                       $TMPDIR or /tmp, deleted at exit); each store is deleted after use
          --keep       keep the stores
          --a2 N, --a3 N, --r2 N, --r3 N   phase sizes (defaults 100000, 2000, 1000, 100000)
          --threads LIST   thread counts of the concurrent-appender phases C1... (1,2,4,8)
          --appends-per-thread N   single durable appends per thread there (2000)
          --crash-events N   events the writer killed in open-kill9 has acknowledged (N)
          --skip GROUPS  skip phase groups: concurrent (every system's C phases), and
                       EventLog's extra lz4, enc, open, scavenge
          --batch-cache-bytes N  LogOptions.batchCacheBytes of EventLog's encrypted store (the
                       cache of opened batches its R2-enc and R3-enc read through; default:
                       the library's, 32 MiB; 0 turns it off)
          --compression-unit-bytes N  LogOptions.compressionUnitBytes of EventLog's LZ4 store
                       (the size of the units R2-lz4 and R3-lz4 decompress one at a time;
                       default: the library's, 12 KiB; 1024 to 33554432): its batches
                       that give a segment's dictionary, or, with
                       --dictionary-unit-bytes 0, every batch
          --dictionary-unit-bytes N  LogOptions.dictionaryUnitBytes of EventLog's LZ4
                       store (the units of the batches compressed against their
                       segment's dictionary, Format.md §5.4; default: the
                       library's; 0: no dictionary; else 128 to 33554432)
          --check N    print the FNV-1a 64 digest and logical bytes of the first N
                       generated events, and exit
          --streams-scale LIST  after the standard phases, the streams-scale group for each
                       stream count S in LIST (e.g. 1000000,10000000): a fresh store with S
                       streams of 1-3 events each, then open after a clean close, first
                       and median stream read, appends with exact expected versions, RssAnon,
                       disk bytes per stream (EventLog also: read-only open, open after
                       kill -9); systems eventlog, sqlite, sqlite-tuned, lmdb (not RocksDB).
                       Phases streams-1M, streams-10M, ... (default: not run)
          --only-streams-scale  run the streams-scale group only, not the standard phases
          --streams-reads N     random stream reads after the first one (1000)
          --streams-appends N   events appended with expected versions (100000)
          --streams-kill-events N  events EventLog's killed writer acknowledged (10000; 0 skips)
        """

    public static func parse(_ arguments: [String]) throws(UsageError) -> Options {
        var options = Options()
        var explicitN: Int?
        var explicitRounds: Int?
        var explicitSystems: [SystemID]?
        var explicit: [String: Int] = [:]
        var threads: [Int]?
        var scaleNs: [Int]?
        var i = 0
        func value(_ flag: String) throws(UsageError) -> String {
            i += 1
            guard i < arguments.count else { throw UsageError("\(flag) needs a value") }
            return arguments[i]
        }
        func number(_ text: String, _ flag: String, minimum: Int) throws(UsageError) -> Int {
            let digits = text.replacingOccurrences(of: "_", with: "").replacingOccurrences(of: ",", with: "")
            guard let number = Int(digits), number >= minimum else {
                throw UsageError("\(flag) needs a whole number ≥ \(minimum), got '\(text)'")
            }
            return number
        }
        func count(_ flag: String, minimum: Int = 1) throws(UsageError) -> Int {
            try number(try value(flag), flag, minimum: minimum)
        }
        func list(_ flag: String) throws(UsageError) -> [Int] {
            var numbers: [Int] = []
            for part in try value(flag).split(separator: ",") { numbers.append(try number(String(part), flag, minimum: 1)) }
            guard !numbers.isEmpty else { throw UsageError("\(flag) needs a comma-separated list of numbers") }
            return numbers
        }
        while i < arguments.count {
            let flag = arguments[i]
            switch flag {
            case "--n": explicitN = try count(flag)
            case "--rounds": explicitRounds = try count(flag)
            case "--quick": options.isQuick = true
            case "--scale": options.isScale = true
            case "--scale-n":
                options.isScale = true
                scaleNs = try list(flag)
            case "--systems":
                let text = try value(flag)
                guard let systems = SystemID.parseList(text) else {
                    throw UsageError("--systems takes a comma-separated list of \(SystemID.allCases.map(\.name).joined(separator: ", ")) or all; got '\(text)'")
                }
                explicitSystems = systems
            case "--dir": options.directory = try value(flag)
            case "--json": options.jsonPath = try value(flag)
            case "--report": options.reportDirectory = try value(flag)
            case "--check": options.check = try count(flag, minimum: 0)
            case "--a2": explicit["a2"] = try count(flag)
            case "--a3": explicit["a3"] = try count(flag)
            case "--r2": explicit["r2"] = try count(flag)
            case "--r3": explicit["r3"] = try count(flag)
            case "--appends-per-thread": explicit["apt"] = try count(flag)
            case "--crash-events": options.explicitCrashEvents = try count(flag, minimum: 0)
            case "--batch-cache-bytes": options.batchCacheBytes = try count(flag, minimum: 0)
            case "--compression-unit-bytes": options.compressionUnitBytes = try count(flag, minimum: 1024)
            case "--dictionary-unit-bytes": options.dictionaryUnitBytes = try count(flag, minimum: 0)
            case "--threads": threads = try list(flag)
            case "--skip":
                let groups = try value(flag).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                guard !groups.isEmpty, groups.allSatisfy(Options.extraGroups.contains) else {
                    throw UsageError("--skip takes a comma-separated subset of \(Options.extraGroups.joined(separator: ", ")); got '\(arguments[i])'")
                }
                options.skip.formUnion(groups)
            case "--keep": options.keep = true
            case "--streams-scale": options.streamsScale.counts = try list(flag)
            case "--only-streams-scale": options.streamsScale.only = true
            case "--streams-reads": options.streamsScale.reads = try count(flag, minimum: 0)
            case "--streams-appends": options.streamsScale.appends = try count(flag, minimum: 0)
            case "--streams-kill-events": options.streamsScale.killEvents = try count(flag, minimum: 0)
            case "-h", "--help": throw UsageError(nil)
            default: throw UsageError("unknown argument '\(flag)'")
            }
            i += 1
        }
        if options.isQuick && options.isScale { throw UsageError("--quick and --scale exclude each other") }
        if options.streamsScale.only && options.streamsScale.counts.isEmpty {
            throw UsageError("--only-streams-scale needs --streams-scale LIST")
        }
        if let huge = options.streamsScale.counts.first(where: { $0 > 1_000_000_000 }) {
            throw UsageError("--streams-scale counts go up to 1000000000, got \(huge)")
        }
        if options.isQuick {
            options.sizes = .quick
            options.rounds = 1
            options.systems = [.eventlog, .sqlite]
            options.ns = [options.sizes.n]
        }
        if options.isScale { options.ns = scaleNs ?? [100_000, 1_000_000, 10_000_000] }
        if let explicitN {
            guard !options.isScale else { throw UsageError("--n does not go with --scale (use --scale-n LIST)") }
            options.ns = [explicitN]
        }
        options.sizes.n = options.ns[0]
        if let explicitRounds { options.rounds = explicitRounds }
        if let explicitSystems { options.systems = explicitSystems }
        if let a2 = explicit["a2"] { options.sizes.a2 = a2 }
        if let a3 = explicit["a3"] { options.sizes.a3 = a3 }
        if let r2 = explicit["r2"] { options.sizes.r2 = r2 }
        if let r3 = explicit["r3"] { options.sizes.r3 = r3 }
        if let apt = explicit["apt"] { options.sizes.appendsPerThread = apt }
        if let threads { options.sizes.threads = threads }
        if options.skip.contains("concurrent") { options.sizes.threads = [] }
        return options
    }
}

public struct UsageError: Error {
    public let message: String?
    public init(_ message: String?) { self.message = message }
}
