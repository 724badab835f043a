import class Foundation.NSCondition
import struct Foundation.Date
import NATSClient

/// Collects JetStream's publish acknowledgements (on the event loop) for the
/// relay's thread to take.
///
/// Each connection's relay subscribes to `<inbox>.*` with `handler`, and
/// publish number n of that connection asks for its reply on `<inbox>.n`
/// (`InFlightWindow`): the handler hands over the numbers, in arrival order.
/// Each connection is a new generation: replies of an earlier one are ignored.
///
/// Threads: `handler`'s closure runs on the event loop, `begin` and `take` on
/// the relay's thread; the state is guarded by a condition variable.
final class AckTracker: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var generation = 0
    private var acked: [UInt64] = []
    private var duplicates = 0
    private var failure: NATSError?
    /// While the relay's thread waits in `take`: how many acknowledgements it waits for (0 when it does not wait).
    /// Only then, and only once that many arrived, is a signal worth its system call.
    private var wanted = 0

    /// Starts a new generation (a new connection), forgetting what the last one left.
    func begin() -> Int {
        condition.lock()
        defer { condition.unlock() }
        generation += 1
        acked.removeAll(keepingCapacity: true)
        duplicates = 0
        failure = nil
        return generation
    }

    /// The reply subscription's handler for `generation`: replies arrive on `<inbox>.<publish number>`, where
    /// `<inbox>.` is the first `prefixBytes` bytes of the subject.
    func handler(generation: Int, prefixBytes: Int) -> @Sendable (NATSMessage) -> Void {
        { [self] message in record(generation: generation, message, prefixBytes: prefixBytes) }
    }

    private func record(generation: Int, _ reply: NATSMessage, prefixBytes: Int) {
        // Parsed before taking the lock: the relay's thread waits for it.
        let number = Self.number(reply.subject, after: prefixBytes)
        var problem: NATSError?
        var duplicate = false
        if number == nil {
            problem = .unexpectedReply("a publish acknowledgement on \(reply.subject), not <inbox>.<number>")
        } else {
            do throws(NATSError) {
                duplicate = try JetStreamPublishAck.parse(reply).duplicate
            } catch let failed {
                problem = failed
            }
        }
        condition.lock()
        defer { condition.unlock() }
        guard generation == self.generation else { return }
        if let problem {
            if failure == nil { failure = problem }
        } else if let number {
            acked.append(number)
            if duplicate { duplicates += 1 }
        }
        if wanted > 0 && (acked.count >= wanted || failure != nil) { condition.signal() }
    }

    /// The decimal number after the first `prefixBytes` bytes of `subject`; nil when there is none.
    static func number(_ subject: String, after prefixBytes: Int) -> UInt64? {
        var n: UInt64 = 0
        var digits = 0
        for b in subject.utf8.dropFirst(prefixBytes) {
            guard b >= 0x30 && b <= 0x39, digits < 19 else { return nil }
            n = n * 10 + UInt64(b - 0x30)
            digits += 1
        }
        return digits > 0 ? n : nil
    }

    /// Moves the publish numbers acknowledged since the last call into `numbers` (replacing what it held, without
    /// allocating once both arrays have grown); when fewer than `atLeast` arrived and no failure, waits up to
    /// `seconds` for them. Returns how many of them JetStream dropped as duplicates, and the first failure, if any.
    func take(into numbers: inout [UInt64], atLeast: Int, waitingUpTo seconds: Double) -> (duplicates: Int, failure: NATSError?) {
        condition.lock()
        defer { condition.unlock() }
        if acked.count < atLeast && failure == nil && seconds > 0 {
            wanted = atLeast
            _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
            wanted = 0
        }
        numbers.removeAll(keepingCapacity: true)
        swap(&numbers, &acked)
        let taken = (duplicates, failure)
        duplicates = 0
        return taken
    }
}
