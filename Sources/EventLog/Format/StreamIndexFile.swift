/// The stream index of one segment, the file `NNNNNNNNNNNNNNNNNNNN.streamindex`
/// (Format.md, "Stream index files"):
///
///     0   u64  magic "EVLOGSIX"
///     8   u16  format version
///     10  u16  reserved (0)
///     12  u32  group count
///     16  u64  segment base position
///     24  u64  segment end position (after the last batch described)
///     32  u32  segment data end
///     36  u32  last batch offset
///     40  u32  last batch crc
///     44  u32  entry count
///     48  16   reserved (0)
///     64  …    groups, 24 bytes each, sorted by (hash, first relative position):
///              u64 stream hash, u64 first version, u32 first entry, u32 entry count
///     …   …    entries, 8 bytes each, grouped, each group in version order:
///              u32 relative position, u32 record offset (bit 31: the offset
///              is that of the record's LZ4 batch)
///     …   u32  CRC32C of everything before it
///
/// A group is one stream's events in the segment, whose versions run from
/// `first version` up by one per entry. Two streams whose hashes collide
/// have separate groups; readers confirm the stream name on every record.
enum StreamIndexFile {
    static let headerSize = 64
    static let groupSize = 24
    static let entrySize = 8

    struct Group: Equatable {
        var hash: UInt64
        var firstVersion: UInt64
        var entries: [(relativePosition: UInt32, offset: UInt32)]

        static func == (a: Group, b: Group) -> Bool {
            a.hash == b.hash && a.firstVersion == b.firstVersion && a.entries.count == b.entries.count
                && zip(a.entries, b.entries).allSatisfy { $0.relativePosition == $1.relativePosition && $0.offset == $1.offset }
        }
    }

    /// Encodes groups (sorted here) describing the segment as `header` says.
    static func encode(_ header: IndexFileHeader, groups: [Group]) -> [UInt8] {
        let sorted = groups.sorted {
            ($0.hash, $0.entries.first?.relativePosition ?? 0) < ($1.hash, $1.entries.first?.relativePosition ?? 0)
        }
        let entryCount = sorted.reduce(0) { $0 + $1.entries.count }
        var w = ByteWriter()
        w.bytes.reserveCapacity(headerSize + sorted.count * groupSize + entryCount * entrySize + 4)
        w.le(Magic.streamIndex)
        w.le(FormatVersion.current)
        w.le(UInt16(0))
        w.le(UInt32(sorted.count))
        w.le(header.basePosition)
        w.le(header.endPosition)
        w.le(header.dataEnd)
        w.le(header.lastBatchOffset)
        w.le(header.lastBatchCRC)
        w.le(UInt32(entryCount))
        w.zeros(16)
        var first: UInt32 = 0
        for g in sorted {
            w.le(g.hash)
            w.le(g.firstVersion)
            w.le(first)
            w.le(UInt32(g.entries.count))
            first += UInt32(g.entries.count)
        }
        for g in sorted {
            for e in g.entries {
                w.le(e.relativePosition)
                w.le(e.offset)
            }
        }
        w.appendChecksum()
        return w.bytes
    }
}

/// Bytes held in memory for the life of the object (a stream index built
/// for a read-only open, which may not write its file).
final class OwnedBytes: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(_ bytes: [UInt8]) {
        count = bytes.count
        base = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { if let source = $0.baseAddress { base.copyMemory(from: source, byteCount: $0.count) } }
    }

    deinit { base.deallocate() }
}

/// A validated stream index file, mapped (or held in memory): lookups read it in place.
struct StreamIndexView: @unchecked Sendable {
    /// What keeps `base` valid: the mapping or the owned bytes.
    let storage: any Sendable & AnyObject
    let base: UnsafeRawPointer
    let header: IndexFileHeader
    let groupCount: Int
    let entryCount: Int

    /// Maps and checks the file at `path`; nil when it is missing or unusable (then rebuilt).
    static func open(path: String, faults: StorageFaults?) -> StreamIndexView? {
        guard let file = try? FileHandle.open(path, readOnly: true, faults: faults),
              let length = try? file.length(), length >= Int64(StreamIndexFile.headerSize + 4),
              let mapping = try? MappedRegion.map(file, length: Int(length)),
              let bytes = mapping.bytes(at: 0, count: Int(length))
        else { return nil }
        return validate(bytes, storage: mapping)
    }

