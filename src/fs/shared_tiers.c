/*
 * shared_tiers.c - the capacity tiers of an open shared area changed:
 * a tier added, a tier retired.
 *
 * Owns: the superblock's tier descriptors after mkfs, and the header of
 * an added tier's part.  May call: media, cache, alloc, sums (as shared.c).
 *
 * A change is made in memory and in the cache, never straight to the
 * media: the new superblock goes into the cached blocks of both its copies
 * (block 0 and the part's last block), the added tier's bitmap into cached
 * blocks of its own, and the allocations and frees into the fast tier's
 * bitmap.  The next checkpoint writes all of it through the journal, so
 * the durable superblock changes with the blocks it points to, at once: a
 * crash leaves the tiers as they were or as they became, never a
 * superblock naming blocks the durable bitmap calls free.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/alloc.h"
#include "fs/shared.h"
#include "media/media.h"
#include "util/checksum.h"

#define B FS_BLOCK_SIZE

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* Puts s->sb, sealed, into the cached blocks of both copies. */
static int stage_super(struct shared *s)
{
	s->sb.checksum = checksum_struct(&s->sb, sizeof(s->sb));
	uint64_t homes[2] = {0, FS_BACKUP_BLOCK(media_size(s->m))};
	for (int i = 0; i < 2; i++) {
		struct buf *b;
		int rc = cache_get(s->cache, homes[i], &b);
		if (rc)
			return rc;
		memcpy(b->data, &s->sb, sizeof(s->sb));
		cache_mark_dirty(s->cache, b);
		cache_put(s->cache, b);
	}
	return 0;
}

/* Runs too short, taken on the way to a whole one: freed again (they go
 * to quarantine, as any free does, until the checkpoint). */
struct short_runs {
	uint64_t start[64], n[64];
	int count;
};

static void give_back(struct shared *s, struct short_runs *r)
{
	for (int i = 0; i < r->count; i++)
		alloc_free(s->balloc, r->start[i], r->n[i]);
	r->count = 0;
}

/* `want` consecutive blocks of the fast tier's data area into *start.  The
 * allocator hands out runs of at most what is asked, so shorter ones are
 * set aside until a whole one turns up or the tier runs out. */
static int alloc_whole_run(struct shared *s, uint64_t want, uint64_t *start)
{
	struct short_runs r = {.count = 0};
	uint64_t hint = s->sb.data_start;
	int rc;
	for (;;) {
		uint64_t got;
		rc = alloc_run(s->balloc, hint, want, start, &got);
		if (rc || got == want)
			break;
		if (r.count == 64) {
			rc = -ENOSPC;
			alloc_free(s->balloc, *start, got);
			break;
		}
		r.start[r.count] = *start;
		r.n[r.count++] = got;
		hint = *start + got;
	}
	give_back(s, &r);
	return rc;
}

/* Regions on the fast tier for the bitmap and the checksum table of a
 * tier of d->total_blocks blocks, each a whole run. */
static int alloc_regions(struct shared *s, struct fs_tier_desc *d)
{
	d->bitmap_blocks = div_up(d->total_blocks, 8 * B);
	d->sums_blocks = div_up(d->total_blocks, FS_SUMS_PER_BLOCK);
	int rc = alloc_whole_run(s, d->bitmap_blocks, &d->bitmap_start);
	if (!rc && (rc = alloc_whole_run(s, d->sums_blocks, &d->sums_start)))
		alloc_free(s->balloc, d->bitmap_start, d->bitmap_blocks);
	return rc;
}

/* Gives d's regions back to the fast tier.  The bitmap's cached blocks
 * must not be written home over whatever takes them next. */
static void free_regions(struct shared *s, const struct fs_tier_desc *d)
{
	for (uint64_t k = 0; k < d->bitmap_blocks; k++)
		cache_forget(s->cache, d->bitmap_start + k);
	alloc_free(s->balloc, d->bitmap_start, d->bitmap_blocks);
	alloc_free(s->balloc, d->sums_start, d->sums_blocks);
}

