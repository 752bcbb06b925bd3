/*
 * test_dindex.c - unit tests of the undigested-data index
 * (src/libfs/dindex.c, dindex.h): a red-black tree of non-overlapping
 * pieces of one file.
 *
 * Covers: inserting and finding pieces (dindex_first_after, min/next),
 * overwrites cutting older pieces (head kept, tail kept, split, full cover)
 * with their log offsets adjusted, merging of a write that continues the
 * previous one, dindex_truncate, dindex_remove_before, reservations
 * (released, take_resv), the shared piece counter, dindex_clear, and a
 * random test against a byte-array model of a 64 KiB file.  Run it under
 * ASan (CAIRN_SANITIZE=ON) to check that nothing leaks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "libfs/dindex.h"

#define ANY UINT64_MAX /* src of a ZERO piece: not checked */

struct want {
	uint64_t off, len, src, seq, resv;
	uint8_t kind;
};

/* The index must hold exactly these pieces, in this order. */
static void expect_pieces(struct dindex *d, const struct want *w, size_t n)
{
	size_t i = 0;
	uint64_t resv = 0;
	for (struct piece *p = dindex_min(d); p; p = dindex_next(d, p), i++) {
		if (i >= n) {
			print_error("extra piece [%llu, +%llu)\n", (unsigned long long)p->off,
			            (unsigned long long)p->len);
			fail();
		}
		assert_int_equal(p->off, w[i].off);
		assert_int_equal(p->len, w[i].len);
		assert_int_equal(p->kind, w[i].kind);
		assert_int_equal(p->seq, w[i].seq);
		assert_int_equal(p->resv, w[i].resv);
		if (w[i].src != ANY)
			assert_int_equal(p->src, w[i].src);
		resv += p->resv;
	}
	assert_int_equal(i, n);
	assert_int_equal(d->npieces, n);
	assert_int_equal(d->resv, resv);
	assert_int_equal(dindex_empty(d), n == 0);
}

static void ins(struct dindex *d, uint64_t off, uint64_t len, uint64_t src, uint64_t seq,
                uint64_t resv, enum piece_kind kind, uint64_t want_released)
{
	uint64_t released = 12345;
	assert_int_equal(dindex_insert(d, off, len, src, seq, resv, kind, &released), 0);
	assert_int_equal(released, want_released);
}

static struct piece *find(struct dindex *d, uint64_t off)
{
	return dindex_first_after(d, off);
}

static void expect_found(struct dindex *d, uint64_t off, uint64_t piece_off)
{
	struct piece *p = find(d, off);
	assert_non_null(p);
	assert_int_equal(p->off, piece_off);
	assert_true(p->off + p->len > off);
}

/* ---- insert and find --------------------------------------------------- */

static void test_empty(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex d;
	dindex_init(&d, &pool);
	assert_true(dindex_empty(&d));
	assert_null(dindex_min(&d));
	assert_null(find(&d, 0));
	assert_null(find(&d, UINT64_MAX - 1));
	assert_int_equal(dindex_truncate(&d, 0), 0);
	dindex_remove_before(&d, 100);
	assert_int_equal(dindex_take_resv(&d), 0);
	/* An empty write adds nothing. */
	ins(&d, 10, 0, 5, 1, 3, PIECE_LOG, 0);
	assert_true(dindex_empty(&d));
	assert_int_equal(d.resv, 0);
	assert_int_equal(pool.total, 0);
	dindex_clear(&d);
	assert_true(dindex_empty(&d));
	piece_pool_drain(&pool); /* its slabs */
}

