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
    /// The last append's batch's record count, markers included (0: unknown).
    var lastAppendRecordCount: UInt32 = 0
    /// The digest of the event ids the last append gave the stream (0: unknown or none).
    var lastAppendIDDigest: UInt64 = 0
    /// The stream's limits (Format.md §13.1, `$limits`; 0: none).
    var maxAgeMicroseconds: UInt64 = 0
    var maxCount: UInt64 = 0

    init(name: String) { self.name = name }
}

/// A row's bytes in a stream table run (Format.md §14.1), after its hash:
///
///     u8 name length (1...255), name (UTF-8), varint next version,
///     varint truncate-before, u8 deletion (0 none, 1 soft, 2 hard),
///     varint first position + 1 (0: none), varint last position + 1,
///     varint last append's batch position + 1 (0: none),
///     varint last append's first version, varint last append's count,
///     and from run version 3 on: u64 last append's id digest (little-endian),
///     varint last append's record count; from run version 4 on: varint
///     max age in microseconds, varint max count (0: none)
extension StreamTableRow {
    /// The most bytes a row takes: the name, its length byte, the deletion
    /// byte, ten varints and the digest.
    static let maxEncodedBytes = 1 + Limits.maxStreamNameBytes + 1 + 10 * Varint.maxBytes + 8

    /// Appends the row's bytes in the layout of `StreamTableRun.version`.
    /// The name must be 1 to 255 UTF-8 bytes (the caller checks; a longer one traps).
    func encode(into buffer: inout ByteBuffer) {
        var name = name
        name.withUTF8 { bytes in StreamTableRowFields(self).encode(name: UnsafeRawBufferPointer(bytes), into: &buffer) }
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
        lastAppendRecordCount = fields.lastAppendRecordCount
        lastAppendIDDigest = fields.lastAppendIDDigest
        maxAgeMicroseconds = fields.maxAgeMicroseconds
        maxCount = fields.maxCount
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
}

/// A row's fields after its name, as integers: what a reader decodes (and
/// checks) of every row it passes, without the cost of the name. A row of a
/// version 2 run has no digest nor record count: they read as 0 (unknown).
struct StreamTableRowFields {
    var nextVersion: UInt64
    var truncateBefore: UInt64
    var deletion: StreamDeletion
    var firstPosition: UInt64?
    var lastPosition: UInt64?
    var lastAppendBatch: UInt64
    var lastAppendFirstVersion: UInt64
    var lastAppendCount: UInt32
    var lastAppendRecordCount: UInt32
    var lastAppendIDDigest: UInt64
    var maxAgeMicroseconds: UInt64
    var maxCount: UInt64

    init(
        nextVersion: UInt64, truncateBefore: UInt64, deletion: StreamDeletion, firstPosition: UInt64?, lastPosition: UInt64?,
        lastAppendBatch: UInt64, lastAppendFirstVersion: UInt64, lastAppendCount: UInt32,
        lastAppendRecordCount: UInt32, lastAppendIDDigest: UInt64, maxAgeMicroseconds: UInt64 = 0, maxCount: UInt64 = 0
    ) {
        self.nextVersion = nextVersion
        self.truncateBefore = truncateBefore
        self.deletion = deletion
        self.firstPosition = firstPosition
        self.lastPosition = lastPosition
        self.lastAppendBatch = lastAppendBatch
        self.lastAppendFirstVersion = lastAppendFirstVersion
        self.lastAppendCount = lastAppendCount
        self.lastAppendRecordCount = lastAppendRecordCount
        self.lastAppendIDDigest = lastAppendIDDigest
        self.maxAgeMicroseconds = maxAgeMicroseconds
        self.maxCount = maxCount
    }

    /// A row's fields.
    init(_ row: StreamTableRow) {
        self.init(
            nextVersion: row.nextVersion, truncateBefore: row.truncateBefore, deletion: row.deletion,
            firstPosition: row.firstPosition, lastPosition: row.lastPosition, lastAppendBatch: row.lastAppendBatch,
            lastAppendFirstVersion: row.lastAppendFirstVersion, lastAppendCount: row.lastAppendCount,
            lastAppendRecordCount: row.lastAppendRecordCount, lastAppendIDDigest: row.lastAppendIDDigest,
            maxAgeMicroseconds: row.maxAgeMicroseconds, maxCount: row.maxCount)
    }

