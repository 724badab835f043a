@_spi(EventLogTool) import EventLog
import NATSClient
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Consumes a JetStream stream with a durable pull consumer and appends each
/// message to the local log, once: a message JetStream delivers again (its
/// acknowledgement was lost, or the inbox died between append and
/// acknowledgement, also by kill -9) is recognised by its message id
/// (`Nats-Msg-Id`, else its stream sequence) and only acknowledged.
///
/// - Each fetched batch is appended as one atomic batch and made durable
///   (under `.always` by the append, else by `Log.sync()`) before any of its
///   messages is acknowledged.
/// - A message becomes an event of stream `<intoStreamPrefix><EventLog-Stream
///   header, else the subject>`, of type `EventLog-Type`, else the subject; the
///   other `EventHeaders` give its metadata; any other header that does not
///   start with `Nats-` becomes a free header; and `Nats-Stream`,
///   `Nats-Sequence`, `Nats-Consumer` and `Nats-Msg-Id` (when present) are
///   kept as free headers: they are the deduplication record
///   (`InboxDeduplication`).
/// - Deduplication relies on the durable consumer: deleting and recreating
///   it delivers everything again as new.
/// - It connects with `InboxOptions.credentials`; a server that refuses them
///   (or requires TLS) ends `run` at once with `RelayError.nats`, as for the
///   relay.
///
/// Threads: `run` blocks its calling thread, which does the log work (appends,
/// syncs): call it from a thread of your own. The log must be writable.
public final class Inbox: Sendable {
    /// The log the messages are appended to (writable).
    public let log: Log
    /// The NATS server it connects to.
    public let url: NATSURL
    /// What it consumes and where it appends.
    public let options: InboxOptions
    private let progress = Mutex(InboxStatistics())

    /// An inbox from the server at `url` into `log`. Connects nothing yet: `run` does.
    public init(log: Log, url: NATSURL, options: InboxOptions) {
        self.log = log
        self.url = url
        self.options = options
    }

    /// What the inbox did so far (readable from any thread, also while `run` runs).
    public var statistics: InboxStatistics { progress.withLock { $0 } }

    /// Consumes until `shouldStop` returns true (checked at least every half
    /// second), or `stopWhenIdle` / `maxMessages` says it is done.
    public func run(shouldStop: () -> Bool) throws -> InboxStatistics {
        var dedup: InboxDeduplication
        do {
            dedup = try InboxDeduplication.recover(from: log, cursor: options.cursorName, stream: options.stream, durable: options.durable)
        } catch let error as EventLogError {
            throw RelayError.log(error)
        } catch {
            throw RelayError.other("\(error)")
        }
        progress.withLock { $0.rememberedIDs = dedup.entries.count }
        var backoff = options.backoff
        var connections = 0
        var handled = 0
        while !shouldStop() {
            do {
                let connection = try NATSConnection.connect(to: url, name: "eventlog-inbox", credentials: options.credentials)
                defer { connection.close() }
                connections += 1
                if connections > 1 { progress.withLock { $0.reconnects += 1 } }
                let jetStream = JetStream(connection: connection)
                try ensureConsumer(jetStream)
                let puller = try JetStreamPuller(jetStream: jetStream, stream: options.stream, durable: options.durable, batch: options.batch)
                defer { puller.close() }
                if try session(puller, dedup: &dedup, handled: &handled, backoff: &backoff, shouldStop: shouldStop) { break }
            } catch let error as RelayError {
                throw error
            } catch let error as NATSError {
                // Refused credentials (or a server that requires TLS) stay refused: stop at once, do not retry.
                if error.isAuthenticationFailure { throw RelayError.nats(error) }
                switch error {
                case .invalidArgument, .invalidURL, .payloadTooLarge: throw RelayError.nats(error)
                case .jetStream(let code, _, _) where code == 400 || code == 404: throw RelayError.nats(error)
                default: break
                }
                guard let delay = backoff.failed() else { throw RelayError.gaveUp(attempts: backoff.failures, last: error) }
                var left = delay.timeInterval
                while left > 0 && !shouldStop() {
                    usleep(10_000)
                    left -= 0.01
                }
            } catch let error as EventLogError {
                throw RelayError.log(error)
            } catch {
                throw RelayError.other("\(error)")
            }
        }
        return statistics
    }

    private func ensureConsumer(_ jetStream: JetStream) throws(NATSError) {
        if try jetStream.consumerInfo(stream: options.stream, durable: options.durable) != nil { return }
        let config = JetStreamConsumerConfig(
            durableName: options.durable, ackWaitSeconds: options.ackWait.timeInterval, maxAckPending: options.maxAckPending)
        try jetStream.createConsumer(stream: options.stream, config)
    }

