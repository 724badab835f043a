import NIOCore

/// A message the server delivers to a subscription (MSG or HMSG).
public struct NATSMessage: Sendable {
    /// The subject it was published on.
    public var subject: String
    /// The subscription it was delivered to.
    public var sid: UInt64
    /// Where to reply (a JetStream message: its `$JS.ACK...` subject).
    public var replyTo: String?
    /// HMSG's header block; nil for MSG.
    public var headers: NATSHeaders?
    /// The message's bytes.
    public var payload: [UInt8]

    /// A message with these parts (for tests and for building replies).
    public init(subject: String, sid: UInt64, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: [UInt8] = []) {
        self.subject = subject
        self.sid = sid
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }

    /// The status of a server-made message (`NATS/1.0 408 Request Timeout`), nil for an ordinary one.
    public var status: Int? { headers?.status }
}

/// One operation from the server.
public enum NATSServerOperation: Sendable {
    /// `INFO {json}`: the JSON bytes, decoded by `NATSServerInfo`.
    case info([UInt8])
    /// `MSG` or `HMSG`: a message for a subscription.
    case message(NATSMessage)
    /// `PING`: answer with `PONG`, or the server closes the connection.
    case ping
    /// `PONG`: the answer to a `PING` of ours.
    case pong
    /// `+OK` (sent in verbose mode only; this client does not ask for it).
    case ok
    /// `-ERR 'message'`, without the quotes.
    case error(String)
}

/// Splits the bytes a NATS server sends into operations, however the network
/// fragments them: feed it with `append`, then take operations with `next()`
/// until it returns nil (it needs more bytes).
///
/// Bounded: a control line (everything up to the first CRLF) longer than
/// `maxControlLineBytes` is refused, and so is a message payload larger than
/// `maxPayload` (the server's `max_payload` from INFO), before its bytes are
/// waited for. Every refusal is a typed `NATSError`; after one, the stream
/// cannot be trusted and the connection should be closed.
///
/// Not thread-safe: one parser per connection, used on its event loop.
public struct NATSProtocolParser {
    /// The longest control line accepted (NATS's own default `max_control_line` is 4 KiB).
    public static let maxControlLineBytes = 4096
    /// The largest payload accepted; raise it to the server's `max_payload` once INFO says it.
    public var maxPayload: Int

    private var buffer: ByteBuffer

    /// A parser with nothing buffered, accepting payloads up to `maxPayload` bytes.
    public init(maxPayload: Int = 1 << 20) {
        self.maxPayload = maxPayload
        self.buffer = ByteBufferAllocator().buffer(capacity: 0)
    }

