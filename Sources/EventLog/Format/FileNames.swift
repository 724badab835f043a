/// File names inside a log directory (Format.md, "Directory layout").
enum FileNames {
    static let metadata = "eventlog.meta"
    static let lock = "eventlog.lock"
    static let logStart = "eventlog.start"
    static let settings = "eventlog.settings"
    static let lastCompaction = "eventlog.compaction"
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
