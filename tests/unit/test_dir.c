/*
 * test_dir.c - directories over the real cache, allocator and medium.
 *
 * Covers: insert / lookup / remove with EEXIST, ENOENT and name limits
 * (255 bytes); 200,000 names (set CAIRN_TEST_DIR_NAMES to change, e.g.
 * 1000000); walks that see every entry exactly once, resumed by cookie,
 * and with entries removed during the walk; forced hash collisions (all
 * names in one bucket, and extreme hash values) through the test hook;
 * cookie stability across other inserts and removes; entries and blocks
 * accounting; dir_destroy.  Lookups and inserts are bounded by the tree
 * nodes they visit (the cache's counters), never by time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/alloc.h"
#include "fs/cache.h"
#include "fs/dir.h"
#include "fs/format.h"
#include "fs/fsctx.h"
#include "media/media.h"
#include "fsenv.h"

#define BMAP_START FSENV_BMAP_START
#define FIRST_DATA FSENV_FIRST_DATA

static struct fsenv *env_new(uint64_t nblocks)
{
	return fsenv_new("dir", nblocks, 0);
}

static void env_free(struct fsenv *e)
{
	dir_hash_hook = NULL;
	fsenv_free(e);
}

static uint64_t used_blocks(struct fsenv *e)
{
	return (e->nblocks - FIRST_DATA) - alloc_free_count(e->a);
}

static size_t name_of(char *buf, uint64_t i)
{
	return (size_t)sprintf(buf, "f%07llu.dat", (unsigned long long)i);
}

/* Index of a name made by name_of, or UINT64_MAX. */
static uint64_t index_of(const char *name, size_t len)
{
	char tmp[32];
	if (len < 2 || len > 20 || name[0] != 'f')
		return UINT64_MAX;
	memcpy(tmp, name + 1, len - 1);
	tmp[len - 1] = 0;
	return strtoull(tmp, NULL, 10);
}

static uint64_t names_wanted(void)
{
	const char *s = getenv("CAIRN_TEST_DIR_NAMES");
	return s ? strtoull(s, NULL, 10) : 200000;
}

/* Tree nodes fetched from the cache so far: the work of lookups, the
 * same whatever the machine's speed, sanitizers or parallel tests. */
static uint64_t nodes_visited(struct fsenv *e)
{
	struct cache_stats st;
	cache_stats(e->c, &st);
	return st.hits + st.misses;
}

/* ---- walking ------------------------------------------------------------- */

struct walk_state {
	struct fsenv *e;
	struct fs_inode *dir;
	uint32_t *seen;       /* per index */
	uint8_t *removed;     /* removed ahead by the callback */
	uint64_t n;
	uint64_t calls;
	uint64_t stop_every;  /* return 1 after this many calls (0 = never) */
	uint64_t last_next;
	bool remove_self, remove_ahead;
	bool bad;
};

static int walk_cb(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
		   uint64_t next)
{
	struct walk_state *w = arg;
	uint64_t i = index_of(name, namelen);
	if (i >= w->n || ino != i + 100 || type != DT_REG || next < 3 || next <= w->last_next) {
		w->bad = true;
		return -1;
	}
	w->last_next = next;
	w->seen[i]++;
	w->calls++;
	if (w->remove_self) {
		int err = dir_remove(&w->e->fx, w->dir, name, namelen);
		if (err && !(err == -ENOENT && w->removed[i]))
			w->bad = true;
	}
	if (w->remove_ahead && i % 3 == 0) {
		/* Remove some other entry (likely not yet walked). */
		char other[32];
		uint64_t j = (i * 7919 + 13) % w->n;
		size_t ol = name_of(other, j);
		if (!w->removed[j] && dir_remove(&w->e->fx, w->dir, other, ol) == 0)
			w->removed[j] = 1;
	}
	if (w->stop_every && w->calls % w->stop_every == 0)
		return 1;
	return 0;
}