    /// Appends a row's bytes after its hash (its name's length and bytes,
    /// then these fields) in the layout of `StreamTableRun.version`, the one
    /// writers write. The name must be 1 to 255 bytes (the caller checks; a
    /// longer one traps). Allocates nothing once the buffer has grown.
    @inline(__always)
    func encode(name: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        buffer.appendByte(UInt8(name.count))
        buffer.append(name)
        buffer.appendVarint(nextVersion)
        buffer.appendVarint(truncateBefore)
        buffer.appendByte(deletion.rawValue)
        buffer.appendVarint(firstPosition.map { $0 + 1 } ?? 0)
        buffer.appendVarint(lastPosition.map { $0 + 1 } ?? 0)
        buffer.appendVarint(lastAppendBatch == .max ? 0 : lastAppendBatch + 1)
        buffer.appendVarint(lastAppendFirstVersion)
        buffer.appendVarint(UInt64(lastAppendCount))
        buffer.appendLE(lastAppendIDDigest)
        buffer.appendVarint(UInt64(lastAppendRecordCount))
        buffer.appendVarint(maxAgeMicroseconds)
        buffer.appendVarint(maxCount)
    }

    /// Advances `offset` past the fields at it, in the layout of run version
    /// `version`, without decoding them; false when the bytes do not hold
    /// them (a lookup passing rows of smaller hashes).
    @inline(__always)
    static func skip(_ bytes: UnsafeRawBufferPointer, at offset: inout Int, version: UInt16) -> Bool {
        // Two varints, the deletion byte, five varints; then (version 3) the
        // 8-byte digest and a varint; then (version 4) two varints.
        let fields = version >= 4 ? 12 : version >= 3 ? 10 : 8
        for field in 0..<fields {
            if field == 2 || field == 8 {
                let size = field == 2 ? 1 : 8
                guard bytes.count - offset >= size else { return false }
                offset += size
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

    /// The fields at `offset` in `bytes`, in the layout of run version
    /// `version`, which it advances past them; nil (`offset` unspecified)
    /// when the bytes do not hold them. Allocates nothing.
    @inline(__always)
    static func decode(_ bytes: UnsafeRawBufferPointer, at offset: inout Int, version: UInt16) -> StreamTableRowFields? {
        guard let next = Varint.read(bytes, &offset), let truncate = Varint.read(bytes, &offset), offset < bytes.count,
              let deletion = StreamDeletion(rawValue: bytes[offset])
        else { return nil }
        offset += 1
        guard let first = Varint.read(bytes, &offset), let last = Varint.read(bytes, &offset),
              let batch = Varint.read(bytes, &offset), let firstVersion = Varint.read(bytes, &offset),
              let appendCount = Varint.read(bytes, &offset), appendCount <= UInt64(UInt32.max)
        else { return nil }
        var digest: UInt64 = 0
        var recordCount: UInt64 = 0
        if version >= 3 {
            guard offset >= 0, bytes.count - offset >= 8 else { return nil }
            digest = bytes.loadLE(at: offset, as: UInt64.self)
            offset += 8
            guard let count = Varint.read(bytes, &offset), count <= UInt64(UInt32.max) else { return nil }
            recordCount = count
        }
        var maxAge: UInt64 = 0
        var maxCount: UInt64 = 0
        if version >= 4 {
            guard let age = Varint.read(bytes, &offset), let count = Varint.read(bytes, &offset) else { return nil }
            maxAge = age
            maxCount = count
        }
        return StreamTableRowFields(
            nextVersion: next, truncateBefore: truncate, deletion: deletion,
            firstPosition: first == 0 ? nil : first - 1, lastPosition: last == 0 ? nil : last - 1,
            lastAppendBatch: batch == 0 ? .max : batch - 1, lastAppendFirstVersion: firstVersion,
            lastAppendCount: UInt32(appendCount), lastAppendRecordCount: UInt32(recordCount), lastAppendIDDigest: digest,
            maxAgeMicroseconds: maxAge, maxCount: maxCount)
    }
}
