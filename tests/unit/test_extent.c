/*
 * test_extent.c - file block maps over the real cache, allocator and medium.
 *
 * Covers: sequential appends merging into one extent, merges with the
 * successor and bridging two extents, overlap refusal, sparse files past
 * 1 TiB, lookups of holes, truncate inside an extent and to zero, punch
 * (middle split, across extents, in holes), blocks accounting against the
 * allocator, a random workload against a per-block model, 100k extents,
 * and -ENOSPC on a tiny tier leaving the map intact.  Unwritten extents:
 * their state inline and in the tree, no merge across states nor past the
 * longest unwritten extent, marking parts and wholes written (and
 * -ENOSPC leaving the map intact), punch, truncate and move keeping the
 * state, and a damaged state refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/alloc.h"
#include "fs/cache.h"
#include "fs/extent.h"
#include "fs/format.h"
#include "fs/fsctx.h"
#include "media/media.h"
#include "fsenv.h"

#define BMAP_START FSENV_BMAP_START
#define FIRST_DATA FSENV_FIRST_DATA
/* Physical blocks beyond every test tier: mappable, never allocated (the
 * allocator ignores frees past its end).  Lets a test hold more extents
 * than a small tier has blocks. */
#define FAR_PBLK (1ull << 32)

static struct fsenv *env_new(uint64_t nblocks)
{
	return fsenv_new("extent", nblocks, 0);
}

static void env_free(struct fsenv *e)
{
	fsenv_free(e);
}

static uint64_t used_blocks(struct fsenv *e)
{
	return (e->nblocks - FIRST_DATA) - alloc_free_count(e->a);
}

struct collect {
	struct extent v[64];
	unsigned n;
	uint64_t total; /* extents seen, beyond v too */
	uint64_t blocks;
};

static int collect_cb(void *arg, const struct extent *x)
{
	struct collect *c = arg;
	if (c->n < 64)
		c->v[c->n++] = *x;
	c->total++;
	c->blocks += x->len;
	return 0;
}

static struct collect walk_all(struct fsenv *e, const struct fs_inode *ino, uint64_t from)
{
	struct collect c = {0};
	assert_int_equal(extent_walk(&e->fx, ino, from, collect_cb, &c), 0);
	return c;
}

static void assert_extent(const struct extent *x, uint64_t lblk, uint64_t pblk, uint64_t len)
{
	if (x->lblk != lblk || x->pblk != pblk || x->len != len)
		fail_msg("extent (%llu, %llu, %llu), want (%llu, %llu, %llu)",
		         (unsigned long long)x->lblk, (unsigned long long)x->pblk,
		         (unsigned long long)x->len, (unsigned long long)lblk,
		         (unsigned long long)pblk, (unsigned long long)len);
}

static void test_sequential_appends_merge(void **state)
{
	struct fsenv *e = env_new(8192);
	struct fs_inode ino = {0};
	uint64_t hint = 0;
	/* As the digest would: each new block asked for right after the last. */
	for (uint64_t l = 0; l < 1000; l++) {
		uint64_t p, got;
		assert_int_equal(alloc_run(e->a, hint, 1, &p, &got), 0);
		hint = p + 1;
		assert_int_equal(extent_insert(&e->fx, &ino, l, p, 1), 0);
	}
	struct collect c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 1);
	assert_extent(&c.v[0], 0, FIRST_DATA, 1000);
	assert_int_equal(ino.blocks, 1000); /* one extent: kept in the inode, no node */
	assert_true(ino.flags & FS_INODE_INLINE_EXTENT);
	assert_int_equal(ino.tree_root, 0);
	assert_int_equal(ino.blocks, used_blocks(e));
	struct extent x;
	assert_int_equal(extent_lookup(&e->fx, &ino, 123, &x), 1);
	assert_extent(&x, 0, FIRST_DATA, 1000);
	assert_int_equal(extent_lookup(&e->fx, &ino, 1000, &x), 0);
	assert_int_equal(x.lblk, 1000);
	assert_int_equal(x.pblk, 0);
	assert_int_equal(x.len, UINT64_MAX - 1000);
	/* No tree node lies in the run's way: it stays one extent. */
	for (uint64_t l = 1000; l < 3000; l++) {
		uint64_t p, got;
		assert_int_equal(alloc_run(e->a, hint, 1, &p, &got), 0);
		hint = p + 1;
		assert_int_equal(extent_insert(&e->fx, &ino, l, p, 1), 0);
	}
	c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 1);
	assert_int_equal(ino.blocks, 3000);
	assert_int_equal(ino.blocks, used_blocks(e));
	env_free(e);
}

