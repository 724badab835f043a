import Foundation
import Logging
import Synchronization
import Testing

@testable import EventLog

/// `LogOptions.logger` receives what an operator needs (recovery, rolls, a
/// failed or slow sync), at the documented levels, and nothing per event.
@Suite struct LoggingTests {
    /// A swift-log handler that keeps every message (thread-safe).
    final class Capture: LogHandler, @unchecked Sendable {
        let messages = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            messages.withLock { $0.append((event.level, "\(event.message)", event.metadata ?? [:])) }
        }

        func all(_ message: String) -> [(level: Logger.Level, message: String, metadata: Logger.Metadata)] {
            messages.withLock { $0.filter { $0.message == message } }
        }

        var count: Int { messages.withLock { $0.count } }
    }

    static func options(_ capture: Capture, durability: Durability = .none) -> LogOptions {
        var options = LogOptions(segmentBytes: 1 << 16, durability: durability)
        options.logger = Logger(label: "test") { _ in capture }
        return options
    }

    @Test func recoveryRollsAndAppendsAreLoggedAtTheirLevels() throws {
        let dir = TemporaryDirectory()
        let capture = Capture()
        do {
            let log = try Log.open(at: dir.path, options: Self.options(capture))
            #expect(capture.all("opened the log").map(\.level) == [.info])  // a new log
            try Fixtures.append(log, 0..<4000, batch: 100)  // several 64 KiB segments
            let rolls = capture.all("rolled to a new segment")
            #expect(rolls.count == log.inspectSegmentCount - 1 && rolls.allSatisfy { $0.level == .info })
            // Nothing per event or per append: rolls and the open only.
            #expect(capture.count == rolls.count + 1)
            try log.close()
        }
        do {
            let log = try Log.open(at: dir.path, options: Self.options(capture))
            let opens = capture.all("opened the log")
            #expect(opens.last?.level == .debug)  // after a clean close
            #expect(opens.last?.metadata["previous_shutdown"] == "clean")
            try Fixtures.append(log, 4000..<4010, batch: 10)
            // Dropped without close: the next open recovers.
        }
        let log = try Log.open(at: dir.path, options: Self.options(capture))
        let last = capture.all("opened the log").last
        #expect(last?.level == .info && last?.metadata["previous_shutdown"] == "unclean", "\(String(describing: last))")
        #expect(last?.metadata["duration"] != nil && last?.metadata["scanned_bytes"] != nil)
        try log.close()
    }

    @Test func aSlowSyncIsAWarningAndAFailedSyncAnError() throws {
        let dir = TemporaryDirectory()
        let capture = Capture()
        var options = Self.options(capture, durability: .always)
        options.slowSyncThreshold = .zero  // every sync is slow
        do {
            let log = try Log.open(at: dir.path, options: options)
            try Fixtures.append(log, 0..<10, batch: 5)
            try log.close()
        }
        #expect(capture.all("a slow sync").contains { $0.level == .warning && $0.metadata["file"] == "segment" })

        let failing = Capture()
        var failingOptions = Self.options(failing, durability: .always)
        let armed = Atomic<Bool>(false)
        failingOptions.storageFaults = StorageFaults { operation, path in
            armed.load(ordering: .relaxed) && operation == .datasync && path.hasSuffix(".segment") ? .fail(errno: EIO) : nil
        }
        let log = try Log.open(at: dir.path, options: failingOptions)
        armed.store(true, ordering: .relaxed)
        #expect(throws: EventLogError.self) { try Fixtures.append(log, 10..<11, batch: 1) }
        #expect(failing.all("a sync failed; the writer stops until the log is opened again").map(\.level) == [.error])
        try? log.close()
    }
}

extension Log {
    fileprivate var inspectSegmentCount: Int { (try? Log.inspect(at: path).segments.count) ?? -1 }
}
