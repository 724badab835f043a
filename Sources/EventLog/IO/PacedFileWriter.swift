/// A file written front to back by a background copy (scavenging's
/// rewrite, a segment merge), paced so that it does not stand between the
/// log's appends and their syncs.
///
/// Bytes collect in `buffer` (a caller may patch what it appended there)
/// and go to the file `chunkBytes` at a time: each chunk is written, then
/// written back with a wait until the device has it
/// (`FileHandle.waitForWriteback`). So one chunk of the copy is in flight
/// at most, never a queue: an append's `fdatasync` issued meanwhile waits
/// for at most that chunk, and the device is idle while the caller makes
/// the next one.
///
/// Measured with the harness's scavenge phase (N = 1M, 13 segments
/// rewritten, one-event appends each synced meanwhile): with writeback
/// started and not waited for, the copy went at the device's full rate
/// and the appends' p99 rose to 3–4× their p99 alone; waiting for each
/// 256 KiB chunk, 1.6–1.8×, for a pass ~30% slower (230–290 MB/s of input).
/// Smaller chunks (128 KiB) slowed the pass more without a steadier p99.
///
/// The pacing applies while `paces` says so (the log's appends are
/// syncing: `GroupCommit.syncedWithin`); otherwise each chunk's writeback
/// is started without waiting, and a copy on an idle log goes at the
/// device's rate.
///
/// `finish` fdatasyncs the file, which then finds nothing left to write
/// but its metadata. Not a durability promise before `finish`.
struct PacedFileWriter: ~Copyable {
    /// The most bytes of the copy written at a time.
    static let chunkBytes = 256 << 10

    let file: FileHandle
    /// Asked before each chunk: true to wait for its writeback.
    let paces: () -> Bool
    /// Bytes not yet written; they start at file offset `flushed`.
    var buffer: ByteBuffer
    /// Bytes written to the file so far.
    private(set) var flushed = 0

    /// Bytes appended so far: written and buffered.
    var count: Int { flushed + buffer.count }

    init(file: FileHandle, paces: @escaping () -> Bool) {
        self.file = file
        self.paces = paces
        buffer = ByteBuffer(capacity: Self.chunkBytes)
    }

    /// Appends `bytes` and writes a chunk when one is full.
    mutating func append(_ bytes: UnsafeRawBufferPointer) throws(IOError) {
        buffer.append(bytes)
        try flushIfFull()
    }

    /// Writes what is buffered when it reaches `chunkBytes` (for callers
    /// that append to `buffer` directly).
    mutating func flushIfFull() throws(IOError) {
        if buffer.count >= Self.chunkBytes { try flush() }
    }

    /// Writes what is buffered, and waits until the device has it when `paces` says so.
    mutating func flush() throws(IOError) {
        guard buffer.count > 0 else { return }
        try file.write(buffer.bytes, at: Int64(flushed))
        if paces() {
            // Everything before this chunk too: chunks written unpaced may still be in flight.
            try file.waitForWriteback(at: 0, length: Int64(flushed + buffer.count))
        } else {
            try file.startWriteback(at: Int64(flushed), length: Int64(buffer.count))
        }
        flushed += buffer.count
        buffer.count = 0
    }

    /// Writes the rest and fdatasyncs the file.
    mutating func finish() throws(IOError) {
        try flush()
        try file.datasync()
    }
}