/* The new tier's regions on the fast tier: a bitmap with its header block
 * in use, and a checksum table, zeroed in place (entries are written in
 * place, not through the journal; the blocks are free in the durable
 * state, so nothing reads them before the checkpoint). */
static int place_regions(struct shared *s, struct fs_tier_desc *d)
{
	int rc = alloc_regions(s, d);
	if (rc)
		return rc;
	rc = alloc_format(s->cache, d->bitmap_start, d->bitmap_blocks, d->total_blocks, 1);
	if (!rc)
		rc = media_zero(s->m, d->sums_start * B, d->sums_blocks * B);
	if (rc)
		free_regions(s, d);
	return rc;
}

static int describe_new(struct shared *s, struct fs_tier_desc *d, struct media *m, const char *name,
                        uint32_t unit_blocks, uint64_t size, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	uint64_t bytes = size && size < media_size(m) ? size : media_size(m);
	d->total_blocks = bytes / B;
	d->unit_blocks = unit_blocks ? unit_blocks : 1;
	d->flags = FS_TIER_ADDED;
	if (d->total_blocks < 2 || d->total_blocks > FS_PBLK_MASK) {
		snprintf(err, errlen, "tier %s part %s: %llu bytes is not a usable size", name,
		         media_path(m), (unsigned long long)bytes);
		return -EINVAL;
	}
	if (s->sb.tier_count >= FS_MAX_TIERS) {
		snprintf(err, errlen,
		         "the volume has had %u capacity tiers (removed ones count: their "
		         "numbers are not used again); at most %u",
		         s->sb.tier_count, FS_MAX_TIERS);
		return -ENOSPC;
	}
	return 0;
}

int shared_tier_add(struct shared *s, struct media *m, const char *name, uint32_t unit_blocks,
                    uint64_t size, char *err, size_t errlen)
{
	struct fs_tier_desc d;
	int rc = describe_new(s, &d, m, name, unit_blocks, size, err, errlen);
	if (rc)
		return rc;
	rc = place_regions(s, &d);
	if (rc) {
		snprintf(err, errlen,
		         "the fast tier has no %llu consecutive free blocks for tier %s's bitmap "
		         "and checksums",
		         (unsigned long long)(d.bitmap_blocks > d.sums_blocks ? d.bitmap_blocks
		                                                              : d.sums_blocks),
		         name);
		return rc;
	}
	unsigned t = s->sb.tier_count + 1;
	s->sb.tiers[t - 1] = d;
	s->sb.tier_count = t;
	rc = shared_tier_header_write(&s->sb, t, m);
	struct tier *x = &s->tier[t];
	memset(x, 0, sizeof(*x));
	if (!rc)
		rc =
		    alloc_open(&x->a, s->cache, d.bitmap_start, d.bitmap_blocks, d.total_blocks, 1);
	if (!rc)
		rc = sums_open(&x->sums, s->m, d.sums_start, d.total_blocks);
	if (!rc)
		rc = stage_super(s);
	if (rc) {
		/* Nothing of it is durable: the cached bitmap blocks are free
		 * ones, written by no checkpoint that does not free them. */
		if (x->a)
			alloc_close(x->a);
		sums_close(&x->sums);
		memset(x, 0, sizeof(*x));
		memset(&s->sb.tiers[t - 1], 0, sizeof(d));
		s->sb.tier_count = t - 1;
		free_regions(s, &d);
		stage_super(s);
		snprintf(err, errlen, "tier %s part %s: cannot add it: %s", name, media_path(m),
		         strerror(-rc));
		return rc;
	}
	x->m = m;
	x->total_blocks = d.total_blocks;
	x->first_block = 1;
	x->unit_blocks = d.unit_blocks;
	memcpy(x->name, d.name, sizeof(x->name) - 1);
	alloc_set_quarantine(x->a, 1);
	s->fx.talloc[t] = x->a;
	s->ntiers = t + 1;
	return 0;
}

