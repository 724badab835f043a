import Foundation
import Logging
import MetricsTestKit
import ServiceLifecycle
import Synchronization
import Testing

@testable import EventLog

/// Everything that runs on threads of its own, at once, on one log: for
/// ThreadSanitizer (scripts/test.sh runs this suite under
/// `--sanitize=thread`), and for the invariants that concurrency must not
/// break. Appenders of every shape under `.always` (group commit), readers
/// by position and by stream, a live subscription, a consumer group's
/// workers, cursor commits, compaction by hand and in the background
/// (scavenging and merging the segments of truncated streams), metrics on
/// their timer and by hand, and the `LogService` in a real `ServiceGroup`,
/// which closes the log at the end.
@Suite struct ConcurrentLoadTests {
    @Test func everythingAtOnceKeepsEveryAcknowledgedEvent() async throws {
        // Without truncating the scratch streams: compaction runs beside
        // everything but finds nothing to scavenge. With it (the soak), two
        // races show in about 4 runs in 100: a consumer group's receive fails
        // with positionRemoved for an event scavenged after it was read into
        // the pending set (ConsumerGroup.handOut), and a reader by position
        // got "corruption ... no batch holds position" beside a segment
        // rewrite. Neither is fixed yet; scripts/soak.sh reports both.
        let report = try await ConcurrentLoad(seed: 16, rounds: 120, truncatesScratch: false).run()
        #expect(report.violations == [])
        #expect(report.acknowledged > 120 * 8 && report.verified == report.acknowledged)
    }
}

/// A task executor on a dispatch queue of its own (whose threads are not the
/// cooperative pool's): a task preferring it makes progress while other
/// tests block the pool.
final class DedicatedExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = DedicatedExecutor()
    private let queue = DispatchQueue(label: "eventlog.tests.dedicated-executor")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// One run of everything at once (the test above; `scripts/soak.sh` runs
/// it again and again with other seeds and sizes).
struct ConcurrentLoad {
    /// Seeds the payload sizes and where each appender truncates its scratch streams.
    var seed: UInt64
    /// Appends per appender thread.
    var rounds: Int
    /// Truncates the scratch streams now and then, so compaction scavenges
    /// (rewrites) segments under the readers, the subscription and the group.
    var truncatesScratch = true

    struct Report {
        /// Events acknowledged that no compaction removes, and of them those found intact after reopening.
        var acknowledged = 0
        var verified = 0
        var violations: [String] = []
    }

    /// Events that no compaction removes: every stream but `scratch-*`.
    static func isKept(_ stream: String) -> Bool { !stream.hasPrefix("scratch-") }

    /// What the appenders were told was written: position → (stream, data).
    final class Acknowledged: Sendable {
        let events = Mutex<[UInt64: (stream: String, data: [UInt8])]>([:])
        /// Positions handed out twice (must stay empty).
        let twice = Mutex<[UInt64]>([])
        func add(_ range: Range<UInt64>, _ batch: [NewEvent]) {
            events.withLock { all in
                for (offset, event) in batch.enumerated() {
                    let position = range.lowerBound + UInt64(offset)
                    if all[position] != nil { twice.withLock { $0.append(position) } }
                    all[position] = (event.stream, event.data)
                }
            }
        }
    }

    /// Violations found by the threads (a thread cannot call `#expect` safely after the test moved on).
    final class Findings: Sendable {
        let list = Mutex<[String]>([])
        func note(_ finding: String) { list.withLock { if $0.count < 20 { $0.append(finding) } } }
    }

    static func event(_ stream: String, _ i: Int, pad: Int) -> NewEvent {
        NewEvent(stream: stream, type: "T\(i % 3)", data: Array("\(stream)/\(i)/".utf8) + [UInt8](repeating: UInt8(i & 0xFF), count: pad))
    }

    /// Waits for the threads without blocking the cooperative pool (the service group needs it).
    static func join(_ threads: [BackgroundThread<Void>], timeout: Double) async -> [Result<Void, any Error>?] {
        await withCheckedContinuation { continuation in
            let waiter = Thread { continuation.resume(returning: threads.map { $0.join(timeout: timeout) }) }
            waiter.start()
        }
    }

