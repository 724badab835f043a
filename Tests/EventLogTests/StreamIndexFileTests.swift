import Foundation
import Testing
@testable import EventLog

/// The stream index file, version 2 (Format.md §13.2): round trips, lookups
/// by hash (collisions included), what an open refuses, and damage inside
/// a block, found by the lookups that read it and by `verify()` only.
@Suite struct StreamIndexFileTests {
    typealias Group = StreamIndexFile.Group

    static let header = IndexFileHeader(
        basePosition: 1_000, endPosition: 901_000, dataEnd: 123_456, lastBatchOffset: 120_000, lastBatchCRC: 0xDEAD_BEEF,
        firstTimestamp: .min, maxTimestamp: .min)

    // MARK: Helpers

    /// `count` groups of random hashes holding `entries` entries in all (each at least one), seeded.
    static func randomGroups(count: Int, entries: Int, seed: UInt64) -> [Group] {
        var random = SplitMix64(seed: seed)
        var counts = [Int](repeating: 1, count: count)
        for _ in 0..<(entries - count) { counts[random.below(count)] += 1 }
        var position: UInt32 = 0
        return counts.map { n in
            let hash = random.next()
            let firstVersion = random.next() % 1_000_000
            let entries: [(relativePosition: UInt32, offset: UInt32)] = (0..<n).map { _ in
                position += 1
                return (position, UInt32(truncatingIfNeeded: random.next()))
            }
            return Group(hash: hash, firstVersion: firstVersion, entries: entries)
        }
    }

    /// The order of a file: by hash, then first relative position.
    static func sorted(_ groups: [Group]) -> [Group] {
        groups.sorted {
            ($0.hash, $0.entries.first?.relativePosition ?? 0) < ($1.hash, $1.entries.first?.relativePosition ?? 0)
        }
    }

    /// Writes `bytes` to a file in `dir` and opens it as the log would.
    static func open(_ bytes: [UInt8], in dir: TemporaryDirectory) -> StreamIndexView? {
        let path = dir.sub("00000000000000001000.streamindex")
        Damage.write(path, bytes)
        return StreamIndexView.open(path: path, faults: nil)
    }

