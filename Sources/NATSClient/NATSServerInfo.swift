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
    /// The challenge an NKey or a user JWT signs (`nonce`; nil when the server sent none).
    public var nonce: String?
    /// Whether the server requires authentication (`auth_required`).
    public var authRequired: Bool
    /// Whether the server requires TLS (`tls_required`), which this client does not speak.
    public var tlsRequired: Bool

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", version, maxPayload = "max_payload", headers, jetStream = "jetstream", nonce
        case authRequired = "auth_required", tlsRequired = "tls_required"
    }

    /// Decodes INFO's fields; a missing field takes its default (no id or
    /// version, 1 MiB `max_payload`, no headers, no JetStream, no nonce, no authentication or TLS required).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverID = try c.decodeIfPresent(String.self, forKey: .serverID) ?? ""
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        maxPayload = try c.decodeIfPresent(Int.self, forKey: .maxPayload) ?? (1 << 20)
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        jetStream = try c.decodeIfPresent(Bool.self, forKey: .jetStream) ?? false
        nonce = try c.decodeIfPresent(String.self, forKey: .nonce)
        authRequired = try c.decodeIfPresent(Bool.self, forKey: .authRequired) ?? false
        tlsRequired = try c.decodeIfPresent(Bool.self, forKey: .tlsRequired) ?? false
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
/// headers on, and no_responders on (a request nobody listens to gets a 503 status at once), and the fields of
/// `NATSCredentials` (omitted when nil). Holds secrets: never printed (its `description` shows none).
struct NATSConnectOptions: Encodable, CustomStringConvertible {
    var verbose = false
    var pedantic = false
    var headers = true
    var noResponders = true
    var lang = "swift"
    var version = "0.1.0"
    var name: String
    var `protocol` = 1
    var user: String?
    var pass: String?
    var authToken: String?
    var nkey: String?
    var jwt: String?
    var sig: String?

    enum CodingKeys: String, CodingKey {
        case verbose, pedantic, headers, noResponders = "no_responders", lang, version, name, `protocol`
        case user, pass, authToken = "auth_token", nkey, jwt, sig
    }

    /// The name only: the rest may hold secrets.
    var description: String { "NATSConnectOptions(name: \(name.debugDescription))" }

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
    ///   information, an empty host, a port outside 1...65535). User information
    ///   (`user:password@`) is refused, and left out of the error: a URL shows in
    ///   `ps`, so credentials go in `NATSCredentials`.
    public init(parsing text: String) throws(NATSError) {
        var rest = Substring(text)
        if rest.hasPrefix("nats://") { rest = rest.dropFirst(7) }
        if let at = rest.lastIndex(of: "@") {
            throw .invalidURL(
                "<user information left out>\(rest[at...]): credentials in the URL are refused (they show in ps), give them as credentials"
            )
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/") else { throw .invalidURL(text) }
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
