/// File names inside a log directory (Format.md, "Directory layout").
enum FileNames {
    static let metadata = "eventlog.meta"
    static let lock = "eventlog.lock"
    static let logStart = "eventlog.start"
    static let cleanShutdown = "clean-shutdown"
    static let segmentSuffix = ".segment"
    static let offsetIndexSuffix = ".index"
    static let timeIndexSuffix = ".timeindex"
    static let streamIndexSuffix = ".streamindex"
    /// Format version 1's stream table, removed by a writer of version 2.
    static let legacyStreamTable = "streams.table"
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

    /// The base position named by a segment file name, or nil for any other name.
    static func segmentBase(_ name: String) -> UInt64? {
        guard name.hasSuffix(segmentSuffix) else { return nil }
        let stem = name.dropLast(segmentSuffix.count)
        guard stem.count == 20, stem.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return UInt64(stem)
    }
}
