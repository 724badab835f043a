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
        let line = buffer.withUnsafeReadableBytes { ControlLine(UnsafeRawBufferPointer(rebasing: $0[0..<(lineEnd - start)])) }
        let afterLine = lineEnd + 2
        switch line.verb {
        case .msg, .hmsg:
            guard let message = try parseMessage(line, at: start, payloadAt: afterLine) else { return nil }
            return .message(message)
        case .ping:
            buffer.moveReaderIndex(to: afterLine)
            return .ping
        case .pong:
            buffer.moveReaderIndex(to: afterLine)
            return .pong
        case .ok:
            buffer.moveReaderIndex(to: afterLine)
            return .ok
        case .error:
            let rest = buffer.getBytes(at: start + line.verbEnd, length: lineEnd - start - line.verbEnd) ?? []
            buffer.moveReaderIndex(to: afterLine)
            var text = String(decoding: rest, as: UTF8.self).trimmingSpaces()
            if text.hasPrefix("'") && text.hasSuffix("'") && text.count >= 2 { text = String(text.dropFirst().dropLast()) }
            return .error(text)
        case .info:
            let rest = buffer.getBytes(at: start + line.verbEnd, length: lineEnd - start - line.verbEnd) ?? []
            buffer.moveReaderIndex(to: afterLine)
            let json = Array(rest.drop(while: { $0 == 0x20 || $0 == 0x09 }))
            guard json.first == UInt8(ascii: "{") else { throw .malformed("INFO without a JSON object") }
            return .info(json)
        case .unknown:
            throw .malformed("unknown operation \(preview(at: start, lineEnd: lineEnd))")
        }
    }

    /// The index of the CR of the first CRLF, nil when none yet; throws when the line is too long.
    private func controlLineEnd() throws(NATSError) -> Int? {
        let scanned = Swift.min(buffer.readableBytes, Self.maxControlLineBytes + 2)
        let lf: Int? = buffer.withUnsafeReadableBytes { raw in
            var i = 0
            while i < scanned {
                if raw[i] == 0x0A { return i }
                i += 1
            }
            return nil
        }
        if let lf {
            guard lf > 0, buffer.getInteger(at: buffer.readerIndex + lf - 1, as: UInt8.self) == 0x0D else {
                throw .malformed("a line ending with LF alone")
            }
            return buffer.readerIndex + lf - 1
        }
        if buffer.readableBytes > Self.maxControlLineBytes + 1 { throw .controlLineTooLong(limit: Self.maxControlLineBytes) }
        return nil
    }

    /// MSG <subject> <sid> [reply-to] <#bytes>, HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>.
    private mutating func parseMessage(_ line: ControlLine, at lineStart: Int, payloadAt: Int) throws(NATSError) -> NATSMessage? {
        let hasHeaders = line.verb == .hmsg
        let counts = hasHeaders ? 2 : 1
        let n = line.fieldCount
        guard n == 2 + counts || n == 3 + counts else {
            throw .malformed("\(hasHeaders ? "HMSG" : "MSG") with \(n) arguments: \(preview(at: lineStart, lineEnd: payloadAt - 2))")
        }
        guard let sid = line.numbers[1] else {
            throw .malformed("subscription id is not a number: \(preview(at: lineStart, lineEnd: payloadAt - 2))")
        }
        guard let total = line.numbers[n - 1] else {
            throw .malformed("byte count is not a number: \(preview(at: lineStart, lineEnd: payloadAt - 2))")
        }
        var headerBytes = 0
        if hasHeaders {
            guard let h = line.numbers[n - 2], h <= total else {
                throw .malformed("header byte count is not a number at most the total: \(preview(at: lineStart, lineEnd: payloadAt - 2))")
            }
            headerBytes = Int(h)
        }
        guard total <= UInt64(maxPayload) else { throw .payloadTooLarge(bytes: Int(clamping: total), limit: maxPayload) }
        let totalBytes = Int(total)
        // The payload and its CRLF must all be here.
        guard buffer.writerIndex - payloadAt >= totalBytes + 2 else { return nil }
        guard buffer.getInteger(at: payloadAt + totalBytes, as: UInt16.self) == 0x0D0A else {
            throw .malformed("payload not followed by CRLF (byte count wrong?): \(preview(at: lineStart, lineEnd: payloadAt - 2))")
        }
        let subjectField = line.fields[0]
        let subject = buffer.getString(at: lineStart + subjectField.lowerBound, length: subjectField.count) ?? ""
        var reply: String?
        if n == 3 + counts {
            let replyField = line.fields[2]
            reply = buffer.getString(at: lineStart + replyField.lowerBound, length: replyField.count) ?? ""
        }
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

    /// The control line from `lineStart` to `lineEnd` (its CR), cut short, for an error message.
    private func preview(at lineStart: Int, lineEnd: Int) -> String {
        let bytes = buffer.getBytes(at: lineStart, length: Swift.min(80, Swift.max(0, lineEnd - lineStart))) ?? []
        return String(decoding: bytes, as: UTF8.self).debugDescription
    }
}

