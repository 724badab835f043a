import struct Foundation.UUID

/// One record inside a batch's records area (Format.md, "Record"):
///
///     varint  bodyLength        bytes from `crc` to the end of `data`
///     u32     crc               CRC32C of (position u64, batch firstTimestamp i64, body[4...]), continued over
///                               the type's bytes when bit 6 names it by index
///     u8      flags             bit 0: timestamp delta present; bit 1: metadata present; bit 2: stream marker;
///                               bit 3: tombstone; bit 4: key present
///     varint  timestampDelta    zigzag, relative to the batch's firstTimestamp (if bit 0)
///     varint  version
///     u8      streamLength (≥ 1), stream bytes
///     u8      keyLength (≥ 1), key bytes (if bit 4)
///     u8      typeLength, type bytes; or, with bit 6, u8 typeIndex into the batch's type table
///     varint  metadataLength, metadata bytes (if bit 1)
///     …       data: the rest of the body
///
/// A sealed record (bit 5, in a sealed batch, Format.md §5.1) has instead,
/// after the type:
///
///     u32     seal group        the batch's seal table entry whose key sealed it
///     …       sealed payload    ciphertext of (varint metadataLength, metadata, data): the rest of the body
enum Record {
    static let flagTimestamp: UInt8 = 0x01
    static let flagMetadata: UInt8 = 0x02
    /// The record is a stream marker (deletion, truncation), not an event.
    static let flagMarker: UInt8 = 0x04
    /// The event is a tombstone of its key (key compaction).
    static let flagTombstone: UInt8 = 0x08
    /// An explicit key follows the stream name (else the key is the stream name).
    static let flagKey: UInt8 = 0x10
    /// The record is sealed: a seal group and a sealed payload follow the type (Format.md §5.1).
    static let flagSealed: UInt8 = 0x20
    /// The type is a 1-byte index into the batch's type table (Format.md §5.3, version 10).
    static let flagTypeIndex: UInt8 = 0x40
    static let knownFlags: UInt8 = 0x7F

    /// In a reader's opened copy of a sealed batch (never on disk), the seal
    /// group field of a record whose payload was decrypted in place
    /// (`SealedBatch.open`) ...
    static let openedGroup: UInt32 = 0xFFFF_FFFE
    /// ... and of one whose data key was forgotten (its payload left as is).
    static let forgottenGroup: UInt32 = 0xFFFF_FFFF

    /// The record checksum's seed: CRC32C over the position and the batch's
    /// first timestamp, so a record read at the wrong place, or under a
    /// damaged batch header, fails its check.
    @inline(__always) static func seed(position: UInt64, firstTimestamp: Timestamp) -> UInt32 {
        var words: (UInt64, Int64) = (position.littleEndian, firstTimestamp.littleEndian)
        return withUnsafeBytes(of: &words) { CRC32C.checksum($0) }
    }
}

/// Why a record could not be decoded (the caller adds the file and offset).
extension Record {
    /// The most bytes before a record's checksummed bytes: its length (a
    /// varint of at most 10 bytes) and its stored CRC.
    static let maxHeadBytes = 14
}

struct RecordDefect: Error {
    let reason: String
    /// Offset inside the records area.
    let offset: Int
}

// MARK: - Encoding

extension Record {
    /// The most bytes `encode` can write for a record of these sizes (every
    /// varint at its longest), checked against `Limits.maxRecordBytes`: a
    /// record whose data alone is over it, or whose bound is more than 64
    /// bytes over it, is `limitExceeded`.
    static func checkedBound(
        streamBytes: Int, typeBytes: Int, metadataLength: Int, dataBytes: Int, keyBytes: Int?
    ) throws(EventLogError) -> Int {
        let bound = Varint.maxBytes + 4 + 1 + 2 * Varint.maxBytes + 2 + streamBytes + typeBytes
            + Varint.maxBytes + metadataLength + dataBytes + (keyBytes.map { 1 + $0 } ?? 0)
        guard dataBytes <= Limits.maxRecordBytes, bound <= Limits.maxRecordBytes + 64 else {
            throw .limitExceeded(limit: "record bytes", value: bound, maximum: Limits.maxRecordBytes)
        }
        return bound
    }