    /// Adds bytes received from the server.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
    }

    /// Adds bytes received from the server.
    public mutating func append<Bytes: Sequence<UInt8>>(contentsOf bytes: Bytes) {
        buffer.writeBytes(bytes)
    }

    /// Bytes received and not yet parsed.
    public var bufferedBytes: Int { buffer.readableBytes }

    /// The next complete operation, nil when more bytes are needed.
    public mutating func next() throws(NATSError) -> NATSServerOperation? {
        guard let lineEnd = try controlLineEnd() else { return nil }
        let start = buffer.readerIndex
        let line = buffer.getSlice(at: start, length: lineEnd - start) ?? ByteBuffer()
        let lineView = line.readableBytesView
        let verbEnd = lineView.firstIndex(where: { $0 == 0x20 || $0 == 0x09 }) ?? lineView.endIndex
        let verb = lineView[lineView.startIndex..<verbEnd]
        let afterLine = lineEnd + 2
        switch Self.upper(verb) {
        case "MSG", "HMSG":
            let hasHeaders = verb.count == 4
            let args = Self.arguments(lineView[verbEnd...])
            guard let message = try parseMessage(args: args, hasHeaders: hasHeaders, payloadAt: afterLine, line: lineView) else {
                return nil
            }
            return .message(message)
        case "PING":
            buffer.moveReaderIndex(to: afterLine)
            return .ping
        case "PONG":
            buffer.moveReaderIndex(to: afterLine)
            return .pong
        case "+OK":
            buffer.moveReaderIndex(to: afterLine)
            return .ok
        case "-ERR":
            buffer.moveReaderIndex(to: afterLine)
            var text = String(decoding: lineView[verbEnd...], as: UTF8.self).trimmingSpaces()
            if text.hasPrefix("'") && text.hasSuffix("'") && text.count >= 2 { text = String(text.dropFirst().dropLast()) }
            return .error(text)
        case "INFO":
            buffer.moveReaderIndex(to: afterLine)
            let json = Array(lineView[verbEnd...].drop(while: { $0 == 0x20 || $0 == 0x09 }))
            guard json.first == UInt8(ascii: "{") else { throw .malformed("INFO without a JSON object") }
            return .info(json)
        default:
            throw .malformed("unknown operation \(Self.preview(lineView))")
        }
    }

    /// The index of the CR of the first CRLF, nil when none yet; throws when the line is too long.
    private func controlLineEnd() throws(NATSError) -> Int? {
        let view = buffer.readableBytesView
        let limit = Swift.min(view.count, Self.maxControlLineBytes + 2)
        var i = view.startIndex
        let end = view.startIndex + limit
        while i < end {
            if view[i] == 0x0A {
                guard i > view.startIndex, view[i - 1] == 0x0D else { throw .malformed("a line ending with LF alone") }
                return buffer.readerIndex + (i - 1 - view.startIndex)
            }
            i += 1
        }
        if view.count > Self.maxControlLineBytes + 1 { throw .controlLineTooLong(limit: Self.maxControlLineBytes) }
        return nil
    }

    /// MSG <subject> <sid> [reply-to] <#bytes>, HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>.
    private mutating func parseMessage(
        args: [Substring.UTF8View.SubSequence], hasHeaders: Bool, payloadAt: Int, line: ByteBufferView
    ) throws(NATSError) -> NATSMessage? {
        let counts = hasHeaders ? 2 : 1
        guard args.count == 2 + counts || args.count == 3 + counts else {
            throw .malformed("\(hasHeaders ? "HMSG" : "MSG") with \(args.count) arguments: \(Self.preview(line))")
        }
        guard let sid = Self.number(args[1]) else { throw .malformed("subscription id is not a number: \(Self.preview(line))") }
        guard let total = Self.number(args[args.count - 1]) else { throw .malformed("byte count is not a number: \(Self.preview(line))") }
        var headerBytes = 0
        if hasHeaders {
            guard let h = Self.number(args[args.count - 2]), h <= total else {
                throw .malformed("header byte count is not a number at most the total: \(Self.preview(line))")
            }
            headerBytes = Int(h)
        }
        guard total <= UInt64(maxPayload) else { throw .payloadTooLarge(bytes: Int(clamping: total), limit: maxPayload) }
        let totalBytes = Int(total)
        // The payload and its CRLF must all be here.
        guard buffer.writerIndex - payloadAt >= totalBytes + 2 else { return nil }
        guard buffer.getInteger(at: payloadAt + totalBytes, as: UInt16.self) == 0x0D0A else {
            throw .malformed("payload not followed by CRLF (byte count wrong?): \(Self.preview(line))")
        }
        let subject = String(decoding: args[0], as: UTF8.self)
        let reply = args.count == 3 + counts ? String(decoding: args[2], as: UTF8.self) : nil
        var headers: NATSHeaders?
        if hasHeaders {
            guard let block = buffer.getBytes(at: payloadAt, length: headerBytes) else { return nil }
            headers = try NATSHeaders.parse(block)
        }
        let payload = buffer.getBytes(at: payloadAt + headerBytes, length: totalBytes - headerBytes) ?? []
        buffer.moveReaderIndex(to: payloadAt + totalBytes + 2)
        if buffer.readableBytes == 0 { buffer.clear() } else if buffer.readerIndex > 64 * 1024 { buffer.discardReadBytes() }
        return NATSMessage(subject: subject, sid: sid, replyTo: reply, headers: headers, payload: payload)
    }

    private static func arguments(_ bytes: ByteBufferView.SubSequence) -> [Substring.UTF8View.SubSequence] {
        let text = Substring(String(decoding: bytes, as: UTF8.self))
        return text.utf8.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
    }

    private static func number(_ bytes: Substring.UTF8View.SubSequence) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= 19 else { return nil }
        var n: UInt64 = 0
        for b in bytes {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            n = n * 10 + UInt64(b - 0x30)
        }
        return n
    }

    private static func upper(_ bytes: ByteBufferView.SubSequence) -> String {
        String(decoding: bytes.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }, as: UTF8.self)
    }

    private static func preview(_ line: some Collection<UInt8>) -> String {
        String(decoding: line.prefix(80), as: UTF8.self).debugDescription
    }
}
