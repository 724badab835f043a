import Foundation
import Synchronization
import Testing
@testable import EventLog
@testable import EventLogNATS
import NATSClient

/// The relay against a real `nats-server -js` (skipped when none is installed):
/// headers, order per subject, exactly once in JetStream across kill -9 of the
/// relay and a restart of the server, and a bounded window against a stalled server.
@Suite(.serialized, .enabled(if: NATSServerProcess.isAvailable, NATSServerProcess.skipMessage))
struct NATSRelayTests {
    /// An event with every kind of metadata the relay carries, some odd names among them.
    static func richEvent(_ i: Int, random: inout SplitMix64) -> NewEvent {
        let streams = ["order-1", "order-2", "eu.order-3", "odd stream*>%", "customer-9"]
        let stream = streams[Int(random.next() % UInt64(streams.count))]
        var metadata = EventMetadata()
        if i % 3 == 0 { metadata.eventID = UUID(uuid: Self.uuidBytes(i)) }
        if i % 2 == 0 { metadata.schemaVersion = UInt32(i % 5 + 1) }
        if i % 4 == 0 { metadata.contentType = "application/json" }
        if i % 5 == 0 { metadata.correlationID = "corr-\(i)" }
        if i % 7 == 0 { metadata.causationID = "cause %\(i)" }
        if i % 2 == 1 { metadata.headers = [.init("tenant", "acme-\(i % 3)"), .init("odd name:%", "line\r\nbreak ü")] }
        let size = Int(random.next() % 300)
        let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
        return NewEvent(stream: stream, type: i % 2 == 0 ? "OrderPlaced" : "OrderShipped", data: data, metadata: metadata)
    }

