import Foundation

/// The body of `POST /orders`.
struct PlaceOrderRequest: Decodable, Sendable {
    var orderID: String
    var customer: String

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case customer
    }
}

/// The body of `POST /orders/{id}/items`.
struct AddItemRequest: Decodable, Sendable {
    var sku: String
    var quantity: Int
}

/// What the service accepts as identifiers and values, with the reason it refuses one (a 400 answer's text).
enum Validation {
    /// An order id: 1 to `maxOrderIDBytes` of letters, digits and `-_.:~@` (safe in a URL path as is, and
    /// within the log's stream-name limit once prefixed).
    static let maxOrderIDBytes = 128
    /// An `Idempotency-Key`: 1 to `maxIdempotencyKeyBytes` visible ASCII characters.
    static let maxIdempotencyKeyBytes = 200
    /// A customer or a SKU: 1 to this many bytes of UTF-8 text.
    static let maxTextBytes = 256
    /// The largest quantity of one item line.
    static let maxQuantity = 1_000_000

    static func orderIDProblem(_ id: String) -> String? {
        let bytes = Array(id.utf8)
        if bytes.isEmpty { return "field \"order_id\" must not be empty" }
        if bytes.count > maxOrderIDBytes { return "field \"order_id\" is longer than \(maxOrderIDBytes) bytes" }
        let allowed = bytes.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || "-_.:~@".utf8.contains(byte)
        }
        return allowed ? nil : "field \"order_id\" may hold only letters, digits and -_.:~@"
    }

    static func idempotencyKeyProblem(_ key: String) -> String? {
        let bytes = Array(key.utf8)
        if bytes.isEmpty { return "the Idempotency-Key header must not be empty" }
        if bytes.count > maxIdempotencyKeyBytes { return "the Idempotency-Key header is longer than \(maxIdempotencyKeyBytes) bytes" }
        return bytes.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) ? nil : "the Idempotency-Key header may hold only visible ASCII characters"
    }

    static func textProblem(_ text: String, field: String) -> String? {
        let count = text.utf8.count
        if count == 0 { return "field \"\(field)\" must not be empty" }
        if count > maxTextBytes { return "field \"\(field)\" is longer than \(maxTextBytes) bytes" }
        if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "field \"\(field)\" must not hold control characters"
        }
        return nil
    }

    static func quantityProblem(_ quantity: Int) -> String? {
        (1...maxQuantity).contains(quantity) ? nil : "field \"quantity\" must be within 1...\(maxQuantity)"
    }

    /// The version an `If-Match` header names: `3` or the entity-tag form `"3"` (`W/` weak tags are refused:
    /// a command needs an exact version).
    static func ifMatchVersion(_ header: String) -> UInt64? {
        var text = Substring(header.trimmingCharacters(in: [" ", "\t"]))
        if text.count >= 2, text.first == "\"", text.last == "\"" { text = text.dropFirst().dropLast() }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(text)
    }
}
