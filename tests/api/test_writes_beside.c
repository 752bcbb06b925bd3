/*
 * test_writes_beside.c - writes that run beside each other under the
 * volume lock held shared (src/libfs/files.c, "Writes beside each other"),
 * raced against readers, against writers of the same file, against calls
 * that take the lock exclusively and against the digest of a small log
 * (8 MiB: the run writes several times that, so the log fills, writes go
 * the exclusive way while a digest makes room, and each checkpoint takes
 * the lock from the writers).  Everything read while the race runs and
 * everything there after it, and after a remount, is checked against
 * what each writer wrote.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libfs/fs_internal.h"
#include "testvol.h"

#define BLK 4096
#define APPENDS 2500     /* per appender: 10 MiB, past the 8 MiB log */
#define SHARED_BLOCKS 64 /* the file two writers share */
#define SHARED_ROUNDS 40

/* The byte of block i of stream s (an appender's file, or a writer of
 * the shared file in a round), so that a block read shows whose it is. */
static uint8_t pattern(int s, int i)
{
	return (uint8_t)(s * 31 + i * 7 + 1);
}

static void fill_block(uint8_t *b, int s, int i)
{
	memset(b, pattern(s, i), BLK);
	memcpy(b, &i, sizeof(i)); /* a block moved elsewhere reads wrong */
}

static int block_is(const uint8_t *b, int s, int i)
{
	uint8_t want[BLK];
	fill_block(want, s, i);
	return memcmp(b, want, BLK) == 0;
}

struct race {
	cairn_fs *fs;
	atomic_int stop;
	atomic_int failed; /* a line number */
	atomic_long reads, metas;
};

#define RACE_CHECK(r, cond)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			int zero = 0;                                                              \
			atomic_compare_exchange_strong(&(r)->failed, &zero, __LINE__);             \
		}                                                                                  \
	} while (0)

struct appender {
	struct race *r;
	int id;
};

/* O_APPEND writes of block after block to /appendN. */
static void *appender_main(void *arg)
{
	struct appender *a = arg;
	char path[32];
	snprintf(path, sizeof(path), "/append%d", a->id);
	int fd = cairn_open(a->r->fs, path, O_CREAT | O_WRONLY | O_APPEND, 0644);
	RACE_CHECK(a->r, fd >= 0);
	uint8_t b[BLK];
	for (int i = 0; fd >= 0 && i < APPENDS; i++) {
		fill_block(b, a->id, i);
		RACE_CHECK(a->r, cairn_write(a->r->fs, fd, b, BLK) == BLK);
	}
	if (fd >= 0)
		RACE_CHECK(a->r, cairn_close(a->r->fs, fd) == 0);
	return NULL;
}

/* Two of these write /shared at once: in each round every block, each
 * writer's blocks in an order of its own, the stream being the writer and
 * the round; block 0, which both write, must always read whole. */
struct sharer {
	struct race *r;
	int id; /* 0 or 1 */
};

static int sharer_stream(int id, int round)
{
	return 100 + 2 * round + id;
}

static void *sharer_main(void *arg)
{
	struct sharer *s = arg;
	int fd = cairn_open(s->r->fs, "/shared", O_WRONLY, 0);
	RACE_CHECK(s->r, fd >= 0);
	uint8_t b[BLK];
	for (int round = 0; fd >= 0 && round < SHARED_ROUNDS; round++)
		for (int k = 0; k < SHARED_BLOCKS; k++) {
			int i = s->id ? SHARED_BLOCKS - 1 - k : k;
			fill_block(b, sharer_stream(s->id, round), i);
			RACE_CHECK(s->r, cairn_pwrite(s->r->fs, fd, b, BLK, (off_t)i * BLK) == BLK);
		}
	if (fd >= 0)
		RACE_CHECK(s->r, cairn_close(s->r->fs, fd) == 0);
	return NULL;
}

/* Which stream's write block i of /shared holds, or -1. */
static int shared_stream_of(const uint8_t *b, int i)
{
	for (int round = 0; round < SHARED_ROUNDS; round++)
		for (int id = 0; id < 2; id++)
			if (block_is(b, sharer_stream(id, round), i))
				return sharer_stream(id, round);
	return -1;
}

/* Reads while the writers write: an appender's size only grows, in whole
 * blocks, and its last block is the one written at that place; SEEK_END
 * is at least the size fstat gave; /shared's blocks are always one
 * writer's whole block. */