    /// Appends one encoded record to `buffer`. The caller checked the limits.
    @inline(__always)
    static func encode(
        into buffer: inout ByteBuffer, position: UInt64, firstTimestamp: Timestamp, timestamp: Timestamp,
        version: UInt64, isMarker: Bool, stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
        metadata: EventMetadata?, metadataLength: Int, data: UnsafeRawBufferPointer,
        key: UnsafeRawBufferPointer? = nil, isTombstone: Bool = false, typeIndex: UInt8? = nil
    ) {
        let delta = timestamp &- firstTimestamp
        var flags: UInt8 = isMarker ? flagMarker : 0
        var bodyLength = 4 + 1 + Varint.size(version) + 1 + stream.count + 1 + data.count
        if typeIndex != nil {
            flags |= flagTypeIndex
        } else {
            bodyLength += type.count
        }
        if isTombstone { flags |= flagTombstone }
        if let key {
            flags |= flagKey
            bodyLength += 1 + key.count
        }
        if delta != 0 {
            flags |= flagTimestamp
            bodyLength += Varint.size(Varint.zigzag(delta))
        }
        if metadata != nil {
            flags |= flagMetadata
            bodyLength += Varint.size(UInt64(metadataLength)) + metadataLength
        }
        let crcOffset = appendHead(
            into: &buffer, bodyLength: bodyLength, flags: flags, delta: delta, version: version, stream: stream, key: key,
            type: type, typeIndex: typeIndex)
        if let metadata {
            buffer.appendVarint(UInt64(metadataLength))
            MetadataCoding.encode(metadata, into: &buffer)
        }
        buffer.append(data)
        let bodyStart = crcOffset + 4
        var crc = CRC32C.checksum(
            buffer.base + bodyStart, count: buffer.count - bodyStart,
            continuing: seed(position: position, firstTimestamp: firstTimestamp))
        // A type named by index: the checksum covers the type too (Format.md §6).
        if typeIndex != nil { crc = CRC32C.checksum(type, continuing: crc) }
        (buffer.base + crcOffset).storeLE(crc, at: 0)
    }

    /// Appends a record's length, room for its CRC, and its fields from the
    /// flags through the type (what every record has in the clear: the type
    /// itself, or its `typeIndex` in the batch's type table); returns the
    /// CRC field's offset.
    @inline(__always)
    private static func appendHead(
        into buffer: inout ByteBuffer, bodyLength: Int, flags: UInt8, delta: Int64, version: UInt64,
        stream: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer?, type: UnsafeRawBufferPointer, typeIndex: UInt8? = nil
    ) -> Int {
        buffer.reserve(Varint.maxBytes + bodyLength)
        buffer.appendVarint(UInt64(bodyLength))
        let crcOffset = buffer.count
        buffer.count += 4
        buffer.appendByte(flags)
        if delta != 0 { buffer.appendVarint(Varint.zigzag(delta)) }
        buffer.appendVarint(version)
        buffer.appendByte(UInt8(stream.count))
        buffer.append(stream)
        if let key {
            buffer.appendByte(UInt8(key.count))
            buffer.append(key)
        }
        if let typeIndex {
            buffer.appendByte(typeIndex)
        } else {
            buffer.appendByte(UInt8(type.count))
            buffer.append(type)
        }
        return crcOffset
    }

    /// Where `encodeSealed` put a record's parts, for the batch's seal
    /// (`BatchSealer`): offsets in the buffer it wrote to.
    struct SealedParts {
        /// The record's CRC field; its body runs from `crcOffset + 4` to `payloadEnd`.
        var crcOffset: Int
        var payloadStart: Int
        var payloadEnd: Int
    }

