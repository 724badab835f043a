/// A stream marker: a record that changes a stream's state instead of adding
/// an event to it (Format.md, "Stream markers").
enum StreamMarker: Sendable, Equatable {
    case delete(hard: Bool)
    case truncate(before: UInt64)

    static let deletedType = "$deleted"
    static let truncatedType = "$truncated"

    var type: String {
        switch self {
        case .delete: return Self.deletedType
        case .truncate: return Self.truncatedType
        }
    }

    /// The marker's data bytes.
    var data: [UInt8] {
        switch self {
        case .delete(let hard): return [hard ? 1 : 0]
        case .truncate(let before):
            var bytes: [UInt8] = []
            var v = before
            while v >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            bytes.append(UInt8(v))
            return bytes
        }
    }

    /// Decodes a marker record's type and data; nil when they are not a known marker.
    init?(type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) {
        if type.elementsEqual(Self.deletedType.utf8) {
            guard data.count == 1, data[0] <= 1 else { return nil }
            self = .delete(hard: data[0] == 1)
        } else if type.elementsEqual(Self.truncatedType.utf8) {
            var at = 0
            guard let before = Varint.read(data, &at), at == data.count else { return nil }
            self = .truncate(before: before)
        } else {
            return nil
        }
    }
}
