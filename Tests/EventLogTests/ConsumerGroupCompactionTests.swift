import Foundation
import Testing
@testable import EventLog

/// A consumer group whose pending events compaction removes (their stream
/// deleted, then scavenged) goes on delivering the rest: found by the soak
/// (`receive` failed with `positionRemoved` for good).
@Suite struct ConsumerGroupCompactionTests {
    @Test func eventsScavengedWhilePendingAreDroppedAndTheRestIsDelivered() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: RetentionTests.options())
        defer { try? log.close() }
        // Two streams interleaved: every segment holds both.
        for first in stride(from: 0, to: 400, by: 10) {
            try log.append((first..<(first + 10)).map { i in
                NewEvent(stream: i % 2 == 0 ? "gone" : "kept", type: "T", data: Array(repeating: UInt8(i % 251), count: 100))
            })
        }
        let group = try log.consumerGroup("g")
        // One delivery; the group reads more than that into its pending set.
        let firstDelivery = try #require(try group.receive(maxCount: 1, timeout: .seconds(1)).first)
        try group.ack(firstDelivery.event.position)
        _ = try log.deleteStream("gone")
        let result = try log.compact()
        #expect(result.eventsScavenged > 0)

        var delivered: [UInt64] = [firstDelivery.event.position]
        while true {
            let batch = try group.receive(maxCount: 16, timeout: .milliseconds(200))
            if batch.isEmpty { break }
            for delivery in batch {
                delivered.append(delivery.event.position)
                try group.ack(delivery.event.position)
            }
        }
        let kept = try log.events(from: 0).filter { $0.stream == "kept" }.map(\.position)
        #expect(Set(kept).isSubset(of: Set(delivered)), "every kept event is delivered")
        #expect(delivered.count == Set(delivered).count, "once each")
    }
}
