import EventLog
import Foundation
import Testing

/// A long order: the aggregate store keeps a snapshot every 100 events (in the log), and commands after a restart
/// load from it and still decide on the whole order.
@Suite(.serialized)
struct SnapshotTests {
    @Test func aLongOrderIsLoadedFromItsSnapshotAfterARestart() throws {
        let directory = TemporaryDirectory("snapshot")
        let data = directory.sub("data")
        let service = ServiceProcess(dataDirectory: data, outputPath: directory.sub("output.txt"))
        try service.start()
        defer { service.kill() }
        #expect(try ContractTests.place(service, "long", key: "K-long").status == 201)
        for version in 0..<130 {
            let answer = try ContractTests.addItem(service, "long", sku: "S-\(version)", quantity: 1, ifMatch: String(version))
            #expect(answer.status == 200 && answer.json?["version"] as? Int == version + 1, "\(answer)")
        }
        #expect(service.terminate() == 0)

        // The snapshot is in the log, taken once the stream held 100 events (versions 0 to 99).
        var options = LogOptions()
        options.readOnly = true
        options.logger.logLevel = .warning
        let log = try Log.open(at: data + "/events", options: options)
        let snapshots = try log.events(inStream: "$snapshot-order-long")
        try log.close()
        #expect(snapshots.count == 1)
        #expect(snapshots.first?.metadata.headers.first { $0.name == "aggregate-version" }?.value == "99")

        // After the restart the order loads from it: a stale version is still a conflict, the right one goes on,
        // and cancelling counts every item (the integration event's "items").
        try service.start()
        let stale = try ContractTests.addItem(service, "long", sku: "late", quantity: 1, ifMatch: "100")
        #expect(stale.status == 409 && stale.json?["version"] as? Int == 130, "\(stale)")
        #expect(try ContractTests.cancel(service, "long", ifMatch: "130").json?["version"] as? Int == 131)
        let shown = try ContractTests.readModel(service, "long", atLeast: 131)
        #expect((shown.json?["items"] as? [Any])?.count == 130)
        // The relay delivers the cancel's integration event (polled: it runs beside the projection).
        let deadline = Date(timeIntervalSinceNow: 20)
        var delivered: [Event] = []
        while Date() < deadline {
            delivered = (try? OutboxAndShutdownTests.delivered(data)) ?? []
            if delivered.last?.type == "orders.OrderCancelled.v1" { break }
            usleep(50_000)
        }
        #expect(service.terminate() == 0)
        let cancelled = delivered.last.flatMap { (try? JSONSerialization.jsonObject(with: Data($0.data))) as? [String: Any] }
        #expect(delivered.last?.type == "orders.OrderCancelled.v1")
        #expect(cancelled?["items"] as? Int == 130, "\(String(describing: cancelled))")
    }
}
