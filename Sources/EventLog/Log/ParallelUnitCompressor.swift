import Synchronization
import class Foundation.NSCondition
#if canImport(Glibc)
import Glibc
#endif

/// Compresses the writer's LZ4 units (Format.md §5.2, §5.4) on two cores:
/// the writer's thread and a helper thread take the units of a batch one at
/// a time from one counter, each compressing into a slot of its own, and the
/// writer then lays the table and the blocks out as `LZ4Units.compress`
/// does, byte for byte (each unit is compressed alone, or from the same
/// dictionary state, so who compressed it does not change its block).
///
/// Compression is about half of what an LZ4 append costs the writer's
/// thread; the helper takes part of it to the second core. Nothing waits for
/// the helper to wake: the writer starts on the units at once and takes
/// every unit the helper has not, so a helper that wakes late (or a machine
/// with one core) costs a wake-up call, no more. The writer then waits only
/// for the unit the helper is compressing, if any.
///
/// Against a dictionary (codec 3), the helper compresses with a twin of the
/// writer's `LZ4DictionaryCompressor` (the same bytes, loaded again: each
/// unit is copied right after its compressor's own copy of the dictionary),
/// made once per dictionary on the helper's thread.
///
/// ## Concurrency
/// One writer calls `compress` at a time (under the writer lock). The job
/// (addresses of the writer's buffers) is offered through `offer`: the
/// writer publishes it (`offered`), the helper takes it (`taken`, a
/// compare-and-exchange, so an offer is taken once or withdrawn by the
/// writer, never both) and hands it back (`idle`, releasing the units it
/// compressed to the writer, which acquires them); units are claimed with
/// `claimed`. `compress` does not return, nor touch `job` again, before the
/// offer is `idle`. An
/// idle helper looks for offers for `idleSpin`, yielding its core, then
/// sleeps on `condition` until the writer signals (`sleeping`). `stop`
/// joins the thread.
final class ParallelUnitCompressor: @unchecked Sendable {
    /// A batch's units, as both threads read them (set by the writer before
    /// the hand-over; each unit's result written by whoever claimed it).
    private struct Job {
        var source: UnsafeRawPointer
        /// Where unit i ends in the records (starts where unit i - 1 ends).
        var ends: UnsafePointer<Int>
        /// Where unit i's block goes in the slots, and its room.
        var slotOffsets: UnsafePointer<Int>
        var slots: UnsafeMutableRawPointer
        /// Unit i's block length, 0 when it did not compress.
        var blockLengths: UnsafeMutablePointer<Int>
        var units: Int
        var dictionary: LZ4DictionaryCompressor?
    }

    /// Batches of fewer units are compressed by the writer alone: a
    /// hand-over costs about as much as a unit.
    static let minimumUnits = 4
    /// The most room for compressed units kept from batch to batch.
    static let keptSlotBytes = 4 << 20

    /// Where the helper sleeps when no job came for `idleSpin`.
    private let condition = NSCondition()
    /// Set by `stop` (read by the helper without the lock too).
    private let stopping = Atomic<Bool>(false)
    /// True while the helper sleeps, or is about to (under `condition`).
    private let sleeping = Atomic<Bool>(false)

    /// The job on offer: written by the writer while `offer` is `idle`, read
    /// by the helper once it took the offer.
    private var job: Job?
    /// `idle` (no job, or the helper is done with it), `offered` (the writer
    /// published `job`), `taken` (the helper works on it).
    private let offer = Atomic<Int>(Offer.idle)
    private enum Offer {
        static let idle = 0
        static let offered = 1
        static let taken = 2
    }
    /// How long the helper looks for the next job (yielding its core every
    /// 64 looks) before it sleeps: a writer appending batch after batch offers
    /// one every 100 µs or so, and waking a sleeping thread costs the
    /// writer a system call and the helper a few microseconds.
    static let idleSpin: Duration = .microseconds(200)

    /// The next unit to claim in the current job.
    private let claimed = Atomic<Int>(0)

    /// The helper's twin of the writer's dictionary compressor, and the one it is a twin of.
    private var twin: LZ4DictionaryCompressor?
    private var twinOf: LZ4DictionaryCompressor?

