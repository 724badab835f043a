/// The on-disk format versions this build knows (Format.md §12, "Versioning").
///
/// Like SQLite's pair of version bytes, a log has a **read version** (the
/// version field of every file, `eventlog.meta`'s included) and a **write
/// version** (`eventlog.meta` bytes 10–11; 0 there means "equal to the read
/// version"). A build opens a log whose read version it knows; it writes to
/// it only when it knows the write version too. Any other read version is
/// refused with `EventLogError.unsupportedFormatVersion`, never guessed at.
enum FormatVersion {
    /// The read version: the version field this build writes in every file.
    /// Version 2 replaced the stream table file with stream table runs and
    /// gave stream index files per-block checksums; version 3 lets
    /// retention move the log start: the chain of stream table runs starts
    /// at position 0 whatever the start, and the log's settings live in
    /// `eventlog.settings`; version 4 lets scavenging rewrite a sealed
    /// segment without its dead records: a rewritten segment declares its
    /// end position and its batches may leave gaps; version 5 adds the
    /// `$limits` stream marker and stream table runs whose rows keep each
    /// stream's limits; version 6 lets compaction merge neighbouring sealed
    /// segments under a compaction manifest, `eventlog.swap`, which a build
    /// that ignores it would read as overlapping segments; version 7 gives
    /// each cursor journal record the journal offset that was on disk
    /// before it, which tells a damaged record from a torn write; version 8
    /// adds sealed (encrypted) batches and the key store `eventlog.keys`
    /// (Format.md §5.1, §16); version 9 stores LZ4 batches in units that
    /// a point read decompresses one at a time (codec 2, §5.2); version 10
    /// gives a batch stored as is a type table, so its records name their
    /// type by a 1-byte index (batch attribute bit 4, record flag bit 6, §5.3);
    /// version 11 compresses the LZ4 units of a segment's batches after the
    /// first against a dictionary taken from that first batch (codec 3, §5.4).
    static let current: UInt16 = 11
    /// The read versions this build reads: a log of version 1 to 10 is read
    /// as it is, and a writer upgrades it (§12, "Upgrade"). Files whose
    /// layout version 2 changed (stream index files, stream table runs) are
    /// read in version 2 only (they carry their own layout version); version
    /// 1's are rebuilt.
    static let readable: ClosedRange<UInt16> = 1...11
    /// The highest write version this build may write under. A log whose
    /// write version is higher opens read-only only.
    static let write: UInt16 = 11
    /// The write version a log's metadata stores as `stored` (0: equal to
    /// the read version `read`).
    @inline(__always) static func effectiveWrite(stored: UInt16, read: UInt16) -> UInt16 {
        stored == 0 ? read : stored
    }
}

/// Reserved fields (Format.md §12): every reserved byte is written as zero,
/// and a reader refuses a file, header or frame in which one is not.
enum Reserved {
    /// The offset of the first non-zero byte of `bytes[range]`, nil when all
    /// are zero (or the range is not inside `bytes`).
    static func firstNonZero(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        return range.first { bytes[$0] != 0 }
    }

    /// The same over an array.
    static func firstNonZero(_ bytes: [UInt8], _ range: Range<Int>) -> Int? {
        bytes.withUnsafeBytes { firstNonZero($0, range) }
    }
}

/// The 8-byte magic numbers at the start of each kind of file.
enum Magic {
    static let logMetadata: UInt64 = magic("EVLOGMET")
    static let segment: UInt64 = magic("EVLOGSEG")
    static let offsetIndex: UInt64 = magic("EVLOGOIX")
    static let timeIndex: UInt64 = magic("EVLOGTIX")
    static let cleanShutdown: UInt64 = magic("EVLOGCLN")
    static let streamIndex: UInt64 = magic("EVLOGSIX")
    static let streamTable: UInt64 = magic("EVLOGSTB")
    static let streamTableRun: UInt64 = magic("EVLOGSTR")
    static let cursorJournal: UInt64 = magic("EVLOGCUR")
    static let logStart: UInt64 = magic("EVLOGSTA")
    static let logSettings: UInt64 = magic("EVLOGSET")
    static let lastCompaction: UInt64 = magic("EVLOGCMP")
    static let compactionManifest: UInt64 = magic("EVLOGSWP")
    static let cleanerCheckpoint: UInt64 = magic("EVLOGCKP")
    static let keyStore: UInt64 = magic("EVLOGKEY")

    /// The ASCII bytes read as a little-endian UInt64, so the file starts with the text.
    static func magic(_ text: StaticString) -> UInt64 {
        var value: UInt64 = 0
        text.withUTF8Buffer { buffer in
            for (i, byte) in buffer.prefix(8).enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
        }
        return value
    }
}
