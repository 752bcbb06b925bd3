/*
 * test_cache.c - the metadata block cache over a real emulated medium.
 *
 * Covers: get/put and hit/miss, -EINVAL beyond the medium, get_new, the
 * LRU bound, dirty buffers surviving eviction pressure, snapshot (sorted,
 * images, marks clean), restore (skips re-dirtied and forgotten blocks),
 * pinning of in-flight blocks until commit, forget, invalidate, and
 * concurrent readers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/cache.h"
#include "fs/format.h"
#include "media/media.h"

#define NBLOCKS 512

struct env {
	char path[128];
	struct media *m;
	struct cache *c;
};

static uint8_t pattern(uint64_t blkno, size_t i)
{
	return (uint8_t)(blkno * 131 + i * 7 + 1);
}

static void fill_media(struct env *e)
{
	uint8_t blk[FS_BLOCK_SIZE];
	for (uint64_t b = 0; b < NBLOCKS; b++) {
		for (size_t i = 0; i < FS_BLOCK_SIZE; i++)
			blk[i] = pattern(b, i);
		assert_int_equal(media_write(e->m, b * FS_BLOCK_SIZE, blk, FS_BLOCK_SIZE), 0);
	}
}

static int has_pattern(const uint8_t *d, uint64_t blkno)
{
	for (size_t i = 0; i < FS_BLOCK_SIZE; i++)
		if (d[i] != pattern(blkno, i))
			return 0;
	return 1;
}

static struct env *env_new(size_t max_clean)
{
	static unsigned seq;
	struct env *e = calloc(1, sizeof(*e));
	char err[256];
	snprintf(e->path, sizeof(e->path), "/dev/shm/cairn-test-cache-%d-%u", (int)getpid(), seq++);
	int r = media_open(&e->m, MEDIA_EMUL, e->path, NBLOCKS * (uint64_t)FS_BLOCK_SIZE, MEDIA_CREATE,
			   err, sizeof(err));
	if (r)
		fail_msg("media_open %s: %s", e->path, err);
	/* Unlinked at once: the mapping lives on, and a failed test (cmocka
	 * jumps past env_free) leaves nothing in /dev/shm. */
	unlink(e->path);
	fill_media(e);
	assert_int_equal(cache_create(&e->c, e->m, max_clean), 0);
	return e;
}

static void env_free(struct env *e)
{
	cache_destroy(e->c);
	media_close(e->m);
	free(e);
}

static void test_get_put(void **state)
{
	struct env *e = env_new(0);
	struct buf *b, *b2;
	assert_int_equal(cache_get(e->c, 7, &b), 0);
	assert_int_equal(b->blkno, 7);
	assert_true(has_pattern(b->data, 7));
	assert_int_equal(cache_get(e->c, 7, &b2), 0);
	assert_ptr_equal(b, b2);
	cache_put(e->c, b2);
	cache_put(e->c, b);
	struct cache_stats st;
	cache_stats(e->c, &st);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.buffers, 1);
	assert_int_equal(st.clean_unused, 1);
	assert_int_equal(cache_get(e->c, NBLOCKS, &b), -EINVAL);
	assert_int_equal(cache_get(e->c, UINT64_MAX, &b), -EINVAL);
	assert_int_equal(cache_get_new(e->c, NBLOCKS, &b), -EINVAL);
	assert_int_equal(cache_dirty_count(e->c), 0);
	env_free(e);
}

static void test_get_new(void **state)
{
	struct env *e = env_new(0);
	struct buf *b;
	/* Present and clean first: get_new must still zero it. */
	assert_int_equal(cache_get(e->c, 9, &b), 0);
	cache_put(e->c, b);
	assert_int_equal(cache_get_new(e->c, 9, &b), 0);
	for (size_t i = 0; i < FS_BLOCK_SIZE; i++)
		assert_int_equal(b->data[i], 0);
	assert_int_equal(cache_dirty_count(e->c), 1);
	cache_put(e->c, b);
	assert_int_equal(cache_get_new(e->c, 10, &b), 0);
	assert_int_equal(b->data[0], 0);
	cache_put(e->c, b);
	assert_int_equal(cache_dirty_count(e->c), 2);
	env_free(e);
}

