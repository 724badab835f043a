/// The records area of a batch stored with codec 2, **LZ4 units** (Format.md
/// §5.2): the records cut, at record boundaries, into units of about
/// `targetBytes` each, every unit one LZ4 block of its own, then a table of
/// the units. A point read decompresses the one unit that holds its record
/// (a few KiB) instead of the whole batch; a scan decompresses every unit,
/// one after another, into the same bytes codec 1 would give.
///
/// Stored layout (`storedLength` bytes after the frame header):
///
///     unit count u32 | table: per unit (records u32, stored bytes u32,
///     bytes u32) | unit 0's LZ4 block | unit 1's | …
///
/// The table comes first, next to the frame header, so a point read finds
/// its unit in the cache lines it read the header from. A unit's "bytes"
/// are its decompressed length. The units' records add up to the batch's
/// record count, their bytes to its records length (bytes after the last
/// record, such as a sealed batch's seal table, are in the last unit), and
/// their stored bytes, with the count and table, to the stored length.
///
/// Codec 3 (Format.md §5.4) is the same layout after a u32, the checksum of
/// the segment's LZ4 dictionary, with every unit's block compressed against
/// that dictionary.
enum LZ4Units {
    /// The batch attribute codec value (bits 0–2).
    static let codec: UInt16 = 2
    /// The codec value of units compressed against the segment's dictionary.
    static let dictionaryCodec: UInt16 = 3
    /// What codec 3 stores before the unit count: the dictionary's checksum.
    static let dictionaryFieldSize = 4
    /// A unit is closed once it holds at least this many decompressed bytes
    /// (a record is never split, so a unit of one large record is larger):
    /// the default of `LogOptions.compressionUnitBytes`, and what the
    /// rewriter and an import use.
    static let targetBytes = 12 << 10
    /// The same for units compressed against a segment's dictionary (codec
    /// 3, Format.md §5.4): the default of `LogOptions.dictionaryUnitBytes`,
    /// and what a merge uses.
    static let dictionaryTargetBytes = 1 << 10
    /// One table entry: records, stored bytes, bytes (u32 each).
    static let entrySize = 12
    /// How far past a record's guessed end a point read decompresses
    /// (`Unit.prefixGuess`): records of one workload differ in size, and a
    /// guess that falls short costs a second decompression of the prefix.
    static let prefixSlack = 64
    /// How many times a point read guesses how much of a unit to
    /// decompress (the first guess, then one from where its walk stopped)
    /// before it decompresses the whole unit.
    static let prefixGuesses = 2

    /// One unit, located: its records `firstRecord..<firstRecord+records`,
    /// its LZ4 block at `storedOffset` in the stored area, its bytes at
    /// `areaOffset` in the decompressed records area.
    struct Unit: Equatable {
        var firstRecord: Int
        var records: Int
        var storedOffset: Int
        var storedLength: Int
        var areaOffset: Int
        var length: Int

        /// How many bytes of this unit a point read of record `index` (of
        /// the batch) decompresses first: `prefixSlack` past where that
        /// record would end if the unit's records were all one size. A read
        /// whose walk runs out of decompressed bytes guesses again from
        /// where it stopped (`prefixGuess(forRecord:stoppedAt:offset:in:)`).
        func prefixGuess(forRecord index: Int) -> Int {
            let ahead = index - firstRecord + 1
            return ahead >= records ? length : min(length, ahead * (length / records) + LZ4Units.prefixSlack)
        }

