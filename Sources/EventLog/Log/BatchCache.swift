import Synchronization

/// The decompressed records areas of LZ4 batches that point reads and
/// stream reads decompressed, kept for the reads after them
/// (`LogOptions.batchCacheBytes`): a read of a cached batch neither
/// decompresses nor checksums its frame again, and finds its record through
/// the entry's table of record offsets instead of walking the batch.
///
/// **What an entry is.** The records area of one batch frame, decompressed
/// once its frame checksum was verified, followed by the offset of each of
/// its records in it (u32 each, made by walking the records once). A frame
/// is immutable once published, so its entry is too. It is found by its
/// `Key`: the segment as this process mapped it (`SegmentID`; a file
/// rewritten by scavenging or merged is another segment, with a new id),
/// the frame's byte offset in it, and the frame checksum read with the
/// header. A read therefore never gets an entry of another file, nor of
/// another frame at the same offset. Entries of segments that retention,
/// scavenging or merging took out of the set are dropped then (`drop`), so
/// they do not hold memory that live batches could use.
///
/// **Memory.** One arena of `capacityBytes` (rounded down to whole 4 KiB
/// slots), allocated on the first miss, so a log that never reads an LZ4
/// batch by position never allocates it; an entry takes whole consecutive
/// slots. Its bookkeeping (an entry array, a slot map and a hash map of
/// keys, sized for as many entries as slots) is allocated then too: a read
/// allocates nothing after that. A batch whose entry would take more than an
/// eighth of the arena is not kept (the reader decompresses it into its own
/// buffer, as it does when the cache is off).
///
/// **Eviction.** A clock over the slots: to place an entry, the hand looks
/// for enough consecutive slots, taking free ones and evicting entries not
/// read since the hand last passed them; one read since then is spared
/// once (its mark cleared). Entries a reader holds (`Lease`) are never
/// evicted. A batch that finds no room is read without the cache.
///
/// ## Concurrency
/// Thread-safe. The bookkeeping is under one lock, held for a lookup and a
/// few stores (never while decompressing). A reader pins the entry it
/// reads (`acquire`), and unpins it when it moves to another batch or ends
/// (`release`): the bytes it was lent stay valid meanwhile. An entry being
/// filled is pinned by its filler and invisible to other readers, which
/// decompress that batch on their own.
final class BatchCache: Sendable {
    /// What identifies a cached batch (see the type's documentation).
    struct Key: Hashable, Sendable {
        let segment: SegmentID
        let offset: Int
        let frameCRC: UInt32
        /// An encrypted log's count of forgettings when the batch was opened
        /// (`SealKeys.forgetEpoch`): after a data key is forgotten, no entry
        /// opened under it is found again.
        var keyEpoch: UInt32 = 0
    }

    /// A reader's pin on a ready entry: its records area and offset table
    /// stay as they are until it is released.
    struct Lease: @unchecked Sendable {
        let entry: Int32
        let key: Key
        /// The decompressed records area.
        let records: UnsafeRawBufferPointer
        /// Each record's offset in `records` (u32 each, native order).
        let offsets: UnsafeRawPointer

        /// The offset in `records` of the batch's `index`th record.
        @inline(__always) func offset(ofRecord index: Int) -> Int {
            Int(offsets.load(fromByteOffset: index &* 4, as: UInt32.self))
        }
    }

    /// Room a reader fills with a batch's records area and offset table,
    /// then publishes (`publish`) or gives back (`abandon`).
    struct Reservation: @unchecked Sendable {
        let entry: Int32
        let key: Key
        let destination: UnsafeMutableRawPointer
        let recordsLength: Int
        let recordCount: Int

        /// Where the offset table starts (after the records, 16-aligned).
        var tableStart: Int { BatchCache.tableStart(recordsLength) }
    }

    /// What `acquire` found.
    enum Acquired: @unchecked Sendable {
        case hit(Lease)
        /// Not cached: fill this, then publish or abandon it.
        case miss(Reservation)
        /// Not cached, and not to be (too large, no room, off, or another
        /// reader is filling it): read it without the cache.
        case bypass
    }

