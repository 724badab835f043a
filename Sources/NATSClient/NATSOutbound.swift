import NIOCore

/// Messages being encoded for one write (`NATSConnection.send`).
public struct NATSOutbound {
    var buffer: ByteBuffer
    let connection: NATSConnection
    var replies: [(UInt64, NATSReplyHandler)] = []

    init(buffer: ByteBuffer, connection: NATSConnection) {
        self.buffer = buffer
        self.connection = connection
    }

    /// Bytes encoded so far.
    public var byteCount: Int { buffer.readableBytes }

    /// The server's limit on one message, headers included.
    var maxPayload: Int { connection.info.maxPayload }

    /// Adds a publish; `headers` is an encoded header block (`NATSHeaders.encoded()`), or nil for PUB.
    public mutating func publish(
        subject: String, replyTo: String? = nil, headerBlock: [UInt8]?, payload: UnsafeRawBufferPointer
    ) throws(NATSError) {
        let size = (headerBlock?.count ?? 0) + payload.count
        guard size <= maxPayload else { throw .payloadTooLarge(bytes: size, limit: maxPayload) }
        try NATSProtocolEncoder.publish(into: &buffer, subject: subject, replyTo: replyTo, headers: headerBlock, payload: payload)
    }

    /// Adds a publish of `payload` with `headers` (HPUB; nil: PUB), encoding
    /// the header block here.
    ///
    /// - Throws: `NATSError.payloadTooLarge` over the server's `max_payload`
    ///   (headers included); `invalidArgument` for a subject or header the
    ///   protocol cannot carry. Nothing is added then.
    public mutating func publish(subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: [UInt8]) throws(NATSError) {
        let block = try headers.map { h throws(NATSError) in try h.encoded() }
        let size = (block?.count ?? 0) + payload.count
        guard size <= maxPayload else { throw .payloadTooLarge(bytes: size, limit: maxPayload) }
        try NATSProtocolEncoder.publish(into: &buffer, subject: subject, replyTo: replyTo, headers: headers, payload: payload)
    }

    /// Makes room for `bytes` more without growing the buffer again (for a batch whose size is known roughly).
    public mutating func reserveCapacity(forAdditional bytes: Int) {
        buffer.reserveCapacity(minimumWritableBytes: bytes)
    }

    /// Adds an HPUB whose reply subject is `<replyPrefix><replyNumber>`, from bytes: no `String` per message, for a
    /// publisher's hot loop. The replies go to whatever subscription the caller made for `replyPrefix` (for example on
    /// `<NATSConnection.newInbox()>.*`), not to a reply handler.
    public mutating func publish(
        subject: UnsafeRawBufferPointer, replyPrefix: UnsafeRawBufferPointer, replyNumber: UInt64,
        headerBlock: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer
    ) throws(NATSError) {
        let size = headerBlock.count + payload.count
        guard size <= maxPayload else { throw .payloadTooLarge(bytes: size, limit: maxPayload) }
        try NATSProtocolEncoder.publish(
            into: &buffer, subject: subject, replyPrefix: replyPrefix, replyNumber: replyNumber, headers: headerBlock, payload: payload)
    }

    /// Adds a publish whose reply goes to `onReply` (on the event loop; keep it short).
    public mutating func request(
        subject: String, headerBlock: [UInt8]?, payload: UnsafeRawBufferPointer, onReply: @escaping NATSReplyHandler
    ) throws(NATSError) {
        let token = connection.takeTokens(1)
        try publish(subject: subject, replyTo: "\(connection.inboxPrefix).\(token)", headerBlock: headerBlock, payload: payload)
        replies.append((token, onReply))
    }

    /// Adds a publish of `payload` with `headers` whose reply goes to
    /// `onReply` (on the event loop; keep it short), as
    /// `publish(subject:replyTo:headers:payload:)` encodes it.
    public mutating func request(
        subject: String, headers: NATSHeaders? = nil, payload: [UInt8], onReply: @escaping NATSReplyHandler
    ) throws(NATSError) {
        let token = connection.takeTokens(1)
        try publish(subject: subject, replyTo: "\(connection.inboxPrefix).\(token)", headers: headers, payload: payload)
        replies.append((token, onReply))
    }
}