static void test_insert_find(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex d;
	dindex_init(&d, &pool);
	ins(&d, 300, 100, 2000, 2, 1, PIECE_LOG, 0);
	ins(&d, 100, 100, 1000, 1, 2, PIECE_LOG, 0);
	ins(&d, 0, 50, 0, 3, 0, PIECE_ZERO, 0);
	ins(&d, 200, 100, 9000, 4, 0, PIECE_LOG, 0); /* adjacent on both sides */
	ins(&d, 1ull << 40, 4096, 7000, 5, 1, PIECE_LOG, 0);
	const struct want w[] = {
	    {0, 50, ANY, 3, 0, PIECE_ZERO},
	    {100, 100, 1000, 1, 2, PIECE_LOG},
	    {200, 100, 9000, 4, 0, PIECE_LOG},
	    {300, 100, 2000, 2, 1, PIECE_LOG},
	    {1ull << 40, 4096, 7000, 5, 1, PIECE_LOG},
	};
	expect_pieces(&d, w, 5);
	assert_int_equal(pool.total, 5);

	expect_found(&d, 0, 0);
	expect_found(&d, 49, 0);
	expect_found(&d, 50, 100); /* in a hole: the next piece */
	expect_found(&d, 99, 100);
	expect_found(&d, 100, 100);
	expect_found(&d, 199, 100);
	expect_found(&d, 200, 200);
	expect_found(&d, 299, 200);
	expect_found(&d, 300, 300);
	expect_found(&d, 399, 300);
	expect_found(&d, 400, 1ull << 40);
	expect_found(&d, (1ull << 40) - 1, 1ull << 40);
	expect_found(&d, (1ull << 40) + 4095, 1ull << 40);
	assert_null(find(&d, (1ull << 40) + 4096));
	assert_null(find(&d, UINT64_MAX - 1));

	/* Walking from a lookup visits the rest in order. */
	struct piece *p = find(&d, 150);
	p = dindex_next(&d, p);
	assert_int_equal(p->off, 200);
	p = dindex_next(&d, p);
	assert_int_equal(p->off, 300);
	p = dindex_next(&d, p);
	p = dindex_next(&d, p);
	assert_null(p);

	dindex_clear(&d);
	assert_int_equal(pool.total, 0);
	assert_int_equal(d.npieces, 0);
	assert_int_equal(d.resv, 0);
	piece_pool_drain(&pool); /* its slabs */
}

/* ---- overwrites -------------------------------------------------------- */

static void test_cut_head_kept(void **state)
{
	(void)state;
	struct dindex d;
	dindex_init(&d, NULL);
	ins(&d, 100, 100, 1000, 1, 3, PIECE_LOG, 0);
	ins(&d, 150, 100, 5000, 2, 1, PIECE_LOG, 0);
	const struct want w[] = {
	    {100, 50, 1000, 1, 3, PIECE_LOG},
	    {150, 100, 5000, 2, 1, PIECE_LOG},
	};
	expect_pieces(&d, w, 2);
	expect_found(&d, 149, 100);
	expect_found(&d, 150, 150);
	dindex_clear(&d);
}

static void test_cut_tail_kept(void **state)
{
	(void)state;
	struct dindex d;
	dindex_init(&d, NULL);
	ins(&d, 100, 100, 1000, 1, 3, PIECE_LOG, 0);
	ins(&d, 50, 100, 5000, 2, 1, PIECE_LOG, 0);
	const struct want w[] = {
	    {50, 100, 5000, 2, 1, PIECE_LOG},
	    {150, 50, 1050, 1, 3, PIECE_LOG}, /* src moved with the start */
	};
	expect_pieces(&d, w, 2);
	expect_found(&d, 149, 50);
	expect_found(&d, 150, 150);
	/* Same start, shorter: the tail is kept. */
	ins(&d, 150, 10, 8000, 3, 0, PIECE_LOG, 0);
	const struct want w2[] = {
	    {50, 100, 5000, 2, 1, PIECE_LOG},
	    {150, 10, 8000, 3, 0, PIECE_LOG},
	    {160, 40, 1060, 1, 3, PIECE_LOG},
	};
	expect_pieces(&d, w2, 3);
	dindex_clear(&d);
}

