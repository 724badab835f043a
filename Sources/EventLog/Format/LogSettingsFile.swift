/// The log's settings file `eventlog.settings` (Format.md §3.2): what every
/// process opening the log must agree on (`LogSettings`). Written
/// atomically (`.tmp`, `fdatasync`, rename, directory `fsync`); a log
/// without the file has the default settings (retain everything).
///
///     0   u64  magic "EVLOGSET"
///     8   u16  format version (3 to 6: the layout is the same, bytes 34-39 reserved before 5)
///     10  u16  reserved (0)
///     12  u32  file length in bytes
///     16  u64  retain age, microseconds (0: no limit)
///     24  u64  retain bytes (0: no limit)
///     32  u16  count of retention cursors
///     34  u8   flags: bit 0 key compaction (version 5)
///     35  u8   reserved (0)
///     36  u32  tombstone retention, seconds (version 5)
///     40  …    each cursor: u8 name length (1-255), the name's UTF-8 bytes
///     …   u32  CRC32C of every byte before it
enum LogSettingsFile {
    static let headerSize = 40
    /// The smallest file: the header and the checksum.
    static let minSize = headerSize + 4
    /// The largest file the limits allow.
    static let maxSize = headerSize + Limits.maxRetentionCursors * (1 + Limits.maxCursorNameBytes) + 4

    static func encode(_ settings: LogSettings) -> [UInt8] {
        var w = ByteWriter()
        w.le(Magic.logSettings)
        w.le(FormatVersion.current)
        w.zeros(2)
        let length = headerSize + settings.retainCursors.reduce(0) { $0 + 1 + $1.utf8.count } + 4
        w.le(UInt32(length))
        w.le(settings.retainAgeMicroseconds)
        w.le(settings.retainBytes ?? 0)
        w.le(UInt16(settings.retainCursors.count))
        w.le(UInt8(settings.keyCompaction ? 1 : 0))
        w.zeros(1)
        w.le(UInt32(clamping: settings.tombstoneRetentionSeconds))
        for name in settings.retainCursors {
            w.le(UInt8(name.utf8.count))
            w.raw(Array(name.utf8))
        }
        w.appendChecksum()
        return w.bytes
    }

    /// Decodes and checks the file: magic, version, length, checksum,
    /// reserved bytes, then each field. Throws `foreignFile`,
    /// `unsupportedFormatVersion` or `corruption` naming `file` and the offset.
    static func decode(_ bytes: [UInt8], file: String) throws(EventLogError) -> LogSettings {
        // The layout is version 3's, bytes 34-39 reserved before version 5.
        let version = bytes.count >= 10 ? UInt16(bytes[8]) | UInt16(bytes[9]) << 8 : 0
        let r = try VariableFile.reader(
            bytes, magic: Magic.logSettings, oldestVersion: 3, sizes: minSize...maxSize, file: file, what: "settings file",
            reserved: version >= 5 ? [10..<12, 35..<36] : [10..<12, 34..<40])
        let length = bytes.count
        var settings = LogSettings()
        let age = r.le(16, UInt64.self)
        if age > 0 {
            guard age <= UInt64(Int64.max) else { throw .corruption(file: file, offset: 16, reason: "retain age \(age) µs is out of range") }
            settings.retainAge = .microseconds(Int64(age))
        }
        let retainBytes = r.le(24, UInt64.self)
        if retainBytes > 0 { settings.retainBytes = retainBytes }
        if version >= 5 {
            let flags = bytes[34]
            guard flags & ~1 == 0 else { throw .corruption(file: file, offset: 34, reason: "unknown settings flags \(flags)") }
            settings.keyCompaction = flags & 1 != 0
            settings.tombstoneRetention = .seconds(Int64(r.le(36, UInt32.self)))
        }
        let count = Int(r.le(32, UInt16.self))
        guard count <= Limits.maxRetentionCursors else {
            throw .corruption(file: file, offset: 32, reason: "\(count) retention cursors, above the limit of \(Limits.maxRetentionCursors)")
        }
        var at = headerSize
        for _ in 0..<count {
            guard at < length - 4 else { throw .corruption(file: file, offset: Int64(at), reason: "the cursor names end before the count says") }
            let nameLength = Int(bytes[at])
            guard nameLength >= 1, at + 1 + nameLength <= length - 4 else {
                throw .corruption(file: file, offset: Int64(at), reason: "a cursor name of \(nameLength) bytes does not fit")
            }
            guard let name = String(validating: bytes[(at + 1)..<(at + 1 + nameLength)], as: UTF8.self) else {
                throw .corruption(file: file, offset: Int64(at + 1), reason: "a cursor name is not UTF-8")
            }
            settings.retainCursors.append(name)
            at += 1 + nameLength
        }
        guard at == length - 4 else {
            throw .corruption(file: file, offset: Int64(at), reason: "\(length - 4 - at) bytes after the last cursor name")
        }
        return settings
    }
}
