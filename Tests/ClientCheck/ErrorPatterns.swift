// The ways a client catches EventLog's errors, each in a context of its own (Swift 6.3.1 once crashed compiling a
// `catch EventLogError.wrongExpectedVersion(...)` pattern in a function that was not typed-throws, while the call
// was; README, "Errors"). Hand-written; built by scripts/test.sh, never run.
import EventLog
import Foundation

/// A pattern with bindings, in a throwing function.
func conflictInThrowingFunction(_ log: Log, _ events: [NewEvent]) throws -> UInt64? {
    do {
        try log.append(to: "order-42", expectedVersion: .noStream, events)
        return nil
    } catch EventLogError.wrongExpectedVersion(_, _, let actual) {
        return actual
    }
}

/// The same in an async function, through the async surface.
func conflictInAsyncFunction(_ log: Log, _ events: [NewEvent]) async throws -> UInt64? {
    do {
        try await log.async.append(to: "order-42", expectedVersion: .noStream, events)
        return nil
    } catch EventLogError.wrongExpectedVersion(let stream, _, let actual) {
        print("conflict on", stream)
        return actual
    }
}

/// A function that throws nothing: every error handled.
func conflictInNonThrowingFunction(_ log: Log, _ events: [NewEvent]) -> String {
    do {
        try log.append(to: "order-42", expectedVersion: .exact(3), events)
        return "appended"
    } catch EventLogError.wrongExpectedVersion(let stream, let expected, let actual) {
        return "\(stream): expected \(expected), found \(actual.map(String.init) ?? "no stream")"
    } catch let error as EventLogError {
        return error.description
    } catch {
        return "\(error)"
    }
}

/// In a closure, and with a case without bindings.
let retryOnClosed: @Sendable (Log, [NewEvent]) throws -> Void = { log, events in
    do {
        try log.append(events)
    } catch EventLogError.closed {
        print("the log is closed")
    }
}

/// A case pattern in a retry loop that breaks out on success (the library's own tests once avoided this form).
func openRetryingWhileLocked(_ path: String) throws -> Log {
    var attempts = 0
    while true {
        do {
            return try Log.open(at: path)
        } catch EventLogError.locked where attempts < 100 {
            attempts += 1
            usleep(20_000)
        }
    }
}

/// A case pattern with a binding and a wildcard, the rest rethrown.
func expectedBaseOfMissingSegment(_ path: String) throws -> UInt64? {
    do {
        _ = try Log.open(at: path, options: LogOptions(createIfMissing: false, readOnly: true))
        return nil
    } catch EventLogError.missingSegment(let expected, _) {
        return expected
    }
}