    // The writer's reused scratch.
    private var ends: [Int] = []
    /// How many records the units up to unit i hold.
    private var recordEnds: [Int] = []
    private var slotOffsets: [Int] = []
    private var blockLengths: [Int] = []
    private var slots = ByteBuffer(capacity: 0)

    private var thread = pthread_t()

    private init() {}

    /// Starts the helper thread; nil when none can be made (the writer then
    /// compresses alone, as `LZ4Units.compress`).
    static func start() -> ParallelUnitCompressor? {
        let compressor = ParallelUnitCompressor()
        guard let thread = OwnThread.start({ compressor.run() }) else { return nil }
        compressor.thread = thread
        return compressor
    }

    /// Stops the helper and waits for it (the first call; later ones return).
    /// A `compress` running meanwhile finishes alone.
    func stop() {
        let first = !stopping.exchange(true, ordering: .sequentiallyConsistent)
        condition.lock()
        condition.broadcast()
        condition.unlock()
        if first { pthread_join(thread, nil) }
    }

    /// Units the helper compressed so far (tests; relaxed).
    let helperUnits = Atomic<Int>(0)

    /// `LZ4Units.compress(_:recordCount:appendingTo:unitBytes:dictionary:)`,
    /// on two cores when the batch has `minimumUnits` units or more: the
    /// same bytes appended to `buffer`, the same answer. Writer only.
    func compress(
        _ records: UnsafeRawBufferPointer, recordCount: Int, appendingTo buffer: inout ByteBuffer, unitBytes: Int,
        dictionary: LZ4DictionaryCompressor?
    ) -> Bool {
        let total = records.count
        guard total > 64, recordCount > 0, let source = records.baseAddress else { return false }
        // The units, as `LZ4Units.compress` cuts them.
        ends.removeAll(keepingCapacity: true)
        recordEnds.removeAll(keepingCapacity: true)
        var record = 0
        var at = 0
        var start = 0
        while let end = LZ4Units.unitEnd(records, recordCount: recordCount, unitBytes: unitBytes, from: start, record: &record, at: &at) {
            ends.append(end)
            recordEnds.append(record)
            start = end
        }
        guard record == recordCount else { return false }
        let units = ends.count
        guard units >= Self.minimumUnits else {
            return LZ4Units.compress(records, recordCount: recordCount, appendingTo: &buffer, unitBytes: unitBytes, dictionary: dictionary)
        }
        slotOffsets.removeAll(keepingCapacity: true)
        var room = 0
        start = 0
        for end in ends {
            slotOffsets.append(room)
            room += LZ4Codec.compressBound(end - start)
            start = end
        }
        slots.count = 0
        slots.reserve(room)
        // A batch far larger than most leaves no room that large behind (as the writer's encode buffer).
        defer { slots.trim(to: Self.keptSlotBytes) }
        blockLengths.removeAll(keepingCapacity: true)
        blockLengths.append(contentsOf: repeatElement(0, count: units))

        ends.withUnsafeBufferPointer { ends in
            slotOffsets.withUnsafeBufferPointer { offsets in
                blockLengths.withUnsafeMutableBufferPointer { lengths in
                    guard let endsBase = ends.baseAddress, let offsetsBase = offsets.baseAddress, let lengthsBase = lengths.baseAddress
                    else { return }
                    let job = Job(
                        source: source, ends: endsBase, slotOffsets: offsetsBase, slots: slots.base, blockLengths: lengthsBase,
                        units: units, dictionary: dictionary)
                    claimed.store(0, ordering: .relaxed)
                    self.job = job
                    offer.store(Offer.offered, ordering: .sequentiallyConsistent)
                    if sleeping.load(ordering: .sequentiallyConsistent) {
                        condition.lock()
                        condition.signal()
                        condition.unlock()
                    }
                    // The writer's share: every unit the helper has not claimed.
                    Self.work(job, claimed: claimed, dictionary: dictionary)
                    waitForHelper()
                    self.job = nil
                }
            }
        }

        // The layout of `LZ4Units.compress`: checksum (codec 3), count, table, blocks.
        let limit = LZ4Units.storedLimit(total)
        let tableStart = dictionary == nil ? 0 : LZ4Units.dictionaryFieldSize
        var stored = tableStart + 4 + units * LZ4Units.entrySize
        for length in blockLengths {
            guard length > 0 else { return false }
            stored += length
        }
        guard stored < limit else { return false }
        buffer.reserve(stored)
        let destination = buffer.tail
        if let dictionary { destination.storeLE(dictionary.dictionary.checksum, at: 0) }
        destination.storeLE(UInt32(units), at: tableStart)
        var written = tableStart + 4 + units * LZ4Units.entrySize
        start = 0
        var first = 0
        for unit in 0..<units {
            let entry = destination + tableStart + 4 + unit * LZ4Units.entrySize
            entry.storeLE(UInt32(recordEnds[unit] - first), at: 0)
            entry.storeLE(UInt32(blockLengths[unit]), at: 4)
            entry.storeLE(UInt32(ends[unit] - start), at: 8)
            (destination + written).copyMemory(from: slots.base + slotOffsets[unit], byteCount: blockLengths[unit])
            written += blockLengths[unit]
            start = ends[unit]
            first = recordEnds[unit]
        }
        buffer.count += written
        return true
    }

