/*
 * test_media.c - unit tests of the media layer (src/media/media*.c).
 *
 * Owns: round trips, reopen and size rules, growing in place, range
 * errors and group commit
 * for the emul (/dev/shm), pmem (libpmem on a /dev/shm file) and file (/tmp)
 * kinds, the recorder hooks, and a given descriptor (a client's log)
 * moved to another number while threads write through it.  May call: the
 * media layer, the recorder, and media_internal.h for white-box checks of
 * group commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "media/media.h"
#include "media/media_internal.h"
#include "media/recorder.h"

#define SIZE (1u << 20)

struct fixture {
	char path[64];
	enum media_kind kind;
};

/* A unique, existing, empty file: media_open(MEDIA_CREATE) must size it. */
static int make_fixture(void **state, const char *dir, enum media_kind kind)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s/cairn-test-media-XXXXXX", dir);
	int fd = mkstemp(f->path);
	if (fd < 0) {
		free(f);
		return -1;
	}
	close(fd);
	f->kind = kind;
	*state = f;
	return 0;
}

static int setup_emul(void **state)
{
	return make_fixture(state, "/dev/shm", MEDIA_EMUL);
}

static int setup_pmem(void **state)
{
	return make_fixture(state, "/dev/shm", MEDIA_PMEM);
}

static int setup_file(void **state)
{
	return make_fixture(state, "/tmp", MEDIA_FILE);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unlink(f->path);
	free(f);
	return 0;
}

static struct media *open_ok(struct fixture *f, uint64_t size, int flags)
{
	struct media *m = NULL;
	char err[256] = "";
	int rc = media_open(&m, f->kind, f->path, size, flags, err, sizeof(err));
	if (rc != 0)
		print_error("media_open: %d %s\n", rc, err);
	assert_int_equal(rc, 0);
	assert_non_null(m);
	return m;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* ---- round trips ---- */

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, SIZE, MEDIA_CREATE);
	assert_int_equal(media_size(m), SIZE);
	assert_int_equal(media_kind(m), f->kind);
	assert_string_equal(media_path(m), f->path);

	static uint8_t a[10000], b[10000];
	const uint64_t offs[] = {0, 1, 63, 4095, 12345, SIZE - sizeof(a)};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		fill(a, sizeof(a), (unsigned)i + 1);
		assert_int_equal(media_store(m, offs[i], a, sizeof(a)), 0);
		assert_int_equal(media_fence(m), 0);
		memset(b, 0, sizeof(b));
		assert_int_equal(media_read(m, offs[i], b, sizeof(b)), 0);
		assert_memory_equal(a, b, sizeof(a));
	}
	/* The last write must be what a reopen sees. */
	const uint8_t *direct = media_direct(m);
	if (f->kind == MEDIA_FILE)
		assert_null(direct);
	else
		assert_memory_equal(direct + SIZE - sizeof(a), a, sizeof(a));
	media_close(m);

	m = open_ok(f, 0, 0); /* size 0: take the file's */
	assert_int_equal(media_size(m), SIZE);
	memset(b, 0, sizeof(b));
	assert_int_equal(media_read(m, SIZE - sizeof(a), b, sizeof(b)), 0);
	assert_memory_equal(a, b, sizeof(a));
	media_close(m);

	m = open_ok(f, SIZE, 0); /* matching size */
	media_close(m);
}

static void test_zero(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, SIZE, MEDIA_CREATE);
	static uint8_t a[300000], b[300000];
	fill(a, sizeof(a), 9);
	assert_int_equal(media_write(m, 100, a, sizeof(a)), 0);
	/* Longer than the file kind's zero buffer, so it loops. */
	assert_int_equal(media_zero(m, 1000, 200000), 0);
	media_flush(m, 0, SIZE);
	assert_int_equal(media_fence(m), 0);
	memset(a + 900, 0, 200000);
	assert_int_equal(media_read(m, 100, b, sizeof(b)), 0);
	assert_memory_equal(a, b, sizeof(a));
	media_close(m);
}

