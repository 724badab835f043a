import struct Foundation.UUID

/// The metadata section of a record (Format.md, "Metadata section"): a
/// sequence of fields, each a one-byte tag and a value, tags ascending
/// (headers, tag 6, may repeat and keep their order).
///
/// | tag | field | value |
/// |---|---|---|
/// | 1 | eventID | 16 bytes (RFC 4122 byte order) |
/// | 2 | schemaVersion | varint |
/// | 3 | contentType | varint length, UTF-8 |
/// | 4 | correlationID | varint length, UTF-8 |
/// | 5 | causationID | varint length, UTF-8 |
/// | 6 | header | varint length, UTF-8 name, varint length, UTF-8 value |
enum MetadataCoding {
    enum Tag: UInt8 {
        case eventID = 1, schemaVersion, contentType, correlationID, causationID, header
    }

    /// The encoded size; throws when a limit is broken.
    static func encodedLength(_ m: EventMetadata) throws(EventLogError) -> Int {
        guard m.headers.count <= Limits.maxHeaders else {
            throw .limitExceeded(limit: "metadata headers", value: m.headers.count, maximum: Limits.maxHeaders)
        }
        var n = 0
        if m.eventID != nil { n += 1 + 16 }
        if let v = m.schemaVersion { n += 1 + Varint.size(UInt64(v)) }
        if let s = m.contentType { n += 1 + stringSize(s) }
        if let s = m.correlationID { n += 1 + stringSize(s) }
        if let s = m.causationID { n += 1 + stringSize(s) }
        for h in m.headers { n += 1 + stringSize(h.name) + stringSize(h.value) }
        guard n <= Limits.maxMetadataBytes else {
            throw .limitExceeded(limit: "metadata bytes", value: n, maximum: Limits.maxMetadataBytes)
        }
        return n
    }

    private static func stringSize(_ s: String) -> Int {
        let count = s.utf8.count
        return Varint.size(UInt64(count)) + count
    }

    static func encode(_ m: EventMetadata, into buffer: inout ByteBuffer) {
        if let id = m.eventID {
            buffer.appendByte(Tag.eventID.rawValue)
            withUnsafeBytes(of: id.uuid) { buffer.append($0) }
        }
        if let v = m.schemaVersion {
            buffer.appendByte(Tag.schemaVersion.rawValue)
            buffer.appendVarint(UInt64(v))
        }
        if let s = m.contentType { appendString(s, tag: .contentType, into: &buffer) }
        if let s = m.correlationID { appendString(s, tag: .correlationID, into: &buffer) }
        if let s = m.causationID { appendString(s, tag: .causationID, into: &buffer) }
        for h in m.headers {
            buffer.appendByte(Tag.header.rawValue)
            appendBytes(h.name, into: &buffer)
            appendBytes(h.value, into: &buffer)
        }
    }

    private static func appendString(_ s: String, tag: Tag, into buffer: inout ByteBuffer) {
        buffer.appendByte(tag.rawValue)
        appendBytes(s, into: &buffer)
    }

    private static func appendBytes(_ s: String, into buffer: inout ByteBuffer) {
        var s = s
        s.withUTF8 { utf8 in
            buffer.appendVarint(UInt64(utf8.count))
            buffer.append(UnsafeRawBufferPointer(utf8))
        }
    }

    /// The event id's 16 bytes in an encoded section, the rest left
    /// undecoded (tags ascend, so an id, tag 1, comes first); nil when the
    /// section has none. Allocates nothing.
    @inline(__always)
    static func eventIDBytes(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard bytes.count >= 1 + 16, bytes[0] == Tag.eventID.rawValue else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[1..<(1 + 16)])
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) throws(RecordDefect) -> EventMetadata {
        var m = EventMetadata()
        var i = 0
        var lastTag: UInt8 = 0
        while i < bytes.count {
            let tagByte = bytes[i]
            i += 1
            guard let tag = Tag(rawValue: tagByte), tagByte >= lastTag, tagByte != lastTag || tag == .header else {
                throw RecordDefect(reason: "unknown or misordered metadata tag \(tagByte)", offset: i - 1)
            }
            lastTag = tagByte
            switch tag {
            case .eventID:
                guard bytes.count - i >= 16 else { throw RecordDefect(reason: "event id runs past the metadata", offset: i) }
                var uuid: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + 16)])) }
                m.eventID = UUID(uuid: uuid)
                i += 16
            case .schemaVersion:
                guard let v = Varint.read(bytes, &i), v <= UInt64(UInt32.max) else {
                    throw RecordDefect(reason: "bad schema version", offset: i)
                }
                m.schemaVersion = UInt32(v)
            case .contentType: m.contentType = try readString(bytes, &i)
            case .correlationID: m.correlationID = try readString(bytes, &i)
            case .causationID: m.causationID = try readString(bytes, &i)
            case .header:
                let name = try readString(bytes, &i)
                let value = try readString(bytes, &i)
                m.headers.append(.init(name, value))
            }
        }
        return m
    }

    private static func readString(_ bytes: UnsafeRawBufferPointer, _ i: inout Int) throws(RecordDefect) -> String {
        guard let length = Varint.read(bytes, &i), length <= UInt64(bytes.count - i) else {
            throw RecordDefect(reason: "metadata string runs past the metadata", offset: i)
        }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + Int(length))]), as: UTF8.self)
        i += Int(length)
        return s
    }
}

#if canImport(Glibc)
import Glibc
#endif
