/// The LZ4 units of the batch being built, handed to the writer's
/// `ParallelUnitCompressor` as the builder completes each (Format.md §5.2: a
/// unit ends after the first record that brings it to `unitBytes`; the
/// last one at the end of the records), so that the helper thread
/// compresses them while the writer builds the rest of the batch.
/// `BatchLog.writeBatch` then finishes the stream (`finish`) if the batch is
/// written against the same dictionary, and cancels it otherwise; either
/// way the bytes written are those `LZ4Units.compress` gives.
///
/// Made per batch by `BatchLog.unitFeed`, for a log that compresses against
/// its active segment's dictionary with the helper thread, and not for a
/// sealed (encrypted) log. The stream opens with the first complete unit:
/// a batch of one unit never offers the helper anything.
struct UnitFeed {
    let compressor: ParallelUnitCompressor
    let unitBytes: Int
    let dictionary: LZ4DictionaryCompressor
    /// Where the unit being built starts in the records area.
    private var unitStart = 0
    /// Records encoded so far.
    private var records = 0
    /// True once the stream is open (its first unit published).
    private var opened = false

    init(compressor: ParallelUnitCompressor, unitBytes: Int, dictionary: LZ4DictionaryCompressor) {
        self.compressor = compressor
        self.unitBytes = unitBytes
        self.dictionary = dictionary
    }

    /// After each record: the records area is `length` bytes from `area`,
    /// which must not move before `willMove` is called.
    @inline(__always) mutating func recordEncoded(area: UnsafeRawPointer, length: Int) {
        records += 1
        if length - unitStart >= unitBytes { unitComplete(area: area, length: length) }
    }

    /// The unit being built is complete at `length`: publish it (opening the stream at the first).
    @inline(never)
    private mutating func unitComplete(area: UnsafeRawPointer, length: Int) {
        if !opened {
            compressor.begin(source: area, unitBytes: unitBytes, dictionary: dictionary)
            opened = true
        }
        compressor.publish(end: length, recordEnd: records)
        unitStart = length
    }

    /// Before the records area moves (its buffer grows): the helper lets
    /// go of it, the units published so far compressed.
    func willMove() {
        if opened { compressor.pause() }
    }

    /// After it moved to `area`, the same bytes.
    func moved(to area: UnsafeRawPointer) {
        if opened { compressor.resume(source: area) }
    }
}