static void test_create_extends_existing(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, 8192, MEDIA_CREATE);
	uint8_t a[100];
	fill(a, sizeof(a), 3);
	assert_int_equal(media_store(m, 4000, a, sizeof(a)), 0);
	assert_int_equal(media_fence(m), 0);
	media_close(m);
	m = open_ok(f, SIZE, MEDIA_CREATE);
	assert_int_equal(media_size(m), SIZE);
	uint8_t b[100];
	assert_int_equal(media_read(m, 4000, b, sizeof(b)), 0);
	assert_memory_equal(a, b, sizeof(a));
	media_close(m);
	/* Creating is mkfs: the medium ends up exactly the size asked for. */
	m = open_ok(f, 8192, MEDIA_CREATE);
	assert_int_equal(media_size(m), 8192);
	media_close(m);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 8192);
}

/* ---- errors ---- */

static void test_size_mismatch(void **state)
{
	struct fixture *f = *state;
	media_close(open_ok(f, 4096, MEDIA_CREATE));
	struct media *m = (struct media *)1;
	char err[256] = "";
	/* A tier smaller than the manifest says must be refused... */
	int rc = media_open(&m, f->kind, f->path, SIZE, 0, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_null(m);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "4096"));
	assert_non_null(strstr(err, "1048576"));
	assert_non_null(strstr(err, "does not match"));
	/* ...and so must a larger one. */
	err[0] = '\0';
	rc = media_open(&m, f->kind, f->path, 1024, 0, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "does not match"));
	/* The file was left alone. */
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 4096);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct media *m = NULL;
	char err[256] = "";
	char missing[128];
	snprintf(missing, sizeof(missing), "%s.missing", f->path);
	int rc = media_open(&m, f->kind, missing, 0, 0, err, sizeof(err));
	assert_int_equal(rc, -ENOENT);
	assert_null(m);
	assert_non_null(strstr(err, missing));

	err[0] = '\0';
	rc = media_open(&m, f->kind, f->path, 0, MEDIA_CREATE, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, f->path));

	/* The fixture file is empty: nothing to map or use. */
	err[0] = '\0';
	rc = media_open(&m, f->kind, f->path, 0, 0, err, sizeof(err));
	assert_true(rc < 0);
	assert_non_null(strstr(err, f->path));

	rc = media_open(&m, (enum media_kind)42, f->path, 0, 0, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);

	/* A tiny error buffer is still a terminated string. */
	char tiny[8];
	rc = media_open(&m, f->kind, missing, 0, 0, tiny, sizeof(tiny));
	assert_int_equal(rc, -ENOENT);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

static void test_out_of_range(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, 4096, MEDIA_CREATE);
	uint8_t buf[16] = {1, 2, 3};
	assert_int_equal(media_write(m, 4090, buf, 7), -EINVAL);
	assert_int_equal(media_write(m, 4090, buf, 6), 0);
	assert_int_equal(media_read(m, 4096, buf, 1), -EINVAL);
	assert_int_equal(media_read(m, 4096, buf, 0), 0);
	assert_int_equal(media_read(m, 4097, buf, 0), -EINVAL);
	assert_int_equal(media_read(m, UINT64_MAX, buf, 2), -EINVAL);
	assert_int_equal(media_read(m, 8, buf, SIZE_MAX), -EINVAL);
	assert_int_equal(media_zero(m, 4095, 2), -EINVAL);
	assert_int_equal(media_store(m, 5000, buf, 1), -EINVAL);
	/* Flushing past the end is clipped, not a crash. */
	media_flush(m, 4000, 100000);
	media_flush(m, UINT64_MAX, 10);
	assert_int_equal(media_fence(m), 0);
	/* Nothing was written by the refused calls. */
	uint8_t back[6];
	assert_int_equal(media_read(m, 4090, back, 6), 0);
	assert_memory_equal(back, buf, 6);
	media_close(m);
}

/* ---- group commit (file kind) ---- */

#define THREADS 8
#define ROUNDS 100
#define BLOCK 4096

struct worker {
	struct media *m;
	int id;
	int failures;
	uint64_t fences;
};

static uint64_t synced_gen(struct media *m)
{
	pthread_mutex_lock(&m->group.lock);
	uint64_t g = m->group.synced_gen;
	pthread_mutex_unlock(&m->group.lock);
	return g;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t block[BLOCK];
	for (int round = 1; round <= ROUNDS; round++) {
		memset(block, 0, sizeof(block));
		block[0] = (uint8_t)w->id;
		memcpy(block + 8, &round, sizeof(round));
		if (media_store(w->m, (uint64_t)w->id * BLOCK, block, BLOCK) != 0)
			w->failures++;
		/* Every write counted so far must be covered when the fence
		 * returns: the white-box form of "durable on return". */
		uint64_t want = atomic_load(&w->m->group.write_gen);
		if (media_fence(w->m) != 0)
			w->failures++;
		if (synced_gen(w->m) < want)
			w->failures++;
		w->fences++;
	}
	return NULL;
}