int shared_tier_retire(struct shared *s, unsigned t, char *err, size_t errlen)
{
	if (t == 0 || !shared_tier_live(s, t))
		return -EINVAL;
	struct tier *x = &s->tier[t];
	if (shared_tier_used(s, t) || alloc_quarantined(x->a)) {
		snprintf(err, errlen, "tier %s still holds %llu blocks", x->name,
		         (unsigned long long)(shared_tier_used(s, t) + alloc_quarantined(x->a)));
		return -EBUSY;
	}
	struct fs_tier_desc *d = &s->sb.tiers[t - 1];
	d->flags |= FS_TIER_RETIRED;
	if (d->flags & FS_TIER_ADDED) {
		free_regions(s, d);
		d->bitmap_start = d->bitmap_blocks = d->sums_start = d->sums_blocks = 0;
	}
	s->fx.talloc[t] = NULL;
	alloc_close(x->a);
	x->a = NULL;
	sums_close(&x->sums);
	char name[sizeof(x->name)];
	memcpy(name, x->name, sizeof(name));
	memset(x, 0, sizeof(*x));
	memcpy(x->name, name, sizeof(name));
	x->retired = 1;
	return stage_super(s);
}

/* ---- grow ------------------------------------------------------------------ */

/* Sets (or clears) bits [from, to) of bits, a byte at a time where it can. */
static void bits_range(uint8_t *bits, uint64_t from, uint64_t to, int set)
{
	for (uint64_t u = from; u < to;) {
		if (u % 8 == 0 && u + 8 <= to) {
			uint64_t bytes = (to - u) / 8;
			memset(bits + u / 8, set ? 0xff : 0, bytes);
			u += bytes * 8;
			continue;
		}
		if (set)
			bits[u / 8] |= (uint8_t)(1u << (u % 8));
		else
			bits[u / 8] &= (uint8_t) ~(1u << (u % 8));
		u++;
	}
}

/* Where a bitmap or checksum table lies, and how many blocks it covers. */
struct region {
	uint64_t start, blocks, covers;
};

/*
 * A grown tier's bitmap into its new blocks: the old bits (as cached: the
 * allocator's whole state), the blocks the tier gains free but for [used,
 * used_end), the bits past its end set (as mkfs pads).  Written straight
 * to the medium and fenced, not through the journal, which the bitmap of
 * a much larger tier could overflow: no durable state uses these blocks
 * until the checkpoint that names them, which finds them written.  Any
 * copy the cache holds of them is dropped.
 */
static int copy_bitmap(struct shared *s, struct region from, struct region to, uint64_t used,
                       uint64_t used_end)
{
	uint8_t *bits = calloc(to.blocks, B);
	if (!bits)
		return -ENOMEM;
	int rc = 0;
	for (uint64_t k = 0; k < from.blocks && !rc; k++) {
		struct buf *b;
		rc = cache_get(s->cache, from.start + k, &b);
		if (!rc) {
			memcpy(bits + k * B, b->data, B);
			cache_put(s->cache, b);
		}
	}
	bits_range(bits, from.covers, to.covers, 0);
	bits_range(bits, used, used_end, 1);
	bits_range(bits, to.covers, to.blocks * 8 * B, 1);
	if (!rc)
		rc = media_store(s->m, to.start * B, bits, to.blocks * B);
	if (!rc)
		rc = media_fence(s->m);
	free(bits);
	for (uint64_t k = 0; k < to.blocks; k++)
		cache_forget(s->cache, to.start + k);
	return rc;
}

/* A checksum table into its new blocks (in place, as entries are
 * written: the old table stays what the durable superblock names until
 * the checkpoint, and no data is written meanwhile), zeros after it. */
static int copy_sums(struct shared *s, struct tier *x, struct region from, struct region to)
{
	int rc = sums_flush(&x->sums);
	enum { CHUNK = 256 * B };
	uint8_t *buf = rc ? NULL : malloc(CHUNK);
	if (!rc && !buf)
		rc = -ENOMEM;
	uint64_t bytes = from.blocks * B;
	for (uint64_t off = 0; off < bytes && !rc; off += CHUNK) {
		size_t n = bytes - off < CHUNK ? (size_t)(bytes - off) : CHUNK;
		rc = media_read(s->m, from.start * B + off, buf, n);
		if (!rc)
			rc = media_store(s->m, to.start * B + off, buf, n);
	}
	free(buf);
	if (!rc)
		rc = media_zero(s->m, to.start * B + bytes, (to.blocks * B) - bytes);
	return rc;
}

