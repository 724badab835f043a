/// A stream index file (Format.md §13.2), mapped (or held in memory), read
/// in place and checked lazily: opening it checks the header and the fence
/// only, and keeps a copy of the fence (8 bytes a block of 128 groups); each
/// lookup checks the checksum of every block it reads, every time, under the
/// SIGBUS guard, so a file truncated by another program or a page the device
/// cannot read again is `corruption`, never a dead process.
///
/// ## Concurrency
/// Immutable: safe to share across threads; lookups take no lock. The bytes
/// stay valid as long as `storage` lives.
///
/// ## Damage
/// A file whose header or fence is wrong is not opened (nil: the caller
/// rebuilds it). Damage inside a group or entry block is found by the
/// lookup that reads the block, which throws `EventLogError.corruption`
/// naming the file and the block's byte offset; `verify()` finds it too.
struct StreamIndexView: @unchecked Sendable {
    typealias Layout = StreamIndexFile.Layout

    /// What keeps `base` valid: the mapping or the owned bytes.
    let storage: any Sendable & AnyObject
    let base: UnsafeRawPointer
    /// The file's path, for error messages.
    let path: String
    let header: IndexFileHeader
    let layout: Layout
    /// The fence: each group block's first hash, copied at open (searched on
    /// every lookup, so it is never read from the mapping after the checks).
    let fence: [UInt64]

    var groupCount: Int { layout.groupCount }
    var entryCount: Int { layout.entryCount }

    /// Maps the file at `path` and checks its header and fence; nil when it
    /// is missing or unusable (then rebuilt). Reads no group or entry block.
    static func open(path: String, faults: StorageFaults?) -> StreamIndexView? {
        guard let (mapping, bytes) = MappedRegion.mapWhole(path: path, minimumLength: StreamIndexFile.headerSize + StreamIndexFile.checksumSize, faults: faults) else { return nil }
        // Only the header and fence pages are read here, not the device's read-ahead around them (often the whole file).
        mapping.advise(.random)
        defer { mapping.advise(.normal) }
        return validate(bytes, storage: mapping, path: path)
    }

    /// Checks encoded bytes held in memory as `open` checks a file; `path`
    /// names them in errors.
    static func inMemory(_ encoded: [UInt8], path: String) -> StreamIndexView? {
        let owned = OwnedBytes(encoded)
        return validate(UnsafeRawBufferPointer(start: owned.base, count: owned.count), storage: owned, path: path)
    }

    /// The checks of an open: magic, version, header checksum, reserved
    /// fields, block sizes, exact length, fence checksum and order.
    private static func validate(_ bytes: UnsafeRawBufferPointer, storage: any Sendable & AnyObject, path: String) -> StreamIndexView? {
        guard bytes.count >= StreamIndexFile.headerSize + StreamIndexFile.checksumSize, let base = bytes.baseAddress,
              let headerHolds = checksumHolds(bytes, at: 0, count: 60)
        else { return nil }
        guard bytes.loadLE(at: 0, as: UInt64.self) == Magic.streamIndex,
              bytes.loadLE(at: 8, as: UInt16.self) == StreamIndexFile.version,
              headerHolds,
              Reserved.firstNonZero(bytes, 10..<12) == nil, Reserved.firstNonZero(bytes, 56..<60) == nil,
              bytes.loadLE(at: 48, as: UInt32.self) == UInt32(StreamIndexFile.groupsPerBlock),
              bytes.loadLE(at: 52, as: UInt32.self) == UInt32(StreamIndexFile.entriesPerBlock)
        else { return nil }
        let layout = Layout(
            groupCount: Int(bytes.loadLE(at: 12, as: UInt32.self)), entryCount: Int(bytes.loadLE(at: 44, as: UInt32.self)))
        guard layout.fileSize == bytes.count,
              checksumHolds(bytes, at: Layout.fenceStart, count: layout.groupBlockCount * 8) == true
        else { return nil }
        // The fence's order: the binary searches of lookups rely on it.
        var fence: [UInt64] = []
        fence.reserveCapacity(layout.groupBlockCount)
        var previous: UInt64 = 0
        for b in 0..<layout.groupBlockCount {
            let hash = bytes.loadLE(at: Layout.fenceStart + b * 8, as: UInt64.self)
            guard hash >= previous else { return nil }
            previous = hash
            fence.append(hash)
        }
        let header = IndexFileHeader(
            basePosition: bytes.loadLE(at: 16, as: UInt64.self), endPosition: bytes.loadLE(at: 24, as: UInt64.self),
            dataEnd: bytes.loadLE(at: 32, as: UInt32.self), lastBatchOffset: bytes.loadLE(at: 36, as: UInt32.self),
            lastBatchCRC: bytes.loadLE(at: 40, as: UInt32.self), firstTimestamp: .min, maxTimestamp: .min)
        return StreamIndexView(storage: storage, base: base, path: path, header: header, layout: layout, fence: fence)
    }