/* A map of one extent lives in the inode; a second extent, or a hole
 * punched inside the one, moves it into a tree, which then holds both. */
static void test_inline_extent(void **state)
{
	(void)state;
	struct fsenv *e = env_new(1024);
	struct fs_inode ino = {0};
	assert_int_equal(extent_insert(&e->fx, &ino, 0, 100, 4), 0);
	assert_int_equal(extent_insert(&e->fx, &ino, 4, 104, 2), 0); /* joins it */
	assert_true(ino.flags & FS_INODE_INLINE_EXTENT);
	assert_int_equal(ino.tree_root, 0);
	assert_int_equal(ino.blocks, 6);
	assert_int_equal(extent_insert(&e->fx, &ino, 2, 500, 1), -EEXIST);
	struct extent x;
	assert_int_equal(extent_lookup(&e->fx, &ino, 5, &x), 1);
	assert_extent(&x, 0, 100, 6);
	assert_int_equal(extent_lookup(&e->fx, &ino, 6, &x), 0);
	assert_int_equal(x.len, UINT64_MAX - 6);
	/* Cutting either end keeps it inline. */
	assert_int_equal(extent_truncate(&e->fx, &ino, 5), 0);
	assert_int_equal(extent_punch(&e->fx, &ino, 0, 1), 0);
	assert_true(ino.flags & FS_INODE_INLINE_EXTENT);
	assert_int_equal(extent_lookup(&e->fx, &ino, 1, &x), 1);
	assert_extent(&x, 1, 101, 4);
	assert_int_equal(ino.blocks, 4);
	/* Moving it whole keeps it inline too. */
	assert_int_equal(extent_move(&e->fx, &ino, 1, 4, 101, 300), 0);
	assert_int_equal(extent_lookup(&e->fx, &ino, 1, &x), 1);
	assert_extent(&x, 1, 300, 4);
	/* A hole inside: two extents, in a tree of one node. */
	assert_int_equal(extent_punch(&e->fx, &ino, 2, 1), 0);
	assert_false(ino.flags & FS_INODE_INLINE_EXTENT);
	assert_int_not_equal(ino.tree_root, 0);
	struct collect c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 2);
	assert_extent(&c.v[0], 1, 300, 1);
	assert_extent(&c.v[1], 3, 302, 2);
	assert_int_equal(ino.blocks, 3 + 1);
	/* Everything goes, the tree with it. */
	assert_int_equal(extent_truncate(&e->fx, &ino, 0), 0);
	assert_int_equal(ino.tree_root, 0);
	assert_int_equal(ino.blocks, 0);
	/* A distant second extent spills the first into a tree. */
	assert_int_equal(extent_insert(&e->fx, &ino, 0, 100, 1), 0);
	assert_int_equal(extent_insert(&e->fx, &ino, 50, 200, 1), 0);
	assert_false(ino.flags & FS_INODE_INLINE_EXTENT);
	assert_int_equal(walk_all(e, &ino, 0).total, 2);
	assert_int_equal(ino.blocks, 2 + 1);
	env_free(e);
}