    /// One connection's work; true when the run is finished.
    private func session(
        _ puller: JetStreamPuller, dedup: inout InboxDeduplication, handled: inout Int, backoff: inout Backoff, shouldStop: () -> Bool
    ) throws -> Bool {
        var lastFloorCheck: UInt64 = 0
        let floorInterval = UInt64(max(0, options.ackFloorInterval.wholeNanoseconds))
        while true {
            if shouldStop() { break }
            if let max = options.maxMessages, handled >= max { break }
            let want = options.maxMessages.map { min(options.batch, $0 - handled) } ?? options.batch
            let messages = try puller.next(maxCount: want, timeout: 0.5)
            let now = monotonicNanoseconds()
            if now - lastFloorCheck >= floorInterval || messages.isEmpty {
                try forgetAcknowledged(puller.jetStream, dedup: &dedup)
                lastFloorCheck = now
            }
            if messages.isEmpty {
                if options.stopWhenIdle && puller.lastRequestWasEmpty { break }
                continue
            }
            try append(messages, dedup: &dedup)
            try options.beforeAcknowledging?(messages.count)
            try puller.ack(messages)
            handled += messages.count
            backoff.succeeded()
        }
        // Make sure the acknowledgements reached the server before returning.
        try puller.jetStream.connection.flush()
        try forgetAcknowledged(puller.jetStream, dedup: &dedup)
        return true
    }

    /// Appends the messages not appended before, as one batch, and makes it durable.
    private func append(_ messages: [JetStreamMessage], dedup: inout InboxDeduplication) throws {
        var events: [NewEvent] = []
        var keys: [(String, UInt64)] = []
        var seen = Set<String>()
        var duplicates = 0
        for message in messages {
            let headers = message.headers
            let messageID = headers?[InboxDeduplication.messageIDHeader]
            let key = InboxDeduplication.key(messageID: messageID, sequence: message.streamSequence)
            if dedup.contains(key) || !seen.insert(key).inserted {
                duplicates += 1
                continue
            }
            var metadata = EventHeaders.metadata(from: headers)
            if metadata.eventID == nil, let messageID { metadata.eventID = UUIDText.parse(messageID) }
            metadata.headers.append(.init(InboxDeduplication.streamHeader, message.stream))
            metadata.headers.append(.init(InboxDeduplication.sequenceHeader, String(message.streamSequence)))
            metadata.headers.append(.init(InboxDeduplication.consumerHeader, options.durable))
            if let messageID { metadata.headers.append(.init(InboxDeduplication.messageIDHeader, messageID)) }
            let stream = headers?[EventHeaders.stream].map(EventHeaders.decode) ?? message.subject
            let type = headers?[EventHeaders.type].map(EventHeaders.decode) ?? message.subject
            events.append(NewEvent(stream: options.intoStreamPrefix + stream, type: type, data: message.payload, metadata: metadata))
            keys.append((key, message.streamSequence))
        }
        if !events.isEmpty {
            let positions = try log.append(events)
            if log.options.durability != .always { try log.sync() }
            for (offset, (key, sequence)) in keys.enumerated() {
                dedup.insert(key, sequence: sequence, position: positions.lowerBound + UInt64(offset))
            }
        }
        let appended = events.count
        progress.withLock {
            $0.appended += appended
            $0.duplicates += duplicates
            $0.rememberedIDs = dedup.entries.count
        }
    }

    /// Reads the consumer's ack floor, forgets the ids at or below it, and moves the cursor to the first event still needed.
    private func forgetAcknowledged(_ jetStream: JetStream, dedup: inout InboxDeduplication) throws {
        guard let info = try jetStream.consumerInfo(stream: options.stream, durable: options.durable) else {
            throw NATSError.jetStream(code: 404, errorCode: JetStream.consumerNotFound, description: "consumer \(options.durable) was deleted")
        }
        let needed = dedup.forget(atOrBelow: info.ackFloor.streamSequence) ?? log.endPosition
        if needed > (try log.cursorPosition(options.cursorName) ?? 0) {
            try log.commitCursor(options.cursorName, position: needed)
        }
        let remembered = dedup.entries.count
        progress.withLock { $0.rememberedIDs = remembered }
    }
}

import struct Foundation.UUID

/// A message id that is a UUID (as the relay sends an event id) becomes the local event's id.
enum UUIDText {
    static func parse(_ text: String) -> UUID? { text.utf8.count == 36 ? UUID(uuidString: text) : nil }
}