/* Walks the whole directory, resuming by cookie each time fn stops. */
static void walk_resumed(struct walk_state *w)
{
	uint64_t cookie = 0;
	for (;;) {
		int r = dir_walk(&w->e->fx, w->dir, cookie, walk_cb, w);
		assert_false(w->bad);
		if (r == 0)
			return;
		assert_int_equal(r, 1);
		cookie = w->last_next;
	}
}

/* ---- tests ---------------------------------------------------------------- */

static void test_basic(void **state)
{
	struct fsenv *e = env_new(1024);
	struct fs_inode dir = { 0 };
	uint64_t ino;
	uint8_t type;
	assert_int_equal(dir_lookup(&e->fx, &dir, "a", 1, &ino, &type), -ENOENT);
	assert_int_equal(dir_insert(&e->fx, &dir, "a", 1, 10, DT_REG), 0);
	assert_int_equal(dir_insert(&e->fx, &dir, "a", 1, 11, DT_REG), -EEXIST);
	assert_int_equal(dir_insert(&e->fx, &dir, "b", 1, 12, DT_DIR), 0);
	assert_int_equal(dir_lookup(&e->fx, &dir, "a", 1, &ino, &type), 0);
	assert_int_equal(ino, 10);
	assert_int_equal(type, DT_REG);
	assert_int_equal(dir_lookup(&e->fx, &dir, "b", 1, &ino, &type), 0);
	assert_int_equal(ino, 12);
	assert_int_equal(type, DT_DIR);
	/* Lengths matter, not NUL termination. */
	assert_int_equal(dir_lookup(&e->fx, &dir, "ab", 1, &ino, &type), 0);
	assert_int_equal(dir_lookup(&e->fx, &dir, "ab", 2, &ino, &type), -ENOENT);
	assert_int_equal(dir.entries, 2);
	assert_int_equal(dir.blocks, 1);
	assert_int_equal(dir_destroy(&e->fx, &dir), -ENOTEMPTY);
	assert_int_equal(dir_remove(&e->fx, &dir, "a", 1), 0);
	assert_int_equal(dir_remove(&e->fx, &dir, "a", 1), -ENOENT);
	assert_int_equal(dir_lookup(&e->fx, &dir, "a", 1, &ino, &type), -ENOENT);
	assert_int_equal(dir.entries, 1);
	assert_int_equal(dir_remove(&e->fx, &dir, "b", 1), 0);
	assert_int_equal(dir.entries, 0);
	assert_int_equal(dir.tree_root, 0);
	assert_int_equal(dir.blocks, 0);
	assert_int_equal(dir_destroy(&e->fx, &dir), 0);
	assert_int_equal(used_blocks(e), 0);
	env_free(e);
}

static void test_name_limits(void **state)
{
	struct fsenv *e = env_new(1024);
	struct fs_inode dir = { 0 };
	char longname[300];
	uint64_t ino;
	memset(longname, 'x', sizeof(longname));
	for (int v = 0; v < 40; v++) {
		longname[0] = (char)('A' + v);
		assert_int_equal(dir_insert(&e->fx, &dir, longname, DIR_NAME_MAX, 1000 + v, DT_REG), 0);
	}
	/* Same 255-byte prefix rules: a 254-byte name is a different name. */
	longname[0] = 'A';
	assert_int_equal(dir_insert(&e->fx, &dir, longname, DIR_NAME_MAX - 1, 999, DT_REG), 0);
	assert_int_equal(dir_insert(&e->fx, &dir, longname, DIR_NAME_MAX + 1, 1, DT_REG), -ENAMETOOLONG);
	assert_int_equal(dir_insert(&e->fx, &dir, longname, 0, 1, DT_REG), -EINVAL);
	assert_int_equal(dir_lookup(&e->fx, &dir, longname, DIR_NAME_MAX + 1, &ino, NULL), -ENOENT);
	for (int v = 0; v < 40; v++) {
		longname[0] = (char)('A' + v);
		assert_int_equal(dir_lookup(&e->fx, &dir, longname, DIR_NAME_MAX, &ino, NULL), 0);
		assert_int_equal(ino, 1000 + v);
	}
	longname[0] = 'A';
	assert_int_equal(dir_lookup(&e->fx, &dir, longname, DIR_NAME_MAX - 1, &ino, NULL), 0);
	assert_int_equal(ino, 999);
	/* 41 names of ~273 bytes: more than one leaf. */
	assert_true(dir.blocks >= 3);
	assert_int_equal(dir.entries, 41);
	env_free(e);
}