static void test_cut_split(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex d;
	dindex_init(&d, &pool);
	ins(&d, 100, 100, 1000, 1, 4, PIECE_LOG, 0);
	ins(&d, 120, 10, 7000, 2, 1, PIECE_LOG, 0);
	const struct want w[] = {
	    {100, 20, 1000, 1, 4, PIECE_LOG}, /* the head keeps the reservation */
	    {120, 10, 7000, 2, 1, PIECE_LOG},
	    {130, 70, 1030, 1, 0, PIECE_LOG},
	};
	expect_pieces(&d, w, 3);
	assert_int_equal(pool.total, 3);
	/* A ZERO piece split by a write: both halves stay ZERO. */
	ins(&d, 1000, 100, 0, 3, 2, PIECE_ZERO, 0);
	ins(&d, 1040, 20, 9000, 4, 0, PIECE_LOG, 0);
	const struct want w2[] = {
	    {100, 20, 1000, 1, 4, PIECE_LOG},  {120, 10, 7000, 2, 1, PIECE_LOG},
	    {130, 70, 1030, 1, 0, PIECE_LOG},  {1000, 40, ANY, 3, 2, PIECE_ZERO},
	    {1040, 20, 9000, 4, 0, PIECE_LOG}, {1060, 40, ANY, 3, 0, PIECE_ZERO},
	};
	expect_pieces(&d, w2, 6);
	assert_int_equal(pool.total, 6);
	/* A split of a split. */
	ins(&d, 150, 1, 111, 5, 0, PIECE_LOG, 0);
	expect_found(&d, 149, 130);
	struct piece *p = find(&d, 151);
	assert_int_equal(p->off, 151);
	assert_int_equal(p->len, 49);
	assert_int_equal(p->src, 1051);
	assert_int_equal(p->seq, 1);
	dindex_clear(&d);
	assert_int_equal(pool.total, 0);
	piece_pool_drain(&pool); /* its slabs */
}

static void test_cut_full_cover(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex d;
	dindex_init(&d, &pool);
	ins(&d, 100, 100, 1000, 1, 3, PIECE_LOG, 0);
	ins(&d, 300, 100, 2000, 2, 2, PIECE_LOG, 0);
	ins(&d, 250, 10, 0, 3, 1, PIECE_ZERO, 0);
	ins(&d, 50, 400, 9000, 4, 7, PIECE_LOG, 6);
	const struct want w[] = {{50, 400, 9000, 4, 7, PIECE_LOG}};
	expect_pieces(&d, w, 1);
	assert_int_equal(pool.total, 1);
	/* Exactly the same range replaces the piece. */
	ins(&d, 50, 400, 123, 5, 1, PIECE_LOG, 7);
	const struct want w2[] = {{50, 400, 123, 5, 1, PIECE_LOG}};
	expect_pieces(&d, w2, 1);
	assert_int_equal(pool.total, 1);
	dindex_clear(&d);
	piece_pool_drain(&pool); /* its slabs */
}

/* One write across several pieces: head of the first kept, the middle ones
 * gone, tail of the last kept. */
static void test_cut_many(void **state)
{
	(void)state;
	struct dindex d;
	dindex_init(&d, NULL);
	for (uint64_t i = 0; i < 10; i++)
		ins(&d, i * 100, 100, 10000 * (i + 1), i + 1, 1, PIECE_LOG, 0);
	ins(&d, 250, 500, 777, 20, 5, PIECE_LOG, 4); /* drops 300..699 */
	const struct want w[] = {
	    {0, 100, 10000, 1, 1, PIECE_LOG},     {100, 100, 20000, 2, 1, PIECE_LOG},
	    {200, 50, 30000, 3, 1, PIECE_LOG},    {250, 500, 777, 20, 5, PIECE_LOG},
	    {750, 50, 80050, 8, 1, PIECE_LOG},    {800, 100, 90000, 9, 1, PIECE_LOG},
	    {900, 100, 100000, 10, 1, PIECE_LOG},
	};
	expect_pieces(&d, w, 7);
	dindex_clear(&d);
}

/* A write that continues the previous one in the log (same record,
 * contiguous source) extends its piece instead of adding one. */
