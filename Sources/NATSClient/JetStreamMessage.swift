/// A message a pull consumer delivered, with what its `$JS.ACK...` reply subject says.
public struct JetStreamMessage: Sendable {
    public var message: NATSMessage
    /// The JetStream stream it is stored in.
    public var stream: String
    /// Its sequence in that stream (unique per stream; the same on every redelivery).
    public var streamSequence: UInt64
    /// 1 on the first delivery, more on redeliveries.
    public var deliveryCount: UInt64
    /// When it was stored, in nanoseconds since 1970.
    public var timestamp: Int64

    public var subject: String { message.subject }
    public var headers: NATSHeaders? { message.headers }
    public var payload: [UInt8] { message.payload }
    /// Where its acknowledgement goes.
    public var ackSubject: String { message.replyTo ?? "" }

    /// Reads the reply subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`
    /// or the newer form with a domain and account hash before the stream (and a random token after).
    public init(_ message: NATSMessage) throws(NATSError) {
        guard let reply = message.replyTo, reply.hasPrefix("$JS.ACK.") else {
            throw .unexpectedReply("a pulled message without a $JS.ACK reply subject (\(message.subject))")
        }
        let tokens = reply.split(separator: ".", omittingEmptySubsequences: false)
        let base: Int
        switch tokens.count {
        case 9: base = 2
        case 11, 12: base = 4
        default: throw .unexpectedReply("a JetStream ack subject with \(tokens.count) tokens: \(reply)")
        }
        guard let delivered = UInt64(tokens[base + 2]), let sequence = UInt64(tokens[base + 3]), let time = Int64(tokens[base + 5]) else {
            throw .unexpectedReply("a JetStream ack subject with non-numeric fields: \(reply)")
        }
        self.message = message
        self.stream = String(tokens[base])
        self.deliveryCount = delivered
        self.streamSequence = sequence
        self.timestamp = time
    }
}
