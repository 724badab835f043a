/// The last compaction file `eventlog.compaction` (Format.md §3.3): how the
/// writer's last compaction went (`MaintenanceStatus`), so that another
/// process (`eventlog inspect`) and the next session see it. Written
/// atomically (`.tmp`, `fdatasync`, rename, directory `fsync`) by a writer
/// after a compaction that removed something or failed; a log without the
/// file has had no such compaction.
///
///     0    u64  magic "EVLOGCMP"
///     8    u16  format version (4 to 7)
///     10   u16  reserved (0)
///     12   u32  file length in bytes
///     16   u8   1 when a result follows (0: none, its fields zero)
///     17   u8   1 when a failure follows (0: none, its fields zero)
///     18   6    reserved (0)
///     24   i64  the result: finished at (microseconds since 1970)
///     32   u32  segments before
///     36   u32  segments after
///     40   u64  bytes before
///     48   u64  bytes after
///     56   u64  events removed (retention and scavenging)
///     64   u32  segments rewritten (scavenging)
///     68   u32  segments merged (version 6; reserved, 0, before)
///     72   u64  events scavenged
///     80   u64  start position before
///     88   u64  start position
///     96   i64  the failure: when (microseconds since 1970)
///     104  u16  held-back-by length in bytes (at most 1024)
///     106  u16  failure length in bytes (at most 4096)
///     108  …    held-back-by (UTF-8), then the failure's message (UTF-8)
///     …    u32  CRC32C of every byte before it
enum LastCompactionFile {
    static let headerSize = 108
    static let minSize = headerSize + 4
    /// The longest texts kept (a longer failure message is cut at a character boundary).
    static let maxHeldBackByBytes = 1024
    static let maxFailureBytes = 4096
    static let maxSize = headerSize + maxHeldBackByBytes + maxFailureBytes + 4

    static func encode(_ status: MaintenanceStatus) -> [UInt8] {
        let heldBackBy = cut(status.lastResult?.heldBackBy ?? "", to: maxHeldBackByBytes)
        let failure = status.lastFailure.map { cut($0, to: maxFailureBytes) }
        var w = ByteWriter()
        w.le(Magic.lastCompaction)
        w.le(FormatVersion.current)
        w.zeros(2)
        w.le(UInt32(headerSize + heldBackBy.count + (failure?.count ?? 0) + 4))
        w.le(UInt8(status.lastResult == nil ? 0 : 1))
        w.le(UInt8(failure == nil ? 0 : 1))
        w.zeros(6)
        let result = status.lastResult
        w.le(result?.finishedAt ?? 0)
        w.le(UInt32(clamping: result?.segmentsBefore ?? 0))
        w.le(UInt32(clamping: result?.segmentsAfter ?? 0))
        w.le(result?.bytesBefore ?? 0)
        w.le(result?.bytesAfter ?? 0)
        w.le(result?.eventsRemoved ?? 0)
        w.le(UInt32(clamping: result?.segmentsRewritten ?? 0))
        w.le(UInt32(clamping: result?.segmentsMerged ?? 0))
        w.le(result?.eventsScavenged ?? 0)
        w.le(result?.startPositionBefore ?? 0)
        w.le(result?.startPosition ?? 0)
        w.le(failure == nil ? 0 : status.lastFailureAt ?? 0)
        w.le(UInt16(heldBackBy.count))
        w.le(UInt16(failure?.count ?? 0))
        w.raw(heldBackBy)
        w.raw(failure ?? [])
        w.appendChecksum()
        return w.bytes
    }

