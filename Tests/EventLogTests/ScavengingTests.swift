import Foundation
import Synchronization
import Testing
@testable import EventLog

/// Scavenging (Format.md §4, "Rewritten segments"): sealed segments
/// rewritten without the events of deleted streams and the events below a
/// stream's truncate-before; positions kept, gaps between batches, every
/// marker kept, crash-safe, seen by read-only processes.
@Suite struct ScavengingTests {
    static let streams = 23

    static func options(readOnly: Bool = false, compression: Compression = .none) -> LogOptions {
        var options = RetentionTests.options(readOnly: readOnly)
        options.compression = compression
        return options
    }

    /// 600 events over 23 streams in batches of 10, then: streams 0–4
    /// hard-deleted, 5–9 soft-deleted (5 and 6 recreated with two more
    /// events), 10–14 truncated before version 20, 15 truncated before 3.
    static func prepared(_ dir: TemporaryDirectory, compression: Compression = .none, floorsCacheLimit: Int? = nil) throws -> Log {
        var options = options(compression: compression)
        options.floorsCacheLimit = floorsCacheLimit
        let log = try Log.open(at: dir.path, options: options)
        for first in stride(from: 0, to: 600, by: 10) {
            try log.append((first..<(first + 10)).map(RetentionTests.event))
        }
        for s in 0..<5 { _ = try log.deleteStream("order-\(s)", hard: true) }
        for s in 5..<10 { _ = try log.deleteStream("order-\(s)") }
        for s in 5..<7 { try log.append([RetentionTests.event(s), RetentionTests.event(s + Self.streams)]) }
        for s in 10..<15 { _ = try log.truncateStream("order-\(s)", before: 20) }
        _ = try log.truncateStream("order-15", before: 3)
        return log
    }

    /// The positions that survive scavenging: every marker, every event at
    /// or after its stream's truncate-before.
    static func survivors(of events: [Event], in log: Log) throws -> [UInt64] {
        var truncateBefore: [String: UInt64] = [:]
        for s in 0..<streams { truncateBefore["order-\(s)"] = try log.streamInfo("order-\(s)")?.truncateBefore ?? 0 }
        return events.filter { $0.type.hasPrefix("$") || $0.version >= truncateBefore[$0.stream, default: 0] }.map(\.position)
    }

    static func streamContents(_ log: Log) throws -> [[UInt64]] {
        try (0..<streams).map { s in
            do { return try log.events(inStream: "order-\(s)").map(\.version) } catch { return [UInt64.max] }
        }
    }

