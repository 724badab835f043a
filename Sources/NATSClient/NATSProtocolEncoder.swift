import NIOCore

/// Writes client operations (CONNECT, PUB, HPUB, SUB, UNSUB, PING, PONG) into a buffer.
/// Subjects are checked: non-empty, no whitespace (a subject with spaces would split the line).
public enum NATSProtocolEncoder {
    static let crlf: [UInt8] = [0x0D, 0x0A]

    /// Throws `invalidArgument` for an empty subject or one with whitespace or control characters.
    public static func validate(subject: String) throws(NATSError) {
        if subject.isEmpty || subject.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            throw .invalidArgument("NATS subject \(subject.debugDescription): non-empty, without whitespace")
        }
    }

    /// `PUB <subject> [reply] <#bytes>` or, with headers, `HPUB <subject> [reply] <#header bytes> <#total bytes>`.
    public static func publish(
        into buffer: inout ByteBuffer, subject: String, replyTo: String? = nil, headers: [UInt8]? = nil,
        payload: UnsafeRawBufferPointer
    ) throws(NATSError) {
        try validate(subject: subject)
        if let replyTo { try validate(subject: replyTo) }
        if headers != nil {
            buffer.writeStaticString("HPUB ")
        } else {
            buffer.writeStaticString("PUB ")
        }
        buffer.writeString(subject)
        if let replyTo {
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(replyTo)
        }
        if let headers {
            buffer.writeString(" \(headers.count) \(headers.count + payload.count)\r\n")
            buffer.writeBytes(headers)
        } else {
            buffer.writeString(" \(payload.count)\r\n")
        }
        buffer.writeBytes(payload)
        buffer.writeBytes(crlf)
    }

    /// `PUB` or, with `headers`, `HPUB` of `payload`, the header block
    /// encoded here (`NATSHeaders.encoded()`).
    ///
    /// - Throws: `NATSError.invalidArgument` for a subject, reply subject
    ///   or header the protocol cannot carry; nothing is written then.
    public static func publish(
        into buffer: inout ByteBuffer, subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: [UInt8]
    ) throws(NATSError) {
        let block = try headers.map { h throws(NATSError) in try h.encoded() }
        do {
            try payload.withUnsafeBytes { raw in
                try publish(into: &buffer, subject: subject, replyTo: replyTo, headers: block, payload: raw)
            }
        } catch let error as NATSError {
            throw error
        } catch {
            throw .invalidArgument("\(error)")
        }
    }

    /// `SUB <subject> [queue group] <sid>`.
    public static func subscribe(into buffer: inout ByteBuffer, subject: String, queue: String? = nil, sid: UInt64) throws(NATSError) {
        try validate(subject: subject)
        buffer.writeString("SUB \(subject) \(queue.map { $0 + " " } ?? "")\(sid)\r\n")
    }

    /// `UNSUB <sid> [max messages]`.
    public static func unsubscribe(into buffer: inout ByteBuffer, sid: UInt64, after maxMessages: Int? = nil) {
        buffer.writeString("UNSUB \(sid)\(maxMessages.map { " \($0)" } ?? "")\r\n")
    }

    /// `PING` (the server answers `PONG`).
    public static func ping(into buffer: inout ByteBuffer) { buffer.writeStaticString("PING\r\n") }
    /// `PONG`, the answer to the server's `PING`.
    public static func pong(into buffer: inout ByteBuffer) { buffer.writeStaticString("PONG\r\n") }

    /// `CONNECT {json}` (the JSON from `NATSConnectOptions`).
    public static func connect(into buffer: inout ByteBuffer, json: [UInt8]) {
        buffer.writeStaticString("CONNECT ")
        buffer.writeBytes(json)
        buffer.writeBytes(crlf)
    }
}
