/// The offset and time index files written beside a segment (Format.md,
/// "Index files"). Both share one container:
///
///     0   u64  magic "EVLOGOIX" (offset) or "EVLOGTIX" (time)
///     8   u16  format version
///     10  u16  entry size (8 or 16)
///     12  u32  entry count
///     16  u64  segment base position
///     24  u64  segment end position (after the last batch)
///     32  u32  segment data end (byte offset after the last batch)
///     36  u32  last batch offset
///     40  u32  last batch crc
///     44  u32  reserved (0)
///     48  i64  first timestamp of the segment (Int64.min when empty)
///     56  i64  largest timestamp in the segment (Int64.min when empty)
///     64  …    entries
///     …   u32  CRC32C of everything before it
///
/// Indexes are derived data: any doubt (bad checksum, wrong base, a
/// description of the segment that its data does not confirm) and they are
/// rebuilt from the segment.
struct IndexFileHeader: Equatable, Sendable {
    static let size = 64

    var basePosition: UInt64
    var endPosition: UInt64
    var dataEnd: UInt32
    var lastBatchOffset: UInt32
    var lastBatchCRC: UInt32
    var firstTimestamp: Timestamp
    var maxTimestamp: Timestamp
}

enum IndexFile {
    static func encodeOffsetIndex(_ header: IndexFileHeader, entries: [OffsetIndexEntry]) -> [UInt8] {
        var w = container(Magic.offsetIndex, entrySize: 8, count: entries.count, header)
        for e in entries {
            w.le(e.relativePosition)
            w.le(e.offset)
        }
        w.appendChecksum()
        return w.bytes
    }

    static func encodeTimeIndex(_ header: IndexFileHeader, entries: [TimeIndexEntry]) -> [UInt8] {
        var w = container(Magic.timeIndex, entrySize: 16, count: entries.count, header)
        for e in entries {
            w.le(e.maxTimestampBefore)
            w.le(e.relativePosition)
            w.le(e.offset)
        }
        w.appendChecksum()
        return w.bytes
    }

    private static func container(_ magic: UInt64, entrySize: UInt16, count: Int, _ h: IndexFileHeader) -> ByteWriter {
        var w = ByteWriter()
        w.bytes.reserveCapacity(IndexFileHeader.size + count * Int(entrySize) + 4)
        w.le(magic)
        w.le(FormatVersion.current)
        w.le(entrySize)
        w.le(UInt32(count))
        w.le(h.basePosition)
        w.le(h.endPosition)
        w.le(h.dataEnd)
        w.le(h.lastBatchOffset)
        w.le(h.lastBatchCRC)
        w.le(UInt32(0))
        w.le(h.firstTimestamp)
        w.le(h.maxTimestamp)
        return w
    }

    /// Why an index file was not usable (it is then rebuilt), and the
    /// offset of the field that says so: the magic, version, entry size or
    /// count field, the checksum field (a bit flip anywhere shows there),
    /// the reserved bytes or the entry; 0 for a file too short for a header.
    struct Unusable: Error {
        let reason: String
        var offset: Int64 = 0
    }

    static func decodeOffsetIndex(_ bytes: [UInt8]) throws(Unusable) -> (IndexFileHeader, [OffsetIndexEntry]) {
        let (header, count, r) = try decodeContainer(bytes, magic: Magic.offsetIndex, entrySize: 8)
        var entries: [OffsetIndexEntry] = []
        entries.reserveCapacity(count)
        var batchOffset: UInt32 = 0
        for i in 0..<count {
            let at = IndexFileHeader.size + i * 8
            let offset = r.le(at + 4, UInt32.self)
            if offset & OffsetIndexEntry.inBatchFlag == 0 {
                batchOffset = offset
            } else if i == 0 {
                throw Unusable(reason: "the first entry is inside a batch", offset: Int64(at + 4))
            }
            entries.append(OffsetIndexEntry(relativePosition: r.le(at, UInt32.self), offset: offset, batchOffset: batchOffset))
        }
        return (header, entries)
    }

