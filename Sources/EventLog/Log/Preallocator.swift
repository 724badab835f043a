import class Foundation.NSCondition
import class Foundation.Thread

/// Writes zeros ahead of the writer in the active segment and syncs them, off
/// the append path, so that a durable append overwrites blocks that are
/// already allocated: its `fdatasync` then commits data only, no block
/// allocation (about half the latency of appending into a hole). Zeros read
/// as the end of the data (Format.md §4), so a prepared region is never
/// mistaken for events.
///
/// Used under `.always` durability only: elsewhere syncs are rare and the
/// zeros would only cost write bandwidth and disk space.
///
/// Safety: the thread only ever writes zeros at or beyond the end the writer
/// has declared (`willWrite`), and the writer waits before writing into a
/// region the thread is zeroing. Thread-safe.
final class Preallocator: @unchecked Sendable {
    /// Keep at least this much prepared ahead of the writer.
    static let lowWater = 4 << 20
    /// Zeros written per step.
    static let chunk = 1 << 20

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var file: FileHandle?
    private var capacity = 0
    private var preparedEnd = 0
    private var writerEnd = 0
    private var claimed: Range<Int>?
    private var stopping = false
    private var stopped = false

    /// Called when the thread's own sync fails: the writer must stop, since
    /// the kernel reports a write error on a file once, to whichever sync
    /// comes first, and the writer's data may be what failed.
    private let onSyncFailure: @Sendable (String) -> Void

    /// Starts the background thread on the active segment.
    init(file: FileHandle, capacity: Int, dataEnd: Int, onSyncFailure: @escaping @Sendable (String) -> Void) {
        self.onSyncFailure = onSyncFailure
        self.file = file
        self.capacity = capacity
        self.writerEnd = dataEnd
        self.preparedEnd = dataEnd
        let thread = Thread { [self] in self.run() }
        thread.name = "EventLog.preallocator"
        thread.start()
    }

    /// Called by the writer before it writes up to `end`: waits while that
    /// region is being zeroed, then declares it the writer's.
    func willWrite(upTo end: Int) {
        condition.lock()
        while let claimed, claimed.lowerBound < end { condition.wait() }
        if end > writerEnd { writerEnd = end }
        // Wake the zeroing thread only when it has work now (its loop's
        // condition): not at every append, which cost each a context switch.
        if wouldPrepare { condition.broadcast() }
        condition.unlock()
    }

    /// Moves to a new active segment (after a roll or a grow).
    /// True when the zeroing thread would zero a chunk now (guarded by `condition`).
    private var wouldPrepare: Bool {
        let start = max(preparedEnd, writerEnd)
        return file != nil && start < capacity && start < writerEnd + Self.lowWater
    }

    func switchTo(file: FileHandle, capacity: Int, dataEnd: Int) {
        condition.lock()
        while claimed != nil { condition.wait() }
        self.file = file
        self.capacity = capacity
        writerEnd = dataEnd
        preparedEnd = dataEnd
        condition.broadcast()
        condition.unlock()
    }

    /// Stops the thread and waits for it to finish its current step.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    private func run() {
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunk, alignment: 4096)
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        defer { zeros.deallocate() }
        condition.lock()
        while !stopping {
            let start = max(preparedEnd, writerEnd)
            guard let file, start < capacity, start < writerEnd + Self.lowWater else {
                condition.wait()
                continue
            }
            // Claim a region wholly past the writer: it never writes there
            // without waiting for the claim to end.
            let end = min(capacity, start + Self.chunk)
            claimed = start..<end
            condition.unlock()
            var ok = true
            do {
                try file.write(UnsafeRawBufferPointer(rebasing: zeros[0..<(end - start)]), at: Int64(start))
            } catch {
                // Only an optimisation (a full disk, say): appends still work, as into a hole.
                ok = false
            }
            if ok {
                do { try file.datasync() } catch {
                    ok = false
                    onSyncFailure(error.description)
                }
            }
            condition.lock()
            claimed = nil
            if ok, self.file === file { preparedEnd = max(preparedEnd, end) }
            if !ok { preparedEnd = capacity }  // give up on this segment
            condition.broadcast()
        }
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
