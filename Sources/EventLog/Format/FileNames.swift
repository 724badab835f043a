#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// File names inside a log directory (Format.md, "Directory layout").
enum FileNames {
    static let metadata = "eventlog.meta"
    static let lock = "eventlog.lock"
    static let logStart = "eventlog.start"
    static let settings = "eventlog.settings"
    static let lastCompaction = "eventlog.compaction"
    static let cleanerCheckpoint = "eventlog.cleaner"
    /// The key store of an encrypted log (Format.md §16).
    static let keyStore = "eventlog.keys"
    /// The compaction manifest of a segment merge under way (Format.md §4.2).
    static let compactionManifest = "eventlog.swap"
    static let cleanShutdown = "clean-shutdown"
    static let segmentSuffix = ".segment"
    static let offsetIndexSuffix = ".index"
    static let timeIndexSuffix = ".timeindex"
    static let streamIndexSuffix = ".streamindex"
    /// Format version 1's stream table, removed by a writer of version 2.
    static let legacyStreamTable = "streams.table"
    static let streamTableRunSuffix = ".streamtable"
    static let cursorJournal = "cursors.journal"

    /// The 20-digit, zero-padded base position that names a segment and its indexes.
    static func stem(_ basePosition: UInt64) -> String {
        let digits = String(basePosition)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    static func segment(_ base: UInt64) -> String { stem(base) + segmentSuffix }
    static func offsetIndex(_ base: UInt64) -> String { stem(base) + offsetIndexSuffix }
    static func timeIndex(_ base: UInt64) -> String { stem(base) + timeIndexSuffix }
    static func streamIndex(_ base: UInt64) -> String { stem(base) + streamIndexSuffix }
    /// The segment's file and its index files, the segment last.
    static func segmentFiles(_ base: UInt64) -> [String] {
        [offsetIndex(base), timeIndex(base), streamIndex(base), segment(base)]
    }

    /// The base position named by a segment file name, or nil for any other name.
    static func segmentBase(_ name: String) -> UInt64? {
        guard name.hasSuffix(segmentSuffix) else { return nil }
        let stem = name.dropLast(segmentSuffix.count)
        guard stem.count == 20, stem.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return UInt64(stem)
    }

    /// The stream table run of the changes made by the records at positions
    /// `[from, to)` (Format.md §14.1): `FFFFFFFFFFFFFFFFFFFF-TTTTTTTTTTTTTTTTTTTT.streamtable`.
    static func streamTableRun(from: UInt64, to: UInt64) -> String { stem(from) + "-" + stem(to) + streamTableRunSuffix }

    /// What every damaged directory's name starts with.
    static let damagedDirectoryPrefix = "damaged-"

    /// The directory `Log.repair` moves what it takes out of the log into
    /// (Format.md §10.1): `damaged-` and the UTC time of the repair to the
    /// second, ISO 8601 basic format (`damaged-20261129T070000Z`).
    static func damagedDirectory(at time: Timestamp) -> String {
        var seconds = time_t(time / 1_000_000)
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return damagedDirectoryPrefix + String(seconds) }
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return damagedDirectoryPrefix + "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))"
            + "T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    /// The bytes a repair cut off segment `base` from byte `offset` on, in
    /// the damaged directory (`00000000000000000000.segment.from-4096`).
    static func cutOff(_ base: UInt64, from offset: Int) -> String { segment(base) + ".from-\(offset)" }

    /// The positions named by a stream table run's file name, or nil for any
    /// other name (including one whose `from` is after its `to`).
    static func streamTableRunRange(_ name: String) -> (from: UInt64, to: UInt64)? {
        guard name.hasSuffix(streamTableRunSuffix) else { return nil }
        let stem = name.dropLast(streamTableRunSuffix.count)
        guard stem.count == 41, stem.dropFirst(20).first == "-" else { return nil }
        let first = stem.prefix(20)
        let second = stem.suffix(20)
        guard first.allSatisfy({ $0 >= "0" && $0 <= "9" }), second.allSatisfy({ $0 >= "0" && $0 <= "9" }),
              let from = UInt64(first), let to = UInt64(second), from <= to
        else { return nil }
        return (from, to)
    }
}
