#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a stream table run (Format.md §14.1) row by row, without holding
/// the file in memory: it keeps the open block and at most about 64 KiB of
/// finished ones, the fence (16 bytes a block) and the bloom filter (about
/// 10 bits a row).
///
/// The file is written at the path given, from the first byte; `finish`
/// writes the header last and syncs the file's data. Renaming it into place
/// and syncing the directory are the caller's (or use `write(rows:to:in:…)`).
/// A writer dropped without `finish` leaves a file without a valid header;
/// after an I/O error (as opposed to a refused row) what was written is
/// unknown, and the writer is only fit to be dropped.
///
/// One owner, not shared between threads; every call may block on the disk.
struct StreamTableRunWriter: ~Copyable {
    let file: FileHandle
    let from: UInt64
    let to: UInt64
    /// Finished blocks not yet written, then the open block.
    private var output: ByteBuffer
    /// The file offset of `output`'s first byte.
    private var outputOffset = Int64(StreamTableRun.headerSize)
    /// Where the open block starts in `output`; nil when none is open.
    private var blockStart: Int?
    private var blockRows: UInt32 = 0
    private var blockCount: UInt32 = 0
    private var rowCount: UInt64 = 0
    /// One entry per block: first hash, block offset.
    private var fence: ByteBuffer
    private var bloom: BloomFilter
    /// The last row's key, to check the order.
    private var lastHash: UInt64 = 0
    private var lastName: [UInt8] = []

    /// Creates (or truncates) the file at `path`, for a run of the changes
    /// made by the records at positions `[from, to)`. `expectedRows` sizes the
    /// bloom filter: more rows are still found, the filter is only less selective.
    init(path: String, from: UInt64, to: UInt64, expectedRows: Int, modes: CreateModes, faults: StorageFaults?) throws(IOError) {
        guard from <= to else {
            throw IOError(operation: "create a stream table run from position \(from) to \(to) (from after to)", path: path, errno: EINVAL)
        }
        let file = try FileHandle.open(path, create: modes, faults: faults)
        try file.setLength(0)
        self.file = file
        self.from = from
        self.to = to
        output = ByteBuffer(capacity: StreamTableRun.writeChunkBytes + StreamTableRun.targetBlockBytes + StreamTableRow.maxEncodedBytes + 64)
        fence = ByteBuffer(capacity: 0)
        bloom = BloomFilter(expectedKeys: expectedRows)
        lastName.reserveCapacity(Limits.maxStreamNameBytes)
    }