    /// Appends one sealed record (flag bit 5) to `buffer` with its payload
    /// (metadata length, metadata, data) still in the clear and its CRC not
    /// yet computed: the batch's seal encrypts the payload in place, then
    /// computes the CRC over the ciphertext (`checksum(at:...)`). The caller
    /// checked the limits (`checkedBound` plus `sealedExtraBytes`).
    static func encodeSealed(
        into buffer: inout ByteBuffer, firstTimestamp: Timestamp, timestamp: Timestamp, version: UInt64,
        stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, metadata: EventMetadata?, metadataLength: Int,
        data: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer?, isTombstone: Bool, group: UInt32
    ) -> SealedParts {
        let delta = timestamp &- firstTimestamp
        var flags: UInt8 = flagSealed
        var bodyLength = 4 + 1 + Varint.size(version) + 1 + stream.count + 1 + type.count + 4
            + Varint.size(UInt64(metadataLength)) + metadataLength + data.count
        if isTombstone { flags |= flagTombstone }
        if let key {
            flags |= flagKey
            bodyLength += 1 + key.count
        }
        if delta != 0 {
            flags |= flagTimestamp
            bodyLength += Varint.size(Varint.zigzag(delta))
        }
        let crcOffset = appendHead(
            into: &buffer, bodyLength: bodyLength, flags: flags, delta: delta, version: version, stream: stream, key: key,
            type: type)
        buffer.reserve(4)
        (buffer.base + buffer.count).storeLE(group, at: 0)
        buffer.count += 4
        let payloadStart = buffer.count
        buffer.appendVarint(UInt64(metadataLength))
        if let metadata { MetadataCoding.encode(metadata, into: &buffer) }
        buffer.append(data)
        return SealedParts(crcOffset: crcOffset, payloadStart: payloadStart, payloadEnd: buffer.count)
    }

    /// The bytes a sealed record takes beyond `checkedBound`'s: its seal group field.
    static let sealedExtraBytes = 4

    /// Computes and stores the CRC of the record whose CRC field is at
    /// `crcOffset` and whose body ends at `end` (`base`-relative offsets).
    static func storeChecksum(
        _ base: UnsafeMutableRawPointer, crcOffset: Int, end: Int, position: UInt64, firstTimestamp: Timestamp
    ) {
        let bodyStart = crcOffset + 4
        let crc = CRC32C.checksum(
            base + bodyStart, count: end - bodyStart, continuing: seed(position: position, firstTimestamp: firstTimestamp))
        (base + crcOffset).storeLE(crc, at: 0)
    }
}

// MARK: - Decoding

/// A borrowed view of one stored event: its fields point into the log's
/// mapped bytes (or a reader's decompression buffer).
///
/// Valid only inside the closure that lends it: do not let it, or any of its
/// buffers, escape. Copy what you need to keep (`event()` copies all of it).
public struct EventView {
    /// The event's global position in the log.
    public let position: UInt64
    /// The event's version in its stream (0 for its first event); a stream
    /// marker's is the version its stream had next when it was written.
    public let version: UInt64
    /// When it was appended (or the time its appender gave), in
    /// microseconds since 1970.
    public let timestamp: Timestamp
    /// The stream name's UTF-8 bytes.
    public let streamBytes: UnsafeRawBufferPointer
    /// The event type's UTF-8 bytes.
    public let typeBytes: UnsafeRawBufferPointer
    /// The event's data.
    public let data: UnsafeRawBufferPointer
    /// The encoded metadata section (empty when the event has none); `metadata()` decodes it.
    public let metadataBytes: UnsafeRawBufferPointer
    /// True for a stream marker (a deletion or truncation record the log
    /// wrote): not an event of its stream; stream reads and filtered reads skip it.
    public let isMarker: Bool
    /// True for a tombstone (`NewEvent.isTombstone`).
    public let isTombstone: Bool
    /// The record has an explicit key: its length byte and bytes follow the
    /// stream name's (Format.md §6), checked when the record was decoded.
    let hasKey: Bool
    /// True when the event was sealed under a data key that was since
    /// forgotten (`Log.forgetStream(_:)`, crypto-shredding): its data and
    /// metadata are gone for good and read as empty; its stream, type,
    /// version, timestamp and key are still there.
    public internal(set) var isForgotten = false
    /// True when `data` holds the sealed payload itself (ciphertext), not
    /// the event's data: only the library's own checks (`verify`) read a
    /// sealed record without opening its batch.
    var isSealed = false