    static func decodeTimeIndex(_ bytes: [UInt8]) throws(Unusable) -> (IndexFileHeader, [TimeIndexEntry]) {
        let (header, count, r) = try decodeContainer(bytes, magic: Magic.timeIndex, entrySize: 16)
        var entries: [TimeIndexEntry] = []
        entries.reserveCapacity(count)
        for i in 0..<count {
            let at = IndexFileHeader.size + i * 16
            entries.append(TimeIndexEntry(
                maxTimestampBefore: r.le(at, Int64.self), relativePosition: r.le(at + 8, UInt32.self),
                offset: r.le(at + 12, UInt32.self)))
        }
        return (header, entries)
    }

    private static func decodeContainer(
        _ bytes: [UInt8], magic: UInt64, entrySize: Int
    ) throws(Unusable) -> (IndexFileHeader, Int, ByteReader) {
        guard bytes.count >= IndexFileHeader.size + 4 else { throw Unusable(reason: "file is \(bytes.count) bytes, too short") }
        let r = ByteReader(bytes: bytes)
        guard r.le(0, UInt64.self) == magic else { throw Unusable(reason: "bad magic") }
        let version = r.le(8, UInt16.self)
        guard FormatVersion.readable.contains(version) else { throw Unusable(reason: "format version \(version)", offset: 8) }
        guard Int(r.le(10, UInt16.self)) == entrySize else { throw Unusable(reason: "wrong entry size", offset: 10) }
        let count = Int(r.le(12, UInt32.self))
        guard bytes.count == IndexFileHeader.size + count * entrySize + 4 else {
            throw Unusable(reason: "length does not match its \(count) entries", offset: 12)
        }
        guard r.checksumHolds(length: bytes.count) else { throw Unusable(reason: "checksum mismatch", offset: Int64(bytes.count - 4)) }
        guard Reserved.firstNonZero(bytes, 44..<48) == nil else { throw Unusable(reason: "reserved field is not zero", offset: 44) }
        let header = IndexFileHeader(
            basePosition: r.le(16, UInt64.self), endPosition: r.le(24, UInt64.self), dataEnd: r.le(32, UInt32.self),
            lastBatchOffset: r.le(36, UInt32.self), lastBatchCRC: r.le(40, UInt32.self),
            firstTimestamp: r.le(48, Int64.self), maxTimestamp: r.le(56, Int64.self))
        return (header, count, r)
    }
}

/// An offset-index entry (Format.md §7). A batch entry: the batch starting
/// at byte `offset` of the segment has base position `segment base +
/// relativePosition`. An in-batch entry (bit 31 of the stored offset set):
/// the record starting at that offset, inside an uncompressed batch, has
/// that position.
struct OffsetIndexEntry: Sendable, Equatable {
    static let inBatchFlag: UInt32 = 1 << 31

    var relativePosition: UInt32
    /// As stored: the byte offset, with bit 31 set for an in-batch entry.
    var offset: UInt32
    /// In memory only: the byte offset of the batch this entry points into
    /// (its own offset for a batch entry), so that a search that lands on
    /// an in-batch entry reads no second entry to find its batch. Derived
    /// on load.
    var batchOffset: UInt32

    var isInBatch: Bool { offset & Self.inBatchFlag != 0 }
    var byteOffset: Int { Int(offset & ~Self.inBatchFlag) }
    /// `batchOffset` as an offset in the file.
    var batchByteOffset: Int { Int(batchOffset) }
}

/// A time-index entry: every event before the batch at `offset` (in this
/// segment) has a timestamp of at most `maxTimestampBefore`.
struct TimeIndexEntry: Sendable, Equatable {
    var maxTimestampBefore: Timestamp
    var relativePosition: UInt32
    var offset: UInt32
}
