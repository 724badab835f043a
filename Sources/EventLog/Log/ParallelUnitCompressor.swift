import Synchronization
import class Foundation.NSCondition
#if canImport(Glibc)
import Glibc
#endif

/// Compresses the writer's LZ4 units (Format.md §5.2, §5.4) on two cores:
/// the writer's thread and a helper thread take the units of a batch one at
/// a time, each compressing into a slot of its own, and the writer then lays
/// the table and the blocks out as `LZ4Units.compress` does, byte for byte
/// (each unit is compressed alone, or from the same dictionary state, so who
/// compressed it does not change its block).
///
/// The units are a **stream**: the writer publishes each unit as soon as its
/// records are written (`publish`), and the helper compresses it while the
/// writer goes on. A batch being built publishes its units as the builder
/// completes them (`UnitFeed`), so most of the compression is done by the
/// time the batch is complete; `finish` then compresses what is left on
/// both threads and lays the batch out. `compress` does all of it for a
/// records area already complete.
///
/// Nothing waits for the helper to wake: a helper that wakes late (or a
/// machine with one core) leaves the writer every unit, and costs a wake-up
/// call, no more. The writer waits only for the unit the helper is
/// compressing, if any.
///
/// Against a dictionary (codec 3), the helper compresses with a twin of the
/// writer's `LZ4DictionaryCompressor` (the same bytes, loaded again: each
/// unit is copied right after its compressor's own copy of the dictionary),
/// made once per dictionary on the helper's thread.
///
/// ## Concurrency
/// One writer calls the stream's methods at a time (under the writer lock).
/// The stream's fields (`source`, the unit arrays, `slots`) change only
/// while no job is out: the writer offers the job (`offer`: `offered`), the
/// helper takes it (`taken`, a compare-and-exchange, so an offer is taken
/// once or withdrawn by the writer, never both), and hands it back (`idle`,
/// releasing the blocks it wrote to the writer, which acquires them). While
/// the job is out, the writer only appends units: it writes unit `n`'s
/// entries, then stores `published` = n + 1 (releasing them and the
/// records they cover); either thread claims a unit below `published` by
/// advancing `claimed` (a compare-and-exchange, so each unit is claimed
/// once). The writer ends a job by claiming what is left and setting
/// `closed`; the helper lets go once it sees `closed` and nothing left to
/// claim (a cancelled job's `claimed` is set past every unit). The
/// records below the published ends must neither change nor move while
/// the job is out: before the builder's buffer grows, the writer takes the
/// job back (`pause`) and offers it again over the moved records
/// (`resume`). A helper with nothing to do looks for work for `idleSpin`,
/// yielding its core, then sleeps on `condition` until the writer signals
/// (`sleeping`). `stop` joins the thread.
final class ParallelUnitCompressor: @unchecked Sendable {
    /// Records areas of fewer units are compressed by the writer alone
    /// (`compress`): a hand-over costs about as much as a unit.
    static let minimumUnits = 4
    /// The most room for compressed units kept from batch to batch.
    static let keptSlotBytes = 4 << 20
    /// The unit entries made room for at first (more after a pause).
    static let initialUnits = 256
    /// The room for blocks made at first (more after a pause).
    static let initialSlotBytes = 64 << 10

    /// Where the helper sleeps when nothing came for `idleSpin`.
    private let condition = NSCondition()
    /// Set by `stop` (read by the helper without the lock too).
    private let stopping = Atomic<Bool>(false)
    /// True while the helper sleeps, or is about to (under `condition`).
    private let sleeping = Atomic<Bool>(false)

    /// `idle` (no job out, or the helper is done with it), `offered` (the
    /// writer published the job), `taken` (the helper works on it).
    private let offer = Atomic<Int>(Offer.idle)
    private enum Offer {
        static let idle = 0
        static let offered = 1
        static let taken = 2
    }
    /// How long the helper looks for the next job, or the next unit of its
    /// job (yielding its core every 64 looks), before it sleeps: a writer
    /// appending batch after batch offers one every 100 µs or so, and its
    /// builder completes a unit every few microseconds; waking a sleeping
    /// thread costs the writer a system call and the helper a few
    /// microseconds.
    static let idleSpin: Duration = .microseconds(200)