    /// The explicit key's UTF-8 bytes (empty when the event has none: its key
    /// is the stream name). Found from the stream name's end rather than kept:
    /// a smaller view is a faster scan.
    public var keyBytes: UnsafeRawBufferPointer {
        guard hasKey, let name = streamBytes.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let lengthByte = name + streamBytes.count
        return UnsafeRawBufferPointer(start: lengthByte + 1, count: Int(lengthByte.load(as: UInt8.self)))
    }

    /// The explicit key (nil when none: the key is the stream name; allocates a `String`).
    public var key: String? { keyBytes.isEmpty ? nil : String(decoding: keyBytes, as: UTF8.self) }

    /// The stream name (allocates a `String`).
    public var stream: String { String(decoding: streamBytes, as: UTF8.self) }
    /// The event type (allocates a `String`).
    public var type: String { String(decoding: typeBytes, as: UTF8.self) }

    /// True when the stream name equals `name`, without allocating.
    public func isStream(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { $0.elementsEqual(streamBytes) }
    }

    /// Decodes the metadata section.
    ///
    /// - Throws: `EventLogError.corruption` when it is damaged.
    public func metadata() throws -> EventMetadata {
        try decodedMetadata()
    }

    /// A copy of the whole event.
    ///
    /// - Throws: `EventLogError.corruption` when its metadata is damaged.
    public func event() throws -> Event {
        try ownedEvent()
    }

    /// `metadata()`, for the library's typed-throws code.
    func decodedMetadata() throws(EventLogError) -> EventMetadata {
        do { return try MetadataCoding.decode(metadataBytes) } catch {
            throw .corruption(file: "", offset: 0, reason: "event \(position): \(error.reason)")
        }
    }

    /// `event()`, for the library's typed-throws code.
    func ownedEvent() throws(EventLogError) -> Event {
        var event = Event(
            position: position, stream: stream, version: version, type: type, data: Array(data),
            metadata: try decodedMetadata(), timestamp: timestamp, key: key, isTombstone: isTombstone)
        event.isForgotten = isForgotten
        return event
    }
}