static struct region bitmap_of(const struct fs_tier_desc *d)
{
	return (struct region){d->bitmap_start, d->bitmap_blocks, d->total_blocks};
}

static struct region table_of(const struct fs_tier_desc *d)
{
	return (struct region){d->sums_start, d->sums_blocks, d->total_blocks};
}

/* Gives the regions of a tier whose bitmap and table moved back to the
 * fast tier (or, laid out by mkfs, keeps their room reserved). */
static void leave_regions(struct shared *s, unsigned t, const struct fs_tier_desc *d)
{
	if (d->flags & FS_TIER_ADDED)
		free_regions(s, d);
	else
		s->sb.laid_blocks[t - 1] = d->total_blocks;
}

static int check_grow(struct shared *s, unsigned t, struct media *bigger, uint64_t blocks,
                      char *err, size_t errlen)
{
	struct tier *x = &s->tier[t];
	const struct fs_tier_desc *d = &s->sb.tiers[t - 1];
	if (blocks <= d->total_blocks || blocks > FS_PBLK_MASK || media_size(bigger) / B < blocks) {
		snprintf(err, errlen, "tier %s: %llu blocks is not larger than its %llu", x->name,
		         (unsigned long long)blocks, (unsigned long long)d->total_blocks);
		return -EINVAL;
	}
	return alloc_quarantined(x->a) ? -EAGAIN : 0;
}

int shared_tier_grow(struct shared *s, unsigned t, struct media *bigger, uint64_t blocks,
                     struct media **old, char *err, size_t errlen)
{
	if (t == 0 || !shared_tier_live(s, t))
		return -EINVAL;
	int rc = check_grow(s, t, bigger, blocks, err, errlen);
	if (rc)
		return rc;
	struct tier *x = &s->tier[t];
	struct fs_tier_desc d = s->sb.tiers[t - 1], nd = d;
	nd.total_blocks = blocks;
	nd.flags |= FS_TIER_ADDED;
	rc = alloc_regions(s, &nd);
	if (rc) {
		snprintf(err, errlen, "the fast tier has no room for tier %s's larger bitmap",
		         x->name);
		return rc;
	}
	struct alloc *na = NULL;
	rc = copy_bitmap(s, bitmap_of(&d), bitmap_of(&nd), 0, 0);
	if (!rc)
		rc = copy_sums(s, x, table_of(&d), table_of(&nd));
	if (!rc)
		rc = alloc_open(&na, s->cache, nd.bitmap_start, nd.bitmap_blocks, blocks, 1);
	if (!rc && (rc = sums_move(&x->sums, nd.sums_start, blocks)) != 0)
		alloc_close(na);
	if (rc) {
		free_regions(s, &nd);
		snprintf(err, errlen, "tier %s: cannot move its bitmap: %s", x->name,
		         strerror(-rc));
		return rc;
	}
	/* From here nothing fails but the superblock's staging. */
	leave_regions(s, t, &d);
	alloc_close(x->a);
	x->a = na;
	alloc_set_quarantine(na, 1);
	s->fx.talloc[t] = na;
	*old = x->m;
	x->m = bigger;
	x->total_blocks = blocks;
	s->sb.tiers[t - 1] = nd;
	return stage_super(s);
}

/* ---- the fast tier grows -------------------------------------------------- */

/* The grown fast tier's bitmap and checksum table, laid at its old end
 * (block total_blocks, where the backup superblock was): beyond every
 * block the durable state uses, so they are written before the
 * checkpoint that commits them without overwriting anything it needs. */
static int fast_regions(const struct shared *s, uint64_t blocks, struct region *bm,
                        struct region *sums, char *err, size_t errlen)
{
	uint64_t at = s->sb.total_blocks;
	*bm = (struct region){at, div_up(blocks, 8 * B), blocks};
	*sums = (struct region){at + bm->blocks, div_up(blocks, FS_SUMS_PER_BLOCK), blocks};
	if (sums->start + sums->blocks < blocks)
		return 0;
	snprintf(err, errlen,
	         "the fast tier: %llu blocks more cannot hold its own larger bitmap and checksums",
	         (unsigned long long)(blocks - at));
	return -EINVAL;
}

