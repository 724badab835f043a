/// One row of the stream table (Format.md §14): what a stream table run keeps of a stream's state.
struct StreamTableRow: Sendable, Equatable {
    var name: String
    var nextVersion: UInt64 = 0
    var truncateBefore: UInt64 = 0
    var deletion: StreamDeletion = .none
    var firstPosition: UInt64?
    var lastPosition: UInt64?
    /// The position of the last append's batch (.max: none).
    var lastAppendBatch: UInt64 = .max
    var lastAppendFirstVersion: UInt64 = 0
    var lastAppendCount: UInt32 = 0

    init(name: String) { self.name = name }
}

/// A row's bytes in a stream table run (Format.md §14.1), after its hash:
///
///     u8 name length (1...255), name (UTF-8), varint next version,
///     varint truncate-before, u8 deletion (0 none, 1 soft, 2 hard),
///     varint first position + 1 (0: none), varint last position + 1,
///     varint last append's batch position + 1 (0: none),
///     varint last append's first version, varint last append's count
extension StreamTableRow {
    /// The most bytes a row takes: the name, its length byte, the deletion
    /// byte and seven varints.
    static let maxEncodedBytes = 1 + Limits.maxStreamNameBytes + 1 + 7 * Varint.maxBytes

    /// Appends the row's bytes. The name must be 1 to 255 UTF-8 bytes (the
    /// caller checks; a longer one traps).
    func encode(into buffer: inout ByteBuffer) {
        var name = name
        name.withUTF8 { bytes in
            buffer.appendByte(UInt8(bytes.count))
            buffer.append(UnsafeRawBufferPointer(bytes))
        }
        buffer.appendVarint(nextVersion)
        buffer.appendVarint(truncateBefore)
        buffer.appendByte(deletion.rawValue)
        buffer.appendVarint(firstPosition.map { $0 + 1 } ?? 0)
        buffer.appendVarint(lastPosition.map { $0 + 1 } ?? 0)
        buffer.appendVarint(lastAppendBatch == .max ? 0 : lastAppendBatch + 1)
        buffer.appendVarint(lastAppendFirstVersion)
        buffer.appendVarint(UInt64(lastAppendCount))
    }

    init(name: String, fields: StreamTableRowFields) {
        self.name = name
        nextVersion = fields.nextVersion
        truncateBefore = fields.truncateBefore
        deletion = fields.deletion
        firstPosition = fields.firstPosition
        lastPosition = fields.lastPosition
        lastAppendBatch = fields.lastAppendBatch
        lastAppendFirstVersion = fields.lastAppendFirstVersion
        lastAppendCount = fields.lastAppendCount
    }

    /// The range of the name of the row at `offset` in `bytes` (its length
    /// byte, 1 to 255, then the bytes); advances `offset` past it. Nil
    /// when the bytes do not hold one.
    @inline(__always)
    static func decodeName(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> Range<Int>? {
        guard offset >= 0, offset < bytes.count else { return nil }
        let length = Int(bytes[offset])
        guard length >= 1, length <= bytes.count - offset - 1 else { return nil }
        offset += 1 + length
        return (offset - length)..<offset
    }

    /// The row at `offset` in `bytes`, name included; advances `offset` past
    /// it. Nil when the bytes do not hold a row.
    static func decode(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> StreamTableRow? {
        guard let name = decodeName(bytes, at: &offset), let fields = StreamTableRowFields.decode(bytes, at: &offset) else { return nil }
        return StreamTableRow(name: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[name]), as: UTF8.self), fields: fields)
    }
}

/// A row's fields after its name, as integers: what a reader decodes (and
/// checks) of every row it passes, without the cost of the name.
struct StreamTableRowFields {
    var nextVersion: UInt64
    var truncateBefore: UInt64
    var deletion: StreamDeletion
    var firstPosition: UInt64?
    var lastPosition: UInt64?
    var lastAppendBatch: UInt64
    var lastAppendFirstVersion: UInt64
    var lastAppendCount: UInt32

    /// Advances `offset` past the fields at it without decoding them; false
    /// when the bytes do not hold them (a lookup passing rows of smaller hashes).
    @inline(__always)
    static func skip(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> Bool {
        // Two varints, the deletion byte, five varints.
        for field in 0..<8 {
            if field == 2 {
                guard offset < bytes.count else { return false }
                offset += 1
                continue
            }
            var length = 0
            while true {
                guard offset < bytes.count, length < Varint.maxBytes else { return false }
                let byte = bytes[offset]
                offset += 1
                length += 1
                if byte & 0x80 == 0 { break }
            }
        }
        return true
    }

    /// The fields at `offset` in `bytes`, which it advances past them; nil
    /// (`offset` unspecified) when the bytes do not hold them. Allocates nothing.
    @inline(__always)
    static func decode(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> StreamTableRowFields? {
        guard let next = Varint.read(bytes, &offset), let truncate = Varint.read(bytes, &offset), offset < bytes.count,
              let deletion = StreamDeletion(rawValue: bytes[offset])
        else { return nil }
        offset += 1
        guard let first = Varint.read(bytes, &offset), let last = Varint.read(bytes, &offset),
              let batch = Varint.read(bytes, &offset), let firstVersion = Varint.read(bytes, &offset),
              let appendCount = Varint.read(bytes, &offset), appendCount <= UInt64(UInt32.max)
        else { return nil }
        return StreamTableRowFields(
            nextVersion: next, truncateBefore: truncate, deletion: deletion,
            firstPosition: first == 0 ? nil : first - 1, lastPosition: last == 0 ? nil : last - 1,
            lastAppendBatch: batch == 0 ? .max : batch - 1, lastAppendFirstVersion: firstVersion,
            lastAppendCount: UInt32(appendCount))
    }
}