extension Record {
    /// Decodes the record at `offset` of `area` (an uncompressed records area)
    /// and advances `offset` past it. With `verify`, checks the record's own
    /// checksum (point reads); a scan checks the batch frame instead.
    @inline(__always)
    static func decode(
        _ area: UnsafeRawBufferPointer, at offset: inout Int, position: UInt64, firstTimestamp: Timestamp,
        verify: Bool, types: TypeTable
    ) throws(RecordDefect) -> EventView {
        let start = offset
        let body = try Self.body(of: area, at: &offset)
        // The checksum of the body; a record naming its type by index
        // continues it over the type's bytes, once they are found.
        var computed: UInt32 = 0
        if verify {
            // Under the SIGBUS guard: a point or stream read reaches this
            // record's bytes here first (its caller touched only its start).
            guard let crc = MappedBytes.checksum(
                body.baseAddress! + 4, count: body.count - 4,
                continuing: seed(position: position, firstTimestamp: firstTimestamp))
            else { throw RecordDefect(reason: MappedBytes.unreadableReason, offset: start) }
            computed = crc
            guard body[4] & flagTypeIndex != 0 || body.loadLE(at: 0, as: UInt32.self) == computed else {
                throw RecordDefect(reason: "record checksum mismatch", offset: start)
            }
        }
        var i = 4
        let (flags, timestamp, version, stream) = try fields(of: body, at: &i, firstTimestamp: firstTimestamp, start: start)
        if flags & flagKey != 0 { _ = try key(of: body, at: &i, start: start) }
        // A type length byte follows the name (and key), or the type's
        // index in the batch's type table.
        guard i < body.count else { throw RecordDefect(reason: "stream name runs past the record", offset: start) }
        let type: UnsafeRawBufferPointer
        if flags & flagTypeIndex != 0 {
            let index = Int(body[i])
            i += 1
            guard let named = types.type(index) else {
                throw RecordDefect(
                    reason: types.count == 0
                        ? "a type index in a batch without a type table"
                        : index >= types.count
                        ? "type index \(index) is past the batch's type table of \(types.count)"
                        : "type index \(index) names no type in the batch's type table",
                    offset: start)
            }
            // (The table was read under the guard: `TypeTable.read`.)
            if verify && body.loadLE(at: 0, as: UInt32.self) != CRC32C.checksum(named, continuing: computed) {
                throw RecordDefect(reason: "record checksum mismatch", offset: start)
            }
            type = named
        } else {
            let typeLength = Int(body[i])
            i += 1
            guard typeLength <= body.count - i else { throw RecordDefect(reason: "type runs past the record", offset: start) }
            type = UnsafeRawBufferPointer(rebasing: body[i..<(i + typeLength)])
            i += typeLength
        }
        var metadata = UnsafeRawBufferPointer(rebasing: body[i..<i])
        var sealing = SealState.none
        if flags & flagSealed != 0 {
            guard flags & (flagMetadata | flagMarker | flagTypeIndex) == 0 else {
                throw RecordDefect(reason: "a sealed record sets the metadata, marker or type index flag", offset: start)
            }
            guard body.count - i >= 4 else { throw RecordDefect(reason: "seal group runs past the record", offset: start) }
            let group = body.loadLE(at: i, as: UInt32.self)
            i += 4
            switch group {
            case openedGroup:
                // Opened in place: the payload is (metadata length, metadata, data) in the clear.
                guard let length = Varint.read(body, &i), length <= UInt64(body.count - i) else {
                    throw RecordDefect(reason: "sealed metadata runs past the record", offset: start)
                }
                metadata = UnsafeRawBufferPointer(rebasing: body[i..<(i + Int(length))])
                i += Int(length)
            case forgottenGroup:
                sealing = .forgotten
                i = body.count
            default:
                sealing = .sealed
            }
        } else if flags & flagMetadata != 0 {
            guard let length = Varint.read(body, &i), length <= UInt64(body.count - i) else {
                throw RecordDefect(reason: "metadata runs past the record", offset: start)
            }
            metadata = UnsafeRawBufferPointer(rebasing: body[i..<(i + Int(length))])
            i += Int(length)
        }
        let data = UnsafeRawBufferPointer(rebasing: body[i...])
        if flags & flagMarker != 0 {
            // Format.md §13.1: a marker of a type (or data) that format
            // version 1 does not define was not written by a version 1
            // writer; ignoring it would read its stream in another state.
            guard StreamMarker(type: type, data: data) != nil else {
                throw RecordDefect(reason: "unknown stream marker (type or data not defined)", offset: start)
            }
        }
        var view = EventView(
            position: position, version: version, timestamp: timestamp, streamBytes: stream, typeBytes: type,
            data: data, metadataBytes: metadata, isMarker: flags & flagMarker != 0,
            isTombstone: flags & flagTombstone != 0, hasKey: flags & flagKey != 0)
        if sealing != .none {
            view.isForgotten = sealing == .forgotten
            view.isSealed = sealing == .sealed
        }
        return view
    }

    /// What the seal group field of a sealed record says (`decode`).
    private enum SealState { case none, sealed, forgotten }

    /// Where a sealed record's seal group field and payload are (`SealedBatch`);
    /// nil for a record that is not sealed. Advances `offset` past the record.
    @inline(__always)
    static func sealedPayload(
        _ area: UnsafeRawBufferPointer, at offset: inout Int
    ) throws(RecordDefect) -> (groupOffset: Int, payloadEnd: Int)? {
        let start = offset
        let body = try Self.body(of: area, at: &offset)
        let bodyStart = offset - body.count
        let end = offset
        var i = 4
        let (flags, _, _, _) = try fields(of: body, at: &i, firstTimestamp: 0, start: start)
        guard flags & flagSealed != 0 else { return nil }
        guard flags & flagTypeIndex == 0 else { throw RecordDefect(reason: "a sealed record sets the type index flag", offset: start) }
        if flags & flagKey != 0 { _ = try key(of: body, at: &i, start: start) }
        guard i < body.count else { throw RecordDefect(reason: "stream name runs past the record", offset: start) }
        let typeLength = Int(body[i])
        i += 1
        guard typeLength <= body.count - i, body.count - i - typeLength >= 4 else {
            throw RecordDefect(reason: "seal group runs past the record", offset: start)
        }
        i += typeLength
        return (bodyStart + i, end)
    }

