import struct Foundation.Data
import class Foundation.JSONDecoder
import class Foundation.JSONEncoder

/// JetStream's JSON API over a connection: streams, durable pull consumers,
/// and the parsing of publish acknowledgements. Every call is one request
/// (blocking, see `NATSConnection`); an `{"error": ...}` reply is thrown as
/// `NATSError.jetStream` with its code, JetStream error code and description.
public struct JetStream: Sendable {
    /// The connection the API requests go through.
    public let connection: NATSConnection
    /// How long each API request waits for its reply.
    public var timeout: Double
    /// The API subject prefix (`$JS.API.`).
    public static let apiPrefix = "$JS.API."
    /// JetStream's error code for "stream not found".
    public static let streamNotFound = 10059
    /// JetStream's error code for "consumer not found".
    public static let consumerNotFound = 10014

    /// The JetStream API over `connection`, each request waiting up to `timeout` seconds.
    public init(connection: NATSConnection, timeout: Double = 5) {
        self.connection = connection
        self.timeout = timeout
    }

    // MARK: Streams

    /// `$JS.API.STREAM.INFO.<name>`; nil when the stream does not exist.
    public func streamInfo(_ name: String) throws(NATSError) -> JetStreamStreamInfo? {
        do {
            return try call("STREAM.INFO.\(name)", body: nil, as: JetStreamStreamInfo.self)
        } catch .jetStream(_, Self.streamNotFound, _) {
            return nil
        }
    }

    /// `$JS.API.STREAM.CREATE.<name>`.
    @discardableResult
    public func createStream(_ config: JetStreamStreamConfig) throws(NATSError) -> JetStreamStreamInfo {
        try call("STREAM.CREATE.\(config.name)", body: try encode(config), as: JetStreamStreamInfo.self)
    }

    /// The stream's info, creating it with `config` when it does not exist (an existing stream is left as it is).
    @discardableResult
    public func ensureStream(_ config: JetStreamStreamConfig) throws(NATSError) -> JetStreamStreamInfo {
        if let info = try streamInfo(config.name) { return info }
        return try createStream(config)
    }

    // MARK: Consumers

    /// `$JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable>`: creates the durable
    /// consumer, or returns it when it exists with the same configuration.
    @discardableResult
    public func createConsumer(stream: String, _ config: JetStreamConsumerConfig) throws(NATSError) -> JetStreamConsumerInfo {
        struct Request: Encodable {
            var stream_name: String
            var config: JetStreamConsumerConfig
        }
        return try call(
            "CONSUMER.DURABLE.CREATE.\(stream).\(config.durableName)", body: try encode(Request(stream_name: stream, config: config)),
            as: JetStreamConsumerInfo.self)
    }

    /// `$JS.API.CONSUMER.INFO.<stream>.<durable>`; nil when it does not exist.
    public func consumerInfo(stream: String, durable: String) throws(NATSError) -> JetStreamConsumerInfo? {
        do {
            return try call("CONSUMER.INFO.\(stream).\(durable)", body: nil, as: JetStreamConsumerInfo.self)
        } catch .jetStream(_, Self.consumerNotFound, _) {
            return nil
        }
    }

    /// `$JS.API.CONSUMER.DELETE.<stream>.<durable>`.
    public func deleteConsumer(stream: String, durable: String) throws(NATSError) {
        struct Reply: Decodable { var success: Bool? }
        _ = try call("CONSUMER.DELETE.\(stream).\(durable)", body: nil, as: Reply.self)
    }

    // MARK: Requests

    func call<T: Decodable>(_ api: String, body: [UInt8]?, as type: T.Type) throws(NATSError) -> T {
        let reply = try connection.request(subject: Self.apiPrefix + api, payload: body ?? [], timeout: timeout)
        return try Self.decodeReply(reply.payload, as: type)
    }

