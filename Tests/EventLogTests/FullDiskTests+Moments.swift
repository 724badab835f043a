import Foundation
import Testing

@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

extension SmallTmpfs {
    /// Bytes free on the file system now (`statvfs`).
    var freeBytes: Int {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return 0 }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// Takes all the room but `pages` pages of 4 KiB with a ballast file
    /// (allocated with `posix_fallocate`, so it holds real blocks). False
    /// when the file system could not be filled so.
    func fill(leavingPages pages: Int) -> Bool {
        let ballast = path + "/ballast"
        let size = freeBytes - pages * 4096
        guard size > 0 else { return freeBytes <= pages * 4096 }
        // O_CLOEXEC: a child process another test spawns meanwhile must not
        // inherit the descriptor, or the ballast's blocks stay allocated
        // after `empty()` unlinks it, for as long as that child lives (a
        // "room is back" that is not: ENOSPC on the next index file).
        let fd = open(ballast, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return posix_fallocate(fd, 0, off_t(size)) == 0
    }

    /// Frees what `fill` took, and waits (5 s at most) until the file
    /// system shows the room back. One CI run, with other tests spawning
    /// child processes alongside, met ENOSPC on an index file right after
    /// the unlink (midCursorCommit, `.none`); a child that got a copy of
    /// the ballast's descriptor before its exec is the one holder we know
    /// of, and the cause was not confirmed. The wait rules a late release
    /// out; room that stays gone (held by the log itself) still fails the
    /// test that needs it.
    func empty() {
        unlink(path + "/ballast")
        let deadline = Date().addingTimeInterval(5)
        while freeBytes < 1 << 20 && Date() < deadline { usleep(1_000) }
    }
}

/// Issue 16, "a real full disk": the disk fills at each moment a writer
/// needs room (mid-append, mid-roll, mid-checkpoint, mid-cursor-commit and
/// mid-compaction). Each moment is tried with the free room swept over a
/// seeded set of page counts, from none to a little more than the
/// operation needs, so the failure lands at each of its writes in turn. In
/// every case: the operation succeeds or fails with a typed error (ENOSPC),
/// nothing acknowledged is lost, and once the room is back the log works
/// again (appends and the operation itself), closes, verifies and reopens
/// with everything acknowledged.
@Suite(.serialized, .enabled(if: SmallTmpfs.available, "needs the right to mount a size-limited tmpfs (root)"))
struct FullDiskMomentTests {
    /// The room left, in 4 KiB pages: always none and one, then `count` more
    /// from the seeded generator below `limit`.
    static func pageCounts(seed: UInt64, limit: Int, count: Int = 5) -> [Int] {
        var random = SplitMix64(seed: seed)
        var pages: Set<Int> = [0, 1]
        while pages.count < min(limit, count + 2) { pages.insert(Int(random.next() % UInt64(limit))) }
        return pages.sorted()
    }

    /// Events of seeded sizes: position, stream and data, to compare after reopening.
    struct Ledger {
        var random: SplitMix64
        var acknowledged: [UInt64: NewEvent] = [:]

        init(seed: UInt64) { random = SplitMix64(seed: seed) }

        mutating func batch(_ count: Int, streams: Int = 9, minBytes: Int = 1, maxBytes: Int = 600) -> [NewEvent] {
            (0..<count).map { _ in
                let n = minBytes + Int(random.next() % UInt64(maxBytes - minBytes + 1))
                let stream = "s\(random.next() % UInt64(streams))"
                // A seeded word, then a seeded fill: distinct events without a random draw per byte.
                let word = random.next()
                let data = withUnsafeBytes(of: word) { Array($0) } + [UInt8](repeating: UInt8(truncatingIfNeeded: word >> 8), count: n)
                return NewEvent(stream: stream, type: "T", data: data)
            }
        }

        mutating func note(_ positions: Range<UInt64>, _ batch: [NewEvent]) {
            for (i, e) in zip(positions, batch) { acknowledged[i] = e }
        }

        /// Positions acknowledged that `log` does not hold as acknowledged.
        func lost(in log: Log) -> [UInt64] {
            acknowledged.keys.sorted().filter { position in
                guard let event = try? log.event(at: position), let expected = acknowledged[position] else { return true }
                return event.stream != expected.stream || event.data != expected.data
            }
        }
    }