    /// What scavenging needs of the record at `offset` (its marker and
    /// tombstone flags, version, timestamp, stream name and key), read
    /// without decoding the rest;
    /// advances `offset` past it. The frame's checksum vouches for the bytes.
    @inline(__always)
    static func head(
        _ area: UnsafeRawBufferPointer, at offset: inout Int, firstTimestamp: Timestamp
    ) throws(RecordDefect) -> RecordHead {
        let start = offset
        let body = try Self.body(of: area, at: &offset)
        var i = 4
        let (flags, timestamp, version, stream) = try fields(of: body, at: &i, firstTimestamp: firstTimestamp, start: start)
        let key = flags & flagKey != 0 ? try Self.key(of: body, at: &i, start: start) : stream
        var group: UInt32? = nil
        if flags & flagSealed != 0 {
            guard flags & flagTypeIndex == 0 else { throw RecordDefect(reason: "a sealed record sets the type index flag", offset: start) }
            guard i < body.count else { throw RecordDefect(reason: "stream name runs past the record", offset: start) }
            let typeLength = Int(body[i])
            guard body.count - i - 1 - typeLength >= 4 else { throw RecordDefect(reason: "seal group runs past the record", offset: start) }
            group = body.loadLE(at: i + 1 + typeLength, as: UInt32.self)
        }
        return RecordHead(
            isMarker: flags & flagMarker != 0, version: version, timestamp: timestamp, stream: stream,
            key: key, isTombstone: flags & flagTombstone != 0, sealGroup: group)
    }

    /// The fields every reader of a record needs, from its flags (at `i`,
    /// after the checksum) through its stream name; advances `i` past the
    /// name. `start` names the record in errors.
    @inline(__always)
    private static func fields(
        of body: UnsafeRawBufferPointer, at i: inout Int, firstTimestamp: Timestamp, start: Int
    ) throws(RecordDefect) -> (flags: UInt8, timestamp: Timestamp, version: UInt64, stream: UnsafeRawBufferPointer) {
        let flags = body[i]
        i += 1
        guard flags & ~knownFlags == 0 else { throw RecordDefect(reason: "unknown record flags", offset: start) }
        var timestamp = firstTimestamp
        if flags & flagTimestamp != 0 {
            guard let delta = Varint.read(body, &i) else { throw RecordDefect(reason: "bad timestamp delta", offset: start) }
            timestamp = firstTimestamp &+ Varint.unzigzag(delta)
        }
        guard let version = Varint.read(body, &i), i < body.count else {
            throw RecordDefect(reason: "bad version", offset: start)
        }
        let streamLength = Int(body[i])
        i += 1
        guard streamLength >= 1 else { throw RecordDefect(reason: "empty stream name", offset: start) }
        guard streamLength <= body.count - i else { throw RecordDefect(reason: "stream name runs past the record", offset: start) }
        let stream = UnsafeRawBufferPointer(rebasing: body[i..<(i + streamLength)])
        i += streamLength
        return (flags, timestamp, version, stream)
    }

    /// The explicit key at `i` (after the stream name, when flag bit 4 is
    /// set); advances `i` past it.
    @inline(__always)
    private static func key(of body: UnsafeRawBufferPointer, at i: inout Int, start: Int) throws(RecordDefect) -> UnsafeRawBufferPointer {
        guard i < body.count else { throw RecordDefect(reason: "key runs past the record", offset: start) }
        let keyLength = Int(body[i])
        i += 1
        guard keyLength >= 1 else { throw RecordDefect(reason: "empty key", offset: start) }
        guard keyLength <= body.count - i else { throw RecordDefect(reason: "key runs past the record", offset: start) }
        defer { i += keyLength }
        return UnsafeRawBufferPointer(rebasing: body[i..<(i + keyLength)])
    }

