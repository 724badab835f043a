// Counting wrappers around glibc's allocator. Defined in the executable (or
// test binary) that links this target, they take the place of the C
// library's functions for every shared library in the process, and forward
// to glibc's own entry points (__libc_malloc & co.), so the counting adds one
// relaxed atomic increment per call and changes nothing else.
#include "CMallocCounter.h"

#if defined(__GLIBC__)
#include <malloc.h>
void malloc_counter_trim(void) { malloc_trim(0); }
#else
void malloc_counter_trim(void) {}
#endif

#if defined(__linux__) && defined(__GLIBC__)
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Atomic uint64_t allocations;
static __thread uint64_t thread_allocations;

static inline void count(void) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    thread_allocations++;
}

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { count(); return __libc_realloc(p, size); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    count();
    void *p = __libc_memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

uint64_t malloc_counter_allocations(void) { return atomic_load_explicit(&allocations, memory_order_relaxed); }
uint64_t malloc_counter_thread_allocations(void) { return thread_allocations; }
int malloc_counter_active(void) { return 1; }
#else
uint64_t malloc_counter_allocations(void) { return 0; }
uint64_t malloc_counter_thread_allocations(void) { return 0; }
int malloc_counter_active(void) { return 0; }
#endif
