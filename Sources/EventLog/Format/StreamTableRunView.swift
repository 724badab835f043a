import CSystemCalls

/// A stream table run (Format.md §14.1), mapped (or held in memory) and read
/// in place.
///
/// `open` checks the header, the fence and the bloom filter, and reads no
/// block: it reads about 2.7 bytes a row (16 bytes of fence a ~512-byte
/// block, 10 bits of filter a row), a few percent of the file. Each block is checked (its
/// length against the fence, its checksum) every time it is read, and damage
/// found there is `EventLogError.corruption` naming the file and the block's
/// offset.
///
/// `open` reads the fence and the filter under the SIGBUS guard (through
/// their checksums); after that, each lookup touches the fence entries and
/// the filter line it is about to read under the guard first
/// (`MappedBytes.touch`), so a run truncated by another program or a page
/// the device cannot read again is `corruption` naming the file and offset,
/// never a dead process. Blocks are read through their guarded checksum.
///
/// Immutable once `open` returns it: safe to share across threads; lookups
/// may block on the disk (page faults of the mapping). A class, so that the
/// writer's lookups, which visit every run, pass one reference around
/// rather than copy (and retain) the mapping, path and fence sample of each.
final class StreamTableRunView: @unchecked Sendable {
    /// What keeps `bytes` valid: the mapping or the owned bytes.
    let storage: any Sendable & AnyObject
    /// The whole file.
    let bytes: UnsafeRawBufferPointer
    let path: String
    /// The run's version: the layout of its rows (`StreamTableRun.readableVersions`).
    let version: UInt16
    /// The run holds the stream changes made by the records at positions `[from, to)`.
    let from: UInt64
    let to: UInt64
    let rowCount: Int
    let blockCount: Int
    let fenceOffset: Int
    let bloomOffset: Int
    let bloomBlockCount: Int
    /// The first hash of every `fenceSampleStride`-th block, in memory: a
    /// search finds the stride of the fence to read without touching the
    /// rest (8 bytes per 32 blocks of about 512 bytes: ~220 KB for 10M streams).
    private(set) var fenceSample: [UInt64] = []
    static let fenceSampleStride = 32

    var fileBytes: Int { bytes.count }

    private init(
        storage: any Sendable & AnyObject, bytes: UnsafeRawBufferPointer, path: String, version: UInt16, from: UInt64, to: UInt64,
        rowCount: Int, blockCount: Int, fenceOffset: Int, bloomOffset: Int, bloomBlockCount: Int
    ) {
        self.storage = storage
        self.bytes = bytes
        self.path = path
        self.version = version
        self.from = from
        self.to = to
        self.rowCount = rowCount
        self.blockCount = blockCount
        self.fenceOffset = fenceOffset
        self.bloomOffset = bloomOffset
        self.bloomBlockCount = bloomBlockCount
    }

    /// Maps and checks the run at `path`; nil when it is missing or unusable
    /// (the caller rebuilds it).
    static func open(path: String, faults: StorageFaults?) -> StreamTableRunView? {
        guard let (mapping, bytes) = MappedRegion.mapWhole(path: path, minimumLength: StreamTableRun.minFileBytes, faults: faults) else { return nil }
        return validate(bytes, path: path, storage: mapping)
    }

    /// Checks a run's bytes held in memory (tests); `path` names it in errors.
    static func inMemory(_ bytes: [UInt8], path: String) -> StreamTableRunView? {
        let owned = OwnedBytes(bytes)
        return validate(UnsafeRawBufferPointer(start: owned.base, count: owned.count), path: path, storage: owned)
    }