    /// How many units the writer has published.
    private let published = Atomic<Int>(0)
    /// The next unit to claim (at most `published`; past every unit once cancelled).
    private let claimed = Atomic<Int>(0)
    /// Set by the writer once it publishes no more units to this job.
    private let closed = Atomic<Bool>(false)

    // The job: written by the writer while no job is out (a unit's entries
    // before it is published), read by the helper while it holds the job.
    /// The records area the units are cut from.
    private var source: UnsafeRawPointer?
    private var dictionary: LZ4DictionaryCompressor?
    private var unitBytes = 0
    /// Per unit: where it ends in the records area, how many records the
    /// units up to it hold, where its block goes in `slots`, and its block's
    /// length (0 when it did not compress; written by whoever claimed it).
    private var ends: UnsafeMutablePointer<Int>
    private var recordEnds: UnsafeMutablePointer<Int>
    private var slotOffsets: UnsafeMutablePointer<Int>
    private var blockLengths: UnsafeMutablePointer<Int>
    private var unitCapacity: Int
    /// Where the blocks go: room for every published unit's block
    /// (`LZ4Codec.compressBound` of its bytes), in `slots`.
    private var slotBase: UnsafeMutableRawPointer

    // The writer's own.
    /// The allocation behind `slotBase` (its count unused).
    private var slots = ByteBuffer(capacity: ParallelUnitCompressor.initialSlotBytes)
    /// The room taken in `slots` by the units published so far.
    private var slotRoom = 0

    /// Units published to the current stream (the writer's copy of `published`).
    private var count = 0
    /// Where the last published unit ends (0 before the first).
    private var publishedEnd = 0
    /// True from `begin` until `finish` or `cancel`.
    private(set) var isOpen = false
    /// True while the job is out (offered or taken).
    private var isOffered = false

    /// The helper's twin of the writer's dictionary compressor, and the one it is a twin of.
    private var twin: LZ4DictionaryCompressor?
    private var twinOf: LZ4DictionaryCompressor?

    private var thread = pthread_t()

    private init() {
        unitCapacity = Self.initialUnits
        ends = .allocate(capacity: unitCapacity)
        recordEnds = .allocate(capacity: unitCapacity)
        slotOffsets = .allocate(capacity: unitCapacity)
        blockLengths = .allocate(capacity: unitCapacity)
        slotBase = slots.base
    }

    deinit {
        ends.deallocate()
        recordEnds.deallocate()
        slotOffsets.deallocate()
        blockLengths.deallocate()
    }

    /// Starts the helper thread; nil when none can be made (the writer then
    /// compresses alone, as `LZ4Units.compress`).
    static func start() -> ParallelUnitCompressor? {
        let compressor = ParallelUnitCompressor()
        guard let thread = OwnThread.start({ compressor.run() }) else { return nil }
        compressor.thread = thread
        return compressor
    }

    /// Stops the helper and waits for it (the first call; later ones return).
    /// Called with no stream open (the writer's close).
    func stop() {
        let first = !stopping.exchange(true, ordering: .sequentiallyConsistent)
        condition.lock()
        condition.broadcast()
        condition.unlock()
        if first { pthread_join(thread, nil) }
    }

    /// Units the helper compressed so far (tests; relaxed).
    let helperUnits = Atomic<Int>(0)
    /// Streams laid out by `finish` (the units fed while a batch was built; tests; relaxed).
    let finishedStreams = Atomic<Int>(0)
    /// Units of the open stream claimed so far (tests: before `finish`, only the helper claims).
    var claimedUnits: Int { claimed.load(ordering: .relaxed) }

    // MARK: The writer's side

