@testable import EventLog

/// Every fuzz target: the decoder it feeds and how (Fuzz/README.md).
///
/// The binary targets read the input's first byte as a mode: when its low
/// bit is set, the checksums the decoder checks first (a file's trailing or
/// header CRC32C, a batch frame's, a cursor record's) are recomputed over the
/// mutated bytes before decoding (`Checksums`), so that mutations reach the
/// fields behind them instead of stopping at "checksum mismatch" (the block
/// checksums of stream indexes and stream table runs too); when it is
/// clear, the bytes are decoded as they are. The seeds (Fuzz/Corpus) are real
/// files with a leading 0x01.
enum FuzzTarget: String, CaseIterable, Sendable {
    /// One batch frame (plain, LZ4 or sealed) and its records: `BatchHeader.check`,
    /// the records area (decompressed for LZ4, and unit by unit as a point
    /// read does for LZ4 units; a sealed one opened by
    /// `SealedBatch.open` under a fixed key 1, key 2 forgotten), `Record.decode`
    /// (with and without each record's checksum), `Record.skip`, `MetadataCoding.decode`.
    case batch
    /// `SegmentHeader.decode`.
    case segmentHeader = "segment-header"
    /// `IndexFile.decodeOffsetIndex`.
    case offsetIndex = "offset-index"
    /// `IndexFile.decodeTimeIndex`.
    case timeIndex = "time-index"
    /// `StreamIndexView` checks, `verify()` and lookups.
    case streamIndex = "stream-index"
    /// `StreamTableRunView` checks, `verify()`, every row and lookups.
    case streamTableRun = "stream-table-run"
    /// `CursorJournalHeader.check`, then the records in both layouts:
    /// `CursorRecord.decode`, `nextChecked`, `readableNames`.
    case cursorJournal = "cursor-journal"
    /// `LogMetadata.decode` (`eventlog.meta`), for reading and for writing.
    case meta
    /// `LastCompactionFile.decode` (`eventlog.compaction`).
    case compaction
    /// `CompactionManifest.decode` (`eventlog.swap`).
    case swap
    /// `KeyStoreFile.Header.decode` and every entry's `KeyStoreFile.scan`
    /// (`eventlog.keys`, Format.md §16).
    case keyStore = "key-store"
    /// The input is segment 0 of a log directory: a read-only
    /// `Log.open` (the scanner, the tail judgement, index rebuilds), a read
    /// of every event, then `Log.verify(at:)`.
    case log
    /// One file of a real log (the cursor journal, `eventlog.meta`, an index,
    /// …: `LogFilesTarget.kinds`, picked by the first byte) replaced by the
    /// rest of the input, then as `log`: open, read, cursors, verify.
    case logFiles = "log-files"
    /// Each line through `JSONEventLine.parseLine` (`eventlog append`).
    case appendJSON = "append-json"
    /// Each line through one `ExportReader` (`eventlog import`).
    case importJSON = "import-json"

    func run(_ input: [UInt8]) {
        switch self {
        case .appendJSON: return AppendJSONTarget.run(input)
        case .importJSON: return ImportJSONTarget.run(input)
        case .logFiles: return LogFilesTarget.run(input)
        default: break
        }
        guard let mode = input.first else { return }
        var bytes = Array(input.dropFirst())
        let fix = mode & 1 != 0
        switch self {
        case .batch:
            if fix { Checksums.fixFrames(&bytes, from: 0, previousCRC: nil) }
            BatchTarget.run(bytes)
        case .segmentHeader:
            if fix { Checksums.fixTrailing(&bytes, length: SegmentHeader.size) }
            bytes.withUnsafeBytes { raw in
                _ = try? SegmentHeader.decode(raw, file: "fuzz", logID: nil, expectedBase: nil)
                _ = try? SegmentHeader.decode(raw, file: "fuzz", logID: Array(repeating: 0, count: 16), expectedBase: 0)
            }
        case .offsetIndex:
            if fix { Checksums.fixTrailing(&bytes, length: bytes.count) }
            _ = try? IndexFile.decodeOffsetIndex(bytes)
        case .timeIndex:
            if fix { Checksums.fixTrailing(&bytes, length: bytes.count) }
            _ = try? IndexFile.decodeTimeIndex(bytes)
        case .streamIndex:
            if fix { Checksums.fixStreamIndex(&bytes) }
            StreamIndexTarget.run(bytes)
        case .streamTableRun:
            if fix { Checksums.fixStreamTableRun(&bytes) }
            StreamTableRunTarget.run(bytes)
        case .cursorJournal:
            CursorJournalTarget.run(bytes, fix: fix)
        case .meta:
            if fix { Checksums.fixTrailing(&bytes, length: bytes.count) }
            _ = try? LogMetadata.decode(bytes, file: "fuzz")
            _ = try? LogMetadata.decode(bytes, file: "fuzz", writing: true)
        case .compaction:
            if fix { Checksums.fixTrailing(&bytes, length: bytes.count) }
            _ = try? LastCompactionFile.decode(bytes, file: "fuzz")
        case .swap:
            if fix { Checksums.fixTrailing(&bytes, length: bytes.count) }
            _ = try? CompactionManifest.decode(bytes, file: "fuzz")
        case .keyStore:
            if fix { Checksums.fixKeyStore(&bytes) }
            KeyStoreTarget.run(bytes)
        case .log:
            if fix { Checksums.fixSegment(&bytes) }
            WholeLogTarget.run(bytes)
        case .appendJSON, .importJSON, .logFiles:
            break
        }
    }
}
