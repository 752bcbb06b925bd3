/*
 * sums.c - the data checksum table of one tier (see sums.h).
 *
 * Why the entries need no journal: an entry changes only when the digest
 * or a migration writes its block, and both happen before the checkpoint
 * that makes them part of the durable shared area.  A crash in between
 * leaves the block and its entry possibly disagreeing, but only for blocks
 * that the records after the durable checkpoint write again at replay
 * (the digest frees no block for reuse before its checkpoint commits, and
 * a migration's target blocks are unmapped until then).  A torn table
 * block mixes old and new entries, never halves of one: each entry is
 * 4 bytes, aligned, inside one sector and one cache line.
 */
#include "fs/sums.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/format.h"
#include "media/media.h"
#include "util/checksum.h"

#define B FS_BLOCK_SIZE

uint32_t sums_of(const void *block, uint64_t pblk)
{
	return (uint32_t)checksum64_seeded(block, B, pblk);
}

int sums_open(struct sums *t, struct media *m, uint64_t start, uint64_t nblocks)
{
	memset(t, 0, sizeof(*t));
	t->m = m;
	t->off = start * B;
	t->nblocks = nblocks;
	pthread_mutex_init(&t->lock, NULL);
	t->verified = calloc((nblocks + 63) / 64, sizeof(uint64_t));
	t->reported = calloc((nblocks + 63) / 64, sizeof(uint64_t));
	if (!t->verified || !t->reported) {
		sums_close(t);
		return -ENOMEM;
	}
	const uint8_t *base = media_direct(m);
	if (base) {
		t->v = (const uint32_t *)(base + t->off);
		return 0;
	}
	uint64_t tblocks = (nblocks + FS_SUMS_PER_BLOCK - 1) / FS_SUMS_PER_BLOCK;
	t->copy = malloc(tblocks * B);
	t->dirty = calloc((tblocks + 63) / 64, sizeof(uint64_t));
	if (!t->copy || !t->dirty) {
		sums_close(t);
		return -ENOMEM;
	}
	t->v = t->copy;
	int rc = media_read(m, t->off, t->copy, tblocks * B);
	if (rc)
		sums_close(t);
	return rc;
}

void sums_close(struct sums *t)
{
	if (!t->m)
		return;
	free(t->copy);
	free(t->dirty);
	free(t->verified);
	free(t->reported);
	pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof(*t));
}

int sums_move(struct sums *t, uint64_t start, uint64_t nblocks)
{
	struct sums n;
	if (nblocks < t->nblocks)
		return -EINVAL;
	int rc = sums_open(&n, t->m, start, nblocks);
	if (rc)
		return rc;
	size_t words = (size_t)((t->nblocks + 63) / 64);
	memcpy(n.verified, t->verified, words * sizeof(uint64_t));
	memcpy(n.reported, t->reported, words * sizeof(uint64_t));
	/* The new arrays into t, its old ones into n, which closes them. */
	uint32_t *copy = t->copy;
	uint64_t *dirty = t->dirty, *verified = t->verified, *reported = t->reported;
	pthread_mutex_lock(&t->lock);
	t->off = n.off, t->nblocks = n.nblocks, t->v = n.v;
	t->copy = n.copy, t->dirty = n.dirty;
	t->verified = n.verified, t->reported = n.reported;
	pthread_mutex_unlock(&t->lock);
	n.copy = copy, n.dirty = dirty, n.verified = verified, n.reported = reported;
	sums_close(&n);
	return 0;
}

/* In place: one store of the n entries, flushed by media_store. */
static int set_direct(struct sums *t, uint64_t blk, const uint32_t *vals, uint64_t n)
{
	return media_store(t->m, t->off + blk * 4, vals, n * 4);
}