static void *reader_main(void *arg)
{
	struct race *r = arg;
	cairn_fs *fs = r->fs;
	int fd[2] = {-1, -1};
	off_t last[2] = {0, 0};
	int sfd = cairn_open(fs, "/shared", O_RDONLY, 0);
	RACE_CHECK(r, sfd >= 0);
	uint8_t b[BLK];
	for (unsigned n = 0; !atomic_load(&r->stop); n++) {
		int id = n % 2;
		if (fd[id] < 0) {
			char path[32];
			snprintf(path, sizeof(path), "/append%d", id);
			fd[id] = cairn_open(fs, path, O_RDONLY, 0);
			if (fd[id] < 0)
				continue; /* not made yet */
		}
		struct stat st;
		RACE_CHECK(r, cairn_fstat(fs, fd[id], &st) == 0);
		RACE_CHECK(r, st.st_size >= last[id] && st.st_size % BLK == 0);
		last[id] = st.st_size;
		if (st.st_size > 0) {
			int i = (int)(st.st_size / BLK) - 1;
			RACE_CHECK(r, cairn_pread(fs, fd[id], b, BLK, st.st_size - BLK) == BLK);
			RACE_CHECK(r, block_is(b, id, i));
			RACE_CHECK(r, cairn_lseek(fs, fd[id], 0, SEEK_END) >= st.st_size);
			RACE_CHECK(r, cairn_lseek(fs, fd[id], 0, SEEK_DATA) == 0);
		}
		int i = (int)(n % SHARED_BLOCKS);
		RACE_CHECK(r, cairn_pread(fs, sfd, b, BLK, (off_t)i * BLK) == BLK);
		RACE_CHECK(r, shared_stream_of(b, i) >= 0);
		atomic_fetch_add(&r->reads, 1);
	}
	for (int id = 0; id < 2; id++)
		if (fd[id] >= 0)
			cairn_close(fs, fd[id]);
	cairn_close(fs, sfd);
	return NULL;
}

/* Reads of /shared, several blocks at a time (a walk over several pieces
 * of an index its two writers keep cutting), each block whole. */
#define SPAN 8
static void *shared_reader_main(void *arg)
{
	struct race *r = arg;
	int fd = cairn_open(r->fs, "/shared", O_RDONLY, 0);
	RACE_CHECK(r, fd >= 0);
	static _Thread_local uint8_t b[SPAN * BLK];
	for (unsigned n = 0; fd >= 0 && !atomic_load(&r->stop); n++) {
		int first = (int)(n % (SHARED_BLOCKS - SPAN + 1));
		RACE_CHECK(r, cairn_pread(r->fs, fd, b, sizeof(b), (off_t)first * BLK) ==
		                  (ssize_t)sizeof(b));
		for (int k = 0; k < SPAN; k++)
			RACE_CHECK(r, shared_stream_of(b + k * BLK, first + k) >= 0);
		struct stat st;
		RACE_CHECK(r, cairn_fstat(r->fs, fd, &st) == 0 &&
		                  st.st_size == (off_t)SHARED_BLOCKS * BLK);
		atomic_fetch_add(&r->reads, 1);
	}
	if (fd >= 0)
		cairn_close(r->fs, fd);
	return NULL;
}

/* Calls that take the lock exclusively, in a loop: a file made, written,
 * truncated and unlinked, a directory made and removed. */
static void *meta_main(void *arg)
{
	struct race *r = arg;
	cairn_fs *fs = r->fs;
	uint8_t b[BLK];
	memset(b, 'm', sizeof(b));
	while (!atomic_load(&r->stop)) {
		int fd = cairn_open(fs, "/meta", O_CREAT | O_TRUNC | O_RDWR, 0644);
		RACE_CHECK(r, fd >= 0);
		RACE_CHECK(r, cairn_write(fs, fd, b, BLK) == BLK);
		RACE_CHECK(r, cairn_ftruncate(fs, fd, 100) == 0);
		struct stat st;
		RACE_CHECK(r, cairn_fstat(fs, fd, &st) == 0 && st.st_size == 100);
		RACE_CHECK(r, cairn_close(fs, fd) == 0);
		RACE_CHECK(r, cairn_unlink(fs, "/meta") == 0);
		RACE_CHECK(r, cairn_mkdir(fs, "/metadir", 0755) == 0);
		RACE_CHECK(r, cairn_rmdir(fs, "/metadir") == 0);
		atomic_fetch_add(&r->metas, 1);
	}
	return NULL;
}

/* The appenders' files whole, and /shared holding, in each block, the
 * last round of one of its two writers. */
static void check_files(cairn_fs *fs)
{
	uint8_t b[BLK];
	for (int id = 0; id < 2; id++) {
		char path[32];
		snprintf(path, sizeof(path), "/append%d", id);
		int fd = TV_OK(cairn_open(fs, path, O_RDONLY, 0));
		TV_EQ(tv_stat(fs, path).st_size, (off_t)APPENDS * BLK);
		for (int i = 0; i < APPENDS; i++) {
			TV_EQ(cairn_pread(fs, fd, b, BLK, (off_t)i * BLK), BLK);
			if (!block_is(b, id, i))
				fail_msg("%s: block %d is not the one written there", path, i);
		}
		TV_OK(cairn_close(fs, fd));
	}
	int fd = TV_OK(cairn_open(fs, "/shared", O_RDONLY, 0));
	for (int i = 0; i < SHARED_BLOCKS; i++) {
		TV_EQ(cairn_pread(fs, fd, b, BLK, (off_t)i * BLK), BLK);
		int s = shared_stream_of(b, i);
		if (s != sharer_stream(0, SHARED_ROUNDS - 1) &&
		    s != sharer_stream(1, SHARED_ROUNDS - 1))
			fail_msg("/shared: block %d holds stream %d, not a last round's", i, s);
	}
	TV_OK(cairn_close(fs, fd));
}