static void test_merge(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex d;
	dindex_init(&d, &pool);
	ins(&d, 0, 100, 1000, 1, 1, PIECE_LOG, 0);
	ins(&d, 100, 50, 1100, 1, 2, PIECE_LOG, 0);
	const struct want w[] = {{0, 150, 1000, 1, 3, PIECE_LOG}};
	expect_pieces(&d, w, 1);
	assert_int_equal(pool.total, 1);
	/* Not contiguous in the log, another record, another kind: no merge. */
	ins(&d, 150, 10, 5000, 1, 0, PIECE_LOG, 0);
	ins(&d, 160, 10, 5010, 2, 0, PIECE_LOG, 0);
	ins(&d, 170, 10, 5020, 2, 0, PIECE_ZERO, 0);
	ins(&d, 180, 10, 0, 2, 1, PIECE_ZERO, 0); /* ZERO after ZERO: merges */
	const struct want w2[] = {
	    {0, 150, 1000, 1, 3, PIECE_LOG},
	    {150, 10, 5000, 1, 0, PIECE_LOG},
	    {160, 10, 5010, 2, 0, PIECE_LOG},
	    {170, 20, ANY, 2, 1, PIECE_ZERO},
	};
	expect_pieces(&d, w2, 4);
	assert_int_equal(pool.total, 4);
	/* A merge after cutting the old tail: the mapping stays right. */
	ins(&d, 50, 20, 1050, 1, 0, PIECE_LOG, 0); /* same bytes, same record */
	struct piece *p = find(&d, 60);
	assert_int_equal(p->src + (60 - p->off), 1060);
	p = find(&d, 100);
	assert_int_equal(p->src + (100 - p->off), 1100);
	assert_int_equal(p->seq, 1);
	dindex_clear(&d);
	assert_int_equal(pool.total, 0);
	piece_pool_drain(&pool); /* its slabs */
}

/* ---- truncate, remove_before, reservations, counter, clear ------------- */

static void test_truncate(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex d;
	dindex_init(&d, &pool);
	ins(&d, 0, 100, 1000, 1, 1, PIECE_LOG, 0);
	ins(&d, 200, 100, 2000, 2, 2, PIECE_LOG, 0);
	ins(&d, 400, 100, 0, 3, 4, PIECE_ZERO, 0);
	ins(&d, 600, 100, 3000, 4, 8, PIECE_LOG, 0);
	assert_int_equal(dindex_truncate(&d, 1000), 0); /* beyond: nothing */
	assert_int_equal(d.npieces, 4);
	assert_int_equal(dindex_truncate(&d, 700), 0); /* at the end */
	assert_int_equal(d.npieces, 4);
	assert_int_equal(dindex_truncate(&d, 450), 8); /* inside a piece */
	const struct want w[] = {
	    {0, 100, 1000, 1, 1, PIECE_LOG},
	    {200, 100, 2000, 2, 2, PIECE_LOG},
	    {400, 50, ANY, 3, 4, PIECE_ZERO},
	};
	expect_pieces(&d, w, 3);
	assert_int_equal(pool.total, 3);
	assert_null(find(&d, 450));
	assert_int_equal(dindex_truncate(&d, 200), 2 + 4); /* at a piece start */
	expect_pieces(&d, w, 1);
	assert_int_equal(dindex_truncate(&d, 150), 0); /* in a hole */
	expect_pieces(&d, w, 1);
	assert_int_equal(dindex_truncate(&d, 1), 0);
	const struct want w2[] = {{0, 1, 1000, 1, 1, PIECE_LOG}};
	expect_pieces(&d, w2, 1);
	assert_int_equal(dindex_truncate(&d, 0), 1);
	expect_pieces(&d, w, 0);
	assert_int_equal(pool.total, 0);
	dindex_clear(&d);
	piece_pool_drain(&pool); /* its slabs */
}

static void test_remove_before(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex d;
	dindex_init(&d, &pool);
	const uint64_t seqs[] = {5, 3, 8, 1, 5, 9, 2, 7, 6, 4};
	for (uint64_t i = 0; i < 10; i++)
		ins(&d, i * 10, 10, 100 * i, seqs[i], 0, PIECE_LOG, 0);
	dindex_remove_before(&d, 1); /* nothing is older than 1 */
	assert_int_equal(d.npieces, 10);
	dindex_remove_before(&d, 5);
	uint64_t n = 0;
	for (struct piece *p = dindex_min(&d); p; p = dindex_next(&d, p), n++) {
		assert_true(p->seq >= 5);
		assert_int_equal(p->seq, seqs[p->off / 10]);
		assert_int_equal(p->src, 10 * p->off);
	}
	assert_int_equal(n, 6); /* 5, 8, 5, 9, 7, 6 */
	assert_int_equal(d.npieces, 6);
	assert_int_equal(pool.total, 6);
	dindex_remove_before(&d, 9);
	const struct want w[] = {{50, 10, 500, 9, 0, PIECE_LOG}};
	expect_pieces(&d, w, 1);
	dindex_remove_before(&d, UINT64_MAX);
	expect_pieces(&d, w, 0);
	assert_int_equal(pool.total, 0);
	dindex_clear(&d);
	piece_pool_drain(&pool); /* its slabs */
}

