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
        guard bytes.count == size else { return nil }
        let r = ByteReader(bytes: bytes)
        guard r.le(0, UInt64.self) == Magic.cleanShutdown, FormatVersion.readable.contains(r.le(8, UInt16.self)),
              r.checksumHolds(length: size), Reserved.firstNonZero(bytes, 10..<16) == nil
        else { return nil }
        return CleanShutdownMarker(
            endPosition: r.le(16, UInt64.self), lastSegmentBase: r.le(24, UInt64.self),
            lastSegmentDataEnd: r.le(32, UInt32.self), closedAt: r.le(36, Int64.self))
    }
}
