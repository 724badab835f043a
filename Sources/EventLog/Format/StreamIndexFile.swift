/// The stream index of one segment, the file `NNNNNNNNNNNNNNNNNNNN.streamindex`
/// (Format.md §13.2), version 2:
///
///     0   u64  magic "EVLOGSIX"
///     8   u16  version (2)
///     10  u16  reserved (0)
///     12  u32  group count
///     16  u64  segment base position
///     24  u64  segment end position (after the last batch described)
///     32  u32  segment data end
///     36  u32  last batch offset
///     40  u32  last batch crc
///     44  u32  entry count
///     48  u32  groups per block (128)
///     52  u32  entries per block (512)
///     56  u32  reserved (0)
///     60  u32  CRC32C of bytes 0..<60
///     64  …    the fence: per group block, the hash of its first group (u64);
///              then the fence's CRC32C (u32)
///     …   …    group blocks: up to 128 groups of 24 bytes, sorted by (hash,
///              first relative position) across blocks: u64 stream hash,
///              u64 first version, u32 first entry, u32 entry count; each
///              block followed by its CRC32C (u32)
///     …   …    entry blocks: up to 512 entries of 8 bytes, grouped, each group
///              in version order: u32 relative position, u32 record offset
///              (bit 31: the offset is that of the record's LZ4 batch); each
///              block followed by its CRC32C (u32)
///
/// A group is one stream's events in the segment, whose versions run from
/// `first version` up by one per entry. Two streams whose hashes collide
/// have separate groups; readers confirm the stream name on every record.
///
/// Every block carries its own checksum so that opening a file checks only
/// the header and the fence (`StreamIndexView`), and a lookup only the
/// blocks it reads.
enum StreamIndexFile {
    /// The version at byte 8: the layout of this file, the only one read (a
    /// file of any other version is unusable, so rebuilt).
    static let version: UInt16 = 2
    static let headerSize = 64
    static let groupSize = 24
    static let entrySize = 8
    static let checksumSize = 4
    /// Groups in every group block but the last (which may hold fewer).
    static let groupsPerBlock = 128
    /// Entries in every entry block but the last (which may hold fewer).
    static let entriesPerBlock = 512

    /// Where everything of a file with `groupCount` groups and `entryCount`
    /// entries lies: byte offsets from the start of the file.
    struct Layout: Equatable, Sendable {
        let groupCount: Int
        let entryCount: Int
        let groupBlockCount: Int
        let entryBlockCount: Int
        /// The first byte after the fence's checksum.
        let groupsStart: Int
        let entriesStart: Int
        /// The exact length of the file.
        let fileSize: Int

        static let fenceStart = headerSize
        static let groupBlockStride = groupsPerBlock * groupSize + checksumSize
        static let entryBlockStride = entriesPerBlock * entrySize + checksumSize

        init(groupCount: Int, entryCount: Int) {
            self.groupCount = groupCount
            self.entryCount = entryCount
            groupBlockCount = (groupCount + groupsPerBlock - 1) / groupsPerBlock
            entryBlockCount = (entryCount + entriesPerBlock - 1) / entriesPerBlock
            groupsStart = Self.fenceStart + groupBlockCount * 8 + checksumSize
            entriesStart = groupsStart + groupCount * groupSize + groupBlockCount * checksumSize
            fileSize = entriesStart + entryCount * entrySize + entryBlockCount * checksumSize
        }

        @inline(__always) func groupBlockOffset(_ block: Int) -> Int { groupsStart + block * Self.groupBlockStride }

        @inline(__always) func groupsIn(block: Int) -> Int { min(groupsPerBlock, groupCount - block * groupsPerBlock) }

        @inline(__always) func groupOffset(_ group: Int) -> Int {
            groupBlockOffset(group / groupsPerBlock) + (group % groupsPerBlock) * groupSize
        }

        @inline(__always) func entryBlockOffset(_ block: Int) -> Int { entriesStart + block * Self.entryBlockStride }

        @inline(__always) func entriesIn(block: Int) -> Int { min(entriesPerBlock, entryCount - block * entriesPerBlock) }

