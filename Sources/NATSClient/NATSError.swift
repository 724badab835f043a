/// Everything that can go wrong talking to a NATS server, as cases a caller can act on.
///
/// The protocol cases (`malformed`, `controlLineTooLong`, `payloadTooLarge`) mean the
/// server sent bytes this client refuses; the connection is closed after them.
public enum NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A protocol line or header block that does not parse: what was wrong, and the line (cut short).
    case malformed(String)
    /// A control line longer than `NATSProtocolParser.maxControlLineBytes` without its CRLF.
    case controlLineTooLong(limit: Int)
    /// A message whose payload is larger than the server's announced `max_payload` (or a publish we refused to send).
    case payloadTooLarge(bytes: Int, limit: Int)
    /// The URL is not `nats://host:port` (or `host:port`).
    case invalidURL(String)
    /// A subject or header the protocol cannot carry (whitespace, empty, CR/LF).
    case invalidArgument(String)
    /// TCP connect failed or the server did not greet with INFO in time.
    case connectionFailed(String)
    /// The connection closed (by the server, the network, or `close()`) before the operation finished.
    case connectionClosed
    /// `-ERR` from the server.
    case serverError(String)
    /// No reply within the time given.
    case timeout(String)
    /// No subscriber for a request's subject (status 503 with `no_responders`): for JetStream, no stream holds the subject.
    case noResponders(subject: String)
    /// The JetStream API answered with an error object (`code`, `err_code`, `description`).
    case jetStream(code: Int, errorCode: Int, description: String)
    /// A JetStream reply that is not the JSON this client expects.
    case unexpectedReply(String)
    /// Credentials that cannot be used (a malformed NKey seed or `.creds` file): why, never the secret itself.
    case invalidCredentials(String)
    /// The server refused the connection's credentials (or wanted some and got none): its `-ERR` text, e.g.
    /// `Authorization Violation`. Trying again with the same credentials cannot succeed.
    case authorizationRefused(String)
    /// The server requires TLS (INFO `tls_required`), which this client does not speak.
    case tlsRequired

    /// What failed, in a line a person can read.
    public var description: String {
        switch self {
        case .malformed(let what): return "malformed NATS protocol data: \(what)"
        case .controlLineTooLong(let limit): return "NATS control line longer than \(limit) bytes"
        case .payloadTooLarge(let bytes, let limit): return "NATS payload of \(bytes) bytes is larger than the server's max_payload \(limit)"
        case .invalidURL(let url): return "not a NATS URL (nats://host:port): \(url)"
        case .invalidArgument(let what): return what
        case .connectionFailed(let why): return "cannot connect to NATS: \(why)"
        case .connectionClosed: return "the NATS connection closed"
        case .serverError(let message): return "NATS server error: \(message)"
        case .timeout(let what): return "NATS timeout: \(what)"
        case .noResponders(let subject): return "no responders for \(subject) (no JetStream stream holds this subject?)"
        case .jetStream(let code, let errorCode, let description): return "JetStream error \(code) (\(errorCode)): \(description)"
        case .unexpectedReply(let what): return "unexpected JetStream reply: \(what)"
        case .invalidCredentials(let why): return "invalid NATS credentials: \(why)"
        case .authorizationRefused(let message):
            return "authorization refused by the NATS server (\(message)): check the credentials"
        case .tlsRequired:
            return "the NATS server requires TLS, which this build does not support (use a server or port without TLS)"
        }
    }
}

extension NATSError {
    /// Why credentials cannot be used, without `description`'s prefix; `description` for the other cases.
    var reason: String {
        if case .invalidCredentials(let why) = self { return why }
        return description
    }

    /// True for the errors that trying again cannot mend because the credentials or the server's security settings
    /// are wrong: `invalidCredentials`, `authorizationRefused`, `tlsRequired`.
    public var isAuthenticationFailure: Bool {
        switch self {
        case .invalidCredentials, .authorizationRefused, .tlsRequired: return true
        default: return false
        }
    }
}