        /// The next guess, after a walk of the first `decoded.count` bytes
        /// of this unit stopped at record `stopped` (of the batch), which
        /// starts at `offset`: where record `index` ends when `stopped` is
        /// it and its length field was decompressed, else where it would
        /// end counting from `stopped`'s end (known from its length field,
        /// or guessed) with the records after it all of the unit's mean
        /// size, plus `prefixSlack`. Always more than `decoded.count`: a
        /// guess that would not be (a record that was all there and still
        /// failed) is the whole unit, so that only a defect of the whole
        /// unit is reported.
        func prefixGuess(forRecord index: Int, stoppedAt stopped: Int, offset: Int, in decoded: UnsafeRawBufferPointer) -> Int {
            let mean = length / records
            var head = offset
            var guess: Int
            if let body = Varint.read(decoded, &head), body <= UInt64(length) {
                guess = head + Int(body)
                if stopped < index { guess += (index - stopped) * mean + LZ4Units.prefixSlack }
            } else {
                guess = offset + (index - stopped + 1) * mean + LZ4Units.prefixSlack
            }
            return guess > decoded.count ? min(length, guess) : length
        }
    }

    /// A defect of a stored area: what is wrong (its readers report it at
    /// the batch's offset, as every defect of a compressed batch).
    struct Defect: Error, Equatable {
        let reason: String
    }

    // MARK: Writing

    /// Compresses a records area (`recordCount` records end to end, then
    /// any trailing bytes) into `destination` (room for `records.count`
    /// bytes): the unit count and table first, then each unit's block.
    /// Returns the stored length, or 0 when the result would not be at
    /// least 1/16 smaller than `records` (the batch is then stored as is)
    /// or the records do not walk (never for a writer's own records).
    /// Allocates nothing: a first walk over the records counts the units,
    /// so the table's room is known before the blocks are written.
    /// With `dictionary`, the layout of codec 3: its checksum first, and
    /// every block compressed against it.
    static func compress(
        _ records: UnsafeRawBufferPointer, recordCount: Int, into destination: UnsafeMutableRawPointer, unitBytes: Int = targetBytes,
        dictionary: LZ4DictionaryCompressor? = nil
    ) -> Int {
        let total = records.count
        guard total > 64, recordCount > 0, let source = records.baseAddress else { return 0 }
        let limit = storedLimit(total)
        // The walk both passes make: where each unit ends.
        func nextUnitEnd(from start: Int, record: inout Int, at: inout Int) -> Int? {
            unitEnd(records, recordCount: recordCount, unitBytes: unitBytes, from: start, record: &record, at: &at)
        }
        var units = 0
        do {
            var record = 0
            var at = 0
            var start = 0
            while let end = nextUnitEnd(from: start, record: &record, at: &at) {
                units += 1
                start = end
            }
            guard record == recordCount else { return 0 }
        }
        let tableStart = dictionary == nil ? 0 : dictionaryFieldSize
        var written = tableStart + 4 + units * entrySize
        guard written < limit else { return 0 }
        if let dictionary { destination.storeLE(dictionary.dictionary.checksum, at: 0) }
        destination.storeLE(UInt32(units), at: tableStart)
        var record = 0
        var at = 0
        var start = 0
        var first = 0
        for unit in 0..<units {
            guard let end = nextUnitEnd(from: start, record: &record, at: &at) else { return 0 }
            let unitBytes = UnsafeRawBufferPointer(start: source + start, count: end - start)
            let block = dictionary.map { $0.compress(unitBytes, into: destination + written, capacity: limit - written) }
                ?? LZ4Codec.compress(unitBytes, into: destination + written, capacity: limit - written)
            guard block > 0, written + block < limit else { return 0 }
            let entry = destination + tableStart + 4 + unit * entrySize
            entry.storeLE(UInt32(record - first), at: 0)
            entry.storeLE(UInt32(block), at: 4)
            entry.storeLE(UInt32(end - start), at: 8)
            written += block
            start = end
            first = record
        }
        return written
    }

    /// The stored area of a records area of `total` bytes must end before
    /// this, or the batch is stored as is: compression must save 1/16.
    @inline(__always) static func storedLimit(_ total: Int) -> Int { total - total / 16 }