/// A control line's verb and the places of the fields after it (split at spaces and tabs), read from its bytes
/// without allocating: every MSG goes through here.
struct ControlLine {
    enum Verb { case msg, hmsg, ping, pong, ok, error, info, unknown }

    /// The most fields kept (HMSG's five); more are counted, not kept.
    static let maxFields = 5

    let verb: Verb
    /// Where the verb ends (the first space or tab, or the line's end).
    let verbEnd: Int
    /// How many fields follow the verb.
    private(set) var fieldCount = 0
    /// The first `maxFields` fields' byte ranges in the line.
    private(set) var fields = InlineArray<5, Range<Int>>(repeating: 0..<0)
    /// Each kept field as a decimal number; nil when it is not one (or has more than 19 digits).
    private(set) var numbers = InlineArray<5, UInt64?>(repeating: nil)

    init(_ line: UnsafeRawBufferPointer) {
        var i = 0
        // The verb's bytes, upper-cased (ASCII letters only), packed into an integer after a 1 (so that a NUL byte
        // before a verb is not that verb).
        var key: UInt64 = 1
        while i < line.count && line[i] != 0x20 && line[i] != 0x09 {
            var b = line[i]
            if b >= 0x61 && b <= 0x7A { b -= 0x20 }
            if i < 7 { key = key << 8 | UInt64(b) }
            i += 1
        }
        verbEnd = i
        verb = i <= 4 ? Self.verbNamed(key) : .unknown
        while i < line.count {
            while i < line.count && (line[i] == 0x20 || line[i] == 0x09) { i += 1 }
            guard i < line.count else { break }
            let fieldStart = i
            while i < line.count && line[i] != 0x20 && line[i] != 0x09 { i += 1 }
            if fieldCount < Self.maxFields {
                fields[fieldCount] = fieldStart..<i
                numbers[fieldCount] = Self.number(UnsafeRawBufferPointer(rebasing: line[fieldStart..<i]))
            }
            fieldCount += 1
        }
    }

    /// The verbs, as `init` packs them (a 1, then one byte each, first byte highest).
    private static func verbNamed(_ key: UInt64) -> Verb {
        switch key {
        case 0x01_4D_53_47: return .msg  // MSG
        case 0x01_48_4D_53_47: return .hmsg  // HMSG
        case 0x01_50_49_4E_47: return .ping  // PING
        case 0x01_50_4F_4E_47: return .pong  // PONG
        case 0x01_2B_4F_4B: return .ok  // +OK
        case 0x01_2D_45_52_52: return .error  // -ERR
        case 0x01_49_4E_46_4F: return .info  // INFO
        default: return .unknown
        }
    }

    private static func number(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= 19 else { return nil }
        var n: UInt64 = 0
        for b in bytes {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            n = n * 10 + UInt64(b - 0x30)
        }
        return n
    }
}
