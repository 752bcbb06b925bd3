/*
 * test_alloc.c - bitmap allocator over a real cache and emulated medium.
 *
 * Covers: format (reserved units, padding), open, next-fit runs, runs
 * shortened by used units and by bitmap-block boundaries, take, free and
 * the free counter, ENOSPC, first_unit, reopening from the cached bitmap,
 * and a random workload checked against a plain bool array.
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
#include "fs/format.h"
#include "media/media.h"

#define MEDIA_BLOCKS 64
#define BMAP_START 4

struct env {
	char path[128];
	struct media *m;
	struct cache *c;
};

static struct env *env_new(void)
{
	static unsigned seq;
	struct env *e = calloc(1, sizeof(*e));
	char err[256];
	snprintf(e->path, sizeof(e->path), "/dev/shm/cairn-test-alloc-%d-%u", (int)getpid(), seq++);
	if (media_open(&e->m, MEDIA_EMUL, e->path, MEDIA_BLOCKS * (uint64_t)FS_BLOCK_SIZE,
		       MEDIA_CREATE, err, sizeof(err)))
		fail_msg("media_open %s: %s", e->path, err);
	/* Unlinked at once: the mapping lives on, and a failed test (cmocka
	 * jumps past env_free) leaves nothing in /dev/shm. */
	unlink(e->path);
	assert_int_equal(cache_create(&e->c, e->m, 0), 0);
	return e;
}

static void env_free(struct env *e)
{
	cache_destroy(e->c);
	media_close(e->m);
	free(e);
}

static void test_format_open(void **state)
{
	struct env *e = env_new();
	struct alloc *a;
	/* 70000 units need 3 bitmap blocks (32768 each). */
	assert_int_equal(alloc_format(e->c, BMAP_START, 2, 70000, 10), -EINVAL);
	assert_int_equal(alloc_format(e->c, BMAP_START, 3, 70000, 100), 0);
	assert_int_equal(cache_dirty_count(e->c), 3);
	assert_int_equal(alloc_open(&a, e->c, BMAP_START, 3, 70000, 100), 0);
	assert_int_equal(alloc_total(a), 70000);
	assert_int_equal(alloc_free_count(a), 70000 - 100);
	assert_true(alloc_is_used(a, 0));
	assert_true(alloc_is_used(a, 99));
	assert_false(alloc_is_used(a, 100));
	assert_false(alloc_is_used(a, 69999));
	assert_true(alloc_is_used(a, 70000)); /* beyond: never free */
	/* Padding bits past nunits are set on the media image. */
	struct buf *b;
	assert_int_equal(cache_get(e->c, BMAP_START + 2, &b), 0);
	uint64_t unit = 70000 - 2 * 32768; /* first padding unit within block 2 */
	assert_true((b->data[unit / 8] >> (unit % 8)) & 1);
	assert_false((b->data[(unit - 1) / 8] >> ((unit - 1) % 8)) & 1);
	cache_put(e->c, b);
	alloc_close(a);
	env_free(e);
}

static void test_runs(void **state)
{
	struct env *e = env_new();
	struct alloc *a;
	assert_int_equal(alloc_format(e->c, BMAP_START, 3, 70000, 100), 0);
	assert_int_equal(alloc_open(&a, e->c, BMAP_START, 3, 70000, 100), 0);
	uint64_t s, g;
	assert_int_equal(alloc_run(a, 0, 10, &s, &g), 0);
	assert_int_equal(s, 100);
	assert_int_equal(g, 10);
	/* Next-fit: the next run continues where the last ended. */
	assert_int_equal(alloc_run(a, 0, 5, &s, &g), 0);
	assert_int_equal(s, 110);
	assert_int_equal(g, 5);
	/* A hint is honoured. */
	assert_int_equal(alloc_run(a, 1000, 3, &s, &g), 0);
	assert_int_equal(s, 1000);
	assert_int_equal(g, 3);
	/* A run stops at a used unit. */
	assert_int_equal(alloc_take(a, 2010), 0);
	assert_int_equal(alloc_run(a, 2000, 100, &s, &g), 0);
	assert_int_equal(s, 2000);
	assert_int_equal(g, 10);
	/* ... and at a bitmap block boundary (32768). */
	assert_int_equal(alloc_run(a, 32760, 100, &s, &g), 0);
	assert_int_equal(s, 32760);
	assert_int_equal(g, 8);
	assert_int_equal(alloc_run(a, 32768, 100, &s, &g), 0);
	assert_int_equal(s, 32768);
	assert_int_equal(g, 100);
	/* ... and at the end of the units, and wraps around from there. */
	assert_int_equal(alloc_run(a, 69990, 100, &s, &g), 0);
	assert_int_equal(s, 69990);
	assert_int_equal(g, 10);
	assert_int_equal(alloc_run(a, 0, 1, &s, &g), 0);
	assert_int_equal(s, 115); /* cursor wrapped to first, first free is 115 */
	/* Hints below first_unit or beyond the end fall back to the cursor. */
	assert_int_equal(alloc_run(a, 5, 1, &s, &g), 0);
	assert_int_equal(s, 116);
	assert_int_equal(alloc_run(a, 1ull << 40, 1, &s, &g), 0);
	assert_int_equal(s, 117);
	uint64_t used = 10 + 5 + 3 + 1 + 10 + 8 + 100 + 10 + 3;
	assert_int_equal(alloc_free_count(a), 70000 - 100 - used);
	assert_int_equal(alloc_run(a, 0, 0, &s, &g), -EINVAL);
	alloc_close(a);
	env_free(e);
}

