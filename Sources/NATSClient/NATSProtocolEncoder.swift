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

    /// `HPUB <subject> <replyPrefix><replyNumber> <#header bytes> <#total bytes>`, its header block and payload, all
    /// from bytes: no `String` is made, for a publisher's hot loop. `headers` is an encoded block (`NATSHeaders.encoded()`).
    /// Throws `invalidArgument` for an empty subject or reply prefix, or one with whitespace or control characters.
    public static func publish(
        into buffer: inout ByteBuffer, subject: UnsafeRawBufferPointer, replyPrefix: UnsafeRawBufferPointer, replyNumber: UInt64,
        headers: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer
    ) throws(NATSError) {
        guard isValidSubject(subject) else {
            throw .invalidArgument("NATS subject \(String(decoding: subject, as: UTF8.self).debugDescription): non-empty, without whitespace")
        }
        guard isValidSubject(replyPrefix) else {
            throw .invalidArgument("NATS reply subject \(String(decoding: replyPrefix, as: UTF8.self).debugDescription): non-empty, without whitespace")
        }
        // One write of the whole frame: each ByteBuffer write checks capacity and uniqueness, a dozen a frame add up.
        let numberDigits = decimalDigits(replyNumber)
        let headerDigits = decimalDigits(UInt64(headers.count))
        let totalDigits = decimalDigits(UInt64(headers.count + payload.count))
        let size = 5 + subject.count + 1 + replyPrefix.count + numberDigits + 1 + headerDigits + 1 + totalDigits + 2
            + headers.count + payload.count + 2
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var i = 0
            func put(_ bytes: UnsafeRawBufferPointer) {
                UnsafeMutableRawBufferPointer(rebasing: out[i..<(i + bytes.count)]).copyMemory(from: bytes)
                i += bytes.count
            }
            func put(_ byte: UInt8) {
                out[i] = byte
                i += 1
            }
            func put(_ value: UInt64, digits: Int) {
                var v = value
                var j = i + digits
                repeat {
                    j -= 1
                    out[j] = 0x30 + UInt8(truncatingIfNeeded: v % 10)
                    v /= 10
                } while v > 0
                i += digits
            }
            for b in "HPUB ".utf8 { put(b) }
            put(subject)
            put(UInt8(ascii: " "))
            put(replyPrefix)
            put(replyNumber, digits: numberDigits)
            put(UInt8(ascii: " "))
            put(UInt64(headers.count), digits: headerDigits)
            put(UInt8(ascii: " "))
            put(UInt64(headers.count + payload.count), digits: totalDigits)
            put(0x0D)
            put(0x0A)
            put(headers)
            put(payload)
            put(0x0D)
            put(0x0A)
            return i
        }
    }

    /// How many decimal digits `value` has.
    static func decimalDigits(_ value: UInt64) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }

    /// True for a subject's bytes the protocol can carry: non-empty, without whitespace or control characters.
    @inline(__always)
    static func isValidSubject(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !bytes.isEmpty else { return false }
        for b in bytes where b <= 0x20 || b == 0x7F { return false }
        return true
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
