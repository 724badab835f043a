import EventLog

/// The message ids an inbox appended that JetStream may still deliver again:
/// those above the consumer's ack floor. Kept in memory, and recoverable
/// from the log itself: every appended event carries its id and stream
/// sequence as headers (`Nats-Msg-Id`, `Nats-Sequence`), and the cursor
/// `InboxOptions.cursorName` marks the lowest position whose event may still be
/// needed, so a restart (also after kill -9) reads the log from there.
///
/// Bounded by what the consumer has delivered and not yet acknowledged,
/// plus what was acknowledged since the ack floor was last read.
struct InboxDeduplication {
    /// Message id (or `#<stream sequence>` when the message had none) → stream sequence and position.
    private(set) var entries: [String: (sequence: UInt64, position: UInt64)] = [:]

    static let streamHeader = "Nats-Stream"
    static let sequenceHeader = "Nats-Sequence"
    static let consumerHeader = "Nats-Consumer"
    static let messageIDHeader = "Nats-Msg-Id"

    static func key(messageID: String?, sequence: UInt64) -> String {
        messageID ?? "#\(sequence)"
    }

    func contains(_ key: String) -> Bool { entries[key] != nil }

    mutating func insert(_ key: String, sequence: UInt64, position: UInt64) {
        entries[key] = (sequence, position)
    }

    /// Forgets the ids at or below the ack floor; returns the lowest position still needed (nil: none).
    mutating func forget(atOrBelow ackFloor: UInt64) -> UInt64? {
        entries = entries.filter { $0.value.sequence > ackFloor }
        return entries.values.map(\.position).min()
    }

    /// Reads the log from the cursor's position to its end, remembering the messages this inbox appended.
    static func recover(from log: Log, cursor: String, stream: String, durable: String) throws -> InboxDeduplication {
        var dedup = InboxDeduplication()
        let start = try log.createCursor(cursor, at: .end)
        try log.read(from: start) { event in
            guard !event.metadataBytes.isEmpty, !event.isMarker else { return }
            let metadata = try event.metadata()
            guard metadata[header: streamHeader] == stream, metadata[header: consumerHeader] == durable,
                let sequence = metadata[header: sequenceHeader].flatMap(UInt64.init)
            else { return }
            dedup.insert(key(messageID: metadata[header: messageIDHeader], sequence: sequence), sequence: sequence, position: event.position)
        }
        return dedup
    }
}