    // MARK: Lookups

    /// The groups whose hash is `hash` (a range of group indexes): a binary
    /// search of the fence to the group blocks that may hold them, whose
    /// checksums are checked (every block a run of equal hashes touches),
    /// then of those blocks.
    /// - Throws: `EventLogError.corruption` when one of those blocks is damaged.
    func groups(withHash hash: UInt64) throws(EventLogError) -> Range<Int> {
        // Blocks whose first hash is below `hash`, and at most `hash` (the fence is sorted).
        let below = partition(0..<layout.groupBlockCount) { fenceHash($0) < hash }
        let through = partition(below..<layout.groupBlockCount) { fenceHash($0) <= hash }
        // Every block starts above `hash`: so does every group.
        guard through > 0 else { return 0..<0 }
        // The run may start in the last block that starts below `hash`.
        let firstBlock = max(below - 1, 0)
        for b in firstBlock..<through { try check(groupBlockProblem(b)) }
        let span = (firstBlock * StreamIndexFile.groupsPerBlock)..<min(through * StreamIndexFile.groupsPerBlock, groupCount)
        let low = partition(span) { groupHash($0) < hash }
        let high = partition(low..<span.upperBound) { groupHash($0) <= hash }
        return low..<high
    }

    /// Group `i`: hash, first version, first entry, entry count, its block checked.
    /// - Throws: `EventLogError.corruption` when its block is damaged or it
    ///   points outside the entries.
    func group(_ i: Int) throws(EventLogError) -> (hash: UInt64, firstVersion: UInt64, first: Int, count: Int) {
        precondition(i >= 0 && i < groupCount, "group \(i) of \(groupCount)")
        try check(groupBlockProblem(i / StreamIndexFile.groupsPerBlock))
        try check(boundsProblem(i))
        return uncheckedGroup(i)
    }

    /// Group `g` and its entries in version order, every block read checked.
    /// - Throws: `EventLogError.corruption` when a block it reads is damaged
    ///   or the group points outside the entries.
    func entries(ofGroup g: Int) throws(EventLogError) -> (
        hash: UInt64, firstVersion: UInt64, entries: [(relativePosition: UInt32, offset: UInt32)]
    ) {
        let (hash, firstVersion, first, count) = try group(g)
        guard count > 0 else { return (hash, firstVersion, []) }
        try checkEntryBlocks(first..<(first + count))
        var entries: [(relativePosition: UInt32, offset: UInt32)] = []
        entries.reserveCapacity(count)
        for i in first..<(first + count) {
            let at = layout.entryOffset(i)
            entries.append((base.loadLE(at: at, as: UInt32.self), base.loadLE(at: at + 4, as: UInt32.self)))
        }
        return (hash, firstVersion, entries)
    }

    /// The entries of every group with `hash` whose versions are in
    /// `versions`, in position order: (relative position, offset, version).
    /// Where streams share the hash, the entries of all of them (readers
    /// confirm the name on each record). Every block read is checked, as
    /// `entries(ofGroup:)` checks them; blocks of entries outside `versions`
    /// are not read.
    func entries(
        withHash hash: UInt64, versions: ClosedRange<UInt64> = 0...UInt64.max
    ) throws(EventLogError) -> [(relativePosition: UInt32, offset: UInt32, version: UInt64)] {
        let groups = try groups(withHash: hash)
        var result: [(relativePosition: UInt32, offset: UInt32, version: UInt64)] = []
        for g in groups {
            let (_, firstVersion, first, count) = try group(g)
            // A group's versions run up by one from its first: the entries of
            // `versions` are a slice of it, found without reading the others
            // (a read from a high version of a long stream checks one block,
            // not the stream's every entry).
            let lastVersion = firstVersion &+ UInt64(count) &- 1
            guard count > 0, versions.lowerBound <= lastVersion, versions.upperBound >= firstVersion else { continue }
            let skip = Int(versions.lowerBound > firstVersion ? versions.lowerBound - firstVersion : 0)
            let drop = Int(versions.upperBound < lastVersion ? lastVersion - versions.upperBound : 0)
            let wanted = (first + skip)..<(first + count - drop)
            try checkEntryBlocks(wanted)
            result.reserveCapacity(result.count + wanted.count)
            for i in wanted {
                let at = layout.entryOffset(i)
                result.append((base.loadLE(at: at, as: UInt32.self), base.loadLE(at: at + 4, as: UInt32.self), firstVersion + UInt64(i - first)))
            }
        }
        if groups.count > 1 { result.sort { $0.relativePosition < $1.relativePosition } }
        return result
    }

