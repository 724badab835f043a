import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// A swift-service-lifecycle `Service` around blocking work that runs on a thread of its own (the relays, the
/// projection: EventLog's blocking calls belong on threads of the application's, not on the Swift concurrency
/// pool). `work` runs until its `shouldStop` returns true; on graceful shutdown (or cancellation) `shouldStop`
/// turns true and `run()` returns once `work` has. A failure is logged and `work` starts again after
/// `restartDelay`, so that a NATS server that is down for a while is not the end of the service.
///
/// Thread-safe.
struct ThreadService: Service, CustomStringConvertible {
    let name: String
    let restartDelay: Duration
    let logger: Logger
    let work: @Sendable (_ shouldStop: () -> Bool) throws -> Void

    var description: String { name }

    init(name: String, restartDelay: Duration = .seconds(1), logger: Logger, work: @escaping @Sendable (_ shouldStop: () -> Bool) throws -> Void) {
        self.name = name
        self.restartDelay = restartDelay
        self.logger = logger
        self.work = work
    }

    /// The stop flag and the thread's end, shared with the thread.
    private final class Control: Sendable {
        let stop = Atomic<Bool>(false)
        let finished = Mutex<(done: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

        func markFinished() {
            let waiter = finished.withLock { state -> CheckedContinuation<Void, Never>? in
                state.done = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }

        func waitFinished() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = finished.withLock { state -> Bool in
                    if state.done { return true }
                    state.waiter = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        }
    }

    func run() async throws {
        let control = Control()
        let (name, logger, work, restartDelay) = (self.name, self.logger, self.work, self.restartDelay)
        let thread = Thread {
            defer { control.markFinished() }
            let shouldStop = { control.stop.load(ordering: .relaxed) }
            while !shouldStop() {
                do {
                    try work(shouldStop)
                } catch {
                    if shouldStop() { break }
                    logger.error("\(name) failed; starting it again in \(restartDelay)", metadata: ["error": "\(error)"])
                    let deadline = ContinuousClock.now + restartDelay
                    while !shouldStop() && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
                }
            }
        }
        thread.name = name
        thread.start()
        // Returns on graceful shutdown; throws CancellationError on cancellation: stop either way.
        try? await gracefulShutdown()
        control.stop.store(true, ordering: .relaxed)
        await control.waitFinished()
    }
}
