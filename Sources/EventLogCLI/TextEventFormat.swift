import EventLog

/// Writes a stored event as the text line of `dump` and `tail`: position,
/// time (ISO 8601, UTC, microseconds), stream, version, type and data, two
/// spaces apart; the data as `dump --data` says (`DataFormat`).
enum TextEventFormat {
    /// `42  2024-05-01T12:00:00.123456Z  order-1  v0  OrderPlaced  {"total":10}`, and for a stream
    /// marker `43  2024-05-01T12:00:01.000000Z  order-1  [marker] $deleted  soft`.
    static func write(_ event: EventView, data format: DataFormat? = nil, into output: inout OutputWriter) {
        output.append(event.position)
        output.append("  ")
        output.appendISO8601(event.timestamp)
        output.append("  ")
        appendName(event.streamBytes, into: &output)
        if event.isMarker {
            output.append("  [marker] ")
        } else {
            output.append("  v")
            output.append(event.version)
            output.append("  ")
        }
        appendName(event.typeBytes, into: &output)
        output.append("  ")
        if event.isMarker, let effect = markerEffect(event) {
            output.append(effect)
        } else if event.isForgotten {
            output.append("[forgotten]")
        } else {
            DataFormat.appendText(event.data, as: format, into: &output)
        }
    }

    /// What a stream marker does, from its type and data (Format.md §13.1):
    /// `soft`, `hard`, `before 5`; nil for a marker this build does not know.
    static func markerEffect(_ event: EventView) -> String? {
        if event.typeBytes.elementsEqual("$deleted".utf8) {
            guard event.data.count == 1, event.data[0] <= 1 else { return nil }
            return event.data[0] == 1 ? "hard" : "soft"
        }
        if event.typeBytes.elementsEqual("$truncated".utf8) {
            guard let values = varints(event.data), values.count == 1 else { return nil }
            return "before \(values[0])"
        }
        if event.typeBytes.elementsEqual("$limits".utf8) {
            // Max age in microseconds, max count (0: none).
            guard let values = varints(event.data), values.count == 2 else { return nil }
            let age = values[0] == 0 ? "none" : values[0] % 1_000_000 == 0 ? "\(values[0] / 1_000_000)s" : "\(values[0])us"
            let count = values[1] == 0 ? "none" : "\(values[1])"
            return "max-age \(age) max-count \(count)"
        }
        return nil
    }

    /// The unsigned LEB128 varints filling `bytes` exactly; nil when they do not.
    private static func varints(_ bytes: UnsafeRawBufferPointer) -> [UInt64]? {
        var values: [UInt64] = []
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for byte in bytes {
            guard shift < 64 else { return nil }
            value |= UInt64(byte & 0x7F) << shift
            shift += 7
            if byte & 0x80 == 0 {
                values.append(value)
                value = 0
                shift = 0
            }
        }
        return shift == 0 ? values : nil
    }

    /// A name as is when printable, else as a quoted, escaped string (so it cannot break the line).
    private static func appendName(_ bytes: UnsafeRawBufferPointer, into output: inout OutputWriter) {
        if isPrintableUTF8(bytes) && !bytes.contains(UInt8(ascii: " ")) && !bytes.contains(UInt8(ascii: "\t")) {
            output.append(bytes)
        } else {
            output.appendJSONString(bytes)
        }
    }

    /// True when `bytes` are valid UTF-8 without control characters (a tab is allowed).
    static func isPrintableUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                let value = scalar.value
                if value == 0x09 { continue }
                if value < 0x20 || value == 0x7F || (0x80...0x9F).contains(value) || value == 0x2028 || value == 0x2029 {
                    return false
                }
            case .error: return false
            case .emptyInput: return true
            }
        }
    }
}
