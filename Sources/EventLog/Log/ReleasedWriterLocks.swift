/// The writer locks still held by logs this process released without
/// `close()`.
///
/// A log released without `close()` is left as after a crash, but its
/// background work already under way (index files written on the index
/// writer's queue, a stream table merge) runs to its end, and holds the
/// log's writer lock (`eventlog.lock`) until then, so that no other writer
/// changes the files it writes (`SegmentSet.scheduleIndexWrite`,
/// `StreamIndex.hold(whileMerging:)`). An open in the same process that
/// comes meanwhile would otherwise find the lock taken and, after its
/// 100 ms of retries, refuse the log as open in another process.
///
/// So the released log notes its lock here (`noteReleased`, from
/// `BatchLog`'s deinit), and `Opener.lockForWriting` waits on for a lock
/// this table says such a log still holds, up to `maximumWait`: that work is
/// bounded and ends by itself. An entry refers to the lock's file handle
/// weakly: the handle's release (its descriptor closed: the lock is free)
/// ends the wait, and an entry whose handle is gone counts for nothing.
///
/// Thread-safe: one lock over the table.
enum ReleasedWriterLocks {
    /// How long an open waits for the background work of a log released
    /// without `close()` before it refuses the log as locked.
    static let maximumWait: Duration = .seconds(30)

    private struct Entry {
        weak var lock: FileHandle?
    }

    private static let table = Mutex<[FileIdentity: Entry]>([:])

    /// Notes that `lock`, the writer lock of a log this process released
    /// without `close()`, stays held until its background work ends.
    static func noteReleased(_ lock: FileHandle) {
        guard let identity = try? lock.identity() else { return }
        table.withLock { entries in
            entries = entries.filter { $0.value.lock != nil }
            entries[identity] = Entry(lock: lock)
        }
    }

    /// True when the lock file `identity` names is held by a log this
    /// process released without `close()` (its background work still runs).
    static func holds(_ identity: FileIdentity) -> Bool {
        table.withLock { entries in
            if entries[identity]?.lock != nil { return true }
            entries[identity] = nil
            return false
        }
    }
}
