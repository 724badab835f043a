/// The cursor journal `cursors.journal` (Format.md §15): an append-only file
/// of checksummed records, each setting or deleting a named cursor or
/// parking or replaying events of a consumer group. Replaying it gives the
/// consumers' state; it is rewritten (compacted) when it grows.
///
///     header (48 bytes): u64 magic "EVLOGCUR", u16 format version, 6 reserved,
///                        16-byte log id, 12 reserved, u32 CRC32C of [0, 44)
///     record:            u32 length (the whole record), u32 CRC32C over [0, 4)
///                        and [8, length), (layout 2 only) u64 synced,
///                        u8 kind, u8 name length, name, u64 position,
///                        i64 timestamp, u32 deliveries,
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

/// The record layout of a journal, named by its header's version field
/// (Format.md §15): journals of format versions 1 to 6 have layout 1;
/// version 7 on, layout 2, whose records say how far the journal was on
/// disk before them. That is what tells damage from a torn write.
enum CursorJournalLayout: Sendable, Equatable {
    case v1
    case v2

    init(version: UInt16) { self = version >= 7 ? .v2 : .v1 }

    /// The bytes of the synced field (after the checksum).
    var syncedBytes: Int { self == .v2 ? 8 : 0 }
    /// The bytes of a record without its name and positions.
    var fixedBytes: Int { CursorRecord.fixedBytes + syncedBytes }
    /// The largest record.
    var maxBytes: Int { CursorRecord.maxBytes + syncedBytes }
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
    /// Layout 2: the journal's bytes before this offset were on disk before
    /// this record could be read (0 in layout 1, where it is unknown).
    var synced: UInt64 = 0

    /// Layout 1's fixed bytes (layout 2 adds `CursorJournalLayout.syncedBytes`).
    static let fixedBytes = 4 + 4 + 1 + 1 + 8 + 8 + 4
    /// Most positions in one kind-5 record (a larger replay is several records).
    static let maxReplayPositions = 1 << 16
    static let maxBytes = fixedBytes + 255 + 8 * maxReplayPositions

    func encode(into w: inout ByteWriter, layout: CursorJournalLayout) {
        let nameBytes = Array(name.utf8)
        let start = w.bytes.count
        let extra = kind == .replay ? 8 * positions.count : 0
        w.le(UInt32(layout.fixedBytes + nameBytes.count + extra))
        w.le(UInt32(0))
        if layout == .v2 { w.le(synced) }
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
    static func checkedLength(_ bytes: UnsafeRawBufferPointer, at offset: Int, layout: CursorJournalLayout) -> Int? {
        guard offset >= 0, bytes.count - offset >= layout.fixedBytes else { return nil }
        let length = Int(bytes.loadLE(at: offset, as: UInt32.self))
        guard length >= layout.fixedBytes, length <= layout.maxBytes, length <= bytes.count - offset else { return nil }
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
        _ bytes: UnsafeRawBufferPointer, at offset: Int, layout: CursorJournalLayout, file: String, fileOffset: Int
    ) throws(EventLogError) -> (CursorRecord, length: Int)? {
        guard let length = checkedLength(bytes, at: offset, layout: layout) else { return nil }
        let record = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
        func corrupt(_ reason: String) -> EventLogError {
            .corruption(file: file, offset: Int64(fileOffset + offset), reason: reason)
        }
        let s = layout.syncedBytes
        let fixedBytes = layout.fixedBytes
        guard let kind = CursorRecordKind(rawValue: record[8 + s]) else {
            throw corrupt("cursor journal record of unknown kind \(record[8 + s])")
        }
        let nameLength = Int(record[9 + s])
        let at = 10 + s + nameLength
        guard nameLength >= 1 else {
            throw corrupt("cursor journal record of kind \(kind.rawValue) has an empty name")
        }
        guard length >= fixedBytes + nameLength else {
            throw corrupt("cursor journal record of kind \(kind.rawValue) has a bad name length")
        }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: record[(10 + s)..<at]), as: UTF8.self)
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
            positions: positions, synced: layout == .v2 ? record.loadLE(at: 8, as: UInt64.self) : 0), length)
    }

    /// The first offset after `offset` where a record whose checksum holds
    /// starts, with its length; nil when there is none. Used only past an
    /// invalid record, to tell damage from a torn last write (Format.md §15).
    static func nextChecked(
        _ bytes: UnsafeRawBufferPointer, after offset: Int, layout: CursorJournalLayout
    ) -> (offset: Int, length: Int)? {
        var at = offset + 1
        while bytes.count - at >= layout.fixedBytes {
            if let length = checkedLength(bytes, at: at, layout: layout) { return (at, length) }
            at += 1
        }
        return nil
    }

    /// The synced field of the checked record at `offset` (layout 2; 0 in layout 1).
    static func synced(_ bytes: UnsafeRawBufferPointer, at offset: Int, layout: CursorJournalLayout) -> UInt64 {
        layout == .v2 ? bytes.loadLE(at: offset + 8, as: UInt64.self) : 0
    }

    /// The names that the records of a damaged region `bytes` seem to carry,
    /// as far as their length and name fields can be read: a hint for the
    /// operator (`RecoveryReport.damagedCursors`), never used as state.
    static func readableNames(_ bytes: UnsafeRawBufferPointer, layout: CursorJournalLayout) -> [String] {
        var names: [String] = []
        var at = 0
        while bytes.count - at >= layout.fixedBytes {
            let length = Int(bytes.loadLE(at: at, as: UInt32.self))
            let nameLength = Int(bytes[at + 9 + layout.syncedBytes])
            let nameStart = at + 10 + layout.syncedBytes
            if nameLength >= 1, nameStart + nameLength <= bytes.count,
               let name = String(validating: UnsafeRawBufferPointer(rebasing: bytes[nameStart..<(nameStart + nameLength)]), as: UTF8.self),
               !name.contains(where: { $0.isASCII && ($0.asciiValue ?? 0) < 0x20 }), !names.contains(name) {
                names.append(name)
            }
            guard length >= layout.fixedBytes, length <= bytes.count - at else { break }
            at += length
        }
        return names
    }
}

/// A damaged region of a cursor journal: records that fail their checksum
/// although a later record shows they were on disk (Format.md §15).
struct CursorJournalDamage: Sendable, Equatable, CustomStringConvertible {
    /// Where the first damaged record starts, in the journal file.
    var offset: Int64
    /// The bytes up to the next valid record.
    var length: Int
    /// The cursor names the damaged records seem to carry, as far as they can be read.
    var names: [String]
    /// Set when the header itself is damaged (then no record was read).
    var reason: String? = nil

    var description: String {
        if let reason { return "\(reason); no cursor could be read" }
        return "\(length) bytes of cursor journal records fail their checksum although later records show they were on disk"
            + (names.isEmpty ? "" : " (cursors named there: \(names.joined(separator: ", ")))")
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

    /// Checks the header; returns the record layout its version names.
    @discardableResult
    static func check(_ bytes: UnsafeRawBufferPointer, file: String, logID: [UInt8]) throws(EventLogError) -> CursorJournalLayout {
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
        return CursorJournalLayout(version: version)
    }
}
