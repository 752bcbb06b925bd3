/*
 * alloc.c - bitmap allocators (tier blocks, inode numbers).
 *
 * Owns: the in-memory copy of one allocation bitmap, its free counter and
 * next-fit cursor; every change is mirrored into the bitmap blocks in the
 * cache, which are marked dirty for the next checkpoint.
 * May call: the cache.
 *
 * On-media layout: unit u is bit (u % 8) of byte (u / 8) of the bitmap
 * region, i.e. bit u % 64 of the little-endian u64 word u / 64; bitmap
 * block k covers units [k * 32768, (k + 1) * 32768).  1 = in use.  mkfs
 * sets the padding bits past nunits to 1.
 *
 * Atomicity: the cache buffer of a bitmap block is obtained before either
 * copy changes, so a failed cache_get leaves both copies as they were.  A
 * run handed out never crosses a bitmap block (one buffer per call); the
 * caller asks again with hint = end of the run and gets the continuation.
 */
#include "fs/alloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fs/cache.h"
#include "fs/format.h"

#define UNITS_PER_BLOCK ((uint64_t)FS_BLOCK_SIZE * 8)

struct alloc {
	struct cache *c;
	uint64_t bstart, bblocks;
	uint64_t nunits, first;
	uint64_t *bits; /* 1 = used; units < first and >= nunits read as used */
	uint64_t nwords;
	uint64_t nfree;  /* free units in [first, nunits) */
	uint64_t cursor; /* next-fit position */
	/* Quarantine (tier blocks): see alloc_set_quarantine. */
	int quarantine;
	struct qrun *fresh, *sealed; /* freed after / before the last seal */
	size_t nfresh, nsealed, capfresh, capsealed;
};

struct qrun {
	uint64_t start, n;
};

static inline bool bit_get(const uint64_t *bits, uint64_t u)
{
	return (bits[u >> 6] >> (u & 63)) & 1;
}

/* Mask of bits [lo, hi) of a word, 0 <= lo < hi <= 64. */
static inline uint64_t word_mask(unsigned lo, unsigned hi)
{
	uint64_t m = hi == 64 ? ~0ull : (1ull << hi) - 1;
	return m & (~0ull << lo);
}

/* First unit >= from (and < end) whose bit equals want, or end. */
static uint64_t find_bit(const uint64_t *bits, uint64_t from, uint64_t end, bool want)
{
	if (from >= end)
		return end;
	uint64_t w = from >> 6, wend = (end + 63) >> 6;
	uint64_t flip = want ? 0 : ~0ull;
	uint64_t x = (bits[w] ^ flip) & (~0ull << (from & 63));
	while (!x) {
		if (++w >= wend)
			return end;
		x = bits[w] ^ flip;
	}
	uint64_t r = (w << 6) + (uint64_t)__builtin_ctzll(x);
	return r < end ? r : end;
}

/* Sets or clears [start, start+n) in a word array; returns bits changed. */
static uint64_t bits_apply(uint64_t *bits, uint64_t start, uint64_t n, bool set)
{
	uint64_t changed = 0, u = start, end = start + n;
	while (u < end) {
		unsigned lo = u & 63;
		unsigned hi = (end - (u - lo)) >= 64 ? 64 : (unsigned)(end - (u - lo));
		uint64_t m = word_mask(lo, hi);
		uint64_t *w = &bits[u >> 6];
		uint64_t before = *w;
		*w = set ? (before | m) : (before & ~m);
		changed += (uint64_t)__builtin_popcountll(before ^ *w);
		u = (u - lo) + hi;
	}
	return changed;
}

/* Applies a change to both copies.  [start, start+n) lies in one bitmap
 * block.  Returns 0 or -errno (nothing changed). */
static int update_one_block(struct alloc *a, uint64_t start, uint64_t n, bool set)
{
	uint64_t blk = start / UNITS_PER_BLOCK;
	struct buf *b;
	int err = cache_get(a->c, a->bstart + blk, &b);
	if (err)
		return err;
	uint64_t changed = bits_apply(a->bits, start, n, set);
	bits_apply((uint64_t *)b->data, start - blk * UNITS_PER_BLOCK, n, set);
	cache_mark_dirty(a->c, b);
	cache_put(a->c, b);
	if (set)
		a->nfree -= changed;
	else
		a->nfree += changed;
	return 0;
}

static int check_geometry(uint64_t bitmap_blocks, uint64_t nunits)
{
	if (nunits == 0 || bitmap_blocks == 0)
		return -EINVAL;
	if (bitmap_blocks > UINT64_MAX / UNITS_PER_BLOCK ||
	    bitmap_blocks * UNITS_PER_BLOCK < nunits)
		return -EINVAL;
	return 0;
}