    /// `LZ4Units.compress(_:recordCount:appendingTo:unitBytes:dictionary:)`,
    /// on two cores when the records area has `minimumUnits` units or more:
    /// the same bytes appended to `buffer`, the same answer.
    func compress(
        _ records: UnsafeRawBufferPointer, recordCount: Int, appendingTo buffer: inout ByteBuffer, unitBytes: Int,
        dictionary: LZ4DictionaryCompressor?
    ) -> Bool {
        guard records.count > 64, recordCount > 0, let source = records.baseAddress else {
            cancel()
            return false
        }
        // The units, as `LZ4Units.compress` cuts them, published before the job is offered.
        begin(source: source, unitBytes: unitBytes, dictionary: dictionary, offering: false)
        var record = 0
        var at = 0
        var start = 0
        while let end = LZ4Units.unitEnd(records, recordCount: recordCount, unitBytes: unitBytes, from: start, record: &record, at: &at) {
            publish(end: end, recordEnd: record)
            start = end
        }
        guard record == recordCount else {
            cancel()
            return false
        }
        guard count >= Self.minimumUnits else {
            cancel()
            return LZ4Units.compress(records, recordCount: recordCount, appendingTo: &buffer, unitBytes: unitBytes, dictionary: dictionary)
        }
        offerJob()
        return finishStream(records, recordCount: recordCount, appendingTo: &buffer, unitBytes: unitBytes, dictionary: dictionary) ?? false
    }

    /// Opens a stream of units cut from the records area at `source`, each
    /// compressed alone or against `dictionary`; the job is offered to the
    /// helper at once when `offering`. A stream still open is cancelled first.
    func begin(source: UnsafeRawPointer, unitBytes: Int, dictionary: LZ4DictionaryCompressor?, offering: Bool = true) {
        cancel()
        self.source = source
        self.unitBytes = unitBytes
        self.dictionary = dictionary
        count = 0
        publishedEnd = 0
        slotRoom = 0
        published.store(0, ordering: .relaxed)
        claimed.store(0, ordering: .relaxed)
        isOpen = true
        if offering { offerJob() }
    }

    /// Publishes the next unit: the records area's bytes from where the
    /// last unit ended to `end`, the records up to record `recordEnd` (of the
    /// batch; exclusive). Its bytes must be written and must not change.
    func publish(end: Int, recordEnd: Int) {
        let bound = LZ4Codec.compressBound(end - publishedEnd)
        if count == unitCapacity || slotRoom + bound > slots.capacity {
            // The arrays and slots move: take the job back first.
            let wasOffered = isOffered
            if wasOffered { pause() }
            if count == unitCapacity { growUnits() }
            slots.count = slotRoom
            slots.reserve(bound)
            slotBase = slots.base
            if wasOffered { offerJob() }
        }
        ends[count] = end
        recordEnds[count] = recordEnd
        slotOffsets[count] = slotRoom
        blockLengths[count] = 0
        slotRoom += bound
        publishedEnd = end
        count += 1
        published.store(count, ordering: .sequentiallyConsistent)
        wakeIfSleeping()
    }

    /// Takes the job back before the records area moves: compresses every
    /// published unit the helper has not claimed, and waits for the helper
    /// to let go. `resume(source:)` offers it again.
    func pause() {
        guard isOffered else { return }
        while let unit = claim() { compressUnit(unit, dictionary: dictionary) }
        takeBack()
    }

    /// Offers the job again after `pause`, its further units cut from the
    /// records area now at `source` (the same bytes, moved).
    func resume(source: UnsafeRawPointer) {
        guard isOpen else { return }
        self.source = source
        offerJob()
    }

