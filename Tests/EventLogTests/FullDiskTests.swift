import Foundation
import Testing

@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

/// A size-limited tmpfs of its own, mounted for one test: what a Kubernetes
/// `emptyDir` with `medium: Memory`, or `/dev/shm`, gives a service. Needs
/// the right to mount (root, as in CI); `available` says whether it works here.
final class SmallTmpfs {
    let path: String

    init?(bytes: Int) {
        let template = NSTemporaryDirectory() + "eventlog-tmpfs-XXXXXX"
        var buffer = Array(template.utf8CString)
        guard let made = mkdtemp(&buffer) else { return nil }
        path = String(cString: made)
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(bytes)") == 0 else {
            rmdir(path)
            return nil
        }
    }

    /// Gives the file system `bytes` of room in all (files on it stay).
    func resize(bytes: Int) -> Bool {
        mount("tmpfs", path, "tmpfs", UInt(MS_REMOUNT), "size=\(bytes)") == 0
    }

    deinit {
        umount2(path, Int32(MNT_DETACH))
        rmdir(path)
    }

    /// True when this process may mount one (tried once).
    static let available: Bool = SmallTmpfs(bytes: 1 << 20) != nil
}

/// Issue 18: a full disk must never turn a read into a crash. A segment file
/// is sparse past its data; a write that fails for lack of room can leave a
/// torn batch over pages that were never allocated, and reading a hole of a
/// shared mapping on a full tmpfs raises SIGBUS. Readers run here as real
/// processes (`eventlog`), so a crash shows as a signal, not as a dead test run.
@Suite(.serialized) struct FullDiskTests {
    static func line(_ i: Int) -> String {
        "{\"stream\":\"s\(i % 10)\",\"type\":\"T\",\"data\":\"\(String(repeating: "x", count: 80)) \(i)\"}\n"
    }

