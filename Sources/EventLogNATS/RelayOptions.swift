import EventLog
import NATSClient

/// What a `Relay` reads and where it publishes.
public struct RelayOptions: Sendable {
    /// The most events published and not yet acknowledged by JetStream (the
    /// pipeline's window): memory stays bounded by it however slow the server is
    /// (the relay keeps 17 bytes per event in flight, and the frames written but
    /// not yet read by the server are at most the window's events, each its data
    /// plus about 450 bytes of headers and protocol: about 0.5 MiB for events of 100 bytes, at
    /// worst the window times the server's `max_payload`). While events are in
    /// flight the relay refills the window a quarter at a time: a larger window
    /// keeps the server busy through the relay's pauses (a cursor commit's sync).
    public static let defaultWindow = 1024
    /// The largest window accepted.
    public static let maxWindow = 65_536

    /// Each event goes to `<subjectPrefix><stream>` (`SubjectEncoding`).
    public var subjectPrefix: String
    /// The log's durable cursor: the relay starts at its committed position
    /// (creating it at the start of the log when missing) and commits each
    /// position only after every event before it was acknowledged by JetStream.
    public var cursor: String
    /// Which events to publish; the others (and stream markers) still advance the cursor.
    public var filter: EventFilter
    /// The most events published and not yet acknowledged (1...`maxWindow`;
    /// default `defaultWindow`).
    public var window: Int
    /// Create this JetStream stream for `<subjectPrefix>>` when it does not exist (the prefix must end with `.`).
    public var createStream: String?
    /// The created stream's deduplication window (nil: JetStream's default, 2 minutes).
    public var duplicateWindow: Duration?
    /// An event not acknowledged within this time counts as a failure of the connection (reconnect, resend).
    public var ackTimeout: Duration
    /// Reconnects after failures; `maxAttempts` failures in a row end `run` with `RelayError.gaveUp`.
    public var backoff: Backoff
    /// End `run` once everything in the log is published, acknowledged and committed.
    public var stopWhenIdle: Bool
    /// End `run` after this many events were published and acknowledged (and committed).
    public var maxEvents: Int?
    /// Commit the cursor at most this often while events flow (and always when idle or stopping).
    public var commitInterval: Duration
    /// Called on the relay's thread with each event's position once it and every event before it are acknowledged.
    public var onAcknowledged: (@Sendable (UInt64) -> Void)?
    /// How the relay authenticates to the server (default: not at all). Refused credentials end `run` at once
    /// with `RelayError.nats(.authorizationRefused)`; they are never retried.
    public var credentials: NATSCredentials

    /// Options as the properties describe them; `window` is kept within
    /// 1...`maxWindow`.
    public init(
        subjectPrefix: String, cursor: String, filter: EventFilter = EventFilter(), window: Int = RelayOptions.defaultWindow,
        createStream: String? = nil, duplicateWindow: Duration? = nil, ackTimeout: Duration = .seconds(10),
        backoff: Backoff = Backoff(), stopWhenIdle: Bool = false, maxEvents: Int? = nil, commitInterval: Duration = .milliseconds(50),
        credentials: NATSCredentials = .none
    ) {
        self.subjectPrefix = subjectPrefix
        self.cursor = cursor
        self.filter = filter
        self.window = min(max(1, window), Self.maxWindow)
        self.createStream = createStream
        self.duplicateWindow = duplicateWindow
        self.ackTimeout = ackTimeout
        self.backoff = backoff
        self.stopWhenIdle = stopWhenIdle
        self.maxEvents = maxEvents
        self.commitInterval = commitInterval
        self.credentials = credentials
    }
}

/// What a relay did so far.
public struct RelayStatistics: Sendable, Equatable {
    /// Events JetStream acknowledged (duplicates included).
    public var acknowledged = 0
    /// Of those, the ones JetStream dropped as repeats of a `Nats-Msg-Id` (sent again after a reconnect or a crash).
    public var duplicates = 0
    /// Connections made after the first.
    public var reconnects = 0
    /// The cursor's committed position.
    public var committedPosition: UInt64 = 0
    /// The most events that were in flight at once (never above the window).
    public var maxInFlight = 0
    /// Writes that published events, each the events of one read of the log: while events are in flight, the
    /// relay writes only once at least a quarter of the window is free, so a write carries that many or the
    /// rest of the log.
    public var writes = 0
}