    /// Decodes and checks the file: magic, version, length, checksum,
    /// reserved bytes, then each field. Throws `foreignFile`,
    /// `unsupportedFormatVersion` or `corruption` naming `file` and the offset.
    static func decode(_ bytes: [UInt8], file: String) throws(EventLogError) -> MaintenanceStatus {
        // The layout is version 4's; version 6 gave bytes 68–71 the segments merged.
        let version = bytes.count >= 10 ? ByteReader(bytes: bytes).le(8, UInt16.self) : 0
        let r = try VariableFile.reader(
            bytes, magic: Magic.lastCompaction, oldestVersion: 4, sizes: minSize...maxSize, file: file,
            what: "last compaction file", reserved: version >= 6 ? [10..<12, 18..<24] : [10..<12, 18..<24, 68..<72])
        let length = bytes.count
        let hasResult = r.le(16, UInt8.self)
        let hasFailure = r.le(17, UInt8.self)
        guard hasResult <= 1 else { throw .corruption(file: file, offset: 16, reason: "the result flag is \(hasResult), not 0 or 1") }
        guard hasFailure <= 1 else { throw .corruption(file: file, offset: 17, reason: "the failure flag is \(hasFailure), not 0 or 1") }
        let heldBackLength = Int(r.le(104, UInt16.self))
        let failureLength = Int(r.le(106, UInt16.self))
        guard heldBackLength <= maxHeldBackByBytes, failureLength <= maxFailureBytes,
              headerSize + heldBackLength + failureLength + 4 == length
        else {
            throw .corruption(
                file: file, offset: 104,
                reason: "texts of \(heldBackLength) and \(failureLength) bytes do not fill the file's \(length) bytes")
        }
        guard hasResult == 1 || heldBackLength == 0 else { throw .corruption(file: file, offset: 104, reason: "a held-back-by text without a result") }
        guard hasFailure == 1 || failureLength == 0 else { throw .corruption(file: file, offset: 106, reason: "a failure text without a failure") }
        func text(_ range: Range<Int>) throws(EventLogError) -> String {
            guard let value = String(validating: bytes[range], as: UTF8.self) else {
                throw .corruption(file: file, offset: Int64(range.lowerBound), reason: "a text is not UTF-8")
            }
            return value
        }
        let heldBackBy = try text(headerSize..<(headerSize + heldBackLength))
        let failure = try text((headerSize + heldBackLength)..<(headerSize + heldBackLength + failureLength))
        var status = MaintenanceStatus()
        if hasResult == 1 {
            status.lastResult = CompactionResult(
                dryRun: false, segmentsBefore: Int(r.le(32, UInt32.self)), segmentsAfter: Int(r.le(36, UInt32.self)),
                bytesBefore: r.le(40, UInt64.self), bytesAfter: r.le(48, UInt64.self), eventsRemoved: r.le(56, UInt64.self),
                segmentsRewritten: Int(r.le(64, UInt32.self)), eventsScavenged: r.le(72, UInt64.self),
                startPositionBefore: r.le(80, UInt64.self), startPosition: r.le(88, UInt64.self),
                heldBackBy: heldBackLength > 0 ? heldBackBy : nil, finishedAt: r.le(24, Int64.self))
            status.lastResult?.segmentsMerged = Int(r.le(68, UInt32.self))
        } else if let at = Reserved.firstNonZero(bytes, 24..<96) {
            throw .corruption(file: file, offset: Int64(at), reason: "result byte \(at) is not zero, and there is no result")
        }
        if hasFailure == 1 {
            status.lastFailure = failure
            status.lastFailureAt = r.le(96, Int64.self)
        } else if let at = Reserved.firstNonZero(bytes, 96..<104) {
            throw .corruption(file: file, offset: Int64(at), reason: "failure byte \(at) is not zero, and there is no failure")
        }
        return status
    }

    /// The UTF-8 bytes of `text`, cut to at most `limit` at a character boundary.
    private static func cut(_ text: String, to limit: Int) -> [UInt8] {
        var count = 0
        for scalar in text.unicodeScalars {
            let width = UTF8.width(scalar)
            if count + width > limit { break }
            count += width
        }
        return Array(text.utf8.prefix(count))
    }
}
