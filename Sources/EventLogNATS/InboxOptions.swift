import EventLog
import NATSClient

/// What an `Inbox` consumes and where it appends.
public struct InboxOptions: Sendable {
    /// The largest fetch batch accepted.
    public static let maxBatch = 10_000

    /// The JetStream stream to consume.
    public var stream: String
    /// The durable pull consumer's name (created when missing, with `ackWait` and `maxAckPending`).
    public var durable: String
    /// Each message is appended to the local stream `<intoStreamPrefix><EventLog-Stream header, else the subject>`.
    public var intoStreamPrefix: String
    /// Messages fetched per pull request, appended as one atomic batch.
    public var batch: Int
    /// The consumer's ack wait (a created consumer only): how long JetStream waits for an acknowledgement before it delivers again.
    public var ackWait: Duration
    /// The consumer's max ack pending (a created consumer only); at least twice `batch`, since one fetch runs ahead.
    public var maxAckPending: Int
    /// Reconnects after failures; `maxAttempts` failures in a row end `run` with `RelayError.gaveUp`.
    public var backoff: Backoff
    /// End `run` once a pull request comes back empty (nothing left to consume).
    public var stopWhenIdle: Bool
    /// End `run` after this many messages were handled (appended or recognised as duplicates) and acknowledged.
    public var maxMessages: Int?
    /// How often the consumer's ack floor is read to forget message ids JetStream will never deliver again.
    public var ackFloorInterval: Duration
    /// How the inbox authenticates to the server (default: not at all). Refused credentials end `run` at once
    /// with `RelayError.nats(.authorizationRefused)`; they are never retried.
    public var credentials: NATSCredentials
    /// For tests: called after a batch's append is durable and before it is acknowledged; a throw ends `run` without acknowledging.
    public var beforeAcknowledging: (@Sendable (_ appended: Int) throws -> Void)?

    /// Options as the properties describe them. `batch` is kept within
    /// 1...`maxBatch`; `maxAckPending` defaults to four times `batch` and is
    /// raised to at least twice it.
    public init(
        stream: String, durable: String, intoStreamPrefix: String = "", batch: Int = 1000, ackWait: Duration = .seconds(30),
        maxAckPending: Int? = nil, backoff: Backoff = Backoff(), stopWhenIdle: Bool = false, maxMessages: Int? = nil,
        ackFloorInterval: Duration = .seconds(1), credentials: NATSCredentials = .none
    ) {
        self.stream = stream
        self.durable = durable
        self.intoStreamPrefix = intoStreamPrefix
        self.batch = min(max(1, batch), Self.maxBatch)
        self.ackWait = ackWait
        self.maxAckPending = max(maxAckPending ?? 4 * self.batch, 2 * self.batch)
        self.backoff = backoff
        self.stopWhenIdle = stopWhenIdle
        self.maxMessages = maxMessages
        self.ackFloorInterval = ackFloorInterval
        self.credentials = credentials
    }

    /// The local cursor that marks where the inbox's deduplication record starts in the log.
    public var cursorName: String { "inbox.\(stream).\(durable)" }
}

/// What an inbox did so far.
public struct InboxStatistics: Sendable, Equatable {
    /// Messages appended to the log.
    public var appended = 0
    /// Messages delivered again that the log already held (acknowledged, not appended).
    public var duplicates = 0
    /// Connections made after the first.
    public var reconnects = 0
    /// Message ids remembered for deduplication (those above the consumer's ack floor).
    public var rememberedIDs = 0
}