        @inline(__always) func entryOffset(_ entry: Int) -> Int {
            entryBlockOffset(entry / entriesPerBlock) + (entry % entriesPerBlock) * entrySize
        }
    }

    struct Group: Equatable {
        var hash: UInt64
        var firstVersion: UInt64
        var entries: [(relativePosition: UInt32, offset: UInt32)]

        static func == (a: Group, b: Group) -> Bool {
            a.hash == b.hash && a.firstVersion == b.firstVersion && a.entries.count == b.entries.count
                && zip(a.entries, b.entries).allSatisfy { $0.relativePosition == $1.relativePosition && $0.offset == $1.offset }
        }
    }

    /// Encodes groups (sorted here by hash, then first relative position)
    /// describing the segment as `header` says (scans, tests).
    static func encode(_ header: IndexFileHeader, groups: [Group]) -> [UInt8] {
        let sorted = groups.sorted {
            ($0.hash, $0.entries.first?.relativePosition ?? 0) < ($1.hash, $1.entries.first?.relativePosition ?? 0)
        }
        var entries: [UInt64] = []
        entries.reserveCapacity(sorted.reduce(0) { $0 + $1.entries.count })
        for g in sorted {
            for e in g.entries { entries.append(packedEntry(relativePosition: e.relativePosition, offset: e.offset)) }
        }
        return encode(
            header, hashes: sorted.map(\.hash), firstVersions: sorted.map(\.firstVersion),
            counts: sorted.map { UInt32($0.entries.count) }, entries: entries)
    }

    /// An entry as `encode(_:hashes:firstVersions:counts:entries:)` takes it.
    @inline(__always) static func packedEntry(relativePosition: UInt32, offset: UInt32) -> UInt64 {
        UInt64(relativePosition) | UInt64(offset) << 32
    }

    /// Encodes a file from flat arrays, written straight into one
    /// preallocated array (no allocation per group or entry).
    ///
    /// - Parameters:
    ///   - header: the segment the file describes.
    ///   - hashes: per group, in file order (the caller sorts by hash, then
    ///     first relative position): the stream hash.
    ///   - firstVersions: per group, the version of its first entry.
    ///   - counts: per group, its number of entries.
    ///   - entries: every group's entries, group after group in file order,
    ///     each `packedEntry(relativePosition:offset:)`.
    /// - Returns: the file's bytes. Each group's first entry is the sum of
    ///   the counts before it.
    /// - Precondition: the three per-group arrays have the same length,
    ///   `counts` sums to `entries.count`, and both counts fit in a UInt32.
    static func encode(
        _ header: IndexFileHeader, hashes: [UInt64], firstVersions: [UInt64], counts: [UInt32], entries: [UInt64]
    ) -> [UInt8] {
        let layout = Layout(groupCount: hashes.count, entryCount: entries.count)
        return [UInt8](unsafeUninitializedCapacity: layout.fileSize) { buffer, initialized in
            entries.withUnsafeBufferPointer { entries in
                encode(header, hashes: hashes, firstVersions: firstVersions, counts: counts, entries: entries, into: buffer.baseAddress!)
            }
            initialized = layout.fileSize
        }
    }

    /// The same file in a `PageBlock` of exactly its size: a checkpoint's
    /// or a seal's (megabytes for a full segment), whose memory goes back to
    /// the kernel when it is written and released.
    static func encodedBlock(
        _ header: IndexFileHeader, hashes: [UInt64], firstVersions: [UInt64], counts: [UInt32], entries: UnsafeBufferPointer<UInt64>
    ) -> PageBlock {
        let block = PageBlock(byteCount: Layout(groupCount: hashes.count, entryCount: entries.count).fileSize)
        encode(header, hashes: hashes, firstVersions: firstVersions, counts: counts, entries: entries, into: block.base)
        return block
    }