    /// Checks encoded bytes held in memory.
    static func inMemory(_ encoded: [UInt8]) -> StreamIndexView? {
        let owned = OwnedBytes(encoded)
        return validate(UnsafeRawBufferPointer(start: owned.base, count: owned.count), storage: owned)
    }

    private static func validate(_ bytes: UnsafeRawBufferPointer, storage: any Sendable & AnyObject) -> StreamIndexView? {
        guard bytes.count >= StreamIndexFile.headerSize + 4, let base = bytes.baseAddress else { return nil }
        guard bytes.loadLE(at: 0, as: UInt64.self) == Magic.streamIndex,
              bytes.loadLE(at: 8, as: UInt16.self) == FormatVersion.current
        else { return nil }
        let groups = Int(bytes.loadLE(at: 12, as: UInt32.self))
        let entries = Int(bytes.loadLE(at: 44, as: UInt32.self))
        let expected = StreamIndexFile.headerSize + groups * StreamIndexFile.groupSize + entries * StreamIndexFile.entrySize + 4
        guard expected == bytes.count else { return nil }
        let stored = bytes.loadLE(at: bytes.count - 4, as: UInt32.self)
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 4)])) == stored else { return nil }
        guard Reserved.firstNonZero(bytes, 10..<12) == nil, Reserved.firstNonZero(bytes, 48..<64) == nil else { return nil }
        let header = IndexFileHeader(
            basePosition: bytes.loadLE(at: 16, as: UInt64.self), endPosition: bytes.loadLE(at: 24, as: UInt64.self),
            dataEnd: bytes.loadLE(at: 32, as: UInt32.self), lastBatchOffset: bytes.loadLE(at: 36, as: UInt32.self),
            lastBatchCRC: bytes.loadLE(at: 40, as: UInt32.self), firstTimestamp: .min, maxTimestamp: .min)
        let view = StreamIndexView(storage: storage, base: base, header: header, groupCount: groups, entryCount: entries)
        // Every group must point inside the entries.
        for g in 0..<groups {
            let (_, _, first, count) = view.group(g)
            guard first + count <= entries else { return nil }
        }
        return view
    }

    /// Group `i`: hash, first version, first entry, entry count.
    @inline(__always) func group(_ i: Int) -> (hash: UInt64, firstVersion: UInt64, first: Int, count: Int) {
        let at = StreamIndexFile.headerSize + i * StreamIndexFile.groupSize
        return (
            base.loadLE(at: at, as: UInt64.self), base.loadLE(at: at + 8, as: UInt64.self),
            Int(base.loadLE(at: at + 16, as: UInt32.self)), Int(base.loadLE(at: at + 20, as: UInt32.self))
        )
    }

    /// Entry `i`: relative position and record offset.
    @inline(__always) func entry(_ i: Int) -> (relativePosition: UInt32, offset: UInt32) {
        let at = StreamIndexFile.headerSize + groupCount * StreamIndexFile.groupSize + i * StreamIndexFile.entrySize
        return (base.loadLE(at: at, as: UInt32.self), base.loadLE(at: at + 4, as: UInt32.self))
    }

    /// The groups whose hash is `hash` (a range of group indexes).
    func groups(withHash hash: UInt64) -> Range<Int> {
        var low = 0
        var high = groupCount
        while low < high {
            let mid = (low + high) / 2
            if group(mid).hash < hash { low = mid + 1 } else { high = mid }
        }
        var end = low
        while end < groupCount && group(end).hash == hash { end += 1 }
        return low..<end
    }

    /// Every group, decoded (verify, tests).
    func allGroups() -> [StreamIndexFile.Group] {
        (0..<groupCount).map { g in
            let (hash, firstVersion, first, count) = group(g)
            return StreamIndexFile.Group(hash: hash, firstVersion: firstVersion, entries: (first..<(first + count)).map { entry($0) })
        }
    }
}