/* Loads the media bitmap into a->bits. */
static int load_bits(struct alloc *a)
{
	uint64_t need_blocks = (a->nunits + UNITS_PER_BLOCK - 1) / UNITS_PER_BLOCK;
	const uint64_t words_per_block = FS_BLOCK_SIZE / 8;
	for (uint64_t k = 0; k < need_blocks; k++) {
		struct buf *b;
		int err = cache_get(a->c, a->bstart + k, &b);
		if (err)
			return err;
		uint64_t w0 = k * words_per_block;
		uint64_t nw = a->nwords - w0 < words_per_block ? a->nwords - w0 : words_per_block;
		memcpy(a->bits + w0, b->data, nw * 8);
		cache_put(a->c, b);
	}
	return 0;
}

int alloc_open(struct alloc **out, struct cache *c, uint64_t bitmap_start, uint64_t bitmap_blocks,
               uint64_t nunits, uint64_t first_unit)
{
	int err = check_geometry(bitmap_blocks, nunits);
	if (err)
		return err;
	if (first_unit > nunits)
		return -EINVAL;
	struct alloc *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->c = c;
	a->bstart = bitmap_start;
	a->bblocks = bitmap_blocks;
	a->nunits = nunits;
	a->first = first_unit;
	a->nwords = (nunits + 63) / 64;
	a->bits = calloc(a->nwords, 8);
	if (!a->bits) {
		free(a);
		return -ENOMEM;
	}
	err = load_bits(a);
	if (err) {
		alloc_close(a);
		return err;
	}
	/* Reserved and padding units read as used in memory only, so that
	 * searches skip them; the media bits are never touched for them. */
	if (nunits & 63)
		a->bits[a->nwords - 1] |= ~0ull << (nunits & 63);
	bits_apply(a->bits, 0, first_unit, true);
	uint64_t used = 0;
	for (uint64_t w = 0; w < a->nwords; w++)
		used += (uint64_t)__builtin_popcountll(a->bits[w]);
	uint64_t total_bits = a->nwords * 64;
	a->nfree = total_bits - used;
	a->cursor = first_unit;
	*out = a;
	return 0;
}

void alloc_close(struct alloc *a)
{
	if (!a)
		return;
	free(a->bits);
	free(a->fresh);
	free(a->sealed);
	free(a);
}

/* First free unit at or after from, wrapping to first; nunits if none. */
static uint64_t find_free(const struct alloc *a, uint64_t from)
{
	uint64_t u = find_bit(a->bits, from, a->nunits, false);
	if (u < a->nunits)
		return u;
	u = find_bit(a->bits, a->first, from, false);
	return u < from ? u : a->nunits;
}

int alloc_run(struct alloc *a, uint64_t hint, uint64_t want, uint64_t *start, uint64_t *got)
{
	if (want == 0)
		return -EINVAL;
	if (a->nfree == 0)
		return -ENOSPC;
	uint64_t from = (hint >= a->first && hint < a->nunits) ? hint : a->cursor;
	uint64_t s = find_free(a, from);
	if (s >= a->nunits)
		return -ENOSPC; /* nfree disagreed with the bits: trust the bits */
	/* The run stops at the first used unit, at want, and at the end of
	 * this bitmap block (see the top of the file). */
	uint64_t blk_end = (s / UNITS_PER_BLOCK + 1) * UNITS_PER_BLOCK;
	uint64_t limit = blk_end;
	if (limit > a->nunits)
		limit = a->nunits;
	if (want < limit - s)
		limit = s + want;
	uint64_t e = find_bit(a->bits, s, limit, true);
	int err = update_one_block(a, s, e - s, true);
	if (err)
		return err;
	a->cursor = e < a->nunits ? e : a->first;
	*start = s;
	*got = e - s;
	return 0;
}

int alloc_take(struct alloc *a, uint64_t unit)
{
	if (unit < a->first || unit >= a->nunits)
		return -EINVAL;
	if (bit_get(a->bits, unit))
		return -EEXIST;
	return update_one_block(a, unit, 1, true);
}

/* Holding changes the in-memory copy alone: the bitmap block, which the
 * next checkpoint writes, never hears of a unit held. */
int alloc_hold(struct alloc *a, uint64_t unit)
{
	if (unit < a->first || unit >= a->nunits)
		return -EINVAL;
	if (bit_get(a->bits, unit))
		return -EEXIST;
	a->nfree -= bits_apply(a->bits, unit, 1, true);
	return 0;
}

void alloc_unhold(struct alloc *a, uint64_t unit)
{
	if (unit >= a->first && unit < a->nunits)
		a->nfree += bits_apply(a->bits, unit, 1, false);
}