    /// Ends the stream over `records` (`recordCount` records): publishes
    /// the last unit, compresses what is left on both threads, and appends
    /// the layout of `LZ4Units.compress` to `buffer`; true then, false when
    /// the batch is to be stored as is (`buffer` unchanged but for its
    /// capacity). Nil when the stream was not of these records, this unit
    /// size and this dictionary (or none is open): it is cancelled, and the
    /// caller compresses them otherwise.
    func finish(
        _ records: UnsafeRawBufferPointer, recordCount: Int, appendingTo buffer: inout ByteBuffer, unitBytes: Int,
        dictionary: LZ4DictionaryCompressor?
    ) -> Bool? {
        let done = finishStream(records, recordCount: recordCount, appendingTo: &buffer, unitBytes: unitBytes, dictionary: dictionary)
        if done != nil { finishedStreams.add(1, ordering: .relaxed) }
        return done
    }

    /// `finish`, for `compress` too.
    private func finishStream(
        _ records: UnsafeRawBufferPointer, recordCount: Int, appendingTo buffer: inout ByteBuffer, unitBytes: Int,
        dictionary: LZ4DictionaryCompressor?
    ) -> Bool? {
        guard isOpen, records.baseAddress == source, unitBytes == self.unitBytes, dictionary === self.dictionary,
              records.count >= publishedEnd, records.count > 64, recordCount > 0
        else {
            cancel()
            return nil
        }
        if records.count > publishedEnd { publish(end: records.count, recordEnd: recordCount) }
        while let unit = claim() { compressUnit(unit, dictionary: dictionary) }
        takeBack()
        isOpen = false
        // A batch far larger than most leaves no room that large behind.
        defer {
            slots.count = 0
            slots.trim(to: Self.keptSlotBytes)
            slotBase = slots.base
        }
        let units = count
        guard units > 0, ends[units - 1] == records.count, recordEnds[units - 1] == recordCount else { return nil }

        // The layout of `LZ4Units.compress`: checksum (codec 3), count, table, blocks.
        let limit = LZ4Units.storedLimit(records.count)
        let tableStart = dictionary == nil ? 0 : LZ4Units.dictionaryFieldSize
        var stored = tableStart + 4 + units * LZ4Units.entrySize
        for unit in 0..<units {
            guard blockLengths[unit] > 0 else { return false }
            stored += blockLengths[unit]
        }
        guard stored < limit else { return false }
        buffer.reserve(stored)
        let destination = buffer.tail
        if let dictionary { destination.storeLE(dictionary.dictionary.checksum, at: 0) }
        destination.storeLE(UInt32(units), at: tableStart)
        var written = tableStart + 4 + units * LZ4Units.entrySize
        var start = 0
        var first = 0
        for unit in 0..<units {
            let entry = destination + tableStart + 4 + unit * LZ4Units.entrySize
            entry.storeLE(UInt32(recordEnds[unit] - first), at: 0)
            entry.storeLE(UInt32(blockLengths[unit]), at: 4)
            entry.storeLE(UInt32(ends[unit] - start), at: 8)
            (destination + written).copyMemory(from: slotBase + slotOffsets[unit], byteCount: blockLengths[unit])
            written += blockLengths[unit]
            start = ends[unit]
            first = recordEnds[unit]
        }
        buffer.count += written
        return true
    }

    /// Ends the open stream, if any, without its blocks: the helper
    /// compresses nothing more of it, and lets go of the records area
    /// before this returns.
    func cancel() {
        guard isOpen else { return }
        if isOffered {
            claimed.store(Int.max / 2, ordering: .sequentiallyConsistent)
            takeBack()
        }
        isOpen = false
    }

    /// Offers the job to the helper (none is out), open for units.
    private func offerJob() {
        isOffered = true
        closed.store(false, ordering: .relaxed)
        offer.store(Offer.offered, ordering: .sequentiallyConsistent)
        wakeIfSleeping()
    }

