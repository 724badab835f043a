/// A message a pull consumer delivered, with what its `$JS.ACK...` reply subject says.
public struct JetStreamMessage: Sendable {
    /// The message as the server delivered it.
    public var message: NATSMessage
    /// The JetStream stream it is stored in.
    public var stream: String
    /// Its sequence in that stream (unique per stream; the same on every redelivery).
    public var streamSequence: UInt64
    /// 1 on the first delivery, more on redeliveries.
    public var deliveryCount: UInt64
    /// When it was stored, in nanoseconds since 1970.
    public var timestamp: Int64

    /// The subject it was published on.
    public var subject: String { message.subject }
    /// Its headers (nil when it was published without).
    public var headers: NATSHeaders? { message.headers }
    /// Its payload.
    public var payload: [UInt8] { message.payload }
    /// Where its acknowledgement goes.
    public var ackSubject: String { message.replyTo ?? "" }

    /// Reads the reply subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`
    /// or the newer form with a domain and account hash before the stream (and a random token after).
    public init(_ message: NATSMessage) throws(NATSError) {
        guard let reply = message.replyTo, reply.hasPrefix("$JS.ACK.") else {
            throw .unexpectedReply("a pulled message without a $JS.ACK reply subject (\(message.subject))")
        }
        // Token boundaries found in the UTF-8 bytes (no array of substrings: this runs for every message).
        var starts: [Int] = []
        var ends: [Int] = []
        starts.reserveCapacity(12)
        ends.reserveCapacity(12)
        let bytes = reply.utf8
        var offset = 0
        starts.append(0)
        for b in bytes {
            if b == UInt8(ascii: ".") {
                ends.append(offset)
                starts.append(offset + 1)
            }
            offset += 1
        }
        ends.append(offset)
        let base: Int
        switch starts.count {
        case 9: base = 2
        case 11, 12: base = 4
        default: throw .unexpectedReply("a JetStream ack subject with \(starts.count) tokens: \(reply)")
        }
        func number(_ token: Int) -> UInt64? {
            let length = ends[token] - starts[token]
            guard length > 0, length <= 19 else { return nil }
            var n: UInt64 = 0
            for b in bytes.dropFirst(starts[token]).prefix(length) {
                guard b >= 0x30 && b <= 0x39 else { return nil }
                n = n * 10 + UInt64(b - 0x30)
            }
            return n
        }
        guard let delivered = number(base + 2), let sequence = number(base + 3), let time = number(base + 5), time <= UInt64(Int64.max) else {
            throw .unexpectedReply("a JetStream ack subject with non-numeric fields: \(reply)")
        }
        self.message = message
        self.stream = String(decoding: Array(bytes.dropFirst(starts[base]).prefix(ends[base] - starts[base])), as: UTF8.self)
        self.deliveryCount = delivered
        self.streamSequence = sequence
        self.timestamp = Int64(time)
    }
}