    static func store<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
        FormatPrecisionTests.store(value, into: &bytes, at: offset)
    }

    /// Writes the header checksum again after a change to the header, so only the change can be refused.
    static func resealHeader(_ bytes: inout [UInt8]) {
        store(CRC32C.checksum(Array(bytes[0..<60])), into: &bytes, at: 60)
    }

    /// Writes again the checksum of the `count` bytes at `at`, stored right after them.
    static func resealBlock(_ bytes: inout [UInt8], at: Int, count: Int) {
        store(CRC32C.checksum(Array(bytes[at..<(at + count)])), into: &bytes, at: at + count)
    }

    /// Every group of `expected` (in file order) is found by its hash, with its entries.
    static func expectEveryGroupFound(_ view: StreamIndexView, _ expected: [Group]) throws {
        var byHash: [UInt64: [Group]] = [:]
        for g in expected { byHash[g.hash, default: []].append(g) }
        for (hash, groups) in byHash {
            let range = try view.groups(withHash: hash)
            #expect(range.count == groups.count, "hash \(hash)")
            let found = try range.map { g in
                let (foundHash, firstVersion, entries) = try view.entries(ofGroup: g)
                return Group(hash: foundHash, firstVersion: firstVersion, entries: entries)
            }
            #expect(found == groups, "hash \(hash)")
        }
    }

    /// `body` throws `corruption` naming `file` and `offset`.
    static func expectCorruption<T>(
        file: String, offset: Int, _ body: () throws(EventLogError) -> T, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try body()
            Issue.record("no error: expected corruption at \(offset)", sourceLocation: sourceLocation)
        } catch {
            guard case .corruption(let f, let o, let reason) = error else {
                Issue.record("expected corruption, got \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(f == file, sourceLocation: sourceLocation)
            #expect(o == Int64(offset), "\(reason)", sourceLocation: sourceLocation)
            #expect(reason.contains("stream index"), "\(reason)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Round trips

    @Test func noGroups() throws {
        let bytes = StreamIndexFile.encode(Self.header, groups: [])
        #expect(bytes.count == 64 + 4)
        let dir = TemporaryDirectory()
        let view = try #require(Self.open(bytes, in: dir))
        #expect(view.header == Self.header)
        #expect(view.groupCount == 0 && view.entryCount == 0)
        #expect(try view.allGroups().isEmpty)
        #expect(view.verify() == nil)
        for hash: UInt64 in [0, 1, .max] { #expect(try view.groups(withHash: hash).isEmpty) }
    }

    @Test func oneGroup() throws {
        let group = Group(hash: 42, firstVersion: 7, entries: [(0, 64), (3, 200), (9, 0x8000_0040)])
        let bytes = StreamIndexFile.encode(Self.header, groups: [group])
        // Header, fence (one hash and its checksum), one group and one entry block, each with its checksum.
        #expect(bytes.count == 64 + (8 + 4) + (24 + 4) + (3 * 8 + 4))
        let dir = TemporaryDirectory()
        let view = try #require(Self.open(bytes, in: dir))
        #expect(view.header == Self.header)
        #expect(try view.allGroups() == [group])
        #expect(try view.groups(withHash: 42) == 0..<1)
        #expect(try view.groups(withHash: 41).isEmpty)
        #expect(try view.groups(withHash: 43).isEmpty)
        let (hash, firstVersion, entries) = try view.entries(ofGroup: 0)
        #expect(Group(hash: hash, firstVersion: firstVersion, entries: entries) == group)
        #expect(view.verify() == nil)
    }

    @Test func twoHundredThousandEntriesInFiftyThousandGroups() throws {
        let groups = Self.randomGroups(count: 50_000, entries: 200_000, seed: 2026)
        let expected = Self.sorted(groups)
        let bytes = StreamIndexFile.encode(Self.header, groups: groups)
        let layout = StreamIndexFile.Layout(groupCount: 50_000, entryCount: 200_000)
        #expect(bytes.count == layout.fileSize)
        #expect(layout.groupBlockCount == 391 && layout.entryBlockCount == 391)
        // The flat-array entry point writes the same bytes.
        let flat = StreamIndexFile.encode(
            Self.header, hashes: expected.map(\.hash), firstVersions: expected.map(\.firstVersion),
            counts: expected.map { UInt32($0.entries.count) },
            entries: expected.flatMap { $0.entries.map { StreamIndexFile.packedEntry(relativePosition: $0.relativePosition, offset: $0.offset) } })
        #expect(flat == bytes)

        let dir = TemporaryDirectory()
        let view = try #require(Self.open(bytes, in: dir))
        #expect(view.header == Self.header)
        #expect(view.groupCount == 50_000 && view.entryCount == 200_000)
        #expect(try view.allGroups() == expected)
        #expect(view.verify() == nil)
        try Self.expectEveryGroupFound(view, expected)
        // Hashes that are not there: none found.
        var random = SplitMix64(seed: 9)
        let present = Set(expected.map(\.hash))
        for _ in 0..<1_000 {
            let hash = random.next()
            if !present.contains(hash) { #expect(try view.groups(withHash: hash).isEmpty) }
        }
        #expect(try view.groups(withHash: 0).isEmpty || present.contains(0))
        #expect(try view.groups(withHash: .max).isEmpty || present.contains(.max))
        // The same bytes held in memory read the same.
        let inMemory = try #require(StreamIndexView.inMemory(bytes, path: "in memory"))
        #expect(try inMemory.allGroups() == expected)
    }

    /// 300 groups share one hash: they span several group blocks, starting
    /// in the middle of one or at its first group, and all are found.
    @Test(arguments: [100, 128, 127])
    func collisionsSpanningGroupBlocks(before: Int) throws {
        let collided: UInt64 = 1 << 63
        var random = SplitMix64(seed: UInt64(before))
        var groups: [Group] = []
        var position: UInt32 = 0
        func add(_ hash: UInt64, entries: Int) {
            let list: [(relativePosition: UInt32, offset: UInt32)] = (0..<entries).map { _ in
                position += 1
                return (position, position &* 3)
            }
            groups.append(Group(hash: hash, firstVersion: UInt64(groups.count), entries: list))
        }
        for _ in 0..<before { add(random.next() % collided, entries: 1 + random.below(3)) }
        for _ in 0..<300 { add(collided, entries: 1 + random.below(5)) }
        for _ in 0..<150 { add(collided + 1 + random.next() % (collided - 1), entries: 1 + random.below(3)) }
        groups.reverse()  // encode sorts
        let expected = Self.sorted(groups)

        let dir = TemporaryDirectory()
        let view = try #require(Self.open(StreamIndexFile.encode(Self.header, groups: groups), in: dir))
        let range = try view.groups(withHash: collided)
        #expect(range == before..<(before + 300))
        #expect((range.upperBound - 1) / 128 - range.lowerBound / 128 >= 2, "the run spans at least three blocks")
        // In file order: by first relative position.
        let firsts = try range.map { try view.entries(ofGroup: $0).entries[0].relativePosition }
        #expect(firsts == firsts.sorted())
        try Self.expectEveryGroupFound(view, expected)
        #expect(try view.groups(withHash: collided - 1).allSatisfy { expected[$0].hash == collided - 1 })
        #expect(try view.groups(withHash: collided + 1).allSatisfy { expected[$0].hash == collided + 1 })
    }

    // MARK: What an open refuses

    /// A file of 1,000 groups (8 group blocks, the last shorter) and 5,000
    /// entries (10 entry blocks, the last shorter).
    static func sample() -> (groups: [Group], bytes: [UInt8], layout: StreamIndexFile.Layout) {
        let groups = sorted(randomGroups(count: 1_000, entries: 5_000, seed: 77))
        return (groups, StreamIndexFile.encode(header, groups: groups), StreamIndexFile.Layout(groupCount: 1_000, entryCount: 5_000))
    }

    @Test func openRefusesABadHeaderFenceOrLength() throws {
        let (_, intact, layout) = Self.sample()
        #expect(layout.groupBlockCount == 8 && layout.entryBlockCount == 10)
        let dir = TemporaryDirectory()
        #expect(Self.open(intact, in: dir) != nil)
        var refused: [(String, [UInt8])] = []
        func variant(_ what: String, resealHeader: Bool = true, _ edit: (inout [UInt8]) -> Void) {
            var bytes = intact
            edit(&bytes)
            if resealHeader { Self.resealHeader(&bytes) }
            refused.append((what, bytes))
        }
        variant("wrong magic") { $0[0] ^= 0x20 }
        variant("version 1") { Self.store(UInt16(1), into: &$0, at: 8) }
        variant("version 3") { Self.store(UInt16(3), into: &$0, at: 8) }
        for offset in [10, 11, 56, 59] { variant("reserved byte \(offset)") { $0[offset] = 1 } }
        variant("64 groups per block") { Self.store(UInt32(64), into: &$0, at: 48) }
        variant("256 entries per block") { Self.store(UInt32(256), into: &$0, at: 52) }
        variant("one more group") { Self.store(UInt32(1_001), into: &$0, at: 12) }
        variant("one entry fewer") { Self.store(UInt32(4_999), into: &$0, at: 44) }
        for offset in [8, 20, 45, 60, 63] { variant("flipped header byte \(offset)", resealHeader: false) { $0[offset] ^= 0x04 } }
        for offset in [64, 70, 64 + 8 * 7 + 7, 64 + 8 * 8, 64 + 8 * 8 + 3] {
            variant("flipped fence byte \(offset)", resealHeader: false) { $0[offset] ^= 0x01 }
        }
        variant("a fence out of order", resealHeader: false) { bytes in
            let (a, b) = (Array(bytes[72..<80]), Array(bytes[80..<88]))
            bytes.replaceSubrange(72..<80, with: b)
            bytes.replaceSubrange(80..<88, with: a)
            Self.resealBlock(&bytes, at: 64, count: 64)
        }
        variant("truncated by one byte", resealHeader: false) { $0.removeLast() }
        variant("truncated to its header", resealHeader: false) { $0.removeLast($0.count - 64) }
        variant("truncated to nothing", resealHeader: false) { $0.removeAll() }
        variant("extended by one byte", resealHeader: false) { $0.append(0) }
        variant("extended by a block checksum", resealHeader: false) { $0 += [0, 0, 0, 0] }
        for (what, bytes) in refused {
            #expect(Self.open(bytes, in: dir) == nil, "\(what)")
            #expect(StreamIndexView.inMemory(bytes, path: "p") == nil, "\(what)")
        }
    }

    /// Version 1 files (one checksum over the whole file, before this
    /// layout) are unusable: the caller rebuilds them.
    @Test func aVersionOneFileIsUnusable() throws {
        // Version 1 of one group with one entry: header, group, entry, checksum of all before it.
        var v1: [UInt8] = []
        func le<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { v1 += $0 } }
        le(Magic.streamIndex); le(UInt16(1)); le(UInt16(0)); le(UInt32(1))
        le(Self.header.basePosition); le(Self.header.endPosition); le(Self.header.dataEnd)
        le(Self.header.lastBatchOffset); le(Self.header.lastBatchCRC); le(UInt32(1))
        v1 += [UInt8](repeating: 0, count: 16)
        le(UInt64(42)); le(UInt64(0)); le(UInt32(0)); le(UInt32(1))
        le(UInt32(0)); le(UInt32(64))
        le(CRC32C.checksum(v1))
        let dir = TemporaryDirectory()
        #expect(Self.open(v1, in: dir) == nil)
    }

    // MARK: Damage inside a block

    @Test func aDamagedGroupBlockIsFoundByTheLookupsThatReadIt() throws {
        let (groups, intact, layout) = Self.sample()
        let damaged = 3
        var bytes = intact
        bytes[layout.groupBlockOffset(damaged) + 50] ^= 0x10
        let dir = TemporaryDirectory()
        let path = dir.sub("00000000000000001000.streamindex")
        let view = try #require(Self.open(bytes, in: dir), "open checks the header and fence only")
        let blockOffset = layout.groupBlockOffset(damaged)
        // Lookups that read block 3: a hash inside it, its first hash (the run may start in block 2).
        for g in [3 * 128 + 5, 3 * 128, 3 * 128 + 127] {
            Self.expectCorruption(file: path, offset: blockOffset) { () throws(EventLogError) in try view.groups(withHash: groups[g].hash) }
            Self.expectCorruption(file: path, offset: blockOffset) { () throws(EventLogError) in try view.entries(ofGroup: g) }
        }
        // Lookups that do not: blocks 0, 2 (but its first group), 4 (but its first group) and 7.
        for g in [0, 5, 127, 2 * 128 + 10, 4 * 128 + 1, 999] {
            let range = try view.groups(withHash: groups[g].hash)
            #expect(range == g..<(g + 1))
            let (hash, firstVersion, entries) = try view.entries(ofGroup: g)
            #expect(Group(hash: hash, firstVersion: firstVersion, entries: entries) == groups[g])
        }
        #expect(view.verify()?.offset == Int64(blockOffset))
        #expect(view.verify()?.reason.contains("checksum mismatch") == true)
        Self.expectCorruption(file: path, offset: blockOffset) { () throws(EventLogError) in try view.allGroups() }
    }

    @Test func aDamagedEntryBlockIsFoundByTheLookupsThatReadIt() throws {
        let (groups, intact, layout) = Self.sample()
        let dir = TemporaryDirectory()
        let path = dir.sub("00000000000000001000.streamindex")
        // A byte inside entry block 6, its checksum, and the last (shorter) block.
        for (block, at) in [(6, 100), (6, 512 * 8 + 2), (9, 7)] {
            var bytes = intact
            let blockOffset = layout.entryBlockOffset(block)
            bytes[blockOffset + at] ^= 0x01
            let view = try #require(Self.open(bytes, in: dir), "open checks the header and fence only")
            var first = 0
            var readers = 0
            for (g, group) in groups.enumerated() {
                let blocks = (first / 512)...((first + group.entries.count - 1) / 512)
                first += group.entries.count
                if blocks.contains(block) {
                    readers += 1
                    Self.expectCorruption(file: path, offset: blockOffset) { () throws(EventLogError) in try view.entries(ofGroup: g) }
                } else {
                    // Its group block is sound: found, with its entries.
                    #expect(try view.groups(withHash: group.hash) == g..<(g + 1))
                    let (hash, firstVersion, entries) = try view.entries(ofGroup: g)
                    #expect(Group(hash: hash, firstVersion: firstVersion, entries: entries) == group)
                }
            }
            #expect(readers > 0)
            #expect(view.verify()?.offset == Int64(blockOffset))
            Self.expectCorruption(file: path, offset: blockOffset) { () throws(EventLogError) in try view.allGroups() }
        }
    }

    /// A group whose entries run past the last one, in a block whose
    /// checksum holds (a writer's mistake, not a flipped bit).
    @Test func aGroupPointingOutsideTheEntriesIsCorruption() throws {
        let (groups, intact, layout) = Self.sample()
        var bytes = intact
        let g = 999
        let at = layout.groupOffset(g)
        Self.store(UInt32(groups[g].entries.count + 1), into: &bytes, at: at + 20)
        let block = layout.groupBlockOffset(g / 128)
        Self.resealBlock(&bytes, at: block, count: layout.groupsIn(block: g / 128) * 24)
        let dir = TemporaryDirectory()
        let path = dir.sub("00000000000000001000.streamindex")
        let view = try #require(Self.open(bytes, in: dir))
        Self.expectCorruption(file: path, offset: block) { () throws(EventLogError) in try view.entries(ofGroup: g) }
        Self.expectCorruption(file: path, offset: block) { () throws(EventLogError) in try view.group(g) }
        #expect(try view.groups(withHash: groups[g].hash) == g..<(g + 1))
        #expect(try view.entries(ofGroup: 998).entries.count == groups[998].entries.count)
        #expect(view.verify()?.offset == Int64(block))
        #expect(view.verify()?.reason.contains("outside the entries") == true)
    }

    /// Found by fuzzing (`scripts/fuzz.sh stream-index`): a group whose first
    /// version plus its entry count passes 2^64 - 1, in blocks whose
    /// checksums hold. `entries(withHash:)` (a stream read) added them up and
    /// trapped on the overflow; it is corruption at the group's block.
    @Test(arguments: [UInt64.max, UInt64.max - 1, UInt64.max - 2])
    func aGroupWhoseVersionsOverflowIsCorruption(firstVersion: UInt64) throws {
        let groups = [
            Group(hash: 5, firstVersion: 0, entries: [(1, 100)]),
            Group(hash: 9, firstVersion: firstVersion, entries: [(2, 200), (3, 300), (4, 400)]),
        ]
        let bytes = StreamIndexFile.encode(Self.header, groups: groups)
        let dir = TemporaryDirectory()
        let path = dir.sub("00000000000000001000.streamindex")
        let view = try #require(Self.open(bytes, in: dir))
        let block = StreamIndexFile.Layout(groupCount: 2, entryCount: 4).groupBlockOffset(0)
        Self.expectCorruption(file: path, offset: block) { () throws(EventLogError) in try view.entries(withHash: 9) }
        Self.expectCorruption(file: path, offset: block) { () throws(EventLogError) in try view.entries(ofGroup: 1) }
        #expect(try view.entries(ofGroup: 0).entries.count == 1)
        #expect(view.verify()?.offset == Int64(block))
        #expect(view.verify()?.reason.contains("run past the largest version") == true)
    }

    /// The largest versions that do not overflow are read as they are.
    @Test func aGroupEndingAtTheLargestVersionIsRead() throws {
        let groups = [Group(hash: 9, firstVersion: UInt64.max - 3, entries: [(2, 200), (3, 300), (4, 400)])]
        let dir = TemporaryDirectory()
        let view = try #require(Self.open(StreamIndexFile.encode(Self.header, groups: groups), in: dir))
        #expect(try view.entries(withHash: 9).map(\.version) == [UInt64.max - 3, UInt64.max - 2, UInt64.max - 1])
        #expect(view.verify() == nil)
    }

    /// Checkpoint and seal files are built from the writer's in-memory chains
    /// (`SegmentStreamEntries.file`, which walks sixteen chains at a time).
    /// Hundreds of streams, some sharing a hash (`mask`), a checkpoint every
    /// few batches and segments rolling: every file is the one `verify`
    /// rebuilds from the records, and each stream reads back whole, in
    /// version order, after a reopen.
    @Test(arguments: [UInt64.max, 0x3F])
    func checkpointFilesOfManyStreamsAreTheRebuiltOnes(mask: UInt64) throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(segmentBytes: 64 << 10, durability: .none)
        options.checkpointBytes = 8192
        options.streamHashMask = mask
        let log = try Log.open(at: dir.path, options: options)
        var rng = SplitMix64(seed: 11)
        var expected: [String: Int] = [:]
        for _ in 0..<300 {
            let events = (0..<10).map { _ in
                let stream = "s-\(rng.next() % 400)"
                expected[stream, default: 0] += 1
                return NewEvent(stream: stream, type: "T", data: [UInt8](repeating: 7, count: Int(rng.next() % 200)))
            }
            try log.append(events)
        }
        try log.close()
        #expect(Fixtures.segments(dir).count > 3)
        if mask == .max {  // verify hashes stream names unmasked
            let report = try Log.verify(at: dir.path)
            #expect(report.isSound, "\(report.problems)")
        }
        // The same files, rebuilt from the records by an open that finds none.
        let names = dir.files().filter { $0.hasSuffix(".streamindex") }.sorted()
        let built = names.map { Damage.read(dir.sub($0)) }
        for name in names { try FileManager.default.removeItem(atPath: dir.sub(name)) }
        try Log.open(at: dir.path, options: options).close()
        #expect(dir.files().filter { $0.hasSuffix(".streamindex") }.sorted() == names)
        #expect(names.map { Damage.read(dir.sub($0)) } == built)
        let reopened = try Log.open(at: dir.path, options: options)
        defer { try? reopened.close() }
        for (stream, count) in expected {
            let events = try reopened.events(inStream: stream)
            #expect(events.map(\.version) == (0..<UInt64(count)).map { $0 }, "\(stream)")
        }
    }
}
