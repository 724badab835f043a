/// The cursor journal `cursors.journal` (Format.md §15): an append-only file
/// of checksummed records, each setting or deleting a named cursor or
/// parking or replaying events of a consumer group. Replaying it gives the
/// consumers' state; it is rewritten (compacted) when it grows.
///
///     header (48 bytes): u64 magic "EVLOGCUR", u16 format version, 6 reserved,
///                        16-byte log id, 12 reserved, u32 CRC32C of [0, 44)
///     record:            u32 length (the whole record), u32 CRC32C over [0, 4)
///                        and [8, length), u8 kind, u8 name length, name,
///                        u64 position, i64 timestamp, u32 deliveries,
///                        then (kind 5 only) `deliveries` u64 positions
enum CursorRecordKind: UInt8, Sendable {
    /// A cursor's position (create, commit, reset).
    case set = 1
    /// A cursor deleted.
    case delete = 2
    /// An event of a consumer group (named by the record) parked after `deliveries` attempts.
    case park = 3
    /// A parked event handed back to its group (written by earlier builds; still read).
    case unpark = 4
    /// Parked events (`positions`) handed back to their group, and the
    /// group's cursor set to `position` (at most the lowest of them), in one
    /// record: a crash keeps all of it or none.
    case replay = 5
}

struct CursorRecord: Equatable, Sendable {
    var kind: CursorRecordKind
    var name: String
    var position: UInt64
    var timestamp: Timestamp
    /// Kind 3: deliveries when parked. Kind 5: written as the count of `positions`.
    var deliveries: UInt32 = 0
    /// Kind 5 only: the parked events handed back, ascending.
    var positions: [UInt64] = []

    static let fixedBytes = 4 + 4 + 1 + 1 + 8 + 8 + 4
    /// Most positions in one kind-5 record (a larger replay is several records).
    static let maxReplayPositions = 1 << 16
    static let maxBytes = fixedBytes + 255 + 8 * maxReplayPositions

    func encode(into w: inout ByteWriter) {
        let nameBytes = Array(name.utf8)
        let start = w.bytes.count
        let extra = kind == .replay ? 8 * positions.count : 0
        w.le(UInt32(Self.fixedBytes + nameBytes.count + extra))
        w.le(UInt32(0))
        w.le(kind.rawValue)
        w.le(UInt8(nameBytes.count))
        w.raw(nameBytes)
        w.le(position)
        w.le(timestamp)
        if kind == .replay {
            w.le(UInt32(positions.count))
            for p in positions { w.le(p) }
        } else {
            w.le(deliveries)
        }
        let crc = w.bytes.withUnsafeBytes { raw -> UInt32 in
            let record = UnsafeRawBufferPointer(rebasing: raw[start...])
            let head = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[0..<4]))
            return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[8...]), continuing: head)
        }
        withUnsafeBytes(of: crc.littleEndian) { w.bytes.replaceSubrange((start + 4)..<(start + 8), with: $0) }
    }

    /// The length of the record at `offset` when its bytes are all there
    /// and its checksum holds; nil otherwise (a torn or damaged record).
    static func checkedLength(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        guard offset >= 0, bytes.count - offset >= fixedBytes else { return nil }
        let length = Int(bytes.loadLE(at: offset, as: UInt32.self))
        guard length >= fixedBytes, length <= maxBytes, length <= bytes.count - offset else { return nil }
        let record = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
        let head = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[0..<4]))
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[8...]), continuing: head) == record.loadLE(at: 4, as: UInt32.self)
        else { return nil }
        return length
    }

    /// Decodes the record at `offset`; nil when its bytes are not a record
    /// whose checksum holds (torn, or damaged). A record whose checksum holds
    /// but whose kind is unknown or whose layout does not fit its kind was
    /// written that way: it is corruption (`fileOffset` + `offset` names it),
    /// never skipped nor cut.
    static func decode(
        _ bytes: UnsafeRawBufferPointer, at offset: Int, file: String, fileOffset: Int
    ) throws(EventLogError) -> (CursorRecord, length: Int)? {
        guard let length = checkedLength(bytes, at: offset) else { return nil }
        let record = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
        func corrupt(_ reason: String) -> EventLogError {
            .corruption(file: file, offset: Int64(fileOffset + offset), reason: reason)
        }
        guard let kind = CursorRecordKind(rawValue: record[8]) else {
            throw corrupt("cursor journal record of unknown kind \(record[8])")
        }
        let nameLength = Int(record[9])
        let at = 10 + nameLength
        guard nameLength >= 1 else {
            throw corrupt("cursor journal record of kind \(kind.rawValue) has an empty name")
        }
        guard length >= fixedBytes + nameLength else {
            throw corrupt("cursor journal record of kind \(kind.rawValue) has a bad name length")
        }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: record[10..<at]), as: UTF8.self)
        let deliveries = record.loadLE(at: at + 16, as: UInt32.self)
        var positions: [UInt64] = []
        if kind == .replay {
            let count = Int(deliveries)
            guard count >= 1, count <= maxReplayPositions, length == fixedBytes + nameLength + 8 * count else {
                throw corrupt("cursor journal replay record's length does not match its \(count) positions")
            }
            positions.reserveCapacity(count)
            for i in 0..<count { positions.append(record.loadLE(at: at + 20 + 8 * i, as: UInt64.self)) }
        } else {
            guard length == fixedBytes + nameLength else {
                throw corrupt("cursor journal record of kind \(kind.rawValue) has the wrong length")
            }
        }
        return (CursorRecord(
            kind: kind, name: name, position: record.loadLE(at: at, as: UInt64.self),
            timestamp: record.loadLE(at: at + 8, as: Int64.self), deliveries: kind == .replay ? 0 : deliveries,
            positions: positions), length)
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
        guard FormatVersion.readable.contains(version) else {
            throw .unsupportedFormatVersion(file: file, found: Int(version), supported: Int(FormatVersion.current))
        }
        guard bytes.count >= size,
              CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(size - 4)])) == bytes.loadLE(at: size - 4, as: UInt32.self)
        else { throw .corruption(file: file, offset: 0, reason: "cursor journal header checksum mismatch") }
        for range in [10..<16, 32..<44] {
            if let at = Reserved.firstNonZero(bytes, range) {
                throw .corruption(file: file, offset: Int64(at), reason: "reserved byte \(at) of the cursor journal header is not zero")
            }
        }
        guard Array(bytes[16..<32]) == logID else {
            throw .foreignFile(file: file, reason: "cursor journal belongs to another log (log id differs)")
        }
    }
}
