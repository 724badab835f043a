import Foundation
import Testing
@testable import EventLog

/// Damage anywhere but the torn tail is an error naming the file and byte
/// offset, never a silently shorter log.
@Suite struct CorruptionTests {
    func smallSegmentsLog(_ dir: TemporaryDirectory, events: Int = 400, close: Bool = true) throws {
        var options = LogOptions(durability: .none)
        options.segmentBytes = 8 << 10
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<events, batch: 10, size: 60)
        if close { try log.close() }
    }

    @Test func bitFlipInASealedSegment() throws {
        let dir = TemporaryDirectory()
        try smallSegmentsLog(dir)
        let segments = Fixtures.segments(dir)
        #expect(segments.count >= 4)
        let target = segments[1]
        let batch = Fixtures.batches(in: target)[0]
        let damagedOffset = Fixtures.firstRecord(in: target, batchAt: batch.offset) + 20
        Damage.flipBit(target, at: damagedOffset, bit: 3)

        let report = try Log.verify(at: dir.path)
        #expect(!report.isSound)
        #expect(report.problems.contains { $0.file == target && $0.offset == Int64(batch.offset) })
        // One damaged batch is one problem: verify resynchronises after it and claims no missing segment.
        #expect(report.problems.count == 1, "\(report.problems)")
        #expect(report.events == 400 - UInt64(batch.count))

        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(log.endPosition == 400)
        // Reading through the damaged batch fails, naming the file and offset.
        do {
            try log.read(from: 0) { _ in }
            Issue.record("a damaged batch was read")
        } catch let EventLogError.corruption(file, offset, _) {
            #expect(file == target)
            #expect(offset == Int64(batch.offset))
        }
        // A point read of an event of the damaged record fails too.
        #expect(throws: EventLogError.self) { try log.event(at: batch.base) }
        // Everything after the damaged batch stays readable: nothing is dropped.
        let after = batch.base + UInt64(batch.count)
        let rest = try log.events(from: after)
        #expect(rest.count == 400 - Int(after))
        #expect(rest.first?.position == after)
        try log.close()
    }

    @Test func bitFlipInTheMiddleOfTheActiveSegmentAfterACrash() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try Fixtures.append(log, 0..<100, batch: 10)
        let segment = Fixtures.segments(dir)[0]
        let batches = Fixtures.batches(in: segment)
        _ = consume log  // a crash: no close
        Damage.flipBit(segment, at: batches[3].offset + 70)
        do {
            _ = try Log.open(at: dir.path, options: LogOptions(durability: .none))
            Issue.record("a damaged middle batch was treated as a torn tail")
        } catch let EventLogError.corruption(file, offset, _) {
            #expect(file == segment)
            #expect(offset == Int64(batches[3].offset))
        }
        // Nothing was cut: the file still holds every batch.
        #expect(Fixtures.batches(in: segment).count == 10)
    }

    @Test func foreignSegment() throws {
        let dir = TemporaryDirectory()
        let other = TemporaryDirectory()
        try smallSegmentsLog(dir, events: 50)
        try smallSegmentsLog(other, events: 50)
        let mine = Fixtures.segments(dir)
        let theirs = Fixtures.segments(other)
        Damage.write(mine[0], Damage.read(theirs[0]))
        #expect {
            try Log.open(at: dir.path, options: LogOptions(durability: .none))
        } throws: { error in
            guard case EventLogError.foreignFile(let file, _)? = error as? EventLogError else { return false }
            return file == mine[0]
        }
    }

    @Test func notASegmentAtAll() throws {
        let dir = TemporaryDirectory()
        try smallSegmentsLog(dir, events: 50)
        let segment = Fixtures.segments(dir)[0]
        Damage.overwrite(segment, at: 0, with: Array("this is not a segment, just text".utf8))
        #expect {
            try Log.open(at: dir.path, options: LogOptions(durability: .none))
        } throws: { error in
            if case EventLogError.foreignFile? = error as? EventLogError { return true }
            return false
        }
    }

    @Test func futureFormatVersion() throws {
        let dir = TemporaryDirectory()
        try smallSegmentsLog(dir, events: 50)
        let segment = Fixtures.segments(dir)[0]
        Damage.overwrite(segment, at: 8, with: [UInt8(FormatVersion.current + 1), 0])
        #expect {
            try Log.open(at: dir.path, options: LogOptions(durability: .none))
        } throws: { error in
            guard case EventLogError.unsupportedFormatVersion(let file, let found, let supported)? = error as? EventLogError
            else { return false }
            return file == segment && found == Int(FormatVersion.current) + 1 && supported == Int(FormatVersion.current)
        }
        // The metadata file is versioned too.
        let dir2 = TemporaryDirectory()
        try smallSegmentsLog(dir2, events: 5)
        Damage.overwrite(dir2.sub("eventlog.meta"), at: 8, with: [UInt8(FormatVersion.current + 1), 0])
        #expect {
            try Log.open(at: dir2.path, options: LogOptions(durability: .none))
        } throws: { error in
            if case EventLogError.unsupportedFormatVersion(_, Int(FormatVersion.current) + 1, Int(FormatVersion.current))? = error as? EventLogError { return true }
            return false
        }
    }

    @Test func missingMiddleSegment() throws {
        let dir = TemporaryDirectory()
        try smallSegmentsLog(dir)
        let segments = Fixtures.segments(dir)
        #expect(segments.count >= 4)
        Damage.remove(segments[2])
        #expect {
            try Log.open(at: dir.path, options: LogOptions(durability: .none))
        } throws: { error in
            if case EventLogError.missingSegment? = error as? EventLogError { return true }
            return false
        }
        #expect(try !Log.verify(at: dir.path).isSound)
    }

    /// Zeros in a sealed segment with data after them: the open refuses it
    /// as damage, and verify names the same file and offset (it used to
    /// report only the positions missing before the next segment).
    @Test func zerosThenDataInASealedSegmentAreDamageToVerifyAsToOpen() throws {
        let dir = TemporaryDirectory()
        try smallSegmentsLog(dir)
        let target = Fixtures.segments(dir)[1]
        let batches = Fixtures.batches(in: target)
        Damage.overwrite(target, at: batches[2].offset, with: [UInt8](repeating: 0, count: batches[2].length))
        for name in dir.files() where name.hasPrefix(FileNames.stem(batches[0].base)) && !name.hasSuffix(".segment") {
            Damage.remove(dir.sub(name))  // so that the open scans the segment
        }
        #expect {
            try Log.open(at: dir.path, options: LogOptions(durability: .none))
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, _)? = error as? EventLogError else { return false }
            return file == target && offset == Int64(batches[2].offset)
        }
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == target && $0.offset == Int64(batches[2].offset) && $0.reason.contains("data again") },
                "\(report.problems)")
    }

    /// After a crash a stream table run that reaches past the end of the
    /// data is evidence that the data was synced: the open refuses, and
    /// verify says so too (it used to find the log sound).
    @Test func aRunPastTheEndOfTheDataIsEvidenceToVerifyAsToOpen() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try Fixtures.append(log, 0..<100, batch: 10)
        try log.close()
        #expect(dir.files().contains(FileNames.streamTableRun(from: 0, to: 100)))
        let segment = Fixtures.segments(dir)[0]
        let batches = Fixtures.batches(in: segment)
        // Only the run is left to say how far the data was synced.
        for name in [FileNames.cleanShutdown, FileNames.offsetIndex(0), FileNames.timeIndex(0), FileNames.streamIndex(0)] {
            Damage.remove(dir.sub(name))
        }
        let length = Damage.read(segment).count
        Damage.overwrite(segment, at: batches[8].offset, with: [UInt8](repeating: 0, count: length - batches[8].offset))
        #expect {
            try Log.open(at: dir.path, options: LogOptions(durability: .none))
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, _)? = error as? EventLogError else { return false }
            return file == segment && offset == Int64(batches[8].offset)
        }
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == segment && $0.offset == Int64(batches[8].offset) && $0.reason.contains("stream table run") },
                "\(report.problems)")
    }

    @Test func missingLastSegmentAfterACleanClose() throws {
        let dir = TemporaryDirectory()
        try smallSegmentsLog(dir)
        let segments = Fixtures.segments(dir)
        Damage.remove(segments.last!)
        #expect(throws: EventLogError.self) { try Log.open(at: dir.path, options: LogOptions(durability: .none)) }
    }
}
