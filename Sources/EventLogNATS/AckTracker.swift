import class Foundation.NSCondition
import struct Foundation.Date
import NATSClient

/// Collects JetStream's publish acknowledgements (on the event loop) for the
/// relay's thread to take. Replies of an earlier connection are ignored: each
/// connection is a new generation.
final class AckTracker: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var generation = 0
    private var acked: [UInt64] = []
    private var duplicates = 0
    private var failure: NATSError?
    /// True while the relay's thread waits in `take`: only then is a signal worth its system call.
    private var waiting = false

    /// Starts a new generation (a new connection), forgetting what the last one left.
    func begin() -> Int {
        condition.lock()
        defer { condition.unlock() }
        generation += 1
        acked.removeAll()
        duplicates = 0
        failure = nil
        return generation
    }

    func handler(generation: Int, position: UInt64) -> NATSReplyHandler {
        { [self] result in record(generation: generation, position: position, result: result) }
    }

    private func record(generation: Int, position: UInt64, result: Result<NATSMessage, NATSError>) {
        condition.lock()
        defer {
            if waiting { condition.signal() }
            condition.unlock()
        }
        guard generation == self.generation else { return }
        switch result {
        case .success(let reply):
            do {
                let ack = try JetStreamPublishAck.parse(reply)
                acked.append(position)
                if ack.duplicate { duplicates += 1 }
            } catch {
                if failure == nil { failure = error }
            }
        case .failure(let error):
            if failure == nil { failure = error }
        }
    }

    /// What arrived since the last call; waits up to `seconds` when nothing has.
    func take(waitingUpTo seconds: Double) -> (acked: [UInt64], duplicates: Int, failure: NATSError?) {
        condition.lock()
        defer { condition.unlock() }
        if acked.isEmpty && failure == nil && seconds > 0 {
            waiting = true
            _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
            waiting = false
        }
        let taken = (acked, duplicates, failure)
        acked.removeAll(keepingCapacity: true)
        duplicates = 0
        return taken
    }
}
