import Foundation

/// Runs a blocking body on a thread of its own (not Swift concurrency's pool), for `join()` to collect.
final class BackgroundThread<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?

    init(_ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            result = Result { try body() }
            done.signal()
        }
        thread.stackSize = 4 << 20
        thread.start()
    }

    /// Waits up to `timeout` seconds; nil when the body did not finish.
    func join(timeout: Double) -> Result<T, any Error>? {
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        done.signal()
        return result
    }
}
