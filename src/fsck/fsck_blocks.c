/*
 * fsck_blocks.c - phase 4 of a check: the block bitmaps of every tier
 * against the blocks the trees claim, and the owners of blocks claimed
 * twice.
 *
 * Owns: the flat block numbering of fsck's own bitmaps, the claimed-block
 * bitmap (every tree node and extent of every inode in use, filled during
 * phase 3) and the rules comparing it with the media's block bitmaps.
 * May call: nothing below fsck but what fsck_inodes.c calls (the rescan).
 *
 * One volume has up to FS_MAX_TIERS + 1 tiers, each with its own bitmap
 * (the capacity tiers' on the fast tier, like every metadata block).  fsck
 * lays them end to end in a flat numbering: block b of tier t is flat
 * base[t] + b.  Each base is a multiple of 64, so a tier's media bitmap is
 * copied in whole words and one word never mixes two tiers (the word-wise
 * comparison below relies on it).
 *
 * Problems are reported per run of consecutive blocks of one tier, so a
 * leaked 1000-block extent is one line, not a thousand.  Runs on the fast
 * tier read "block N" / "blocks A-B"; on a capacity tier "tier ssd blocks
 * A-B", the tier's own block numbers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck/fsck_internal.h"

/* ---- the tiers ----------------------------------------------------------- */

/* Tier t's bitmap on the fast tier. */
static void tier_bitmap(const struct fsck_ctx *c, unsigned t, uint64_t *start, uint64_t *blocks)
{
	*start = t ? c->sb->tiers[t - 1].bitmap_start : c->sb->bbitmap_start;
	*blocks = t ? c->sb->tiers[t - 1].bitmap_blocks : c->sb->bbitmap_blocks;
}

/* A tier added to a running volume keeps its bitmap and checksum table
 * in the fast tier's data area, and so does the fast tier once it grew:
 * blocks in use that no inode owns. */
static void claim_added_regions(struct fsck_ctx *c)
{
	if (c->sb->fast_laid_blocks) {
		fsck_claim(c, c->sb->bbitmap_start, c->sb->bbitmap_blocks);
		fsck_claim(c, c->sb->sums_start, c->sb->sums_blocks);
	}
	for (unsigned k = 0; k < c->sb->tier_count; k++) {
		const struct fs_tier_desc *d = &c->sb->tiers[k];
		if ((d->flags & FS_TIER_ADDED) && !(d->flags & FS_TIER_RETIRED)) {
			fsck_claim(c, d->bitmap_start, d->bitmap_blocks);
			fsck_claim(c, d->sums_start, d->sums_blocks);
		}
	}
	c->cur_claimed = 0;
}

int fsck_load_block_maps(struct fsck_ctx *c)
{
	const struct shared *sh = &c->sh;
	c->base[0] = 0;
	for (unsigned t = 0; t < sh->ntiers; t++)
		c->base[t + 1] = c->base[t] + (sh->tier[t].total_blocks + 63) / 64 * 64;
	size_t words = fsck_flat_blocks(c) / 64;
	c->bbits = calloc(words, 8);
	c->claimed = calloc(words, 8);
	if (!c->bbits || !c->claimed)
		return -ENOMEM;
	for (unsigned t = 0; t < sh->ntiers; t++) {
		if (!shared_tier_live(sh, t))
			continue; /* retired: no blocks */
		uint64_t start, blocks;
		tier_bitmap(c, t, &start, &blocks);
		uint8_t *w = malloc(blocks * FS_BLOCK_SIZE);
		if (!w)
			return -ENOMEM;
		int rc = fsck_read_bitmap(c, start, blocks, w);
		/* Whole bytes, then the last bits one by one: the padding bits
		 * mkfs sets past the tier's end must stay clear here. */
		if (!rc)
			memcpy(c->bbits + c->base[t] / 64, w, sh->tier[t].total_blocks / 8);
		for (uint64_t b = sh->tier[t].total_blocks & ~7ull;
		     !rc && b < sh->tier[t].total_blocks; b++)
			if (w[b / 8] >> (b % 8) & 1)
				bit_set(c->bbits, c->base[t] + b);
		free(w);
		if (rc)
			return rc;
	}
	claim_added_regions(c);
	return 0;
}

