import Logging
import ServiceLifecycle
import Testing

@testable import EventLog

/// `LogService` in a real `ServiceGroup`: a graceful shutdown closes the log
/// cleanly (the next open finds a clean shutdown and recovers nothing).
@Suite struct LogServiceTests {
    @Test func aGracefulShutdownClosesTheLogCleanly() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try Fixtures.append(log, 0..<100, batch: 10)
        let group = ServiceGroup(services: [LogService(log: log)], logger: Logger(label: "test"))
        async let running: Void = group.run()
        try await log.async.append([NewEvent(stream: "s", type: "T", data: [1])])  // the log works while the service runs
        await group.triggerGracefulShutdown()
        try await running
        #expect(log.isClosed)
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        guard case .clean = reopened.recovery.previousShutdown else {
            Issue.record("the shutdown was \(reopened.recovery.previousShutdown), not clean")
            return
        }
        #expect(try reopened.events(from: 0).count == 101)
        try reopened.close()
    }
}
