// A guard for reads of mapped files: a SIGBUS raised while a guarded routine
// of this file runs (a page of a file truncated by someone else, or one the
// device cannot read, or a hole a full tmpfs cannot supply) makes that
// routine return an error instead of killing the process.
//
// Only C frames are jumped over (the routine's own): no Swift frame ever is.
// A SIGBUS anywhere else goes to the handler installed before this one, or
// to the default action (the process dies, as without this guard).
#define _GNU_SOURCE
#include "CSystemCalls.h"
#include "CCRC32C.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>

// The jump target of the guarded routine running on this thread, if any.
// Initial-exec TLS: reading it in the handler calls nothing.
static __thread sigjmp_buf *guard_target __attribute__((tls_model("initial-exec")));

static struct sigaction previous_action;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_result = -1;

static void on_sigbus(int signal_number, siginfo_t *info, void *context) {
    sigjmp_buf *target = guard_target;
    if (target != NULL) {
        guard_target = NULL;
        siglongjmp(*target, 1);
    }
    // Not a guarded read: whoever handled SIGBUS before, or the default.
    if (previous_action.sa_flags & SA_SIGINFO) {
        if (previous_action.sa_sigaction != NULL) {
            previous_action.sa_sigaction(signal_number, info, context);
            return;
        }
    } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN &&
               previous_action.sa_handler != NULL) {
        previous_action.sa_handler(signal_number);
        return;
    }
    // The default action: returning re-runs the faulting instruction, which
    // faults again and now ends the process as it would have.
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGBUS, &fallback, NULL);
    if (info != NULL && info->si_code <= 0) raise(SIGBUS);  // sent by kill(): no instruction to re-run
}

static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    install_result = sigaction(SIGBUS, &action, &previous_action);
}

int eventlog_guard_install(void) {
    pthread_once(&install_once, install);
    return install_result;
}

/// Reads the first byte of `[bytes, bytes + length)`, the first byte of
/// every `stride`-aligned block after it, and the last byte, under the
/// guard (`stride` a power of two). Inlined into both callers, each with its
/// constant stride.
static inline int guarded_read_every(const void *bytes, int64_t length, int64_t stride) {
    if (length <= 0) return 0;
    sigjmp_buf target;
    // 0: no signal mask saved or restored (cheap); the handler runs with
    // SA_NODEFER, so SIGBUS is not left blocked after the jump.
    if (sigsetjmp(target, 0) != 0) return -1;
    guard_target = &target;
    const volatile unsigned char *p = (const volatile unsigned char *)bytes;
    unsigned char sink = 0;
    sink ^= p[0];
    // Each load waits for nothing after it: the CPU keeps many misses in flight.
    int64_t next = stride - ((intptr_t)bytes & (stride - 1));
    for (int64_t at = next; at < length; at += stride) sink ^= p[at];
    sink ^= p[length - 1];
    guard_target = NULL;
    (void)sink;
    return 0;
}

int eventlog_guarded_touch(const void *bytes, int64_t length) {
    return guarded_read_every(bytes, length, 4096);
}

int eventlog_guarded_read_lines(const void *bytes, int64_t length) {
    return guarded_read_every(bytes, length, 64);
}

int eventlog_guarded_crc32c(uint32_t crc, const void *bytes, int64_t length, uint32_t *result) {
    sigjmp_buf target;
    if (sigsetjmp(target, 0) != 0) return -1;
    guard_target = &target;
    uint32_t value = length > 0 ? eventlog_crc32c(crc, bytes, (size_t)length) : crc;
    guard_target = NULL;
    *result = value;
    return 0;
}
