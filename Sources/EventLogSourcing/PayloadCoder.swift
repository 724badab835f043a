import Foundation

/// Turns payloads into bytes and back, and names the media type it writes
/// (`EventMetadata.contentType`). Plug in another format (CBOR, Protobuf via
/// Codable, a compressed JSON) by conforming a type to it.
///
/// Must be safe to call from several threads at once.
public protocol PayloadCoder: Sendable {
    /// The media type of what `encode` writes, e.g. `application/json`.
    var contentType: String { get }
    /// The bytes of `value`.
    func encode<T: Encodable>(_ value: T) throws -> [UInt8]
    /// A `T` decoded from `bytes`.
    func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T
}

/// JSON through Foundation's `JSONEncoder` and `JSONDecoder`, keys sorted
/// (the same value always gives the same bytes). The default coder.
public struct JSONPayloadCoder: PayloadCoder {
    /// Shared by every call (Foundation's encoder and decoder are safe to
    /// use from several threads once configured): making one per call cost
    /// more than decoding a small event.
    private let encoder: JSONEncoder
    private let decoder = JSONDecoder()

    /// `application/json`.
    public var contentType: String { "application/json" }

    /// A JSON coder.
    public init() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        self.encoder = encoder
    }

    /// The JSON of `value`, keys sorted.
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try encoder.encode(value))
    }

    /// A `T` decoded from the JSON in `bytes`.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decoder.decode(type, from: Data(bytes))
    }
}
