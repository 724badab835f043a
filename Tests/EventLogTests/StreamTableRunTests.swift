import Foundation
import Testing
@_spi(EventLogTool) @testable import EventLog

/// Stream table runs (Format.md §14.1): the writer, the mapped view, the
/// bloom filter, the merge and the file names, on real files.
@Suite struct StreamTableRunTests {
    typealias Row = (hash: UInt64, row: StreamTableRow)

    // MARK: Helpers

    /// Letters of one to four UTF-8 bytes.
    static let alphabet: [[UInt8]] = (Array("abcdefghijklmnopqrstuvwxyz0123456789-_./").map(String.init) + ["é", "日", "ß", "🙂"]).map { Array($0.utf8) }

    static func randomName(_ random: inout SplitMix64) -> String {
        var bytes: [UInt8] = []
        for _ in 0..<(1 + random.below(24)) { bytes += alphabet[random.below(alphabet.count)] }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A value from every size class a varint has, `.max` included.
    static func value(_ random: inout SplitMix64) -> UInt64 {
        switch random.below(5) {
        case 0: return UInt64(random.below(128))
        case 1: return UInt64(random.below(1 << 21))
        case 2: return random.next() >> UInt64(random.below(64))
        case 3: return .max - UInt64(random.below(2))
        default: return random.next()
        }
    }

    static func randomRow(_ name: String, _ random: inout SplitMix64) -> StreamTableRow {
        var row = StreamTableRow(name: name)
        row.nextVersion = value(&random)
        row.truncateBefore = value(&random)
        row.deletion = [StreamDeletion.none, .soft, .hard][random.below(3)]
        row.firstPosition = random.below(4) == 0 ? nil : min(value(&random), .max - 1)
        row.lastPosition = random.below(4) == 0 ? nil : min(value(&random), .max - 1)
        row.lastAppendBatch = random.below(4) == 0 ? .max : min(value(&random), .max - 1)
        row.lastAppendFirstVersion = value(&random)
        row.lastAppendCount = UInt32(truncatingIfNeeded: value(&random))
        row.lastAppendRecordCount = UInt32(truncatingIfNeeded: value(&random))
        row.lastAppendIDDigest = random.below(4) == 0 ? 0 : value(&random)
        row.maxAgeMicroseconds = random.below(3) == 0 ? value(&random) : 0
        row.maxCount = random.below(3) == 0 ? value(&random) : 0
        return row
    }

    /// `rows` in the test's own order (not the code's): hash, then the
    /// name's bytes.
    static func sorted(_ rows: [Row]) -> [Row] {
        rows.map { ($0, Array($0.row.name.utf8)) }
            .sorted { $0.0.hash != $1.0.hash ? $0.0.hash < $1.0.hash : $0.1.lexicographicallyPrecedes($1.1) }
            .map(\.0)
    }

    /// `count` rows with distinct random names, sorted.
    static func randomRows(_ count: Int, seed: UInt64) -> [Row] {
        var random = SplitMix64(seed: seed)
        var names = Set<String>()
        while names.count < count { names.insert(randomName(&random)) }
        return sorted(names.map { (StreamHash.hash($0), randomRow($0, &random)) })
    }

    static func write(_ rows: [Row], in dir: TemporaryDirectory, from: UInt64 = 0, to: UInt64 = 100, expectedRows: Int? = nil) throws
        -> StreamTableRunView
    {
        let name = FileNames.streamTableRun(from: from, to: to)
        try StreamTableRunWriter.write(
            rows: rows.lazy.map { ($0.hash, $0.row) }, to: name, in: DirectoryOperations(path: dir.path, faults: nil),
            from: from, to: to, expectedRows: expectedRows ?? rows.count)
        return try #require(StreamTableRunView.open(path: dir.sub(name), faults: nil))
    }

    static func allRows(_ view: StreamTableRunView) throws -> [Row] {
        var rows: [Row] = []
        try view.forEachRow { rows.append(($0, $1)) }
        return rows
    }

    static func expectSame(_ a: [Row], _ b: [Row], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, sourceLocation: sourceLocation)
        let differing = zip(a.indices, b.indices).first { a[$0].hash != b[$1].hash || a[$0].row != b[$1].row }?.0
        #expect(differing == nil, "first differing row: \(differing.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    }

    /// Each row with the offset of its block, read through a cursor.
    static func rowsByBlock(_ view: StreamTableRunView) throws -> [(row: Row, block: Int64)] {
        var cursor = StreamTableRunCursor(view)
        var result: [(Row, Int64)] = []
        while try cursor.advance() { result.append(((cursor.hash, cursor.row), cursor.blockOffset)) }
        return result
    }

    /// The error a throwing call threw, as an `EventLogError` (nil when none).
    static func thrown(_ body: () throws -> Void) -> EventLogError? {
        do { try body() } catch let error as EventLogError { return error } catch { return .invalidArgument("other error: \(error)") }
        return nil
    }

    static func le<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _ type: T.Type) -> T {
        bytes.withUnsafeBytes { $0.loadLE(at: offset, as: T.self) }
    }

    static func store<T: FixedWidthInteger>(_ value: T, _ bytes: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
    }

    /// Rewrites the header's checksum after an edit, so the edit itself is what a reader sees.
    static func resealHeader(_ bytes: inout [UInt8]) {
        store(CRC32C.checksum(Array(bytes[0..<60])), &bytes, at: 60)
    }

    // MARK: Round trips

