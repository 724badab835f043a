import Foundation
import Synchronization
import Testing
@testable import EventLog
@testable import EventLogNATS
import NATSClient

/// The inbox against a real `nats-server -js` (skipped when none is installed):
/// every message appended once, also when JetStream delivers it again after the
/// inbox died between its append and its acknowledgement (kill -9 included).
@Suite(.serialized, .enabled(if: NATSServerProcess.isAvailable, NATSServerProcess.skipMessage))
struct NATSInboxTests {
    struct Stop: Error {}

    /// Publishes `count` messages on `in.<n % 5>`: every third without a `Nats-Msg-Id` (deduplicated by its stream sequence).
    static func publish(_ server: NATSServerProcess, stream: String, count: Int, random: inout SplitMix64) throws {
        let connection = try NATSConnection.connect(to: server.url)
        defer { connection.close() }
        let jetStream = JetStream(connection: connection)
        try jetStream.ensureStream(JetStreamStreamConfig(name: stream, subjects: ["in.>"]))
        var n = 0
        while n < count {
            let acks = Mutex<(ok: Int, failed: Int)>((0, 0))
            let chunk = min(500, count - n)
            try connection.send { out throws(NATSError) in
                for i in n..<(n + chunk) {
                    var headers = NATSHeaders()
                    if i % 3 != 0 { headers.append("Nats-Msg-Id", "msg-\(i)") }
                    headers.append("EventLog-Type", "Incoming")
                    headers.append("tenant", "t\(random.next() % 4)")
                    try out.request(subject: "in.\(i % 5)", headers: headers, payload: Array("payload-\(i)".utf8)) { result in
                        let ok = (try? JetStreamPublishAck.parse(result.get())) != nil
                        acks.withLock { ok ? ($0.ok += 1) : ($0.failed += 1) }
                    }
                }
            }
            let deadline = Date(timeIntervalSinceNow: 10)
            while acks.withLock({ $0.ok + $0.failed }) < chunk && Date() < deadline { usleep(1000) }
            #expect(acks.withLock { $0 } == (chunk, 0))
            n += chunk
        }
    }

    /// Checks that the log holds each of the `count` messages exactly once, with its payload.
    static func expectEachOnce(_ log: Log, count: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let events = try log.events(from: 0)
        var bySequence: [UInt64: Int] = [:]
        for event in events {
            guard let sequence = event.metadata[header: "Nats-Sequence"].flatMap(UInt64.init) else { continue }
            bySequence[sequence, default: 0] += 1
            let i = Int(sequence) - 1
            #expect(event.data == Array("payload-\(i)".utf8), sourceLocation: sourceLocation)
            #expect(event.stream == "in.\(i % 5)" && event.type == "Incoming", sourceLocation: sourceLocation)
        }
        #expect(events.count == count, "the log holds \(events.count) events for \(count) messages", sourceLocation: sourceLocation)
        #expect(bySequence.count == count && bySequence.values.allSatisfy { $0 == 1 },
                "appended twice: \(bySequence.filter { $0.value > 1 }.count)", sourceLocation: sourceLocation)
    }

    /// The inbox stops after appending (durably) and before acknowledging;
    /// JetStream delivers that batch again to the next run, which appends nothing twice.
    @Test func aBatchDeliveredAgainAfterItsAppendIsNotAppendedTwice() throws {
        let dir = TemporaryDirectory("nats-inbox")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"))
        try server.start()
        var random = SplitMix64(seed: 5)
        let total = 1000
        try Self.publish(server, stream: "IN", count: total, random: &random)
        let path = dir.sub("log")

        var first = InboxOptions(stream: "IN", durable: "worker", batch: 100, ackWait: .seconds(1))
        // Handled so far and the size of the batch being acknowledged when it stopped.
        let seen = Mutex<(handled: Int, last: Int)>((0, 0))
        first.beforeAcknowledging = { count in
            let stop = seen.withLock { s -> Bool in
                s.handled += count
                s.last = count
                return s.handled >= 300
            }
            if stop { throw Stop() }
        }
        var log: Log? = try Log.open(at: path)
        #expect(throws: RelayError.self) { _ = try Inbox(log: log!, url: server.url, options: first).run { false } }
        let (handled, unacknowledged) = seen.withLock { $0 }
        #expect(try log!.events(from: 0).count == handled)
        // Abandon the log without closing it (as a crash would), then open it again.
        #expect(CrashFixtures.abandon(&log))
        let reopened = try Log.open(at: path)
        let inbox = Inbox(log: reopened, url: server.url, options: InboxOptions(stream: "IN", durable: "worker", batch: 100, ackWait: .seconds(1)))
        // It ends once all was appended and the unacknowledged batch came again (after the 1 s ack wait).
        let deadline = Date(timeIntervalSinceNow: 30)
        let stats = try inbox.run {
            let s = inbox.statistics
            return (s.appended >= total - handled && s.duplicates >= unacknowledged) || Date() > deadline
        }
        #expect(stats.appended == total - handled)
        #expect(stats.duplicates == unacknowledged && unacknowledged > 0)
        try Self.expectEachOnce(reopened, count: total)
        let connection = try NATSConnection.connect(to: server.url)
        defer { connection.close() }
        let info = try #require(try JetStream(connection: connection).consumerInfo(stream: "IN", durable: "worker"))
        #expect(info.numAckPending == 0 && info.numPending == 0)
        try reopened.close()
    }

    /// kill -9 of `eventlog inbox` at seeded random moments; then a last run
    /// after the ack wait: each message once in the log, none left unacknowledged.
    @Test func eachMessageOnceAcrossKill9OfTheInbox() throws {
        let dir = TemporaryDirectory("nats-inbox-kill")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"))
        try server.start()
        var random = SplitMix64(seed: 99)
        let total = 5000
        try Self.publish(server, stream: "IN", count: total, random: &random)
        let path = dir.sub("log")
        let arguments = ["inbox", path, "--nats", server.urlText, "--stream", "IN", "--durable", "worker", "--batch", "50", "--ack-wait", "1"]
        for round in 0..<4 {
            let child = try CLIProcess.start(arguments)
            usleep(UInt32(30_000 + random.next() % 120_000))
            let output = child.kill()
            #expect(output?.signaled == true, "round \(round): \(output.map(String.init(describing:)) ?? "")")
        }
        // Past the ack wait, what the killed runs appended and did not acknowledge is delivered again.
        usleep(1_300_000)
        let final = try CLIProcess.run(arguments + ["--stop-when-idle"], timeout: 60)
        #expect(final.status == 0, "\(final)")
        let log = try Log.open(at: path)
        try Self.expectEachOnce(log, count: total)
        try log.close()
        let connection = try NATSConnection.connect(to: server.url)
        defer { connection.close() }
        let info = try #require(try JetStream(connection: connection).consumerInfo(stream: "IN", durable: "worker"))
        #expect(info.numAckPending == 0 && info.numPending == 0, "pending \(info.numPending), unacknowledged \(info.numAckPending)")
    }
}
