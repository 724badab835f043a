import Foundation
import Hummingbird

/// A response the service sends: a status and a JSON body, as bytes (so that a
/// retried command can be answered with the very bytes of the original answer).
struct JSONResponse: Sendable, Equatable {
    var status: Int
    var body: [UInt8]

    /// `value` encoded with sorted keys (the same value always gives the same bytes). A response is a few dozen
    /// bytes: an encoder each is cheap beside the request's sync.
    init<Value: Encodable>(status: Int, _ value: Value) {
        self.status = status
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.body = (try? encoder.encode(value)).map { Array($0) } ?? Array(#"{"error":"unencodable response"}"#.utf8)
    }

    init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }

    /// `{"error": message}`, and more fields when given (`version`).
    static func error(_ status: Int, _ message: String, version: UInt64? = nil) -> JSONResponse {
        JSONResponse(status: status, ErrorBody(error: message, version: version))
    }

    /// The Hummingbird response: the bytes, `Content-Type: application/json`.
    var response: Response {
        Response(
            status: HTTPResponse.Status(code: status),
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The body of every error answer: what went wrong, and for a version conflict the order's current version.
struct ErrorBody: Codable, Sendable, Equatable {
    var error: String
    var version: UInt64?
}