static void test_merge_successor_and_bridge(void **state)
{
	struct fsenv *e = env_new(1024);
	struct fs_inode ino = {0};
	assert_int_equal(extent_insert(&e->fx, &ino, 10, 100, 2), 0);
	assert_int_equal(extent_insert(&e->fx, &ino, 14, 104, 2), 0);
	assert_int_equal(walk_all(e, &ino, 0).total, 2);
	assert_int_equal(extent_insert(&e->fx, &ino, 12, 102, 2), 0); /* bridge */
	struct collect c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 1);
	assert_extent(&c.v[0], 10, 100, 6);
	/* Successor only. */
	assert_int_equal(extent_insert(&e->fx, &ino, 30, 300, 5), 0);
	assert_int_equal(extent_insert(&e->fx, &ino, 27, 297, 3), 0);
	c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 2);
	assert_extent(&c.v[1], 27, 297, 8);
	/* Logically adjacent but not physically: no merge. */
	assert_int_equal(extent_insert(&e->fx, &ino, 16, 500, 1), 0);
	assert_int_equal(extent_insert(&e->fx, &ino, 26, 296 - 7, 1), 0);
	c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 4);
	/* Overlaps are refused. */
	assert_int_equal(extent_insert(&e->fx, &ino, 9, 50, 2), -EEXIST);
	assert_int_equal(extent_insert(&e->fx, &ino, 15, 50, 1), -EEXIST);
	assert_int_equal(extent_insert(&e->fx, &ino, 20, 50, 7), -EEXIST);
	assert_int_equal(extent_insert(&e->fx, &ino, 20, 50, 0), -EINVAL);
	assert_int_equal(extent_insert(&e->fx, &ino, 20, 0, 1), -EINVAL);
	assert_int_equal(ino.blocks, 6 + 8 + 1 + 1 + 1);
	/* Walk from inside an extent starts with that extent. */
	c = walk_all(e, &ino, 29);
	assert_int_equal(c.total, 1);
	assert_extent(&c.v[0], 27, 297, 8);
	c = walk_all(e, &ino, 17);
	assert_int_equal(c.total, 2);
	assert_extent(&c.v[0], 26, 289, 1);
	env_free(e);
}

static void test_sparse_1tib(void **state)
{
	struct fsenv *e = env_new(1024);
	struct fs_inode ino = {0};
	const uint64_t far = (1ull << 28) + 5; /* 1 TiB + 20 KiB */
	assert_int_equal(extent_insert(&e->fx, &ino, 0, 100, 1), 0);
	assert_int_equal(extent_insert(&e->fx, &ino, far, 101, 1), 0);
	/* Physically contiguous but logically far apart: two extents. */
	struct collect c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 2);
	assert_extent(&c.v[1], far, 101, 1);
	struct extent x;
	assert_int_equal(extent_lookup(&e->fx, &ino, 1, &x), 0);
	assert_int_equal(x.lblk, 1);
	assert_int_equal(x.len, far - 1);
	assert_int_equal(extent_lookup(&e->fx, &ino, far, &x), 1);
	assert_extent(&x, far, 101, 1);
	assert_int_equal(extent_lookup(&e->fx, &ino, far + 1, &x), 0);
	assert_int_equal(x.len, UINT64_MAX - far - 1);
	/* The format's limit: 2^40 blocks. */
	assert_int_equal(extent_insert(&e->fx, &ino, (1ull << 40) - 1, 200, 1), 0);
	assert_int_equal(extent_insert(&e->fx, &ino, 1ull << 40, 201, 1), -EFBIG);
	assert_int_equal(extent_insert(&e->fx, &ino, (1ull << 40) - 1, 202, 2), -EFBIG);
	assert_int_equal(ino.blocks, 3 + 1);
	/* Truncate between the two: the far blocks go. */
	assert_int_equal(extent_truncate(&e->fx, &ino, 1), 0);
	c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 1);
	assert_int_equal(ino.blocks, 1 + 1);
	env_free(e);
}

static void test_truncate(void **state)
{
	struct fsenv *e = env_new(4096);
	struct fs_inode ino = {0};
	uint64_t base = used_blocks(e);
	uint64_t p, got;
	assert_int_equal(alloc_run(e->a, 0, 100, &p, &got), 0);
	assert_int_equal(got, 100);
	assert_int_equal(extent_insert(&e->fx, &ino, 0, p, 100), 0);
	assert_int_equal(alloc_run(e->a, 0, 50, &p, &got), 0);
	assert_int_equal(extent_insert(&e->fx, &ino, 200, p, 50), 0);
	assert_int_equal(ino.blocks, 151);
	assert_int_equal(used_blocks(e), base + 151);
	/* Inside the first extent: its tail and the whole second go. */
	assert_int_equal(extent_truncate(&e->fx, &ino, 40), 0);
	struct collect c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 1);
	assert_extent(&c.v[0], 0, FIRST_DATA, 40);
	assert_int_equal(ino.blocks, 41);
	assert_int_equal(used_blocks(e), base + 41);
	/* The freed blocks really are free: the allocator hands them out. */
	assert_true(!alloc_is_used(e->a, FIRST_DATA + 40));
	assert_true(alloc_is_used(e->a, FIRST_DATA + 39));
	/* Truncate past the end is a no-op; to zero frees everything. */
	assert_int_equal(extent_truncate(&e->fx, &ino, 40), 0);
	assert_int_equal(ino.blocks, 41);
	assert_int_equal(extent_truncate(&e->fx, &ino, 0), 0);
	assert_int_equal(ino.tree_root, 0);
	assert_int_equal(ino.blocks, 0);
	assert_int_equal(used_blocks(e), base);
	assert_int_equal(walk_all(e, &ino, 0).total, 0);
	struct extent x;
	assert_int_equal(extent_lookup(&e->fx, &ino, 0, &x), 0);
	assert_int_equal(x.len, UINT64_MAX);
	env_free(e);
}

