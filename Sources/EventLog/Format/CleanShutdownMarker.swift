/// The clean-shutdown marker `clean-shutdown` (Format.md, "Clean shutdown"):
/// written last by `close()`, removed by the next open before any write.
///
///     0   u64  magic "EVLOGCLN"
///     8   u16  format version
///     10  6    reserved (0)
///     16  u64  end position of the log
///     24  u64  base position of the last segment
///     32  u32  data end of the last segment
///     36  i64  time of the shutdown
///     44  u32  CRC32C of bytes [0, 44)
struct CleanShutdownMarker: Equatable, Sendable {
    static let size = 48
    var endPosition: UInt64
    var lastSegmentBase: UInt64
    var lastSegmentDataEnd: UInt32
    var closedAt: Timestamp

    func encode() -> [UInt8] {
        var w = ByteWriter()
        w.le(Magic.cleanShutdown)
        w.le(FormatVersion.current)
        w.zeros(6)
        w.le(endPosition)
        w.le(lastSegmentBase)
        w.le(lastSegmentDataEnd)
        w.le(closedAt)
        w.appendChecksum()
        return w.bytes
    }

    /// nil when the bytes are not a valid marker, reserved bytes not zero
    /// included (the shutdown then counts as unclean).
    static func decode(_ bytes: [UInt8]) -> CleanShutdownMarker? {
        guard check(bytes) == nil else { return nil }
        let r = ByteReader(bytes: bytes)
        return CleanShutdownMarker(
            endPosition: r.le(16, UInt64.self), lastSegmentBase: r.le(24, UInt64.self),
            lastSegmentDataEnd: r.le(32, UInt32.self), closedAt: r.le(36, Int64.self))
    }

    /// The marker in `directory`: nil when there is none, or when it is not
    /// a valid one (`decode`); at most `size` + 1 bytes are read.
    static func read(in directory: DirectoryOperations) throws(IOError) -> CleanShutdownMarker? {
        try directory.readWhole(FileNames.cleanShutdown, atMost: size).flatMap(decode)
    }
}

extension CleanShutdownMarker {
    /// Why `bytes` are not a valid marker, and the offset of the field
    /// that says so (Format.md §8): the magic (0; a file too short or too
    /// long for one is named at 0 too), the version (8), the checksum
    /// field (44; a bit flip anywhere shows there) or a reserved byte. Nil
    /// for a valid marker. An invalid marker is never torn (it is written
    /// atomically): it is damage, which an open reports and survives (the
    /// shutdown counts as unclean).
    static func check(_ bytes: [UInt8]) -> (offset: Int64, reason: String)? {
        guard bytes.count >= 10, ByteReader(bytes: bytes).le(0, UInt64.self) == Magic.cleanShutdown else {
            return (0, "not a clean-shutdown marker (magic)")
        }
        let r = ByteReader(bytes: bytes)
        let version = r.le(8, UInt16.self)
        guard FormatVersion.readable.contains(version) else { return (8, "clean-shutdown marker of format version \(version)") }
        guard bytes.count == size else { return (0, "the clean-shutdown marker is \(bytes.count) bytes, not \(size)") }
        guard r.checksumHolds(length: size) else { return (44, "clean-shutdown marker checksum mismatch") }
        if let at = Reserved.firstNonZero(bytes, 10..<16) { return (Int64(at), "clean-shutdown marker reserved byte is not zero") }
        return nil
    }
}