static void test_reservations(void **state)
{
	(void)state;
	struct dindex d;
	dindex_init(&d, NULL);
	ins(&d, 0, 4096, 1000, 1, 1, PIECE_LOG, 0);
	ins(&d, 4096, 8192, 9000, 2, 2, PIECE_LOG, 0);
	ins(&d, 20000, 100, 0, 3, 1, PIECE_ZERO, 0);
	assert_int_equal(d.resv, 4);
	/* Rewriting the second piece whole gives its blocks back. */
	ins(&d, 4096, 8192, 20000, 4, 2, PIECE_LOG, 2);
	assert_int_equal(d.resv, 4);
	/* The digest allocated the blocks: nothing is reserved any more. */
	assert_int_equal(dindex_take_resv(&d), 4);
	assert_int_equal(d.resv, 0);
	for (struct piece *p = dindex_min(&d); p; p = dindex_next(&d, p))
		assert_int_equal(p->resv, 0);
	assert_int_equal(dindex_take_resv(&d), 0);
	/* ... so covering them releases nothing. */
	ins(&d, 0, 30000, 50000, 5, 8, PIECE_LOG, 0);
	assert_int_equal(d.resv, 8);
	assert_int_equal(d.npieces, 1);
	assert_int_equal(dindex_truncate(&d, 0), 8);
	assert_int_equal(d.resv, 0);
	dindex_clear(&d);
}

static void test_total_two_indexes(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex a, b, c;
	dindex_init(&a, &pool);
	dindex_init(&b, &pool);
	dindex_init(&c, NULL); /* not counted */
	for (uint64_t i = 0; i < 3; i++)
		ins(&a, i * 100, 50, i, i + 1, 0, PIECE_LOG, 0);
	for (uint64_t i = 0; i < 2; i++)
		ins(&b, i * 100, 50, i, i + 1, 0, PIECE_LOG, 0);
	ins(&c, 0, 10, 0, 1, 0, PIECE_LOG, 0);
	assert_int_equal(pool.total, 5);
	ins(&a, 10, 10, 999, 10, 0, PIECE_LOG, 0); /* split: +2 */
	assert_int_equal(pool.total, 7);
	assert_int_equal(a.npieces, 5);
	ins(&b, 0, 1000, 999, 10, 0, PIECE_LOG, 0); /* covers both: -2 +1 */
	assert_int_equal(pool.total, 6);
	assert_int_equal(dindex_truncate(&a, 100), 0); /* -2 */
	assert_int_equal(pool.total, 4);
	dindex_remove_before(&b, 11); /* -1 */
	assert_int_equal(pool.total, 3);
	dindex_clear(&c);
	assert_int_equal(pool.total, 3);
	dindex_clear(&a);
	assert_int_equal(pool.total, 0);
	assert_int_equal(b.npieces, 0);
	dindex_clear(&b);
	assert_int_equal(pool.total, 0);
	piece_pool_drain(&pool); /* its slabs */
}

static void test_clear_and_reuse(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex d;
	dindex_init(&d, &pool);
	for (uint64_t i = 0; i < 10000; i++)
		ins(&d, i * 3, 2, i, i + 1, i % 3, PIECE_LOG, 0);
	assert_int_equal(pool.total, 10000);
	assert_int_equal(d.resv, 9999);
	dindex_clear(&d);
	assert_true(dindex_empty(&d));
	assert_int_equal(d.npieces, 0);
	assert_int_equal(d.resv, 0);
	assert_int_equal(pool.total, 0);
	assert_null(dindex_min(&d));
	ins(&d, 5, 5, 5, 5, 5, PIECE_LOG, 0);
	const struct want w[] = {{5, 5, 5, 5, 5, PIECE_LOG}};
	expect_pieces(&d, w, 1);
	assert_int_equal(pool.total, 1);
	dindex_clear(&d);
	dindex_clear(&d); /* twice is harmless */
	assert_int_equal(pool.total, 0);
	piece_pool_drain(&pool); /* its slabs */
}