static int qpush(struct qrun **v, size_t *n, size_t *cap, uint64_t start, uint64_t len)
{
	if (*n && (*v)[*n - 1].start + (*v)[*n - 1].n == start) {
		(*v)[*n - 1].n += len; /* frees of a truncate come in order */
		return 0;
	}
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct qrun *nv = realloc(*v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = (struct qrun){start, len};
	return 0;
}

/* Quarantined free: the bitmap block (the next checkpoint's view) says
 * free, the in-memory copy keeps the units in use until release. */
static void quarantine_one_block(struct alloc *a, uint64_t start, uint64_t n)
{
	uint64_t blk = start / UNITS_PER_BLOCK;
	struct buf *b;
	if (cache_get(a->c, a->bstart + blk, &b))
		return; /* stays in use: a leak fsck reclaims, never a double use */
	uint64_t *w = (uint64_t *)b->data;
	uint64_t base = blk * UNITS_PER_BLOCK;
	for (uint64_t u = start; u < start + n; u++) {
		uint64_t i = u - base;
		if (!((w[i >> 6] >> (i & 63)) & 1))
			continue; /* already free: a second free must not count */
		if (qpush(&a->fresh, &a->nfresh, &a->capfresh, u, 1))
			break;
		w[i >> 6] &= ~(1ull << (i & 63));
	}
	cache_mark_dirty(a->c, b);
	cache_put(a->c, b);
}

void alloc_free(struct alloc *a, uint64_t start, uint64_t n)
{
	/* Clamp to the allocatable range: freeing reserved units is a bug
	 * upstream, and ignoring it protects the metadata region. */
	if (start >= a->nunits || n == 0)
		return;
	uint64_t end = n > a->nunits - start ? a->nunits : start + n;
	if (start < a->first)
		start = a->first;
	while (start < end) {
		uint64_t blk_end = (start / UNITS_PER_BLOCK + 1) * UNITS_PER_BLOCK;
		uint64_t e = end < blk_end ? end : blk_end;
		/* On failure both copies keep the units in use: a leak that
		 * fsck reclaims, never a unit handed out twice. */
		if (a->quarantine)
			quarantine_one_block(a, start, e - start);
		else
			(void)update_one_block(a, start, e - start, false);
		start = e;
	}
}

void alloc_set_quarantine(struct alloc *a, int on)
{
	a->quarantine = on;
}

int alloc_seal(struct alloc *a)
{
	for (size_t i = 0; i < a->nfresh; i++)
		if (qpush(&a->sealed, &a->nsealed, &a->capsealed, a->fresh[i].start, a->fresh[i].n))
			return -ENOMEM; /* what is not moved waits for the next seal */
	a->nfresh = 0;
	return 0;
}

void alloc_release_sealed(struct alloc *a)
{
	for (size_t i = 0; i < a->nsealed; i++)
		a->nfree += bits_apply(a->bits, a->sealed[i].start, a->sealed[i].n, false);
	a->nsealed = 0;
}

uint64_t alloc_quarantined(const struct alloc *a)
{
	uint64_t n = 0;
	for (size_t i = 0; i < a->nfresh; i++)
		n += a->fresh[i].n;
	for (size_t i = 0; i < a->nsealed; i++)
		n += a->sealed[i].n;
	return n;
}

int alloc_is_used(const struct alloc *a, uint64_t unit)
{
	if (unit >= a->nunits)
		return 1;
	return bit_get(a->bits, unit);
}

uint64_t alloc_free_count(const struct alloc *a)
{
	return a->nfree;
}

uint64_t alloc_total(const struct alloc *a)
{
	return a->nunits;
}

uint64_t alloc_first(const struct alloc *a)
{
	return a->first;
}

int alloc_format(struct cache *c, uint64_t bitmap_start, uint64_t bitmap_blocks, uint64_t nunits,
                 uint64_t used_below)
{
	int err = check_geometry(bitmap_blocks, nunits);
	if (err)
		return err;
	if (used_below > nunits)
		return -EINVAL;
	for (uint64_t k = 0; k < bitmap_blocks; k++) {
		struct buf *b;
		err = cache_get_new(c, bitmap_start + k, &b);
		if (err)
			return err;
		uint64_t lo = k * UNITS_PER_BLOCK, hi = lo + UNITS_PER_BLOCK;
		uint64_t *w = (uint64_t *)b->data;
		if (used_below > lo)
			bits_apply(w, 0, (used_below < hi ? used_below : hi) - lo, true);
		if (nunits < hi) {
			uint64_t pad = nunits > lo ? nunits - lo : 0;
			bits_apply(w, pad, UNITS_PER_BLOCK - pad, true);
		}
		cache_put(c, b);
	}
	return 0;
}