static void test_many_names(void **state)
{
	const uint64_t n = names_wanted();
	struct fsenv *e = env_new(n / 20 + 4096);
	struct fs_inode dir = { 0 };
	char name[32];
	uint64_t v0 = nodes_visited(e);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(dir_insert(&e->fx, &dir, name, name_of(name, i), i + 100, DT_REG), 0);
	uint64_t v1 = nodes_visited(e);
	assert_int_equal(dir.entries, n);
	assert_int_equal(dir.blocks, used_blocks(e));
	uint64_t ino, most = 0;
	uint8_t type;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t before = nodes_visited(e);
		assert_int_equal(dir_lookup(&e->fx, &dir, name, name_of(name, i), &ino, &type), 0);
		assert_int_equal(ino, i + 100);
		if (nodes_visited(e) - before > most)
			most = nodes_visited(e) - before;
	}
	uint64_t v2 = nodes_visited(e);
	for (uint64_t i = n; i < n + 1000; i++)
		assert_int_equal(dir_lookup(&e->fx, &dir, name, name_of(name, i), &ino, &type), -ENOENT);
	for (uint64_t i = 0; i < n; i += 97)
		assert_int_equal(dir_insert(&e->fx, &dir, name, name_of(name, i), 1, DT_REG), -EEXIST);
	print_message("%llu names: insert %.2f nodes/op, lookup %.2f nodes/op (at most %llu), "
		      "%llu blocks\n",
		      (unsigned long long)n, (double)(v1 - v0) / (double)n,
		      (double)(v2 - v1) / (double)n, (unsigned long long)most,
		      (unsigned long long)dir.blocks);
	/* O(log n) nodes per lookup and insert, not O(n): a tree of 200,000
	 * names is 3 levels deep (a bucket's collisions may add a leaf). */
	assert_true(most <= 8);
	assert_true((v2 - v1) / n <= 4);
	assert_true((v1 - v0) / n <= 12);

	/* A whole walk, and one resumed by cookie every 1000 entries. */
	struct walk_state w = { .e = e, .dir = &dir, .seen = calloc(n, 4), .removed = calloc(n, 1), .n = n };
	walk_resumed(&w);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(w.seen[i], 1);
	memset(w.seen, 0, n * 4);
	w.calls = w.last_next = 0;
	w.stop_every = 1000;
	walk_resumed(&w);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(w.seen[i], 1);

	/* Walk removing each entry it sees and others ahead of it. */
	memset(w.seen, 0, n * 4);
	w.calls = w.last_next = 0;
	w.stop_every = 777;
	w.remove_self = w.remove_ahead = true;
	walk_resumed(&w);
	uint64_t ahead = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (w.removed[i]) {
			ahead++;
			assert_true(w.seen[i] <= 1);
		} else {
			assert_int_equal(w.seen[i], 1);
		}
	}
	assert_true(ahead > n / 20);
	assert_int_equal(dir.entries, 0);
	assert_int_equal(dir.tree_root, 0);
	assert_int_equal(dir.blocks, 0);
	assert_int_equal(used_blocks(e), 0);
	free(w.seen);
	free(w.removed);
	env_free(e);
}

static uint64_t hash_const(const char *name, size_t len)
{
	return 0x123456789abcdef0ull;
}

