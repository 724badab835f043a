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
        let r = try FixedFile.reader(bytes, magic: Magic.logMetadata, size: size, file: file, what: "metadata file")
        guard let compression = Compression(rawValue: r.le(48, UInt8.self)) else {
            throw .corruption(file: file, offset: 48, reason: "unknown compression code")
        }
        return LogMetadata(
            logID: r.slice(16, 16), createdAt: r.le(32, Int64.self), segmentBytes: r.le(40, UInt32.self),
            indexInterval: r.le(44, UInt32.self), compression: compression)
    }
}
