import Foundation

/// A request the service refuses before running anything: the answer to send (400, 413, 428, …).
struct RequestRefusal: Error {
    var response: JSONResponse

    init(_ status: Int, _ message: String) {
        response = .error(status, message)
    }
}

/// Turns a request body into a command's input, or into a 400 answer that says which field is missing or wrong.
enum RequestDecoding {
    /// The largest request body read (a command's body is a few dozen bytes): larger is 413.
    static let maxBodyBytes = 64 << 10

    /// `T` decoded from `body` (JSON).
    /// - Throws: `RequestRefusal` (400) naming the problem.
    static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws(RequestRefusal) -> T {
        if body.isEmpty { throw RequestRefusal(400, "the request needs a JSON body") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch let error as DecodingError {
            throw RequestRefusal(400, describe(error))
        } catch {
            throw RequestRefusal(400, "the body is not valid JSON")
        }
    }

    /// A person's reading of a decoding error: the field and what is wrong with it.
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
            let names = (codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return names.isEmpty ? "the body" : "field \"\(names.joined(separator: "."))\""
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing \(path(context.codingPath, key))"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) must be \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) must be \(typeName(type)), not null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "the body is not valid JSON" }
            return "\(path(context.codingPath)) is malformed"
        @unknown default:
            return "the body is not what the endpoint takes"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is UInt64.Type: return "an integer"
        case is [String: Any].Type: return "an object"
        default: return "\(type)"
        }
    }
}
