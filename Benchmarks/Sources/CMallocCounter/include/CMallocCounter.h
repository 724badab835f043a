#ifndef CMALLOCCOUNTER_H
#define CMALLOCCOUNTER_H

#include <stdint.h>

/// Calls to malloc, calloc, realloc, posix_memalign, aligned_alloc and
/// memalign made by the whole process (all threads) so far. Zero when the
/// counting wrappers are not in effect (not glibc).
uint64_t malloc_counter_allocations(void);

/// The same, counting only the calling thread's calls.
uint64_t malloc_counter_thread_allocations(void);

/// True when the counting wrappers replace the C library's allocator.
int malloc_counter_active(void);

/// Returns free heap memory to the system (glibc `malloc_trim(0)`), so that
/// a peak-RSS reset starts from what is in use.
void malloc_counter_trim(void);

#endif
