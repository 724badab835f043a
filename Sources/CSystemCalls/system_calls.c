// Linux system calls that Glibc only declares under _GNU_SOURCE, which the
// Swift importer does not define.
#define _GNU_SOURCE
#include "CSystemCalls.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <poll.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#include <sys/inotify.h>
#endif

int eventlog_punch_hole(int fd, int64_t offset, int64_t length) {
#if defined(__linux__)
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
#else
    errno = EOPNOTSUPP;
    return -1;
#endif
}

int eventlog_reserve(int fd, int64_t offset, int64_t length) {
#if defined(__linux__)
    return fallocate(fd, 0, (off_t)offset, (off_t)length);
#else
    errno = EOPNOTSUPP;
    return -1;
#endif
}

int eventlog_start_writeback(int fd, int64_t offset, int64_t length) {
#if defined(__linux__)
    return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd; (void)offset; (void)length;
    return 0;
#endif
}

int eventlog_wait_writeback(int fd, int64_t offset, int64_t length) {
#if defined(__linux__)
    return sync_file_range(
        fd, (off_t)offset, (off_t)length,
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
#else
    (void)fd; (void)offset; (void)length;
    return 0;
#endif
}

int64_t eventlog_seek_data(int fd, int64_t offset) {
    return (int64_t)lseek(fd, (off_t)offset, SEEK_DATA);
}

int64_t eventlog_seek_hole(int fd, int64_t offset) {
    return (int64_t)lseek(fd, (off_t)offset, SEEK_HOLE);
}

#if defined(__linux__)
int eventlog_inotify_open(void) {
    return inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

int eventlog_inotify_watch_directory(int fd, const char *path) {
    return inotify_add_watch(fd, path, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_ONLYDIR);
}

int eventlog_inotify_drain(int fd, int *watch_removed) {
    // Aligned as the kernel's records are; room for many events a read.
    char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    *watch_removed = 0;
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        if (n == 0) return 0;
        for (char *p = buffer; p < buffer + n;) {
            const struct inotify_event *event = (const struct inotify_event *)p;
            if (event->mask & IN_IGNORED) *watch_removed = 1;
            p += sizeof(struct inotify_event) + event->len;
        }
    }
}

int eventlog_eventfd_open(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

int eventlog_eventfd_signal(int fd) {
    uint64_t one = 1;
    for (;;) {
        if (write(fd, &one, sizeof one) == (ssize_t)sizeof one) return 0;
        if (errno == EINTR) continue;
        // EAGAIN: the counter is at its maximum, so a poll returns anyway.
        if (errno == EAGAIN) return 0;
        return -1;
    }
}

int eventlog_eventfd_clear(int fd) {
    uint64_t value;
    for (;;) {
        if (read(fd, &value, sizeof value) == (ssize_t)sizeof value) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -1;
    }
}
#else
int eventlog_inotify_open(void) { errno = ENOSYS; return -1; }
int eventlog_inotify_watch_directory(int fd, const char *path) { (void)fd; (void)path; errno = ENOSYS; return -1; }
int eventlog_inotify_drain(int fd, int *watch_removed) { (void)fd; *watch_removed = 1; return 0; }
int eventlog_eventfd_open(void) { errno = ENOSYS; return -1; }
int eventlog_eventfd_signal(int fd) { (void)fd; return 0; }
int eventlog_eventfd_clear(int fd) { (void)fd; return 0; }
#endif

int eventlog_poll_two(int first, int second, int timeout_ms) {
    struct pollfd fds[2] = {{.fd = first, .events = POLLIN}, {.fd = second, .events = POLLIN}};
    int n = poll(fds, 2, timeout_ms);
    if (n <= 0) return n;
    return ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) ? 1 : 0) | ((fds[1].revents & (POLLIN | POLLERR | POLLHUP)) ? 2 : 0);
}