    /// With `reserving` (the default), the writer allocates space ahead and
    /// a full disk fails an append before it writes; without (a file system
    /// that cannot reserve), the failed write leaves a torn batch over holes.
    @Test(
        .enabled(if: SmallTmpfs.available, "needs the right to mount a size-limited tmpfs (root)"),
        arguments: [Durability.always, .interval(.milliseconds(20)), .none], [true, false])
    func aFullTmpfsCrashesNoReaderAndLosesNothing(durability: Durability, reserving: Bool) throws {
        guard let tmpfs = SmallTmpfs(bytes: 2 << 20) else {
            Issue.record("could not mount a tmpfs")
            return
        }
        let directory = tmpfs.path + "/log"
        var options = LogOptions(durability: durability)
        options.segmentBytes = 1 << 20
        options.reservesSpace = reserving

        // Fill it: appends until one fails for lack of room.
        var log: Log? = try Log.open(at: directory, options: options)
        var acknowledged: [NewEvent] = []
        var failure: EventLogError?
        while failure == nil && acknowledged.count < 1_000_000 {
            let batch = (0..<10).map { k in
                NewEvent(stream: "s\(k)", type: "T", data: Array("\(String(repeating: "x", count: 80)) \(acknowledged.count + k)".utf8))
            }
            do {
                try log?.append(batch)
                acknowledged += batch
            } catch let error as EventLogError {
                failure = error
            }
        }
        guard case .io(let io)? = failure else {
            Issue.record("expected the disk to fill, got \(String(describing: failure)) after \(acknowledged.count) events")
            return
        }
        #expect(io.errno == ENOSPC, "\(io)")
        // Reserved ahead, the append fails before writing: nothing torn.
        if reserving { #expect(io.operation == "fallocate", "\(io)") }
        #expect(acknowledged.count > 1000)
        // The writer dies on the full disk, without close().
        log = nil

        // Readers, still on the full disk: an answer, never a signal.
        let verify = try CLIProcess.run(["verify", directory])
        #expect(!verify.signaled && (verify.status == 0 || verify.status == 1), "verify: \(verify)")
        let inspect = try CLIProcess.run(["inspect", directory])
        #expect(!inspect.signaled && inspect.status == 0, "inspect: \(inspect)")
        let dump = try CLIProcess.run(["dump", directory, "--json"])
        #expect(!dump.signaled && dump.status == 0, "dump: \(dump.status) \(dump.stderr)")
        #expect(dump.lines.count >= acknowledged.count, "dump printed \(dump.lines.count) of \(acknowledged.count) acknowledged events")
        let tail = try CLIProcess.run(["tail", directory])
        #expect(!tail.signaled && tail.status == 0, "tail: \(tail.status) \(tail.stderr)")
        // A writer's open on the full disk: it recovers, or fails with an error; no signal.
        let append = try CLIProcess.run(["append", directory], stdin: Self.line(0))
        #expect(!append.signaled, "append: \(append)")

        // Room again: everything acknowledged is there, and appends work.
        #expect(tmpfs.resize(bytes: 16 << 20))
        let reopened = try Log.open(at: directory, options: options)
        let events = try reopened.events(from: 0)
        #expect(events.count >= acknowledged.count)
        for (i, expected) in acknowledged.enumerated() where i < events.count {
            guard events[i].data == expected.data, events[i].stream == expected.stream else {
                Issue.record("event \(i) differs from what was acknowledged")
                break
            }
        }
        let more = try reopened.append((0..<100).map { NewEvent(stream: "after", type: "T", data: Array("more \($0)".utf8)) })
        #expect(more.count == 100)
        try reopened.close()
        #expect(try Log.verify(at: directory).isSound)
    }
}

/// Issue 18: a mapped file that cannot be read (truncated by another
/// program, a device error) stops a scan with an error naming the file and
/// offset, not SIGBUS ending the process. Scans (open, refresh, verify),
/// reads by position (`read(from:)`: dump, tail, subscriptions), point reads
/// and stream reads are guarded.
@Suite struct MappedReadGuardTests {
    /// 2,000 events in segments of 64 KiB, closed; returns the options it used.
    @discardableResult
    static func closedLogOfSeveralSegments(_ dir: TemporaryDirectory, compression: Compression = .none) throws -> LogOptions {
        var options = LogOptions(durability: .none)
        options.segmentBytes = 64 << 10
        options.compression = compression
        let writer = try Log.open(at: dir.path, options: options)
        // Data LZ4 cannot shrink, so that compressed logs have several segments too.
        var random = SplitMix64(seed: 18)
        for _ in 0..<40 {
            try writer.append((0..<50).map { k in
                NewEvent(stream: "s\(k % 7)", type: "T", data: (0..<100).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            })
        }
        try writer.close()
        return options
    }

    /// `closedLogOfSeveralSegments`, opened read-only: the reader, the second
    /// segment's base and the first segment's path (the one the tests cut).
    static func readerOfSeveralSegments(
        _ dir: TemporaryDirectory, compression: Compression = .none
    ) throws -> (reader: Log, secondBase: UInt64, first: String) {
        var options = try closedLogOfSeveralSegments(dir, compression: compression)
        options.readOnly = true
        let reader = try Log.open(at: dir.path, options: options)
        let segments = dir.files().filter { $0.hasSuffix(".segment") }.sorted()
        let second = try #require(segments.dropFirst().first)
        return (reader, try #require(UInt64(second.prefix(20))), dir.sub(segments[0]))
    }

    @Test func aScanOverASegmentTruncatedUnderItsMappingStopsUnreadable() throws {
        let dir = TemporaryDirectory()
        try Self.closedLogOfSeveralSegments(dir)
        let first = try #require(dir.files().filter { $0.hasSuffix(".segment") }.sorted().first)
        let path = dir.sub(first)

        // Mapped whole, then another program cuts the file to 8 KiB.
        let file = try FileHandle.open(path, readOnly: true, faults: nil)
        let length = Int(try file.length())
        let mapping = try MappedRegion.map(file, length: length)
        let bytes = try #require(mapping.bytes(at: 0, count: length))
        let header = try SegmentHeader.decode(bytes, file: path, logID: nil, expectedBase: 0)
        #expect(truncate(path, 8192) == 0)

        let outcome = SegmentScanner.scan(
            bytes, from: SegmentHeader.size, end: length, previousCRC: header.checksum, expectedBase: 0)
        guard case .unreadable(let offset) = outcome.stop else {
            Issue.record("expected the scan to stop on unreadable bytes, got \(outcome.stop)")
            return
        }
        // It stopped at the batch the cut runs through, after every whole one before it.
        #expect(offset > SegmentHeader.size && offset < 8192, "offset \(offset)")
        #expect(outcome.dataEnd == offset)
        #expect(outcome.batches > 0)
        // The direct touch says the same, and bytes before the cut still read.
        #expect(!MappedBytes.touch(bytes, 8192..<(8192 + 100)))
        #expect(MappedBytes.touch(bytes, 0..<4096))

        // A new process (verify maps the file anew) reports the cut, naming the file.
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == path })
    }