    @Test(arguments: [Compression.none, .lz4])
    func deadEventsLeaveTheDiskAndEverythingElseReadsAsBefore(compression: Compression) throws {
        let dir = TemporaryDirectory()
        let log = try Self.prepared(dir, compression: compression)
        let before = try log.events(from: 0)
        let streamsBefore = try Self.streamContents(log)
        let infosBefore = try (0..<Self.streams).map { try log.streamInfo("order-\($0)") }
        let expected = try Self.survivors(of: before, in: log)
        #expect(expected.count < before.count - 100)

        let dry = try log.compact(dryRun: true)
        #expect(dry.segmentsRewritten > 0)
        #expect(try log.events(from: 0).count == before.count, "a dry run changes nothing")
        let result = try log.compact()
        #expect(result.segmentsRewritten == dry.segmentsRewritten)
        #expect(result.startPosition == 0)
        let after = try log.events(from: 0)
        // Not every dead event goes: a segment with fewer than 1/16 dead stays as it is.
        let removed = Set(before.map(\.position)).subtracting(after.map(\.position))
        #expect(UInt64(removed.count) == result.eventsRemoved)
        #expect(removed.isSubset(of: Set(before.map(\.position)).subtracting(expected)), "only dead events go")
        #expect(removed.count > 100)
        // Survivors are byte for byte what they were.
        let byPosition = Dictionary(uniqueKeysWithValues: before.map { ($0.position, $0) })
        for event in after { #expect(byPosition[event.position] == event) }
        #expect(try Self.streamContents(log) == streamsBefore)
        #expect(try (0..<Self.streams).map { try log.streamInfo("order-\($0)") } == infosBefore)

        // A point read of a removed position says so; reads from it go on at the next survivor.
        let gone = try #require(removed.min())
        #expect {
            _ = try log.event(at: gone)
        } throws: { error in
            guard case .positionRemoved(let position, _)? = error as? EventLogError else { return false }
            return position == gone
        }
        #expect(try log.events(from: gone, maxCount: 1).first?.position == after.first { $0.position > gone }?.position)
        // A cursor at a removed position: its lag counts the events still there, and a consumer goes on.
        try log.commitCursor("relay", position: gone)
        let lag = try #require(try log.lag(ofCursor: "relay"))
        #expect(lag.events == UInt64(after.filter { $0.position >= gone }.count))
        #expect(lag.oldestUnconsumedAgeMicroseconds != nil)

        // Versions go on; the log reopens, verifies, and inspect says what was rewritten.
        let appended = try log.append(
            to: "order-10", expectedVersion: .exact(infosBefore[10]?.currentVersion ?? 0), [RetentionTests.event(10)])
        #expect(appended.streams.first?.firstVersion == (infosBefore[10]?.currentVersion ?? 0) + 1)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
        let inspection = try Log.inspect(at: dir.path)
        // Every rewritten segment is there, or merged with its small neighbours (Format.md §4.2).
        #expect(inspection.segments.count == result.segmentsAfter)
        #expect(inspection.segments.filter(\.isRewritten).count <= result.segmentsRewritten + result.segmentsMerged)
        #expect(inspection.segments.filter(\.isRewritten).count >= (result.segmentsMerged > 0 ? 1 : result.segmentsRewritten))
        let reopened = try Log.open(at: dir.path, options: Self.options(compression: compression))
        #expect(try reopened.events(from: 0).dropLast().map(\.position) == after.map(\.position))
        #expect(try Self.streamContents(reopened).enumerated().allSatisfy { i, versions in
            i == 10 ? versions == streamsBefore[10] + [versions.last ?? 0] : versions == streamsBefore[i]
        })
        // A second pass finds nothing more to do above the threshold it already applied.
        #expect(try reopened.compact().segmentsRewritten == 0)
        try reopened.close()
    }

    /// The stream table rebuilt by replaying a scavenged log (its runs
    /// removed: derived data while the log starts at 0) gives every stream
    /// the same versions, deletions and truncations.
    /// A pass's cache of stream floors is bounded (`LogOptions.streamMemoryBytes`):
    /// with room for 2 of the 23 streams it empties and fills again all the
    /// time, and the pass removes exactly what a roomy one does.
    @Test func aFloorsCacheTooSmallForTheStreamsRemovesTheSameEvents() throws {
        let roomyDir = TemporaryDirectory()
        let roomy = try Self.prepared(roomyDir)
        defer { try? roomy.close() }
        let tightDir = TemporaryDirectory()
        let tight = try Self.prepared(tightDir, floorsCacheLimit: 2)
        defer { try? tight.close() }
        let roomyResult = try roomy.compact()
        let tightResult = try tight.compact()
        #expect(tightResult.eventsRemoved > 100)
        #expect(tightResult.eventsRemoved == roomyResult.eventsRemoved)
        #expect(tightResult.segmentsRewritten == roomyResult.segmentsRewritten)
        #expect(try tight.events(from: 0).map(\.position) == roomy.events(from: 0).map(\.position))
        #expect(try Self.streamContents(tight) == Self.streamContents(roomy))
    }

    @Test func aReplayOfAScavengedLogRebuildsTheSameStreams() throws {
        let dir = TemporaryDirectory()
        let log = try Self.prepared(dir)
        _ = try log.compact()
        let infos = try (0..<Self.streams).map { try log.streamInfo("order-\($0)") }
        try log.close()
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".streamtable") {
            try FileManager.default.removeItem(atPath: dir.sub(name))
        }
        let reopened = try Log.open(at: dir.path, options: Self.options())
        #expect(reopened.recovery.replayedRecords > 0)
        for s in 0..<Self.streams {
            let info = try reopened.streamInfo("order-\(s)")
            #expect(info?.currentVersion == infos[s]?.currentVersion, "stream \(s)")
            #expect(info?.truncateBefore == infos[s]?.truncateBefore, "stream \(s)")
            #expect(info?.deletion == infos[s]?.deletion, "stream \(s)")
            #expect(info?.count == infos[s]?.count, "stream \(s)")
        }
        try reopened.close()
    }

    /// A failure at every file operation of a scavenging run, then the
    /// process gone: the next open shows every event of the old log or of
    /// the new one in each segment, every stream as before, and verifies.
    @Test func aFailureAtEveryStepLeavesTheOldOrTheNewSegment() throws {
        var step = 0
        var sawOld = false
        var sawNew = false
        while true {
            let dir = TemporaryDirectory("eventlog-scavenge", preferMemory: true)
            let failAt = step
            let failing = FailingStep(failAt: failAt)
            var options = Self.options()
            options.storageFaults = failing.faults
            var log: Log? = try Log.open(at: dir.path, options: options)
            for first in stride(from: 0, to: 300, by: 10) { try log?.append((first..<(first + 10)).map(RetentionTests.event)) }
            for s in 0..<4 { _ = try log?.deleteStream("order-\(s)", hard: true) }
            try log?.sync()
            let before = try log?.events(from: 0) ?? []
            let dead = try Set(before.map(\.position)).subtracting(Self.survivors(of: before, in: try #require(log)))
            let streams = try Self.streamContents(try #require(log))
            failing.arm()
            let completed = (try? log?.compact()) != nil
            let operations = failing.disarm()
            log?.batches.segments.waitForIndexWrites()
            #expect(CrashFixtures.abandon(&log, timeout: .seconds(5)), "step \(failAt): the released log stayed alive")

            let reopened = try Log.open(at: dir.path, options: Self.options())
            let positions = Set(try reopened.events(from: 0).map(\.position))
            let missing = Set(before.map(\.position)).subtracting(positions)
            #expect(missing.isSubset(of: dead), "step \(failAt): a live event went")
            #expect(positions.isSubset(of: Set(before.map(\.position))), "step \(failAt)")
            if missing.isEmpty { sawOld = true } else { sawNew = true }
            #expect(completed ? !missing.isEmpty : true, "step \(failAt)")
            #expect(try Self.streamContents(reopened) == streams, "step \(failAt)")
            try reopened.close()
            #expect(try Log.verify(at: dir.path).isSound, "step \(failAt)")
            if failAt >= operations { break }
            step += 1
        }
        #expect(step >= 5, "only \(step) file operations in a scavenging run")
        #expect(sawOld && sawNew)
    }

    /// A read-only process beside the writer reads the rewritten segments
    /// after `refresh()`, and lets go of the old files.
    @Test func aReadOnlyProcessSeesRewrittenSegments() throws {
        let dir = TemporaryDirectory()
        let writer = try Self.prepared(dir)
        try writer.sync()
        let reader = try Log.open(at: dir.path, options: Self.options(readOnly: true))
        let before = try reader.events(from: 0).count
        let streams = try Self.streamContents(reader)
        #expect(try writer.compact().segmentsRewritten > 0)
        // Before its refresh the reader still reads the old files, whole.
        #expect(try reader.events(from: 0).count == before)
        _ = try reader.refresh()
        #expect(try reader.events(from: 0).map(\.position) == writer.events(from: 0).map(\.position))
        #expect(try Self.streamContents(reader) == streams)
        let mapped = reader.batches.segments.snapshot().sealed.map(\.fileIdentity)
        let onDisk = reader.batches.segments.snapshot().sealed.map { FileIdentity.of($0.path) }
        #expect(mapped == onDisk)
        try reader.close()
        try writer.close()
    }

    /// `close()` during a background scavenging pass waits only for the
    /// segment being rewritten (each swap made slow here), not the pass;
    /// the next writer finishes it.
    @Test func closeDuringABackgroundPassStopsIt() throws {
        let dir = TemporaryDirectory("eventlog-scavenge-close", preferMemory: true)
        let slow = Mutex(false)
        var options = Self.options()
        options.storageFaults = StorageFaults { operation, path in
            if operation == .rename, path.hasSuffix(".segment.tmp"), slow.withLock({ $0 }) { usleep(100_000) }
            return nil
        }
        var log: Log? = try Log.open(at: dir.path, options: options)
        for first in stride(from: 0, to: 1200, by: 10) { try log?.append((first..<(first + 10)).map(RetentionTests.event)) }
        for s in 0..<12 { _ = try log?.deleteStream("order-\(s)", hard: true) }
        try log?.close()
        slow.withLock { $0 = true }
        options.maintenanceInterval = .milliseconds(10)
        log = try Log.open(at: dir.path, options: options)
        // The background pass is under way once a rewritten file appears.
        var waited = 0
        while try Log.inspect(at: dir.path).segments.allSatisfy({ !$0.isRewritten }) && waited < 1000 {
            usleep(5000)
            waited += 1
        }
        let started = ContinuousClock.now
        try log?.close()
        let closing = ContinuousClock.now - started
        #expect(closing < .milliseconds(1000), "close waited \(closing) for the scavenging pass")
        slow.withLock { $0 = false }
        var again = Self.options()
        again.maintenanceInterval = nil
        let reopened = try Log.open(at: dir.path, options: again)
        #expect(try reopened.compact().segmentsRewritten > 0, "the pass stopped early: segments were left")
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

}