    /// Where the unit starting at byte `start` of `records` ends (Format.md
    /// §5.2): after the first record that brings it to `unitBytes` or more,
    /// or at the end of the area after the last record (the last unit takes
    /// the bytes after it). Walks from record `record` at byte `at`, which
    /// it advances; nil when a record does not walk or none is left.
    @inline(__always)
    static func unitEnd(
        _ records: UnsafeRawBufferPointer, recordCount: Int, unitBytes: Int, from start: Int, record: inout Int, at: inout Int
    ) -> Int? {
        while record < recordCount {
            do { try Record.skip(records, at: &at) } catch { return nil }
            record += 1
            if record == recordCount { return records.count }
            if at - start >= unitBytes { return at }
        }
        return nil
    }

    /// `compress` into the free room of `buffer` after its count, which
    /// grows by the stored length. False, `buffer` unchanged but for its
    /// capacity, when the batch is to be stored as is.
    static func compress(
        _ records: UnsafeRawBufferPointer, recordCount: Int, appendingTo buffer: inout ByteBuffer, unitBytes: Int,
        dictionary: LZ4DictionaryCompressor? = nil
    ) -> Bool {
        buffer.reserve(records.count)
        let written = compress(records, recordCount: recordCount, into: buffer.tail, unitBytes: unitBytes, dictionary: dictionary)
        guard written > 0 else { return false }
        buffer.count += written
        return true
    }

    /// Compresses a batch after a segment's first (Format.md §5.4) into
    /// `buffer` as `compress(_:recordCount:appendingTo:unitBytes:dictionary:)`
    /// does: against `dictionary`, in units of `dictionaryUnitBytes`, when
    /// there is one and that saves enough; else alone, in units of
    /// `unitBytes`. Returns the codec written (`dictionaryCodec` or
    /// `codec`); nil when the batch is to be stored as is.
    static func compress(
        _ records: UnsafeRawBufferPointer, recordCount: Int, appendingTo buffer: inout ByteBuffer, unitBytes: Int,
        dictionaryUnitBytes: Int, against dictionary: LZ4DictionaryCompressor?
    ) -> UInt16? {
        if let dictionary, compress(records, recordCount: recordCount, appendingTo: &buffer, unitBytes: dictionaryUnitBytes, dictionary: dictionary) {
            return dictionaryCodec
        }
        return compress(records, recordCount: recordCount, appendingTo: &buffer, unitBytes: unitBytes) ? codec : nil
    }

    // MARK: Reading

    /// Decompresses the stored records area of a compressed batch (codec 1,
    /// one LZ4 block; codec 2, LZ4 units; codec 3, LZ4 units against
    /// `dictionary`, its segment's) into `destination`, room for its
    /// records length.
    static func decompress(
        _ stored: UnsafeRawBufferPointer, of header: BatchHeader, into destination: UnsafeMutableRawPointer, dictionary: LZ4Dictionary? = nil
    ) throws(Defect) {
        var stage = LZ4DictionaryStage()
        try decompress(stored, of: header, into: destination, dictionary: dictionary, stage: &stage)
    }

    /// `decompress`, each unit of codec 3 decompressed after a copy of the
    /// dictionary in `stage` (the fast path), then copied into place.
    static func decompress(
        _ stored: UnsafeRawBufferPointer, of header: BatchHeader, into destination: UnsafeMutableRawPointer, dictionary: LZ4Dictionary?,
        stage: inout LZ4DictionaryStage
    ) throws(Defect) {
        let length = Int(header.recordsLength)
        if header.codecValue == codec || header.codecValue == dictionaryCodec {
            try Table(stored, of: header, dictionary: dictionary).decompressAll(into: destination, stage: &stage)
            return
        }
        guard LZ4Codec.decompress(stored, into: destination, capacity: length) == length else {
            throw Defect(reason: "LZ4 records area does not decompress to its stated length")
        }
    }

    /// The table of a stored area, checked against the batch's record count
    /// and records length (Format.md §5.2): each unit holds at least one
    /// record, one stored byte and one byte, and the sums match.
    struct Table {
        let stored: UnsafeRawBufferPointer
        let count: Int
        /// Where the count is: 0, or after a codec 3 area's dictionary checksum.
        let tableStart: Int
        /// Where the first unit's block starts (after the count and the table).
        let blocksStart: Int
        /// What the blocks were compressed against (codec 3), checked.
        private(set) var dictionary: LZ4Dictionary?

