#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A stream table run, the file `FFFFFFFFFFFFFFFFFFFF-TTTTTTTTTTTTTTTTTTTT.streamtable`
/// (Format.md §14.1): an immutable, sorted table of the stream states that
/// the records at positions `[from, to)` changed, read in place through a
/// mapping, like one sorted table of an LSM tree.
///
///     0   u64  magic "EVLOGSTR"
///     8   u16  format version = 4 (2 and 3 still read)
///     10  u16  reserved (0)
///     12  u32  block count
///     16  u64  row count
///     24  u64  from position
///     32  u64  to position
///     40  u64  fence offset
///     48  u64  bloom offset
///     56  u32  bloom block count (64-byte blocks)
///     60  u32  CRC32C of bytes 0..<60
///     64  …    blocks, back to back, each:
///              u32 block length (this field to the CRC, both included)
///              u32 row count (>= 1)
///              rows: u64 stream hash, then a stream table row (§14.1)
///              u32 CRC32C of the block's bytes before it
///     fence    one entry per block: u64 the block's first hash, u64 its offset;
///              then u32 CRC32C of the entries
///     bloom    bloom block count × 64 bytes (`BloomFilter`); then u32 CRC32C
///              of them; then the end of the file
///
/// Rows are sorted by (hash, name bytes), unique on that pair, and every row
/// of one hash is in one block, so a lookup reads one block.
enum StreamTableRun {
    /// The version field of the runs a writer writes (checkpoints and
    /// merges): 4, whose rows end with the last append's id digest and
    /// record count (from version 3) and the stream's limits (Format.md
    /// §14.1). Version 2 was the stream table's second layout (version 1's
    /// `streams.table` the first).
    static let version: UInt16 = 4
    /// The versions a reader accepts: a version 2 run's rows read with
    /// the digest and record count unknown (0), a version 2 or 3 run's with
    /// no limits.
    static let readableVersions: ClosedRange<UInt16> = 2...4
    static let headerSize = 64
    /// Bytes of a block before its rows: length and row count.
    static let blockHeadSize = 8
    static let checksumSize = 4
    static let fenceEntrySize = 16
    /// A writer closes a block at the first row boundary where the block
    /// (its head and rows, the CRC left out) takes at least this many bytes,
    /// unless the next row has the same hash as the last.
    static let targetBlockBytes = 512
    /// The writer hands the file this many bytes (or more) per `pwrite`.
    static let writeChunkBytes = 64 << 10
    /// The smallest row of a run of `version`: hash, a 1-byte name with its
    /// length, the deletion byte and seven 1-byte varints; from version 3,
    /// also the 8-byte digest and a 1-byte varint; from version 4, two more
    /// 1-byte varints.
    @inline(__always) static func minRowBytes(version: UInt16) -> Int {
        8 + 2 + 1 + 7 + (version >= 3 ? 8 + 1 : 0) + (version >= 4 ? 2 : 0)
    }
    /// The smallest block of a run of `version`: its head, one row, its checksum.
    @inline(__always) static func minBlockBytes(version: UInt16) -> Int { blockHeadSize + minRowBytes(version: version) + checksumSize }
    /// An empty run: the header and the two checksums of an empty fence and bloom.
    static let minFileBytes = headerSize + 2 * checksumSize

    /// Orders two rows' keys: (hash, then the name's bytes lexicographically,
    /// a prefix first). Negative, zero or positive.
    @inline(__always)
    static func compare(
        _ hashA: UInt64, _ nameA: UnsafeRawBufferPointer, _ hashB: UInt64, _ nameB: UnsafeRawBufferPointer
    ) -> Int {
        if hashA != hashB { return hashA < hashB ? -1 : 1 }
        let common = min(nameA.count, nameB.count)
        if common > 0, let a = nameA.baseAddress, let b = nameB.baseAddress {
            let result = memcmp(a, b, common)
            if result != 0 { return Int(result) }
        }
        return nameA.count - nameB.count
    }
}