    func run() async throws -> Report {
        var report = Report()
        let (seed, rounds, truncates) = (self.seed, self.rounds, self.truncatesScratch)
        var random = SplitMix64(seed: seed)
        let pads = (0..<64).map { _ in Int(random.next() % 200) }
        let event: @Sendable (String, Int) -> NewEvent = { stream, i in Self.event(stream, i, pad: pads[i % pads.count]) }
        let truncateEvery = 5 + Int(random.next() % 10)
        let dir = TemporaryDirectory()
        var options = LogOptions(segmentBytes: 16 << 10, durability: .always)
        options.checkpointBytes = 4096
        options.maintenanceInterval = .milliseconds(20)
        options.metricsInterval = .milliseconds(10)
        let metrics = TestMetrics()
        options.metricsFactory = metrics
        let log = try Log.open(at: dir.path, options: options)
        let service = ServiceGroup(services: [LogService(log: log)], logger: Logger(label: "test"))
        let running = Task { try await service.run() }

        let acknowledged = Acknowledged()
        let findings = Findings()
        let appendersDone = Atomic<Int>(0)
        // The subscription and the group start before the first append: they see everything kept.
        let subscription = try log.subscribe(from: .start)
        let group = try log.consumerGroup("workers", options: ConsumerGroupOptions(ackTimeout: .seconds(60)))

        var threads: [BackgroundThread<Void>] = []
        // Appenders, one shape each: single events, multi-stream batches,
        // expected versions, the batch builder, truncated scratch streams.
        threads.append(BackgroundThread {
            for i in 0..<rounds {
                let e = event("acct-\(i % 5)", i)
                let p = try log.append(e)
                acknowledged.add(p..<(p + 1), [e])
            }
            appendersDone.add(1, ordering: .sequentiallyConsistent)
        })
        threads.append(BackgroundThread {
            for i in 0..<rounds {
                let batch = (0..<5).map { event("order-\(($0 + i) % 7)", i * 5 + $0) }
                acknowledged.add(try log.append(batch), batch)
            }
            appendersDone.add(1, ordering: .sequentiallyConsistent)
        })
        threads.append(BackgroundThread {
            for i in 0..<rounds {
                let batch = [event("ledger", i)]
                let result = try log.append(to: "ledger", expectedVersion: i == 0 ? .noStream : .exact(UInt64(i - 1)), batch)
                acknowledged.add(result.positions, batch)
                let built = event("built-\(i % 3)", i)
                let range = try log.appendBatch { builder in try builder.append(built) }
                acknowledged.add(range, [built])
            }
            appendersDone.add(1, ordering: .sequentiallyConsistent)
        })
        threads.append(BackgroundThread {
            for i in 0..<rounds {
                let batch = (0..<4).map { event("scratch-\(i % 3)", i * 4 + $0) }
                try log.append(batch)
                if truncates && i % truncateEvery == truncateEvery - 1 { try log.truncateStream("scratch-\(i % 3)", before: UInt64(i * 4 / 3)) }
            }
            appendersDone.add(1, ordering: .sequentiallyConsistent)
        })
        let appenders = 5  // these four threads and the async task below

        // Readers: whole batches in order by position; the ledger's versions without gaps.
        for _ in 0..<2 {
            threads.append(BackgroundThread {
                while appendersDone.load(ordering: .sequentiallyConsistent) < appenders {
                    var last: UInt64? = nil
                    try log.read(from: 0) { view in
                        if let last, view.position <= last { findings.note("read by position: \(view.position) after \(last)") }
                        last = view.position
                    }
                    var version: UInt64 = 0
                    try log.readStream("ledger") { view in
                        if view.version != version { findings.note("ledger: version \(view.version) where \(version) was due") }
                        version += 1
                    }
                    _ = try log.streamInfo("ledger")
                    _ = try log.lag(from: 0)
                }
            })
        }
        // The subscription: every kept event, in order, once.
        let subscribed = Mutex<[UInt64]>([])
        threads.append(BackgroundThread {
            while true {
                let end = appendersDone.load(ordering: .sequentiallyConsistent) == appenders ? log.endPosition : UInt64.max
                if subscription.position >= end { break }
                _ = try subscription.poll(maxCount: 64, timeout: .milliseconds(50)) { view in
                    if ConcurrentLoad.isKept(view.stream) { subscribed.withLock { $0.append(view.position) } }
                }
            }
        })
        // The consumer group's workers: each kept event handed to one, acknowledged once.
        let delivered = Mutex<[UInt64: Int]>([:])
        for _ in 0..<2 {
            threads.append(BackgroundThread {
                while true {
                    let batch = try group.receive(maxCount: 8, timeout: .milliseconds(50))
                    for d in batch {
                        if ConcurrentLoad.isKept(d.event.stream) { delivered.withLock { $0[d.event.position, default: 0] += 1 } }
                        try group.ack(d.event.position)
                    }
                    if batch.isEmpty && appendersDone.load(ordering: .sequentiallyConsistent) == appenders {
                        if try group.lag().events == 0 { break }
                    }
                }
            })
        }
        // Cursor commits, compaction by hand, metrics by hand.
        // Until the appenders are done and at least one commit named a
        // position past 0 (a commit made before the first append names 0,
        // and under ThreadSanitizer one compaction can outlast every append).
        threads.append(BackgroundThread {
            var committedPastZero = false
            while !committedPastZero || appendersDone.load(ordering: .sequentiallyConsistent) < appenders {
                let end = log.endPosition
                try log.commitCursor("committer", position: end)
                committedPastZero = committedPastZero || end > 0
                _ = try log.compact()
                log.metricsReporter.report(log)
            }
        })
        // Async appends through the service's log while the service runs,
        // on an executor of their own: the threads above loop until these
        // are done, and the cooperative pool (two threads here) may be
        // blocked by other tests running beside this one.
        let asyncAppends = Task(executorPreference: DedicatedExecutor.shared) {
            for i in 0..<20 {
                let e = event("async", i)
                let range = try await log.async.append([e])
                acknowledged.add(range, [e])
            }
            appendersDone.add(1, ordering: .sequentiallyConsistent)
        }

        let results = await Self.join(threads, timeout: 600)
        do { try await asyncAppends.value } catch { report.violations.append("async appends failed: \(error)") }
        func check(_ condition: Bool, _ violation: @autoclosure () -> String) {
            if !condition { report.violations.append(violation()) }
        }
        for (i, result) in results.enumerated() {
            switch result {
            case nil: report.violations.append("thread \(i) did not finish")
            case .failure(let error)?: report.violations.append("thread \(i) failed: \(error)")
            case .success?: break
            }
        }
        report.violations += findings.list.withLock { $0 }
        let twice = acknowledged.twice.withLock { $0 }
        check(twice.isEmpty, "positions acknowledged twice: \(twice.prefix(10))")

        let kept = acknowledged.events.withLock { all in all.filter { ConcurrentLoad.isKept($0.value.stream) } }
        report.acknowledged = kept.count
        check(kept.count == rounds * (1 + 5 + 2) + 20, "\(kept.count) kept events acknowledged, \(rounds * 8 + 20) appended")
        // The subscription saw every kept event, in order, once.
        let seen = subscribed.withLock { $0 }
        check(seen == kept.keys.sorted(), "the subscription saw \(seen.count) of \(kept.count) kept events, or out of order")
        let deliveries = delivered.withLock { $0 }
        check(Set(deliveries.keys) == Set(kept.keys), "the group delivered \(deliveries.count) of \(kept.count) kept events")
        check(deliveries.values.allSatisfy { $0 == 1 }, "the group delivered an acknowledged event twice")
        check((try log.cursorPosition("committer") ?? 0) > 0, "no cursor commit")
        check(
            (try? metrics.expectGauge("eventlog_end_position", [("log", dir.path)]).lastValue).map { $0 > 0 } ?? false,
            "the metrics timer never reported")

        // The service closes the log on a graceful shutdown.
        await service.triggerGracefulShutdown()
        do { try await running.value } catch { report.violations.append("the service failed: \(error)") }
        check(log.isClosed, "the service did not close the log")
        let verification = try Log.verify(at: dir.path)
        check(verification.isSound, "verify: \(verification.problems)")
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        var lost: [UInt64] = []
        for (position, expected) in kept.sorted(by: { $0.key < $1.key }) {
            guard let event = try? reopened.event(at: position), event.stream == expected.stream, event.data == expected.data else {
                lost.append(position)
                continue
            }
            report.verified += 1
        }
        check(lost.isEmpty, "acknowledged events missing or altered: \(lost.prefix(10))")
        let ledger = try reopened.events(inStream: "ledger").map(\.version)
        check(ledger == (0..<UInt64(rounds)).map { $0 }, "the ledger's versions are \(ledger.count), not 0..<\(rounds) in order")
        try reopened.close()
        return report
    }
}
