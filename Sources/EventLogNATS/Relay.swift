@_spi(EventLogTool) import EventLog
import NATSClient
import Synchronization
import struct Foundation.UUID

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The transactional outbox's relay: publishes the log's events to JetStream,
/// at least once, in log order, committing a durable cursor behind JetStream's
/// acknowledgements.
///
/// - Each event goes to `<subjectPrefix><stream>` with `EventHeaders` (among
///   them `Nats-Msg-Id`: the event id, else `<log id>-<position>`), so that
///   JetStream drops what is sent again after a reconnect or a crash (within
///   its duplicate window).
/// - Up to `RelayOptions.window` events are in flight; the cursor is committed
///   at position P only once every event before P that passes the filter was
///   acknowledged. A crash loses nothing: the next run starts at the committed
///   position and sends again what was not acknowledged.
/// - On any failure of the connection (closed, refused, an acknowledgement
///   late by `ackTimeout`, a JetStream error reply) it reconnects with
///   back-off and resends from the last fully acknowledged position.
///
/// Threads: `run` blocks its calling thread, which does all the log work
/// (reads, cursor commits): call it from a thread of your own, not from an
/// event loop or Swift concurrency's pool. NATS I/O runs on swift-nio's event
/// loop. `statistics` may be read from any thread.
public final class Relay: Sendable {
    /// The log whose events are published (read, and its cursor committed).
    public let log: Log
    /// The NATS server it connects to.
    public let url: NATSURL
    /// What it reads and where it publishes.
    public let options: RelayOptions
    private let progress = Mutex(RelayStatistics())
    private let tracker = AckTracker()

    /// A relay of `log` to the server at `url`. Connects nothing yet: `run` does.
    public init(log: Log, url: NATSURL, options: RelayOptions) {
        self.log = log
        self.url = url
        self.options = options
    }

    /// What the relay did so far.
    public var statistics: RelayStatistics { progress.withLock { $0 } }

    /// Relays until `shouldStop` returns true (checked every few milliseconds),
    /// or `stopWhenIdle` / `maxEvents` says it is done; then waits (up to the ack
    /// timeout) for the events in flight, commits, and returns.
    public func run(shouldStop: () -> Bool) throws -> RelayStatistics {
        let start: UInt64
        do {
            start = try log.createCursor(options.cursor, at: .start)
        } catch let error as EventLogError {
            throw RelayError.log(error)
        } catch {
            throw RelayError.other("\(error)")
        }
        var committed = start
        progress.withLock { $0.committedPosition = start }
        var backoff = options.backoff
        var connections = 0
        while !shouldStop() {
            do {
                let connection = try NATSConnection.connect(to: url, name: "eventlog-relay")
                defer { connection.close() }
                connections += 1
                if connections > 1 { progress.withLock { $0.reconnects += 1 } }
                if let name = options.createStream {
                    var config = JetStreamStreamConfig(name: name, subjects: [options.subjectPrefix + ">"])
                    config.duplicateWindow = options.duplicateWindow.map { $0.wholeNanoseconds }
                    try JetStream(connection: connection).ensureStream(config)
                }
                if try session(on: connection, committed: &committed, backoff: &backoff, shouldStop: shouldStop) { break }
            } catch let error as RelayError {
                throw error
            } catch let error as NATSError {
                switch error {
                case .invalidArgument, .invalidURL, .payloadTooLarge: throw RelayError.nats(error)
                case .jetStream(let code, _, _) where code == 400: throw RelayError.nats(error)
                default: break
                }
                guard let delay = backoff.failed() else { throw RelayError.gaveUp(attempts: backoff.failures, last: error) }
                sleepChecking(seconds: delay.timeInterval, shouldStop: shouldStop)
            } catch let error as EventLogError {
                throw RelayError.log(error)
            } catch {
                throw RelayError.other("\(error)")
            }
        }
        return statistics
    }

