/// The log's identity and creation settings: the file `eventlog.meta`
/// (Format.md, "Log metadata file"). Written once, atomically, when the log is created.
struct LogMetadata: Equatable, Sendable {
    static let size = 60

    var logID: [UInt8]  // 16 bytes
    var createdAt: Timestamp
    var segmentBytes: UInt32
    var indexInterval: UInt32
    var compression: Compression

    func encode() -> [UInt8] {
        var w = ByteWriter()
        w.le(Magic.logMetadata)
        w.le(FormatVersion.current)
        w.zeros(6)
        w.raw(logID)
        w.le(createdAt)
        w.le(segmentBytes)
        w.le(indexInterval)
        w.le(compression.rawValue)
        w.zeros(7)
        w.appendChecksum()
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], file: String) throws(EventLogError) -> LogMetadata {
        guard bytes.count >= 10 else { throw .corruption(file: file, offset: 0, reason: "file is \(bytes.count) bytes, too short") }
        let r = ByteReader(bytes: bytes)
        guard r.le(0, UInt64.self) == Magic.logMetadata else { throw .foreignFile(file: file, reason: "not an EventLog metadata file (bad magic)") }
        let version = r.le(8, UInt16.self)
        guard version == FormatVersion.current else {
            throw .unsupportedFormatVersion(file: file, found: Int(version), supported: Int(FormatVersion.current))
        }
        guard bytes.count == size else { throw .corruption(file: file, offset: 0, reason: "file is \(bytes.count) bytes, expected \(size)") }
        guard r.checksumHolds(length: size) else { throw .corruption(file: file, offset: Int64(size - 4), reason: "checksum mismatch") }
        guard let compression = Compression(rawValue: r.le(48, UInt8.self)) else {
            throw .corruption(file: file, offset: 48, reason: "unknown compression code")
        }
        return LogMetadata(
            logID: r.slice(16, 16), createdAt: r.le(32, Int64.self), segmentBytes: r.le(40, UInt32.self),
            indexInterval: r.le(44, UInt32.self), compression: compression)
    }
}