static void test_punch(void **state)
{
	struct fsenv *e = env_new(4096);
	struct fs_inode ino = {0};
	uint64_t base = used_blocks(e);
	uint64_t p, got;
	assert_int_equal(alloc_run(e->a, 0, 100, &p, &got), 0);
	assert_int_equal(extent_insert(&e->fx, &ino, 0, p, 100), 0);
	/* Middle of one extent: split in two. */
	assert_int_equal(extent_punch(&e->fx, &ino, 30, 20), 0);
	struct collect c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 2);
	assert_extent(&c.v[0], 0, p, 30);
	assert_extent(&c.v[1], 50, p + 50, 50);
	assert_int_equal(ino.blocks, 80 + 1);
	assert_int_equal(used_blocks(e), base + 81);
	/* Across both: tail of the first, head of the second. */
	assert_int_equal(extent_punch(&e->fx, &ino, 20, 40), 0);
	c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 2);
	assert_extent(&c.v[0], 0, p, 20);
	assert_extent(&c.v[1], 60, p + 60, 40);
	assert_int_equal(ino.blocks, 60 + 1);
	/* In a hole: nothing.  Exactly one extent: gone. */
	assert_int_equal(extent_punch(&e->fx, &ino, 25, 30), 0);
	assert_int_equal(ino.blocks, 61);
	assert_int_equal(extent_punch(&e->fx, &ino, 60, 40), 0);
	c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 1);
	/* Head of an extent; huge length clamps. */
	assert_int_equal(extent_punch(&e->fx, &ino, 0, 5), 0);
	c = walk_all(e, &ino, 0);
	assert_extent(&c.v[0], 5, p + 5, 15);
	assert_int_equal(extent_punch(&e->fx, &ino, 0, UINT64_MAX), 0);
	assert_int_equal(walk_all(e, &ino, 0).total, 0);
	assert_int_equal(ino.tree_root, 0);
	assert_int_equal(ino.blocks, 0);
	assert_int_equal(used_blocks(e), base);
	env_free(e);
}

/* Random inserts, punches and truncates against a per-block model. */
static void test_random_vs_model(void **state)
{
	struct fsenv *e = env_new(16384);
	struct fs_inode ino = {0};
	const uint64_t span = 6000;
	uint64_t *model = calloc(span, sizeof(uint64_t)); /* lblk -> pblk, 0 = hole */
	srand(4242);
	for (int op = 0; op < 4000; op++) {
		int what = rand() % 10;
		uint64_t l = (uint64_t)rand() % span, n = 1 + (uint64_t)rand() % 40;
		if (l + n > span)
			n = span - l;
		if (what < 6) {
			/* Insert into a hole: shrink n to the hole's size. */
			uint64_t k = 0;
			while (k < n && model[l + k] == 0)
				k++;
			if (k == 0)
				continue;
			uint64_t p, got, hint = l > 0 && model[l - 1] ? model[l - 1] + 1 : 0;
			if (alloc_run(e->a, hint, k, &p, &got))
				continue;
			assert_int_equal(extent_insert(&e->fx, &ino, l, p, got), 0);
			for (uint64_t i = 0; i < got; i++)
				model[l + i] = p + i;
		} else if (what < 9) {
			assert_int_equal(extent_punch(&e->fx, &ino, l, n), 0);
			for (uint64_t i = 0; i < n; i++)
				model[l + i] = 0;
		} else if (rand() % 8 == 0) {
			assert_int_equal(extent_truncate(&e->fx, &ino, l), 0);
			for (uint64_t i = l; i < span; i++)
				model[i] = 0;
		}
		if (op % 200 == 199) {
			uint64_t mapped = 0;
			for (uint64_t i = 0; i < span; i++) {
				struct extent x;
				int r = extent_lookup(&e->fx, &ino, i, &x);
				assert_true(r == 0 || r == 1);
				if (model[i]) {
					mapped++;
					assert_int_equal(r, 1);
					assert_true(x.lblk <= i && i < x.lblk + x.len);
					assert_int_equal(x.pblk + (i - x.lblk), model[i]);
				} else {
					assert_int_equal(r, 0);
					assert_int_equal(x.lblk, i);
					uint64_t j = i;
					while (j < span && !model[j])
						j++;
					if (j < span)
						assert_int_equal(x.len, j - i);
				}
			}
			struct collect c = walk_all(e, &ino, 0);
			assert_int_equal(c.blocks, mapped);
			/* One file owns every allocated block: data and nodes. */
			assert_int_equal(ino.blocks, used_blocks(e));
			assert_true(ino.blocks >= mapped);
		}
	}
	assert_int_equal(extent_truncate(&e->fx, &ino, 0), 0);
	assert_int_equal(ino.blocks, 0);
	assert_int_equal(used_blocks(e), 0);
	free(model);
	env_free(e);
}