    /// Claims units of `job` until none is left, compressing each into its
    /// slot; returns how many it compressed.
    @discardableResult
    private static func work(
        _ job: Job, claimed: borrowing Atomic<Int>, dictionary: LZ4DictionaryCompressor?
    ) -> Int {
        var done = 0
        while true {
            let unit = claimed.wrappingAdd(1, ordering: .relaxed).oldValue
            guard unit < job.units else { return done }
            done += 1
            let start = unit == 0 ? 0 : job.ends[unit - 1]
            let bytes = UnsafeRawBufferPointer(start: job.source + start, count: job.ends[unit] - start)
            let slot = job.slots + job.slotOffsets[unit]
            let capacity = LZ4Codec.compressBound(bytes.count)
            job.blockLengths[unit] = dictionary.map { $0.compress(bytes, into: slot, capacity: capacity) }
                ?? LZ4Codec.compress(bytes, into: slot, capacity: capacity)
        }
    }

    /// Returns once the helper has let go of the job, its units compressed
    /// (or never took it: the offer is then withdrawn, and the writer, whose
    /// claims ran out, compressed every unit). Called after the writer's share.
    private func waitForHelper() {
        if offer.compareExchange(expected: Offer.offered, desired: Offer.idle, ordering: .acquiringAndReleasing).exchanged {
            return  // not taken: the writer compressed every unit
        }
        // Taken: the helper holds at most the unit it is compressing.
        while offer.load(ordering: .acquiring) != Offer.idle {
            sched_yield()
        }
    }

    private func run() {
        var idleSince = ContinuousClock.now
        var spins = 0
        while !stopping.load(ordering: .relaxed) {
            guard offer.compareExchange(expected: Offer.offered, desired: Offer.taken, ordering: .acquiringAndReleasing).exchanged
            else {
                if ContinuousClock.now - idleSince < Self.idleSpin {
                    // Look often; let others have the core now and then.
                    spins &+= 1
                    if spins & 63 == 0 { sched_yield() }
                    continue
                }
                // Sleep until the writer offers a job (it signals when it sees `sleeping`).
                condition.lock()
                sleeping.store(true, ordering: .sequentiallyConsistent)
                while offer.load(ordering: .sequentiallyConsistent) != Offer.offered && !stopping.load(ordering: .relaxed) {
                    condition.wait()
                }
                sleeping.store(false, ordering: .relaxed)
                condition.unlock()
                idleSince = ContinuousClock.now
                continue
            }
            if let job {
                if let dictionary = job.dictionary {
                    // Only with a twin of the dictionary (none made: the writer does every unit).
                    if let twin = twin(of: dictionary) { helperUnits.add(Self.work(job, claimed: claimed, dictionary: twin), ordering: .relaxed) }
                } else {
                    helperUnits.add(Self.work(job, claimed: claimed, dictionary: nil), ordering: .relaxed)
                }
            }
            offer.store(Offer.idle, ordering: .releasing)
            idleSince = ContinuousClock.now
        }
    }

    /// The helper's compressor for `dictionary`'s units (helper thread only).
    private func twin(of dictionary: LZ4DictionaryCompressor) -> LZ4DictionaryCompressor? {
        if twinOf !== dictionary {
            twin = LZ4DictionaryCompressor(records: dictionary.dictionary.bytes)
            twinOf = dictionary
        }
        return twin
    }
}