    /// The failure of an operation on a full disk: a typed ENOSPC.
    static func expectDiskFull(_ error: any Error, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .io(let io)? = error as? EventLogError, io.errno == ENOSPC else {
            Issue.record("\(context): expected a typed ENOSPC, got \(error)", sourceLocation: sourceLocation)
            return
        }
    }

    /// Room again: the log (left open, as a process that goes on) appends
    /// again, closes, verifies and reopens with everything acknowledged.
    static func expectRecovered(
        _ log: Log, _ ledger: inout Ledger, tmpfs: SmallTmpfs, directory: String, options: LogOptions, _ context: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        tmpfs.empty()
        // A writer that stopped (a failed clean-up) refuses until reopened: that is clean too.
        var current = log
        do {
            let batch = ledger.batch(5)
            ledger.note(try current.append(batch), batch)
        } catch {
            guard case .writerStopped? = error as? EventLogError else { throw error }
            _ = try? current.close()
            current = try Log.open(at: directory, options: options)
            let batch = ledger.batch(5)
            ledger.note(try current.append(batch), batch)
        }
        #expect(ledger.lost(in: current) == [], "\(context): acknowledged events lost", sourceLocation: sourceLocation)
        try current.close()
        // Reopened (which rebuilds index files a full disk kept from being
        // written: until then `verify` reports them missing), then verified.
        let reopened = try Log.open(at: directory, options: options)
        #expect(ledger.lost(in: reopened) == [], "\(context): acknowledged events lost after reopening", sourceLocation: sourceLocation)
        let batch = ledger.batch(3)
        ledger.note(try reopened.append(batch), batch)
        try reopened.close()
        let report = try Log.verify(at: directory)
        #expect(report.isSound, "\(context): \(report.problems)", sourceLocation: sourceLocation)
    }

    static func mounted() throws -> SmallTmpfs {
        // 64 MiB: the ballast leaves the seeded few pages free whatever the
        // size; once it is gone there must be room for what the log wrote
        // meanwhile and for what its close writes (a stream table run over
        // every stream change, index files). With 16 MiB a run under
        // `.none` (more appends fit before the disk fills) once found no
        // room at close.
        try #require(SmallTmpfs(bytes: 64 << 20), "could not mount a tmpfs")
    }

    // MARK: Mid-append

    /// Batches of up to 120 KiB into a segment of 4 MiB: the disk fills
    /// when the writer reserves its next MiB ahead (`fallocate`), or, where
    /// it does not reserve, in the middle of a batch's `pwrite`.
    @Test(arguments: [Durability.always, .none], [true, false])
    func midAppend(durability: Durability, reserving: Bool) throws {
        _ = try Self.fillMidAppend(durability: durability, reserving: reserving, seed: 161)
    }

    /// Returns how many appends failed for lack of room (one per page count tried).
    static func fillMidAppend(durability: Durability, reserving: Bool, seed: UInt64) throws -> Int {
        var failures = 0
        for pages in Self.pageCounts(seed: seed, limit: 24) {
            let tmpfs = try Self.mounted()
            let directory = tmpfs.path + "/log"
            var options = LogOptions(segmentBytes: 4 << 20, durability: durability)
            options.reservesSpace = reserving
            options.preallocates = false
            var ledger = Ledger(seed: seed &* 100 &+ UInt64(pages))
            let log = try Log.open(at: directory, options: options)
            let first = ledger.batch(20)
            ledger.note(try log.append(first), first)
            #expect(tmpfs.fill(leavingPages: pages))
            var failed = false
            for _ in 0..<40 where !failed {
                let batch = ledger.batch(100, maxBytes: 1200)
                do {
                    ledger.note(try log.append(batch), batch)
                } catch {
                    Self.expectDiskFull(error, "append with \(pages) pages free")
                    failed = true
                    failures += 1
                }
            }
            #expect(failed, "\(pages) pages free: 40 appends of up to 120 KiB fitted")
            do {
                try Self.expectRecovered(log, &ledger, tmpfs: tmpfs, directory: directory, options: options, "mid-append, \(pages) pages")
            } catch {
                Issue.record("mid-append, \(pages) pages free, once the room was back: \(error)")
            }
        }
        return failures
    }

    // MARK: Mid-roll

