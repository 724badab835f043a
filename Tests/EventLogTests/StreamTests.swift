import Foundation
import Synchronization
import Testing
@testable import EventLog

/// Streams: versions, expected versions, multi-stream atomicity, idempotent
/// retries, reads forward and backward, deletes and truncation.
@Suite struct StreamTests {
    static func event(_ stream: String, _ n: Int, id: UUID? = nil) -> NewEvent {
        NewEvent(stream: stream, type: "Happened", data: Array("\(stream)#\(n)".utf8), metadata: EventMetadata(eventID: id))
    }

    static func open(_ dir: TemporaryDirectory, _ configure: (inout LogOptions) -> Void = { _ in }) throws -> Log {
        var options = LogOptions(durability: .none)
        configure(&options)
        return try Log.open(at: dir.path, options: options)
    }

    static func payloads(_ log: Log, _ stream: String, from: UInt64? = nil, max: Int = .max, _ direction: ReadDirection = .forward) throws -> [String] {
        try log.events(inStream: stream, from: from, maxCount: max, direction: direction).map { String(decoding: $0.data, as: UTF8.self) }
    }

    @Test func versionsAreAssignedPerStream() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        try log.append([Self.event("a", 0), Self.event("b", 0), Self.event("a", 1)])
        try log.append([Self.event("a", 2)])
        let all = try log.events(from: 0)
        #expect(all.map(\.version) == [0, 0, 1, 2])
        #expect(try log.streamInfo("a")?.currentVersion == 2)
        #expect(try log.streamInfo("b")?.count == 1)
        #expect(try log.streamInfo("nope") == nil)
        #expect(try Self.payloads(log, "a") == ["a#0", "a#1", "a#2"])
        try log.close()
    }

    @Test func everyExpectedVersionCase() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        func conflict(_ body: () throws -> Void) -> UInt64?? {
            do { try body() } catch let error as EventLogError {
                if case .wrongExpectedVersion(_, _, let actual) = error { return .some(actual) }
                Issue.record("unexpected \(error)")
            } catch { Issue.record("unexpected \(error)") }
            return .none
        }
        // No stream yet.
        #expect(conflict { try log.append(to: "s", expectedVersion: .streamExists, [Self.event("s", 0)]) } == .some(nil))
        #expect(conflict { try log.append(to: "s", expectedVersion: .exact(0), [Self.event("s", 0)]) } == .some(nil))
        #expect(try log.append(to: "s", expectedVersion: .noStream, [Self.event("s", 0)]).versions(of: "s") == 0...0)
        // Now at version 0.
        #expect(conflict { try log.append(to: "s", expectedVersion: .noStream, [Self.event("s", 1)]) } == .some(0))
        #expect(conflict { try log.append(to: "s", expectedVersion: .exact(3), [Self.event("s", 1)]) } == .some(0))
        #expect(try log.append(to: "s", expectedVersion: .exact(0), [Self.event("s", 1), Self.event("s", 2)]).versions(of: "s") == 1...2)
        #expect(try log.append(to: "s", expectedVersion: .streamExists, [Self.event("s", 3)]).versions(of: "s") == 3...3)
        #expect(try log.append(to: "s", expectedVersion: .any, [Self.event("s", 4)]).versions(of: "s") == 4...4)
        // A failed expectation wrote nothing.
        #expect(log.endPosition == 5)
        #expect(try Self.payloads(log, "s") == (0...4).map { "s#\($0)" })
        try log.close()
    }

    @Test func multiStreamAppendIsAllOrNothing() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        try log.append([Self.event("order-1", 0), Self.event("outbox", 0)], expecting: ["order-1": .noStream])
        // One stream's expectation fails: neither stream gets anything.
        #expect(throws: EventLogError.self) {
            try log.append(
                [Self.event("order-1", 1), Self.event("outbox", 1)], expecting: ["order-1": .exact(0), "outbox": .exact(7)])
        }
        #expect(log.endPosition == 2)
        let result = try log.append(
            [Self.event("order-1", 1), Self.event("outbox", 1), Self.event("order-1", 2)],
            expecting: ["order-1": .exact(0), "outbox": .exact(0)])
        #expect(result.positions == 2..<5)
        #expect(result.versions(of: "order-1") == 1...2)
        #expect(result.versions(of: "outbox") == 1...1)
        try log.close()
    }

    @Test func idempotentRetryAndPartialOverlap() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        let ids = (0..<3).map { _ in UUID() }
        let events = ids.enumerated().map { Self.event("s", $0.offset, id: $0.element) }
        let first = try log.append(to: "s", expectedVersion: .noStream, events)
        #expect(!first.wasRetry)
        // The same append again (a retry after a timeout): nothing written, the original result.
        let retry = try log.append(to: "s", expectedVersion: .noStream, events)
        #expect(retry.wasRetry)
        #expect(retry.positions == first.positions)
        #expect(retry.versions(of: "s") == 0...2)
        #expect(log.endPosition == 3)
        // With .any too.
        #expect(try log.append(to: "s", expectedVersion: .any, events).wasRetry)
        // Part of it again: an error, nothing written.
        #expect(throws: EventLogError.self) { try log.append(to: "s", expectedVersion: .noStream, Array(events.prefix(3).dropLast()) + [Self.event("s", 9, id: UUID())]) }
        #expect(log.endPosition == 3)
        // New events after it: a normal append.
        let next = try log.append(to: "s", expectedVersion: .exact(2), [Self.event("s", 3, id: UUID())])
        #expect(next.versions(of: "s") == 3...3)
        // The earlier append is no longer the last one: repeating it is a version conflict.
        #expect(throws: EventLogError.self) { try log.append(to: "s", expectedVersion: .noStream, events) }
        try log.close()
        // Retries are recognised after a reopen too.
        let reopened = try Self.open(dir)
        let again = try reopened.append(to: "s", expectedVersion: .exact(2), [Self.event("s", 3, id: next.streams.isEmpty ? nil : try reopened.event(at: 3).metadata.eventID)])
        #expect(again.wasRetry)
        #expect(reopened.endPosition == 4)
        try reopened.close()
    }

    @Test func readingForwardAndBackward() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir) { $0.segmentBytes = 4096 }  // the stream spans many segments
        for n in 0..<200 {
            try log.append([Self.event("x", n), Self.event("noise-\(n % 3)", n)])
        }
        #expect(try Self.payloads(log, "x") == (0..<200).map { "x#\($0)" })
        #expect(try Self.payloads(log, "x", from: 150, max: 10) == (150..<160).map { "x#\($0)" })
        #expect(try Self.payloads(log, "x", from: nil, max: 5, .backward) == (195..<200).reversed().map { "x#\($0)" })
        #expect(try Self.payloads(log, "x", from: 42, max: 3, .backward) == ["x#42", "x#41", "x#40"])
        try log.close()
        let reopened = try Self.open(dir) { $0.segmentBytes = 4096 }
        #expect(reopened.recovery.replayedRecords == 0)
        #expect(try Self.payloads(reopened, "x") == (0..<200).map { "x#\($0)" })
        #expect(try Self.payloads(reopened, "x", from: nil, max: 200, .backward) == (0..<200).reversed().map { "x#\($0)" })
        try reopened.close()
    }

    @Test func deletesAndTruncationAcrossReopen() throws {
        let dir = TemporaryDirectory()
        func check(_ log: Log) throws {
            #expect(try Self.payloads(log, "soft").isEmpty)
            #expect(try log.streamInfo("soft")?.deletion == .soft)
            #expect(throws: EventLogError.self) { try Self.payloads(log, "hard") }
            #expect(try Self.payloads(log, "cut") == ["cut#3", "cut#4"])
            #expect(try log.streamInfo("cut")?.truncateBefore == 3)
            #expect(try log.streamInfo("cut")?.count == 2)
        }
        do {
            let log = try Self.open(dir)
            for n in 0..<5 { try log.append([Self.event("soft", n), Self.event("hard", n), Self.event("cut", n)]) }
            try log.deleteStream("soft")
            try log.deleteStream("hard", hard: true)
            try log.truncateStream("cut", before: 3)
            try check(log)
            try log.close()
        }
        do {
            let log = try Self.open(dir)
            try check(log)
            // Hard-deleted: never written again. Soft-deleted: recreated, versions continue.
            #expect(throws: EventLogError.self) { try log.append([Self.event("hard", 5)]) }
            #expect(try log.append(to: "soft", expectedVersion: .noStream, [Self.event("soft", 5)]).versions(of: "soft") == 5...5)
            #expect(try Self.payloads(log, "soft") == ["soft#5"])
            #expect(try log.streamInfo("soft")?.deletion == StreamDeletion.none)
            // The process dies here: no close.
        }
        do {
            // The markers and the recreation are replayed.
            let log = try Self.open(dir)
            #expect(try Self.payloads(log, "soft") == ["soft#5"])
            #expect(throws: EventLogError.self) { try log.append([Self.event("hard", 6)]) }
            #expect(throws: EventLogError.self) { try log.append([NewEvent(stream: "x", type: "$deleted", data: [1])]) }
            // Filtered global reads skip markers unless asked.
            var markers = 0
            try log.read(from: 0, filter: EventFilter(includeMarkers: true)) { if $0.isMarker { markers += 1 } }
            #expect(markers == 3)
            var seen = 0
            try log.read(from: 0, filter: EventFilter(streamPrefix: "cu", types: ["Happened"])) { _ in seen += 1 }
            #expect(seen == 5)
            try log.close()
        }
    }

    @Test func racingWritersWinEachVersionOnce() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        let threads = 6
        let attempts = 120
        let winners = Mutex<[(version: UInt64, thread: Int)]>([])
        let losses = Atomic<Int>(0)
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            Thread {
                var known: UInt64? = nil
                for i in 0..<attempts {
                    let expected: ExpectedVersion = known.map { .exact($0) } ?? .noStream
                    do {
                        let result = try log.append(to: "contended", expectedVersion: expected, [Self.event("contended", t * 1000 + i)])
                        let v = result.streams[0].lastVersion
                        winners.withLock { $0.append((v, t)) }
                        known = v
                    } catch let EventLogError.wrongExpectedVersion(_, _, actual) {
                        losses.add(1, ordering: .relaxed)
                        known = actual  // the loser learns the actual version and tries again
                    } catch {
                        Issue.record("unexpected \(error)")
                    }
                }
                group.leave()
            }.start()
        }
        group.wait()
        let versions = winners.withLock { $0.map(\.version) }.sorted()
        #expect(versions == (0..<UInt64(versions.count)).map { $0 })  // each version won exactly once, no gaps
        #expect(versions.count + losses.load(ordering: .relaxed) == threads * attempts)
        #expect(try log.streamInfo("contended")?.count == UInt64(versions.count))
        try log.close()
    }

    @Test func hashCollisionsNeverMixStreams() throws {
        let dir = TemporaryDirectory()
        func open() throws -> Log { try Self.open(dir) { $0.segmentBytes = 4096; $0.streamHashMask = 0 } }
        var log = try open()
        for n in 0..<60 { try log.append([Self.event("red", n), Self.event("blue", n), Self.event("green", n)]) }
        #expect(try Self.payloads(log, "blue") == (0..<60).map { "blue#\($0)" })
        try log.close()
        log = try open()
        for color in ["red", "blue", "green"] {
            #expect(try Self.payloads(log, color) == (0..<60).map { "\(color)#\($0)" })
            #expect(try Self.payloads(log, color, from: nil, max: 3, .backward) == [57, 58, 59].reversed().map { "\(color)#\($0)" })
        }
        try log.close()
    }

    /// A read from a version in the active segment ends its walk of the
    /// stream's entries at its own first event below that version, never at
    /// another stream's: every stream shares one hash here, and red's
    /// versions run twice as fast as blue's, so the newest entries below
    /// red's wanted versions are blue's. Checked before and after a reopen
    /// (the entries of the active segment, then those of its index files).
    @Test func aReadFromAVersionStopsAtItsOwnStreamOnly() throws {
        let dir = TemporaryDirectory()
        func open() throws -> Log { try Self.open(dir) { $0.streamHashMask = 0 } }
        var log = try open()
        for n in 0..<60 { try log.append([Self.event("red", 2 * n), Self.event("red", 2 * n + 1), Self.event("blue", n)]) }
        for round in 0..<2 {
            #expect(try Self.payloads(log, "red", from: 100) == (100..<120).map { "red#\($0)" }, "round \(round)")
            #expect(try Self.payloads(log, "blue", from: 50) == (50..<60).map { "blue#\($0)" }, "round \(round)")
            #expect(try Self.payloads(log, "red", from: 110, max: 3, .backward) == ["red#110", "red#109", "red#108"], "round \(round)")
            #expect(try Self.payloads(log, "blue", from: 0, max: 2) == ["blue#0", "blue#1"], "round \(round)")
            try log.close()
            log = try open()
        }
        try log.close()
    }

    @Test func outboxAppendedAtomicallyWithTheAggregate() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        // Decide, then append the aggregate's events and the message they require, as one batch.
        let placed = NewEvent(stream: "order-42", type: "OrderPlaced", data: Array(#"{"total":99.5}"#.utf8))
        let message = NewEvent(
            stream: "outbox", type: "SendOrderConfirmation", data: Array(#"{"order":"order-42"}"#.utf8),
            metadata: EventMetadata(correlationID: "order-42"))
        let result = try log.append([placed, message], expecting: ["order-42": .noStream])
        #expect(result.positions.count == 2)
        // The relay reads what it has not delivered yet.
        let pending = try log.events(inStream: "outbox")
        #expect(pending.count == 1)
        #expect(pending[0].type == "SendOrderConfirmation")
        #expect(pending[0].metadata.correlationID == "order-42")
        // A concurrent decision on a stale version changes neither stream.
        #expect(throws: EventLogError.self) {
            try log.append([placed, message], expecting: ["order-42": .noStream])
        }
        #expect(try log.events(inStream: "outbox").count == 1)
        try log.close()
    }

    /// Appends one event with the given raw stream name and type bytes, after
    /// a valid event in the same batch.
    static func appendRaw(_ log: Log, stream: [UInt8], type: [UInt8]) throws {
        let good = Array("good".utf8)
        _ = try log.appendBatch { batch in
            try good.withUnsafeBytes { name in
                _ = try good.withUnsafeBytes { try batch.append(stream: name, type: $0, data: $0) }
            }
            try stream.withUnsafeBytes { stream in
                _ = try type.withUnsafeBytes { type in try batch.append(stream: stream, type: type, data: type) }
            }
        }
    }

    /// A stream name or type that is not UTF-8 is refused at append, and the
    /// whole batch with it: it would be stored as given but read back (and
    /// kept in the stream table) decoded with replacement characters, so the
    /// stream could never be found again.
    @Test(arguments: [
        [0xC3, 0x28],  // a lead byte without its continuation
        [0xFF],  // never in UTF-8
        [0x61, 0xE2, 0x82],  // cut short
        [0xC0, 0xAF],  // an overlong "/"
        [0x61, 0xED, 0xA0, 0x80],  // a surrogate
    ] as [[UInt8]])
    func namesAndTypesThatAreNotUTF8AreRefused(bad: [UInt8]) throws {
        let dir = TemporaryDirectory()
        var log = try Self.open(dir)
        try log.append(Self.event("before", 0))
        let end = log.endPosition
        let streams = try log.streamInfos().map(\.name)
        for (stream, type) in [(bad, Array("E".utf8)), (Array("s".utf8), bad)] {
            do {
                try Self.appendRaw(log, stream: stream, type: type)
                Issue.record("appended stream \(stream) type \(type)")
            } catch let error as EventLogError {
                guard case .invalidArgument(let message) = error else {
                    Issue.record("unexpected error \(error)")
                    continue
                }
                #expect(message.contains("not valid UTF-8"), "\(message)")
            }
            #expect(log.endPosition == end)
            #expect(try log.streamInfos().map(\.name) == streams)
        }
        // Valid UTF-8 beyond ASCII is accepted, and found again by its name.
        try Self.appendRaw(log, stream: Array("strøm-é".utf8), type: Array("Ünïcode".utf8))
        #expect(log.endPosition == end + 2)
        try log.close()
        log = try Self.open(dir)
        #expect(try log.events(inStream: "strøm-é").map(\.type) == ["Ünïcode"])
        #expect(try log.events(from: 0).map(\.stream) == ["before", "good", "strøm-é"])
        #expect(try log.streamInfos().map(\.name).sorted() == ["before", "good", "strøm-é"])
        try log.close()
    }
    /// A filtered read that stops at `maxCount` returns the position of the
    /// first matching event it did not lend, so that reading on from there
    /// misses none (it used to return the end of the 4096-event chunk it scanned).
    @Test func aFilteredReadStoppedByMaxCountResumesAtTheFirstEventNotLent() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        try log.append((0..<500).map { Self.event($0 % 3 == 0 ? "other" : "inbox", $0) })
        let filter = EventFilter(streamPrefix: "inbox")
        var seen: [UInt64] = []
        var next: UInt64 = 0
        var reads = 0
        while next < log.endPosition && reads < 1000 {
            reads += 1
            let before = seen.count
            next = try log.read(from: next, maxCount: 50, filter: filter) { seen.append($0.position) }
            #expect(seen.count - before <= 50)
            if seen.count == before { break }
        }
        #expect(seen == (0..<500).filter { $0 % 3 != 0 }.map(UInt64.init))
        try log.close()
    }

    /// `BatchBuilder.prefetchStreams` is a hint: batches that ask for their
    /// streams first (also for streams they then do not append to, for new
    /// streams, and for a hard-deleted one) give every event the same
    /// position, stream and version as the same batches without it, through
    /// table generations ending at checkpoints, and a reopen. Its hashes
    /// are tried first for the records appended after it, in order; a third
    /// log is told the names one place off (every hash tried first is
    /// another stream's, or a stream's this batch does not append to), and
    /// still gives every event the same stream and version.
    @Test func prefetchingStreamsChangesNothing() throws {
        let plain = TemporaryDirectory(), prefetching = TemporaryDirectory(), misled = TemporaryDirectory()
        func options(_ o: inout LogOptions) {
            o.checkpointBytes = 32 << 10
        }
        let logs = [try Self.open(plain, options), try Self.open(prefetching, options), try Self.open(misled, options)]
        for log in logs {
            try log.append(Self.event("gone", 0))
            try log.deleteStream("gone", hard: true)
        }
        var rng = SplitMix64(seed: 31)
        for batch in 0..<120 {
            let names = (0..<(1 + rng.below(40))).map { _ in "s-\(rng.below(300))" }
            let decoys = ["never-\(batch)", "gone", "s-\(rng.below(300))"]
            for (which, log) in logs.enumerated() {
                try log.appendBatch { builder in
                    let asked = names + decoys
                    if which > 0 {
                        // The names side by side in one buffer, as an application's would be
                        // (for the misled log, the first one last: each hash belongs to the next record).
                        let told = which == 1 ? asked : Array(asked.dropFirst()) + [asked[0]]
                        let joined = Array(told.joined().utf8)
                        var ends: [Int] = []
                        for name in told { ends.append((ends.last ?? 0) + name.utf8.count) }
                        joined.withUnsafeBytes { all in
                            let name = { (i: Int) in UnsafeRawBufferPointer(rebasing: all[(i == 0 ? 0 : ends[i - 1])..<ends[i]]) }
                            builder.prefetchStreams(count: 0, name)
                            builder.prefetchStreams(count: -3, name)
                            builder.prefetchStreams(count: told.count, name)
                        }
                    }
                    for (i, name) in names.enumerated() { try builder.append(Self.event(name, batch * 100 + i)) }
                    // A hard-deleted stream still refuses its event, and the batch goes on.
                    #expect(throws: EventLogError.self) { try builder.append(Self.event("gone", 1)) }
                }
            }
        }
        func everything(_ log: Log) throws -> [String] {
            try log.events(from: 0).map { "\($0.position) \($0.stream) \($0.version) \(String(decoding: $0.data, as: UTF8.self))" }
        }
        let expected = try everything(logs[0])
        #expect(expected.count > 2000)
        for log in logs.dropFirst() {
            #expect(try everything(log) == expected)
            for name in (0..<300).map({ "s-\($0)" }) {
                #expect(try log.streamInfo(name)?.currentVersion == logs[0].streamInfo(name)?.currentVersion)
            }
            #expect(try log.streamInfos().map(\.name).sorted() == logs[0].streamInfos().map(\.name).sorted())
        }
        for log in logs { try log.close() }
        for directory in [prefetching, misled] {
            let reopened = try Self.open(directory, options)
            #expect(try everything(reopened) == expected)
            try reopened.close()
        }
    }
}