        /// The table of a codec 2 or 3 batch's stored area; a codec 3 one's
        /// recorded checksum must be `dictionary`'s (its segment's).
        init(_ stored: UnsafeRawBufferPointer, of header: BatchHeader, dictionary: LZ4Dictionary?) throws(Defect) {
            let against = header.codecValue == dictionaryCodec
            if against && dictionary == nil {
                throw Defect(reason: "LZ4 units compressed against the segment's dictionary, which is not there")
            }
            try self.init(
                stored, recordCount: Int(header.recordCount), recordsLength: Int(header.recordsLength), dictionary: against ? dictionary : nil)
        }

        /// With `dictionary`, the layout of codec 3.
        init(_ stored: UnsafeRawBufferPointer, recordCount: Int, recordsLength: Int, dictionary: LZ4Dictionary? = nil) throws(Defect) {
            let tableStart = dictionary == nil ? 0 : dictionaryFieldSize
            guard stored.count >= tableStart + 4 + entrySize, let base = stored.baseAddress else {
                throw Defect(reason: "LZ4 units area of \(stored.count) bytes is too short for its table")
            }
            if let dictionary {
                let recorded = base.loadLE(at: 0, as: UInt32.self)
                guard recorded == dictionary.checksum else {
                    throw Defect(
                        reason: "LZ4 units were compressed against a dictionary with checksum \(recorded), not their segment's (\(dictionary.checksum): its first batch)")
                }
            }
            let count = Int(base.loadLE(at: tableStart, as: UInt32.self))
            guard count >= 1, count <= recordCount, count <= (stored.count - tableStart - 4) / entrySize else {
                throw Defect(reason: "LZ4 unit count \(count) is impossible")
            }
            let blocksStart = tableStart + 4 + count * entrySize
            var records = 0
            var storedBytes = 0
            var bytes = 0
            for i in 0..<count {
                let entry = tableStart + 4 + i * entrySize
                let r = Int(base.loadLE(at: entry, as: UInt32.self))
                let s = Int(base.loadLE(at: entry + 4, as: UInt32.self))
                let b = Int(base.loadLE(at: entry + 8, as: UInt32.self))
                guard r >= 1, s >= 1, b >= 1 else {
                    throw Defect(reason: "LZ4 unit \(i) is empty")
                }
                records += r
                storedBytes += s
                bytes += b
            }
            guard records == recordCount, storedBytes == stored.count - blocksStart, bytes == recordsLength else {
                throw Defect(
                    reason: "LZ4 units hold \(records) records in \(storedBytes) stored bytes and \(bytes) bytes; the batch has \(recordCount) records, \(stored.count - blocksStart) stored bytes after the table and a records length of \(recordsLength)")
            }
            self.stored = stored
            self.count = count
            self.tableStart = tableStart
            self.blocksStart = blocksStart
            self.dictionary = dictionary
        }

        /// The unit holding record `index` (0 ≤ index < record count).
        func unit(holding index: Int) -> Unit {
            LZ4Units.unit(holding: index, stored: stored.baseAddress!, tableStart: tableStart, count: count)
        }

        /// Decompresses every unit into `destination` (the records length).
        func decompressAll(into destination: UnsafeMutableRawPointer) throws(Defect) {
            var stage = LZ4DictionaryStage()
            try decompressAll(into: destination, stage: &stage)
        }