/* Pieces are carved from slabs that grow from 64 KiB to 4 MiB: enough of
 * them to fill several of the largest, in two indexes of one pool, all
 * read back; then one index cleared and filled again from the pieces it
 * gave back, and the pool drained and used again from its first size. */
static void check_run(struct dindex *d, uint64_t n, uint64_t tag)
{
	uint64_t i = 0;
	for (struct piece *p = dindex_min(d); p; p = dindex_next(d, p), i++) {
		assert_int_equal(p->off, i * 2);
		assert_int_equal(p->len, 1);
		assert_int_equal(p->src, i + tag);
		assert_int_equal(p->seq, i + 1);
	}
	assert_int_equal(i, n);
}

static void test_many_slabs(void **state)
{
	(void)state;
	enum { N = 150000 }; /* about 24 MiB of pieces in the two indexes */
	struct piece_pool pool = {0};
	for (int round = 0; round < 2; round++) {
		struct dindex a, b;
		dindex_init(&a, &pool);
		dindex_init(&b, &pool);
		for (uint64_t i = 0; i < N; i++) {
			ins(&a, i * 2, 1, i, i + 1, 0, PIECE_LOG, 0);
			ins(&b, i * 2, 1, i + 7, i + 1, 0, PIECE_LOG, 0);
		}
		assert_int_equal(pool.total, 2 * N);
		check_run(&a, N, 0);
		check_run(&b, N, 7);
		dindex_clear(&a);
		assert_int_equal(pool.total, N);
		for (uint64_t i = 0; i < N; i++)
			ins(&a, i * 2, 1, i + 3, i + 1, 0, PIECE_LOG, 0);
		check_run(&a, N, 3);
		check_run(&b, N, 7);
		dindex_clear(&a);
		dindex_clear(&b);
		assert_int_equal(pool.total, 0);
		piece_pool_drain(&pool);
		assert_null(pool.slabs);
		assert_int_equal(pool.next_slab, 0);
	}
}

/* ---- random test against a byte model ------------------------------------ */

#define FSZ 65536
#define NONE 0xff

struct byte_model {
	uint64_t src; /* log offset of this byte (LOG) */
	uint64_t seq;
	uint8_t kind; /* PIECE_LOG, PIECE_ZERO or NONE */
};

static struct byte_model model[FSZ];
static uint32_t next_mapped[FSZ + 1];

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Reservation bookkeeping: every reserved block is in the index, or was
 * released, taken by the digest, or dropped with remove_before. */
struct books {
	uint64_t inserted, released, taken, removed;
};

/* The red-black rules below node n (whose parent is `parent`): parent
 * links, a red node's children black, the same number of black nodes on
 * every path down.  Its black height. */
static int rb_valid(const struct piece *n, const struct piece *parent, int step)
{
	if (!n)
		return 1;
	if (RB_PARENT(n, link) != parent)
		print_error("step %d: piece at %llu has a wrong parent link\n", step,
		            (unsigned long long)n->off);
	assert_ptr_equal(RB_PARENT(n, link), parent);
	const struct piece *l = RB_LEFT(n, link), *r = RB_RIGHT(n, link);
	if (RB_COLOR(n, link) == RB_RED)
		assert_true((!l || RB_COLOR(l, link) == RB_BLACK) &&
		            (!r || RB_COLOR(r, link) == RB_BLACK));
	int hl = rb_valid(l, n, step), hr = rb_valid(r, n, step);
	if (hl != hr)
		print_error("step %d: black heights %d and %d below the piece at %llu\n", step, hl,
		            hr, (unsigned long long)n->off);
	assert_int_equal(hl, hr);
	return hl + (RB_COLOR(n, link) == RB_BLACK);
}

