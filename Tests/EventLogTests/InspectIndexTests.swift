import Foundation
import Testing
@testable import EventLog

/// `inspect` reads each segment's extent from its index files, which are
/// derived data: when they are missing, damaged or describe what the segment
/// does not hold, it scans that segment instead and says so. Either way its
/// figures equal those of a walk of every batch header (`scan: true`).
@Suite struct InspectIndexTests {
    enum Harm: String, CaseIterable, CustomStringConvertible {
        /// The offset index file deleted.
        case missing
        /// A bit flipped in the time index: its checksum fails.
        case damaged
        /// Both files rewritten (checksums valid) to name five more events and a last batch past the segment's data.
        case beyondEnd
        /// Both files of the same-base segment of another log: well formed, naming a batch this segment does not hold.
        case foreign

        var description: String { rawValue }
    }

    static var options: LogOptions {
        var options = LogOptions(durability: .none)
        options.segmentBytes = 16 << 10
        options.indexInterval = 256
        return options
    }

    /// Event `i`, its timestamp out of order (the largest is not the last), its data `size` bytes.
    static func event(_ i: Int, size: Int = 50) -> NewEvent {
        var event = Fixtures.event(i, size: size)
        event.timestamp = 1_000_000 + Int64((i &* 7919) % 1000)
        return event
    }

    /// A log of `count` events in several 16 KiB segments, closed cleanly (every segment has its index files).
    static func build(at path: String, count: Int = 600, size: Int = 50) throws {
        let log = try Log.open(at: path, options: options)
        var i = 0
        while i < count {
            let n = min(4, count - i)
            try log.append((i..<(i + n)).map { event($0, size: size) })
            i += n
        }
        try log.close()
    }

    /// Every figure of `fast` equals `full`'s (a walk of every batch header), but batches and how it was read.
    static func expectSameFigures(_ fast: LogInspection, _ full: LogInspection) {
        #expect(fast.startPosition == full.startPosition)
        #expect(fast.endPosition == full.endPosition)
        #expect(fast.missingPositions == full.missingPositions)
        #expect(fast.segments.count == full.segments.count)
        for (a, b) in zip(fast.segments, full.segments) {
            #expect(a.file == b.file)
            #expect(a.basePosition == b.basePosition, "\(a.file)")
            #expect(a.endPosition == b.endPosition, "\(a.file)")
            #expect(a.events == b.events, "\(a.file)")
            #expect(a.bytes == b.bytes, "\(a.file)")
            #expect(a.firstTimestamp == b.firstTimestamp, "\(a.file)")
            #expect(a.lastTimestamp == b.lastTimestamp, "\(a.file)")
            #expect(a.isSealed == b.isSealed && a.isRewritten == b.isRewritten, "\(a.file)")
            #expect(b.scanned == .asked && b.batches != nil, "\(b.file)")
        }
    }

    @Test func intactIndexesGiveTheFiguresOfAFullScanWithoutCountingBatches() throws {
        let dir = TemporaryDirectory()
        try Self.build(at: dir.path)
        let fast = try Log.inspect(at: dir.path)
        let full = try Log.inspect(at: dir.path, scan: true)
        try #require(fast.segments.count >= 3)
        Self.expectSameFigures(fast, full)
        #expect(fast.endPosition == 600)
        for segment in fast.segments {
            #expect(segment.scanned == nil, "\(segment.file): \(String(describing: segment.scanned))")
            #expect(segment.batches == nil && segment.compressedBatches == nil, "\(segment.file)")
        }
        // Timestamps are out of order: a segment's largest is not always its last event's, so taking the last batch's would differ.
        #expect(fast.segments.contains { $0.lastTimestamp != Self.event(Int($0.endPosition) - 1).timestamp })
        #expect(full.segments.reduce(0) { $0 + ($1.batches ?? 0) } == 150)
    }

