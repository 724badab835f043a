import struct Foundation.Data
import class Foundation.JSONDecoder
import class Foundation.JSONEncoder

/// What the server says about itself in INFO (the fields this client uses).
public struct NATSServerInfo: Sendable, Decodable, Equatable {
    /// The server's id (`server_id`; empty when INFO has none).
    public var serverID: String
    /// The server's version (empty when INFO has none).
    public var version: String
    /// The largest message (headers and payload) the server accepts and sends.
    public var maxPayload: Int
    /// Whether the server understands HPUB/HMSG.
    public var headers: Bool
    /// Whether JetStream is enabled.
    public var jetStream: Bool

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", version, maxPayload = "max_payload", headers, jetStream = "jetstream"
    }

    /// Decodes INFO's fields; a missing field takes its default (no id or
    /// version, 1 MiB `max_payload`, no headers, no JetStream).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverID = try c.decodeIfPresent(String.self, forKey: .serverID) ?? ""
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        maxPayload = try c.decodeIfPresent(Int.self, forKey: .maxPayload) ?? (1 << 20)
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        jetStream = try c.decodeIfPresent(Bool.self, forKey: .jetStream) ?? false
    }

    /// Decodes INFO's JSON; a typed error when it is not the object expected.
    public static func decode(_ json: [UInt8]) throws(NATSError) -> NATSServerInfo {
        do {
            let info = try JSONDecoder().decode(NATSServerInfo.self, from: Data(json))
            guard info.maxPayload > 0 else { throw NATSError.malformed("INFO max_payload \(info.maxPayload)") }
            return info
        } catch let error as NATSError {
            throw error
        } catch {
            throw .malformed("INFO is not the JSON expected: \(error)")
        }
    }
}

/// The CONNECT options this client sends: never verbose (no +OK per operation),
/// headers on, and no_responders on (a request nobody listens to gets a 503 status at once).
struct NATSConnectOptions: Encodable {
    var verbose = false
    var pedantic = false
    var headers = true
    var noResponders = true
    var lang = "swift"
    var version = "0.1.0"
    var name: String
    var `protocol` = 1

    enum CodingKeys: String, CodingKey {
        case verbose, pedantic, headers, noResponders = "no_responders", lang, version, name, `protocol`
    }

    func json() -> [UInt8] {
        (try? Array(JSONEncoder().encode(self))) ?? Array(#"{"verbose":false,"headers":true,"no_responders":true}"#.utf8)
    }
}

/// A server address: `nats://host:port`, `host:port` or `host` (port 4222).
public struct NATSURL: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address.
    public var host: String
    /// The TCP port (4222 by default).
    public var port: Int

    /// The server at `host` and `port`.
    public init(host: String, port: Int = 4222) {
        self.host = host
        self.port = port
    }

    /// Parses `nats://host:port`, `host:port` or `host`.
    ///
    /// - Throws: `NATSError.invalidURL` for anything else (a path, user
    ///   information, an empty host, a port outside 1...65535).
    public init(parsing text: String) throws(NATSError) {
        var rest = Substring(text)
        if rest.hasPrefix("nats://") { rest = rest.dropFirst(7) }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else { throw .invalidURL(text) }
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port), colon > rest.startIndex else {
                throw .invalidURL(text)
            }
            self.init(host: String(rest[..<colon]), port: port)
        } else {
            self.init(host: String(rest))
        }
    }

    /// `nats://host:port`.
    public var description: String { "nats://\(host):\(port)" }
}
