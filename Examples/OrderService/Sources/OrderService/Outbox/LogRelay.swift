import EventLog
import Logging

/// The outbox's relay when no NATS server is given: delivers the integration events of the service's log (its
/// outbox streams) to a second log, `DIR/outbox-delivered`, stream `delivered`, in log order, exactly once.
///
/// Exactly once without a cursor of its own: every batch it appends to the second log carries, in the header
/// `source-position` of its last event, the position in the service's log after the last event it delivered,
/// in the same atomic append as the events. A relay that starts (after a crash too) reads that last event and
/// continues from there; what it had read but not appended is read again, what it had appended is never appended
/// twice. The append expects the stream's version the relay last saw, so a second relay on the same logs fails
/// instead of interleaving. Each delivered event keeps its event id (the message id), type, schema version and
/// content type.
///
/// It also commits the cursor `outbox-delivered` of the service's log behind the deliveries, at most once every
/// `cursorInterval` and when it stops, for the lag gauge (`eventlog_cursor_lag_events`) and for retention: the
/// checkpoint it resumes from is the one in the second log, so the cursor only needs to be about right, and under
/// `.always` each commit is a sync of the cursor journal, which the commands' appends would otherwise queue behind.
///
/// Blocking: `run` belongs on a thread of its own (`ThreadService`).
struct LogRelay: Sendable {
    /// The stream of the second log that receives the integration events.
    static let deliveredStream = "delivered"
    /// The header holding the position after the last delivered event.
    static let positionHeader = "source-position"
    /// The service log's cursor committed behind the deliveries.
    static let cursor = "outbox-delivered"
    /// The most events one append to the second log carries.
    static let maxBatch = 256
    /// The most often the cursor is committed.
    static let cursorInterval = Duration.seconds(1)

    let source: Log
    let sink: Log
    let filter: EventFilter
    let logger: Logger

    /// Where the next delivery starts in the service's log, and the version of the delivered stream now.
    func checkpoint() throws -> (position: UInt64, version: UInt64?) {
        guard let last = try sink.events(inStream: Self.deliveredStream, maxCount: 1, direction: .backward).first else {
            return (0, nil)
        }
        guard let header = last.metadata.headers.last(where: { $0.name == Self.positionHeader }), let position = UInt64(header.value) else {
            throw EventLogError.invalidArgument(
                "the last event of stream \(Self.deliveredStream) in \(sink.path) has no \(Self.positionHeader) header")
        }
        return (position, last.version)
    }

    /// Delivers until `shouldStop` returns true (checked at least every 100 ms).
    func run(shouldStop: () -> Bool) throws {
        var (position, version) = try checkpoint()
        _ = try source.createCursor(Self.cursor, at: .position(position))
        let subscription = try source.subscribe(from: .position(position), filter: filter)
        defer { subscription.cancel() }
        logger.info("outbox relay to \(sink.path) starts", metadata: ["position": "\(position)"])
        var batch: [NewEvent] = []
        batch.reserveCapacity(Self.maxBatch)
        var committed = position
        var lastCommit = ContinuousClock.now
        defer { if position > committed { try? source.commitCursor(Self.cursor, position: position) } }
        while !shouldStop() {
            if position > committed && ContinuousClock.now - lastCommit >= Self.cursorInterval {
                try source.commitCursor(Self.cursor, position: position)
                committed = position
                lastCommit = .now
            }
            batch.removeAll(keepingCapacity: true)
            _ = try subscription.poll(maxCount: Self.maxBatch, timeout: .milliseconds(100)) { event in
                var delivered = NewEvent(stream: Self.deliveredStream, type: event.type, data: Array(event.data), timestamp: event.timestamp)
                delivered.metadata = try event.metadata()
                batch.append(delivered)
            }
            guard !batch.isEmpty else { continue }
            let next = subscription.position
            batch[batch.count - 1].metadata.headers.append(EventMetadata.Header(Self.positionHeader, String(next)))
            let result = try sink.append(batch, expecting: [Self.deliveredStream: version.map { .exact($0) } ?? .noStream])
            version = result.versions(of: Self.deliveredStream)?.upperBound
            position = next
        }
    }
}