static void check_model(struct dindex *d, uint64_t total, const struct books *b, int step,
                        int all_lookups)
{
	uint64_t prev_end = 0, covered = 0, n = 0, resv = 0;
	struct piece *max = NULL;
	const struct piece *root = RB_ROOT(&d->tree);
	assert_true(!root || RB_COLOR(root, link) == RB_BLACK);
	rb_valid(root, NULL, step);
	for (struct piece *p = dindex_min(d); p; p = dindex_next(d, p), n++) {
		max = p;
		assert_true(p->len > 0);
		/* A search from the root finds it: appends inserted without a
		 * walk down left the tree a search tree. */
		assert_ptr_equal(dindex_first_after(d, p->off), p);
		if (p->off < prev_end)
			print_error("step %d: piece at %llu overlaps the previous one\n", step,
			            (unsigned long long)p->off);
		assert_true(p->off >= prev_end);
		assert_true(p->off + p->len <= FSZ);
		for (uint64_t x = p->off; x < p->off + p->len; x++) {
			const struct byte_model *m = &model[x];
			if (m->kind != p->kind || m->seq != p->seq ||
			    (p->kind == PIECE_LOG && m->src != p->src + (x - p->off))) {
				print_error(
				    "step %d: byte %llu: index says kind %d seq %llu src %llu, "
				    "model kind %d seq %llu src %llu\n",
				    step, (unsigned long long)x, p->kind,
				    (unsigned long long)p->seq,
				    (unsigned long long)(p->src + (x - p->off)), m->kind,
				    (unsigned long long)m->seq, (unsigned long long)m->src);
				fail();
			}
		}
		covered += p->len;
		resv += p->resv;
		prev_end = p->off + p->len;
	}
	uint64_t mapped = 0;
	for (int x = 0; x < FSZ; x++)
		mapped += model[x].kind != NONE;
	if (covered != mapped)
		print_error("step %d: index covers %llu bytes, model %llu\n", step,
		            (unsigned long long)covered, (unsigned long long)mapped);
	assert_int_equal(covered, mapped);
	assert_ptr_equal(d->last, max);
	assert_int_equal(d->npieces, n);
	assert_int_equal(total, n);
	assert_int_equal(d->resv, resv);
	assert_int_equal(b->inserted, d->resv + b->released + b->taken + b->removed);

	/* Lookups: the piece holding the first mapped byte at or after x. */
	if (all_lookups) {
		next_mapped[FSZ] = FSZ;
		for (int x = FSZ - 1; x >= 0; x--)
			next_mapped[x] = model[x].kind != NONE ? (uint32_t)x : next_mapped[x + 1];
	}
	int lookups = all_lookups ? FSZ + 1 : 64;
	for (int i = 0; i < lookups; i++) {
		uint64_t x = all_lookups ? (uint64_t)i : rnd() % (FSZ + 1);
		struct piece *p = dindex_first_after(d, x);
		uint64_t y = x;
		if (all_lookups)
			y = next_mapped[x];
		else
			while (y < FSZ && model[y].kind == NONE)
				y++;
		if (y == FSZ) {
			assert_null(p);
			continue;
		}
		assert_non_null(p);
		if (!(p->off <= y && y < p->off + p->len))
			print_error(
			    "step %d: first_after(%llu) gave [%llu, +%llu), first byte %llu\n",
			    step, (unsigned long long)x, (unsigned long long)p->off,
			    (unsigned long long)p->len, (unsigned long long)y);
		assert_true(p->off <= y && y < p->off + p->len);
	}
	assert_null(dindex_first_after(d, FSZ + 1000));
}

/* Where a digest of generation gen starts looking: no piece before it
 * is still to store. */
static void check_first_unstored(struct dindex *d, uint64_t gen, int step)
{
	struct piece *f = dindex_first_unstored(d, gen);
	for (struct piece *p = dindex_min(d); p && p != f; p = dindex_next(d, p)) {
		if (p->stored != gen)
			print_error("step %d: the piece at %llu is not stored, yet a digest "
			            "would start after it\n",
			            step, (unsigned long long)p->off);
		assert_int_equal(p->stored, gen);
	}
}

/* A digest's pass: from where it starts, stores up to k pieces of those
 * written before upto, as digest_vnode does. */
static uint64_t store_some(struct dindex *d, uint64_t gen, uint64_t upto, int k)
{
	uint64_t taken = 0;
	for (struct piece *p = dindex_first_unstored(d, gen); p && k > 0; p = dindex_next(d, p))
		if (p->stored != gen && p->seq < upto) {
			taken += dindex_mark_stored(d, p, gen);
			k--;
		}
	return taken;
}

