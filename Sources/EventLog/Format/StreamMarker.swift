/// A stream marker: a record that changes a stream's state instead of adding
/// an event to it (Format.md, "Stream markers").
enum StreamMarker: Sendable, Equatable {
    case delete(hard: Bool)
    case truncate(before: UInt64)
    /// The stream's limits from now on (`StreamLimits`; 0: none), replacing earlier ones.
    case limits(maxAgeMicroseconds: UInt64, maxCount: UInt64)

    static let deletedType = "$deleted"
    static let truncatedType = "$truncated"
    static let limitsType = "$limits"

    var type: String {
        switch self {
        case .delete: return Self.deletedType
        case .truncate: return Self.truncatedType
        case .limits: return Self.limitsType
        }
    }

    /// The marker's data bytes.
    var data: [UInt8] {
        switch self {
        case .delete(let hard): return [hard ? 1 : 0]
        case .truncate(let before):
            var bytes: [UInt8] = []
            Self.appendVarint(before, to: &bytes)
            return bytes
        case .limits(let maxAge, let maxCount):
            var bytes: [UInt8] = []
            Self.appendVarint(maxAge, to: &bytes)
            Self.appendVarint(maxCount, to: &bytes)
            return bytes
        }
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
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
        } else if type.elementsEqual(Self.limitsType.utf8) {
            var at = 0
            guard let maxAge = Varint.read(data, &at), let maxCount = Varint.read(data, &at), at == data.count else { return nil }
            self = .limits(maxAgeMicroseconds: maxAge, maxCount: maxCount)
        } else {
            return nil
        }
    }
}