static void test_take_free(void **state)
{
	struct env *e = env_new();
	struct alloc *a;
	assert_int_equal(alloc_format(e->c, BMAP_START, 1, 1000, 8), 0);
	assert_int_equal(alloc_open(&a, e->c, BMAP_START, 1, 1000, 8), 0);
	assert_int_equal(alloc_take(a, 500), 0);
	assert_int_equal(alloc_take(a, 500), -EEXIST);
	assert_int_equal(alloc_take(a, 3), -EINVAL);   /* below first_unit */
	assert_int_equal(alloc_take(a, 1000), -EINVAL); /* beyond */
	assert_int_equal(alloc_free_count(a), 991);
	alloc_free(a, 500, 1);
	assert_int_equal(alloc_free_count(a), 992);
	alloc_free(a, 500, 1); /* double free: no change in the count */
	assert_int_equal(alloc_free_count(a), 992);
	alloc_free(a, 0, 8); /* reserved units are never freed */
	assert_true(alloc_is_used(a, 0));
	assert_int_equal(alloc_free_count(a), 992);
	alloc_free(a, 990, 1000); /* clamped to the end */
	assert_int_equal(alloc_free_count(a), 992);
	alloc_close(a);
	env_free(e);
}

static void test_enospc(void **state)
{
	struct env *e = env_new();
	struct alloc *a;
	assert_int_equal(alloc_format(e->c, BMAP_START, 1, 200, 8), 0);
	assert_int_equal(alloc_open(&a, e->c, BMAP_START, 1, 200, 8), 0);
	uint64_t s, g, total = 0;
	while (alloc_run(a, 0, 7, &s, &g) == 0) {
		assert_true(g >= 1 && g <= 7);
		assert_true(s >= 8 && s + g <= 200);
		total += g;
	}
	assert_int_equal(total, 192);
	assert_int_equal(alloc_free_count(a), 0);
	assert_int_equal(alloc_run(a, 0, 1, &s, &g), -ENOSPC);
	alloc_free(a, 50, 3);
	assert_int_equal(alloc_run(a, 0, 7, &s, &g), 0);
	assert_int_equal(s, 50);
	assert_int_equal(g, 3);
	alloc_close(a);
	env_free(e);
}

/* Quarantine: a freed unit is free in the bitmap block (what the next
 * checkpoint writes) at once, but is handed out again only after the
 * checkpoint that covers the free is sealed and released. */
static void test_quarantine(void **state)
{
	struct env *e = env_new();
	struct alloc *a;
	assert_int_equal(alloc_format(e->c, BMAP_START, 1, 200, 8), 0);
	assert_int_equal(alloc_open(&a, e->c, BMAP_START, 1, 200, 8), 0);
	alloc_set_quarantine(a, 1);
	uint64_t s, g;
	while (alloc_run(a, 0, 64, &s, &g) == 0)
		;
	alloc_free(a, 50, 3);
	alloc_free(a, 50, 3); /* a double free counts once */
	assert_int_equal(alloc_quarantined(a), 3);
	assert_int_equal(alloc_free_count(a), 0);
	assert_true(alloc_is_used(a, 50));
	assert_int_equal(alloc_run(a, 0, 1, &s, &g), -ENOSPC);
	/* The bitmap block already says free. */
	struct buf *b;
	assert_int_equal(cache_get(e->c, BMAP_START, &b), 0);
	assert_int_equal((b->data[50 / 8] >> (50 % 8)) & 1, 0);
	cache_put(e->c, b);
	assert_int_equal(alloc_seal(a), 0);
	alloc_free(a, 60, 1); /* after the seal: waits for the next one */
	alloc_release_sealed(a);
	assert_int_equal(alloc_free_count(a), 3);
	assert_int_equal(alloc_run(a, 0, 7, &s, &g), 0);
	assert_int_equal(s, 50);
	assert_int_equal(g, 3);
	assert_int_equal(alloc_run(a, 0, 1, &s, &g), -ENOSPC); /* 60 still held */
	assert_int_equal(alloc_seal(a), 0);
	alloc_release_sealed(a);
	assert_int_equal(alloc_run(a, 0, 1, &s, &g), 0);
	assert_int_equal(s, 60);
	alloc_close(a);
	env_free(e);
}