    /// Checks the entry blocks holding `entries`.
    private func checkEntryBlocks(_ entries: Range<Int>) throws(EventLogError) {
        guard let last = entries.last else { return }
        let perBlock = StreamIndexFile.entriesPerBlock
        for b in (entries.lowerBound / perBlock)...(last / perBlock) { try check(entryBlockProblem(b)) }
    }

    /// Every group, decoded, after `verify()` (verify, tests).
    /// - Throws: `EventLogError.corruption`, the first problem `verify()` finds.
    func allGroups() throws(EventLogError) -> [StreamIndexFile.Group] {
        if let problem = verify() { throw .corruption(file: path, offset: problem.offset, reason: problem.reason) }
        return (0..<groupCount).map { g in
            let (hash, firstVersion, first, count) = uncheckedGroup(g)
            return StreamIndexFile.Group(hash: hash, firstVersion: firstVersion, entries: (first..<(first + count)).map { i in
                let at = layout.entryOffset(i)
                return (base.loadLE(at: at, as: UInt32.self), base.loadLE(at: at + 4, as: UInt32.self))
            })
        }
    }

    /// Checks the whole file: every group block (checksum, first hash as
    /// the fence says), the groups' order by hash and bounds, every entry
    /// block. Returns the first problem, by offset in the file; nil when sound.
    func verify() -> (offset: Int64, reason: String)? {
        for b in 0..<layout.groupBlockCount {
            if let problem = groupBlockProblem(b) { return (Int64(problem.offset), problem.reason) }
        }
        var previous: UInt64 = 0
        for g in 0..<groupCount {
            let hash = groupHash(g)
            if hash < previous {
                return (Int64(layout.groupOffset(g)), "stream index group \(g) is out of hash order")
            }
            previous = hash
            if let problem = boundsProblem(g) { return (Int64(problem.offset), problem.reason) }
        }
        for b in 0..<layout.entryBlockCount {
            if let problem = entryBlockProblem(b) { return (Int64(problem.offset), problem.reason) }
        }
        return nil
    }

    // MARK: Checks

    typealias Problem = (offset: Int, reason: String)

    @inline(__always) private func check(_ problem: Problem?) throws(EventLogError) {
        if let problem { throw .corruption(file: path, offset: Int64(problem.offset), reason: problem.reason) }
    }

    /// Group block `b`'s checksum, and its first hash against the fence.
    private func groupBlockProblem(_ b: Int) -> Problem? {
        let at = layout.groupBlockOffset(b)
        if let problem = blockProblem(at: at, count: layout.groupsIn(block: b) * StreamIndexFile.groupSize, kind: "group", b) {
            return problem
        }
        if base.loadLE(at: at, as: UInt64.self) != fenceHash(b) {
            return (at, "stream index group block \(b) does not start with the hash its fence entry gives")
        }
        return nil
    }

    private func entryBlockProblem(_ b: Int) -> Problem? {
        blockProblem(at: layout.entryBlockOffset(b), count: layout.entriesIn(block: b) * StreamIndexFile.entrySize, kind: "entry", b)
    }

    private func blockProblem(at: Int, count: Int, kind: StaticString, _ b: Int) -> Problem? {
        switch Self.checksumHolds(UnsafeRawBufferPointer(start: base, count: layout.fileSize), at: at, count: count) {
        case true?: return nil
        case false?: return (at, "stream index block checksum mismatch (\(kind) block \(b))")
        case nil: return (at, MappedBytes.unreadableReason)
        }
    }

    /// Whether the CRC32C of `bytes[at..<(at + count)]` equals the u32
    /// stored right after them; nil when they cannot be read (read under
    /// the SIGBUS guard: the file may be mapped).
    private static func checksumHolds(_ bytes: UnsafeRawBufferPointer, at: Int, count: Int) -> Bool? {
        guard let base = bytes.baseAddress, let crc = MappedBytes.checksum(base + at, count: count),
              MappedBytes.touch(bytes, (at + count)..<(at + count + StreamIndexFile.checksumSize))
        else { return nil }
        return bytes.loadLE(at: at + count, as: UInt32.self) == crc
    }

