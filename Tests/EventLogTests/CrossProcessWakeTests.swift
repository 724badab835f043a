import Foundation
import Synchronization
import Testing
@testable import EventLog

/// A read-only log learns of another process's appends without polling
/// (`Log.waitForAppends`, `AppendWatch`): real child processes write or
/// read, and the wake latency is measured. The thresholds are far above what
/// the watch gives (a fraction of a millisecond) and far below the 1 s safety
/// poll, and below half the 50 ms poll that stands in where there is no
/// watch: the median of a test is what it checks, so a busy machine's
/// outliers do not make it flaky.
@Suite(.serialized) struct CrossProcessWakeTests {
    /// The most a median wake may take, in microseconds.
    static let medianLimitMicroseconds: Int64 = 10_000

    static func median(_ values: [Int64]) -> Int64 {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    static func line(_ n: Int, pad: Int = 0) -> String {
        #"{"stream":"order-\#(n % 5)","type":"Placed","data":{"n":\#(n),"pad":"\#(String(repeating: "x", count: pad))"}}"#
    }

    /// `eventlog append` as the writer process: one event per batch, small segments (rolls).
    static func startWriter(_ directory: String, durability: String = "always") throws -> CLIProcess {
        try CLIProcess.start(["append", directory, "--durability", durability, "--batch", "1", "--segment-bytes", "65536"])
    }

    /// The child writer appends one event at a time; the test process, with
    /// the log open read-only, waits for each in `waitForAppends` and is
    /// woken by the watch: every event arrives, across segment rolls, and the
    /// median wake (event stamped by the writer → reader refreshed) is far
    /// below any poll.
    @Test func readOnlyLogWakesOnAnotherProcessesAppend() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = TemporaryDirectory("wake")
        let writer = try Self.startWriter(dir.path)
        defer { writer.kill() }
        try writer.writeLine(Self.line(0))
        try #require(writer.waitForLines(1, timeout: 30).count == 1, "stderr: \(writer.stderrText)")
        let log = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
        defer { try? log.close() }
        #expect(log.endPosition == 1)

        var latencies: [Int64] = []
        for n in 1...50 {
            let end = log.endPosition
            try writer.writeLine(Self.line(n, pad: 2000))
            let woken = try log.waitForAppends(after: end, timeout: .seconds(30))
            let now = currentTimestamp()
            try #require(woken, "no wake for event \(n); stderr: \(writer.stderrText)")
            let event = try log.event(at: end)
            #expect(event.stream == "order-\(n % 5)")
            latencies.append(now - event.timestamp)
        }
        #expect(log.endPosition == 51)
        #expect(log.batches.snapshot().count > 1, "the writer rolled segments")
        #expect(log.consumers.appendWatch.isArmed)
        let median = Self.median(latencies)
        print("cross-process wake (writer child, read-only reader here): median \(median) µs, max \(latencies.max() ?? 0) µs")
        #expect(median < Self.medianLimitMicroseconds, "median wake \(median) µs: \(latencies.sorted())")
    }

    /// A burst of appends by the child writer (batches of seven, segments
    /// rolling): a read-only subscription receives every event once, in
    /// order, nothing missed between a wake and the refresh after it.
    @Test func readOnlySubscriptionMissesNothing() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = TemporaryDirectory("wake")
        let writer = try CLIProcess.start(["append", dir.path, "--durability", "none", "--batch", "7", "--segment-bytes", "65536"])
        defer { writer.kill() }
        try writer.writeLine(Self.line(0))
        writer.closeStdin()
        try #require(writer.waitForExit(timeout: 30)?.status == 0, "stderr: \(writer.stderrText)")
        let log = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
        defer { try? log.close() }
        let subscription = try log.subscribe(from: .start)

