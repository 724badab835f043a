// CRC32C with run-time selection of the CPU instructions.
//
// No compiler flags are needed: the hardware functions carry per-function
// `target` attributes, and they are only called after the CPU was asked.
#include "CCRC32C.h"

#include <string.h>

#define POLY 0x82F63B78u

// ---------------------------------------------------------------- software

static uint32_t table[8][256];
static int table_ready = 0;

static void build_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int t = 1; t < 8; t++) {
            c = table[0][c & 0xFF] ^ (c >> 8);
            table[t][n] = c;
        }
    }
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t eventlog_crc32c_software(uint32_t crc, const void *bytes, size_t length) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) build_table();  // idempotent: a race builds the same table twice
    const uint8_t *p = (const uint8_t *)bytes;
    uint32_t c = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        // Little-endian hosts only (x86-64, AArch64 Linux).
        uint32_t lo = (uint32_t)word ^ c;
        uint32_t hi = (uint32_t)(word >> 32);
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
            table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        length -= 8;
    }
    while (length--) c = table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

// ------------------------------------------------- combining (shift tables)
//
// The hardware path runs three independent CRC streams over three adjacent
// blocks and joins them: the CRC register of block 0, advanced over the
// length of block 1 as if it were zeros, XOR block 1's register (started at
// 0), is the register over both (the CRC is linear over GF(2)). Advancing
// over n zero bytes is a 32x32 bit matrix, applied with four 256-entry
// tables, one per byte of the register (as in Mark Adler's crc32c.c).

// The blocks: three of `LONG` bytes while at least that much is left, then
// three of `SHORT`, then one stream for the rest. A 100-event frame of the
// benchmark workload (~22 KB) takes one LONG round and a few SHORT ones.
#define LONG 4096
#define SHORT 256

static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];

// `mat` applied to `vec`: the XOR of the columns whose bit is set in `vec`.
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1) sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_times(mat, mat[n]);
}

// The operator that advances a register over `length` zero bytes (a power of two).
static void zeros_operator(uint32_t *even, size_t length) {
    uint32_t odd[32];
    odd[0] = POLY;  // one zero bit
    uint32_t row = 1;
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_square(even, odd);  // two zero bits
    gf2_square(odd, even);  // four
    // Each square doubles: the first gives one zero byte.
    do {
        gf2_square(even, odd);
        length >>= 1;
        if (length == 0) return;
        gf2_square(odd, even);
        length >>= 1;
    } while (length);
    memcpy(even, odd, sizeof odd);
}

static void build_shift(uint32_t shift[4][256], size_t length) {
    uint32_t op[32];
    zeros_operator(op, length);
    for (uint32_t n = 0; n < 256; n++) {
        shift[0][n] = gf2_times(op, n);
        shift[1][n] = gf2_times(op, n << 8);
        shift[2][n] = gf2_times(op, n << 16);
        shift[3][n] = gf2_times(op, n << 24);
    }
}

static inline uint32_t shifted(uint32_t shift[4][256], uint32_t crc) {
    return shift[0][crc & 0xFF] ^ shift[1][(crc >> 8) & 0xFF] ^ shift[2][(crc >> 16) & 0xFF] ^ shift[3][crc >> 24];
}

// Built when the library is loaded, before any thread can use them.
__attribute__((constructor))
static void build_shift_tables(void) {
    build_shift(shift_long, LONG);
    build_shift(shift_short, SHORT);
}

// ---------------------------------------------------------------- hardware
//
// The CRC instruction has a latency of 3 cycles and a throughput of one a
// cycle: one stream uses a third of it (~8 bytes every 3 cycles). Three
// streams over adjacent blocks keep it busy; joining them costs two table
// shifts per round.

#if defined(__x86_64__)
#include <cpuid.h>
#define CRC_TARGET __attribute__((target("sse4.2")))
#define CRC64(c, word) __builtin_ia32_crc32di((c), (word))
#define CRC8(c, byte) __builtin_ia32_crc32qi((uint32_t)(c), (byte))

static int cpu_has_crc(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx & bit_SSE4_2) != 0;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define CRC_TARGET __attribute__((target("crc")))
#define CRC64(c, word) __builtin_arm_crc32cd((uint32_t)(c), (word))
#define CRC8(c, byte) __builtin_arm_crc32cb((uint32_t)(c), (byte))

static int cpu_has_crc(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#endif

#if defined(CRC64)
static inline uint64_t load64(const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return word;
}

// Three streams over three adjacent blocks of `block` bytes, joined into `crc`.
#define THREE_WAY(block, shift)                                        \
    while (length >= 3 * (block)) {                                    \
        uint64_t c1 = 0, c2 = 0;                                       \
        const uint8_t *end = p + (block);                              \
        do {                                                           \
            c0 = CRC64(c0, load64(p));                                 \
            c1 = CRC64(c1, load64(p + (block)));                       \
            c2 = CRC64(c2, load64(p + 2 * (block)));                   \
            p += 8;                                                    \
        } while (p < end);                                             \
        c0 = shifted(shift, (uint32_t)c0) ^ (uint32_t)c1;              \
        c0 = shifted(shift, (uint32_t)c0) ^ (uint32_t)c2;              \
        p += 2 * (block);                                              \
        length -= 3 * (block);                                         \
    }

CRC_TARGET
static uint32_t crc32c_hardware(uint32_t crc, const void *bytes, size_t length) {
    const uint8_t *p = (const uint8_t *)bytes;
    uint64_t c0 = (uint32_t)~crc;
    THREE_WAY(LONG, shift_long)
    THREE_WAY(SHORT, shift_short)
    while (length >= 8) {
        c0 = CRC64(c0, load64(p));
        p += 8;
        length -= 8;
    }
    uint32_t c = (uint32_t)c0;
    while (length--) c = CRC8(c, *p++);
    return ~c;
}
#else
static uint32_t crc32c_hardware(uint32_t crc, const void *bytes, size_t length) {
    return eventlog_crc32c_software(crc, bytes, length);
}
static int cpu_has_crc(void) { return 0; }
#endif

// 0 = not yet asked, 1 = software, 2 = hardware.
static int selected = 0;

static int select_implementation(void) {
    int s = cpu_has_crc() ? 2 : 1;
    __atomic_store_n(&selected, s, __ATOMIC_RELAXED);
    return s;
}

uint32_t eventlog_crc32c(uint32_t crc, const void *bytes, size_t length) {
    int s = __atomic_load_n(&selected, __ATOMIC_RELAXED);
    if (__builtin_expect(s == 0, 0)) s = select_implementation();
    return s == 2 ? crc32c_hardware(crc, bytes, length) : eventlog_crc32c_software(crc, bytes, length);
}

int eventlog_crc32c_is_hardware_accelerated(void) {
    int s = __atomic_load_n(&selected, __ATOMIC_RELAXED);
    if (s == 0) s = select_implementation();
    return s == 2;
}
