import Dispatch

/// Starts writeback of what the writer wrote (`FileHandle.startWriteback`,
/// `sync_file_range` with `SYNC_FILE_RANGE_WRITE`) on a thread of its own,
/// off the append path.
///
/// The call submits the pages' I/O in its caller's context (ext4 walks and
/// writes them there): about 4 µs for each megabyte written on this
/// project's machine, 40 ns an event of the benchmark workload, which the
/// appending thread used to pay. It promises no durability, so nothing waits
/// for it: `sync()`, the interval flusher and `.always` appends still call
/// `fdatasync`. Writeback started late, or not at all, only leaves more for
/// that sync to write.
///
/// A failure (a write error the submission reports) stops the writer, as a
/// failed sync does (`onFailure`): the next append, sync or close fails with
/// `writerStopped`. Without the wait flag the call does not consume the
/// file's error state, so the next `fdatasync` still reports the error too.
///
/// ## Concurrency
/// Work runs in order on one serial Dispatch queue (not the cooperative
/// pool); each item keeps its `FileHandle` open until it ran. Thread-safe.
final class WritebackQueue: Sendable {
    private let queue = DispatchQueue(label: "EventLog.writeback")
    private let onFailure: @Sendable (String) -> Void

    init(onFailure: @escaping @Sendable (String) -> Void) {
        self.onFailure = onFailure
    }

    /// Queues writeback of `[offset, offset + length)` of `file`.
    func start(_ file: FileHandle, at offset: Int64, length: Int64) {
        let onFailure = self.onFailure
        queue.async {
            do throws(IOError) { try file.startWriteback(at: offset, length: length) } catch { onFailure(error.description) }
        }
    }

    /// Waits for every writeback queued so far to have been started.
    func drain() { queue.sync {} }
}