    @Test(arguments: Harm.allCases)
    func unusableIndexesAreScannedAndSaySo(harm: Harm) throws {
        let dir = TemporaryDirectory()
        try Self.build(at: dir.path)
        let offsetIndex = dir.sub(FileNames.offsetIndex(0))
        let timeIndex = dir.sub(FileNames.timeIndex(0))
        switch harm {
        case .missing:
            Damage.remove(offsetIndex)
        case .damaged:
            Damage.flipBit(timeIndex, at: IndexFileHeader.size + 3)
        case .beyondEnd:
            var (header, offsets) = try IndexFile.decodeOffsetIndex(Damage.read(offsetIndex))
            let (_, times) = try IndexFile.decodeTimeIndex(Damage.read(timeIndex))
            header.lastBatchOffset = header.dataEnd
            header.dataEnd += 512
            header.endPosition += 5
            Damage.write(offsetIndex, IndexFile.encodeOffsetIndex(header, entries: offsets))
            Damage.write(timeIndex, IndexFile.encodeTimeIndex(header, entries: times))
        case .foreign:
            let other = TemporaryDirectory()
            try Self.build(at: other.path, count: 300, size: 60)
            Damage.write(offsetIndex, Damage.read(other.sub(FileNames.offsetIndex(0))))
            Damage.write(timeIndex, Damage.read(other.sub(FileNames.timeIndex(0))))
        }
        let fast = try Log.inspect(at: dir.path)
        let full = try Log.inspect(at: dir.path, scan: true)
        Self.expectSameFigures(fast, full)
        #expect(fast.endPosition == 600)
        let harmed = fast.segments[0]
        guard case .indexUnusable(let reason) = harmed.scanned else {
            Issue.record("segment 0 was not scanned: \(String(describing: harmed.scanned))")
            return
        }
        switch harm {
        case .missing: #expect(reason == "index missing")
        case .damaged: #expect(reason.contains("checksum mismatch"), "\(reason)")
        case .beyondEnd:
            #expect(reason.contains("is not in the segment") || reason.contains("outside the segment"), "\(reason)")
        case .foreign: #expect(reason.contains("is not in the segment"), "\(reason)")
        }
        // A scanned segment's batches are counted, as a full scan counts them.
        #expect(harmed.batches == full.segments[0].batches && harmed.batches != nil)
        for segment in fast.segments.dropFirst() { #expect(segment.scanned == nil, "\(segment.file)") }
    }

    /// The active segment after a crash: its index files are a checkpoint of
    /// a prefix; what follows is found by walking the batch headers after it.
    @Test func anOlderCheckpointOfTheActiveSegmentIsFollowedByAWalk() throws {
        let dir = TemporaryDirectory()
        try Self.build(at: dir.path)
        let segments = Set(Fixtures.segments(dir))
        let last = try #require(try Log.inspect(at: dir.path).segments.last)
        let names = [FileNames.offsetIndex(last.basePosition), FileNames.timeIndex(last.basePosition)]
        let saved = names.map { Damage.read(dir.sub($0)) }
        do {
            let log = try Log.open(at: dir.path, options: Self.options)
            try log.append((600..<610).map { Self.event($0) })
            try log.close()
        }
        try #require(Set(Fixtures.segments(dir)) == segments, "the appends rolled a segment")
        for (name, bytes) in zip(names, saved) { Damage.write(dir.sub(name), bytes) }

        let fast = try Log.inspect(at: dir.path)
        let full = try Log.inspect(at: dir.path, scan: true)
        Self.expectSameFigures(fast, full)
        #expect(fast.endPosition == 610)
        let active = try #require(fast.segments.last)
        #expect(active.scanned == nil, "\(String(describing: active.scanned))")
        #expect(active.endPosition == 610 && active.endPosition > last.endPosition)
    }

    /// What the index files describe is not read: a batch header damaged
    /// inside it does not shorten the segment (a full walk stops there;
    /// `verify` reports it).
    @Test func theBatchesTheIndexesDescribeAreNotWalked() throws {
        let dir = TemporaryDirectory()
        try Self.build(at: dir.path)
        let segment = dir.sub(FileNames.segment(0))
        let batches = Fixtures.batches(in: segment)
        try #require(batches.count > 4)
        Damage.overwrite(segment, at: batches[2].offset, with: [UInt8](repeating: 0xFF, count: 4))
        let fast = try Log.inspect(at: dir.path)
        let full = try Log.inspect(at: dir.path, scan: true)
        let last = try #require(batches.last)
        #expect(fast.segments[0].endPosition == last.base + UInt64(last.count))
        #expect(fast.segments[0].bytes == Int64(last.offset + last.length))
        #expect(full.segments[0].endPosition == batches[2].base)
        #expect(try !Log.verify(at: dir.path).isSound)
    }

    /// The tool names a scanned segment and why, in the text and in `--json`, where its batches are then counted.
    @Test func theToolNamesAScannedSegment() throws {
        let dir = TemporaryDirectory()
        try Self.build(at: dir.path)
        Damage.remove(dir.sub(FileNames.offsetIndex(0)))
        let text = try CLIProcess.run(["inspect", dir.path])
        #expect(text.status == 0, "\(text)")
        #expect(text.lines.contains { $0.hasPrefix("scanned ") && $0.hasSuffix("  \(FileNames.segment(0)): index missing") }, "\(text.stdout)")
        #expect(text.lines.filter { $0.hasPrefix("scanned ") }.count == 1, "\(text.stdout)")
        let json = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(json.status == 0, "\(json)")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let segments = try #require(root["segments"] as? [[String: Any]])
        let full = try Log.inspect(at: dir.path, scan: true)
        #expect(segments[0]["scanned"] as? String == "index missing")
        #expect(segments[0]["batches"] as? Int == full.segments[0].batches)
        for segment in segments.dropFirst() { #expect(segment["scanned"] is NSNull && segment["batches"] is NSNull, "\(segment)") }
        #expect((root["totals"] as? [String: Any])?["batches"] is NSNull)
    }
}