static unsigned flat_tier(const struct fsck_ctx *c, uint64_t flat)
{
	unsigned t = 0;
	while (t + 1 < c->sh.ntiers && flat >= c->base[t + 1])
		t++;
	return t;
}

uint64_t fsck_pblk(const struct fsck_ctx *c, uint64_t flat)
{
	unsigned t = flat_tier(c, flat);
	return FS_PBLK(t, flat - c->base[t]);
}

int fsck_data_range(const struct fsck_ctx *c, uint64_t start, uint64_t n)
{
	return n > 0 && shared_blocks_ok(&c->sh, start, n);
}

int fsck_node_block(const struct fsck_ctx *c, uint64_t blk)
{
	return FS_PBLK_TIER(blk) == 0 && fsck_data_range(c, blk, 1);
}

void fsck_blocks_text(const struct fsck_ctx *c, char *out, size_t len, uint64_t start, uint64_t n)
{
	unsigned t = FS_PBLK_TIER(start);
	unsigned long long b = (unsigned long long)FS_PBLK_BLK(start);
	char tier[32] = "";
	if (t)
		snprintf(tier, sizeof(tier), "tier %s ",
		         t < c->sh.ntiers ? c->sh.tier[t].name : "?");
	if (n == 1)
		snprintf(out, len, "%sblock %llu", tier, b);
	else
		snprintf(out, len, "%sblocks %llu-%llu (%llu blocks)", tier, b, b + n - 1,
		         (unsigned long long)n);
}

/* ---- claims ---------------------------------------------------------------- */

static void add_owner(struct fsck_ctx *c, uint64_t blk)
{
	if (c->ndv == c->capdv) {
		size_t ncap = c->capdv ? c->capdv * 2 : 64;
		struct dup_owner *nv = realloc(c->dv, ncap * sizeof(*nv));
		if (!nv)
			return; /* the report loses an owner, not the check */
		c->dv = nv;
		c->capdv = ncap;
	}
	c->dv[c->ndv++] = (struct dup_owner){blk, c->cur_ino};
}

void fsck_claim(struct fsck_ctx *c, uint64_t start, uint64_t n)
{
	c->cur_claimed += n;
	uint64_t first = fsck_flat(c, start);
	for (uint64_t b = first; b < first + n; b++) {
		if (c->rescan) {
			if (c->dup && bit_test(c->dup, b))
				add_owner(c, b);
			continue;
		}
		if (!bit_test(c->claimed, b)) {
			bit_set(c->claimed, b);
			continue;
		}
		if (!c->dup)
			c->dup = calloc(fsck_flat_blocks(c) / 64, 8);
		if (c->dup && !bit_test(c->dup, b)) {
			bit_set(c->dup, b);
			c->ndup++;
		}
	}
}

/* ---- runs ------------------------------------------------------------------ */

/* A run of flat blocks with one problem. */
struct run {
	int code;
	uint64_t start, n;
};