static uint64_t hash_zero(const char *name, size_t len)
{
	return 0;
}

static uint64_t hash_max(const char *name, size_t len)
{
	return UINT64_MAX;
}

static uint64_t hash_few(const char *name, size_t len)
{
	/* 16 buckets, adjacent: collisions and neighbouring buckets. */
	uint64_t i = index_of(name, len);
	return (0x4000000000000000ull + (i % 16) * 0x10000ull) | (i * 2654435761u & 0xffff);
}

static void collisions_with(uint64_t (*hook)(const char *, size_t), uint64_t n)
{
	struct fsenv *e = env_new(4096);
	struct fs_inode dir = { 0 };
	char name[32];
	uint64_t ino;
	dir_hash_hook = hook;
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(dir_insert(&e->fx, &dir, name, name_of(name, i), i + 100, DT_REG), 0);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(dir_lookup(&e->fx, &dir, name, name_of(name, i), &ino, NULL), 0);
		assert_int_equal(ino, i + 100);
		assert_int_equal(dir_insert(&e->fx, &dir, name, name_of(name, i), 1, DT_REG), -EEXIST);
	}
	assert_int_equal(dir_lookup(&e->fx, &dir, name, name_of(name, n), &ino, NULL), -ENOENT);

	/* Remove every third: the others stay reachable; holes get reused. */
	for (uint64_t i = 0; i < n; i += 3)
		assert_int_equal(dir_remove(&e->fx, &dir, name, name_of(name, i)), 0);
	for (uint64_t i = 0; i < n; i++) {
		int r = dir_lookup(&e->fx, &dir, name, name_of(name, i), &ino, NULL);
		assert_int_equal(r, i % 3 == 0 ? -ENOENT : 0);
	}
	for (uint64_t i = 0; i < n; i += 3)
		assert_int_equal(dir_insert(&e->fx, &dir, name, name_of(name, i), i + 100, DT_REG), 0);
	assert_int_equal(dir.entries, n);

	struct walk_state w = { .e = e, .dir = &dir, .seen = calloc(n, 4), .removed = calloc(n, 1), .n = n };
	w.stop_every = 37;
	walk_resumed(&w);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(w.seen[i], 1);
	memset(w.seen, 0, n * 4);
	w.calls = w.last_next = 0;
	w.remove_self = w.remove_ahead = true;
	walk_resumed(&w);
	for (uint64_t i = 0; i < n; i++)
		if (!w.removed[i])
			assert_int_equal(w.seen[i], 1);
	assert_int_equal(dir.entries, 0);
	assert_int_equal(dir.tree_root, 0);
	assert_int_equal(used_blocks(e), 0);
	free(w.seen);
	free(w.removed);
	env_free(e);
}

static void test_collisions_one_bucket(void **state)
{
	collisions_with(hash_const, 3000);
}

static void test_collisions_extreme_hashes(void **state)
{
	collisions_with(hash_zero, 500);
	collisions_with(hash_max, 500);
}

static void test_collisions_few_buckets(void **state)
{
	collisions_with(hash_few, 8000);
}

/* Cookies survive inserts and removes of other entries, collisions too. */
struct first_n {
	uint64_t want, got;
	uint64_t cookie;
	uint64_t idx[64];
};

static int first_n_cb(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
		      uint64_t next)
{
	struct first_n *f = arg;
	f->idx[f->got++] = index_of(name, namelen);
	f->cookie = next;
	return f->got == f->want;
}

static int collect_cb(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
		      uint64_t next)
{
	uint32_t *seen = arg;
	seen[index_of(name, namelen)]++;
	return 0;
}