int shared_fast_extend(struct shared *s, uint64_t bytes, char *err, size_t errlen)
{
	if (bytes / B <= FS_BACKUP_BLOCK(media_size(s->m)) + 1) {
		snprintf(err, errlen, "the fast tier: %llu bytes is not larger than its %llu",
		         (unsigned long long)bytes, (unsigned long long)media_size(s->m));
		return -EINVAL;
	}
	/* Refused before anything changes: enough blocks for the regions. */
	struct region bm, sums;
	int rc = fast_regions(s, FS_BACKUP_BLOCK(bytes), &bm, &sums, err, errlen);
	if (!rc)
		rc = media_grow(s->m, bytes, err, errlen);
	if (!rc)
		rc = media_store(s->m, FS_BACKUP_BLOCK(bytes) * B, &s->sb, sizeof(s->sb));
	return rc ? rc : media_fence(s->m);
}

int shared_fast_pending(const struct shared *s)
{
	return s->sb.total_blocks < FS_BACKUP_BLOCK(media_size(s->m));
}

/* The fast tier's allocator and checksum table, reopened over the new
 * regions (or, on failure, left as they were); the old regions, where an
 * earlier grow had put them in the data area, freed (to quarantine, like
 * any free, until the checkpoint). */
static int fast_reopen(struct shared *s, struct region bm, struct region sums)
{
	struct alloc *na = NULL;
	int rc = alloc_open(&na, s->cache, bm.start, bm.blocks, bm.covers, s->sb.data_start);
	if (!rc && (rc = sums_move(&s->tier[0].sums, sums.start, sums.covers)) != 0)
		alloc_close(na);
	if (rc)
		return rc;
	alloc_set_quarantine(na, 1);
	if (s->sb.fast_laid_blocks) {
		for (uint64_t k = 0; k < s->sb.bbitmap_blocks; k++)
			cache_forget(s->cache, s->sb.bbitmap_start + k);
		alloc_free(na, s->sb.bbitmap_start, s->sb.bbitmap_blocks);
		alloc_free(na, s->sb.sums_start, s->sb.sums_blocks);
	}
	alloc_close(s->balloc);
	s->balloc = s->fx.balloc = s->tier[0].a = na;
	s->tier[0].total_blocks = bm.covers;
	return 0;
}

int shared_fast_grow(struct shared *s, char *err, size_t errlen)
{
	uint64_t blocks = FS_BACKUP_BLOCK(media_size(s->m));
	if (!shared_fast_pending(s))
		return 0;
	if (alloc_quarantined(s->balloc))
		return -EAGAIN;
	struct region bm, sums;
	int rc = fast_regions(s, blocks, &bm, &sums, err, errlen);
	if (rc)
		return rc;
	struct fs_super *sb = &s->sb;
	struct region old_bm = {sb->bbitmap_start, sb->bbitmap_blocks, sb->total_blocks};
	struct region old_sums = {sb->sums_start, sb->sums_blocks, sb->total_blocks};
	rc = copy_bitmap(s, old_bm, bm, bm.start, sums.start + sums.blocks);
	if (!rc)
		rc = copy_sums(s, &s->tier[0], old_sums, sums);
	if (!rc)
		rc = fast_reopen(s, bm, sums);
	if (rc) { /* nothing changed but blocks no durable state uses */
		snprintf(err, errlen, "the fast tier: cannot move its bitmap: %s", strerror(-rc));
		return rc;
	}
	/* From here the cached state is the grown tier's. */
	if (!sb->fast_laid_blocks)
		sb->fast_laid_blocks = sb->total_blocks;
	sb->total_blocks = blocks;
	sb->bbitmap_start = bm.start, sb->bbitmap_blocks = bm.blocks;
	sb->sums_start = sums.start, sb->sums_blocks = sums.blocks;
	return stage_super(s);
}
