import Foundation

/// Command-line settings of `eventlog-bench`.
struct Options {
    /// Events in A1 (and the position range of R3).
    var n = 1_000_000
    var rounds = 1
    /// Events appended in A2 (batches of 100, durable each).
    var a2Events = 100_000
    /// Single durable appends in A3.
    var a3Appends = 2_000
    /// Random point reads in R3.
    var r3Reads = 100_000
    /// Parent directory of the stores; nil: a fresh temporary one, deleted at exit.
    var directory: String?
    /// Keep the stores after the run (for inspection).
    var keep = false
    var jsonPath: String?
    /// `--check N`: print the generator's digest of N events and exit.
    var check: Int?
    /// Which stores to run: "a" (A1, R1, R3), "lz4" (A1-lz4, R1-lz4,
    /// R3-lz4), "b" (A2, A3).
    var stores: Set<String> = ["a", "lz4", "b"]
    static let allStores = ["a", "lz4", "b"]

    static let usage = """
        usage: eventlog-bench [--n N] [--rounds R] [--quick] [--dir PATH] [--json FILE]
                              [--a2 N] [--a3 N] [--r3 N] [--only STORES] [--no-lz4] [--keep]
                              [--check N]

          --n N        events in A1 and A1-lz4 (default 1000000)
          --rounds R   run every phase R times; report median, min and max (default 1)
          --quick      N=100000, A2 10000 events, A3 500 appends, R3 20000 reads
          --dir PATH   put the stores under PATH (default: a fresh directory under
                       $TMPDIR or /tmp, deleted at exit); the stores are deleted after use
          --json FILE  also write the results as JSON
          --a2 N, --a3 N, --r3 N   override the phase sizes
          --only STORES  comma-separated subset of: a (A1, R1, R3), lz4 (A1-lz4, R1-lz4,
                       R3-lz4), b (A2, A3); default all (for profiling one phase group)
          --no-lz4     same as --only a,b
          --keep       keep the stores (and the temporary directory)
          --check N    print the FNV-1a 64 digest and logical bytes of the first N
                       generated events, and exit
        """

    static func parse(_ arguments: [String]) throws(UsageError) -> Options {
        var options = Options()
        var explicitN: Int?
        var explicit: [String: Int] = [:]
        var quick = false
        var i = 0
        func value(_ flag: String) throws(UsageError) -> String {
            i += 1
            guard i < arguments.count else { throw UsageError("\(flag) needs a value") }
            return arguments[i]
        }
        func count(_ flag: String, minimum: Int = 1) throws(UsageError) -> Int {
            let text = try value(flag).replacingOccurrences(of: "_", with: "").replacingOccurrences(of: ",", with: "")
            guard let number = Int(text), number >= minimum else {
                throw UsageError("\(flag) needs a whole number ≥ \(minimum), got '\(arguments[i])'")
            }
            return number
        }
        while i < arguments.count {
            let flag = arguments[i]
            switch flag {
            case "--n": explicitN = try count(flag)
            case "--rounds": options.rounds = try count(flag)
            case "--quick": quick = true
            case "--dir": options.directory = try value(flag)
            case "--json": options.jsonPath = try value(flag)
            case "--check": options.check = try count(flag, minimum: 0)
            case "--a2": explicit["a2"] = try count(flag)
            case "--a3": explicit["a3"] = try count(flag)
            case "--r3": explicit["r3"] = try count(flag)
            case "--no-lz4": options.stores.remove("lz4")
            case "--only":
                let list = try value(flag).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                guard !list.isEmpty, list.allSatisfy(Options.allStores.contains) else {
                    throw UsageError("--only takes a comma-separated subset of a, lz4, b; got '\(arguments[i])'")
                }
                options.stores = Set(list)
            case "--keep": options.keep = true
            case "-h", "--help": throw UsageError(nil)
            default: throw UsageError("unknown argument '\(flag)'")
            }
            i += 1
        }
        if quick {
            options.n = 100_000
            options.a2Events = 10_000
            options.a3Appends = 500
            options.r3Reads = 20_000
        }
        if let explicitN { options.n = explicitN }
        if let a2 = explicit["a2"] { options.a2Events = a2 }
        if let a3 = explicit["a3"] { options.a3Appends = a3 }
        if let r3 = explicit["r3"] { options.r3Reads = r3 }
        return options
    }
}

struct UsageError: Error {
    let message: String?
    init(_ message: String?) { self.message = message }
}