    /// The checks of `open` (Format.md §14.1, "Opening a run").
    private static func validate(_ bytes: UnsafeRawBufferPointer, path: String, storage: any Sendable & AnyObject) -> StreamTableRunView? {
        let header = StreamTableRun.headerSize
        let crc = StreamTableRun.checksumSize
        guard bytes.count >= StreamTableRun.minFileBytes, let base = bytes.baseAddress,
              MappedBytes.touch(bytes, 0..<header),
              bytes.loadLE(at: 0, as: UInt64.self) == Magic.streamTableRun,
              CRC32C.checksum(base, count: header - crc) == bytes.loadLE(at: header - crc, as: UInt32.self),
              StreamTableRun.readableVersions.contains(bytes.loadLE(at: 8, as: UInt16.self)),
              Reserved.firstNonZero(bytes, 10..<12) == nil
        else { return nil }
        let version = bytes.loadLE(at: 8, as: UInt16.self)
        let minRowBytes = StreamTableRun.minRowBytes(version: version)
        let minBlockBytes = StreamTableRun.minBlockBytes(version: version)
        let blocks = Int(bytes.loadLE(at: 12, as: UInt32.self))
        let rows = bytes.loadLE(at: 16, as: UInt64.self)
        let from = bytes.loadLE(at: 24, as: UInt64.self)
        let to = bytes.loadLE(at: 32, as: UInt64.self)
        let fence = bytes.loadLE(at: 40, as: UInt64.self)
        let bloom = bytes.loadLE(at: 48, as: UInt64.self)
        let bloomBlocks = Int(bytes.loadLE(at: 56, as: UInt32.self))
        // The header's numbers must fit each other and the file's length
        // (compared before any arithmetic that a damaged value could overflow).
        guard from <= to, fence <= UInt64(bytes.count), bloom <= UInt64(bytes.count) else { return nil }
        let fenceOffset = Int(fence)
        let bloomOffset = Int(bloom)
        let blockArea = fenceOffset - header
        guard blockArea >= 0, (blocks == 0) == (rows == 0), (blocks == 0) == (blockArea == 0),
              blockArea >= blocks * minBlockBytes,
              rows >= UInt64(blocks), rows <= UInt64(blockArea / minRowBytes),
              rows == 0 || bloomBlocks > 0,
              bloomOffset == fenceOffset + blocks * StreamTableRun.fenceEntrySize + crc,
              bytes.count == bloomOffset + bloomBlocks * BloomFilter.blockBytes + crc
        else { return nil }
        let fenceBytes = blocks * StreamTableRun.fenceEntrySize
        let bloomBytes = bloomBlocks * BloomFilter.blockBytes
        guard MappedBytes.checksum(base + fenceOffset, count: fenceBytes) == bytes.loadLE(at: fenceOffset + fenceBytes, as: UInt32.self),
              MappedBytes.checksum(base + bloomOffset, count: bloomBytes) == bytes.loadLE(at: bloomOffset + bloomBytes, as: UInt32.self)
        else { return nil }
        let view = StreamTableRunView(
            storage: storage, bytes: bytes, path: path, version: version, from: from, to: to, rowCount: Int(rows), blockCount: blocks,
            fenceOffset: fenceOffset, bloomOffset: bloomOffset, bloomBlockCount: bloomBlocks)
        // The fence: blocks back to back from the header on, each large
        // enough for a row, first hashes increasing (a hash lives in one block).
        guard blocks == 0 || view.fenceEntry(0).offset == UInt64(header) else { return nil }
        var previous = (hash: UInt64(0), offset: UInt64(0))
        for i in 0..<blocks {
            let entry = view.fenceEntry(i)
            guard i == 0 || (entry.hash > previous.hash && entry.offset >= previous.offset + UInt64(minBlockBytes)),
                  entry.offset <= fence - UInt64(minBlockBytes)
            else { return nil }
            previous = entry
        }
        view.fenceSample = stride(from: 0, to: blocks, by: fenceSampleStride).map { view.fenceEntry($0).hash }
        return view
    }

    /// Fence entry `i`: the block's first hash and its offset in the file.
    @inline(__always) func fenceEntry(_ i: Int) -> (hash: UInt64, offset: UInt64) {
        let at = fenceOffset + i * StreamTableRun.fenceEntrySize
        return (bytes.loadLE(at: at, as: UInt64.self), bytes.loadLE(at: at + 8, as: UInt64.self))
    }

    /// The most interpolation probes of a fence search before it bisects:
    /// hashes are spread evenly, so one or two find the block, and the limit
    /// bounds a search when they are not (a test's masked hashes).
    static let interpolationProbes = 4

