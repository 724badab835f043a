import EventLog
import NATSClient

/// Why a relay or an inbox stopped.
public enum RelayError: Error, Sendable, CustomStringConvertible {
    /// NATS failed `attempts` times in a row (connection refused, closed, timed out, or JetStream refused a publish); the last error.
    case gaveUp(attempts: Int, last: NATSError)
    /// An event too large for one NATS message (the server's `max_payload`): it can never be relayed.
    case eventTooLarge(position: UInt64, bytes: Int, limit: Int)
    /// A NATS error that retrying cannot mend (an invalid subject or header, a JetStream configuration error, refused
    /// credentials: `NATSError.authorizationRefused`, a server that requires TLS).
    case nats(NATSError)
    /// The log failed.
    case log(EventLogError)
    /// Anything else (a reader's or writer's unexpected error), as text.
    case other(String)

    /// What went wrong, for a person: the NATS or log error's own text where
    /// there is one.
    public var description: String {
        switch self {
        case .gaveUp(let attempts, let last): return "gave up after \(attempts) failed attempts: \(last)"
        case .eventTooLarge(let position, let bytes, let limit):
            return "event at position \(position) needs \(bytes) bytes as a NATS message, more than the server's max_payload \(limit)"
        case .nats(let error): return error.description
        case .log(let error): return error.description
        case .other(let text): return text
        }
    }
}

/// Waits between failed attempts: `initial`, doubling up to `maximum`; reset by success.
/// After `maxAttempts` failures in a row the caller gives up.
public struct Backoff: Sendable {
    /// The wait after the first failure.
    public var initial: Duration
    /// The longest wait (the doubling stops there).
    public var maximum: Duration
    /// Failures in a row after which `failed()` returns nil (at least 1).
    public var maxAttempts: Int
    /// Failures in a row so far.
    public private(set) var failures = 0

    /// A back-off with no failures yet; `maxAttempts` below 1 counts as 1.
    public init(initial: Duration = .milliseconds(50), maximum: Duration = .seconds(2), maxAttempts: Int = 30) {
        self.initial = initial
        self.maximum = maximum
        self.maxAttempts = max(1, maxAttempts)
    }

    /// Records a failure; returns how long to wait, nil when it is time to give up.
    public mutating func failed() -> Duration? {
        failures += 1
        if failures >= maxAttempts { return nil }
        var delay = initial
        for _ in 1..<failures where delay < maximum { delay *= 2 }
        return min(delay, maximum)
    }

    /// Records a success: the next failure waits `initial` again.
    public mutating func succeeded() { failures = 0 }
}