    @Test func aReadByPositionOverASegmentTruncatedUnderItIsAnError() throws {
        let dir = TemporaryDirectory()
        let (reader, secondBase, victim) = try Self.readerOfSeveralSegments(dir)
        // Another program cuts the first segment to 8 KiB under the reader's mapping.
        #expect(truncate(victim, 8192) == 0)

        var lent = 0
        do {
            try reader.read(from: 0) { _ in lent += 1 }
            Issue.record("a read over the truncated segment succeeded")
        } catch {
            Self.expectUnreadable(error, file: victim, below: 8192)
        }
        // Every whole batch before the cut was lent; the rest of the log still reads.
        #expect(lent > 0 && UInt64(lent) < secondBase)
        var after = 0
        try reader.read(from: secondBase) { _ in after += 1 }
        #expect(UInt64(after) == reader.endPosition - secondBase)
        try reader.close()
    }
}

extension MappedReadGuardTests {
    /// `eventlog tail -f` following a log whose segment another program cuts
    /// under it: the tail ends with an error naming the segment (exit 1, as
    /// for any damage), not a signal.
    @Test func tailFollowingASegmentTruncatedUnderItEndsWithAnError() throws {
        let dir = TemporaryDirectory()
        try Self.closedLogOfSeveralSegments(dir)
        let last = try #require(dir.files().filter { $0.hasSuffix(".segment") }.sorted().last)
        let tail = try CLIProcess.start(["tail", dir.path, "-f", "--from", "start"])
        #expect(tail.waitForLines(2000, timeout: 60).count == 2000)

        #expect(truncate(dir.sub(last), 8192) == 0)
        guard let output = tail.waitForExit(timeout: 30) else {
            Issue.record("tail -f went on following a segment cut under it")
            _ = tail.kill()
            return
        }
        #expect(!output.signaled, "\(output)")
        #expect(output.status == 1, "\(output)")
        #expect(output.stderr.contains(dir.sub(last)), "\(output)")
    }

