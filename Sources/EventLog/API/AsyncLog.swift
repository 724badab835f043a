import Dispatch

/// The log's blocking calls for Swift concurrency: each runs on a
/// dispatch queue of the log's own, never on the cooperative thread pool,
/// and the calling task suspends until it is done (`log.async.append(…)`).
///
/// Cancelling the task does not cancel a call that started: an append that
/// began is completed (and acknowledged) or fails as the synchronous call would.
public struct AsyncLog: Sendable {
    let log: Log

    /// Runs `body` on the I/O queue and resumes with its result.
    private func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Log.ioQueue.async {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }

    /// `Log.append(_:)` off the cooperative pool.
    @discardableResult
    public func append(_ events: [NewEvent]) async throws -> Range<UInt64> {
        try await run { [log] in try log.append(events) }
    }

    /// `Log.append(_:expecting:)` off the cooperative pool.
    @discardableResult
    public func append(_ events: [NewEvent], expecting: [String: ExpectedVersion]) async throws -> AppendResult {
        try await run { [log] in try log.append(events, expecting: expecting) }
    }

    /// `Log.events(from:maxCount:)` off the cooperative pool.
    public func events(from position: UInt64, maxCount: Int = .max) async throws -> [Event] {
        try await run { [log] in try log.events(from: position, maxCount: maxCount) }
    }

    /// `Log.events(inStream:from:maxCount:direction:)` off the cooperative pool.
    public func events(
        inStream stream: String, from version: UInt64? = nil, maxCount: Int = .max, direction: ReadDirection = .forward
    ) async throws -> [Event] {
        try await run { [log] in try log.events(inStream: stream, from: version, maxCount: maxCount, direction: direction) }
    }

    /// `Log.event(at:)` off the cooperative pool.
    public func event(at position: UInt64) async throws -> Event {
        try await run { [log] in try log.event(at: position) }
    }

    /// `Log.commitCursor(_:position:)` off the cooperative pool.
    public func commitCursor(_ name: String, position: UInt64) async throws {
        try await run { [log] in try log.commitCursor(name, position: position) }
    }

    /// `Log.sync()` off the cooperative pool.
    public func sync() async throws {
        try await run { [log] in try log.sync() }
    }

    /// `Log.close()` off the cooperative pool.
    public func close() async throws {
        try await run { [log] in try log.close() }
    }
}

extension Log {
    /// The blocking calls as `async` functions that run off the cooperative pool.
    public var async: AsyncLog { AsyncLog(log: self) }

    /// Where `AsyncLog` runs blocking calls: GCD threads, not the Swift
    /// concurrency pool, which must never wait on a disk.
    static let ioQueue = DispatchQueue(label: "EventLog.io", qos: .userInitiated, attributes: .concurrent)
}