static void cookie_stability(uint64_t (*hook)(const char *, size_t))
{
	struct fsenv *e = env_new(4096);
	struct fs_inode dir = { 0 };
	char name[32];
	const uint64_t n = 3000;
	dir_hash_hook = hook;
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(dir_insert(&e->fx, &dir, name, name_of(name, i), i + 100, DT_REG), 0);
	struct first_n f = { .want = 50 };
	assert_int_equal(dir_walk(&e->fx, &dir, 0, first_n_cb, &f), 1);
	assert_true(f.cookie >= 3);
	/* Between two readdir calls: remove the 50 seen and 500 others, add
	 * 2000 new names (forcing splits everywhere). */
	uint8_t *gone = calloc(n + 2000, 1);
	for (uint64_t k = 0; k < 50; k++) {
		assert_int_equal(dir_remove(&e->fx, &dir, name, name_of(name, f.idx[k])), 0);
		gone[f.idx[k]] = 1;
	}
	for (uint64_t i = 1; i < n; i += 6)
		if (!gone[i] && dir_remove(&e->fx, &dir, name, name_of(name, i)) == 0)
			gone[i] = 1;
	for (uint64_t i = n; i < n + 2000; i++)
		assert_int_equal(dir_insert(&e->fx, &dir, name, name_of(name, i), i + 100, DT_REG), 0);
	uint32_t *seen = calloc(n + 2000, 4);
	assert_int_equal(dir_walk(&e->fx, &dir, f.cookie, collect_cb, seen), 0);
	/* Every untouched original entry not in the first 50 is seen once;
	 * the first 50 and removed ones are not seen. */
	for (uint64_t i = 0; i < n; i++) {
		if (gone[i])
			assert_int_equal(seen[i], 0);
		else
			assert_int_equal(seen[i], 1);
	}
	free(gone);
	free(seen);
	env_free(e);
}

static void test_cookie_stability(void **state)
{
	cookie_stability(NULL);
	cookie_stability(hash_const);
	cookie_stability(hash_few);
}

/* Without the hook, a walk starting "after ." and "after .." (cookies 1
 * and 2) starts at the beginning too. */
static void test_cookie_small_values(void **state)
{
	struct fsenv *e = env_new(1024);
	struct fs_inode dir = { 0 };
	char name[32];
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(dir_insert(&e->fx, &dir, name, name_of(name, i), i + 100, DT_REG), 0);
	for (uint64_t c = 0; c < 3; c++) {
		uint32_t seen[100] = { 0 };
		assert_int_equal(dir_walk(&e->fx, &dir, c, collect_cb, seen), 0);
		for (int i = 0; i < 100; i++)
			assert_int_equal(seen[i], 1);
	}
	/* Past the end: nothing. */
	uint32_t seen[100] = { 0 };
	assert_int_equal(dir_walk(&e->fx, &dir, 1ull << 63, collect_cb, seen), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(seen[i], 0);
	env_free(e);
}

static void test_enospc(void **state)
{
	struct fsenv *e = env_new(16); /* 8 blocks for nodes */
	struct fs_inode dir = { 0 };
	char name[32];
	uint64_t i;
	int err = 0;
	for (i = 0; i < 100000; i++) {
		err = dir_insert(&e->fx, &dir, name, name_of(name, i), i + 100, DT_REG);
		if (err)
			break;
	}
	assert_int_equal(err, -ENOSPC);
	assert_int_equal(dir.entries, i);
	for (uint64_t j = 0; j < i; j++)
		assert_int_equal(dir_lookup(&e->fx, &dir, name, name_of(name, j), NULL, NULL), 0);
	assert_int_equal(dir_lookup(&e->fx, &dir, name, name_of(name, i), NULL, NULL), -ENOENT);
	assert_int_equal(dir.blocks, used_blocks(e));
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_many_names),
		cmocka_unit_test(test_collisions_one_bucket),
		cmocka_unit_test(test_collisions_extreme_hashes),
		cmocka_unit_test(test_collisions_few_buckets),
		cmocka_unit_test(test_cookie_stability),
		cmocka_unit_test(test_cookie_small_values),
		cmocka_unit_test(test_enospc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
