import Foundation
import Testing
@testable import EventLog

/// The cache of decompressed and opened batches (`BatchCache`,
/// `LogOptions.batchCacheBytes`): point and stream reads through it return
/// what was appended, within its byte budget, with entries of a rewritten
/// segment dropped, and readers on several threads at once. The logs here
/// are encrypted and LZ4-compressed (the events' stream names and types are
/// long and alike, so their batches compress although the payloads are
/// ciphertext): a compressed sealed batch is read whole, through the cache.
/// A plain LZ4 batch is read one unit at a time instead (Format.md §5.2,
/// `LZ4UnitTests`), an uncompressed sealed one a seal group at a time
/// (`EncryptionTests`).
@Suite struct BatchCacheTests {
    static let streams = 13

    /// Event `i`: compressible JSON-like data that names its position.
    static func event(_ i: Int) -> NewEvent {
        let words = ["north", "south", "express", "gift", "pallet", "door", "signature", "blue"]
        var text = "{\"position\":\(i),\"stream\":\"s-\(i % streams)\",\"note\":\""
        var k = i
        while text.utf8.count < 160 {
            text += words[k & 7] + " "
            k = k &* 2_862_933_555_777_941_757 &+ 3_037_000_493
            k = (k >> 33) & 0x7fff_ffff
        }
        return NewEvent(stream: name(i % streams), type: typeName(i % 3), data: Array((text + "\"}").utf8))
    }

    /// Stream `s`'s name, and type `t`'s: long and alike, so that a sealed
    /// batch still compresses (its payloads do not: they are ciphertext),
    /// which makes it a batch read whole, through the cache.
    static func name(_ s: Int) -> String { "s-\(s)-" + String(repeating: "order-stream-", count: 12) }
    static func typeName(_ t: Int) -> String { "T\(t)-" + String(repeating: "OrderPlaced-", count: 12) }

    static func options(cacheBytes: Int = 32 << 20, segmentBytes: Int = 1 << 20) -> LogOptions {
        var options = LogOptions(segmentBytes: segmentBytes, durability: .none, compression: .lz4)
        options.encryption = LogEncryption(keyProvider: StaticKeyProvider(key: EncryptionTests.key))
        options.maintenanceInterval = nil
        options.metricsInterval = nil
        options.batchCacheBytes = cacheBytes
        return options
    }

    /// A log of `count` events in batches of `batch`.
    static func filledLog(_ dir: TemporaryDirectory, count: Int, batch: Int, options: LogOptions) throws -> Log {
        let log = try Log.open(at: dir.path, options: options)
        var first = 0
        while first < count {
            try log.append((first..<min(first + batch, count)).map(event))
            first += batch
        }
        return log
    }

    /// True when `view` is event `position` as appended (its version too).
    static func matches(_ view: EventView, _ position: Int) -> Bool {
        let expected = event(position)
        return view.position == UInt64(position) && Array(view.data) == expected.data && view.stream == expected.stream
            && view.type == expected.type && view.version == UInt64(position / streams)
    }

    @Test func pointAndStreamReadsThroughTheCacheReturnWhatWasAppended() throws {
        let dir = TemporaryDirectory()
        let count = 3000
        let log = try Self.filledLog(dir, count: count, batch: 50, options: Self.options())
        defer { try? log.close() }
        let cache = log.batches.batchCache

        var random = SplitMix64(seed: 42)
        for _ in 0..<4000 {
            let p = Int(random.next() % UInt64(count))
            let ok = try log.withEvent(at: UInt64(p)) { Self.matches($0, p) }
            #expect(ok, "position \(p)")
        }
        // Every batch was read many times: most reads were hits, each batch decompressed once.
        let afterPoints = cache.statistics
        #expect(afterPoints.misses > 0)  // the batches are compressed, and were cached
        #expect(afterPoints.misses <= UInt64(count / 50))
        #expect(afterPoints.hits >= 4000 - UInt64(count / 50))

        // Stream reads: each stream whole, versions in order, through the same entries.
        for s in 0..<Self.streams {
            var expected = s
            try log.readStream(Self.name(s)) { view in
                #expect(Self.matches(view, expected), "stream s-\(s) at position \(view.position)")
                expected += Self.streams
            }
            #expect(expected >= count, "stream s-\(s) ended early at \(expected)")
        }
        #expect(cache.statistics.misses == afterPoints.misses)
        #expect(cache.statistics.bytes <= cache.capacityBytes)
    }

    @Test func aTinyBudgetEvictsAndStaysWithinIt() throws {
        let dir = TemporaryDirectory()
        let count = 2000
        // 16 slots of 4 KiB; batches of 10 events (~2 KB decompressed) take one slot each.
        let log = try Self.filledLog(dir, count: count, batch: 10, options: Self.options(cacheBytes: 16 * 4096))
        defer { try? log.close() }
        let cache = log.batches.batchCache
        var random = SplitMix64(seed: 7)
        for _ in 0..<3000 {
            let p = Int(random.next() % UInt64(count))
            let ok = try log.withEvent(at: UInt64(p)) { Self.matches($0, p) }
            #expect(ok, "position \(p)")
            #expect(cache.statistics.bytes <= 16 * 4096)
        }
        let statistics = cache.statistics
        #expect(statistics.evictions > 1000)
        #expect(statistics.entries <= 16)
        #expect(statistics.hits > 0)
    }

