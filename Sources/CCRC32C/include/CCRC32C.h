#ifndef CCRC32C_H
#define CCRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) of `length` bytes at
/// `bytes`, continuing from `crc`, the value returned for the bytes before them
/// (0 to start). Pre- and post-inversion are done inside, as in zlib's `crc32`,
/// so `crc(crc(0, a), b) == crc(0, a ++ b)`.
///
/// Uses the SSE4.2 `crc32` instruction on x86-64 or the ARMv8 CRC extension
/// when the CPU has it (checked once, at first use), else the table-driven
/// software form below.
uint32_t eventlog_crc32c(uint32_t crc, const void *bytes, size_t length);

/// The same function, always computed in software (8 tables, 8 bytes a step).
/// It is the reference the tests compare the hardware path against.
uint32_t eventlog_crc32c_software(uint32_t crc, const void *bytes, size_t length);

/// 1 when `eventlog_crc32c` uses CPU instructions, 0 when it uses software.
int eventlog_crc32c_is_hardware_accelerated(void);

#ifdef __cplusplus
}
#endif

#endif