    /// Closes the job and returns once the helper has let go of it (or
    /// never took it: the offer is then withdrawn). Every unit left was
    /// claimed by the writer (or the job was cancelled).
    private func takeBack() {
        guard isOffered else { return }
        isOffered = false
        closed.store(true, ordering: .sequentiallyConsistent)
        wakeIfSleeping()
        if offer.compareExchange(expected: Offer.offered, desired: Offer.idle, ordering: .acquiringAndReleasing).exchanged {
            return  // not taken
        }
        // Taken: the helper holds at most the unit it is compressing.
        while offer.load(ordering: .acquiring) != Offer.idle {
            sched_yield()
        }
    }

    private func wakeIfSleeping() {
        if sleeping.load(ordering: .sequentiallyConsistent) {
            condition.lock()
            condition.signal()
            condition.unlock()
        }
    }

    /// Twice the unit entries (no job out).
    private func growUnits() {
        let larger = unitCapacity * 2
        for array in [\ParallelUnitCompressor.ends, \.recordEnds, \.slotOffsets, \.blockLengths] {
            let old = self[keyPath: array]
            let new = UnsafeMutablePointer<Int>.allocate(capacity: larger)
            new.initialize(from: old, count: count)
            old.deallocate()
            self[keyPath: array] = new
        }
        unitCapacity = larger
    }

    // MARK: Both sides

    /// Claims the next published unit; nil when none is left to claim.
    private func claim() -> Int? {
        var next = claimed.load(ordering: .relaxed)
        while true {
            guard next < published.load(ordering: .acquiring) else { return nil }
            let (exchanged, original) = claimed.compareExchange(expected: next, desired: next + 1, ordering: .relaxed)
            if exchanged { return next }
            next = original
        }
    }

    /// Compresses a claimed unit into its slot.
    private func compressUnit(_ unit: Int, dictionary: LZ4DictionaryCompressor?) {
        guard let source else { return }
        let start = unit == 0 ? 0 : ends[unit - 1]
        let bytes = UnsafeRawBufferPointer(start: source + start, count: ends[unit] - start)
        let slot = slotBase + slotOffsets[unit]
        let capacity = LZ4Codec.compressBound(bytes.count)
        blockLengths[unit] = dictionary.map { $0.compress(bytes, into: slot, capacity: capacity) }
            ?? LZ4Codec.compress(bytes, into: slot, capacity: capacity)
    }

    // MARK: The helper's side

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
            helperUnits.add(serve(), ordering: .relaxed)
            offer.store(Offer.idle, ordering: .releasing)
            idleSince = ContinuousClock.now
        }
    }

    /// Compresses units of the job taken until the writer closes it and
    /// none is left to claim; returns how many.
    private func serve() -> Int {
        var against: LZ4DictionaryCompressor?
        if let dictionary {
            // Only with a twin of the dictionary (none made: the writer does every unit).
            guard let twin = twin(of: dictionary) else { return 0 }
            against = twin
        }
        var done = 0
        var waitingSince: ContinuousClock.Instant?
        var spins = 0
        while true {
            // Read before the claim: a close seen here came after every unit it ends, so a
            // claim that then finds none left means the job is done.
            let isClosed = closed.load(ordering: .acquiring)
            if let unit = claim() {
                compressUnit(unit, dictionary: against)
                done += 1
                waitingSince = nil
                continue
            }
            if isClosed { return done }
            if stopping.load(ordering: .relaxed) { return done }
            // The writer is still building: look for its next unit.
            let now = ContinuousClock.now
            if waitingSince == nil { waitingSince = now }
            if let since = waitingSince, now - since < Self.idleSpin {
                spins &+= 1
                if spins & 63 == 0 { sched_yield() }
                continue
            }
            condition.lock()
            sleeping.store(true, ordering: .sequentiallyConsistent)
            while !closed.load(ordering: .sequentiallyConsistent)
                && claimed.load(ordering: .sequentiallyConsistent) >= published.load(ordering: .sequentiallyConsistent)
                && !stopping.load(ordering: .relaxed) {
                condition.wait()
            }
            sleeping.store(false, ordering: .relaxed)
            condition.unlock()
            waitingSince = nil
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