static void report_run(struct fsck_ctx *c, const struct run *r)
{
	if (!r->n)
		return;
	uint64_t start = fsck_pblk(c, r->start);
	const struct tier *t = &c->sh.tier[FS_PBLK_TIER(start)];
	char where[96];
	fsck_blocks_text(c, where, sizeof(where), start, r->n);
	int one = r->n == 1;
	struct fsck_item *it;
	switch (r->code) {
	case FC_BLOCK_META_FREE:
		it = fsck_problem(c, r->code,
		                  "%s: metadata (below the data area at block %llu) but "
		                  "marked free in the block bitmap",
		                  where, (unsigned long long)t->first_block);
		it->fixable = 1;
		break;
	case FC_BLOCK_LEAK:
		it = fsck_problem(c, r->code, "%s: marked used but %s to nothing (leak)", where,
		                  one ? "belongs" : "belong");
		/* Blocks a damaged tree may still hold look leaked too. */
		it->fixable = c->claims_complete;
		break;
	default:
		it = fsck_problem(c, r->code,
		                  "%s: in use by a tree but marked free in the block bitmap "
		                  "(the allocator could hand %s out again)",
		                  where, one ? "it" : "them");
		it->fixable = 1;
	}
	it->a = start;
	it->b = r->n;
}

static void run_add(struct fsck_ctx *c, struct run *r, int code, uint64_t b)
{
	if (r->n && r->code == code && r->start + r->n == b) {
		r->n++;
		return;
	}
	report_run(c, r);
	*r = (struct run){code, b, code ? 1 : 0};
}

/* Below each tier's data area: the fast tier's metadata, a capacity
 * tier's header.  mkfs marks them used for good. */
static void check_metadata_blocks(struct fsck_ctx *c, unsigned t)
{
	struct run r = {0};
	for (uint64_t b = c->base[t]; b < c->base[t] + c->sh.tier[t].first_block; b++)
		run_add(c, &r, bit_test(c->bbits, b) ? 0 : FC_BLOCK_META_FREE, b);
	report_run(c, &r);
}

static void check_data_blocks(struct fsck_ctx *c, unsigned t)
{
	const uint64_t all = fsck_flat_blocks(c);
	const uint64_t end = c->base[t] + c->sh.tier[t].total_blocks;
	struct run r = {0};
	uint64_t b = c->base[t] + c->sh.tier[t].first_block;
	while (b < end) {
		/* Whole words that agree are skipped: the common case. */
		if (!(b & 63) && b + 64 <= end && c->bbits[b >> 6] == c->claimed[b >> 6]) {
			b += 64;
			if (!(b & 0xfffff))
				fsck_progress(c, "blocks", b, all);
			continue;
		}
		int used = bit_test(c->bbits, b), cl = bit_test(c->claimed, b);
		int code = used && !cl ? FC_BLOCK_LEAK : !used && cl ? FC_BLOCK_FREE_USED : 0;
		if (code || r.n)
			run_add(c, &r, code, b);
		b++;
	}
	report_run(c, &r);
	fsck_progress(c, "blocks", end, all);
}

/* ---- duplicates ------------------------------------------------------------ */