static int count_only(void *arg, const struct extent *x)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/* Tree nodes fetched from the cache so far: the work of the map's
 * operations, the same whatever the machine's speed, sanitizers or
 * parallel tests. */
static uint64_t nodes_visited(struct fsenv *e)
{
	struct cache_stats st;
	cache_stats(e->c, &st);
	return st.hits + st.misses;
}

static void test_100k_extents(void **state)
{
	struct fsenv *e = env_new(8192);
	struct fs_inode ino = {0};
	const uint64_t n = 100000;
	uint64_t v0 = nodes_visited(e);
	/* Every other logical block: no two extents can merge. */
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(extent_insert(&e->fx, &ino, 2 * i, FAR_PBLK + 3 * i, 1), 0);
	uint64_t v1 = nodes_visited(e);
	uint64_t nodes = ino.blocks - n;
	assert_int_equal(nodes, used_blocks(e));
	assert_true(nodes < n / 100); /* ~145 extents per leaf */
	for (uint64_t i = 0; i < n; i++) {
		struct extent x;
		assert_int_equal(extent_lookup(&e->fx, &ino, 2 * i, &x), 1);
		assert_extent(&x, 2 * i, FAR_PBLK + 3 * i, 1);
	}
	uint64_t v2 = nodes_visited(e);
	uint64_t count = 0;
	assert_int_equal(extent_walk(&e->fx, &ino, 0, count_only, &count), 0);
	assert_int_equal(count, n);
	assert_int_equal(extent_truncate(&e->fx, &ino, n), 0); /* half */
	count = 0;
	assert_int_equal(extent_walk(&e->fx, &ino, 0, count_only, &count), 0);
	assert_int_equal(count, n / 2);
	uint64_t v3 = nodes_visited(e);
	print_message("100k extents in %llu nodes: insert %.2f nodes/op, lookup %.2f nodes/op, "
	              "walk+truncate half+walk %llu nodes\n",
	              (unsigned long long)nodes, (double)(v1 - v0) / (double)n,
	              (double)(v2 - v1) / (double)n, (unsigned long long)(v3 - v2));
	/* O(depth) nodes per insert (which also looks at its neighbours, to
	 * merge) and per lookup, and per extent walked or truncated: about 8,
	 * 3 and 2.3 here.  A map that scanned would visit O(n) per call. */
	assert_true((v1 - v0) / n <= 10);
	assert_true((v2 - v1) / n <= 4);
	assert_true(v3 - v2 <= 3 * 2 * n); /* walk n, truncate n/2, walk n/2 */
	assert_int_equal(extent_truncate(&e->fx, &ino, 0), 0);
	assert_int_equal(ino.blocks, 0);
	assert_int_equal(used_blocks(e), 0);
	env_free(e);
}