    /// Counts, for tests and `stats`.
    struct Statistics: Equatable, Sendable {
        var entries = 0
        /// Bytes of the slots the entries take.
        var bytes = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
        var evictions: UInt64 = 0
        /// Whether the arena was allocated.
        var allocated = false
    }

    static let slotBytes = 4096

    /// The budget, rounded down to whole slots (0: off).
    let capacityBytes: Int
    private let state: Mutex<State>

    /// A cache of at most `bytes` bytes (less than one slot: off).
    init(bytes: Int) {
        let slots = max(0, bytes) / Self.slotBytes
        capacityBytes = slots * Self.slotBytes
        state = Mutex(State(slotCount: slots))
    }

    var isEnabled: Bool { capacityBytes > 0 }

    @inline(__always) static func tableStart(_ recordsLength: Int) -> Int { (recordsLength + 15) & ~15 }

    /// Looks `key` up. Releases `old` first (in the same critical section),
    /// when the reader held one.
    func acquire(_ key: Key, recordsLength: Int, recordCount: Int, releasing old: Lease?) -> Acquired {
        state.withLock { state in
            if let old { state.release(old.entry) }
            return state.acquire(key, recordsLength: recordsLength, recordCount: recordCount)
        }
    }

    /// Makes a filled reservation's entry readable; the filler holds it.
    func publish(_ reservation: Reservation) -> Lease {
        state.withLock { $0.publish(reservation) }
    }

    /// Gives back a reservation that could not be filled (damage).
    func abandon(_ reservation: Reservation) {
        state.withLock { $0.remove(reservation.entry) }
    }

    /// Unpins a lease.
    func release(_ lease: Lease) {
        state.withLock { $0.release(lease.entry) }
    }

    /// Forgets the entries of these segments (taken out of the set): no
    /// read finds them from now on, and their slots are free once no reader
    /// holds them.
    func drop(segments ids: [SegmentID]) {
        guard isEnabled, !ids.isEmpty else { return }
        state.withLock { $0.drop(Set(ids)) }
    }

    var statistics: Statistics { state.withLock { $0.statistics } }

    /// Entries held for `segment` (tests).
    func entryCount(of segment: SegmentID) -> Int {
        state.withLock { state in state.entries.indices.count { state.entries[$0].isLive && state.entries[$0].key.segment == segment } }
    }

    // MARK: - The state under the lock

    /// One cached batch: where its slots are, and who holds it.
    struct CachedBatch {
        var key = Key(segment: SegmentID(value: 0), offset: 0, frameCRC: 0)
        var firstSlot: Int32 = -1
        var slotCount: Int32 = 0
        var recordsLength = 0
        var pins: Int32 = 0
        /// Read since the clock hand last passed it.
        var referenced = false
        /// Filled and published.
        var ready = false
        /// Dropped while pinned: freed by its last release.
        var dropped = false

        var isLive: Bool { firstSlot >= 0 && !dropped }
    }

    struct State: ~Copyable, @unchecked Sendable {
        let slotCount: Int
        var arena: UnsafeMutableRawPointer?
        /// The entry holding each slot (-1: free).
        var slotEntry: [Int32] = []
        var entries: [CachedBatch] = []
        var freeEntries: [Int32] = []
        var map: [Key: Int32] = [:]
        var hand = 0
        var statistics = Statistics()

        init(slotCount: Int) { self.slotCount = slotCount }

        deinit { arena?.deallocate() }

        /// The arena and bookkeeping, allocated once.
        mutating func allocate() -> UnsafeMutableRawPointer {
            if let arena { return arena }
            let arena = UnsafeMutableRawPointer.allocate(byteCount: slotCount * BatchCache.slotBytes, alignment: BatchCache.slotBytes)
            self.arena = arena
            slotEntry = [Int32](repeating: -1, count: slotCount)
            entries = [CachedBatch](repeating: CachedBatch(), count: slotCount)
            freeEntries = Array((0..<Int32(slotCount)).reversed())
            map.reserveCapacity(slotCount)
            statistics.allocated = true
            return arena
        }