        let total = 3000
        let second = try CLIProcess.start(["append", dir.path, "--durability", "always", "--batch", "7", "--segment-bytes", "65536"])
        defer { second.kill() }
        let feeder = Thread {
            for n in stride(from: 1, to: total, by: 50) {
                let lines = (n..<min(n + 50, total)).map { Self.line($0, pad: $0 % 300) + "\n" }.joined()
                do { try second.write(lines) } catch { return }
                usleep(500)
            }
            second.closeStdin()
        }
        feeder.start()
        var seen: [Int] = []
        let deadline = Date(timeIntervalSinceNow: 60)
        while seen.count < total && Date() < deadline {
            try subscription.poll(timeout: .seconds(5)) { event in
                let object = try JSONSerialization.jsonObject(with: Data(event.data)) as? [String: Any]
                seen.append(object?["n"] as? Int ?? -1)
            }
        }
        #expect(seen == Array(0..<total), "received \(seen.count) of \(total)")
        #expect(log.batches.snapshot().count > 3)
    }

    /// `tail -f` (read-only) and `tail -f --cursor` as child readers, the
    /// writer in this process appending one event at a time: each prints
    /// every event, woken far sooner than the poll it replaced; the cursor
    /// ends committed after the last one. (`.none`: under `.always` the
    /// append returns only after its sync, which the reader does not wait
    /// for, so the time from the append's return would measure nothing.)
    @Test(arguments: [false, true]) func tailFollowWakesAtOnce(withCursor: Bool) throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = TemporaryDirectory("wake")
        let log = try Log.open(at: dir.path, options: LogOptions(segmentBytes: 65536, durability: .none))
        defer { try? log.close() }
        try log.append([NewEvent(stream: "s", type: "T", data: Array("0".utf8))])
        let tail = try CLIProcess.start(["tail", dir.path, "-f", "--json"] + (withCursor ? ["--cursor", "relay"] : []))
        defer { tail.kill() }
        try #require(tail.waitForLines(1, timeout: 30).count == 1, "stderr: \(tail.stderrText)")

        var latencies: [Int64] = []
        for n in 1...50 {
            let appended = currentTimestamp()
            try log.append([NewEvent(stream: "s", type: "T", data: Array(String(repeating: "\(n % 10)", count: 1500).utf8))])
            let lines = tail.waitForLines(n + 1, timeout: 30)
            try #require(lines.count == n + 1, "tail printed \(lines.count) lines; stderr: \(tail.stderrText)")
            latencies.append(currentTimestamp() - appended)
        }
        #expect(CLITests.positions(tail.lines) == Array(0...50))
        kill(tail.processIdentifier, SIGTERM)
        let output = try #require(tail.waitForExit(timeout: 30))
        #expect(!output.signaled && output.status == 0, "\(output)")
        if withCursor {
            // The writer's journal state learns of other processes' commits on reopen; a reader's on open.
            let check = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
            #expect(try check.cursorPosition("relay") == 51)
            try check.close()
        }
        let median = Self.median(latencies)
        print("tail -f\(withCursor ? " --cursor" : "") wake (append called → line read here): median \(median) µs")
        #expect(median < Self.medianLimitMicroseconds, "median \(median) µs: \(latencies.sorted())")
    }

    /// The async form wakes on another Log's append (read through the disk,
    /// as another process's would be) and cancelling its task ends it.
    @Test func asyncWaitWakesAndCancels() async throws {
        let dir = TemporaryDirectory("wake")
        let writer = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        defer { try? writer.close() }
        try writer.append([NewEvent(stream: "s", type: "T", data: [1])])
        let reader = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
        defer { try? reader.close() }
        #expect(reader.endPosition == 1)

        let waiting = Task { try await reader.async.waitForAppends(after: 1, timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        try writer.append([NewEvent(stream: "s", type: "T", data: [2])])
        #expect(try await waiting.value)
        #expect(reader.endPosition == 2)

        // Without a timeout, only the cancellation can end this wait (the
        // safety poll refreshes, finds nothing, and waits on); the bound is
        // generous because the suites share two cores.
        let cancelled = Task { try await reader.async.waitForAppends(after: 2, timeout: nil) }
        try await Task.sleep(for: .milliseconds(50))
        let cancelledAt = Date()
        cancelled.cancel()
        #expect(try await cancelled.value == false)
        #expect(Date().timeIntervalSince(cancelledAt) < 5, "ended by the cancellation")
    }

    /// What another process appended before the first wait armed the watch
    /// is found by the refresh after arming, at once, not by the safety poll.
    @Test func appendsBeforeTheWatchIsArmedAreFound() throws {
        let dir = TemporaryDirectory("wake")
        let writer = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        defer { try? writer.close() }
        try writer.append([NewEvent(stream: "s", type: "T", data: [1])])
        let reader = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
        defer { try? reader.close() }
        try writer.append([NewEvent(stream: "s", type: "T", data: [2])])
        let started = Date()
        #expect(try reader.waitForAppends(after: 1, timeout: .seconds(30)))
        #expect(Date().timeIntervalSince(started) < 0.5)
        #expect(reader.endPosition == 2)
    }

    /// Closing a read-only log ends a thread's wait at once, and a cancelled
    /// subscription's poll returns while another thread holds the watch.
    @Test func closeAndCancelEndWaits() throws {
        let dir = TemporaryDirectory("wake")
        let writer = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        defer { try? writer.close() }
        try writer.append([NewEvent(stream: "s", type: "T", data: [1])])
        let reader = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
        let subscription = try reader.subscribe(from: .end)
        let ended = Atomic<Int>(0)
        let holder = Thread {
            _ = try? reader.waitForAppends(after: 1, timeout: .seconds(30))
            ended.add(1, ordering: .sequentiallyConsistent)
        }
        let poller = Thread {
            _ = try? subscription.poll(timeout: .seconds(30)) { _ in }
            ended.add(1, ordering: .sequentiallyConsistent)
        }
        holder.start()
        poller.start()
        usleep(100_000)
        let started = Date()
        subscription.cancel()
        while ended.load(ordering: .sequentiallyConsistent) < 1 && Date().timeIntervalSince(started) < 5 { usleep(1000) }
        #expect(ended.load(ordering: .sequentiallyConsistent) == 1 && Date().timeIntervalSince(started) < 0.9)
        try reader.close()
        while ended.load(ordering: .sequentiallyConsistent) < 2 && Date().timeIntervalSince(started) < 5 { usleep(1000) }
        #expect(ended.load(ordering: .sequentiallyConsistent) == 2 && Date().timeIntervalSince(started) < 0.9)
    }

    /// Without a watch (the test hook; as where inotify is missing) a
    /// read-only log still finds another process's appends, by its 50 ms poll.
    @Test func withoutAWatchItPolls() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = TemporaryDirectory("wake")
        let writer = try Self.startWriter(dir.path, durability: "none")
        defer { writer.kill() }
        try writer.writeLine(Self.line(0))
        try #require(writer.waitForLines(1, timeout: 30).count == 1, "stderr: \(writer.stderrText)")
        var options = LogOptions(createIfMissing: false, readOnly: true)
        options.watchesDirectory = false
        let log = try Log.open(at: dir.path, options: options)
        defer { try? log.close() }
        for n in 1...3 {
            try writer.writeLine(Self.line(n))
            #expect(try log.waitForAppends(after: UInt64(n), timeout: .seconds(30)))
        }
        #expect(!log.consumers.appendWatch.isArmed)
        #expect(log.endPosition == 4)
    }
}