    /// Group `g` points inside the entries (in its block, which holds it).
    /// Group `g`'s entries lie outside the file's, or its versions (first
    /// version + entry count) run past the largest version (a lookup adds
    /// them up).
    private func boundsProblem(_ g: Int) -> Problem? {
        let (_, firstVersion, first, count) = uncheckedGroup(g)
        let block = layout.groupBlockOffset(g / StreamIndexFile.groupsPerBlock)
        if first + count > entryCount {
            return (block, "stream index group \(g) points outside the entries (entries \(first)..<\(first + count) of \(entryCount))")
        }
        if firstVersion > UInt64.max - UInt64(count) {
            return (block, "stream index group \(g)'s \(count) versions from \(firstVersion) run past the largest version")
        }
        return nil
    }

    // MARK: Unchecked reads (of blocks already checked)

    @inline(__always) private func fenceHash(_ b: Int) -> UInt64 { fence[b] }

    @inline(__always) private func groupHash(_ g: Int) -> UInt64 { base.loadLE(at: layout.groupOffset(g), as: UInt64.self) }

    @inline(__always) func uncheckedGroup(_ g: Int) -> (hash: UInt64, firstVersion: UInt64, first: Int, count: Int) {
        let at = layout.groupOffset(g)
        return (
            base.loadLE(at: at, as: UInt64.self), base.loadLE(at: at + 8, as: UInt64.self),
            Int(base.loadLE(at: at + 16, as: UInt32.self)), Int(base.loadLE(at: at + 20, as: UInt32.self))
        )
    }

    /// The first index of `range` for which `isBelow` is false (`isBelow`
    /// holds for a prefix of the range).
    @inline(__always) private func partition(_ range: Range<Int>, _ isBelow: (Int) -> Bool) -> Int {
        var low = range.lowerBound
        var high = range.upperBound
        while low < high {
            let mid = (low + high) / 2
            if isBelow(mid) { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

/// A stream index file checked whole once (`StreamIndexView.verify`), read
/// without checking blocks again: for code that reads every group, such as
/// the writer building the next checkpoint of the active segment on this one.
struct VerifiedStreamIndex: @unchecked Sendable {
    let view: StreamIndexView

    /// Checks every block of `view`; throws `corruption` at the first damage.
    init(_ view: StreamIndexView) throws(EventLogError) {
        if let (offset, reason) = view.verify() { throw .corruption(file: view.path, offset: offset, reason: reason) }
        self.view = view
    }

    var groupCount: Int { view.groupCount }

    /// Group `g`: hash, first version, first entry, entry count.
    @inline(__always) func group(_ g: Int) -> (hash: UInt64, firstVersion: UInt64, first: Int, count: Int) {
        view.uncheckedGroup(g)
    }

    /// Entry `i`, packed as the file's entries are (`StreamIndexFile.packedEntry`).
    @inline(__always) func packedEntry(_ i: Int) -> UInt64 { reader.packedEntry(i) }

    /// Reads the groups and entries without holding the mapping: a plain
    /// value, so a loop over it retains nothing (a copy of the index itself
    /// retains its mapping and path). Valid while the index is alive: use it
    /// inside `withExtendedLifetime` of the index.
    var reader: Reader { Reader(base: view.base, layout: view.layout) }

    struct Reader {
        let base: UnsafeRawPointer
        let layout: StreamIndexFile.Layout

        var groupCount: Int { layout.groupCount }
        var entryCount: Int { layout.entryCount }

        /// Group `g`: hash, first version, first entry, entry count.
        @inline(__always) func group(_ g: Int) -> (hash: UInt64, firstVersion: UInt64, first: Int, count: Int) {
            let at = layout.groupOffset(g)
            return (
                base.loadLE(at: at, as: UInt64.self), base.loadLE(at: at + 8, as: UInt64.self),
                Int(base.loadLE(at: at + 16, as: UInt32.self)), Int(base.loadLE(at: at + 20, as: UInt32.self))
            )
        }

        /// Entry `i`, packed as the file's entries are (`StreamIndexFile.packedEntry`).
        @inline(__always) func packedEntry(_ i: Int) -> UInt64 {
            let at = layout.entryOffset(i)
            return UInt64(base.loadLE(at: at, as: UInt32.self)) | UInt64(base.loadLE(at: at + 4, as: UInt32.self)) << 32
        }
    }
}