static void test_eviction_keeps_dirty(void **state)
{
	struct env *e = env_new(8);
	struct buf *b;
	/* Dirty 20 blocks with a marker the media does not have. */
	for (uint64_t i = 0; i < 20; i++) {
		assert_int_equal(cache_get(e->c, i, &b), 0);
		b->data[0] = 0xEE;
		cache_mark_dirty(e->c, b);
		cache_put(e->c, b);
	}
	for (uint64_t i = 100; i < 400; i++) {
		assert_int_equal(cache_get(e->c, i, &b), 0);
		assert_true(has_pattern(b->data, i));
		cache_put(e->c, b);
	}
	struct cache_stats st;
	cache_stats(e->c, &st);
	assert_true(st.clean_unused <= 8);
	assert_int_equal(st.dirty, 20);
	assert_int_equal(st.buffers, 20 + st.clean_unused);
	assert_true(st.evictions >= 300 - 8);
	for (uint64_t i = 0; i < 20; i++) {
		assert_int_equal(cache_get(e->c, i, &b), 0);
		assert_int_equal(b->data[0], 0xEE);
		cache_put(e->c, b);
	}
	/* Referenced clean buffers are never evicted either. */
	struct buf *held;
	assert_int_equal(cache_get(e->c, 450, &held), 0);
	for (uint64_t i = 100; i < 200; i++) {
		assert_int_equal(cache_get(e->c, i, &b), 0);
		cache_put(e->c, b);
	}
	struct buf *again;
	assert_int_equal(cache_get(e->c, 450, &again), 0);
	assert_ptr_equal(held, again);
	cache_put(e->c, again);
	cache_put(e->c, held);
	env_free(e);
}

static void dirty_block(struct env *e, uint64_t blkno, uint8_t v)
{
	struct buf *b;
	assert_int_equal(cache_get(e->c, blkno, &b), 0);
	memset(b->data, v, FS_BLOCK_SIZE);
	cache_mark_dirty(e->c, b);
	cache_put(e->c, b);
}

static void test_snapshot_restore(void **state)
{
	struct env *e = env_new(4);
	dirty_block(e, 50, 0x50);
	dirty_block(e, 3, 0x03);
	dirty_block(e, 17, 0x17);
	dirty_block(e, 8, 0x08);
	struct cache_snapshot s;
	assert_int_equal(cache_snapshot_dirty(e->c, &s), 0);
	assert_int_equal(s.count, 4);
	uint64_t want[] = { 3, 8, 17, 50 };
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(s.blknos[i], want[i]);
		assert_int_equal(s.images[i * FS_BLOCK_SIZE], (uint8_t)(want[i] == 3 ? 0x03 : want[i] == 8 ? 0x08 : want[i] == 17 ? 0x17 : 0x50));
		assert_int_equal(s.images[i * FS_BLOCK_SIZE + FS_BLOCK_SIZE - 1], s.images[i * FS_BLOCK_SIZE]);
	}
	assert_int_equal(cache_dirty_count(e->c), 0);

	/* Since the snapshot: 8 re-dirtied (stays dirty, once), 17 forgotten. */
	dirty_block(e, 8, 0x88);
	cache_forget(e->c, 17);
	cache_snapshot_restore(e->c, &s);
	assert_int_equal(cache_dirty_count(e->c), 3); /* 3, 8, 50 */
	struct buf *b;
	assert_int_equal(cache_get(e->c, 8, &b), 0);
	assert_int_equal(b->data[0], 0x88);
	cache_put(e->c, b);
	assert_int_equal(cache_get(e->c, 17, &b), 0);
	assert_true(has_pattern(b->data, 17)); /* re-read from the media */
	cache_put(e->c, b);
	cache_snapshot_free(&s);

	struct cache_snapshot s2;
	assert_int_equal(cache_snapshot_dirty(e->c, &s2), 0);
	assert_int_equal(s2.count, 3);
	assert_int_equal(s2.blknos[0], 3);
	assert_int_equal(s2.blknos[1], 8);
	assert_int_equal(s2.blknos[2], 50);
	assert_int_equal(s2.images[FS_BLOCK_SIZE], 0x88);
	cache_snapshot_free(&s2);

	/* An empty snapshot is fine. */
	struct cache_snapshot s3;
	assert_int_equal(cache_snapshot_dirty(e->c, &s3), 0);
	assert_int_equal(s3.count, 0);
	cache_snapshot_free(&s3);
	env_free(e);
}

