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

// ---------------------------------------------------------------- hardware

#if defined(__x86_64__)
#include <cpuid.h>

__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const void *bytes, size_t length) {
    const uint8_t *p = (const uint8_t *)bytes;
    uint64_t c = (uint32_t)~crc;
    // One stream: the instruction's latency bounds it at about 8 bytes every
    // 3 cycles (~8 GB/s), well above what a scan of the log needs.
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

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

__attribute__((target("crc")))
static uint32_t crc32c_hardware(uint32_t crc, const void *bytes, size_t length) {
    const uint8_t *p = (const uint8_t *)bytes;
    uint32_t c = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_arm_crc32cd(c, word);
        p += 8;
        length -= 8;
    }
    while (length--) c = __builtin_arm_crc32cb(c, *p++);
    return ~c;
}

static int cpu_has_crc(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }

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