static void assert_state(struct fsenv *e, const struct fs_inode *ino, uint64_t lblk,
                         uint64_t want_lblk, uint64_t want_pblk, uint64_t want_len, int unwritten)
{
	struct extent x;
	assert_int_equal(extent_lookup(&e->fx, ino, lblk, &x), 1);
	assert_extent(&x, want_lblk, want_pblk, want_len);
	if (x.unwritten != unwritten)
		fail_msg("extent at %llu is %s, want %s", (unsigned long long)x.lblk,
		         x.unwritten ? "unwritten" : "written",
		         unwritten ? "unwritten" : "written");
}

static void test_unwritten(void **state)
{
	(void)state;
	struct fsenv *e = env_new(1024);
	struct fs_inode ino = {0};
	/* Inline, with the state in the inode's flags. */
	assert_int_equal(extent_insert_unwritten(&e->fx, &ino, 0, 200, 8), 0);
	assert_true(ino.flags & FS_INODE_INLINE_EXTENT);
	assert_int_equal(ino.flags & FS_INODE_INLINE_STATE, FS_INODE_INLINE_UNWRITTEN);
	assert_int_equal(ino.blocks, 8);
	assert_state(e, &ino, 3, 0, 200, 8, 1);
	/* A written neighbour, contiguous both ways, does not join it. */
	assert_int_equal(extent_insert(&e->fx, &ino, 8, 208, 2), 0);
	assert_false(ino.flags & FS_INODE_INLINE_EXTENT);
	assert_int_equal(walk_all(e, &ino, 0).total, 2);
	assert_state(e, &ino, 8, 8, 208, 2, 0);
	/* Parts marked written: the middle splits, the written pieces merge
	 * with their written neighbours. */
	assert_int_equal(extent_mark_written(&e->fx, &ino, 2, 2), 0);
	assert_state(e, &ino, 0, 0, 200, 2, 1);
	assert_state(e, &ino, 2, 2, 202, 2, 0);
	assert_state(e, &ino, 4, 4, 204, 4, 1);
	assert_int_equal(extent_mark_written(&e->fx, &ino, 4, 1), 0);
	assert_state(e, &ino, 4, 2, 202, 3, 0);
	assert_state(e, &ino, 5, 5, 205, 3, 1);
	assert_int_equal(extent_mark_written(&e->fx, &ino, 5, 3), 0); /* whole: joins both sides */
	assert_state(e, &ino, 9, 2, 202, 8, 0);
	assert_int_equal(walk_all(e, &ino, 0).total, 2);
	/* Only a range inside one unwritten extent can be marked. */
	assert_int_equal(extent_mark_written(&e->fx, &ino, 2, 1), -EINVAL);  /* written */
	assert_int_equal(extent_mark_written(&e->fx, &ino, 1, 2), -EINVAL);  /* across */
	assert_int_equal(extent_mark_written(&e->fx, &ino, 20, 1), -EINVAL); /* a hole */
	assert_int_equal(extent_mark_written(&e->fx, &ino, 0, 2), 0);
	assert_int_equal(walk_all(e, &ino, 0).total, 1);
	assert_state(e, &ino, 0, 0, 200, 10, 0);
	assert_int_equal(ino.blocks, 10 + 1);
	assert_int_equal(extent_truncate(&e->fx, &ino, 0), 0);
	assert_int_equal(ino.blocks, 0);

	/* Inline, marked whole: it stays inline. */
	assert_int_equal(extent_insert_unwritten(&e->fx, &ino, 0, 300, 4), 0);
	assert_int_equal(extent_mark_written(&e->fx, &ino, 0, 4), 0);
	assert_true(ino.flags & FS_INODE_INLINE_EXTENT);
	assert_int_equal(ino.flags & FS_INODE_INLINE_STATE, 0);
	assert_int_equal(ino.tree_root, 0);
	assert_state(e, &ino, 0, 0, 300, 4, 0);
	assert_int_equal(extent_truncate(&e->fx, &ino, 0), 0);

	/* The longest unwritten extent: longer is refused, and neighbours that
	 * would pass it stay apart (written ones merge whatever their length). */
	const uint64_t max = FS_EXTENT_UNWRITTEN_MAX;
	assert_int_equal(extent_insert_unwritten(&e->fx, &ino, 0, FAR_PBLK, max + 1), -EINVAL);
	assert_int_equal(extent_insert_unwritten(&e->fx, &ino, 0, FAR_PBLK, max), 0);
	assert_int_equal(extent_insert_unwritten(&e->fx, &ino, max, FAR_PBLK + max, 1), 0);
	assert_int_equal(
	    extent_insert_unwritten(&e->fx, &ino, max + 2, FAR_PBLK + max + 2, max - 1), 0);
	/* The bridge of [max, max+1) and [max+2, 2max+1) would be max + 1
	 * long: the new block joins its predecessor only. */
	assert_int_equal(extent_insert_unwritten(&e->fx, &ino, max + 1, FAR_PBLK + max + 1, 1), 0);
	struct collect c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 3);
	assert_extent(&c.v[0], 0, FAR_PBLK, max);
	assert_extent(&c.v[1], max, FAR_PBLK + max, 2);
	assert_extent(&c.v[2], max + 2, FAR_PBLK + max + 2, max - 1);
	assert_int_equal(extent_mark_written(&e->fx, &ino, 0, max), 0);
	assert_int_equal(extent_mark_written(&e->fx, &ino, max, 2), 0);
	assert_int_equal(extent_mark_written(&e->fx, &ino, max + 2, max - 1), 0);
	c = walk_all(e, &ino, 0);
	assert_int_equal(c.total, 1);
	assert_extent(&c.v[0], 0, FAR_PBLK, 2 * max + 1);
	assert_int_equal(extent_truncate(&e->fx, &ino, 0), 0);

	/* Punch, truncate and move keep the state of what stays. */
	uint64_t p, got;
	assert_int_equal(alloc_run(e->a, 0, 40, &p, &got), 0);
	assert_int_equal(extent_insert_unwritten(&e->fx, &ino, 0, p, 40), 0);
	assert_int_equal(extent_punch(&e->fx, &ino, 10, 5), 0);
	assert_state(e, &ino, 0, 0, p, 10, 1);
	assert_state(e, &ino, 15, 15, p + 15, 25, 1);
	assert_int_equal(extent_truncate(&e->fx, &ino, 30), 0);
	assert_state(e, &ino, 15, 15, p + 15, 15, 1);
	assert_int_equal(extent_move(&e->fx, &ino, 15, 15, p + 15, 700), 0); /* whole */
	assert_state(e, &ino, 15, 15, 700, 15, 1);
	assert_int_equal(extent_move(&e->fx, &ino, 2, 3, p + 2, 800), 0); /* a part */
	assert_state(e, &ino, 2, 2, 800, 3, 1);
	assert_state(e, &ino, 0, 0, p, 2, 1);
	assert_state(e, &ino, 5, 5, p + 5, 5, 1);
	assert_int_equal(extent_truncate(&e->fx, &ino, 0), 0);
	assert_int_equal(ino.blocks, 0);

	/* A state byte that is neither written nor unwritten is damage. */
	assert_int_equal(extent_insert_unwritten(&e->fx, &ino, 0, 300, 4), 0);
	ino.flags ^= 0x0100; /* one bit of the pattern */
	struct extent x;
	assert_int_equal(extent_lookup(&e->fx, &ino, 0, &x), -EUCLEAN);
	ino.flags ^= 0x0100;
	assert_int_equal(extent_lookup(&e->fx, &ino, 0, &x), 1);
	env_free(e);
}