    static func uuidBytes(_ i: Int) -> uuid_t {
        let b = withUnsafeBytes(of: UInt64(i).bigEndian) { Array($0) }
        return (0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0x4D, 0xEF, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7])
    }

    static func relayOptions(_ prefix: String = "orders.", window: Int = 64, stream: String = "ORDERS") -> RelayOptions {
        RelayOptions(subjectPrefix: prefix, cursor: "relay", window: window, createStream: stream, stopWhenIdle: true)
    }

    @Test func headersAndOrderRoundTripThroughJetStreamAndTheInbox() throws {
        let dir = TemporaryDirectory("nats-relay")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"))
        try server.start()
        let log = try Log.open(at: dir.sub("log"))
        var random = SplitMix64(seed: 2024)
        let count = 600
        var expected: [NewEvent] = []
        for start in stride(from: 0, to: count, by: 50) {
            let batch = (start..<(start + 50)).map { Self.richEvent($0, random: &random) }
            expected += batch
            try log.append(batch)
        }
        try log.deleteStream("customer-9")  // a marker: not relayed, but the cursor passes it
        let relay = Relay(log: log, url: server.url, options: Self.relayOptions(window: 37))
        let stats = try relay.run { false }
        #expect(stats.acknowledged == count)
        #expect(stats.committedPosition == log.endPosition)
        #expect(try log.cursorPosition("relay") == log.endPosition)
        #expect(stats.maxInFlight <= 37)

        let messages = try JetStreamContents.all(server, stream: "ORDERS", expected: count)
        #expect(messages.count == count)
        var lastPositionBySubject: [String: UInt64] = [:]
        for (n, message) in messages.enumerated() {
            guard let headers = message.headers, let position = headers[EventHeaders.position].flatMap(UInt64.init), position < UInt64(count)
            else { Issue.record("message \(n) without a position header"); continue }
            let event = expected[Int(position)]
            let stored = try log.event(at: position)
            #expect(message.subject == SubjectEncoding.subject(prefix: "orders.", stream: event.stream))
            #expect(message.payload == event.data)
            #expect(EventHeaders.decode(headers[EventHeaders.stream] ?? "") == event.stream)
            #expect(headers[EventHeaders.type] == event.type)
            #expect(headers[EventHeaders.version] == String(stored.version))
            #expect(headers[EventHeaders.timestamp] == String(stored.timestamp))
            #expect(headers[EventHeaders.logID] == log.logID.uuidString)
            #expect(headers[EventHeaders.messageID] == EventHeaders.messageID(eventID: event.metadata.eventID, logID: log.logID, position: position))
            var metadata = EventHeaders.metadata(from: headers)
            #expect(metadata == event.metadata, "position \(position)")
            metadata.headers.removeAll()
            // Order per subject: positions rise with the stream sequence.
            if let last = lastPositionBySubject[message.subject] { #expect(position > last) }
            lastPositionBySubject[message.subject] = position
        }
        #expect(Set(messages.compactMap { $0.headers?[EventHeaders.position] }).count == count)
        #expect(messages.first?.subject == SubjectEncoding.subject(prefix: "orders.", stream: expected[0].stream))
        #expect(SubjectEncoding.subject(prefix: "orders.", stream: "odd stream*>%") == "orders.odd%20stream%2A%3E%25")

        // The inbox brings them back into another log with the same fields.
        let target = try Log.open(at: dir.sub("inbox"))
        let inbox = Inbox(log: target, url: server.url, options: InboxOptions(stream: "ORDERS", durable: "copy", batch: 128, stopWhenIdle: true))
        let inboxStats = try inbox.run { false }
        #expect(inboxStats.appended == count && inboxStats.duplicates == 0)
        let copied = try target.events(from: 0)
        #expect(copied.count == count)
        for event in copied {
            guard let position = event.metadata[header: "Nats-Sequence"].flatMap(UInt64.init).map({ $0 - 1 }), position < UInt64(count) else {
                Issue.record("copied event without its sequence")
                continue
            }
            let original = expected[Int(position)]
            #expect(event.stream == original.stream && event.type == original.type && event.data == original.data)
            var metadata = event.metadata
            metadata.headers.removeAll { $0.name.hasPrefix("Nats-") }
            if original.metadata.eventID == nil {
                // Its message id was <log id>-<position>, not a UUID: no event id.
                #expect(metadata == original.metadata)
            } else {
                #expect(metadata == original.metadata)
            }
        }
        try target.close()
        try log.close()
    }

    @Test func filtersPublishSomeAndStillMoveTheCursor() throws {
        let dir = TemporaryDirectory("nats-filter")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"))
        try server.start()
        let log = try Log.open(at: dir.sub("log"))
        try Fixtures.append(log, 0..<700, batch: 70)  // streams stream-0...6, types Type0...2
        var options = Self.relayOptions("f.", stream: "F")
        options.filter = EventFilter(streamPrefix: "stream-1", types: ["Type2"])
        let stats = try Relay(log: log, url: server.url, options: options).run { false }
        let expected = (0..<700).filter { $0 % 7 == 1 && $0 % 3 == 2 }
        #expect(stats.acknowledged == expected.count)
        #expect(try log.cursorPosition("relay") == 700)
        let messages = try JetStreamContents.all(server, stream: "F", expected: expected.count)
        #expect(messages.compactMap { $0.headers?[EventHeaders.position].flatMap(Int.init) } == expected)
        try log.close()
    }

    /// While events are in flight, the relay refills the window only once a quarter of it is free, so that
    /// a write carries many events rather than one per acknowledgement: with the events already in the log,
    /// every write but the last carries at least a quarter window.
    @Test(arguments: [1, 10, 64, 256])
    func writesCarryAQuarterWindowAtLeast(window: Int) throws {
        let dir = TemporaryDirectory("nats-writes")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"))
        try server.start()
        let log = try Log.open(at: dir.sub("log"))
        let total = 3000
        try Fixtures.append(log, 0..<total, batch: 500)
        let stats = try Relay(log: log, url: server.url, options: Self.relayOptions("w.", window: window, stream: "W")).run { false }
        #expect(stats.acknowledged == total)
        #expect(stats.maxInFlight <= window)
        let quarter = max(1, window / 4)
        #expect(stats.writes <= total / quarter + 1, "\(stats.writes) writes for \(total) events, window \(window)")
        #expect(try JetStreamContents.all(server, stream: "W", expected: total).count == total)
        try log.close()
    }

    /// kill -9 of the relay process at seeded random moments, while the test
    /// appends beside it: afterwards JetStream holds every event exactly once,
    /// in order per subject.
    @Test func exactlyOnceAcrossKill9OfTheRelay() throws {
        let dir = TemporaryDirectory("nats-kill")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"))
        try server.start()
        let logPath = dir.sub("log")
        let log = try Log.open(at: logPath)
        var random = SplitMix64(seed: 77)
        let total = 6000
        var appended = 0
        let arguments = [
            "relay", logPath, "--nats", server.urlText, "--subject-prefix", "k.", "--cursor", "relay", "--create-stream", "K", "--window", "64",
        ]
        var kills = 0
        for round in 0..<4 {
            let child = try CLIProcess.start(arguments)
            // Append a share of the events while the relay runs; halfway, stall the server, so that the
            // relay has events in flight that the server never stores when it is killed below (they die
            // with it): only a cursor committed behind the acknowledgements keeps them. The stall outlasts
            // the relay's commit interval (50 ms).
            let share = total / 4
            for start in stride(from: appended, to: appended + share, by: 100) {
                if start - appended == 700 {
                    // The relay works in this round: it commits what it relayed so far. Then the stall.
                    try Self.waitUntil(timeout: 20) { Self.committed(logPath) >= UInt64(start - 100) }
                    server.stall()
                }
                try Fixtures.append(log, start..<(start + 100), batch: 100)
                usleep(UInt32(random.next() % 5_000))
            }
            appended += share
            usleep(UInt32(60_000 + random.next() % 60_000))
            let output = child.kill()
            #expect(output?.signaled == true, "round \(round): the relay ended before the kill: \(output.map(String.init(describing:)) ?? "")")
            kills += 1
            if round % 2 == 1 { try server.restart() } else { server.resume() }
        }
        let final = try CLIProcess.run(arguments + ["--stop-when-idle"], timeout: 60)
        #expect(final.status == 0, "\(final)")
        #expect(kills == 4)
        let messages = try JetStreamContents.all(server, stream: "K", expected: total)
        let positions = messages.compactMap { $0.headers?[EventHeaders.position].flatMap(Int.init) }
        #expect(positions.count == total)
        #expect(Set(positions).count == total, "duplicates in JetStream: \(positions.count - Set(positions).count)")
        #expect(Set(0..<total).subtracting(positions).isEmpty, "missing from JetStream: \(Set(0..<total).subtracting(positions).count) events")
        Self.expectOrderPerSubject(messages)
        // The committed cursor is at the end; a crash never committed past an unacknowledged event.
        let reader = try Log.open(at: logPath, options: LogOptions(createIfMissing: false, readOnly: true))
        #expect(try reader.cursorPosition("relay") == UInt64(total))
        try reader.close()
        try log.close()
    }

    /// The relay cursor's committed position, as another process sees it.
    static func committed(_ path: String) -> UInt64 {
        guard let log = try? Log.open(at: path, options: LogOptions(createIfMissing: false, readOnly: true)) else { return 0 }
        defer { try? log.close() }
        return (try? log.cursorPosition("relay") ?? 0) ?? 0
    }

    static func expectOrderPerSubject(_ messages: [JetStreamMessage], sourceLocation: SourceLocation = #_sourceLocation) {
        var last: [String: Int] = [:]
        var disorder = 0
        for message in messages {
            guard let position = message.headers?[EventHeaders.position].flatMap(Int.init) else { continue }
            if let previous = last[message.subject], previous >= position { disorder += 1 }
            last[message.subject] = position
        }
        #expect(disorder == 0, "messages out of order per subject: \(disorder)", sourceLocation: sourceLocation)
    }

    /// The server is killed and restarted while the relay runs: it reconnects
    /// and JetStream still holds every event exactly once.
    @Test func exactlyOnceAcrossARestartOfTheServer() throws {
        let dir = TemporaryDirectory("nats-restart")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"))
        try server.start()
        let log = try Log.open(at: dir.sub("log"))
        let total = 4000
        try Fixtures.append(log, 0..<total, batch: 200)
        var options = Self.relayOptions("r.", window: 16, stream: "R")
        options.stopWhenIdle = false
        options.backoff = Backoff(initial: .milliseconds(20), maximum: .milliseconds(200), maxAttempts: 200)
        options.ackTimeout = .seconds(2)
        let relay = Relay(log: log, url: server.url, options: options)
        let stop = Atomic<Bool>(false)
        let thread = BackgroundThread { try relay.run { stop.load(ordering: .relaxed) } }
        // Each time the server is stalled first, so that the relay has a window of events in flight
        // that the killed server never stores: they must be sent again after the restart.
        try Self.waitUntil(timeout: 20) { relay.statistics.acknowledged >= 500 }
        server.stall()
        usleep(100_000)
        try server.restart()
        try Self.waitUntil(timeout: 20) { relay.statistics.acknowledged >= 2000 }
        server.stall()
        usleep(100_000)
        try server.restart()
        try Self.waitUntil(timeout: 30) { relay.statistics.committedPosition == UInt64(total) }
        stop.store(true, ordering: .relaxed)
        let stats = try #require(thread.join(timeout: 20)).get()
        #expect(stats.reconnects >= 2)
        let messages = try JetStreamContents.all(server, stream: "R", expected: total)
        let positions = messages.compactMap { $0.headers?[EventHeaders.position].flatMap(Int.init) }
        #expect(positions.count == total, "JetStream holds \(positions.count) messages")
        #expect(Set(0..<total).subtracting(positions).isEmpty, "missing from JetStream: \(Set(0..<total).subtracting(positions).count) events")
        Self.expectOrderPerSubject(messages)
        try log.close()
    }

    /// A server that stops answering (SIGSTOP) does not make the relay read
    /// ahead: at most the window is in flight, the cursor stays behind the
    /// acknowledgements, and everything flows again after SIGCONT.
    @Test func aStalledServerHoldsTheRelayAtItsWindow() throws {
        let dir = TemporaryDirectory("nats-stall")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"))
        try server.start()
        let log = try Log.open(at: dir.sub("log"))
        let total = 10_000
        try Fixtures.append(log, 0..<total, batch: 1000, size: 2000)
        var options = Self.relayOptions("s.", window: 32, stream: "S")
        options.ackTimeout = .seconds(60)
        let relay = Relay(log: log, url: server.url, options: options)
        let stop = Atomic<Bool>(false)
        let thread = BackgroundThread { try relay.run { stop.load(ordering: .relaxed) } }
        try Self.waitUntil(timeout: 20) { relay.statistics.acknowledged >= 1000 }
        server.stall()
        usleep(300_000)
        let frozen = relay.statistics
        usleep(700_000)
        let stillFrozen = relay.statistics
        // Nothing is acknowledged while the server is stopped, and the cursor does not move past what was.
        #expect(stillFrozen.acknowledged == frozen.acknowledged)
        #expect(stillFrozen.committedPosition <= UInt64(stillFrozen.acknowledged))
        #expect(stillFrozen.maxInFlight <= 32)
        #expect(stillFrozen.acknowledged < total)
        server.resume()
        let result = try #require(thread.join(timeout: 60)).get()
        #expect(result.acknowledged == total)
        #expect(result.maxInFlight <= 32)
        #expect(try log.cursorPosition("relay") == UInt64(total))
        let info = try NATSConnection.connect(to: server.url)
        defer { info.close() }
        #expect(try JetStream(connection: info).streamInfo("S")?.state.messages == UInt64(total))
        try log.close()
    }

    @Test func refusedConnectionEndsTheCommandWithExitTwo() throws {
        let dir = TemporaryDirectory("nats-refused")
        let log = try Log.open(at: dir.sub("log"))
        try Fixtures.append(log, 0..<3, batch: 3)
        try log.close()
        let port = try NATSServerProcess.freePort()
        let output = try CLIProcess.run(
            ["relay", dir.sub("log"), "--nats", "nats://127.0.0.1:\(port)", "--subject-prefix", "x.", "--cursor", "c", "--connect-attempts", "2"],
            timeout: 30)
        #expect(output.status == 2 && !output.signaled, "\(output)")
        #expect(output.stderr.contains("eventlog relay: gave up after 2 failed attempts"), "\(output.stderr)")
        let usage = try CLIProcess.run(["relay", dir.sub("log"), "--subject-prefix", "x", "--cursor", "c", "--create-stream", "X"])
        #expect(usage.status == 2 && usage.stderr.contains("--create-stream needs"), "\(usage)")
    }

    static func waitUntil(timeout: Double, _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !condition() {
            if Date() > deadline {
                Issue.record("condition not met within \(timeout) s", sourceLocation: sourceLocation)
                throw CLIProcessError(description: "timeout")
            }
            usleep(5_000)
        }
    }
}
