import Foundation
import Synchronization
import Testing
@testable import EventLog

/// Retention (Format.md §3.1–§3.2): whole sealed segments removed from the
/// oldest, held back by the settings' cursors and by parked events, the
/// start moved durably, the streams of removed segments still known.
@Suite struct RetentionTests {
    static let streams = 23

    static func options(readOnly: Bool = false) -> LogOptions {
        var options = LogOptions(segmentBytes: 4096, durability: .none, readOnly: readOnly)
        options.maintenanceInterval = nil
        options.checkpointBytes = 4096
        return options
    }

    static func event(_ i: Int) -> NewEvent {
        NewEvent(stream: "order-\(i % streams)", type: "Placed", data: Array("event \(i) ".utf8) + Array(repeating: UInt8(i % 251), count: 90))
    }

    /// A log of `count` events over `streams` streams, in batches of 10.
    static func filledLog(_ dir: TemporaryDirectory, count: Int = 600) throws -> Log {
        let log = try Log.open(at: dir.path, options: options())
        for first in stride(from: 0, to: count, by: 10) {
            try log.append((first..<min(first + 10, count)).map(event))
        }
        return log
    }

    static func segmentFiles(_ dir: TemporaryDirectory) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".segment") }.sorted()
    }

    // MARK: The plan alone

    @Test func thePlanRemovesAPrefixOfSealedSegmentsOnly() {
        var segments: [RetentionPlan.Segment] = []
        for i in 0..<5 {
            let base = UInt64(i) * 100
            segments.append(RetentionPlan.Segment(base: base, end: base + 100, bytes: 1000, newestTimestamp: Int64(i) * 1_000_000))
        }
        // By size: 5000 bytes, keep at most 2500: three go, never the active one.
        var plan = RetentionPlan.make(
            segments: segments, settings: LogSettings(retainBytes: 2500), floor: 500, floorReason: "end", now: 10_000_000)
        #expect(plan.removedSegments == 3)
        #expect(plan.start == 300)
        #expect(plan.removedEvents == 300)
        #expect(plan.removedBytes == 3000)
        #expect(plan.heldBack == nil)
        // The active segment stays even when the limit still asks.
        plan = RetentionPlan.make(segments: segments, settings: LogSettings(retainBytes: 1), floor: 500, floorReason: "end", now: 10_000_000)
        #expect(plan.removedSegments == 4)
        // A floor inside segment 1 holds it and everything after it back.
        plan = RetentionPlan.make(segments: segments, settings: LogSettings(retainBytes: 1), floor: 150, floorReason: "cursor c", now: 10_000_000)
        #expect(plan.removedSegments == 1)
        #expect(plan.start == 100)
        #expect(plan.heldBack == "cursor c")
        // By age: now is 4.5 s; segments whose newest event is at least 2 s old go (0, 1 and 2).
        plan = RetentionPlan.make(segments: segments, settings: LogSettings(retainAge: .seconds(2)), floor: 500, floorReason: "end", now: 4_500_000)
        #expect(plan.removedSegments == 3)
        // Nothing set: nothing goes.
        plan = RetentionPlan.make(segments: segments, settings: LogSettings(), floor: 500, floorReason: "end", now: .max)
        #expect(plan.removedSegments == 0)
        #expect(plan.start == 0)
    }

    // MARK: A real log

    @Test func retentionBySizeRemovesOldSegmentsAndStreamsGoOn() throws {
        let dir = TemporaryDirectory()
        let log = try Self.filledLog(dir)
        let before = Self.segmentFiles(dir)
        #expect(before.count >= 8, "\(before)")
        let versions = try (0..<Self.streams).map { try log.streamInfo("order-\($0)")?.currentVersion }

        try log.updateSettings(LogSettings(retainBytes: 4 * 4096))
        #expect(try log.settings() == LogSettings(retainBytes: 4 * 4096))
        let dry = try log.compact(dryRun: true)
        #expect(dry.dryRun && dry.segmentsAfter < dry.segmentsBefore)
        #expect(Self.segmentFiles(dir) == before, "a dry run removed files")
        #expect(log.startPosition == 0)

        let result = try log.compact()
        #expect(result.segmentsBefore == before.count)
        #expect(result.segmentsAfter == dry.segmentsAfter)
        #expect(result.bytesAfter <= 4 * 4096)
        #expect(result.startPosition > 0 && result.startPosition == log.startPosition)
        #expect(result.eventsRemoved == result.startPosition)
        let after = Self.segmentFiles(dir)
        #expect(after.count == result.segmentsAfter)
        #expect(after == Array(before.suffix(after.count)), "not the oldest segments went")
        #expect(log.maintenanceStatus.lastResult == result)

        // Reads: from 0 goes on from the start; one removed position is its own error.
        let start = log.startPosition
        #expect(try log.events(from: 0).first?.position == start)
        #expect(try log.events(from: 0).count == 600 - Int(start))
        #expect(throws: EventLogError.positionRemoved(position: 0, start: start)) { try log.event(at: 0) }
        #expect(try log.event(at: start).position == start)

        // Every stream keeps its version: appends with exact expectations go on.
        for s in 0..<Self.streams {
            let current = try #require(versions[s])
            #expect(try log.streamInfo("order-\(s)")?.currentVersion == current)
            let surviving = try log.events(inStream: "order-\(s)")
            #expect(surviving.allSatisfy { $0.position >= start })
            #expect(surviving.last?.version == current)
            try log.append([NewEvent(stream: "order-\(s)", type: "Shipped", data: [1])], expecting: ["order-\(s)": .exact(current)])
        }
        try log.close()

        // Reopened: after a clean close, and after a crash (released unclosed).
        for round in 0..<2 {
            let reopened = try Log.open(at: dir.path, options: Self.options())
            #expect(reopened.startPosition == start)
            for s in 0..<Self.streams {
                #expect(try reopened.streamInfo("order-\(s)")?.currentVersion == (versions[s] ?? 0) + 1 + UInt64(round))
            }
            try reopened.append((0..<Self.streams).map { NewEvent(stream: "order-\($0)", type: "Again", data: []) })
            if round == 0 { try reopened.close() } else { try reopened.sync() }
        }
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func cursorsAndParkedEventsHoldRetentionBack() throws {
        let dir = TemporaryDirectory()
        let log = try Self.filledLog(dir)
        // A cursor named in the settings that does not exist yet holds everything.
        try log.updateSettings(LogSettings(retainBytes: 1, retainCursors: ["relay"]))
        var result = try log.compact()
        #expect(result.segmentsAfter == result.segmentsBefore)
        #expect(result.heldBackBy?.contains("relay") == true)
        // At position 250: only segments wholly below it go.
        try log.commitCursor("relay", position: 250)
        result = try log.compact()
        #expect(result.startPosition > 0 && result.startPosition <= 250)
        #expect(result.heldBackBy?.contains("cursor relay at position 250") == true)
        #expect(try log.events(from: 250).first?.position == 250)

        // A parked event holds back what a cursor would not.
        let group = try log.consumerGroup("billing", options: ConsumerGroupOptions(maxDeliveries: 1))
        let delivered = try group.receive(maxCount: 1)
        let parkedAt = try #require(delivered.first?.event.position)
        try group.nack(parkedAt)
        #expect(group.parked().map(\.position) == [parkedAt])
        try log.commitCursor("relay", position: 600)
        result = try log.compact()
        #expect(result.startPosition <= parkedAt)
        #expect(result.heldBackBy?.contains("billing") == true)
        #expect(try log.event(at: parkedAt).position == parkedAt)
        try log.close()
    }

    @Test func aCrashBeforeTheUnlinkIsFinishedByTheNextOpen() throws {
        let dir = TemporaryDirectory()
        let log = try Self.filledLog(dir)
        try log.close()
        // Keep copies of the files retention is about to remove.
        let saved = TemporaryDirectory()
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasSuffix(".streamtable") && $0.first?.isNumber == true }
        for name in names { try FileManager.default.copyItem(atPath: dir.sub(name), toPath: saved.sub(name)) }

        let writer = try Log.open(at: dir.path, options: Self.options())
        try writer.updateSettings(LogSettings(retainBytes: 3 * 4096))
        let start = try writer.compact().startPosition
        try writer.close()
        // As if the power failed after eventlog.start was replaced, before the unlink.
        var restored: [String] = []
        for name in names where !FileManager.default.fileExists(atPath: dir.sub(name)) {
            try FileManager.default.copyItem(atPath: saved.sub(name), toPath: dir.sub(name))
            restored.append(name)
        }
        #expect(restored.contains { $0.hasSuffix(".segment") })

        // verify and a reader ignore them; a writer removes them.
        #expect(try Log.verify(at: dir.path).isSound)
        let reader = try Log.open(at: dir.path, options: Self.options(readOnly: true))
        #expect(reader.startPosition == start)
        #expect(try reader.events(from: 0).first?.position == start)
        try reader.close()
        #expect(restored.allSatisfy { FileManager.default.fileExists(atPath: dir.sub($0)) })
        let reopened = try Log.open(at: dir.path, options: Self.options())
        #expect(reopened.startPosition == start)
        #expect(Set(reopened.recovery.removedFiles) == Set(restored))
        #expect(restored.allSatisfy { !FileManager.default.fileExists(atPath: dir.sub($0)) })
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A failure at every file operation of a retention run, then the
    /// process gone: the next open shows the old start or the new one,
    /// every event from it, and every stream's version.
    @Test func aFailureAtEveryStepLeavesTheOldOrTheNewState() throws {
        var step = 0
        var sawNewStart = false
        var sawOldStart = false
        while true {
            let dir = TemporaryDirectory("eventlog-retention", preferMemory: true)  // many runs: syncs cost nothing in memory
            let failAt = step
            let failing = FailingStep(failAt: failAt)
            var options = Self.options()
            options.storageFaults = failing.faults
            var log: Log? = try Log.open(at: dir.path, options: options)
            for first in stride(from: 0, to: 600, by: 10) { try log?.append((first..<(first + 10)).map(Self.event)) }
            let versions = try (0..<Self.streams).map { try log?.streamInfo("order-\($0)")?.currentVersion }
            try log?.updateSettings(LogSettings(retainBytes: 3 * 4096))
            failing.arm()
            let completed = (try? log?.compact()) != nil
            let operations = failing.disarm()
            // The process is gone (nothing closed): its background work is
            // let finish first, as a dead process does nothing afterwards.
            log?.batches.segments.waitForIndexWrites()
            let released = CrashFixtures.abandon(&log, timeout: .seconds(5))

            let reopened = try Log.open(at: dir.path, options: Self.options())
            let start = reopened.startPosition
            if start == 0 { sawOldStart = true } else { sawNewStart = true }
            #expect(completed ? start > 0 : true, "step \(failAt)")
            #expect(released, "step \(failAt): the released log stayed alive")
            #expect(try reopened.events(from: 0).map(\.position) == Array(start..<600), "step \(failAt)")
            for s in 0..<Self.streams {
                #expect(try reopened.streamInfo("order-\(s)")?.currentVersion == versions[s], "step \(failAt), stream \(s)")
            }
            try reopened.close()
            #expect(try Log.verify(at: dir.path).isSound, "step \(failAt)")
            // Past the last operation the run completes: every step was tried.
            if failAt >= operations { break }
            step += 1
        }
        #expect(step >= 5, "only \(step) file operations in a retention run")
        #expect(sawOldStart && sawNewStart)
    }

    /// A log released without `close()` keeps its writer lock until its
    /// background writes (index files, runs, merges) are done: a writer
    /// opened next in the same process never races them (before, its
    /// removal of leftover `.tmp` files could pull one from under a
    /// background rename, and the open failed). That writer waits for them
    /// (`ReleasedWriterLocks`), beyond the 100 ms an open gives a lock held
    /// elsewhere: before, it failed as locked by another process.
    @Test func aReleasedLogHoldsItsLockUntilItsBackgroundWritesAreDone() throws {
        let dir = TemporaryDirectory("eventlog-release", preferMemory: true)
        let slow = Mutex(false)
        let held = Mutex(true)
        let waiting = Mutex(false)
        let renamesHeld = Mutex(0)
        var options = Self.options()
        // Once armed, background renames into place wait until the test lets
        // them go (300 ms after it released the log): however slowly the test
        // itself runs, they are still under way when it opens the log again.
        options.storageFaults = StorageFaults { operation, path in
            if operation == .rename, path.hasSuffix(".tmp"), slow.withLock({ $0 }) {
                waiting.withLock { $0 = true }
                var waited = 0
                while held.withLock({ $0 }) && waited < 30_000 {
                    usleep(1000)
                    waited += 1
                }
                renamesHeld.withLock { $0 += 1 }
            }
            return nil
        }
        var log: Log? = try Log.open(at: dir.path, options: options)
        for first in stride(from: 0, to: 300, by: 10) { try log?.append((first..<(first + 10)).map(Self.event)) }
        slow.withLock { $0 = true }
        // More than a checkpoint's worth (4 KiB): queues index and run writes, now slow.
        for first in stride(from: 300, to: 400, by: 10) { try log?.append((first..<(first + 10)).map(Self.event)) }
        try log?.sync()
        // Released once a background write is under way (one queued but not
        // started is dropped with the log: it would write nothing).
        var polls = 0
        while !waiting.withLock({ $0 }) && polls < 10_000 {
            usleep(1000)
            polls += 1
        }
        #expect(waiting.withLock { $0 }, "no background rename started")
        log = nil  // released, no close: its background writes are still under way
        let release = Thread {
            usleep(300_000)
            held.withLock { $0 = false }
        }
        release.start()
        let start = ContinuousClock.now
        let reopened = try Log.open(at: dir.path, options: Self.options())
        let took = ContinuousClock.now - start
        // It waited for the held rename to be let go and done, past the 100
        // ms of retries that would have refused the log as locked.
        #expect(took >= .milliseconds(250), "the open took \(took)")
        #expect(renamesHeld.withLock { $0 } >= 1)
        // Nothing was lost.
        #expect(reopened.endPosition == 400)
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// The table of released logs' locks holds a lock only while its file
    /// handle lives (its descriptor open: the lock held).
    @Test func aReleasedLockCountsOnlyWhileItsHandleLives() throws {
        let dir = TemporaryDirectory()
        var handle: EventLog.FileHandle? = try EventLog.FileHandle.open(dir.sub("eventlog.lock"), create: .ownerOnly, faults: nil)
        let identity = try #require(try handle?.identity())
        #expect(!ReleasedWriterLocks.holds(identity))
        if let handle { ReleasedWriterLocks.noteReleased(handle) }
        #expect(ReleasedWriterLocks.holds(identity))
        handle = nil
        #expect(!ReleasedWriterLocks.holds(identity))
    }

    @Test func aReadOnlyProcessLetsGoOfRemovedSegments() throws {
        let dir = TemporaryDirectory()
        let writer = try Self.filledLog(dir)
        try writer.sync()
        let reader = try Log.open(at: dir.path, options: Self.options(readOnly: true))
        #expect(reader.startPosition == 0)
        try writer.updateSettings(LogSettings(retainBytes: 3 * 4096))
        let start = try writer.compact().startPosition
        #expect(start > 0)
        _ = try reader.refresh()
        #expect(reader.startPosition == start)
        #expect(try reader.events(from: 0).count == 600 - Int(start))
        #expect(try reader.streamInfo("order-1")?.currentVersion == writer.streamInfo("order-1")?.currentVersion)
        try reader.close()
        try writer.close()
    }

    @Test func withoutRunsReachingTheStartTheOpenFails() throws {
        let dir = TemporaryDirectory()
        let log = try Self.filledLog(dir)
        try log.updateSettings(LogSettings(retainBytes: 3 * 4096))
        let start = try log.compact().startPosition
        try log.close()
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".streamtable") {
            try FileManager.default.removeItem(atPath: dir.sub(name))
        }
        #expect(try Log.verify(at: dir.path).problems.contains { $0.file == dir.sub("eventlog.start") })
        // The streams of the removed segments are nowhere else: refused, the same way each time.
        for _ in 0..<2 {
            #expect {
                _ = try Log.open(at: dir.path, options: Self.options())
            } throws: { error in
                guard case .corruption(let file, _, let reason)? = error as? EventLogError else { return false }
                return file == dir.sub("eventlog.start") && reason.contains("starts at position \(start)")
            }
        }
    }

    @Test func backgroundRetentionRunsOnItsInterval() throws {
        let dir = TemporaryDirectory()
        var options = Self.options()
        options.maintenanceInterval = .milliseconds(20)
        let log = try Log.open(at: dir.path, options: options)
        try log.updateSettings(LogSettings(retainBytes: 3 * 4096))
        for first in stride(from: 0, to: 600, by: 10) { try log.append((first..<(first + 10)).map(Self.event)) }
        let deadline = Date().addingTimeInterval(10)
        while (log.maintenanceStatus.lastResult?.eventsRemoved ?? 0) == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        let result = try #require(log.maintenanceStatus.lastResult)
        #expect(result.startPosition > 0 && result.startPosition <= log.startPosition)
        #expect(log.maintenanceStatus.lastFailure == nil)
        try log.close()
    }

    @Test func aFailingBackgroundRunIsReportedNotSilent() throws {
        let dir = TemporaryDirectory()
        var options = Self.options()
        options.maintenanceInterval = .milliseconds(20)
        let log = try Log.open(at: dir.path, options: options)
        try log.updateSettings(LogSettings(retainBytes: 3 * 4096))
        // A damaged settings file: each run fails, naming it, and removes nothing.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.sub("eventlog.settings"))))
        bytes[20] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: dir.sub("eventlog.settings")))
        for first in stride(from: 0, to: 600, by: 10) { try log.append((first..<(first + 10)).map(Self.event)) }
        let deadline = Date().addingTimeInterval(10)
        while log.maintenanceStatus.lastFailure == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        let failure = try #require(log.maintenanceStatus.lastFailure)
        #expect(failure.contains("eventlog.settings"), "\(failure)")
        #expect(log.maintenanceStatus.lastFailureAt != nil)
        #expect(log.startPosition == 0)
        // Repaired: the next run succeeds and clears the failure.
        try log.updateSettings(LogSettings(retainBytes: 3 * 4096))
        while log.maintenanceStatus.lastFailure != nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(log.maintenanceStatus.lastFailure == nil)
        #expect(log.maintenanceStatus.lastResult != nil)
        try log.close()
    }

    // MARK: The settings file (§3.2)

    @Test func settingsRoundTripAndDamageIsNamed() throws {
        let settings = LogSettings(retainAge: .seconds(86_400), retainBytes: 10 << 30, retainCursors: ["relay", "audit"])
        let bytes = LogSettingsFile.encode(settings)
        #expect(try LogSettingsFile.decode(bytes, file: "s") == settings)
        #expect(try LogSettingsFile.decode(LogSettingsFile.encode(LogSettings()), file: "s") == LogSettings())
        // Every single flipped byte is refused, never misread.
        for i in bytes.indices {
            var damaged = bytes
            damaged[i] ^= 0x10
            #expect(throws: EventLogError.self) { _ = try LogSettingsFile.decode(damaged, file: "s") }
        }
        var future = bytes
        future[8] = UInt8(FormatVersion.current + 1)
        #expect(throws: EventLogError.unsupportedFormatVersion(file: "s", found: Int(FormatVersion.current) + 1, supported: Int(FormatVersion.current))) {
            _ = try LogSettingsFile.decode(future, file: "s")
        }
        // Bad settings are refused before anything is written.
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(throws: EventLogError.self) { try log.updateSettings(LogSettings(retainAge: .milliseconds(10))) }
        #expect(throws: EventLogError.self) { try log.updateSettings(LogSettings(retainCursors: ["a", "a"])) }
        #expect(throws: EventLogError.self) { try log.updateSettings(LogSettings(retainAge: .seconds(Int64.max))) }
        #expect(throws: EventLogError.self) { try log.updateSettings(LogSettings(retainBytes: 0)) }
        #expect(!FileManager.default.fileExists(atPath: dir.sub("eventlog.settings")))
        try log.close()
    }
}