/* On a tier with no block left, marking part of an unwritten extent,
 * which needs a new record in a full leaf, gives -ENOSPC and changes
 * nothing; marking a whole extent needs no node and works. */
static void test_unwritten_enospc(void **state)
{
	(void)state;
	struct fsenv *e = env_new(24);
	struct fs_inode ino = {0};
	uint64_t i;
	int err = 0;
	for (i = 0; i < 100000 && !err; i++)
		err = extent_insert_unwritten(&e->fx, &ino, 4 * i, FAR_PBLK + 5 * i, 3);
	assert_int_equal(err, -ENOSPC);
	uint64_t p, got;
	while (alloc_run(e->a, 0, 1, &p, &got) == 0)
		;
	/* The first leaf gets room for one record: the first of the two
	 * inserts the split needs fits, the second does not, and the first
	 * is undone. */
	assert_int_equal(extent_punch(&e->fx, &ino, 0, 3), 0);
	uint64_t blocks = ino.blocks, count = 0;
	assert_int_equal(extent_mark_written(&e->fx, &ino, 5, 1), -ENOSPC);
	assert_int_equal(ino.blocks, blocks);
	assert_state(e, &ino, 5, 4, FAR_PBLK + 5, 3, 1);
	assert_state(e, &ino, 6, 4, FAR_PBLK + 5, 3, 1);
	assert_int_equal(extent_walk(&e->fx, &ino, 0, count_only, &count), 0);
	assert_int_equal(count, i - 2);
	assert_int_equal(extent_mark_written(&e->fx, &ino, 4, 3), 0);
	assert_state(e, &ino, 5, 4, FAR_PBLK + 5, 3, 0);
	assert_int_equal(ino.blocks, blocks);
	env_free(e);
}