static void test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, THREADS * BLOCK, MEDIA_CREATE);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.m = m, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	uint64_t fences = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
		fences += w[i].fences;
	}
	uint64_t syncs = media_sync_count(m);
	print_message("group commit: %llu fences served by %llu fdatasync\n",
	              (unsigned long long)fences, (unsigned long long)syncs);
	assert_true(syncs >= 1);
	assert_true(syncs <= fences);
	assert_int_equal(synced_gen(m), atomic_load(&m->group.write_gen));

	/* No write since the last sync: a fence costs no fdatasync. */
	assert_int_equal(media_fence(m), 0);
	assert_int_equal(media_sync_count(m), syncs);
	media_close(m);

	m = open_ok(f, THREADS * BLOCK, 0);
	for (int i = 0; i < THREADS; i++) {
		uint8_t block[BLOCK];
		int round;
		assert_int_equal(media_read(m, (uint64_t)i * BLOCK, block, BLOCK), 0);
		memcpy(&round, block + 8, sizeof(round));
		assert_int_equal(block[0], i);
		assert_int_equal(round, ROUNDS);
	}
	media_close(m);
}

static void *fence_thread(void *arg)
{
	return (void *)(intptr_t)media_fence(arg);
}

/* A fence that arrives while a sync is running waits for it and, if that
 * sync started before its write, runs the next one: never returns early. */
static void test_fence_waits_for_late_sync(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, BLOCK, MEDIA_CREATE);
	uint8_t b[BLOCK] = {7};
	assert_int_equal(media_write(m, 0, b, sizeof(b)), 0);
	/* Pretend a sync that covers nothing new is in flight. */
	pthread_mutex_lock(&m->group.lock);
	m->group.syncing = true;
	pthread_mutex_unlock(&m->group.lock);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fence_thread, m), 0);
	usleep(20000);
	assert_int_equal(media_sync_count(m), 0); /* it is waiting */
	pthread_mutex_lock(&m->group.lock);
	m->group.syncing = false;
	pthread_cond_broadcast(&m->group.done);
	pthread_mutex_unlock(&m->group.lock);
	void *ret;
	pthread_join(t, &ret);
	assert_int_equal((int)(intptr_t)ret, 0);
	assert_int_equal(media_sync_count(m), 1);
	assert_true(synced_gen(m) >= 1);
	media_close(m);
}

/* ---- recorder hooks ---- */

static void test_recorder_hooks(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, 8192, MEDIA_CREATE);
	static uint8_t init[8192], img[8192];
	assert_int_equal(media_read(m, 0, init, sizeof(init)), 0);
	struct recorder *r = recorder_new();
	assert_non_null(r);
	assert_int_equal(recorder_add_part(r, 2, init, sizeof(init)), 0);
	media_set_recorder(m, r, 2);

	uint8_t a[100];
	fill(a, sizeof(a), 5);
	assert_int_equal(media_write(m, 64, a, sizeof(a)), 0);
	assert_int_equal(media_zero(m, 1024, 64), 0);
	assert_int_equal(media_fence(m), 0); /* fence 0 */
	media_flush(m, 64, sizeof(a));
	assert_int_equal(media_fence(m), 0); /* fence 1 */
	/* Refused calls are not recorded. */
	uint64_t pos = recorder_position(r);
	assert_int_equal(media_write(m, 8192, a, 1), -EINVAL);
	assert_int_equal(recorder_position(r), pos);
	assert_int_equal(recorder_fence_count(r), 2);
	assert_int_equal(recorder_error(r), 0);

	/* The final image is the medium's content. */
	static uint8_t now[8192];
	assert_int_equal(media_read(m, 0, now, sizeof(now)), 0);
	assert_int_equal(recorder_final_image(r, 2, img), 0);
	assert_memory_equal(img, now, sizeof(now));

	/* After fence 1 the write is durable.  For the file kind a pwrite is
	 * already durable at fence 0 (fdatasync covers it without a flush). */
	assert_int_equal(recorder_crash_image(r, 2, 1, 2, img), 0);
	assert_memory_equal(img + 64, a, sizeof(a));
	assert_int_equal(recorder_crash_image(r, 1, 1, 2, img), 0);
	if (f->kind == MEDIA_FILE)
		assert_memory_equal(img + 64, a, sizeof(a));
	else
		assert_memory_equal(img, init, sizeof(init));
	assert_int_equal(recorder_crash_image(r, 0, 1, 2, img), 0);
	assert_memory_equal(img, init, sizeof(init));

	media_set_recorder(m, NULL, 0);
	assert_int_equal(media_write(m, 0, a, 1), 0);
	assert_int_equal(recorder_position(r), pos);
	recorder_free(r);
	media_close(m);
}