        mutating func acquire(_ key: Key, recordsLength: Int, recordCount: Int) -> Acquired {
            guard slotCount > 0 else { return .bypass }
            if let e = map[key] {
                guard entries[Int(e)].ready else { return .bypass }  // another reader fills it
                entries[Int(e)].pins += 1
                entries[Int(e)].referenced = true
                statistics.hits &+= 1
                return .hit(lease(e))
            }
            let bytes = BatchCache.tableStart(recordsLength) + 4 * recordCount
            let slots = (bytes + BatchCache.slotBytes - 1) / BatchCache.slotBytes
            guard slots <= max(1, slotCount / 8) else { return .bypass }
            let arena = allocate()
            guard let first = findRoom(slots) else { return .bypass }
            statistics.misses &+= 1
            let e = freeEntries.removeLast()
            entries[Int(e)] = CachedBatch(
                key: key, firstSlot: Int32(first), slotCount: Int32(slots), recordsLength: recordsLength, pins: 1,
                referenced: false, ready: false, dropped: false)
            for s in first..<(first + slots) { slotEntry[s] = e }
            map[key] = e
            statistics.entries += 1
            statistics.bytes += slots * BatchCache.slotBytes
            return .miss(Reservation(
                entry: e, key: key, destination: arena + first * BatchCache.slotBytes, recordsLength: recordsLength,
                recordCount: recordCount))
        }

        /// The first of `count` consecutive slots made free by the clock,
        /// or nil after two turns of the hand found none (every candidate
        /// pinned).
        mutating func findRoom(_ count: Int) -> Int? {
            var start = hand
            var run = 0
            var steps = 0
            while run < count {
                steps += 1
                if steps > 3 * slotCount + 2 { return nil }
                if start + count > slotCount {
                    // Not enough slots before the end: go on from the first.
                    start = 0
                    run = 0
                    continue
                }
                let s = start + run
                let e = slotEntry[s]
                if e < 0 {
                    run += 1
                    continue
                }
                let entry = entries[Int(e)]
                if entry.pins > 0 || entry.referenced {
                    if entry.pins == 0 { entries[Int(e)].referenced = false }
                    start = Int(entry.firstSlot + entry.slotCount)
                    run = 0
                    if start >= slotCount { start = 0 }
                    continue
                }
                if map[entry.key] == e { map.removeValue(forKey: entry.key) }
                statistics.evictions &+= 1
                free(e)
            }
            hand = start + count == slotCount ? 0 : start + count
            return start
        }

        mutating func publish(_ reservation: Reservation) -> Lease {
            entries[Int(reservation.entry)].ready = true
            entries[Int(reservation.entry)].referenced = true
            return lease(reservation.entry)
        }

        func lease(_ e: Int32) -> Lease {
            let entry = entries[Int(e)]
            let start = arena! + Int(entry.firstSlot) * BatchCache.slotBytes
            return Lease(
                entry: e, key: entry.key, records: UnsafeRawBufferPointer(start: start, count: entry.recordsLength),
                offsets: UnsafeRawPointer(start + BatchCache.tableStart(entry.recordsLength)))
        }

        mutating func release(_ e: Int32) {
            entries[Int(e)].pins -= 1
            if entries[Int(e)].pins == 0 && entries[Int(e)].dropped { free(e) }
        }

        /// Removes a live entry from the map and frees it (or, pinned, marks it dropped).
        mutating func remove(_ e: Int32) {
            if map[entries[Int(e)].key] == e { map.removeValue(forKey: entries[Int(e)].key) }
            entries[Int(e)].pins -= 1
            if entries[Int(e)].pins == 0 { free(e) } else { entries[Int(e)].dropped = true }
        }

        mutating func drop(_ ids: Set<SegmentID>) {
            for e in entries.indices where entries[e].isLive && ids.contains(entries[e].key.segment) {
                if map[entries[e].key] == Int32(e) { map.removeValue(forKey: entries[e].key) }
                if entries[e].pins == 0 { free(Int32(e)) } else { entries[e].dropped = true }
            }
        }

        /// Returns an entry's slots and its place in the entry array.
        mutating func free(_ e: Int32) {
            let entry = entries[Int(e)]
            for s in Int(entry.firstSlot)..<Int(entry.firstSlot + entry.slotCount) { slotEntry[s] = -1 }
            statistics.entries -= 1
            statistics.bytes -= Int(entry.slotCount) * BatchCache.slotBytes
            entries[Int(e)] = CachedBatch()
            freeEntries.append(e)
        }
    }
}