        /// Decompresses every unit into `destination` (the records length);
        /// against a dictionary, each in `stage` first.
        func decompressAll(into destination: UnsafeMutableRawPointer, stage: inout LZ4DictionaryStage) throws(Defect) {
            var unit = Unit(firstRecord: 0, records: 0, storedOffset: blocksStart, storedLength: 0, areaOffset: 0, length: 0)
            for i in 0..<count {
                load(i, into: &unit)
                if let dictionary {
                    let (copy, output) = stage.prepare(dictionary, room: unit.length)
                    try staged(against: copy).decompress(unit, into: output)
                    (destination + unit.areaOffset).copyMemory(from: output, byteCount: unit.length)
                } else {
                    try decompress(unit, into: destination + unit.areaOffset)
                }
                unit.firstRecord += unit.records
                unit.storedOffset += unit.storedLength
                unit.areaOffset += unit.length
            }
        }

        /// This table with `copy` (a staged copy of its dictionary,
        /// `LZ4DictionaryStage`) as the bytes its blocks decompress against.
        func staged(against copy: LZ4Dictionary) -> Table {
            var table = self
            table.dictionary = copy
            return table
        }

        /// Decompresses the first `count` bytes of one unit into `destination`
        /// (room for `count`): what a point read needs to reach a record
        /// early in the unit. Returns the bytes written: `count`, or the
        /// unit's length when `count` is not smaller (then as `decompress`).
        func decompress(_ unit: Unit, prefix count: Int, into destination: UnsafeMutableRawPointer) throws(Defect) -> Int {
            if count >= unit.length {
                try decompress(unit, into: destination)
                return unit.length
            }
            let block = UnsafeRawBufferPointer(rebasing: stored[unit.storedOffset..<(unit.storedOffset + unit.storedLength)])
            guard count > 0, LZ4Codec.decompressPrefix(block, into: destination, count: count, dictionary: dictionary?.bytes) == count else {
                throw Self.undecodable(unit)
            }
            return count
        }

        /// Decompresses one unit into `destination` (room for `unit.length` bytes).
        func decompress(_ unit: Unit, into destination: UnsafeMutableRawPointer) throws(Defect) {
            let block = UnsafeRawBufferPointer(rebasing: stored[unit.storedOffset..<(unit.storedOffset + unit.storedLength)])
            guard LZ4Codec.decompress(block, into: destination, capacity: unit.length, dictionary: dictionary?.bytes) == unit.length else {
                throw Self.undecodable(unit)
            }
        }

        /// The defect of a unit whose block does not decompress to its bytes.
        private static func undecodable(_ unit: Unit) -> Defect {
            Defect(reason: "LZ4 unit at stored byte \(unit.storedOffset) does not decompress to its stated \(unit.length) bytes")
        }

        @inline(__always) private func load(_ i: Int, into unit: inout Unit) {
            LZ4Units.load(i, stored: stored.baseAddress!, tableStart: tableStart, into: &unit)
        }
    }

    /// The unit holding record `index` of a batch, found in the unit table of
    /// its stored area at `stored` (the unit count at `tableStart`, `count`
    /// entries after it): the walk a `Table` makes, which checked the table
    /// whole when it was made. It checks nothing itself: a caller with an
    /// unchecked table (a prefetch hint) bounds every offset it gets.
    static func unit(holding index: Int, stored: UnsafeRawPointer, tableStart: Int, count: Int) -> Unit {
        var unit = Unit(firstRecord: 0, records: 0, storedOffset: tableStart + 4 + count * entrySize, storedLength: 0, areaOffset: 0, length: 0)
        for i in 0..<count {
            load(i, stored: stored, tableStart: tableStart, into: &unit)
            if index < unit.firstRecord + unit.records { break }
            unit.firstRecord += unit.records
            unit.storedOffset += unit.storedLength
            unit.areaOffset += unit.length
        }
        return unit
    }

    /// Table entry `i`'s records, stored bytes and bytes, into `unit`.
    @inline(__always) private static func load(_ i: Int, stored: UnsafeRawPointer, tableStart: Int, into unit: inout Unit) {
        let entry = stored + tableStart + 4 + i * entrySize
        unit.records = Int(entry.loadLE(at: 0, as: UInt32.self))
        unit.storedLength = Int(entry.loadLE(at: 4, as: UInt32.self))
        unit.length = Int(entry.loadLE(at: 8, as: UInt32.self))
    }
}