/* Each kind runs the same tests; the name says which kind failed. */
/* ---- a given descriptor that moves ---- */

/* A client's log (media_open_given) moves its descriptor when the program
 * reuses the number (dup2 onto it): writers on other threads never use a
 * number after it was closed.  Here each move is followed at once by a
 * dup2 of /dev/null onto the old number, so a write that still used it
 * would succeed into /dev/null and its block would read back wrong. */
#define MOVE_BLOCKS 64
#define MOVE_ROUNDS 300

struct mover {
	struct media *m;
	int writer;
};

static void *move_writer(void *arg)
{
	struct mover *mv = arg;
	uint8_t buf[4096];
	for (unsigned round = 0; round < MOVE_ROUNDS; round++)
		for (unsigned b = (unsigned)mv->writer; b < MOVE_BLOCKS; b += 2) {
			fill(buf, sizeof(buf), round * MOVE_BLOCKS + b);
			if (media_write(mv->m, (uint64_t)b * sizeof(buf), buf, sizeof(buf)))
				return (void *)1;
		}
	return NULL;
}

static void test_move_given_fd(void **state)
{
	struct fixture *f = *state;
	struct media *plain = open_ok(f, SIZE, MEDIA_CREATE);
	assert_int_equal(media_move_fd(plain, 100), -EINVAL); /* opened by path: stays */
	media_close(plain);
	int given = open(f->path, O_RDWR);
	assert_true(given >= 0);
	struct media *m = NULL;
	char err[256];
	assert_int_equal(media_open_given(&m, MEDIA_FILE, given, "given", err, sizeof(err)), 0);
	close(given); /* the medium keeps a copy of its own */
	int null = open("/dev/null", O_RDWR);
	assert_true(null >= 0);
	struct mover w[2] = {{m, 0}, {m, 1}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, move_writer, &w[i]), 0);
	int moves = 0;
	for (void *done = NULL; moves < 2000; moves++) {
		int old = media_fd(m);
		assert_int_equal(media_move_fd(m, old < 200 ? 200 : 100), 0);
		assert_int_not_equal(media_fd(m), old);
		assert_int_equal(dup2(null, old), old); /* the program's file now */
		if (pthread_tryjoin_np(t[0], &done) == 0) {
			t[0] = 0;
			break;
		}
	}
	void *r0 = NULL, *r1 = NULL;
	if (t[0])
		pthread_join(t[0], &r0);
	pthread_join(t[1], &r1);
	assert_null(r0);
	assert_null(r1);
	uint8_t want[4096], got[4096];
	for (unsigned b = 0; b < MOVE_BLOCKS; b++) {
		fill(want, sizeof(want), (MOVE_ROUNDS - 1) * MOVE_BLOCKS + b);
		assert_int_equal(media_read(m, (uint64_t)b * sizeof(got), got, sizeof(got)), 0);
		if (memcmp(got, want, sizeof(got)))
			fail_msg("block %u is not its last write after %d moves", b, moves);
	}
	media_close(m);
	close(null);
}

/* ---- growing in place ---- */

/* A medium opened growable takes 3 MiB where it had 1: a mapping stays at
 * its address (readers keep pointers into it), the old bytes stay, the
 * new ones are read and written, and a reopen sees it all. */