    /// The active segment (16 KiB) is nearly full; the next batch rolls: the
    /// new segment's header, its reserved room, and the sealed segment's
    /// index files each meet the full disk in turn.
    @Test(arguments: [Durability.always, .none])
    func midRoll(durability: Durability) throws {
        _ = try Self.fillMidRoll(durability: durability, seed: 162)
    }

    static func fillMidRoll(durability: Durability, seed: UInt64) throws -> Int {
        var failures = 0
        for pages in Self.pageCounts(seed: seed, limit: 10, count: 8) {
            let tmpfs = try Self.mounted()
            let directory = tmpfs.path + "/log"
            var options = LogOptions(segmentBytes: 16 << 10, durability: durability)
            options.preallocates = false
            var ledger = Ledger(seed: seed &* 100 &+ UInt64(pages))
            let log = try Log.open(at: directory, options: options)
            // Fill the first segment to within a batch of its end.
            let segments = { (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter { $0.hasSuffix(".segment") }.count ?? 0 }
            while true {
                let batch = ledger.batch(4, maxBytes: 200)
                ledger.note(try log.append(batch), batch)
                if log.batches.writer.withLock({ $0.active.remaining }) < 2000 { break }
            }
            #expect(segments() == 1)
            #expect(tmpfs.fill(leavingPages: pages))
            var rolled = false
            do {
                let batch = ledger.batch(6, minBytes: 400, maxBytes: 600)  // more than the room left: a roll
                ledger.note(try log.append(batch), batch)
                rolled = true
                #expect(segments() == 2)
            } catch {
                Self.expectDiskFull(error, "a roll with \(pages) pages free")
                failures += 1
            }
            if pages == 0 { #expect(!rolled, "a roll on a disk with no room succeeded") }
            try Self.expectRecovered(log, &ledger, tmpfs: tmpfs, directory: directory, options: options, "mid-roll, \(pages) pages")
        }
        return failures
    }

    // MARK: Mid-checkpoint

    /// A checkpoint (the stream table run of every stream changed since the
    /// last one), then the close (index files, checkpoint, clean-shutdown
    /// marker), each on a full disk; appends go on meanwhile into room
    /// reserved before.
    @Test func midCheckpointAndClose() throws {
        _ = try Self.fillMidCheckpoint(seed: 163)
    }

    static func fillMidCheckpoint(seed: UInt64) throws -> Int {
        var failures = 0
        for pages in Self.pageCounts(seed: seed, limit: 8, count: 6) {
            let tmpfs = try Self.mounted()
            let directory = tmpfs.path + "/log"
            var options = LogOptions(segmentBytes: 1 << 20, durability: .none)
            options.checkpointBytes = 1 << 20
            var ledger = Ledger(seed: seed &* 100 &+ UInt64(pages))
            var log: Log? = try Log.open(at: directory, options: options)
            for _ in 0..<10 {
                let batch = ledger.batch(50, streams: 2000, maxBytes: 40)
                ledger.note(try log!.append(batch), batch)
            }
            #expect(tmpfs.fill(leavingPages: pages))
            do {
                try log!.batches.checkpointNow()
            } catch {
                Self.expectDiskFull(error, "a checkpoint with \(pages) pages free")
                failures += 1
            }
            // Appends into reserved room still work.
            let batch = ledger.batch(10, streams: 2000, maxBytes: 40)
            ledger.note(try log!.append(batch), batch)
            do {
                try log!.close()
                log = nil
            } catch {
                Self.expectDiskFull(error, "close with \(pages) pages free")
                failures += 1
            }
            tmpfs.empty()
            if let open = log {
                // The close failed part way: the log is closed; the next open recovers.
                #expect(open.isClosed)
                log = nil
            }
            let reopened = try Log.open(at: directory, options: options)
            try reopened.batches.checkpointNow()
            try Self.expectRecovered(reopened, &ledger, tmpfs: tmpfs, directory: directory, options: options, "mid-checkpoint, \(pages) pages")
        }
        return failures
    }

    // MARK: Mid-cursor-commit

    /// Cursor commits until the journal cannot grow: each commit is
    /// acknowledged or fails typed, and every cursor reopens at its last
    /// acknowledged position.
    @Test(arguments: [Durability.always, .none])
    func midCursorCommit(durability: Durability) throws {
        _ = try Self.fillMidCursorCommit(durability: durability, seed: 164)
    }

    static func fillMidCursorCommit(durability: Durability, seed: UInt64) throws -> Int {
        var failures = 0
        for pages in Self.pageCounts(seed: seed, limit: 4, count: 3) {
            let tmpfs = try Self.mounted()
            let directory = tmpfs.path + "/log"
            let options = LogOptions(segmentBytes: 1 << 20, durability: durability)
            var ledger = Ledger(seed: seed &* 100 &+ UInt64(pages))
            let log = try Log.open(at: directory, options: options)
            let batch = ledger.batch(200)
            ledger.note(try log.append(batch), batch)
            #expect(tmpfs.fill(leavingPages: pages))
            var committed: [String: UInt64] = [:]
            var failed = false
            var i = 0
            while !failed && i < 5000 {
                let name = "consumer-\(i % 37)-" + String(repeating: "c", count: 100)
                let position = UInt64(i / 37)  // each cursor moves forward (at most 136 of 200)
                do {
                    try log.commitCursor(name, position: position)
                    committed[name] = position
                } catch {
                    Self.expectDiskFull(error, "a cursor commit with \(pages) pages free")
                    failed = true
                    failures += 1
                }
                i += 1
            }
            #expect(failed, "\(pages) pages free: 5,000 commits fitted")
            tmpfs.empty()
            // Commits after a failed one: acknowledged, or refused until reopened.
            do {
                try log.commitCursor("after", position: 1)
                committed["after"] = 1
            } catch {
                guard case .writerStopped? = error as? EventLogError else { throw error }
            }
            try Self.expectRecovered(log, &ledger, tmpfs: tmpfs, directory: directory, options: options, "mid-commit, \(pages) pages")
            let reopened = try Log.open(at: directory, options: options)
            for (name, position) in committed {
                #expect(try reopened.cursorPosition(name) == position, "\(pages) pages free: cursor \(name.prefix(12))")
            }
            try reopened.commitCursor("again", position: 2)
            try reopened.close()
        }
        return failures
    }

    // MARK: Mid-compaction

    /// Scavenging and merging ScavengingTests' log (deleted and truncated
    /// streams, 4 KiB segments) on a full disk: each rewritten or merged
    /// segment, its index files and the manifest meet the full disk in
    /// turn. Every stream reads as before, after the failure and after the
    /// compaction is run again with room.
    @Test func midCompaction() throws {
        _ = try Self.fillMidCompaction(seed: 165)
    }

    static func fillMidCompaction(seed: UInt64) throws -> Int {
        var failures = 0
        let prepared = TemporaryDirectory()
        try ScavengingTests.prepared(prepared).close()
        let options = SegmentMergeTests.options()
        let before: [[UInt64]]
        do {
            let log = try Log.open(at: prepared.path, options: options)
            before = try ScavengingTests.streamContents(log)
            try log.close()
        }
        for pages in Self.pageCounts(seed: seed, limit: 40, count: 8) {
            let tmpfs = try Self.mounted()
            let directory = tmpfs.path + "/log"
            try FileManager.default.copyItem(atPath: prepared.path, toPath: directory)
            var ledger = Ledger(seed: seed &* 100 &+ UInt64(pages))
            var log = try Log.open(at: directory, options: options)
            #expect(tmpfs.fill(leavingPages: pages))
            var compacted = false
            do {
                _ = try log.compact()
                compacted = true
            } catch {
                Self.expectDiskFull(error, "compaction with \(pages) pages free")
                failures += 1
            }
            #expect(try ScavengingTests.streamContents(log) == before, "\(pages) pages free: the streams changed")
            if pages == 0 { #expect(!compacted, "a compaction on a disk with no room succeeded") }
            tmpfs.empty()
            do {
                _ = try log.compact()
            } catch {
                guard case .writerStopped? = error as? EventLogError else { throw error }
                // A merge that failed part way: the next open finishes it, then compaction goes on.
                _ = try? log.close()
                log = try Log.open(at: directory, options: options)
                _ = try log.compact()
            }
            #expect(try ScavengingTests.streamContents(log) == before, "\(pages) pages free: the streams changed after compacting again")
            try Self.expectRecovered(log, &ledger, tmpfs: tmpfs, directory: directory, options: options, "mid-compaction, \(pages) pages")
        }
        return failures
    }
}
