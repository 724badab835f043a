/// The persisted stream table `streams.table` (Format.md, "Stream table
/// file"): every stream's state as of a position, so an open after a clean
/// shutdown does not re-read the log.
///
///     0   u64  magic "EVLOGSTB"
///     8   u16  format version
///     10  u16  reserved (0)
///     12  u32  stream count
///     16  u64  covered position: the table reflects every record before it
///     24  u64  reserved (0)
///     32  …    one row per stream:
///              u8 name length, name (UTF-8), varint next version,
///              varint truncate-before, u8 deletion (0 none, 1 soft, 2 hard),
///              varint first position + 1 (0: none), varint last position + 1,
///              varint last append's batch position + 1 (0: none),
///              varint last append's first version, varint last append's count
///     …   u32  CRC32C of everything before it
enum StreamTableFile {
    static let headerSize = 32

    static func encode(_ states: some Collection<StreamTableRow>, coveredPosition: UInt64) -> [UInt8] {
        var buffer = ByteBuffer(capacity: headerSize + states.count * 48 + 4)
        buffer.appendLE(Magic.streamTable)
        buffer.appendLE(FormatVersion.current)
        buffer.appendLE(UInt16(0))
        buffer.appendLE(UInt32(states.count))
        buffer.appendLE(coveredPosition)
        buffer.appendLE(UInt64(0))
        for state in states {
            var name = state.name
            name.withUTF8 { bytes in
                buffer.appendByte(UInt8(bytes.count))
                buffer.append(UnsafeRawBufferPointer(bytes))
            }
            buffer.appendVarint(state.nextVersion)
            buffer.appendVarint(state.truncateBefore)
            buffer.appendByte(state.deletion.rawValue)
            buffer.appendVarint(state.firstPosition.map { $0 + 1 } ?? 0)
            buffer.appendVarint(state.lastPosition.map { $0 + 1 } ?? 0)
            buffer.appendVarint(state.lastAppendBatch == .max ? 0 : state.lastAppendBatch + 1)
            buffer.appendVarint(state.lastAppendFirstVersion)
            buffer.appendVarint(UInt64(state.lastAppendCount))
        }
        buffer.appendLE(CRC32C.checksum(buffer.bytes))
        return Array(buffer.bytes)
    }

    /// True when the header's reserved fields (bytes 10–11 and 24–31) are zero.
    static func reservedZero(_ raw: UnsafeRawBufferPointer) -> Bool {
        Reserved.firstNonZero(raw, 10..<12) == nil && Reserved.firstNonZero(raw, 24..<32) == nil
    }

    /// The covered position of an intact table (magic, version, checksum and
    /// reserved fields checked; rows not decoded); nil when the bytes are not a valid table.
    static func coveredPosition(_ bytes: [UInt8]) -> UInt64? {
        bytes.withUnsafeBytes { raw -> UInt64? in
            guard raw.count >= headerSize + 4, raw.loadLE(at: 0, as: UInt64.self) == Magic.streamTable,
                  raw.loadLE(at: 8, as: UInt16.self) == FormatVersion.current,
                  CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 4)])) == raw.loadLE(at: raw.count - 4, as: UInt32.self),
                  reservedZero(raw)
            else { return nil }
            return raw.loadLE(at: 16, as: UInt64.self)
        }
    }

    /// The states and the covered position; nil when the bytes are not a valid table.
    static func decode(_ bytes: [UInt8]) -> (rows: [StreamTableRow], covered: UInt64)? {
        bytes.withUnsafeBytes { raw -> ([StreamTableRow], UInt64)? in
            guard raw.count >= headerSize + 4, raw.loadLE(at: 0, as: UInt64.self) == Magic.streamTable,
                  raw.loadLE(at: 8, as: UInt16.self) == FormatVersion.current,
                  CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 4)])) == raw.loadLE(at: raw.count - 4, as: UInt32.self),
                  reservedZero(raw)
            else { return nil }
            let count = Int(raw.loadLE(at: 12, as: UInt32.self))
            let covered = raw.loadLE(at: 16, as: UInt64.self)
            let body = UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 4)])
            var at = headerSize
            var states: [StreamTableRow] = []
            states.reserveCapacity(count)
            for _ in 0..<count {
                guard at < body.count else { return nil }
                let length = Int(body[at])
                at += 1
                guard length >= 1, at + length <= body.count else { return nil }
                let nameBytes = UnsafeRawBufferPointer(rebasing: body[at..<(at + length)])
                at += length
                var state = StreamTableRow(name: String(decoding: nameBytes, as: UTF8.self))
                guard let next = Varint.read(body, &at), let truncate = Varint.read(body, &at), at < body.count,
                      let deletion = StreamDeletion(rawValue: body[at])
                else { return nil }
                at += 1
                guard let first = Varint.read(body, &at), let last = Varint.read(body, &at),
                      let batch = Varint.read(body, &at), let firstVersion = Varint.read(body, &at),
                      let appendCount = Varint.read(body, &at), appendCount <= UInt64(UInt32.max)
                else { return nil }
                state.nextVersion = next
                state.truncateBefore = truncate
                state.deletion = deletion
                state.firstPosition = first == 0 ? nil : first - 1
                state.lastPosition = last == 0 ? nil : last - 1
                state.lastAppendBatch = batch == 0 ? .max : batch - 1
                state.lastAppendFirstVersion = firstVersion
                state.lastAppendCount = UInt32(appendCount)
                states.append(state)
            }
            guard at == body.count else { return nil }
            return (states, covered)
        }
    }
}

/// One row of the stream table file: what it keeps of a stream's state.
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
