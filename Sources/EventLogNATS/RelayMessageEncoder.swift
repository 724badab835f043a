import EventLog
import NATSClient
import struct Foundation.UUID

/// Encodes the relay's events as HPUB frames straight into a connection's
/// outbound batch, through two arrays reused for every event (the subject and
/// the header block): relaying an event allocates nothing beyond what decoding
/// its metadata does.
///
/// Not thread-safe: one per relay session, on the relay's thread.
struct RelayMessageEncoder {
    private let subjectPrefix: [UInt8]
    /// The log id's text.
    private let logID: [UInt8]
    /// `<inbox>.`: publish number n asks for its acknowledgement on `<inbox>.n` (`AckTracker`).
    private let replyPrefix: [UInt8]
    /// The server's `max_payload`: the most header and data bytes one message may have.
    private let maxPayload: Int
    private var subject: [UInt8] = []
    private var header: [UInt8] = []

    init(subjectPrefix: String, logID: UUID, replyPrefix: String, maxPayload: Int) {
        self.subjectPrefix = Array(subjectPrefix.utf8)
        self.logID = Array(logID.uuidString.utf8)
        self.replyPrefix = Array(replyPrefix.utf8)
        self.maxPayload = maxPayload
        subject.reserveCapacity(256)
        header.reserveCapacity(1024)
    }

    /// Adds `event` to `out` as publish `number`.
    ///
    /// - Throws: `RelayError.eventTooLarge` when its headers and data exceed the server's `max_payload`;
    ///   `EventLogError` when its metadata is damaged; `NATSError.invalidArgument` for a subject NATS cannot carry.
    mutating func encode(_ event: EventView, number: UInt64, into out: inout NATSOutbound) throws {
        let metadata = event.metadataBytes.isEmpty ? nil : try event.metadata()
        subject.removeAll(keepingCapacity: true)
        header.removeAll(keepingCapacity: true)
        SubjectEncoding.append(prefix: subjectPrefix, stream: event.streamBytes, into: &subject)
        EventHeaders.appendBlock(for: event, metadata: metadata, logID: logID, into: &header)
        let bytes = header.count + event.data.count
        guard bytes <= maxPayload else { throw RelayError.eventTooLarge(position: event.position, bytes: bytes, limit: maxPayload) }
        try subject.withUnsafeBytes { subject in
            try header.withUnsafeBytes { header in
                try replyPrefix.withUnsafeBytes { reply in
                    try out.publish(subject: subject, replyPrefix: reply, replyNumber: number, headerBlock: header, payload: event.data)
                }
            }
        }
    }
}