    /// Decodes an API reply: an `error` object is thrown, else the reply is decoded as `T`.
    public static func decodeReply<T: Decodable>(_ payload: [UInt8], as type: T.Type) throws(NATSError) -> T {
        let decoder = JSONDecoder()
        let data = Data(payload)
        if let failure = try? decoder.decode(JetStreamAPIFailure.self, from: data), let error = failure.error {
            throw .jetStream(code: error.code, errorCode: error.errCode ?? 0, description: error.description ?? "")
        }
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw .unexpectedReply("\(String(decoding: payload.prefix(200), as: UTF8.self)): \(error)")
        }
    }

    func encode<T: Encodable>(_ value: T) throws(NATSError) -> [UInt8] {
        do {
            return Array(try JSONEncoder().encode(value))
        } catch {
            throw .invalidArgument("cannot encode a JetStream request: \(error)")
        }
    }
}

struct JetStreamAPIFailure: Decodable { var error: JetStreamAPIError? }

struct JetStreamAPIError: Decodable {
    var code: Int
    var errCode: Int?
    var description: String?
    enum CodingKeys: String, CodingKey { case code, errCode = "err_code", description }
}

/// A stream's configuration (the fields this client sets).
public struct JetStreamStreamConfig: Codable, Sendable, Equatable {
    /// The stream's name.
    public var name: String
    /// The subjects it stores (wildcards allowed: `orders.>`).
    public var subjects: [String]
    /// `file` or `memory`.
    public var storage: String
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a repeat, in nanoseconds (JetStream's default: 2 minutes).
    public var duplicateWindow: Int64?

    enum CodingKeys: String, CodingKey { case name, subjects, storage, duplicateWindow = "duplicate_window" }

    /// A configuration with these fields (JetStream's defaults for the others).
    public init(name: String, subjects: [String], storage: String = "file", duplicateWindow: Int64? = nil) {
        self.name = name
        self.subjects = subjects
        self.storage = storage
        self.duplicateWindow = duplicateWindow
    }
}

/// `STREAM.INFO`'s reply.
public struct JetStreamStreamInfo: Decodable, Sendable {
    /// The stream's configuration.
    public var config: JetStreamStreamConfig
    /// What it holds.
    public var state: State

    /// A stream's contents, as `STREAM.INFO` counts them.
    public struct State: Decodable, Sendable {
        /// Messages stored.
        public var messages: UInt64
        /// The sequence of the first message stored.
        public var firstSequence: UInt64
        /// The sequence of the last message stored.
        public var lastSequence: UInt64
        enum CodingKeys: String, CodingKey { case messages, firstSequence = "first_seq", lastSequence = "last_seq" }
    }
}

/// A durable pull consumer's configuration (the fields this client sets).
public struct JetStreamConsumerConfig: Encodable, Sendable {
    /// The durable consumer's name.
    public var durableName: String
    /// `explicit`: each message is acknowledged on its own.
    public var ackPolicy = "explicit"
    /// How long an unacknowledged delivery waits before it is delivered again, in nanoseconds.
    public var ackWait: Int64
    /// At most this many messages delivered and not yet acknowledged.
    public var maxAckPending: Int
    /// `all`: a new consumer starts at the stream's first message.
    public var deliverPolicy = "all"
    /// Only messages on this subject (wildcards allowed); nil: every subject of the stream.
    public var filterSubject: String?

    enum CodingKeys: String, CodingKey {
        case durableName = "durable_name", ackPolicy = "ack_policy", ackWait = "ack_wait", maxAckPending = "max_ack_pending"
        case deliverPolicy = "deliver_policy", filterSubject = "filter_subject"
    }

    /// A durable, explicitly acknowledged consumer from the stream's start.
    public init(durableName: String, ackWaitSeconds: Double = 30, maxAckPending: Int = 4096, filterSubject: String? = nil) {
        self.durableName = durableName
        self.ackWait = Int64(ackWaitSeconds * 1e9)
        self.maxAckPending = maxAckPending
        self.filterSubject = filterSubject
    }
}

/// `CONSUMER.INFO`'s reply (the fields this client reads).
public struct JetStreamConsumerInfo: Decodable, Sendable {
    /// The consumer's name.
    public var name: String
    /// Every message at or below `ackFloor.streamSequence` is acknowledged: it is never delivered again.
    public var ackFloor: SequencePair
    /// The last message delivered.
    public var delivered: SequencePair
    /// Messages delivered and not yet acknowledged.
    public var numAckPending: Int
    /// Messages of the stream not yet delivered to this consumer.
    public var numPending: UInt64

