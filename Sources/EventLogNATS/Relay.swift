@_spi(EventLogTool) import EventLog
import NATSClient
import Synchronization

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
/// - Each read of the log goes out as one write. While events are in flight,
///   the relay reads again only once a quarter of the window is free, so that
///   a busy relay writes many events at a time rather than one per
///   acknowledgement.
/// - On any failure of the connection (closed, refused, an acknowledgement
///   late by `ackTimeout`, a JetStream error reply) it reconnects with
///   back-off and resends from the last fully acknowledged position.
/// - It connects with `RelayOptions.credentials`. A server that refuses them
///   (`NATSError.authorizationRefused`), or requires TLS, ends `run` at once
///   with `RelayError.nats`, at the first connection or at a reconnect:
///   retrying with the same credentials cannot succeed.
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
                let connection = try NATSConnection.connect(to: url, name: "eventlog-relay", credentials: options.credentials)
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
                // Refused credentials (or a server that requires TLS) stay refused: stop at once, do not retry.
                if error.isAuthenticationFailure { throw RelayError.nats(error) }
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
        // Acknowledgements come back on `<inbox>.<publish number>` through one subscription: no reply handler,
        // reply subject `String` or hash table entry per event.
        let inbox = NATSConnection.newInbox()
        _ = try connection.subscribe(subject: inbox + ".*", handler: tracker.handler(generation: generation, prefixBytes: inbox.utf8.count + 1))
        let subscription = try log.subscribe(from: .position(committed), filter: options.filter)
        defer { subscription.cancel() }
        var encoder = RelayMessageEncoder(
            subjectPrefix: options.subjectPrefix, logID: log.logID, replyPrefix: inbox + ".", maxPayload: connection.info.maxPayload)
        var inFlight = InFlightWindow(capacity: min(options.window, RelayOptions.maxWindow))
        // Publish only once a quarter of the window is free (or nothing is in flight): a full window refilled one
        // acknowledgement at a time would cost a write, and a wake-up of the event loop, per event.
        let refill = max(1, inFlight.capacity / 4)
        var acknowledgedNumbers: [UInt64] = []
        acknowledgedNumbers.reserveCapacity(inFlight.capacity)
        let onAcknowledged = options.onAcknowledged
        var sent = progress.withLock { $0.acknowledged }
        var lastCommit = monotonicNanoseconds()
        var stopping = false
        var stopDeadline: UInt64 = 0
        let ackTimeout = UInt64(max(0, options.ackTimeout.wholeNanoseconds))
        let commitInterval = UInt64(max(0, options.commitInterval.wholeNanoseconds))
        // A read-only log's poll wakes on the writer's appends through its directory watch (`AppendWatch`):
        // the wait bounds only how soon a stop request is seen.
        let idleWait = 0.05
        // Set when the last poll found nothing new while events are in flight: then wait for an acknowledgement
        // (up to a millisecond) rather than spin.
        var awaitingAcks = false

        while true {
            // What may be published now: the window's free room, within `maxEvents`.
            var sendable = inFlight.free
            if let maxEvents = options.maxEvents { sendable = min(sendable, max(0, maxEvents - sent)) }
            // Acknowledgements; wait for them (up to a millisecond) when stopping, when the log had nothing new,
            // or when too little of the window is free to be worth a write.
            var wanted = 0
            if !inFlight.isEmpty {
                if stopping || awaitingAcks {
                    wanted = 1
                } else if sendable < refill {
                    wanted = max(1, refill - inFlight.free)
                }
            }
            let taken = tracker.take(into: &acknowledgedNumbers, atLeast: wanted, waitingUpTo: wanted > 0 ? 0.001 : 0)
            if let failure = taken.failure { throw failure }
            if !acknowledgedNumbers.isEmpty {
                for number in acknowledgedNumbers { _ = inFlight.acknowledge(number) }
                let popped = inFlight.removeAcknowledgedPrefix { position in onAcknowledged?(position) }
                progress.withLock {
                    $0.acknowledged += popped
                    $0.duplicates += taken.duplicates
                }
                backoff.succeeded()
            }
            // Commit what is fully acknowledged.
            let commitPoint = inFlight.oldest?.position ?? subscription.position
            let now = monotonicNanoseconds()
            if commitPoint > committed && (inFlight.isEmpty || now - lastCommit >= commitInterval) {
                try log.commitCursor(options.cursor, position: commitPoint)
                committed = commitPoint
                lastCommit = now
                progress.withLock { $0.committedPosition = commitPoint }
            }
            if let oldest = inFlight.oldest, now - oldest.sentAt > ackTimeout {
                throw NATSError.timeout("JetStream acknowledged nothing for \(options.ackTimeout)")
            }
            if stopping {
                if inFlight.isEmpty || now > stopDeadline { return true }
                continue
            }
            if shouldStop() || options.maxEvents.map({ sent >= $0 }) == true {
                stopping = true
                stopDeadline = now + ackTimeout
                continue
            }
            // Read and publish what the window allows, as one write.
            sendable = inFlight.free
            if let maxEvents = options.maxEvents { sendable = min(sendable, maxEvents - sent) }
            guard sendable > 0, inFlight.isEmpty || sendable >= refill else { continue }
            var out = connection.makeOutbound(capacity: 1024)
            var sentAt: UInt64 = 0
            let delivered = try subscription.poll(maxCount: sendable, timeout: .seconds(inFlight.isEmpty ? idleWait : 0)) { event in
                let first = sentAt == 0
                if first { sentAt = monotonicNanoseconds() }
                try encoder.encode(event, number: inFlight.nextNumber, into: &out)
                let added = inFlight.append(position: event.position, sentAt: sentAt)
                assert(added, "the poll lends at most the window's free room")
                // The first frame's size, times the rest, is about what this batch needs (bounded: frames can be large).
                if first && sendable > 1 { out.reserveCapacity(forAdditional: min((sendable - 1) * (out.byteCount + 64), 4 << 20)) }
            }
            awaitingAcks = delivered == 0 && !inFlight.isEmpty
            if delivered > 0 {
                try connection.send(out)
                sent += delivered
                let count = inFlight.count
                progress.withLock {
                    $0.maxInFlight = max($0.maxInFlight, count)
                    $0.writes += 1
                }
                continue
            }
            if inFlight.isEmpty {
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