    /// The fence search for `hash`: the last block whose first hash is at
    /// most `hash` (nil: the hash is below the first block's).
    ///
    /// On a run of millions of streams each probe of the fence is a cache
    /// (and TLB) miss, so the search reads as little of it as it can: it
    /// bisects the in-memory `fenceSample` for the stride of 32 entries
    /// (512 bytes) that holds the answer, then, since stream hashes are
    /// spread evenly over 64 bits, interpolates within the stride: it probes
    /// where the hash should fall between the two entries known to bracket
    /// it, and scans the last few entries (one cache line) in order.
    /// - Throws: `EventLogError.corruption` when the stride's entries cannot
    ///   be read (SIGBUS under the guard).
    @inline(__always)
    func searchFence(_ hash: UInt64) throws(EventLogError) -> Int? {
        // The stride: the last sample at most `hash`.
        var low = 0
        var high = fenceSample.count
        fenceSample.withUnsafeBufferPointer { sample in
            while low < high {
                let mid = (low + high) / 2
                if sample[mid] <= hash { low = mid + 1 } else { high = mid }
            }
        }
        guard low > 0 else { return nil }
        let strideIndex = low - 1
        // Entries before `low` are at most `hash`, entries from `high` on are above it.
        low = strideIndex * Self.fenceSampleStride + 1
        high = min(blockCount, low - 1 + Self.fenceSampleStride)
        try touchFence(low - 1..<high)
        var lowHash = fenceSample[strideIndex]
        var highHash = strideIndex + 1 < fenceSample.count ? fenceSample[strideIndex + 1] : UInt64.max
        var probes = 0
        while high - low > 4 {
            let mid: Int
            if probes < Self.interpolationProbes, highHash > lowHash {
                // lowHash <= hash <= highHash.
                let fraction = Double(hash &- lowHash) / Double(highHash &- lowHash)
                mid = low + min(high - low - 1, Int(fraction * Double(high - low)))
            } else {
                mid = (low + high) / 2
            }
            probes += 1
            let entry = fenceEntry(mid).hash
            if entry <= hash {
                low = mid + 1
                lowHash = entry
            } else {
                high = mid
                highHash = entry
            }
        }
        while low < high && fenceEntry(low).hash <= hash { low += 1 }
        return low - 1
    }

    /// False when no row of the run has this hash (the bloom filter only).
    /// - Throws: `EventLogError.corruption` when the filter's line cannot be
    ///   read (SIGBUS under the guard).
    @inline(__always) func mayContain(hash: UInt64) throws(EventLogError) -> Bool {
        let filter = UnsafeRawBufferPointer(rebasing: bytes[bloomOffset..<(bloomOffset + bloomBlockCount * BloomFilter.blockBytes)])
        if bloomBlockCount > 0 {
            let start = BloomFilter.blockStart(hash, blockCount: bloomBlockCount)
            guard MappedBytes.touch(filter, start..<(start + BloomFilter.blockBytes)) else {
                throw .corruption(
                    file: path, offset: Int64(bloomOffset + start), reason: "stream table run bloom filter: \(MappedBytes.unreadableReason)")
            }
        }
        return BloomFilter.mayContain(hash, in: filter)
    }

    /// Reads fence entries `entries` under the SIGBUS guard, so that the
    /// plain reads of them that follow find their pages in memory.
    @inline(__always) private func touchFence(_ entries: Range<Int>) throws(EventLogError) {
        let range = (fenceOffset + entries.lowerBound * StreamTableRun.fenceEntrySize)..<(fenceOffset + entries.upperBound * StreamTableRun.fenceEntrySize)
        guard MappedBytes.touch(bytes, range) else {
            throw .corruption(file: path, offset: Int64(range.lowerBound), reason: "stream table run fence: \(MappedBytes.unreadableReason)")
        }
    }

    /// The row of the stream named `name` (UTF-8) whose hash is `hash`, nil
    /// when the run has none. Reads at most one block (none when the bloom
    /// filter rules the hash out) and checks it; allocates nothing but the
    /// returned row's name.
    ///
    /// `checkingBloom: false` skips the bloom filter and searches the blocks
    /// at once: the answer is the same, and when most lookups find their
    /// row (the writer's appends to existing streams, in the oldest and
    /// largest run) it saves the filter's cache miss (`OldestRunFilterPolicy`).
    func lookup(hash: UInt64, name: UnsafeRawBufferPointer, checkingBloom: Bool = true) throws(EventLogError) -> StreamTableRow? {
        if checkingBloom { guard try mayContain(hash: hash) else { return nil } }
        guard let index = try searchFence(hash) else { return nil }
        let block = try checkedBlock(index)
        // The checksum vouches for the block's bytes, which the writer put in
        // order: rows of smaller hashes are passed without being decoded (the
        // order itself is checked by cursors and `verify`).
        let rows = UnsafeRawBufferPointer(start: bytes.baseAddress, count: block.rowsEnd)
        var at = block.offset + StreamTableRun.blockHeadSize
        for i in 0..<block.rowCount {
            guard rows.count - at >= 8 else { throw corruption(block, "a row does not decode") }
            let rowHash = rows.loadLE(at: at, as: UInt64.self)
            if i == 0 && rowHash != block.firstHash { throw corruption(block, "the first row's hash is not the fence's") }
            if rowHash > hash { return nil }
            at += 8
            guard let rowName = StreamTableRow.decodeName(rows, at: &at) else { throw corruption(block, "a row does not decode") }
            if rowHash == hash, let base = rows.baseAddress {
                let candidate = UnsafeRawBufferPointer(start: base + rowName.lowerBound, count: rowName.count)
                if candidate.count == name.count, let query = name.baseAddress, memcmp(base + rowName.lowerBound, query, name.count) == 0 {
                    guard let fields = StreamTableRowFields.decode(rows, at: &at, version: version) else {
                        throw corruption(block, "a row does not decode")
                    }
                    return StreamTableRow(name: String(decoding: candidate, as: UTF8.self), fields: fields)
                }
            }
            guard StreamTableRowFields.skip(rows, at: &at, version: version) else { throw corruption(block, "a row does not decode") }
        }
        guard at == block.rowsEnd else { throw corruption(block, "the rows end at byte \(at), not where the block's checksum is") }
        return nil
    }

