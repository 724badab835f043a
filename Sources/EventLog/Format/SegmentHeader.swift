/// The 64-byte header at the start of every segment file (Format.md, "Segment header").
struct SegmentHeader: Equatable, Sendable {
    static let size = 64

    var logID: [UInt8]
    var basePosition: UInt64
    var createdAt: Timestamp
    /// A rewritten segment's end position (Format.md §4, version 4): the
    /// position after its last one, where the next segment starts, whatever
    /// survived in it. Nil for a segment written by appends, whose end is
    /// where its last batch ends (0 on disk).
    var declaredEnd: UInt64? = nil

    func encode() -> [UInt8] {
        var w = ByteWriter()
        w.le(Magic.segment)
        w.le(FormatVersion.current)
        w.le(UInt16(Self.size))
        w.zeros(4)
        w.raw(logID)
        w.le(basePosition)
        w.le(createdAt)
        w.le(declaredEnd ?? 0)
        w.zeros(4)
        w.appendChecksum()
        return w.bytes
    }

    /// The header's checksum: the chain seed of the segment's first batch.
    var checksum: UInt32 {
        let bytes = encode()
        return ByteReader(bytes: bytes).le(Self.size - 4, UInt32.self)
    }

    /// Decodes and checks a header: magic, version, checksum, header length
    /// and reserved bytes (zero), then that it belongs to the log `logID`
    /// and starts at `expectedBase` (when given).
    static func decode(
        _ bytes: UnsafeRawBufferPointer, file: String, logID: [UInt8]?, expectedBase: UInt64?
    ) throws(EventLogError) -> SegmentHeader {
        guard bytes.count >= 10 else { throw .corruption(file: file, offset: 0, reason: "segment is \(bytes.count) bytes, shorter than its header") }
        guard bytes.loadLE(at: 0, as: UInt64.self) == Magic.segment else {
            if bytes.prefix(Self.size).allSatisfy({ $0 == 0 }) {
                throw .corruption(file: file, offset: 0, reason: "segment header is all zeros")
            }
            throw .foreignFile(file: file, reason: "not an EventLog segment (bad magic)")
        }
        let version = bytes.loadLE(at: 8, as: UInt16.self)
        guard FormatVersion.readable.contains(version) else {
            throw .unsupportedFormatVersion(file: file, found: Int(version), supported: Int(FormatVersion.current))
        }
        guard bytes.count >= size else { throw .corruption(file: file, offset: 0, reason: "segment is shorter than its header") }
        let stored = bytes.loadLE(at: size - 4, as: UInt32.self)
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(size - 4)])) == stored else {
            throw .corruption(file: file, offset: 0, reason: "segment header checksum mismatch")
        }
        let headerLength = bytes.loadLE(at: 10, as: UInt16.self)
        guard Int(headerLength) == size else {
            throw .corruption(file: file, offset: 10, reason: "segment header length is \(headerLength), not \(size)")
        }
        // Bytes 48–55 hold the declared end from version 4 on; before, they were reserved.
        for range in version >= 4 ? [12..<16, 56..<60] : [12..<16, 48..<60] {
            if let at = Reserved.firstNonZero(bytes, range) {
                throw .corruption(file: file, offset: Int64(at), reason: "reserved byte \(at) of the segment header is not zero")
            }
        }
        let declared = bytes.loadLE(at: 48, as: UInt64.self)
        let header = SegmentHeader(
            logID: Array(bytes[16..<32]), basePosition: bytes.loadLE(at: 32, as: UInt64.self),
            createdAt: bytes.loadLE(at: 40, as: Int64.self), declaredEnd: declared == 0 ? nil : declared)
        if let declaredEnd = header.declaredEnd, declaredEnd <= header.basePosition {
            throw .corruption(
                file: file, offset: 48,
                reason: "the declared end position \(declaredEnd) is not after the base position \(header.basePosition)")
        }
        if let logID, header.logID != logID {
            throw .foreignFile(file: file, reason: "segment belongs to another log (log id differs)")
        }
        if let expectedBase, header.basePosition != expectedBase {
            throw .corruption(file: file, offset: 32, reason: "header base position \(header.basePosition) does not match the file name (\(expectedBase))")
        }
        return header
    }
}