    /// An application that installed a SIGBUS handler before it opened a log:
    /// a fault under the log's mapping is the log's error, and a fault under
    /// the application's own mapping still reaches the application's handler
    /// (the child program, `Tests/SignalChainCheck`, prints both and exits 42
    /// from its handler).
    @Test func anApplicationsSIGBUSHandlerStillGetsFaultsOutsideTheLog() throws {
        let dir = TemporaryDirectory()
        let child = try CLIProcess.start([dir.path], executable: "SignalChainCheck")
        child.closeStdin()
        let output = try #require(child.waitForExit(timeout: 60))
        #expect(!output.signaled, "\(output)")
        #expect(output.status == 42, "\(output)")
        #expect(output.lines.count == 2, "\(output)")
        #expect(output.lines.first?.hasPrefix("log read failed: ") == true, "\(output)")
        #expect(output.lines.first?.contains("SIGBUS") == true, "\(output)")
        #expect(output.lines.last == "application handler", "\(output)")
    }
}

extension MappedReadGuardTests {
    /// The error of a read that reached the cut: corruption naming the
    /// segment, at an offset past its header and below `limit`, for SIGBUS.
    static func expectUnreadable(
        _ error: any Error, file victim: String, below limit: Int64 = 64 << 10, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard case .corruption(let file, let offset, let reason) = error as? EventLogError else {
            Issue.record("expected corruption naming the file, got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(file == victim, sourceLocation: sourceLocation)
        #expect(offset > Int64(SegmentHeader.size) && offset < limit, "offset \(offset)", sourceLocation: sourceLocation)
        #expect(reason.contains("SIGBUS"), "\(reason)", sourceLocation: sourceLocation)
    }

    /// Point reads (`event(at:)`) and stream reads of events a segment held
    /// before another program cut it to 8 KiB under a reader's mapping: each
    /// gives the event (its bytes are before the cut) or an error naming the
    /// segment, never a dead process; the other segments still read.
    @Test(arguments: [Compression.none, .lz4])
    func pointAndStreamReadsOverASegmentTruncatedUnderThemAreErrors(compression: Compression) throws {
        let dir = TemporaryDirectory()
        let (reader, secondBase, victim) = try Self.readerOfSeveralSegments(dir, compression: compression)
        // What each stream holds in the first segment, read before the cut.
        let all = try (0..<7).map { try reader.events(inStream: "s\($0)") }
        let before = all.map { $0.filter { $0.position < secondBase } }
        #expect(truncate(victim, 8192) == 0)

        var read = 0
        var failed = 0
        for position in 0..<secondBase {
            do {
                let event = try reader.event(at: position)
                #expect(event.position == position)
                read += 1
            } catch {
                Self.expectUnreadable(error, file: victim)
                failed += 1
            }
        }
        #expect(read > 0 && failed > 0, "read \(read), failed \(failed)")
        for (k, events) in before.enumerated() {
            var lent = 0
            do {
                try reader.readStream("s\(k)") { _ in lent += 1 }
                Issue.record("a read of stream s\(k) over the cut succeeded")
            } catch {
                Self.expectUnreadable(error, file: victim)
            }
            #expect(lent < events.count)
        }
        // Past the cut segment, both kinds of read work.
        #expect(try reader.event(at: secondBase).position == secondBase)
        for (k, events) in before.enumerated() {
            let rest = try reader.events(inStream: "s\(k)", from: UInt64(events.count))
            #expect(rest.map(\.position) == all[k].dropFirst(events.count).map(\.position))
        }
        try reader.close()
    }
}

extension MappedReadGuardTests {
    /// Stream reads over a segment's stream index file, then stream table
    /// lookups over a stream table run, each cut by another program under a
    /// read-only reader's mapping (the fence and filter were checked at open,
    /// then dropped from the page cache by the cut): each gives its answer or
    /// an error naming the file it could not read, never a dead process.
    @Test func streamLookupsOverIndexFilesTruncatedUnderThemAreErrors() throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        let writer = try Log.open(at: dir.path, options: options)
        for batch in 0..<20 {
            try writer.append((0..<1000).map { k in NewEvent(stream: "stream-\(batch * 1000 + k)", type: "T", data: [UInt8(k & 0xFF)]) })
        }
        try writer.close()
        options.readOnly = true
        let reader = try Log.open(at: dir.path, options: options)
        let index = dir.sub(try #require(dir.files().first { $0.hasSuffix(".streamindex") }))
        let run = dir.sub(try #require(dir.files().first { $0.hasSuffix(".streamtable") }))
        let probes = Array(stride(from: 0, to: 20_000, by: 97))
        // Before any cut, every probed stream reads.
        for k in probes { #expect(try reader.events(inStream: "stream-\(k)").count == 1) }

        // The stream index file, cut to nothing: its fence, group and entry blocks are gone.
        #expect(truncate(index, 0) == 0)
        var read = 0
        for k in probes {
            do {
                let events = try reader.events(inStream: "stream-\(k)")
                #expect(events.map(\.data) == [[UInt8((k % 1000) & 0xFF)]])
                read += 1
            } catch {
                Self.expectUnreadable(error, file: index, below: .max)
            }
        }
        // A damaged stream index never makes a read return wrong events: either
        // the read falls back to the segment, or it names the file.
        #expect(read == 0 || read == probes.count, "read \(read) of \(probes.count)")

        // The stream table run, cut after its first page: its filter (at its end) is gone.
        #expect(truncate(run, 4096) == 0)
        for k in probes {
            do {
                _ = try reader.streamInfo("stream-\(k)")
                Issue.record("a lookup of stream-\(k) in the cut run succeeded")
            } catch {
                Self.expectUnreadable(error, file: run, below: .max)
            }
        }
        try reader.close()
    }
}

/// Format.md §10, "Holes": a hole reads as zeros and the checksum decides. A
/// file system may store a synced batch's all-zero pages as holes (ZFS with
/// compression does; so does the power-loss simulation's rewrite of a file),
/// and recovery must not take such a batch for a torn write.
@Suite struct HoleTests {
    @Test func aSyncedBatchWithAHoleInItsZerosIsKept() throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .always)
        options.segmentBytes = 1 << 20
        var log: Log? = try Log.open(at: dir.path, options: options)
        try log?.append([NewEvent(stream: "a", type: "T", data: Array("first".utf8))])
        // A batch with 20 KiB of zero data: whole pages of it are zeros.
        let positions = try #require(try log?.append([NewEvent(stream: "a", type: "T", data: [UInt8](repeating: 0, count: 20 << 10))]))
        try log?.append([NewEvent(stream: "a", type: "T", data: Array("last".utf8))])
        log = nil  // a crash: the next open scans the segment, and everything was synced

        let segment = try #require(Fixtures.segments(dir).first)
        let file = try FileHandle.open(segment, faults: nil)
        // Punch out a page inside the zeros of the middle batch: it reads as zeros still.
        let batches = Fixtures.batches(in: segment)
        #expect(batches.count == 3)
        let middle = try #require(batches.dropFirst().first)
        let page = (middle.offset + 4096 + 4095) / 4096 * 4096
        try file.zeroRange(at: Int64(page), length: 4096)
        #expect(file.dataRegion(atOrAfter: Int64(page), fileLength: try file.length()).map { $0.lowerBound > Int64(page) } ?? true)

        let reopened = try Log.open(at: dir.path, options: options)
        #expect(reopened.recovery.tailCut == nil, "\(String(describing: reopened.recovery.tailCut))")
        #expect(reopened.endPosition == positions.upperBound + 1)
        #expect(try reopened.event(at: positions.lowerBound).data == [UInt8](repeating: 0, count: 20 << 10))
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }
}