    /// `lookup(hash:name:)` for a name given as a String.
    func lookup(hash: UInt64, name: String) throws(EventLogError) -> StreamTableRow? {
        var name = name
        var result: Result<StreamTableRow?, EventLogError> = .success(nil)
        name.withUTF8 { utf8 in
            do throws(EventLogError) { result = .success(try lookup(hash: hash, name: UnsafeRawBufferPointer(utf8))) } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    /// Every row in file order, each block checked as it is read (and the
    /// order across blocks, and the row count). Throws the body's errors, and
    /// `EventLogError.corruption` for damage.
    func forEachRow(_ body: (UInt64, StreamTableRow) throws -> Void) throws {
        var cursor = StreamTableRunCursor(self)
        while try cursor.advance() { try body(cursor.hash, cursor.row) }
    }

    /// Reads and checks every block, the order of all rows, the row count,
    /// and that the bloom filter holds every row's hash: the first damage
    /// found (the offset of the block, or 0 for the header), nil when none.
    func verify() -> (offset: Int64, reason: String)? {
        var cursor = StreamTableRunCursor(self)
        do throws(EventLogError) {
            while try cursor.advance() {
                guard try mayContain(hash: cursor.hash) else {
                    return (cursor.blockOffset, "the bloom filter lacks the hash \(cursor.hash) of a row")
                }
            }
        } catch {
            if case .corruption(_, let offset, let reason) = error { return (offset, reason) }
            return (0, error.description)
        }
        return nil
    }

    // MARK: Blocks

    /// Block `i`, checked: its length field against the fence, its checksum
    /// and its row count. Damage is `corruption` at the block's offset.
    func checkedBlock(_ i: Int) throws(EventLogError) -> StreamTableRunBlock {
        try touchFence(i..<min(i + 2, blockCount))
        let (firstHash, start) = fenceEntry(i)
        let offset = Int(start)
        let end = i + 1 < blockCount ? Int(fenceEntry(i + 1).offset) : fenceOffset
        let length = end - offset
        let block = StreamTableRunBlock(
            index: i, offset: offset, rowsEnd: end - StreamTableRun.checksumSize, rowCount: 0, firstHash: firstHash)
        guard let base = bytes.baseAddress else { throw corruption(block, MappedBytes.unreadableReason) }
        // All of the block's lines at once: the checksum then waits for one
        // miss, not for each line in turn (a hint; it never faults).
        eventlog_prefetch(base + offset, length)
        guard let computed = MappedBytes.checksum(base + offset, count: length - StreamTableRun.checksumSize)
        else { throw corruption(block, MappedBytes.unreadableReason) }
        guard computed == bytes.loadLE(at: block.rowsEnd, as: UInt32.self) else {
            throw corruption(block, "block checksum mismatch")
        }
        let stated = Int(bytes.loadLE(at: offset, as: UInt32.self))
        guard stated == length else {
            throw corruption(block, "the block's length field says \(stated) bytes, the fence places the next block \(length) bytes on")
        }
        let rows = Int(bytes.loadLE(at: offset + 4, as: UInt32.self))
        guard rows >= 1,
              rows <= (length - StreamTableRun.blockHeadSize - StreamTableRun.checksumSize) / StreamTableRun.minRowBytes(version: version)
        else {
            throw corruption(block, "a block of \(length) bytes cannot hold \(rows) rows")
        }
        var checked = block
        checked.rowCount = rows
        return checked
    }

    /// The row at `offset` of `block`: its hash, its name's bytes and its
    /// other fields; advances `offset` past it. Nil when the block's rows
    /// (up to its checksum) do not hold one there. Allocates nothing.
    @inline(__always)
    func decodeRow(_ block: StreamTableRunBlock, at offset: inout Int) -> (UInt64, UnsafeRawBufferPointer, StreamTableRowFields)? {
        let rows = UnsafeRawBufferPointer(start: bytes.baseAddress, count: block.rowsEnd)
        guard offset >= 0, rows.count - offset >= 8 else { return nil }
        let hash = rows.loadLE(at: offset, as: UInt64.self)
        offset += 8
        guard let name = StreamTableRow.decodeName(rows, at: &offset),
              let fields = StreamTableRowFields.decode(rows, at: &offset, version: version),
              let base = rows.baseAddress
        else { return nil }
        return (hash, UnsafeRawBufferPointer(start: base + name.lowerBound, count: name.count), fields)
    }

    func corruption(_ block: StreamTableRunBlock, _ reason: String) -> EventLogError {
        .corruption(file: path, offset: Int64(block.offset), reason: "stream table run block \(block.index): \(reason)")
    }
}

/// Where a checked block of a run lies.
struct StreamTableRunBlock {
    var index: Int
    /// The block's offset in the file (its length field).
    var offset: Int
    /// The offset of the block's checksum, after its last row.
    var rowsEnd: Int
    var rowCount: Int
    /// The fence's first hash for the block.
    var firstHash: UInt64
}

/// Reads a run's rows in order, one checked block at a time (merges,
/// `forEachRow`, `verify`). The current row's name bytes stay readable in
/// the mapping, so comparing keys allocates nothing; `row` makes the name.
struct StreamTableRunCursor {
    let view: StreamTableRunView
    private var block: StreamTableRunBlock?
    private var nextBlock = 0
    private var at = 0
    private var remaining = 0
    private var rowsRead = 0
    private var finished = false
    /// The current row (valid after `advance` returned true): its hash,
    /// its name's bytes (in the run) and its other fields.
    private(set) var hash: UInt64 = 0
    private(set) var nameBytes = UnsafeRawBufferPointer(start: nil, count: 0)
    private(set) var fields: StreamTableRowFields?
    /// The current row's bytes after its hash (name length, name, fields),
    /// checked, in the layout of the run's version (`view.version`).
    private(set) var encodedRow = UnsafeRawBufferPointer(start: nil, count: 0)

    init(_ view: StreamTableRunView) { self.view = view }

    /// The current row, its name made.
    var row: StreamTableRow {
        guard let fields else { preconditionFailure("a stream table run cursor has no row before advance() returns true") }
        return StreamTableRow(name: String(decoding: nameBytes, as: UTF8.self), fields: fields)
    }

    /// The offset of the current row's block (0 before the first).
    var blockOffset: Int64 { Int64(block?.offset ?? 0) }

    /// Moves to the next row, checking it; false after the last.
    mutating func advance() throws(EventLogError) -> Bool {
        if finished { return false }
        if remaining == 0 {
            if let block, at != block.rowsEnd {
                throw view.corruption(block, "the rows end at byte \(at), not where the block's checksum is")
            }
            guard nextBlock < view.blockCount else {
                finished = true
                guard rowsRead == view.rowCount else {
                    throw .corruption(
                        file: view.path, offset: 0,
                        reason: "the header counts \(view.rowCount) rows, the blocks hold \(rowsRead)")
                }
                return false
            }
            let next = try view.checkedBlock(nextBlock)
            nextBlock += 1
            block = next
            at = next.offset + StreamTableRun.blockHeadSize
            remaining = next.rowCount
        }
        guard let block else { return false }
        let rowStart = at + 8
        guard let (rowHash, rowName, rowFields) = view.decodeRow(block, at: &at) else {
            throw view.corruption(block, "a row does not decode")
        }
        if remaining == block.rowCount {
            guard rowHash == block.firstHash else { throw view.corruption(block, "the first row's hash is not the fence's") }
        }
        if rowsRead > 0 {
            guard StreamTableRun.compare(hash, nameBytes, rowHash, rowName) < 0 else {
                throw view.corruption(block, "rows out of (hash, name) order")
            }
        }
        hash = rowHash
        nameBytes = rowName
        fields = rowFields
        encodedRow = UnsafeRawBufferPointer(rebasing: view.bytes[rowStart..<at])
        remaining -= 1
        rowsRead += 1
        return true
    }
}

#if canImport(Glibc)
import Glibc
#endif