    /// A message's place: its sequence for the consumer and in the stream.
    public struct SequencePair: Decodable, Sendable {
        /// The consumer's delivery sequence.
        public var consumerSequence: UInt64
        /// The stream's sequence.
        public var streamSequence: UInt64
        enum CodingKeys: String, CodingKey { case consumerSequence = "consumer_seq", streamSequence = "stream_seq" }
    }

    enum CodingKeys: String, CodingKey {
        case name, ackFloor = "ack_floor", delivered, numAckPending = "num_ack_pending", numPending = "num_pending"
    }
}

/// JetStream's answer to a publish: where the message is, or that it was a repeat of one within the duplicate window.
public struct JetStreamPublishAck: Sendable, Equatable {
    /// The stream that stored it.
    public var stream: String
    /// Its sequence there (a repeat's: the original's).
    public var sequence: UInt64
    /// True when JetStream dropped it as a repeat of a `Nats-Msg-Id` within the duplicate window.
    public var duplicate: Bool

    /// An acknowledgement with these fields.
    public init(stream: String, sequence: UInt64, duplicate: Bool) {
        self.stream = stream
        self.sequence = sequence
        self.duplicate = duplicate
    }

    /// Parses a publish's reply: `{"stream":"S","seq":7}` (with `"duplicate":true` for a repeat),
    /// an error object (`NATSError.jetStream`), or a 503 status (`noResponders`: no stream holds the subject).
    /// The common shape is read without Foundation's decoder (it runs for every message relayed).
    public static func parse(_ reply: NATSMessage) throws(NATSError) -> JetStreamPublishAck {
        if reply.status == 503 { throw .noResponders(subject: reply.subject) }
        if let status = reply.status { throw .jetStream(code: status, errorCode: 0, description: reply.headers?.statusDescription ?? "") }
        let p = reply.payload
        if let ack = fastParse(p) { return ack }
        struct Ack: Decodable {
            var stream: String
            var seq: UInt64
            var duplicate: Bool?
        }
        let ack = try JetStream.decodeReply(p, as: Ack.self)
        return JetStreamPublishAck(stream: ack.stream, sequence: ack.seq, duplicate: ack.duplicate ?? false)
    }

    /// `{"stream":"<name without quotes or backslashes>","seq":<digits>[,"duplicate":true]}` (spaces allowed after
    /// `,` and `:`, as nats-server writes `{"stream":"S", "seq":1}`) and nothing else; nil for any other shape.
    static func fastParse(_ p: [UInt8]) -> JetStreamPublishAck? {
        var i = 0
        func skipSpaces() { while i < p.count && p[i] == 0x20 { i += 1 } }
        func expect(_ text: StaticString) -> Bool {
            text.withUTF8Buffer { bytes in
                for b in bytes {
                    guard i < p.count, p[i] == b else { return false }
                    i += 1
                }
                return true
            }
        }
        guard expect(#"{"stream":"#) else { return nil }
        skipSpaces()
        guard expect("\"") else { return nil }
        let nameStart = i
        while i < p.count && p[i] != UInt8(ascii: "\"") {
            if p[i] == UInt8(ascii: "\\") { return nil }
            i += 1
        }
        guard i < p.count else { return nil }
        let name = String(decoding: p[nameStart..<i], as: UTF8.self)
        i += 1
        guard expect(",") else { return nil }
        skipSpaces()
        guard expect(#""seq":"#) else { return nil }
        skipSpaces()
        var seq: UInt64 = 0
        var digits = 0
        while i < p.count, p[i] >= 0x30, p[i] <= 0x39, digits < 19 {
            seq = seq * 10 + UInt64(p[i] - 0x30)
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        var duplicate = false
        if i < p.count && p[i] == UInt8(ascii: ",") {
            i += 1
            skipSpaces()
            guard expect(#""duplicate":"#) else { return nil }
            skipSpaces()
            guard expect("true") else { return nil }
            duplicate = true
        }
        guard expect("}"), i == p.count else { return nil }
        return JetStreamPublishAck(stream: name, sequence: seq, duplicate: duplicate)
    }
}
