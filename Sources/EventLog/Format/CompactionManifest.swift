/// The compaction manifest `eventlog.swap` (Format.md §4.2): the one file
/// whose atomic rename commits a merge of neighbouring sealed segments. It
/// names the segments that go (their base positions) and the file that
/// replaces them (its base, declared end and header checksum), so that an
/// open finishes the swap (or finds it never reached its rename) whatever
/// step a crash stopped it at.
///
///     0    u64  magic "EVLOGSWP"
///     8    u16  format version (6)
///     10   u16  reserved (0)
///     12   u32  file length in bytes: 44 + 8 × n
///     16   u32  n, the count of old segments (2 to `Limits.maxMergedSegments`)
///     20   u32  the new segment's header checksum (its bytes 60–63)
///     24   u64  the new segment's base position (the first old one's)
///     32   u64  the new segment's declared end (the last old one's end)
///     40   8×n  the old segments' base positions, ascending
///     …    u32  CRC32C of every byte before it
struct CompactionManifest: Equatable, Sendable {
    static let headerSize = 40
    static let minSize = headerSize + 2 * 8 + 4
    static let maxSize = headerSize + Limits.maxMergedSegments * 8 + 4
    /// The first format version with this file.
    static let firstVersion: UInt16 = 6

    /// The base positions of the segments merged, ascending; the first is `newBase`.
    var oldBases: [UInt64]
    var newBase: UInt64
    var newDeclaredEnd: UInt64
    /// The checksum of the new segment's header: tells the new file from the old one under the same name.
    var newHeaderChecksum: UInt32

    func encode() -> [UInt8] {
        var w = ByteWriter()
        w.le(Magic.compactionManifest)
        w.le(FormatVersion.current)
        w.zeros(2)
        w.le(UInt32(Self.headerSize + 8 * oldBases.count + 4))
        w.le(UInt32(oldBases.count))
        w.le(newHeaderChecksum)
        w.le(newBase)
        w.le(newDeclaredEnd)
        for base in oldBases { w.le(base) }
        w.appendChecksum()
        return w.bytes
    }

    /// Decodes and checks the file: its length, magic, version, length
    /// field, checksum, reserved bytes, then the fields. Throws
    /// `foreignFile`, `unsupportedFormatVersion` (a version other than 6
    /// is never guessed at) or `corruption` naming `file` and the offset.
    static func decode(_ bytes: [UInt8], file: String) throws(EventLogError) -> CompactionManifest {
        let r = try VariableFile.reader(
            bytes, magic: Magic.compactionManifest, oldestVersion: firstVersion, sizes: minSize...maxSize, file: file,
            what: "compaction manifest", reserved: [10..<12])
        let count = Int(r.le(16, UInt32.self))
        guard count >= 2, count <= Limits.maxMergedSegments, headerSize + 8 * count + 4 == bytes.count else {
            throw .corruption(file: file, offset: 16, reason: "\(count) old segments do not fill the manifest's \(bytes.count) bytes (2 to \(Limits.maxMergedSegments))")
        }
        let manifest = CompactionManifest(
            oldBases: (0..<count).map { r.le(headerSize + 8 * $0, UInt64.self) }, newBase: r.le(24, UInt64.self),
            newDeclaredEnd: r.le(32, UInt64.self), newHeaderChecksum: r.le(20, UInt32.self))
        guard manifest.newDeclaredEnd > manifest.newBase,
              manifest.newDeclaredEnd - manifest.newBase <= Limits.maxMergedSegmentSpan
        else {
            throw .corruption(
                file: file, offset: 32,
                reason: "the declared end \(manifest.newDeclaredEnd) is not within the span limit after the base \(manifest.newBase)")
        }
        guard manifest.oldBases.first == manifest.newBase else {
            throw .corruption(file: file, offset: Int64(headerSize), reason: "the first old segment does not start at the new segment's base")
        }
        for i in 1..<count where manifest.oldBases[i] <= manifest.oldBases[i - 1] || manifest.oldBases[i] >= manifest.newDeclaredEnd {
            throw .corruption(
                file: file, offset: Int64(headerSize + 8 * i),
                reason: "old segment base \(manifest.oldBases[i]) is not ascending inside [\(manifest.newBase), \(manifest.newDeclaredEnd))")
        }
        return manifest
    }

    /// The file in `directory`; nil when there is none. Throws `IOError`
    /// for a failed read and `EventLogError` (naming the file) for a
    /// damaged one or one of an unknown version.
    static func read(in directory: DirectoryOperations) throws -> CompactionManifest? {
        guard let bytes = try directory.readWhole(FileNames.compactionManifest, atMost: CompactionManifest.maxSize) else { return nil }
        return try decode(bytes, file: directory.file(FileNames.compactionManifest))
    }
}