    @Test(arguments: [0, 1, 50_000])
    func roundTrip(count: Int) throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let rows = Self.randomRows(count, seed: UInt64(count) + 7)
        let view = try Self.write(rows, in: dir, from: 5, to: 905)
        #expect(view.rowCount == count)
        #expect(view.from == 5 && view.to == 905)
        #expect(view.path == dir.sub("00000000000000000005-00000000000000000905.streamtable"))
        #expect(view.fileBytes == Damage.read(view.path).count)
        #expect(dir.files() == ["00000000000000000005-00000000000000000905.streamtable"])
        if count == 0 {
            #expect(view.blockCount == 0 && view.fileBytes == 72 && view.bloomBlockCount == 0)
        }
        Self.expectSame(try Self.allRows(view), rows)
        #expect(view.verify() == nil)
        for (hash, row) in rows {
            let found = try view.lookup(hash: hash, name: row.name)
            if found != row { Issue.record("lookup of \(row.name) gave \(String(describing: found))"); break }
        }
        let present = Set(rows.map(\.row.name))
        var random = SplitMix64(seed: 99)
        var absent = 0
        while absent < 10_000 {
            let name = Self.randomName(&random)
            guard !present.contains(name) else { continue }
            absent += 1
            let found = try view.lookup(hash: StreamHash.hash(name), name: name)
            if found != nil { Issue.record("absent \(name) found"); break }
        }
        // A present name under another hash, and a present hash with another name.
        if let (hash, row) = rows.first {
            #expect(try view.lookup(hash: hash &+ 1, name: row.name) == nil)
            #expect(try view.lookup(hash: hash, name: row.name + "x") == nil)
        }
    }

    /// The fence search interpolates on the assumption that hashes are even;
    /// with hashes that are not (clustered, skewed, at both ends of the
    /// range) it must still find the block a plain scan of the fence finds.
    @Test(arguments: [0, 1, 2, 3])
    func theFenceSearchFindsTheBlockWhateverTheHashes(shape: Int) throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        var random = SplitMix64(seed: 41 + UInt64(shape))
        var hashes = Set<UInt64>([0, .max, .max - 1, 1])
        while hashes.count < 20_000 {
            let x = random.next()
            switch shape {
            case 0: hashes.insert(x)  // even
            case 1: hashes.insert(x >> 40)  // all in the lowest 2^24
            case 2: hashes.insert(UInt64(Double(x >> 11) * Double(x >> 11) / Double(1 << 53)))  // skewed to 0
            default: hashes.insert(random.below(2) == 0 ? x >> 50 : .max - (x >> 50))  // two clusters at the ends
            }
        }
        var rows: [Row] = []
        for hash in hashes { rows.append((hash, Self.randomRow("s\(hash)", &random))) }
        rows = Self.sorted(rows)
        let view = try Self.write(rows, in: dir)
        #expect(view.blockCount > 500)
        let firsts = (0..<view.blockCount).map { view.fenceEntry($0).hash }
        func expected(_ hash: UInt64) -> Int? { firsts.lastIndex { $0 <= hash } }
        var queries = firsts + firsts.map { $0 &- 1 } + firsts.map { $0 &+ 1 } + [0, 1, .max, .max - 1]
        for _ in 0..<5_000 { queries.append(rows[random.below(rows.count)].hash &+ UInt64(random.below(3)) &- 1) }
        for _ in 0..<5_000 { queries.append(random.next()) }
        var wrong = 0
        for hash in queries where try view.searchFence(hash) != expected(hash) { wrong += 1 }
        #expect(wrong == 0)
        for (hash, row) in rows.prefix(3_000) + rows.suffix(3_000) {
            if try view.lookup(hash: hash, name: row.name) != row {
                Issue.record("lookup of the row of hash \(hash) failed")
                break
            }
        }
    }

    @Test func aBloomFilterSizedForFewerRowsStillFindsEveryRow() throws {
        for expected in [0, 1, 100] {
            let dir = TemporaryDirectory("runs", preferMemory: true)
            let rows = Self.randomRows(1000, seed: 3)
            let view = try Self.write(rows, in: dir, expectedRows: expected)
            #expect(view.bloomBlockCount == max(1, BloomFilter.blockCount(forKeys: expected)))
            for (hash, row) in rows { #expect(try view.lookup(hash: hash, name: row.name) == row) }
            #expect(view.verify() == nil)
        }
    }

    @Test func theLayoutIsTheDocumentedOne() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let rows = Self.randomRows(2000, seed: 11)
        let view = try Self.write(rows, in: dir, from: 1234, to: 5678)
        let bytes = Damage.read(view.path)
        #expect(Array(bytes[0..<8]) == Array("EVLOGSTR".utf8))
        #expect(Self.le(bytes, 8, UInt16.self) == 4)
        #expect(Self.le(bytes, 10, UInt16.self) == 0)
        let blocks = Int(Self.le(bytes, 12, UInt32.self))
        #expect(blocks == view.blockCount && blocks > 10)
        #expect(Self.le(bytes, 16, UInt64.self) == 2000)
        #expect(Self.le(bytes, 24, UInt64.self) == 1234)
        #expect(Self.le(bytes, 32, UInt64.self) == 5678)
        let fence = Int(Self.le(bytes, 40, UInt64.self))
        let bloom = Int(Self.le(bytes, 48, UInt64.self))
        let bloomBlocks = Int(Self.le(bytes, 56, UInt32.self))
        #expect(bloomBlocks == (2000 * 10 + 511) / 512)
        #expect(Self.le(bytes, 60, UInt32.self) == CRC32C.checksum(Array(bytes[0..<60])))
        #expect(bloom == fence + 16 * blocks + 4)
        #expect(bytes.count == bloom + 64 * bloomBlocks + 4)
        #expect(Self.le(bytes, fence + 16 * blocks, UInt32.self) == CRC32C.checksum(Array(bytes[fence..<(fence + 16 * blocks)])))
        #expect(Self.le(bytes, bloom + 64 * bloomBlocks, UInt32.self) == CRC32C.checksum(Array(bytes[bloom..<(bloom + 64 * bloomBlocks)])))
        // Blocks back to back from byte 64; each closes at the first row boundary at or past StreamTableRun.targetBlockBytes bytes.
        var at = 64
        var rowIndex = 0
        for b in 0..<blocks {
            #expect(Self.le(bytes, fence + 16 * b + 8, UInt64.self) == UInt64(at))
            #expect(Self.le(bytes, fence + 16 * b, UInt64.self) == rows[rowIndex].hash)
            let length = Int(Self.le(bytes, at, UInt32.self))
            let count = Int(Self.le(bytes, at + 4, UInt32.self))
            #expect(Self.le(bytes, at + length - 4, UInt32.self) == CRC32C.checksum(Array(bytes[at..<(at + length - 4)])))
            // Decode the rows by hand (the layout, not the code's decoder).
            var offset = at + 8
            var lastRowStart = offset
            for _ in 0..<count {
                lastRowStart = offset
                #expect(Self.le(bytes, offset, UInt64.self) == rows[rowIndex].hash)
                offset += 8
                let nameLength = Int(bytes[offset])
                #expect(String(decoding: bytes[(offset + 1)..<(offset + 1 + nameLength)], as: UTF8.self) == rows[rowIndex].row.name)
                offset += 1 + nameLength
                // From version 3: the id digest (u64, little-endian) and the record count (varint).
                let digestAt = offset + Self.fieldBytes(bytes, after: offset, version: 2)
                #expect(Self.le(bytes, digestAt, UInt64.self) == rows[rowIndex].row.lastAppendIDDigest)
                var countAt = digestAt + 8
                let recordCount = bytes.withUnsafeBytes { Varint.read($0, &countAt) }
                #expect(recordCount == UInt64(rows[rowIndex].row.lastAppendRecordCount))
                // Version 4: the max age and the max count (varints) end it.
                var limitsAt = countAt
                let maxAge = bytes.withUnsafeBytes { Varint.read($0, &limitsAt) }
                let maxCount = bytes.withUnsafeBytes { Varint.read($0, &limitsAt) }
                #expect(maxAge == rows[rowIndex].row.maxAgeMicroseconds && maxCount == rows[rowIndex].row.maxCount)
                offset += Self.fieldBytes(bytes, after: offset)
                #expect(offset == limitsAt)
                rowIndex += 1
            }
            #expect(offset == at + length - 4)
            if b < blocks - 1 {
                #expect(length - 4 >= StreamTableRun.targetBlockBytes, "block \(b) closed early")
                #expect(lastRowStart - at < StreamTableRun.targetBlockBytes, "block \(b) closed late")
            }
            at += length
        }
        #expect(at == fence && rowIndex == 2000)
    }

    // MARK: Collisions and the bloom filter

    @Test func namesSharingAHashAreAllFoundInOneBlock() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        var random = SplitMix64(seed: 42)
        var rows = Self.randomRows(3000, seed: 5)
        let colliding = (0..<300).map { "collides-\($0)-" + String(repeating: "x", count: random.below(20)) }
        rows += colliding.map { (UInt64(42), Self.randomRow($0, &random)) }
        rows += ["a", "b"].map { (UInt64(41), Self.randomRow($0, &random)) }
        rows += ["a", "b"].map { (UInt64(43), Self.randomRow($0, &random)) }
        rows = Self.sorted(rows)
        let view = try Self.write(rows, in: dir)
        let byBlock = try Self.rowsByBlock(view)
        let blocksOf42 = Set(byBlock.filter { $0.row.hash == 42 }.map(\.block))
        #expect(blocksOf42.count == 1, "hash 42 spans blocks \(blocksOf42)")
        let block = try view.checkedBlock((0..<view.blockCount).first { Int64(view.fenceEntry($0).offset) == blocksOf42.first! }!)
        #expect(block.rowsEnd - block.offset > StreamTableRun.targetBlockBytes * 2, "300 colliding rows should exceed a block's target")
        for (hash, row) in rows { #expect(try view.lookup(hash: hash, name: row.name) == row) }
        #expect(try view.lookup(hash: 42, name: "collides-") == nil)
        #expect(try view.lookup(hash: 42, name: "zzz") == nil)
        #expect(try view.lookup(hash: 42, name: "a") == nil)
        #expect(view.verify() == nil)
    }

    @Test func bloomFalsePositiveRateAtTenBitsAKey() {
        var random = SplitMix64(seed: 2024)
        let keys = 100_000
        var filter = BloomFilter(expectedKeys: keys)
        #expect(filter.blockCount == (keys * 10 + 511) / 512)
        let inserted = (0..<keys).map { _ in random.next() }
        for key in inserted { filter.insert(key) }
        #expect(inserted.allSatisfy { filter.mayContain($0) })
        var falsePositives = 0
        for _ in 0..<keys where filter.mayContain(random.next()) { falsePositives += 1 }
        let rate = Double(falsePositives) / Double(keys)
        #expect(rate < 0.03, "false-positive rate \(rate)")
        #expect(falsePositives > 0, "a filter of 10 bits a key has some false positives")

        // FNV-1a hashes of similar names, the stream layer's keys, spread as well.
        var names = BloomFilter(expectedKeys: keys)
        for i in 0..<keys { names.insert(StreamHash.hash("stream-\(i)")) }
        var namePositives = 0
        for i in keys..<(2 * keys) where names.mayContain(StreamHash.hash("stream-\(i)")) { namePositives += 1 }
        #expect(Double(namePositives) / Double(keys) < 0.03, "false-positive rate on names \(Double(namePositives) / Double(keys))")
    }

    @Test func bloomFilterSizes() {
        #expect(BloomFilter.blockCount(forKeys: 0) == 0)
        #expect(BloomFilter.blockCount(forKeys: 1) == 1)
        #expect(BloomFilter.blockCount(forKeys: 51) == 1)
        #expect(BloomFilter.blockCount(forKeys: 52) == 2)
        #expect(BloomFilter.blockCount(forKeys: Int.max) == Int(UInt32.max))
        #expect(!BloomFilter(blockCount: 0).mayContain(7))
        // The documented derivation, by hand: block from the high half of the remix, six bits from the low half.
        var filter = BloomFilter(blockCount: 3)
        let hash: UInt64 = 0x0123_4567_89AB_CDEF
        filter.insert(hash)
        var x = hash
        x ^= x >> 33; x &*= 0xFF51_AFD7_ED55_8CCD; x ^= x >> 33; x &*= 0xC4CE_B9FE_1A85_EC53; x ^= x >> 33
        let block = Int(((x >> 32) * 3) >> 32)
        var h = UInt32(truncatingIfNeeded: x)
        var expected = [UInt8](repeating: 0, count: 3 * 64)
        for _ in 0..<6 {
            h = h &* 0x9E37_79B9
            let bit = Int(h >> 23)
            expected[block * 64 + bit / 8] |= 1 << (bit % 8)
        }
        #expect(filter.bytes == expected)
    }

    // MARK: Damage

    /// A valid run of a few blocks, in memory.
    static func smallRun() throws -> (bytes: [UInt8], rows: [Row], dir: TemporaryDirectory, path: String) {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let rows = randomRows(400, seed: 17)
        let view = try write(rows, in: dir)
        #expect(view.blockCount >= 3)
        return (Damage.read(view.path), rows, dir, view.path)
    }

    @Test func openRefusesADamagedHeaderFenceOrBloom() throws {
        let (intact, _, dir, path) = try Self.smallRun()
        #expect(StreamTableRunView.inMemory(intact, path: path) != nil)
        func refused(_ bytes: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(StreamTableRunView.inMemory(bytes, path: path) == nil, "\(what)", sourceLocation: sourceLocation)
        }
        var bytes = intact
        bytes[0] ^= 1
        Self.resealHeader(&bytes)
        refused(bytes, "wrong magic")
        for version: UInt16 in [0, 1, 5, .max] {
            bytes = intact
            Self.store(version, &bytes, at: 8)
            Self.resealHeader(&bytes)
            refused(bytes, "version \(version)")
        }
        for offset in [10, 11] {
            bytes = intact
            bytes[offset] = 1
            Self.resealHeader(&bytes)
            refused(bytes, "reserved byte \(offset)")
        }
        for offset in 0..<64 {
            bytes = intact
            bytes[offset] ^= 0x10
            refused(bytes, "header byte \(offset) flipped")
        }
        // Header fields that disagree with the file, checksum intact.
        for (offset, delta) in [(12, 1), (40, 1), (48, 1), (56, 1)] {
            bytes = intact
            bytes[offset] &+= UInt8(delta)
            Self.resealHeader(&bytes)
            refused(bytes, "header field at \(offset) changed")
        }
        bytes = intact
        Self.store(UInt64(101), &bytes, at: 24)
        Self.resealHeader(&bytes)
        refused(bytes, "from after to")
        // A row count the blocks do not hold cannot be seen without reading
        // them: open takes it, verify reports it.
        bytes = intact
        bytes[16] &+= 1
        Self.resealHeader(&bytes)
        let miscounted = try #require(StreamTableRunView.inMemory(bytes, path: path))
        #expect(miscounted.verify()?.offset == 0)
        #expect(miscounted.verify()?.reason.contains("rows") == true)
        let fence = Int(Self.le(intact, 40, UInt64.self))
        let bloom = Int(Self.le(intact, 48, UInt64.self))
        for offset in [fence, fence + 7, fence + 8, fence + 20, bloom - 4, bloom - 1] {
            bytes = intact
            bytes[offset] ^= 0x04
            refused(bytes, "fence byte \(offset - fence) flipped")
        }
        for offset in [bloom, bloom + 33, intact.count - 5, intact.count - 4, intact.count - 1] {
            bytes = intact
            bytes[offset] ^= 0x80
            refused(bytes, "bloom byte \(offset - bloom) flipped")
        }
        // A fence whose checksum holds but whose entries break the rules.
        for (what, edit) in [
            ("first block not at 64", { (b: inout [UInt8]) in Self.store(UInt64(65), &b, at: fence + 8) }),
            ("hashes not increasing", { (b: inout [UInt8]) in Self.store(Self.le(b, fence + 16, UInt64.self), &b, at: fence) }),
            ("offsets not increasing", { (b: inout [UInt8]) in Self.store(UInt64(64), &b, at: fence + 24) }),
            ("an offset past the blocks", { (b: inout [UInt8]) in Self.store(UInt64(fence), &b, at: fence + 24) }),
        ] {
            bytes = intact
            edit(&bytes)
            let entries = bloom - 4 - fence
            Self.store(CRC32C.checksum(Array(bytes[fence..<(fence + entries)])), &bytes, at: fence + entries)
            refused(bytes, what)
        }
        // On disk: truncated and extended files, and a missing one.
        for length in [0, 63, 64, 72, intact.count - 1] {
            Damage.write(path, intact)
            Damage.truncate(path, to: length)
            #expect(StreamTableRunView.open(path: path, faults: nil) == nil, "truncated to \(length)")
        }
        Damage.write(path, intact + [0])
        #expect(StreamTableRunView.open(path: path, faults: nil) == nil, "extended by a byte")
        Damage.write(path, intact + [UInt8](repeating: 0, count: 4096))
        #expect(StreamTableRunView.open(path: path, faults: nil) == nil, "extended by a page")
        Damage.write(path, intact)
        #expect(StreamTableRunView.open(path: path, faults: nil) != nil)
        #expect(StreamTableRunView.open(path: dir.sub("missing.streamtable"), faults: nil) == nil)
        // Through the storage seam: a file that cannot be opened or mapped is unusable too.
        for failing in [StorageOperation.open, .map] {
            let faults = StorageFaults { operation, _ in operation == failing ? .fail(errno: EIO) : nil }
            #expect(StreamTableRunView.open(path: path, faults: faults) == nil, "\(failing) failed")
        }
    }

    @Test func aDamagedBlockOpensButItsLookupsAndVerifyReportItsOffset() throws {
        let (intact, _, dir, path) = try Self.smallRun()
        defer { withExtendedLifetime(dir) {} }
        let view = try #require(StreamTableRunView.inMemory(intact, path: path))
        let byBlock = try Self.rowsByBlock(view)
        let blockOffsets = (0..<view.blockCount).map { Int64(view.fenceEntry($0).offset) }
        let damagedBlock = blockOffsets[1]
        let nextBlock = blockOffsets[2]
        let inDamaged = byBlock.filter { $0.block == damagedBlock }.map(\.row)
        let elsewhere = byBlock.filter { $0.block != damagedBlock }.map(\.row)
        #expect(!inDamaged.isEmpty && !elsewhere.isEmpty)
        // A byte of a row, the length field, the row count, the checksum.
        let edits: [(String, Int)] = [
            ("a row byte", Int(damagedBlock) + 8 + 20), ("the length field", Int(damagedBlock)),
            ("the row count", Int(damagedBlock) + 4), ("the checksum", Int(nextBlock) - 2),
        ]
        for (what, offset) in edits {
            var bytes = intact
            bytes[offset] ^= 0x01
            Damage.write(path, bytes)
            let damaged = try #require(StreamTableRunView.open(path: path, faults: nil), "open reads no block (\(what))")
            for (hash, row) in inDamaged {
                let error = Self.thrown { _ = try damaged.lookup(hash: hash, name: row.name) }
                #expect(error.map { "\($0)" }?.hasPrefix("corruption in \(path) at byte \(damagedBlock): ") == true, "\(what): \(String(describing: error))")
                guard case .corruption(let file, let at, _)? = error, file == path, at == damagedBlock else {
                    Issue.record("\(what): lookup of \(row.name) gave \(String(describing: error))")
                    break
                }
            }
            for (hash, row) in elsewhere { #expect(try damaged.lookup(hash: hash, name: row.name) == row, "\(what)") }
            #expect(damaged.verify()?.offset == damagedBlock, "\(what): \(String(describing: damaged.verify()))")
            let error = Self.thrown { try damaged.forEachRow { _, _ in } }
            guard case .corruption(path, damagedBlock, _)? = error else {
                Issue.record("\(what): forEachRow gave \(String(describing: error))")
                continue
            }
        }
    }

    @Test func rowsOutOfOrderInsideAnIntactBlockAreFoundByVerify() throws {
        // A block whose checksum holds but whose rows a writer could not have written.
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let rows = Self.randomRows(300, seed: 23)
        let view = try Self.write(rows, in: dir)
        var bytes = Damage.read(view.path)
        let block = Int(view.fenceEntry(1).offset)
        let length = Int(Self.le(bytes, block, UInt32.self))
        // The block's second row gets its first row's hash minus one: before it.
        let firstName = Int(bytes[block + 16])
        let secondRow = block + 8 + 8 + 1 + firstName + Self.fieldBytes(bytes, after: block + 8 + 8 + 1 + firstName)
        let intact = bytes
        Self.store(Self.le(bytes, block + 8, UInt64.self) &- 1, &bytes, at: secondRow)
        Self.store(CRC32C.checksum(Array(bytes[block..<(block + length - 4)])), &bytes, at: block + length - 4)
        let damaged = try #require(StreamTableRunView.inMemory(bytes, path: view.path))
        #expect(damaged.verify()?.offset == Int64(block))
        #expect(damaged.verify()?.reason.contains("order") == true)
        let (hash, row) = rows.first { StreamHash.hash($0.row.name) == Self.le(intact, secondRow, UInt64.self) }!
        // A lookup trusts the order of a block whose checksum holds (the
        // writer refuses rows out of order): it finds nothing or reports
        // damage, and never returns another stream's row.
        do {
            let found = try damaged.lookup(hash: hash, name: row.name)
            #expect(found == nil || found == row)
        } catch {
            guard case .corruption(view.path, Int64(block), _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
        }
        // A length field that disagrees with the fence, checksum intact.
        bytes = intact
        Self.store(UInt32(length + 1), &bytes, at: block)
        Self.store(CRC32C.checksum(Array(bytes[block..<(block + length - 4)])), &bytes, at: block + length - 4)
        let misLength = try #require(StreamTableRunView.inMemory(bytes, path: view.path))
        #expect(misLength.verify()?.offset == Int64(block))
        #expect(misLength.verify()?.reason.contains("length") == true)
    }

    /// The bytes of a row's fields after its name, in the layout of run
    /// `version`: two varints, the deletion byte, five varints; then, from
    /// version 3, the 8-byte digest and a varint; then, from version 4, two varints.
    static func fieldBytes(_ bytes: [UInt8], after offset: Int, version: UInt16 = StreamTableRun.version) -> Int {
        var at = offset
        for field in 0..<(version >= 4 ? 12 : version >= 3 ? 10 : 8) {
            if field == 2 { at += 1; continue }
            if field == 8 { at += 8; continue }
            while bytes[at] & 0x80 != 0 { at += 1 }
            at += 1
        }
        return at - offset
    }

    // MARK: Writer

    @Test func theWriterRefusesRowsOutOfOrderAndBadNamesWithoutCrashing() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let path = dir.sub("x.streamtable")
        var writer = try StreamTableRunWriter(path: path, from: 0, to: 10, expectedRows: 4, modes: .ownerOnly, faults: nil)
        try writer.append(hash: 5, row: StreamTableRow(name: "b"))
        for (hash, name) in [(UInt64(5), "a"), (5, "b"), (4, "z"), (0, "b"), (6, ""), (6, String(repeating: "n", count: 256))] {
            do throws(IOError) {
                try writer.append(hash: hash, row: StreamTableRow(name: name))
                Issue.record("(\(hash), \(name.prefix(10))) was taken")
            } catch {
                #expect(error.errno == EINVAL)
                #expect(error.path == path)
                #expect(error.description.contains(name.isEmpty || name.count > 255 ? "1 to 255" : "strictly increasing"), "\(error)")
            }
        }
        try writer.append(hash: 5, row: StreamTableRow(name: "ba"))
        try writer.append(hash: 6, row: StreamTableRow(name: String(repeating: "n", count: 255)))
        try writer.finish()
        let view = try #require(StreamTableRunView.open(path: path, faults: nil))
        #expect(try Self.allRows(view).map(\.row.name) == ["b", "ba", String(repeating: "n", count: 255)])
        do throws(IOError) {
            _ = try StreamTableRunWriter(path: dir.sub("y.streamtable"), from: 11, to: 10, expectedRows: 0, modes: .ownerOnly, faults: nil)
            Issue.record("a run from 11 to 10 was created")
        } catch {
            #expect(error.errno == EINVAL)
        }
    }

    @Test func aFailedWriteLeavesNeitherTheRunNorItsTemporaryFile() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let rows = Self.randomRows(5000, seed: 31)
        for failing in [StorageOperation.write, .datasync, .rename] {
            let faults = StorageFaults { operation, _ in operation == failing ? .fail(errno: EIO) : nil }
            do throws(IOError) {
                try StreamTableRunWriter.write(
                    rows: rows.lazy.map { ($0.hash, $0.row) }, to: "r.streamtable", in: DirectoryOperations(path: dir.path, faults: faults),
                    from: 0, to: 1, expectedRows: rows.count)
                Issue.record("\(failing) failed, yet the write succeeded")
            } catch {
                #expect(error.errno == EIO)
            }
            #expect(dir.files() == [], "after a failed \(failing)")
        }
    }

    // MARK: Merge

    @Test func mergeTakesTheNewestRowOfEachStream() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        var random = SplitMix64(seed: 77)
        let names = (0..<3000).map { "stream-\($0)" }
        var expected: [String: StreamTableRow] = [:]
        var views: [StreamTableRunView] = []
        for (i, range) in [(0, 100), (100, 250), (250, 400)].enumerated() {
            // Each run changes a random half of the names; the last also adds colliding ones.
            var rows = names.filter { _ in random.below(2) == 0 }.map { (StreamHash.hash($0), Self.randomRow($0, &random)) }
            if i == 2 { rows += (0..<50).map { (UInt64(42), Self.randomRow("collides-\($0)", &random)) } }
            if i == 1 { rows += (25..<75).map { (UInt64(42), Self.randomRow("collides-\($0)", &random)) } }
            rows = Self.sorted(rows)
            for (_, row) in rows { expected[row.name] = row }
            views.append(try Self.write(rows, in: dir, from: UInt64(range.0), to: UInt64(range.1)))
        }
        let name = FileNames.streamTableRun(from: 0, to: 400)
        let merged = try StreamTableRunMerge.merge(views, into: name, in: DirectoryOperations(path: dir.path, faults: nil))
        #expect(merged.from == 0 && merged.to == 400)
        #expect(merged.path == dir.sub(name))
        #expect(!dir.files().contains { $0.hasSuffix(".tmp") })
        let unsorted: [Row] = expected.map { (name, row) in (name.hasPrefix("collides-") ? UInt64(42) : StreamHash.hash(name), row) }
        let want = Self.sorted(unsorted)
        Self.expectSame(try Self.allRows(merged), want)
        #expect(merged.verify() == nil)
        for (hash, row) in want { #expect(try merged.lookup(hash: hash, name: row.name) == row) }
        // Merging a merged run with the next one works the same.
        let next = try Self.write([(StreamHash.hash("stream-7"), StreamTableRow(name: "stream-7"))], in: dir, from: 400, to: 401)
        let again = try StreamTableRunMerge.merge([merged, next], into: "again.streamtable", in: DirectoryOperations(path: dir.path, faults: nil))
        #expect(try again.lookup(hash: StreamHash.hash("stream-7"), name: "stream-7") == StreamTableRow(name: "stream-7"))
        #expect(again.rowCount == merged.rowCount + (expected["stream-7"] == nil ? 1 : 0))
    }

    @Test func mergeRefusesRunsThatAreNotContiguous() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let rows = Self.randomRows(10, seed: 1)
        let a = try Self.write(rows, in: dir, from: 0, to: 100)
        let b = try Self.write(rows, in: dir, from: 150, to: 200)
        let c = try Self.write(rows, in: dir, from: 100, to: 150)
        let directory = DirectoryOperations(path: dir.path, faults: nil)
        let before = dir.files()
        for (runs, what) in [([a, b], "a gap"), ([c, a], "newest first"), ([a, c, a], "a repeat"), ([], "none")] {
            let error = Self.thrown { _ = try StreamTableRunMerge.merge(runs, into: "m.streamtable", in: directory) }
            guard case .invalidArgument? = error else {
                Issue.record("\(what): \(String(describing: error))")
                continue
            }
        }
        #expect(dir.files() == before)
        let merged = try StreamTableRunMerge.merge([a, c, b], into: "m.streamtable", in: directory)
        Self.expectSame(try Self.allRows(merged), rows)
    }

    @Test func mergeOfADamagedRunFailsAndLeavesNothing() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let a = try Self.write(Self.randomRows(500, seed: 2), in: dir, from: 0, to: 10)
        let b = try Self.write(Self.randomRows(500, seed: 3), in: dir, from: 10, to: 20)
        Damage.flipBit(b.path, at: Int(b.fenceEntry(1).offset) + 30)
        let damaged = try #require(StreamTableRunView.open(path: b.path, faults: nil))
        let error = Self.thrown {
            _ = try StreamTableRunMerge.merge([a, damaged], into: "m.streamtable", in: DirectoryOperations(path: dir.path, faults: nil))
        }
        guard case .corruption(b.path, Int64(b.fenceEntry(1).offset), _)? = error else {
            Issue.record("\(String(describing: error))")
            return
        }
        #expect(!dir.files().contains { $0.hasPrefix("m.") })
    }

    // MARK: Version 2 runs

    /// The version 2 run of the rows of the version 3 run `bytes`, as a
    /// build before format version 4 wrote it (Format.md §14.1): each row
    /// without its id digest and record count, each block shortened to fit
    /// (its length, checksum and fence offset with it), the bloom filter as
    /// it was. Blocks keep the rows the version 3 writer gave them (a reader
    /// does not rely on the size).
    static func version2(of bytes: [UInt8]) -> [UInt8] { downgraded(bytes, to: 2) }

    /// The run `bytes` (written by this build) as a build of format version
    /// 4 wrote it: each row without its limits.
    static func version3(of bytes: [UInt8]) -> [UInt8] { downgraded(bytes, to: 3) }

    /// The run `bytes` in the older layout `version` (2 or 3): each row's
    /// fields cut to that layout's, each block shortened to fit.
    static func downgraded(_ bytes: [UInt8], to version: UInt16) -> [UInt8] {
        let blocks = Int(le(bytes, 12, UInt32.self))
        let fence = Int(le(bytes, 40, UInt64.self))
        let bloom = Int(le(bytes, 48, UInt64.self))
        var out = Array(bytes[0..<64])
        var entries: [UInt8] = []
        for b in 0..<blocks {
            let at = Int(le(bytes, fence + 16 * b + 8, UInt64.self))
            let rows = Int(le(bytes, at + 4, UInt32.self))
            let start = out.count
            out += [0, 0, 0, 0] + bytes[(at + 4)..<(at + 8)]
            var offset = at + 8
            for _ in 0..<rows {
                let fields = offset + 8 + 1 + Int(bytes[offset + 8])
                out += bytes[offset..<(fields + fieldBytes(bytes, after: fields, version: version))]
                offset = fields + fieldBytes(bytes, after: fields)
            }
            store(UInt32(out.count - start + 4), &out, at: start)
            out += littleEndian(CRC32C.checksum(Array(out[start...])))
            entries += bytes[(fence + 16 * b)..<(fence + 16 * b + 8)] + littleEndian(UInt64(start))
        }
        let newFence = out.count
        out += entries + littleEndian(CRC32C.checksum(entries))
        let newBloom = out.count
        out += bytes[bloom...]  // the filter and its checksum
        store(version, &out, at: 8)
        store(UInt64(newFence), &out, at: 40)
        store(UInt64(newBloom), &out, at: 48)
        resealHeader(&out)
        return out
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// `rows` as a version 2 run reads them: digest and record count unknown (0), no limits.
    static func withoutRetryFields(_ rows: [Row]) -> [Row] {
        withoutLimits(rows).map { hash, row in
            var row = row
            row.lastAppendIDDigest = 0
            row.lastAppendRecordCount = 0
            return (hash, row)
        }
    }

    /// `rows` as a version 3 run reads them: no limits.
    static func withoutLimits(_ rows: [Row]) -> [Row] {
        rows.map { hash, row in
            var row = row
            row.maxAgeMicroseconds = 0
            row.maxCount = 0
            return (hash, row)
        }
    }

    @Test func aVersion3RunIsReadWithoutLimits() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let rows = Self.randomRows(3000, seed: 44)
        #expect(rows.contains { $0.row.maxCount > 0 } && rows.contains { $0.row.maxAgeMicroseconds > 0 })
        let v4 = try Self.write(rows, in: dir, from: 10, to: 20)
        Damage.write(v4.path, Self.version3(of: Damage.read(v4.path)))
        let v3 = try #require(StreamTableRunView.open(path: v4.path, faults: nil))
        #expect(v3.version == 3 && v3.rowCount == 3000)
        let expected = Self.withoutLimits(rows)
        Self.expectSame(try Self.allRows(v3), expected)
        #expect(v3.verify() == nil)
        for (hash, row) in expected {
            let found = try v3.lookup(hash: hash, name: row.name)
            if found != row { Issue.record("lookup of \(row.name) gave \(String(describing: found))"); break }
        }
    }

    @Test func aVersion2RunIsReadWithItsDigestsAndRecordCountsUnknown() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let rows = Self.randomRows(3000, seed: 41)
        let v3 = try Self.write(rows, in: dir, from: 10, to: 20)
        let bytes = Self.version2(of: Damage.read(v3.path))
        #expect(Self.le(bytes, 8, UInt16.self) == 2)
        #expect(bytes.count < v3.fileBytes - 3000 * 9, "a version 2 row is at least 9 bytes shorter")
        Damage.write(v3.path, bytes)
        let v2 = try #require(StreamTableRunView.open(path: v3.path, faults: nil))
        #expect(v2.version == 2 && v2.rowCount == 3000 && v2.blockCount == v3.blockCount)
        let expected = Self.withoutRetryFields(rows)
        Self.expectSame(try Self.allRows(v2), expected)
        #expect(v2.verify() == nil)
        for (hash, row) in expected {
            let found = try v2.lookup(hash: hash, name: row.name)
            if found != row { Issue.record("lookup of \(row.name) gave \(String(describing: found))"); break }
        }
        // The layout is told by the version field: a version 2 run read as
        // version 3 (or the reverse) does not decode.
        var relabelled = bytes
        Self.store(UInt16(3), &relabelled, at: 8)
        Self.resealHeader(&relabelled)
        let misread = try #require(StreamTableRunView.inMemory(relabelled, path: v3.path), "open reads no block")
        #expect(misread.verify() != nil)
    }

    @Test func aMergeWritesTheCurrentVersionReencodingVersion2Rows() throws {
        let dir = TemporaryDirectory("runs", preferMemory: true)
        let directory = DirectoryOperations(path: dir.path, faults: nil)
        var random = SplitMix64(seed: 43)
        let names = (0..<2000).map { "stream-\($0)" }
        var expected: [String: Row] = [:]
        var views: [StreamTableRunView] = []
        for (i, range) in [(0, 100), (100, 200), (200, 300)].enumerated() {
            let rows = Self.sorted(names.filter { _ in random.below(2) == 0 }.map { (StreamHash.hash($0), Self.randomRow($0, &random)) })
            var view = try Self.write(rows, in: dir, from: UInt64(range.0), to: UInt64(range.1))
            // The oldest and the newest are version 2 runs, the middle one the current version.
            if i != 1 {
                Damage.write(view.path, Self.version2(of: Damage.read(view.path)))
                view = try #require(StreamTableRunView.open(path: view.path, faults: nil))
                #expect(view.version == 2)
            }
            for (hash, row) in i != 1 ? Self.withoutRetryFields(rows) : rows { expected[row.name] = (hash, row) }
            views.append(view)
        }
        let merged = try StreamTableRunMerge.merge(views, into: FileNames.streamTableRun(from: 0, to: 300), in: directory)
        #expect(merged.version == StreamTableRun.version && Self.le(Damage.read(merged.path), 8, UInt16.self) == 4)
        let want = Self.sorted(Array(expected.values))
        Self.expectSame(try Self.allRows(merged), want)
        #expect(merged.verify() == nil)
        for (hash, row) in want { #expect(try merged.lookup(hash: hash, name: row.name) == row) }
        // A merge of current-version runs copies rows byte for byte: its blocks are the writer's own.
        let rewritten = dir.sub("rewritten.streamtable")
        try StreamTableRunWriter.write(
            rows: want.lazy.map { ($0.hash, $0.row) }, to: "rewritten.streamtable", in: directory, from: 0, to: 300,
            expectedRows: merged.rowCount)
        let next = try Self.write([], in: dir, from: 300, to: 301)
        let again = try StreamTableRunMerge.merge([merged, next], into: "again.streamtable", in: directory)
        #expect(Array(Damage.read(again.path)[64...]) == Array(Damage.read(rewritten)[64...]))
    }

    // MARK: File names

    @Test func fileNames() {
        #expect(FileNames.streamTableRun(from: 0, to: 123) == "00000000000000000000-00000000000000000123.streamtable")
        for (from, to) in [(UInt64(0), UInt64(0)), (7, 1 << 40), (.max, .max), (0, .max)] {
            let name = FileNames.streamTableRun(from: from, to: to)
            #expect(name.count == 41 + 12)
            let range = FileNames.streamTableRunRange(name)
            #expect(range?.from == from && range?.to == to, "\(name)")
        }
        for bad in [
            "00000000000000000005-00000000000000000004.streamtable",  // from after to
            "00000000000000000000-00000000000000000123.streamtable.tmp",
            "00000000000000000000-00000000000000000123.segment",
            "00000000000000000000.streamtable",
            "0000000000000000000-000000000000000000123.streamtable",
            "00000000000000000000_00000000000000000123.streamtable",
            "0000000000000000000a-00000000000000000123.streamtable",
            "+0000000000000000000-00000000000000000123.streamtable",
            "00000000000000000000-00000000000000000123.StreamTable",
            "99999999999999999999-99999999999999999999.streamtable",  // past UInt64.max
            "00000000000000000000-000000000000000001234.streamtable",
            "streams.table", ".streamtable", "",
        ] {
            #expect(FileNames.streamTableRunRange(bad) == nil, "\(bad)")
        }
    }
}
