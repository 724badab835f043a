/// The cursor journal `cursors.journal` (Format.md §15): an append-only file
/// of checksummed records, each setting or deleting a named cursor or
/// parking or replaying an event of a consumer group. Replaying it gives the
/// consumers' state; it is rewritten (compacted) when it grows.
///
///     header (48 bytes): u64 magic "EVLOGCUR", u16 format version, 6 reserved,
///                        16-byte log id, 12 reserved, u32 CRC32C of [0, 44)
///     record:            u32 length (the whole record), u32 CRC32C over [0, 4)
///                        and [8, length), u8 kind, u8 name length, name,
///                        u64 position, i64 timestamp, u32 deliveries
enum CursorRecordKind: UInt8, Sendable {
    /// A cursor's position (create, commit, reset).
    case set = 1
    /// A cursor deleted.
    case delete = 2
    /// An event of a consumer group (named by the record) parked after `deliveries` attempts.
    case park = 3
    /// A parked event handed back to its group.
    case unpark = 4
}

struct CursorRecord: Equatable, Sendable {
    var kind: CursorRecordKind
    var name: String
    var position: UInt64
    var timestamp: Timestamp
    var deliveries: UInt32 = 0

    static let fixedBytes = 4 + 4 + 1 + 1 + 8 + 8 + 4

    func encode(into w: inout ByteWriter) {
        let nameBytes = Array(name.utf8)
        let start = w.bytes.count
        w.le(UInt32(Self.fixedBytes + nameBytes.count))
        w.le(UInt32(0))
        w.le(kind.rawValue)
        w.le(UInt8(nameBytes.count))
        w.raw(nameBytes)
        w.le(position)
        w.le(timestamp)
        w.le(deliveries)
        let crc = w.bytes.withUnsafeBytes { raw -> UInt32 in
            let record = UnsafeRawBufferPointer(rebasing: raw[start...])
            let head = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[0..<4]))
            return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[8...]), continuing: head)
        }
        withUnsafeBytes(of: crc.littleEndian) { w.bytes.replaceSubrange((start + 4)..<(start + 8), with: $0) }
    }

    /// Decodes the record at `offset`; nil when the bytes there are not a valid record.
    static func decode(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> (CursorRecord, length: Int)? {
        guard bytes.count - offset >= fixedBytes else { return nil }
        let length = Int(bytes.loadLE(at: offset, as: UInt32.self))
        guard length >= fixedBytes, length <= fixedBytes + 255, length <= bytes.count - offset else { return nil }
        let record = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
        let head = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[0..<4]))
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[8...]), continuing: head) == record.loadLE(at: 4, as: UInt32.self),
              let kind = CursorRecordKind(rawValue: record[8])
        else { return nil }
        let nameLength = Int(record[9])
        guard length == fixedBytes + nameLength else { return nil }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: record[10..<(10 + nameLength)]), as: UTF8.self)
        let at = 10 + nameLength
        return (CursorRecord(
            kind: kind, name: name, position: record.loadLE(at: at, as: UInt64.self),
            timestamp: record.loadLE(at: at + 8, as: Int64.self), deliveries: record.loadLE(at: at + 16, as: UInt32.self)), length)
    }
}

enum CursorJournalHeader {
    static let size = 48

    static func encode(logID: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.le(Magic.cursorJournal)
        w.le(FormatVersion.current)
        w.zeros(6)
        w.raw(logID)
        w.zeros(12)
        w.appendChecksum()
        return w.bytes
    }

    static func check(_ bytes: UnsafeRawBufferPointer, file: String, logID: [UInt8]) throws(EventLogError) {
        guard bytes.count >= 10, bytes.loadLE(at: 0, as: UInt64.self) == Magic.cursorJournal else {
            throw .foreignFile(file: file, reason: "not an EventLog cursor journal (bad magic)")
        }
        let version = bytes.loadLE(at: 8, as: UInt16.self)
        guard version == FormatVersion.current else {
            throw .unsupportedFormatVersion(file: file, found: Int(version), supported: Int(FormatVersion.current))
        }
        guard bytes.count >= size,
              CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(size - 4)])) == bytes.loadLE(at: size - 4, as: UInt32.self)
        else { throw .corruption(file: file, offset: 0, reason: "cursor journal header checksum mismatch") }
        guard Array(bytes[16..<32]) == logID else {
            throw .foreignFile(file: file, reason: "cursor journal belongs to another log (log id differs)")
        }
    }
}
