/*
 * checksum.h - the one checksum of the on-media format: XXH3-64 (libxxhash).
 * Fast enough to checksum every log record on the durable path (tens of
 * GB/s), and the same function hashes directory names.
 */
#ifndef CAIRN_UTIL_CHECKSUM_H
#define CAIRN_UTIL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>
#if defined(__x86_64__) && defined(CAIRN_XXH_DISPATCH)
/* The same functions, with the vector unit the processor has (AVX2,
 * AVX-512) chosen when first called: libxxhash itself is built for the
 * baseline (SSE2), at a third of the speed on a 4 KiB record.  Where the
 * header is missing (CMakeLists.txt looks), the baseline it is. */
#include <xxh_x86dispatch.h>
#endif

static inline uint64_t checksum64(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

static inline uint64_t checksum64_seeded(const void *p, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, len, seed);
}

/* Checksum of a structure whose last 8 bytes hold the checksum itself. */
static inline uint64_t checksum_struct(const void *p, size_t size)
{
	return XXH3_64bits(p, size - sizeof(uint64_t));
}

#endif