    /// Appends the record at `offset` of `area` (as `encode` wrote it) to
    /// `buffer`, advancing `offset` past it: a record naming its type by
    /// index (flag bit 6) with the type itself instead (`type(index)`), its
    /// checksum computed anew; any other record as it is. What a batch
    /// builder does when a type table would not make its batch smaller.
    static func appendNamingType(
        _ area: UnsafeRawBufferPointer, at offset: inout Int, into buffer: inout ByteBuffer, position: UInt64,
        firstTimestamp: Timestamp, type: (Int) -> UnsafeRawBufferPointer?
    ) throws(RecordDefect) {
        let start = offset
        let body = try Self.body(of: area, at: &offset)
        var i = 4
        let (flags, _, _, _) = try fields(of: body, at: &i, firstTimestamp: firstTimestamp, start: start)
        guard flags & flagTypeIndex != 0 else {
            buffer.append(UnsafeRawBufferPointer(rebasing: area[start..<offset]))
            return
        }
        if flags & flagKey != 0 { _ = try key(of: body, at: &i, start: start) }
        guard i < body.count else { throw RecordDefect(reason: "stream name runs past the record", offset: start) }
        guard let named = type(Int(body[i])) else { throw RecordDefect(reason: "type index names no type", offset: start) }
        let length = body.count + named.count
        buffer.reserve(Varint.maxBytes + length)
        buffer.appendVarint(UInt64(length))
        let crcOffset = buffer.count
        buffer.count += 4
        buffer.appendByte(flags & ~flagTypeIndex)
        buffer.append(UnsafeRawBufferPointer(rebasing: body[5..<i]))
        buffer.appendByte(UInt8(named.count))
        buffer.append(named)
        buffer.append(UnsafeRawBufferPointer(rebasing: body[(i + 1)...]))
        storeChecksum(buffer.base, crcOffset: crcOffset, end: buffer.count, position: position, firstTimestamp: firstTimestamp)
    }

    /// The body of the record at `offset` of `area` (its bytes from the CRC
    /// on, at least 8, inside the area); advances `offset` past the record.
    @inline(__always)
    private static func body(of area: UnsafeRawBufferPointer, at offset: inout Int) throws(RecordDefect) -> UnsafeRawBufferPointer {
        let start = offset
        guard let bodyLength = Varint.read(area, &offset), bodyLength >= 4 + 1 + 1 + 2,
              bodyLength <= UInt64(area.count - offset)
        else { throw RecordDefect(reason: "record length is impossible", offset: start) }
        defer { offset += Int(bodyLength) }
        return UnsafeRawBufferPointer(rebasing: area[offset..<(offset + Int(bodyLength))])
    }

    /// Skips the record at `offset` without decoding it.
    @inline(__always)
    static func skip(_ area: UnsafeRawBufferPointer, at offset: inout Int) throws(RecordDefect) {
        let start = offset
        guard let bodyLength = Varint.read(area, &offset), bodyLength <= UInt64(area.count - offset) else {
            throw RecordDefect(reason: "record length is impossible", offset: start)
        }
        offset += Int(bodyLength)
    }
}

/// The fields of a record scavenging decides on (`Record.head`): borrowed
/// from the records area, valid while it is.
struct RecordHead {
    /// The record's position (set by the segment walk; `Record.head` leaves 0).
    var position: UInt64 = 0
    var isMarker: Bool
    var version: UInt64
    var timestamp: Timestamp
    var stream: UnsafeRawBufferPointer
    /// The explicit key, or the stream name when the record has none.
    var key: UnsafeRawBufferPointer
    var isTombstone: Bool
    /// A sealed record's seal group (its batch's seal table entry), nil when not sealed.
    var sealGroup: UInt32? = nil
    /// The data key of that seal group (set by the segment walk from the seal table).
    var keyID: UInt32? = nil
}