static int cmp_owner(const void *a, const void *b)
{
	const struct dup_owner *x = a, *y = b;
	if (x->blk != y->blk)
		return x->blk < y->blk ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* "inodes 12 and 13" for the owners dv[i..j). */
static void owners_text(char *out, size_t len, const struct dup_owner *dv, size_t i, size_t j)
{
	size_t o = (size_t)snprintf(out, len, "inode%s", j - i > 1 ? "s" : "");
	for (size_t k = i; k < j && o < len; k++)
		o += (size_t)snprintf(out + o, len - o, "%s %llu",
		                      k == i       ? ""
		                      : k + 1 == j ? " and"
		                                   : ",",
		                      (unsigned long long)dv[k].ino);
}

/* Flat blocks [start, start+n), one tier's, claimed by owners. */
static void report_dup_run(struct fsck_ctx *c, uint64_t start, uint64_t n, const char *owners)
{
	if (!n)
		return;
	char where[96];
	uint64_t pblk = fsck_pblk(c, start);
	fsck_blocks_text(c, where, sizeof(where), pblk, n);
	struct fsck_item *it = fsck_problem(c, FC_BLOCK_DUP, "%s: claimed by %s", where, owners);
	it->a = pblk;
	it->b = n;
}

/* Sorted (block, owner) pairs, without repeats (a tree that names one node
 * twice), grouped per block; blocks in a row with the same owners make
 * one line. */
static void report_dups(struct fsck_ctx *c)
{
	if (!c->ndv)
		return;
	qsort(c->dv, c->ndv, sizeof(*c->dv), cmp_owner);
	size_t m = 0;
	for (size_t i = 0; i < c->ndv; i++)
		if (!m || c->dv[i].blk != c->dv[m - 1].blk || c->dv[i].ino != c->dv[m - 1].ino)
			c->dv[m++] = c->dv[i];
	char cur[256] = "", text[256];
	uint64_t start = 0, n = 0;
	for (size_t i = 0, j; i < m; i = j) {
		for (j = i + 1; j < m && c->dv[j].blk == c->dv[i].blk; j++)
			;
		owners_text(text, sizeof(text), c->dv, i, j);
		/* A capacity tier's block 0 (its header) is never claimed, so
		 * consecutive flat blocks claimed are of one tier. */
		if (n && start + n == c->dv[i].blk && !strcmp(text, cur)) {
			n++;
			continue;
		}
		report_dup_run(c, start, n, cur);
		start = c->dv[i].blk;
		n = 1;
		snprintf(cur, sizeof(cur), "%s", text);
	}
	report_dup_run(c, start, n, cur);
}

static int owns_dup(const struct fsck_ctx *c, uint64_t ino)
{
	for (size_t i = 0; i < c->ndv; i++)
		if (c->dv[i].ino == ino)
			return 1;
	return 0;
}

/* A fix that changes a tree whose blocks another inode also holds would
 * change that inode too: such fixes are withheld until a person decides
 * which owner is right. */
static void withhold_shared_tree_fixes(struct fsck_ctx *c)
{
	for (size_t i = 0; i < c->out->n; i++) {
		struct fsck_item *it = &c->out->v[i];
		int tree_fix = it->code == FC_DENT_FREE || it->code == FC_DENT_BAD ||
		               it->code == FC_DIR_MULTI || it->code == FC_EXTENT_OUTSIDE ||
		               it->code == FC_EXTENT_BAD || it->code == FC_DENT_KEY ||
		               it->code == FC_TREE;
		if (it->fixable && tree_fix && owns_dup(c, it->a)) {
			it->fixable = 0;
			size_t len = strlen(it->msg);
			snprintf(it->msg + len, sizeof(it->msg) - len,
			         " (not repaired: inode %llu shares blocks with another inode)",
			         (unsigned long long)it->a);
		}
	}
}

/* Who owns each block claimed twice is learned by a second pass over the
 * inodes, only when there are such blocks: the first pass keeps one bit
 * per block, not an owner. */
static void find_dup_owners(struct fsck_ctx *c)
{
	c->rescan = 1;
	for (uint64_t ino = 1; ino < c->sb->inode_count; ino++)
		if (c->ii[ino].mode)
			fsck_claim_inode(c, ino);
	c->rescan = 0;
	report_dups(c);
	withhold_shared_tree_fixes(c);
}

int fsck_check_blocks(struct fsck_ctx *c)
{
	c->r->blocks_in_use = 0;
	c->r->tier_count = c->sh.ntiers;
	for (unsigned t = 0; t < c->sh.ntiers; t++) {
		const struct tier *x = &c->sh.tier[t];
		check_metadata_blocks(c, t);
		check_data_blocks(c, t);
		uint64_t used = 0;
		for (uint64_t w = c->base[t] / 64; w < c->base[t + 1] / 64; w++)
			used += (uint64_t)__builtin_popcountll(c->claimed[w]);
		struct fsck_tier_report *tr = &c->r->tiers[t];
		snprintf(tr->name, sizeof(tr->name), "%s", x->name);
		tr->data_blocks = x->total_blocks - x->first_block;
		tr->blocks_in_use = used;
		c->r->blocks_in_use += used;
	}
	if (c->ndup)
		find_dup_owners(c);
	return 0;
}
