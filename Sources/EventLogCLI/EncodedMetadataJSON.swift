@_spi(EventLogTool) import EventLog

/// Writes an event's encoded metadata section (Format.md §6.1) as the JSON
/// object `dump --json` and `export` write for the `EventMetadata` it
/// decodes to, straight from its bytes: no decoding into strings and
/// arrays, so no allocation per event. Every function here gives up (false
/// or nil) on a section `MetadataCoding.decode` would not read, or one
/// holding a string that is not plain ASCII; the caller then goes through
/// the decoded value, which writes what it holds or reports the defect.
enum EncodedMetadataJSON {
    /// How the headers are written: `dump --json` makes each a member
    /// (`"name":"value"`), `export` a list of `[name, value]` pairs under `"headers"`.
    enum Headers {
        case members
        case pairs
    }

    /// A length-prefixed string at `i`, when it is plain ASCII (what the decoded string would be too).
    @inline(__always)
    private static func string(_ bytes: UnsafeRawBufferPointer, _ i: inout Int) -> UnsafeRawBufferPointer? {
        guard let length = Varint.read(bytes, &i), length <= UInt64(bytes.count - i) else { return nil }
        let text = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + Int(length))])
        for byte in text where byte >= 0x80 { return nil }
        i += Int(length)
        return text
    }

    /// Whether the section's content type is `application/json` as
    /// `JSONEventFormat.isJSON` decides it (false without one); nil when
    /// the section is not one this reads.
    static func contentTypeIsJSON(_ bytes: UnsafeRawBufferPointer) -> Bool? {
        var i = 0
        var lastTag: UInt8 = 0
        while i < bytes.count {
            let tag = bytes[i]
            i += 1
            guard tag >= 1, tag <= 6, tag >= lastTag, tag != lastTag || tag == 6 else { return nil }
            lastTag = tag
            switch tag {
            case 1:
                guard bytes.count - i >= 16 else { return nil }
                i += 16
            case 2:
                guard let version = Varint.read(bytes, &i), version <= UInt64(UInt32.max) else { return nil }
            case 3:
                guard let text = string(bytes, &i) else { return nil }
                return isJSONMediaType(text)
            default:
                return false  // past the content type's tag: it has none
            }
        }
        return false
    }

    /// `JSONEventFormat.isJSON` for an ASCII content type: its media type
    /// (before any `;`), spaces and tabs left out, is `application/json` in any case.
    static func isJSONMediaType(_ text: UnsafeRawBufferPointer) -> Bool {
        let expected: StaticString = "application/json"
        var k = 0
        for byte in text {
            if byte == UInt8(ascii: ";") { break }
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { continue }
            guard k < expected.utf8CodeUnitCount else { return false }
            let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
            guard lower == expected.utf8Start[k] else { return false }
            k += 1
        }
        return k == expected.utf8CodeUnitCount
    }

    /// Writes the section as a JSON object; false, with part of it written,
    /// for a section this does not read (the caller truncates the output).
    static func write(_ bytes: UnsafeRawBufferPointer, headers: Headers, into output: inout OutputWriter) -> Bool {
        var i = 0
        var lastTag: UInt8 = 0
        var inHeaders = false
        output.append(byte: UInt8(ascii: "{"))
        while i < bytes.count {
            let tag = bytes[i]
            i += 1
            guard tag >= 1, tag <= 6, tag >= lastTag, tag != lastTag || tag == 6 else { return false }
            switch tag {
            case 1:
                guard bytes.count - i >= 16 else { return false }
                if lastTag != 0 { output.append(byte: UInt8(ascii: ",")) }
                output.append(literal: "\"event_id\":\"")
                output.appendUUID(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + 16)]))
                output.append(byte: UInt8(ascii: "\""))
                i += 16
            case 2:
                guard let version = Varint.read(bytes, &i), version <= UInt64(UInt32.max) else { return false }
                if lastTag != 0 { output.append(byte: UInt8(ascii: ",")) }
                output.append(literal: "\"schema_version\":")
                output.append(version)
            case 3, 4, 5:
                guard let text = string(bytes, &i) else { return false }
                if lastTag != 0 { output.append(byte: UInt8(ascii: ",")) }
                output.append(literal: tag == 3 ? "\"content_type\":" : tag == 4 ? "\"correlation_id\":" : "\"causation_id\":")
                output.appendJSONString(text)
            default:
                guard let name = string(bytes, &i), let value = string(bytes, &i) else { return false }
                switch headers {
                case .members:
                    if lastTag != 0 { output.append(byte: UInt8(ascii: ",")) }
                    output.appendJSONString(name)
                    output.append(byte: UInt8(ascii: ":"))
                    output.appendJSONString(value)
                case .pairs:
                    if inHeaders {
                        output.append(literal: ",[")
                    } else {
                        if lastTag != 0 { output.append(byte: UInt8(ascii: ",")) }
                        output.append(literal: "\"headers\":[[")
                        inHeaders = true
                    }
                    output.appendJSONString(name)
                    output.append(byte: UInt8(ascii: ","))
                    output.appendJSONString(value)
                    output.append(byte: UInt8(ascii: "]"))
                }
            }
            lastTag = tag
        }
        if inHeaders { output.append(byte: UInt8(ascii: "]")) }
        output.append(byte: UInt8(ascii: "}"))
        return true
    }
}