static void test_inflight_pinned(void **state)
{
	struct env *e = env_new(4);
	for (uint64_t i = 0; i < 10; i++)
		dirty_block(e, i, 0xAB);
	struct cache_snapshot s;
	assert_int_equal(cache_snapshot_dirty(e->c, &s), 0);
	assert_int_equal(s.count, 10);
	/* The checkpoint has not written them home: pressure must not evict
	 * them, or a reader would see the stale media bytes. */
	struct buf *b;
	for (uint64_t i = 100; i < 300; i++) {
		assert_int_equal(cache_get(e->c, i, &b), 0);
		cache_put(e->c, b);
	}
	for (uint64_t i = 0; i < 10; i++) {
		assert_int_equal(cache_get(e->c, i, &b), 0);
		assert_int_equal(b->data[100], 0xAB);
		cache_put(e->c, b);
	}
	struct cache_stats st;
	cache_stats(e->c, &st);
	assert_int_equal(st.inflight, 10);
	/* Commit: the blocks are home (here we write them, as the digest would). */
	for (size_t i = 0; i < s.count; i++)
		assert_int_equal(media_write(e->m, s.blknos[i] * FS_BLOCK_SIZE,
					     s.images + i * FS_BLOCK_SIZE, FS_BLOCK_SIZE), 0);
	cache_snapshot_commit(e->c, &s);
	cache_stats(e->c, &st);
	assert_int_equal(st.inflight, 0);
	assert_true(st.clean_unused <= 4);
	for (uint64_t i = 0; i < 10; i++) {
		assert_int_equal(cache_get(e->c, i, &b), 0);
		assert_int_equal(b->data[100], 0xAB);
		cache_put(e->c, b);
	}
	/* Restore after commit changes nothing. */
	cache_snapshot_restore(e->c, &s);
	assert_int_equal(cache_dirty_count(e->c), 0);
	cache_snapshot_free(&s);

	/* Without an explicit commit, the next snapshot releases the pins. */
	dirty_block(e, 20, 0x20);
	assert_int_equal(cache_snapshot_dirty(e->c, &s), 0);
	cache_snapshot_free(&s);
	assert_int_equal(cache_snapshot_dirty(e->c, &s), 0);
	cache_stats(e->c, &st);
	assert_int_equal(st.inflight, 0);
	cache_snapshot_free(&s);
	env_free(e);
}

static void test_forget_invalidate(void **state)
{
	struct env *e = env_new(0);
	dirty_block(e, 5, 0x55);
	assert_int_equal(cache_dirty_count(e->c), 1);
	cache_forget(e->c, 5);
	assert_int_equal(cache_dirty_count(e->c), 0);
	cache_forget(e->c, 6); /* absent: harmless */
	struct buf *b;
	assert_int_equal(cache_get(e->c, 5, &b), 0);
	assert_true(has_pattern(b->data, 5));
	cache_put(e->c, b);

	/* Invalidate picks up bytes written behind the cache's back. */
	uint8_t blk[FS_BLOCK_SIZE];
	memset(blk, 0x77, sizeof(blk));
	assert_int_equal(media_write(e->m, 5 * FS_BLOCK_SIZE, blk, FS_BLOCK_SIZE), 0);
	assert_int_equal(cache_get(e->c, 5, &b), 0);
	assert_true(has_pattern(b->data, 5)); /* still the cached copy */
	cache_put(e->c, b);
	cache_invalidate(e->c, 5);
	assert_int_equal(cache_get(e->c, 5, &b), 0);
	assert_int_equal(b->data[0], 0x77);
	/* ... also while referenced: refreshed in place. */
	memset(blk, 0x66, sizeof(blk));
	assert_int_equal(media_write(e->m, 5 * FS_BLOCK_SIZE, blk, FS_BLOCK_SIZE), 0);
	cache_invalidate(e->c, 5);
	assert_int_equal(b->data[0], 0x66);
	cache_put(e->c, b);
	env_free(e);
}

struct reader_arg {
	struct env *e;
	unsigned seed;
	int bad;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	for (int i = 0; i < 20000; i++) {
		uint64_t blk = rand_r(&a->seed) % 256;
		struct buf *b;
		if (cache_get(a->e->c, blk, &b)) {
			a->bad++;
			continue;
		}
		if (b->blkno != blk || !has_pattern(b->data, blk))
			a->bad++;
		cache_put(a->e->c, b);
	}
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	struct env *e = env_new(16);
	pthread_t th[4];
	struct reader_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct reader_arg){ e, (unsigned)i * 7919u + 1, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	struct cache_stats st;
	cache_stats(e->c, &st);
	assert_true(st.clean_unused <= 16);
	assert_int_equal(st.buffers, st.clean_unused);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_put),
		cmocka_unit_test(test_get_new),
		cmocka_unit_test(test_eviction_keeps_dirty),
		cmocka_unit_test(test_snapshot_restore),
		cmocka_unit_test(test_inflight_pinned),
		cmocka_unit_test(test_forget_invalidate),
		cmocka_unit_test(test_concurrent_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