    /// One connection's work; returns true when the run is finished (stop,
    /// idle or max events), throws to reconnect.
    private func session(
        on connection: NATSConnection, committed: inout UInt64, backoff: inout Backoff, shouldStop: () -> Bool
    ) throws -> Bool {
        let generation = tracker.begin()
        let subscription = try log.subscribe(from: .position(committed), filter: options.filter)
        defer { subscription.cancel() }
        let logID = log.logID
        let logIDText = logID.uuidString
        let prefix = options.subjectPrefix
        let limit = connection.info.maxPayload
        var inflight: [(position: UInt64, sentAt: UInt64)] = []
        var head = 0
        var acked = Set<UInt64>()
        var sent = progress.withLock { $0.acknowledged }
        var lastCommit = monotonicNanoseconds()
        var stopping = false
        var stopDeadline: UInt64 = 0
        let ackTimeout = UInt64(max(0, options.ackTimeout.wholeNanoseconds))
        // A read-only log's poll wakes on the writer's appends through its directory watch (`AppendWatch`):
        // the wait bounds only how soon a stop request is seen.
        let idleWait = 0.05
        // Set when the last poll found nothing new while events are in flight: then wait for an acknowledgement
        // (up to a millisecond) rather than spin.
        var awaitingAcks = false

        while true {
            let inFlight = inflight.count - head
            // Acknowledgements: pop the acknowledged prefix.
            let taken = tracker.take(waitingUpTo: inFlight > 0 && (inFlight >= options.window || stopping || awaitingAcks) ? 0.001 : 0)
            if let failure = taken.failure { throw failure }
            if !taken.acked.isEmpty {
                acked.formUnion(taken.acked)
                var popped = 0
                while head < inflight.count, acked.remove(inflight[head].position) != nil {
                    options.onAcknowledged?(inflight[head].position)
                    head += 1
                    popped += 1
                }
                if head > 4096 && head * 2 > inflight.count {
                    inflight.removeFirst(head)
                    head = 0
                }
                progress.withLock {
                    $0.acknowledged += popped
                    $0.duplicates += taken.duplicates
                }
                backoff.succeeded()
            }
            let pending = inflight.count - head
            // Commit what is fully acknowledged.
            let commitPoint = pending > 0 ? inflight[head].position : subscription.position
            let now = monotonicNanoseconds()
            if commitPoint > committed && (pending == 0 || now - lastCommit >= UInt64(max(0, options.commitInterval.wholeNanoseconds))) {
                try log.commitCursor(options.cursor, position: commitPoint)
                committed = commitPoint
                lastCommit = now
                progress.withLock { $0.committedPosition = commitPoint }
            }
            if pending > 0 && now - inflight[head].sentAt > ackTimeout {
                throw NATSError.timeout("JetStream acknowledged nothing for \(options.ackTimeout)")
            }
            if stopping {
                if pending == 0 || now > stopDeadline { return true }
                continue
            }
            if shouldStop() || options.maxEvents.map({ sent >= $0 }) == true {
                stopping = true
                stopDeadline = now + ackTimeout
                continue
            }
            // Read and publish what the window allows.
            var free = options.window - pending
            if let maxEvents = options.maxEvents { free = min(free, maxEvents - sent) }
            guard free > 0 else { continue }
            var frames = NATSOutboundBatch()
            let sentAt = monotonicNanoseconds()
            let delivered = try subscription.poll(maxCount: free, timeout: .seconds(pending == 0 ? idleWait : 0)) { event in
                let metadata = event.metadataBytes.isEmpty ? nil : try event.metadata()
                let block = EventHeaders.block(for: event, metadata: metadata, logID: logIDText, logIDValue: logID)
                let bytes = block.count + event.data.count
                guard bytes <= limit else { throw RelayError.eventTooLarge(position: event.position, bytes: bytes, limit: limit) }
                frames.add(
                    subject: SubjectEncoding.subject(prefix: prefix, stream: event.streamBytes), headerBlock: block, payload: event.data,
                    position: event.position)
                inflight.append((event.position, sentAt))
            }
            awaitingAcks = delivered == 0 && pending > 0
            if delivered > 0 {
                try connection.send { out throws(NATSError) in
                    try frames.encode(into: &out, tracker: tracker, generation: generation)
                }
                sent += delivered
                let now = inflight.count - head
                progress.withLock { $0.maxInFlight = max($0.maxInFlight, now) }
                continue
            }
            if pending == 0 {
                if log.options.readOnly, try log.refresh() { continue }
                if options.stopWhenIdle && subscription.position >= log.endPosition && committed >= subscription.position {
                    return true
                }
            }
        }
    }

    private func sleepChecking(seconds: Double, shouldStop: () -> Bool) {
        var left = seconds
        while left > 0 && !shouldStop() {
            let step = min(left, 0.01)
            usleep(UInt32(step * 1_000_000))
            left -= step
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
