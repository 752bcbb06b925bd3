/*
 * fsck_blocks.c - phase 4 of a check: the block bitmap against the blocks
 * the trees claim, and the owners of blocks claimed twice.
 *
 * Owns: the claimed-block bitmap (every tree node and extent of every
 * inode in use, filled during phase 3) and the rules comparing it with
 * the media's block bitmap.
 * May call: nothing below fsck but what fsck_inodes.c calls (the rescan).
 *
 * Problems are reported per run of consecutive blocks, so a leaked
 * 1000-block extent is one line, not a thousand.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck/fsck_internal.h"

int fsck_data_range(const struct fsck_ctx *c, uint64_t start, uint64_t n)
{
	const struct fs_super *sb = c->sb;
	return start >= sb->data_start && start < sb->total_blocks && n <= sb->total_blocks - start;
}

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
	for (uint64_t b = start; b < start + n; b++) {
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
			c->dup = calloc((c->sb->total_blocks + 63) / 64, 8);
		if (c->dup && !bit_test(c->dup, b)) {
			bit_set(c->dup, b);
			c->ndup++;
		}
	}
}

/* ---- runs ------------------------------------------------------------------ */

struct run {
	int code;
	uint64_t start, n;
};

static void report_run(struct fsck_ctx *c, const struct run *r)
{
	if (!r->n)
		return;
	char where[96];
	if (r->n == 1)
		snprintf(where, sizeof(where), "block %llu", (unsigned long long)r->start);
	else
		snprintf(where, sizeof(where), "blocks %llu-%llu (%llu blocks)",
			 (unsigned long long)r->start, (unsigned long long)(r->start + r->n - 1),
			 (unsigned long long)r->n);
	int one = r->n == 1;
	struct fsck_item *it;
	switch (r->code) {
	case FC_BLOCK_META_FREE:
		it = fsck_problem(c, r->code, "%s: metadata (below the data area at block %llu) but "
					      "marked free in the block bitmap",
				  where, (unsigned long long)c->sb->data_start);
		it->fixable = 1;
		break;
	case FC_BLOCK_LEAK:
		it = fsck_problem(c, r->code, "%s: marked used but %s to nothing (leak)", where,
				  one ? "belongs" : "belong");
		/* Blocks a damaged tree may still hold look leaked too. */
		it->fixable = c->claims_complete;
		break;
	default:
		it = fsck_problem(c, r->code, "%s: in use by a tree but marked free in the block bitmap "
					      "(the allocator could hand %s out again)",
				  where, one ? "it" : "them");
		it->fixable = 1;
	}
	it->a = r->start;
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

static void check_metadata_blocks(struct fsck_ctx *c)
{
	struct run r = {0};
	for (uint64_t b = 0; b < c->sb->data_start; b++)
		run_add(c, &r, bit_test(c->bbits, b) ? 0 : FC_BLOCK_META_FREE, b);
	report_run(c, &r);
}

static void check_data_blocks(struct fsck_ctx *c)
{
	const uint64_t total = c->sb->total_blocks;
	struct run r = {0};
	uint64_t b = c->sb->data_start;
	while (b < total) {
		/* Whole words that agree are skipped: the common case. */
		if (!(b & 63) && b + 64 <= total && c->bbits[b >> 6] == c->claimed[b >> 6]) {
			b += 64;
			if (!(b & 0xfffff))
				fsck_progress(c, "blocks", b, total);
			continue;
		}
		int used = bit_test(c->bbits, b), cl = bit_test(c->claimed, b);
		int code = used && !cl ? FC_BLOCK_LEAK : !used && cl ? FC_BLOCK_FREE_USED : 0;
		if (code || r.n)
			run_add(c, &r, code, b);
		b++;
	}
	report_run(c, &r);
	fsck_progress(c, "blocks", total, total);
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
		o += (size_t)snprintf(out + o, len - o, "%s %llu", k == i ? "" : k + 1 == j ? " and" : ",",
				      (unsigned long long)dv[k].ino);
}

static void report_dup_run(struct fsck_ctx *c, uint64_t start, uint64_t n, const char *owners)
{
	if (n == 1)
		fsck_problem(c, FC_BLOCK_DUP, "block %llu: claimed by %s", (unsigned long long)start,
			     owners);
	else if (n > 1)
		fsck_problem(c, FC_BLOCK_DUP, "blocks %llu-%llu (%llu blocks): claimed by %s",
			     (unsigned long long)start, (unsigned long long)(start + n - 1),
			     (unsigned long long)n, owners);
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
			       it->code == FC_EXTENT_BAD || it->code == FC_DENT_KEY || it->code == FC_TREE;
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
	check_metadata_blocks(c);
	check_data_blocks(c);
	uint64_t used = 0;
	for (uint64_t w = 0; w < (c->sb->total_blocks + 63) / 64; w++)
		used += (uint64_t)__builtin_popcountll(c->claimed[w]);
	c->r->blocks_in_use = used;
	if (c->ndup)
		find_dup_owners(c);
	return 0;
}