    @Test func anEntryReadIsKeptWhileHeldAndADroppedOneIsNotFound() {
        let cache = BatchCache(bytes: 8 * 4096)
        func key(_ i: Int) -> BatchCache.Key { BatchCache.Key(segment: SegmentID(value: 1_000_000 + UInt64(i % 2)), offset: 64 + i * 100, frameCRC: UInt32(i)) }
        guard case .miss(let room) = cache.acquire(key(0), recordsLength: 100, recordCount: 1, releasing: nil) else {
            Issue.record("the first acquire is not a miss")
            return
        }
        room.destination.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 100)
        (room.destination + room.tableStart).storeBytes(of: 0, as: UInt32.self)
        let held = cache.publish(room)
        // Twenty other batches through eight slots: the held one is never evicted.
        for i in 1...20 {
            guard case .miss(let other) = cache.acquire(key(i), recordsLength: 100, recordCount: 1, releasing: nil) else {
                Issue.record("batch \(i) found no room")
                continue
            }
            other.destination.initializeMemory(as: UInt8.self, repeating: UInt8(i), count: 100)
            cache.release(cache.publish(other))
        }
        #expect(held.records.allSatisfy { $0 == 0xA5 })
        #expect(cache.statistics.evictions >= 13)
        guard case .hit(let again) = cache.acquire(key(0), recordsLength: 100, recordCount: 1, releasing: held) else {
            Issue.record("the held batch was evicted")
            return
        }
        // Dropped while held: no read finds it, and its slot is freed when let go.
        cache.drop(segments: [key(0).segment])
        guard case .miss(let retry) = cache.acquire(key(0), recordsLength: 100, recordCount: 1, releasing: nil) else {
            Issue.record("a dropped batch was found")
            return
        }
        cache.abandon(retry)
        #expect(cache.entryCount(of: key(0).segment) == 0)
        let entries = cache.statistics.entries  // the dropped one still counted: it is held
        cache.release(again)
        #expect(cache.statistics.entries == entries - 1)
        #expect(cache.statistics.entries == cache.entryCount(of: key(1).segment))
    }

    @Test func aSegmentRewrittenByScavengingLeavesTheCache() throws {
        let dir = TemporaryDirectory()
        var options = Self.options(segmentBytes: 16 << 10)
        options.batchCacheBytes = 8 << 20
        let log = try Self.filledLog(dir, count: 1500, batch: 20, options: options)
        defer { try? log.close() }
        let cache = log.batches.batchCache
        for s in 0..<4 { _ = try log.deleteStream(Self.name(s), hard: true) }
        for p in 0..<1500 { _ = try log.withEvent(at: UInt64(p)) { Self.matches($0, p) } }
        let sealed = log.batches.snapshot().sealed.map(\.id)
        #expect(sealed.count > 3)
        #expect(sealed.allSatisfy { cache.entryCount(of: $0) > 0 })

        let result = try log.compact()
        #expect(result.segmentsRewritten > 0)
        let now = Set(log.batches.snapshot().segmentIDs)
        let replaced = sealed.filter { !now.contains($0) }
        #expect(!replaced.isEmpty)
        for id in replaced { #expect(cache.entryCount(of: id) == 0, "\(id) still has entries") }

        // Reads after the rewrite: what is there is as appended; what is
        // gone belongs to a deleted stream. (Nothing is gone here: scavenging
        // keeps a sealed batch whole while it keeps any of its records,
        // Format.md §5.1, and every batch holds events of live streams.)
        var gone = 0
        for p in 0..<1500 {
            do {
                let ok = try log.withEvent(at: UInt64(p)) { Self.matches($0, p) }
                #expect(ok, "position \(p)")
            } catch is EventLogError {
                #expect(p % Self.streams < 4, "position \(p) of a live stream is gone")
                gone += 1
            }
        }
        #expect(gone == 0)
    }

    @Test func concurrentReadersThroughASmallCache() throws {
        let dir = TemporaryDirectory()
        let count = 4000
        let log = try Self.filledLog(dir, count: count, batch: 25, options: Self.options(cacheBytes: 24 * 4096))
        defer { try? log.close() }
        let threads = (0..<4).map { t in
            BackgroundThread<Int> {
                var random = SplitMix64(seed: 100 + UInt64(t))
                var wrong = 0
                for k in 0..<1500 {
                    if k % 100 == 99 {
                        let s = Int(random.next() % UInt64(Self.streams))
                        var expected = s
                        try log.readStream(Self.name(s)) { view in
                            if !Self.matches(view, expected) { wrong += 1 }
                            expected += Self.streams
                        }
                    } else {
                        let p = Int(random.next() % UInt64(count))
                        if try !log.withEvent(at: UInt64(p), { Self.matches($0, p) }) { wrong += 1 }
                    }
                }
                return wrong
            }
        }
        for thread in threads {
            let result = try #require(thread.join(timeout: 120))
            #expect(try result.get() == 0)
        }
        #expect(log.batches.batchCache.statistics.bytes <= 24 * 4096)
    }
}