/* Units below first_unit stay unavailable even if their bits are clear. */
static void test_first_unit(void **state)
{
	struct env *e = env_new();
	struct alloc *a;
	assert_int_equal(alloc_format(e->c, BMAP_START, 1, 300, 0), 0);
	assert_int_equal(alloc_open(&a, e->c, BMAP_START, 1, 300, 1), 0);
	assert_int_equal(alloc_free_count(a), 299);
	uint64_t s, g;
	assert_int_equal(alloc_run(a, 0, 1, &s, &g), 0);
	assert_int_equal(s, 1);
	assert_true(alloc_is_used(a, 0));
	alloc_close(a);
	env_free(e);
}

static void test_random_vs_model(void **state)
{
	struct env *e = env_new();
	const uint64_t n = 100000, first = 37;
	struct alloc *a;
	assert_int_equal(alloc_format(e->c, BMAP_START, 4, n, first), 0);
	assert_int_equal(alloc_open(&a, e->c, BMAP_START, 4, n, first), 0);
	bool *used = calloc(n, 1);
	for (uint64_t u = 0; u < first; u++)
		used[u] = true;
	uint64_t nfree = n - first;
	srand(12345);
	for (int i = 0; i < 20000; i++) {
		int op = rand() % 3;
		if (op < 2) {
			uint64_t s, g, hint = (uint64_t)rand() % n, want = 1 + rand() % 300;
			int r = alloc_run(a, hint, want, &s, &g);
			if (r == -ENOSPC) {
				assert_int_equal(nfree, 0);
				continue;
			}
			assert_int_equal(r, 0);
			assert_true(g >= 1 && g <= want && s >= first && s + g <= n);
			for (uint64_t u = s; u < s + g; u++) {
				assert_false(used[u]);
				used[u] = true;
			}
			nfree -= g;
		} else {
			uint64_t s = first + (uint64_t)rand() % (n - first), len = 1 + rand() % 500;
			if (s + len > n)
				len = n - s;
			alloc_free(a, s, len);
			for (uint64_t u = s; u < s + len; u++) {
				if (used[u])
					nfree++;
				used[u] = false;
			}
		}
		assert_int_equal(alloc_free_count(a), nfree);
	}
	for (uint64_t u = 0; u < n; u++)
		assert_int_equal(alloc_is_used(a, u), used[u]);
	alloc_close(a);
	/* The cached bitmap blocks carry the same state. */
	assert_int_equal(alloc_open(&a, e->c, BMAP_START, 4, n, first), 0);
	assert_int_equal(alloc_free_count(a), nfree);
	for (uint64_t u = 0; u < n; u++)
		assert_int_equal(alloc_is_used(a, u), used[u]);
	alloc_close(a);
	/* And so does the media once a snapshot is written home. */
	struct cache_snapshot s;
	assert_int_equal(cache_snapshot_dirty(e->c, &s), 0);
	for (size_t i = 0; i < s.count; i++)
		assert_int_equal(media_write(e->m, s.blknos[i] * FS_BLOCK_SIZE,
					     s.images + i * FS_BLOCK_SIZE, FS_BLOCK_SIZE), 0);
	cache_snapshot_commit(e->c, &s);
	cache_snapshot_free(&s);
	struct cache *c2;
	assert_int_equal(cache_create(&c2, e->m, 0), 0);
	assert_int_equal(alloc_open(&a, c2, BMAP_START, 4, n, first), 0);
	assert_int_equal(alloc_free_count(a), nfree);
	for (uint64_t u = 0; u < n; u++)
		assert_int_equal(alloc_is_used(a, u), used[u]);
	alloc_close(a);
	cache_destroy(c2);
	free(used);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_open),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_take_free),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_quarantine),
		cmocka_unit_test(test_first_unit),
		cmocka_unit_test(test_random_vs_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