static int set_copy(struct sums *t, uint64_t blk, const uint32_t *vals, uint64_t n)
{
	pthread_mutex_lock(&t->lock);
	memcpy(t->copy + blk, vals, n * 4);
	for (uint64_t tb = blk / FS_SUMS_PER_BLOCK; tb <= (blk + n - 1) / FS_SUMS_PER_BLOCK; tb++)
		t->dirty[tb / 64] |= 1ull << (tb % 64);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* A look before the locked instruction: the bits of a block being written
 * are clear almost always, and a locked instruction is a full fence, which
 * waits for the non-temporal stores of the block written before this one
 * (media_store) to drain; without it they drain while this block is
 * hashed.  The look races with nothing: the readers that set the bits
 * exclude the writer of the block (data_store in shared.c). */
static void clear_bit(uint64_t *words, uint64_t b)
{
	uint64_t bit = 1ull << (b % 64);
	if (__atomic_load_n(&words[b / 64], __ATOMIC_RELAXED) & bit)
		__atomic_and_fetch(&words[b / 64], ~bit, __ATOMIC_RELAXED);
}

int sums_set(struct sums *t, uint64_t pblk, uint64_t blk, const void *data, uint64_t n, int damaged)
{
	enum { CHUNK = 256 };
	uint32_t vals[CHUNK];
	const uint8_t *p = data;
	if (blk + n > t->nblocks || blk + n < blk)
		return -EUCLEAN;
	for (uint64_t b = blk; b < blk + n; b++) {
		clear_bit(t->verified, b);
		if (!damaged)
			clear_bit(t->reported, b);
	}
	for (uint64_t done = 0; done < n;) {
		uint64_t k = n - done < CHUNK ? n - done : CHUNK;
		for (uint64_t i = 0; i < k; i++) {
			vals[i] = sums_of(p + (done + i) * B, pblk + done + i);
			if (damaged)
				vals[i] = ~vals[i];
		}
		int rc =
		    t->copy ? set_copy(t, blk + done, vals, k) : set_direct(t, blk + done, vals, k);
		if (rc)
			return rc;
		done += k;
	}
	return 0;
}

static int is_verified(const struct sums *t, uint64_t b)
{
	return (__atomic_load_n(&t->verified[b / 64], __ATOMIC_RELAXED) >> (b % 64)) & 1;
}

uint64_t sums_verify(struct sums *t, uint64_t pblk, uint64_t blk, const void *data, uint64_t n,
                     int always)
{
	const uint8_t *p = data;
	if (blk + n > t->nblocks || blk + n < blk)
		return 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t b = blk + i;
		if (!always && is_verified(t, b))
			continue;
		if (sums_of(p + i * B, pblk + i) != __atomic_load_n(&t->v[b], __ATOMIC_RELAXED)) {
			/* Found bad (by a scrub, say): readers must hash it again. */
			__atomic_and_fetch(&t->verified[b / 64], ~(1ull << (b % 64)),
			                   __ATOMIC_RELAXED);
			return i;
		}
		__atomic_or_fetch(&t->verified[b / 64], 1ull << (b % 64), __ATOMIC_RELAXED);
	}
	return n;
}

int sums_known_good(const struct sums *t, uint64_t blk, uint64_t n)
{
	if (blk + n > t->nblocks || blk + n < blk)
		return 0;
	for (uint64_t b = blk; b < blk + n; b++)
		if (!is_verified(t, b))
			return 0;
	return 1;
}

int sums_note_damage(struct sums *t, uint64_t blk)
{
	if (blk >= t->nblocks)
		return 0;
	uint64_t bit = 1ull << (blk % 64);
	return !(__atomic_fetch_or(&t->reported[blk / 64], bit, __ATOMIC_RELAXED) & bit);
}

int sums_known_damaged(const struct sums *t, uint64_t blk, uint64_t n)
{
	for (uint64_t b = blk; b < blk + n && b < t->nblocks; b++)
		if ((__atomic_load_n(&t->reported[b / 64], __ATOMIC_RELAXED) >> (b % 64)) & 1)
			return 1;
	return 0;
}

int sums_flush(struct sums *t)
{
	if (!t->copy)
		return 0;
	uint64_t tblocks = (t->nblocks + FS_SUMS_PER_BLOCK - 1) / FS_SUMS_PER_BLOCK;
	int rc = 0;
	pthread_mutex_lock(&t->lock);
	for (uint64_t w = 0; w < (tblocks + 63) / 64 && !rc; w++) {
		while (t->dirty[w] && !rc) {
			uint64_t tb = w * 64 + (uint64_t)__builtin_ctzll(t->dirty[w]);
			rc = media_store(t->m, t->off + tb * B, (const uint8_t *)t->copy + tb * B,
			                 B);
			if (!rc)
				t->dirty[w] &= t->dirty[w] - 1; /* clear the lowest bit */
		}
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}