    /// Writes the file into `out`, which holds its `Layout.fileSize` bytes.
    private static func encode(
        _ header: IndexFileHeader, hashes: [UInt64], firstVersions: [UInt64], counts: [UInt32], entries: UnsafeBufferPointer<UInt64>,
        into out: UnsafeMutableRawPointer
    ) {
        precondition(hashes.count == firstVersions.count && hashes.count == counts.count, "one hash, first version and count per group")
        precondition(hashes.count <= Int(UInt32.max) && entries.count <= Int(UInt32.max), "more groups or entries than a file holds")
        precondition(counts.reduce(0) { $0 + Int($1) } == entries.count, "the groups' counts must add up to the entries")
        assert(zip(hashes, hashes.dropFirst()).allSatisfy { $0 <= $1 }, "groups must be sorted by hash")
        let layout = Layout(groupCount: hashes.count, entryCount: entries.count)
        writeHeader(header, layout: layout, to: out)
        hashes.withUnsafeBufferPointer { hashes in
            firstVersions.withUnsafeBufferPointer { firstVersions in
                counts.withUnsafeBufferPointer { counts in
                    writeGroups(layout, hashes: hashes, firstVersions: firstVersions, counts: counts, to: out)
                }
            }
        }
        writeEntries(layout, entries: entries, to: out)
    }

    private static func writeHeader(_ header: IndexFileHeader, layout: Layout, to out: UnsafeMutableRawPointer) {
        out.storeLE(Magic.streamIndex, at: 0)
        out.storeLE(version, at: 8)
        out.storeLE(UInt16(0), at: 10)
        out.storeLE(UInt32(layout.groupCount), at: 12)
        out.storeLE(header.basePosition, at: 16)
        out.storeLE(header.endPosition, at: 24)
        out.storeLE(header.dataEnd, at: 32)
        out.storeLE(header.lastBatchOffset, at: 36)
        out.storeLE(header.lastBatchCRC, at: 40)
        out.storeLE(UInt32(layout.entryCount), at: 44)
        out.storeLE(UInt32(groupsPerBlock), at: 48)
        out.storeLE(UInt32(entriesPerBlock), at: 52)
        out.storeLE(UInt32(0), at: 56)
        sealBlock(out, at: 0, count: 60)
    }

    /// The fence and the group blocks.
    private static func writeGroups(
        _ layout: Layout, hashes: UnsafeBufferPointer<UInt64>, firstVersions: UnsafeBufferPointer<UInt64>,
        counts: UnsafeBufferPointer<UInt32>, to out: UnsafeMutableRawPointer
    ) {
        let fence = Layout.fenceStart
        for b in 0..<layout.groupBlockCount { out.storeLE(hashes[b * groupsPerBlock], at: fence + b * 8) }
        sealBlock(out, at: fence, count: layout.groupBlockCount * 8)
        var first: UInt32 = 0
        for b in 0..<layout.groupBlockCount {
            let at = layout.groupBlockOffset(b)
            let n = layout.groupsIn(block: b)
            for k in 0..<n {
                let g = b * groupsPerBlock + k
                let o = at + k * groupSize
                out.storeLE(hashes[g], at: o)
                out.storeLE(firstVersions[g], at: o + 8)
                out.storeLE(first, at: o + 16)
                out.storeLE(counts[g], at: o + 20)
                first &+= counts[g]
            }
            sealBlock(out, at: at, count: n * groupSize)
        }
    }

    private static func writeEntries(_ layout: Layout, entries: UnsafeBufferPointer<UInt64>, to out: UnsafeMutableRawPointer) {
        for b in 0..<layout.entryBlockCount {
            let at = layout.entryBlockOffset(b)
            let n = layout.entriesIn(block: b)
            let from = b * entriesPerBlock
            #if _endian(little)
            // A packed entry's little-endian bytes are the two u32 fields in file order.
            (out + at).copyMemory(from: UnsafeRawPointer(entries.baseAddress! + from), byteCount: n * entrySize)
            #else
            for k in 0..<n { out.storeLE(entries[from + k], at: at + k * entrySize) }
            #endif
            sealBlock(out, at: at, count: n * entrySize)
        }
    }

    /// Stores the CRC32C of `count` bytes at `at` right after them.
    @inline(__always) private static func sealBlock(_ out: UnsafeMutableRawPointer, at: Int, count: Int) {
        out.storeLE(CRC32C.checksum(UnsafeRawPointer(out + at), count: count), at: at + count)
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