static void test_grow(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, SIZE, MEDIA_CREATE | MEDIA_GROWABLE);
	static uint8_t a[8192], b[8192];
	fill(a, sizeof(a), 5);
	assert_int_equal(media_store(m, SIZE - sizeof(a), a, sizeof(a)), 0);
	assert_int_equal(media_fence(m), 0);
	const uint8_t *before = media_direct(m);
	/* On a 2 MiB boundary, where huge pages can map it. */
	assert_int_equal((uintptr_t)before % (2u << 20), 0);
	char err[256] = "";
	assert_int_equal(media_grow(m, SIZE, err, sizeof(err)), -EINVAL); /* not larger */
	int rc = media_grow(m, 3 * SIZE, err, sizeof(err));
	if (rc)
		fail_msg("media_grow: %d %s", rc, err);
	assert_int_equal(media_size(m), 3 * SIZE);
	assert_ptr_equal(media_direct(m), before);
	assert_int_equal(media_read(m, SIZE - sizeof(a), b, sizeof(b)), 0);
	assert_memory_equal(a, b, sizeof(a));
	assert_int_equal(media_read(m, 2 * SIZE, b, sizeof(b)), 0); /* new bytes: zeros */
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal(b[i], 0);
	fill(a, sizeof(a), 6);
	assert_int_equal(media_store(m, 3 * SIZE - sizeof(a), a, sizeof(a)), 0);
	assert_int_equal(media_fence(m), 0);
	if (before)
		assert_memory_equal(before + 3 * SIZE - sizeof(a), a, sizeof(a));
	assert_int_equal(media_read(m, 3 * SIZE - 1, b, 2), -EINVAL); /* past the end */
	media_close(m);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 3 * SIZE);
	m = open_ok(f, 3 * SIZE, 0);
	assert_int_equal(media_read(m, 3 * SIZE - sizeof(a), b, sizeof(b)), 0);
	assert_memory_equal(a, b, sizeof(a));
	media_close(m);
}

/* Without MEDIA_GROWABLE a mapping has no room to grow into: refused, the
 * medium unchanged.  The file kind needs none. */
static void test_grow_not_held(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, SIZE, MEDIA_CREATE);
	char err[256] = "";
	int rc = media_grow(m, 2 * SIZE, err, sizeof(err));
	if (f->kind == MEDIA_FILE) {
		assert_int_equal(rc, 0);
		assert_int_equal(media_size(m), 2 * SIZE);
	} else {
		assert_int_equal(rc, -EOPNOTSUPP);
		assert_non_null(strstr(err, f->path));
		assert_int_equal(media_size(m), SIZE);
	}
	media_close(m);
}

/* MEDIA_PREFIX: the first `size` bytes of a longer file; never of a
 * shorter one. */
static void test_prefix(void **state)
{
	struct fixture *f = *state;
	struct media *m = open_ok(f, 2 * SIZE, MEDIA_CREATE);
	media_close(m);
	m = open_ok(f, SIZE, MEDIA_PREFIX);
	assert_int_equal(media_size(m), SIZE);
	media_close(m);
	struct media *bad = NULL;
	char err[256] = "";
	assert_int_equal(media_open(&bad, f->kind, f->path, SIZE, 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(
	    media_open(&bad, f->kind, f->path, 3 * SIZE, MEDIA_PREFIX, err, sizeof(err)), -EINVAL);
	assert_null(bad);
}

#define KIND_TEST(kind, fn)                                                                        \
	{                                                                                          \
#kind ": " #fn, fn, setup_##kind, teardown, NULL                                   \
	}
#define KIND_TESTS(kind)                                                                           \
	KIND_TEST(kind, test_roundtrip), KIND_TEST(kind, test_zero),                               \
	    KIND_TEST(kind, test_create_extends_existing), KIND_TEST(kind, test_size_mismatch),    \
	    KIND_TEST(kind, test_open_errors), KIND_TEST(kind, test_out_of_range),                 \
	    KIND_TEST(kind, test_recorder_hooks), KIND_TEST(kind, test_grow),                      \
	    KIND_TEST(kind, test_grow_not_held), KIND_TEST(kind, test_prefix)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    KIND_TESTS(emul),
	    KIND_TESTS(pmem),
	    KIND_TESTS(file),
	    KIND_TEST(file, test_group_commit),
	    KIND_TEST(file, test_fence_waits_for_late_sync),
	    KIND_TEST(file, test_move_given_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