static void test_enospc_tiny_tier(void **state)
{
	/* 24 blocks, 16 allocatable, all for tree nodes (data is FAR). */
	struct fsenv *e = env_new(24);
	struct fs_inode ino = {0};
	uint64_t i, inserted = 0;
	int err = 0;
	/* 3-block extents with 1-block holes between: nothing merges. */
	for (i = 0; i < 100000; i++) {
		err = extent_insert(&e->fx, &ino, 4 * i, FAR_PBLK + 5 * i, 3);
		if (err)
			break;
		inserted++;
	}
	assert_int_equal(err, -ENOSPC);
	assert_true(inserted > 1000);
	/* Take whatever single blocks remain so no split can succeed. */
	uint64_t p, got, taken = 0, taken_blk[16];
	while (alloc_run(e->a, 0, 1, &p, &got) == 0)
		taken_blk[taken++] = p;
	uint64_t blocks_before = ino.blocks;
	assert_int_equal(blocks_before, 3 * inserted + used_blocks(e) - taken);
	uint64_t count = 0;
	assert_int_equal(extent_walk(&e->fx, &ino, 0, count_only, &count), 0);
	assert_int_equal(count, inserted);
	/* Splitting an extent of the (full) first leaf needs a new record
	 * and so a new leaf: -ENOSPC, and the map is exactly as before. */
	assert_int_equal(extent_punch(&e->fx, &ino, 5, 1), -ENOSPC);
	assert_int_equal(ino.blocks, blocks_before);
	struct extent x;
	assert_int_equal(extent_lookup(&e->fx, &ino, 5, &x), 1);
	assert_extent(&x, 4, FAR_PBLK + 5, 3);
	count = 0;
	assert_int_equal(extent_walk(&e->fx, &ino, 0, count_only, &count), 0);
	assert_int_equal(count, inserted);
	/* A new extent in a hole: -ENOSPC too, nothing changes. */
	assert_int_equal(extent_insert(&e->fx, &ino, 3, FAR_PBLK + 999999, 1), -ENOSPC);
	assert_int_equal(extent_lookup(&e->fx, &ino, 3, &x), 0);
	/* No new record needed: merging, trimming, whole-extent punches work. */
	assert_int_equal(extent_insert(&e->fx, &ino, 3, FAR_PBLK + 3, 1), 0);
	assert_int_equal(extent_lookup(&e->fx, &ino, 0, &x), 1);
	assert_extent(&x, 0, FAR_PBLK, 4);
	assert_int_equal(extent_punch(&e->fx, &ino, 4, 2), 0); /* head of [4,7) */
	assert_int_equal(extent_punch(&e->fx, &ino, 8, 3), 0); /* all of [8,11) */
	assert_int_equal(ino.blocks, blocks_before + 1 - 2 - 3);
	/* Free everything: all blocks come back. */
	for (i = 0; i < taken; i++)
		alloc_free(e->a, taken_blk[i], 1);
	assert_int_equal(extent_truncate(&e->fx, &ino, 0), 0);
	assert_int_equal(ino.blocks, 0);
	assert_int_equal(used_blocks(e), 0);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sequential_appends_merge),
	    cmocka_unit_test(test_inline_extent),
	    cmocka_unit_test(test_merge_successor_and_bridge),
	    cmocka_unit_test(test_sparse_1tib),
	    cmocka_unit_test(test_truncate),
	    cmocka_unit_test(test_punch),
	    cmocka_unit_test(test_random_vs_model),
	    cmocka_unit_test(test_100k_extents),
	    cmocka_unit_test(test_enospc_tiny_tier),
	    cmocka_unit_test(test_unwritten),
	    cmocka_unit_test(test_unwritten_enospc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