static void test_random_model(void **state)
{
	(void)state;
	struct piece_pool pool = {0};
	struct dindex d;
	dindex_init(&d, &pool);
	for (int x = 0; x < FSZ; x++)
		model[x].kind = NONE;
	struct books b = {0};
	uint64_t seq = 1, src_next = 1 << 20;
	uint64_t last_off = 0, last_len = 0, last_src = 0, last_seq = 0;
	uint8_t last_kind = PIECE_LOG;
	const int steps = 6000;
	uint64_t gen = 1;
	for (int step = 0; step < steps; step++) {
		unsigned op = (unsigned)(rnd() % 100);
		if (op >= 96) {
			/* A digest pass stores some pieces; now and then a new
			 * generation (a checkpoint committed, or a failed pass). */
			if (rnd() % 8 == 0)
				gen++;
			b.taken += store_some(&d, gen, seq - rnd() % 4, 1 + (int)(rnd() % 20));
		} else if (op < 2) {
			uint64_t size = rnd() % (FSZ + 1);
			if (rnd() % 4 == 0)
				size = rnd() % 64;
			b.released += dindex_truncate(&d, size);
			for (uint64_t x = size; x < FSZ; x++)
				model[x].kind = NONE;
		} else if (op < 3) {
			uint64_t before = seq > 200 ? seq - rnd() % 200 : rnd() % (seq + 1);
			for (struct piece *p = dindex_min(&d); p; p = dindex_next(&d, p))
				if (p->seq < before)
					b.removed += p->resv;
			dindex_remove_before(&d, before);
			for (int x = 0; x < FSZ; x++)
				if (model[x].kind != NONE && model[x].seq < before)
					model[x].kind = NONE;
		} else if (op < 4) {
			b.taken += dindex_take_resv(&d);
		} else {
			uint64_t off, len, src, s, resv = rnd() % 4;
			uint8_t kind = rnd() % 8 == 0 ? PIECE_ZERO : PIECE_LOG;
			if (op < 30 && last_len && last_off + last_len < FSZ) {
				/* The same record goes on where the last piece ended. */
				off = last_off + last_len;
				src = last_src + last_len;
				s = last_seq;
				kind = last_kind;
				len = 1 + rnd() % 512;
			} else if (op < 50 && d.last && d.last->off + d.last->len < FSZ - 64) {
				/* A new record appends after the last piece, or
				 * just beyond it (a hole). */
				off = d.last->off + d.last->len + rnd() % 3;
				len = 1 + rnd() % 64;
				src = src_next;
				s = ++seq;
			} else {
				off = rnd() % FSZ;
				unsigned size_class = (unsigned)(rnd() % 10);
				len = 1 + rnd() % (size_class < 6   ? 64
				                   : size_class < 9 ? 4096
				                                    : FSZ);
				src = src_next;
				s = ++seq;
			}
			if (len > FSZ - off)
				len = FSZ - off;
			src_next += len + rnd() % 3;
			uint64_t released = 99;
			assert_int_equal(dindex_insert(&d, off, len, src, s, resv,
			                               (enum piece_kind)kind, &released),
			                 0);
			b.inserted += resv;
			b.released += released;
			for (uint64_t x = off; x < off + len; x++) {
				model[x].kind = kind;
				model[x].seq = s;
				model[x].src = src + (x - off);
			}
			last_off = off;
			last_len = len;
			last_src = src;
			last_seq = s;
			last_kind = kind;
		}
		check_model(&d, pool.total, &b, step, step % 500 == 499);
		check_first_unstored(&d, gen, step);
	}
	b.released += dindex_truncate(&d, 0);
	for (int x = 0; x < FSZ; x++)
		model[x].kind = NONE;
	check_model(&d, pool.total, &b, steps, 1);
	dindex_clear(&d);
	piece_pool_drain(&pool); /* its slabs */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),           cmocka_unit_test(test_insert_find),
	    cmocka_unit_test(test_cut_head_kept),   cmocka_unit_test(test_cut_tail_kept),
	    cmocka_unit_test(test_cut_split),       cmocka_unit_test(test_cut_full_cover),
	    cmocka_unit_test(test_cut_many),        cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_truncate),        cmocka_unit_test(test_remove_before),
	    cmocka_unit_test(test_reservations),    cmocka_unit_test(test_total_two_indexes),
	    cmocka_unit_test(test_clear_and_reuse), cmocka_unit_test(test_many_slabs),
	    cmocka_unit_test(test_random_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
