/// The cleaner checkpoint `eventlog.cleaner` (Format.md §3.4): the sealed
/// segments a writer's scavenging found with too few dead events to rewrite,
/// and what they were judged under, so that the first pass after a restart
/// does not read every segment again. Written atomically (`.tmp`,
/// `fdatasync`, rename, directory `fsync`) by a writer after a pass that
/// changed what it holds; derived data: a reader that finds it missing,
/// damaged or out of date judges every segment again.
///
///     0    u64  magic "EVLOGCKP"
///     8    u16  format version (7)
///     10   u16  reserved (0)
///     12   u32  file length in bytes
///     16   u64  judged to: the log's end position when the segments were
///               judged; every stream marker before it had been applied
///     24   u64  key compaction: the sealed segments' end (0: off)
///     32   i64  key compaction: the tombstone retention, microseconds (-1: off)
///     40   u64  key compaction: where the key map's window started
///     48   u32  segment count n (at most `maxSegments`)
///     52   u32  reserved (0)
///     56   n ×  u64 base position, u64 end position, u64 data end,
///               i64 recheck at (microseconds since 1970; Int64.max: never)
///     …    u32  CRC32C of every byte before it
struct CleanerCheckpoint: Equatable, Sendable {
    /// A segment found clean: which file (its base, end and data end, all
    /// of which a rewrite or a merge changes) and when a max age or a
    /// tombstone's retention may make more of it dead.
    struct Segment: Equatable, Sendable {
        var basePosition: UInt64
        var endPosition: UInt64
        var dataEnd: UInt64
        var recheckAt: Timestamp
    }

    var judgedTo: UInt64
    var sealedEnd: UInt64
    var tombstoneRetention: Int64
    var keyWindowStart: UInt64
    var segments: [Segment]

    static let headerSize = 56
    static let segmentSize = 32
    /// The most segments a checkpoint holds (a log of 128 MiB segments: 128 TiB).
    static let maxSegments = 1 << 20
    static let minSize = headerSize + 4
    static let maxSize = headerSize + maxSegments * segmentSize + 4

    func encode() -> [UInt8] {
        let kept = segments.prefix(Self.maxSegments)
        var w = ByteWriter()
        w.le(Magic.cleanerCheckpoint)
        w.le(FormatVersion.current)
        w.zeros(2)
        w.le(UInt32(Self.headerSize + kept.count * Self.segmentSize + 4))
        w.le(judgedTo)
        w.le(sealedEnd)
        w.le(tombstoneRetention)
        w.le(keyWindowStart)
        w.le(UInt32(kept.count))
        w.zeros(4)
        for segment in kept {
            w.le(segment.basePosition)
            w.le(segment.endPosition)
            w.le(segment.dataEnd)
            w.le(segment.recheckAt)
        }
        w.appendChecksum()
        return w.bytes
    }

    /// Decodes and checks the file: magic, version, length, checksum,
    /// reserved bytes, the count against the length, and that each
    /// segment's positions and data end are in order. Throws `foreignFile`,
    /// `unsupportedFormatVersion` or `corruption` naming `file` and the offset.
    static func decode(_ bytes: [UInt8], file: String) throws(EventLogError) -> CleanerCheckpoint {
        let r = try VariableFile.reader(
            bytes, magic: Magic.cleanerCheckpoint, oldestVersion: 7, sizes: minSize...maxSize, file: file,
            what: "cleaner checkpoint", reserved: [10..<12, 52..<56])
        let count = Int(r.le(48, UInt32.self))
        guard count <= maxSegments, headerSize + count * segmentSize + 4 == bytes.count else {
            throw .corruption(file: file, offset: 48, reason: "\(count) segments do not fill the file's \(bytes.count) bytes")
        }
        var segments: [Segment] = []
        segments.reserveCapacity(count)
        var previousEnd: UInt64 = 0
        for i in 0..<count {
            let at = headerSize + i * segmentSize
            let segment = Segment(
                basePosition: r.le(at, UInt64.self), endPosition: r.le(at + 8, UInt64.self), dataEnd: r.le(at + 16, UInt64.self),
                recheckAt: r.le(at + 24, Int64.self))
            guard segment.basePosition < segment.endPosition, segment.basePosition >= previousEnd,
                  segment.dataEnd >= UInt64(SegmentHeader.size)
            else {
                throw .corruption(file: file, offset: Int64(at), reason: "segment \(i) is out of order or empty")
            }
            previousEnd = segment.endPosition
            segments.append(segment)
        }
        return CleanerCheckpoint(
            judgedTo: r.le(16, UInt64.self), sealedEnd: r.le(24, UInt64.self), tombstoneRetention: r.le(32, Int64.self),
            keyWindowStart: r.le(40, UInt64.self), segments: segments)
    }
}
