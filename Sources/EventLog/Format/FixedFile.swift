/// The checks every small fixed-size file of the log starts with (the log
/// metadata, the log start): magic, format version, size, checksum of
/// everything before its last 4 bytes, then that its reserved bytes are
/// zero (Format.md §12), in that order, each with its own typed error
/// naming the file.
enum FixedFile {
    /// A reader over `bytes` once they pass the checks; `what` names the
    /// kind of file in the error for a wrong magic; `reserved` are the byte
    /// ranges that must be zero.
    static func reader(
        _ bytes: [UInt8], magic: UInt64, size: Int, file: String, what: String, reserved: [Range<Int>] = []
    ) throws(EventLogError) -> ByteReader {
        guard bytes.count >= 10 else { throw .corruption(file: file, offset: 0, reason: "file is \(bytes.count) bytes, too short") }
        let r = ByteReader(bytes: bytes)
        guard r.le(0, UInt64.self) == magic else { throw .foreignFile(file: file, reason: "not an EventLog \(what) (bad magic)") }
        let version = r.le(8, UInt16.self)
        guard FormatVersion.readable.contains(version) else {
            throw .unsupportedFormatVersion(file: file, found: Int(version), supported: Int(FormatVersion.current))
        }
        guard bytes.count == size else { throw .corruption(file: file, offset: 0, reason: "file is \(bytes.count) bytes, expected \(size)") }
        guard r.checksumHolds(length: size) else { throw .corruption(file: file, offset: Int64(size - 4), reason: "checksum mismatch") }
        for range in reserved {
            if let at = Reserved.firstNonZero(bytes, range) {
                throw .corruption(file: file, offset: Int64(at), reason: "reserved byte \(at) is not zero")
            }
        }
        return r
    }
}

/// The checks every small file of variable length starts with (the log
/// settings, the last compaction file): its length, magic, format version
/// (from `oldestVersion`, the first with the file's layout), the length
/// field at byte 12 against the file's, the checksum of everything before
/// its last 4 bytes, then that its reserved bytes are zero, in that order,
/// each with its own typed error naming the file.
enum VariableFile {
    static func reader(
        _ bytes: [UInt8], magic: UInt64, oldestVersion: UInt16, sizes: ClosedRange<Int>, file: String, what: String,
        reserved: [Range<Int>]
    ) throws(EventLogError) -> ByteReader {
        guard bytes.count >= sizes.lowerBound else {
            throw .corruption(file: file, offset: 0, reason: "file is \(bytes.count) bytes, shorter than the \(sizes.lowerBound) of a \(what)")
        }
        let r = ByteReader(bytes: bytes)
        guard r.le(0, UInt64.self) == magic else { throw .foreignFile(file: file, reason: "not an EventLog \(what) (bad magic)") }
        let version = r.le(8, UInt16.self)
        guard (oldestVersion...FormatVersion.current).contains(version) else {
            throw .unsupportedFormatVersion(file: file, found: Int(version), supported: Int(FormatVersion.current))
        }
        let length = Int(r.le(12, UInt32.self))
        guard length == bytes.count, length <= sizes.upperBound else {
            throw .corruption(file: file, offset: 12, reason: "the length field says \(length) bytes, the file has \(bytes.count)")
        }
        guard r.checksumHolds(length: length) else { throw .corruption(file: file, offset: Int64(length - 4), reason: "checksum mismatch") }
        for range in reserved {
            if let at = Reserved.firstNonZero(bytes, range) { throw .corruption(file: file, offset: Int64(at), reason: "reserved byte \(at) is not zero") }
        }
        return r
    }
}