/* Pieces counted in the pool are the pieces in the vnodes' indexes. */
static void check_piece_count(cairn_fs *fs)
{
	fs_lock_exclusive(fs);
	uint64_t sum = 0;
	for (size_t s = 0; s < fs->vtab_size; s++)
		for (struct vnode *v = fs->vtab[s]; v; v = v->hnext)
			sum += v->data.npieces;
	uint64_t total = atomic_load(&fs->pieces.total);
	pthread_rwlock_unlock(&fs->lock);
	TV_EQ(total, sum);
}

/* One race on fresh files; they are checked, and left for the next. */
static void race_once(cairn_fs *fs)
{
	for (int id = 0; id < 2; id++) {
		char path[32];
		snprintf(path, sizeof(path), "/append%d", id);
		cairn_unlink(fs, path);
	}
	cairn_unlink(fs, "/shared");
	int fd = TV_OK(cairn_open(fs, "/shared", O_CREAT | O_WRONLY, 0644));
	TV_OK(cairn_ftruncate(fs, fd, (off_t)SHARED_BLOCKS * BLK));
	uint8_t b[BLK];
	for (int i = 0; i < SHARED_BLOCKS; i++) {
		fill_block(b, sharer_stream(0, 0), i);
		TV_EQ(cairn_pwrite(fs, fd, b, BLK, (off_t)i * BLK), BLK);
	}
	TV_OK(cairn_close(fs, fd));

	struct cairn_info before;
	TV_OK(cairn_info(fs, &before));
	struct race r = {.fs = fs};
	struct appender ap[2] = {{&r, 0}, {&r, 1}};
	struct sharer sh[2] = {{&r, 0}, {&r, 1}};
	pthread_t writers[4], readers[2], meta;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_create(&writers[i], NULL, appender_main, &ap[i]), 0);
		assert_int_equal(pthread_create(&writers[2 + i], NULL, sharer_main, &sh[i]), 0);
	}
	assert_int_equal(pthread_create(&readers[0], NULL, reader_main, &r), 0);
	assert_int_equal(pthread_create(&readers[1], NULL, shared_reader_main, &r), 0);
	assert_int_equal(pthread_create(&meta, NULL, meta_main, &r), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(writers[i], NULL);
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(readers[i], NULL);
	pthread_join(meta, NULL);
	struct cairn_info info;
	TV_OK(cairn_info(fs, &info));
	print_message("%ld reads and %ld rounds of metadata calls beside the writes; %llu "
	              "checkpoints\n",
	              atomic_load(&r.reads), atomic_load(&r.metas),
	              (unsigned long long)(info.checkpoints - before.checkpoints));
	if (atomic_load(&r.failed))
		fail_msg("a check during the race failed: test_writes_beside.c line %d",
		         atomic_load(&r.failed));
	assert_true(atomic_load(&r.reads) > 0 && atomic_load(&r.metas) > 0);
	assert_true(info.checkpoints > before.checkpoints); /* the log filled */
	check_files(fs);
	check_piece_count(fs);
}

/* Races are caught by chance: several rounds, then the last round's
 * files after a remount. */
#define RACES 5
static void test_race(void **state)
{
	struct testvol *tv = *state;
	for (int i = 0; i < RACES; i++)
		race_once(tv->fs);
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	assert_non_null(tv_mount(tv, NULL));
	check_files(tv->fs);
}

/* Appenders that keep writing do not keep a call that needs the lock
 * exclusively waiting: each of these mkdirs gets it while they run. */
struct stream {
	cairn_fs *fs;
	int id;
	atomic_int *stop;
	atomic_long n;
};

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	char path[32];
	snprintf(path, sizeof(path), "/stream%d", s->id);
	int fd = cairn_open(s->fs, path, O_CREAT | O_WRONLY | O_APPEND, 0644);
	char b[512];
	memset(b, 's', sizeof(b));
	while (fd >= 0 && !atomic_load(s->stop))
		if (cairn_write(s->fs, fd, b, sizeof(b)) == (ssize_t)sizeof(b))
			atomic_fetch_add(&s->n, 1);
	if (fd >= 0)
		cairn_close(s->fs, fd);
	return NULL;
}

static void test_exclusive_gets_its_turn(void **state)
{
	cairn_fs *fs = TV_FS(state);
	atomic_int stop = 0;
	struct stream st[2] = {{fs, 0, &stop, 0}, {fs, 1, &stop, 0}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, stream_main, &st[i]), 0);
	while (atomic_load(&st[0].n) == 0 || atomic_load(&st[1].n) == 0)
		sched_yield();
	for (int i = 0; i < 200; i++) {
		TV_OK(cairn_mkdir(fs, "/turn", 0755));
		TV_OK(cairn_rmdir(fs, "/turn"));
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	print_message("%ld and %ld appends of 512 bytes beside 400 directory calls\n",
	              atomic_load(&st[0].n), atomic_load(&st[1].n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_race, tv_setup, tv_teardown),
	    cmocka_unit_test_setup_teardown(test_exclusive_gets_its_turn, tv_setup, tv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