    /// Adds a row. Rows must come in strictly increasing (hash, name bytes)
    /// order and have names of 1 to 255 UTF-8 bytes: a row that breaks
    /// either is refused with an `IOError` of `EINVAL` naming the problem,
    /// and nothing is added (the writer stays usable). Allocates nothing
    /// once the buffers have grown.
    mutating func append(hash: UInt64, row: StreamTableRow) throws(IOError) {
        var name = row.name
        var failure: IOError?
        name.withUTF8 { utf8 in
            do throws(IOError) {
                try appendRow(hash: hash, name: UnsafeRawBufferPointer(utf8)) { row.encode(into: &$0) }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    /// Appends a row already encoded: `encodedRow` is a row's bytes after its
    /// hash (name length, name, fields), as a cursor read and checked them
    /// in another run of this writer's version. A merge copies rows so,
    /// without decoding them.
    mutating func append(hash: UInt64, name: UnsafeRawBufferPointer, encodedRow: UnsafeRawBufferPointer) throws(IOError) {
        try appendRow(hash: hash, name: name) { $0.append(encodedRow) }
    }

    /// Appends a row given as its name's bytes and its fields, encoded in
    /// this writer's version: a merge re-encodes so the rows of an older
    /// version's run. Allocates nothing once the buffers have grown.
    mutating func append(hash: UInt64, name: UnsafeRawBufferPointer, fields: StreamTableRowFields) throws(IOError) {
        try appendRow(hash: hash, name: name) { fields.encode(name: name, into: &$0) }
    }

    private mutating func appendRow(hash: UInt64, name: UnsafeRawBufferPointer, encode: (inout ByteBuffer) -> Void) throws(IOError) {
        if let problem = refusal(hash: hash, name: name) {
            throw IOError(operation: "append to a stream table run: \(problem)", path: file.path, errno: EINVAL)
        }
        if let start = blockStart, hash != lastHash, output.count - start >= StreamTableRun.targetBlockBytes {
            closeBlock(at: start)
            if output.count >= StreamTableRun.writeChunkBytes { try flush() }
        }
        let start: Int
        if let open = blockStart {
            start = open
            guard output.count - start + 8 + StreamTableRow.maxEncodedBytes + StreamTableRun.checksumSize <= Int(UInt32.max) else {
                throw IOError(operation: "append to a stream table run: the rows of hash \(hash) pass 4 GiB, a block's limit", path: file.path, errno: EFBIG)
            }
        } else {
            guard blockCount < UInt32.max else {
                throw IOError(operation: "append to a stream table run: more than \(UInt32.max) blocks", path: file.path, errno: EFBIG)
            }
            start = output.count
            blockStart = start
            blockCount += 1
            fence.appendLE(hash)
            fence.appendLE(UInt64(outputOffset) + UInt64(start))
            output.appendLE(UInt32(0))  // length and row count, set when the block closes
            output.appendLE(UInt32(0))
        }
        output.appendLE(hash)
        encode(&output)
        blockRows += 1
        rowCount += 1
        if bloom.blockCount == 0 { bloom = BloomFilter(blockCount: 1) }
        bloom.insert(hash)
        lastHash = hash
        lastName.removeAll(keepingCapacity: true)
        lastName.append(contentsOf: name)
    }

    /// Why a row cannot come next; nil when it can.
    private func refusal(hash: UInt64, name: UnsafeRawBufferPointer) -> String? {
        let count = name.count
        guard count >= 1, count <= Limits.maxStreamNameBytes else {
            return "a stream name must be 1 to \(Limits.maxStreamNameBytes) UTF-8 bytes, not \(count)"
        }
        guard rowCount > 0 else { return nil }
        let order = lastName.withUnsafeBytes { StreamTableRun.compare(lastHash, $0, hash, name) }
        guard order < 0 else {
            let last = String(decoding: lastName, as: UTF8.self)
            return "rows must come in strictly increasing (hash, name) order, but (\(hash), \"\(String(decoding: name, as: UTF8.self))\") comes after (\(lastHash), \"\(last)\")"
        }
        return nil
    }

    /// Sets the open block's length and row count and appends its checksum.
    private mutating func closeBlock(at start: Int) {
        let length = output.count - start + StreamTableRun.checksumSize
        output.base.storeLE(UInt32(length), at: start)
        output.base.storeLE(blockRows, at: start + 4)
        output.appendLE(CRC32C.checksum(output.base + start, count: length - StreamTableRun.checksumSize))
        blockStart = nil
        blockRows = 0
    }

    /// Writes the buffered bytes (no block open).
    private mutating func flush() throws(IOError) {
        guard output.count > 0 else { return }
        try file.write(output.bytes, at: outputOffset)
        outputOffset += Int64(output.count)
        output.count = 0
        output.trim(to: 2 * StreamTableRun.writeChunkBytes)
    }

    /// Writes the last block, the fence, the bloom filter and then the
    /// header, and syncs the file's data (`fdatasync`).
    consuming func finish() throws(IOError) {
        if let start = blockStart { closeBlock(at: start) }
        let fenceOffset = UInt64(outputOffset) + UInt64(output.count)
        output.append(fence.bytes)
        output.appendLE(CRC32C.checksum(fence.bytes))
        let bloomOffset = UInt64(outputOffset) + UInt64(output.count)
        // An empty run keeps no filter, whatever it was sized for.
        let bloomBlocks = rowCount == 0 ? 0 : bloom.blockCount
        let bloomBytes = bloomBlocks * BloomFilter.blockBytes
        let bloomCRC = bloom.bytes.withUnsafeBytes { raw in
            let filter = UnsafeRawBufferPointer(rebasing: raw[0..<bloomBytes])
            output.append(filter)
            return CRC32C.checksum(filter)
        }
        output.appendLE(bloomCRC)
        try flush()
        var header = ByteWriter()
        header.le(Magic.streamTableRun)
        header.le(StreamTableRun.version)
        header.le(UInt16(0))
        header.le(blockCount)
        header.le(rowCount)
        header.le(from)
        header.le(to)
        header.le(fenceOffset)
        header.le(bloomOffset)
        header.le(UInt32(bloomBlocks))
        header.appendChecksum()
        try file.write(header.bytes, at: 0)
        try file.datasync()
    }

    /// Writes `rows` (in strictly increasing (hash, name) order) as the run
    /// `name` in `directory`: to `name.tmp`, synced, then renamed over `name`,
    /// and the directory synced. On failure the temporary file is removed
    /// when it can be, and `name` is left as it was.
    static func write(
        rows: some Sequence<(UInt64, StreamTableRow)>, to name: String, in directory: DirectoryOperations,
        from: UInt64, to: UInt64, expectedRows: Int
    ) throws(IOError) {
        let temporary = name + ".tmp"
        do throws(IOError) {
            var writer = try StreamTableRunWriter(
                path: directory.file(temporary), from: from, to: to, expectedRows: expectedRows, modes: directory.modes, faults: directory.faults)
            for (hash, row) in rows { try writer.append(hash: hash, row: row) }
            try writer.finish()
            try directory.rename(temporary, to: name)
        } catch {
            try? directory.remove(temporary)
            throw error
        }
    }
}
