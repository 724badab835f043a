#ifndef CSYSTEMCALLS_H
#define CSYSTEMCALLS_H

#include <stdint.h>

/// `fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)`:
/// the range reads as zeros afterwards, the file keeps its length.
/// Returns 0, or -1 with errno set.
int eventlog_punch_hole(int fd, int64_t offset, int64_t length);

/// `fallocate(fd, 0, offset, length)`: blocks are allocated for the range
/// (reading as zeros where nothing was written), so later writes there cannot
/// fail for lack of room. Returns 0, or -1 with errno set.
int eventlog_reserve(int fd, int64_t offset, int64_t length);

/// `sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)`: start
/// writeback of the range without waiting. Returns 0, or -1 with errno set.
int eventlog_start_writeback(int fd, int64_t offset, int64_t length);

/// `sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WAIT_BEFORE |
/// SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)`: writes the range's
/// dirty pages and waits until they are on the device (no metadata, no
/// cache flush: not a durability barrier). Returns 0, or -1 with errno set.
int eventlog_wait_writeback(int fd, int64_t offset, int64_t length);

/// `lseek(fd, offset, SEEK_DATA)`: the offset of the first byte at or after
/// `offset` that is not in a hole. Returns it, or -1 with errno set (ENXIO:
/// none; EINVAL where the file system cannot tell, then treat all as data).
int64_t eventlog_seek_data(int fd, int64_t offset);

/// `lseek(fd, offset, SEEK_HOLE)`: the offset of the first hole at or after
/// `offset` (the end of the file counts as one). Returns it, or -1 with errno set.
int64_t eventlog_seek_hole(int fd, int64_t offset);

/// Installs, once per process, the SIGBUS handler behind
/// `eventlog_guarded_touch` (chaining to the handler installed before it for
/// every other SIGBUS). Returns 0, or -1 with errno set.
int eventlog_guard_install(void);

/// Reads one byte of every page of `[bytes, bytes + length)` (a mapped file)
/// under the guard: returns 0 when all could be read (the pages are then in
/// memory), or -1 when reading one raised SIGBUS (the file was truncated
/// under the mapping, the device failed, or a full tmpfs could not supply a
/// page). `eventlog_guard_install` must have been called.
int eventlog_guarded_touch(const void *bytes, int64_t length);

/// Reads one byte of every 64-byte cache line of `[bytes, bytes + length)`
/// (a mapped file) under the guard, so that the lines are in the CPU's
/// caches and the pages mapped: what a scan's read-ahead thread does just
/// ahead of the scan. Returns 0, or -1 when reading raised SIGBUS.
/// `eventlog_guard_install` must have been called.
int eventlog_guarded_read_lines(const void *bytes, int64_t length);

/// `eventlog_crc32c(crc, bytes, length)` under the same guard: stores the
/// checksum in `*result` and returns 0, or returns -1 when reading the bytes
/// raised SIGBUS. The checksum reads every byte anyway, so the guard adds no
/// memory access: this is how hot paths read a whole frame safely.
int eventlog_guarded_crc32c(uint32_t crc, const void *bytes, int64_t length, uint32_t *result);

/// `inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`: a new inotify instance whose
/// reads never block (a waiter polls it first). Returns its descriptor, or
/// -1 with errno set.
int eventlog_inotify_open(void);

/// `inotify_add_watch(fd, path, IN_MODIFY | IN_CREATE | IN_MOVED_TO |
/// IN_DELETE | IN_ONLYDIR)`: watch the directory `path` for a file in it
/// written through `write`/`pwrite` or truncated (not written through a
/// shared mapping: that raises nothing), created, renamed into it or removed. Returns the watch
/// descriptor, or -1 with errno set.
int eventlog_inotify_watch_directory(int fd, const char *path);

/// Reads and drops every event queued on the inotify instance `fd` (`read`
/// into a stack buffer until it fails with EAGAIN; EINTR is retried). Sets
/// `*watch_removed` to 1 when the kernel removed the watch (IN_IGNORED: the
/// directory was deleted or its file system unmounted), else 0. A queue
/// overflow (IN_Q_OVERFLOW) needs nothing: it only says "something changed",
/// and the caller looks at the directory after every drain anyway. Returns
/// 0, or -1 with errno set.
int eventlog_inotify_drain(int fd, int *watch_removed);

/// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`: a counter one thread writes to
/// wake another out of `poll`. Returns its descriptor, or -1 with errno set.
int eventlog_eventfd_open(void);

/// Adds 1 to the eventfd counter (`write` of 8 bytes): a `poll` on it
/// returns. Returns 0, or -1 with errno set. EINTR is retried.
int eventlog_eventfd_signal(int fd);

/// Resets the eventfd counter to 0 (`read` of 8 bytes; EAGAIN, already 0,
/// is success). Returns 0, or -1 with errno set. EINTR is retried.
int eventlog_eventfd_clear(int fd);

/// `poll` on `first` and `second` for reading, for up to `timeout_ms`
/// milliseconds (-1: no limit). Returns a bit mask: 1 when `first` is
/// readable, 2 when `second` is; 0 after the timeout; -1 with errno set
/// (EINTR is returned to the caller, who recomputes the timeout).
int eventlog_poll_two(int first, int second, int timeout_ms);

#endif

#ifndef CSYSTEMCALLS_PREFETCH
#define CSYSTEMCALLS_PREFETCH
/// Asks the CPU to start loading `length` bytes at `bytes` into the cache
/// (one prefetch per 64-byte line they touch, the first and last included
/// however they are aligned), so that a walk over them does not wait on
/// each line in turn. A hint: it never faults.
static inline void eventlog_prefetch(const void *bytes, long length) {
    if (length <= 0) return;
    const char *p = (const char *)((unsigned long)bytes & ~63UL);
    const char *end = (const char *)bytes + length;
    for (; p < end; p += 64) __builtin_prefetch(p, 0, 3);
}
#endif
