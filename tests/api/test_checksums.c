/*
 * test_checksums.c - data checksums end to end: a block damaged on the
 * fast tier, on a capacity tier, or written to the wrong place is EIO to
 * the reader (never the wrong bytes) and an event naming the file and the
 * offset; scrub lists it (even once a reader trusts it); fsck reports it; a partial write into it
 * keeps it unreadable, a whole write heals it; migration does not copy it; the checksums survive a
 * remount on the file medium.
 *
 * The damage is done the way a medium does it: bytes of the part files
 * changed behind cairn's back, at the block the file's extent map names.
 */
/* The engine's headers come before cmocka's, whose fail() macro would
 * clash with libfs's fail(). */
#include "fs/extent.h"
#include "fsck/fsck.h"
#include "libfs/fs_internal.h"

#include "testvol.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FSIZE (64 * 1024) /* 16 blocks */

/* ---- events --------------------------------------------------------------- */

static char last_event[512];
static int events;

static void on_event(const char *msg)
{
	snprintf(last_event, sizeof(last_event), "%s", msg);
	events++;
}

static void events_reset(void)
{
	last_event[0] = 0;
	events = 0;
	cairn_set_event_handler(on_event);
}

/* ---- finding and damaging a block --------------------------------------- */

/* The tier-tagged block that holds logical block lblk of path. */
static uint64_t block_of(cairn_fs *fs, const char *path, uint64_t lblk)
{
	struct stat st = tv_stat(fs, path);
	struct iref r;
	struct extent e;
	pthread_rwlock_rdlock(&fs->lock);
	assert_int_equal(inode_get(&fs->sh, st.st_ino, &r), 0);
	int found = extent_lookup(&fs->sh.fx, r.i, lblk, &e);
	inode_put(&fs->sh, &r);
	pthread_rwlock_unlock(&fs->lock);
	assert_int_equal(found, 1);
	return e.pblk + (lblk - e.lblk);
}

static const char *part_of(struct testvol *tv, cairn_fs *fs, uint64_t pblk)
{
	unsigned t = FS_PBLK_TIER(pblk);
	return t == 0 ? tv->fast_part : media_path(fs->sh.tier[t].m);
}

/* Flips one bit of byte `at` of the block, as a failing medium would. */
static void flip(struct testvol *tv, cairn_fs *fs, uint64_t pblk, unsigned at)
{
	int fd = open(part_of(tv, fs, pblk), O_RDWR);
	assert_true(fd >= 0);
	off_t off = (off_t)(FS_PBLK_BLK(pblk) * FS_BLOCK_SIZE + at);
	unsigned char c;
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* Copies block `from` over block `to` of the same part: a misdirected
 * write leaves well-formed bytes at the wrong place. */
static void misdirect(struct testvol *tv, cairn_fs *fs, uint64_t from, uint64_t to)
{
	int fd = open(part_of(tv, fs, to), O_RDWR);
	assert_true(fd >= 0);
	static unsigned char buf[FS_BLOCK_SIZE];
	assert_int_equal(pread(fd, buf, sizeof(buf), (off_t)(FS_PBLK_BLK(from) * FS_BLOCK_SIZE)),
	                 sizeof(buf));
	assert_int_equal(pwrite(fd, buf, sizeof(buf), (off_t)(FS_PBLK_BLK(to) * FS_BLOCK_SIZE)),
	                 sizeof(buf));
	close(fd);
}

/* ---- reading ------------------------------------------------------------- */

static ssize_t read_at(cairn_fs *fs, const char *path, void *buf, size_t len, off_t off)
{
	int fd = TV_OK(cairn_open(fs, path, O_RDONLY));
	ssize_t n = cairn_pread(fs, fd, buf, len, off);
	int e = errno;
	TV_OK(cairn_close(fs, fd));
	errno = e;
	return n;
}

static void expect_eio(cairn_fs *fs, const char *path, size_t len, off_t off)
{
	unsigned char *buf = malloc(len);
	errno = 0;
	assert_int_equal(read_at(fs, path, buf, len, off), -1);
	assert_int_equal(errno, EIO);
	free(buf);
}

static void put(cairn_fs *fs, const char *path, uint64_t seed)
{
	unsigned char *buf = malloc(FSIZE);
	tv_fill(buf, FSIZE, seed);
	tv_put(fs, path, buf, FSIZE, 0644);
	free(buf);
}

static void expect(cairn_fs *fs, const char *path, uint64_t seed)
{
	unsigned char *buf = malloc(FSIZE);
	tv_fill(buf, FSIZE, seed);
	tv_expect(fs, path, buf, FSIZE);
	free(buf);
}

static void pwrite_at(cairn_fs *fs, const char *path, const void *buf, size_t len, off_t off)
{
	int fd = TV_OK(cairn_open(fs, path, O_WRONLY));
	TV_EQ(tv_pwrite_full(fs, fd, buf, len, off), (ssize_t)len);
	TV_OK(cairn_close(fs, fd));
}

/* ---- scrub and fsck -------------------------------------------------------- */

static struct cairn_scrub scrub(cairn_fs *fs)
{
	struct cairn_scrub s;
	memset(&s, 0, sizeof(s));
	TV_OK(cairn_scrub(fs, &s));
	return s;
}

static int fsck_data_problems(struct testvol *tv)
{
	struct fsck_opts o = {0};
	struct fsck_report r;
	fsck_run(tv->dir, &o, &r);
	int n = 0;
	for (size_t k = 0; k < r.found.n; k++) {
		if (!strcmp(fsck_code_name(r.found.v[k].code), "data-checksum"))
			n++;
		else
			fail_msg("fsck found another problem: %s", r.found.v[k].msg);
	}
	fsck_report_free(&r);
	return n;
}

static struct testvol *volume(enum cairn_media media)
{
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.media = media;
	o.fast_size = 32 * TV_MiB;
	struct testvol *tv = tv_create(&o);
	assert_non_null(tv);
	return tv;
}

/* ---- the tests --------------------------------------------------------------- */

/* One flipped bit in a digested block: EIO for reads touching that block
 * only, an event, scrub and fsck name it; a partial overwrite keeps it
 * unreadable; a whole-block overwrite heals it. */
static void damaged_block(enum cairn_media media)
{
	struct testvol *tv = volume(media);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	put(fs, "/a", 1);
	put(fs, "/b", 2);
	TV_OK(cairn_digest(fs));
	struct stat st = tv_stat(fs, "/a");
	uint64_t pblk = block_of(fs, "/a", 3);

	events_reset();
	flip(tv, fs, pblk, 100);
	expect_eio(fs, "/a", FSIZE, 0);
	expect_eio(fs, "/a", 1, 3 * 4096 + 4095);
	unsigned char buf[3 * 4096], want[FSIZE];
	tv_fill(want, FSIZE, 1);
	assert_int_equal(read_at(fs, "/a", buf, sizeof(buf), 0), sizeof(buf));
	assert_memory_equal(buf, want, sizeof(buf));
	assert_int_equal(read_at(fs, "/a", buf, 4096, 4 * 4096), 4096);
	assert_memory_equal(buf, want + 4 * 4096, 4096);
	expect(fs, "/b", 2);
	assert_true(events >= 1);
	char needle[128];
	snprintf(needle, sizeof(needle), "inode %llu, file offset %u",
	         (unsigned long long)st.st_ino, 3 * 4096);
	if (!strstr(last_event, needle))
		fail_msg("event '%s' does not name '%s'", last_event, needle);
	struct cairn_info in;
	TV_OK(cairn_info(fs, &in));
	assert_true(in.data_errors >= 1);

	struct cairn_scrub s = scrub(fs);
	TV_EQ(s.damaged_blocks, 1);
	TV_EQ(s.listed, 1);
	TV_EQ(s.damaged[0].ino, st.st_ino);
	TV_EQ(s.damaged[0].offset, 3 * 4096);
	TV_EQ(s.damaged[0].block, FS_PBLK_BLK(pblk));
	assert_string_equal(s.damaged[0].tier, "fast");
	TV_EQ(s.files_done, 2);

	TV_OK(tv_unmount(tv));
	assert_int_equal(fsck_data_problems(tv), 1);
	fs = tv_mount(tv, &mo);
	assert_non_null(fs);

	/* 10 bytes into the damaged block: the record applies, the block
	 * stays unreadable (its other bytes are still wrong). */
	pwrite_at(fs, "/a", "0123456789", 10, 3 * 4096 + 7);
	TV_OK(cairn_digest(fs));
	expect_eio(fs, "/a", 4096, 3 * 4096);
	TV_EQ(scrub(fs).damaged_blocks, 1);
	/* The whole block: good again. */
	pwrite_at(fs, "/a", want + 3 * 4096, 4096, 3 * 4096);
	TV_OK(cairn_digest(fs));
	expect(fs, "/a", 1);
	TV_EQ(scrub(fs).damaged_blocks, 0);
	TV_OK(tv_unmount(tv));
	assert_int_equal(fsck_data_problems(tv), 0);
	cairn_set_event_handler(NULL);
	tv_destroy(tv);
}

static void test_damaged_block_emul(void **state)
{
	(void)state;
	damaged_block(CAIRN_MEDIA_EMUL);
}

static void test_damaged_block_file(void **state)
{
	(void)state;
	damaged_block(CAIRN_MEDIA_FILE);
}

/* Well-formed bytes at the wrong place do not verify: the checksum is
 * seeded with the block's address. */
static void test_misdirected_write(void **state)
{
	(void)state;
	struct testvol *tv = volume(CAIRN_MEDIA_EMUL);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	put(fs, "/a", 1);
	TV_OK(cairn_digest(fs));
	events_reset();
	misdirect(tv, fs, block_of(fs, "/a", 0), block_of(fs, "/a", 1));
	expect_eio(fs, "/a", 4096, 4096);
	TV_EQ(scrub(fs).damaged_blocks, 1);
	cairn_set_event_handler(NULL);
	tv_destroy(tv);
}

/* The file medium keeps the table in memory and writes it back before the
 * checkpoint's fence: after a remount every block still verifies (a table
 * that never reached the part would fail every read), and damage done
 * while unmounted is found. */
static void test_file_medium_remount(void **state)
{
	(void)state;
	struct testvol *tv = volume(CAIRN_MEDIA_FILE);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	for (int k = 0; k < 40; k++) {
		char p[32];
		snprintf(p, sizeof(p), "/f%d", k);
		put(fs, p, 100 + (uint64_t)k);
	}
	TV_OK(tv_unmount(tv));
	fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	for (int k = 0; k < 40; k++) {
		char p[32];
		snprintf(p, sizeof(p), "/f%d", k);
		expect(fs, p, 100 + (uint64_t)k);
	}
	TV_EQ(scrub(fs).damaged_blocks, 0);
	uint64_t pblk = block_of(fs, "/f7", 15);
	TV_OK(tv_unmount(tv));
	assert_int_equal(fsck_data_problems(tv), 0);
	int fd = open(tv->fast_part, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\0\0\0\0", 4, (off_t)(pblk * FS_BLOCK_SIZE + 2000)), 4);
	close(fd);
	assert_int_equal(fsck_data_problems(tv), 1);
	events_reset();
	fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	expect_eio(fs, "/f7", FSIZE, 0);
	expect(fs, "/f8", 108);
	cairn_set_event_handler(NULL);
	tv_destroy(tv);
}

/* ---- capacity tiers ---------------------------------------------------------- */

static char tier_path[PATH_MAX];

static struct testvol *tiered(void)
{
	struct testvol *tv = tv_scratch("sums-tier");
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.fast_size = 16 * TV_MiB;
	o.ntiers = 1;
	snprintf(tier_path, sizeof(tier_path), "%s/hdd.tier", tv->root);
	o.tiers[0] = (struct cairn_tier_opts){"hdd", tier_path, 64 * TV_MiB, 0};
	if (tv_mkfs(tv, &o))
		fail_msg("mkfs with a tier: %s", cairn_last_error());
	return tv;
}

/* A flipped bit on the capacity tier is found, and migration does not
 * move the damaged extent up (which would seal the damage under a new
 * checksum): after promotion is asked for, the block still fails, and it
 * was reported once. */
static void test_capacity_tier(void **state)
{
	(void)state;
	struct testvol *tv = tiered();
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	/* 24 MiB of files: more than the fast tier holds, the oldest go down. */
	for (int k = 0; k < 384; k++) {
		char p[32];
		snprintf(p, sizeof(p), "/f%03d", k);
		put(fs, p, 500 + (uint64_t)k);
		if (k % 32 == 31) {
			TV_OK(cairn_digest(fs));
			TV_OK(cairn_migrate(fs));
		}
	}
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_migrate(fs));
	uint64_t pblk = block_of(fs, "/f000", 2);
	TV_EQ(FS_PBLK_TIER(pblk), 1);
	events_reset();
	flip(tv, fs, pblk, 7);
	expect_eio(fs, "/f000", FSIZE, 0);
	if (!strstr(last_event, "tier hdd"))
		fail_msg("event '%s' does not name the tier", last_event);
	struct cairn_scrub s = scrub(fs);
	TV_EQ(s.damaged_blocks, 1);
	assert_string_equal(s.damaged[0].tier, "hdd");
	TV_EQ(s.damaged[0].offset, 2 * 4096);
	/* Read it hot (the undamaged blocks), then migrate: promotion may move
	 * other extents, but the damaged block must still fail. */
	unsigned char buf[4096];
	for (int pass = 0; pass < 4; pass++)
		for (int b = 0; b < 16; b++)
			if (b != 2)
				read_at(fs, "/f000", buf, sizeof(buf), b * 4096);
	TV_OK(cairn_migrate(fs));
	expect_eio(fs, "/f000", 4096, 2 * 4096);
	TV_EQ(scrub(fs).damaged_blocks, 1);
	expect(fs, "/f001", 501);
	/* Said once: more reads and migration passes (promotion asked for
	 * again) neither report it again nor count it twice. */
	int said = events;
	for (int pass = 0; pass < 3; pass++) {
		for (int b = 0; b < 16; b++)
			if (b != 2)
				read_at(fs, "/f000", buf, sizeof(buf), b * 4096);
		TV_OK(cairn_migrate(fs));
		expect_eio(fs, "/f000", 4096, 2 * 4096);
	}
	TV_EQ(events, said);
	struct cairn_info in;
	TV_OK(cairn_info(fs, &in));
	TV_EQ(in.data_errors, 1);
	TV_OK(tv_unmount(tv));
	assert_int_equal(fsck_data_problems(tv), 1);
	cairn_set_event_handler(NULL);
	tv_destroy(tv);
}

/* A block read once is trusted by later reads until it is written again
 * (fs/sums.h says why); scrub hashes every block all the same, and what it
 * finds is EIO to readers from then on. */
static void test_scrub_rehashes_verified_blocks(void **state)
{
	(void)state;
	struct testvol *tv = volume(CAIRN_MEDIA_EMUL);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	put(fs, "/c", 3);
	TV_OK(cairn_digest(fs));
	expect(fs, "/c", 3);
	events_reset();
	flip(tv, fs, block_of(fs, "/c", 5), 9);
	struct cairn_scrub s = scrub(fs);
	TV_EQ(s.damaged_blocks, 1);
	TV_EQ(s.damaged[0].offset, 5 * 4096);
	expect_eio(fs, "/c", 4096, 5 * 4096);
	cairn_set_event_handler(NULL);
	tv_destroy(tv);
}

/* Writing a block whole ends both what readers knew of it: a block read
 * (so trusted) and then written is hashed again at its next read, and a
 * block reported damaged and then healed is reported again when it is
 * damaged again. */
static void test_written_block_is_trusted_no_longer(void **state)
{
	(void)state;
	struct testvol *tv = volume(CAIRN_MEDIA_EMUL);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	unsigned char want[FSIZE];
	tv_fill(want, FSIZE, 4);
	put(fs, "/d", 4);
	TV_OK(cairn_digest(fs));
	expect(fs, "/d", 4); /* every block read: trusted from now on */
	pwrite_at(fs, "/d", want + 2 * 4096, 4096, 2 * 4096);
	TV_OK(cairn_digest(fs));
	events_reset();
	flip(tv, fs, block_of(fs, "/d", 2), 17);
	expect_eio(fs, "/d", 4096, 2 * 4096);
	TV_EQ(events, 1);

	/* Healed by a whole write, then damaged again (before any read
	 * trusts it): a new event. */
	pwrite_at(fs, "/d", want + 2 * 4096, 4096, 2 * 4096);
	TV_OK(cairn_digest(fs));
	flip(tv, fs, block_of(fs, "/d", 2), 17);
	expect_eio(fs, "/d", 4096, 2 * 4096);
	TV_EQ(events, 2);
	cairn_set_event_handler(NULL);
	tv_destroy(tv);
}

/* A scrub beside writers: every file is visited, nothing is reported on
 * a healthy volume, and cancel stops it with ECANCELED. */
static void test_scrub_clean_and_cancel(void **state)
{
	(void)state;
	struct testvol *tv = volume(CAIRN_MEDIA_EMUL);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	for (int k = 0; k < 100; k++) {
		char p[32];
		snprintf(p, sizeof(p), "/f%d", k);
		put(fs, p, (uint64_t)k);
	}
	TV_OK(cairn_symlink(fs, "/f1", "/link"));
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_OK(cairn_digest(fs)); /* the scrub checks what the digest stored */
	struct cairn_scrub s = scrub(fs);
	TV_EQ(s.damaged_blocks, 0);
	TV_EQ(s.files_done, 101);
	TV_EQ(s.files_total, 101);
	assert_true(s.bytes_done >= 100 * FSIZE);
	memset(&s, 0, sizeof(s));
	s.cancel = 1;
	assert_int_equal(cairn_scrub(fs, &s), -1);
	assert_int_equal(errno, ECANCELED);
	errno = 0;
	assert_int_equal(cairn_scrub(NULL, &s), -1);
	assert_int_equal(errno, EINVAL);
	tv_destroy(tv);
}

/* The digest ahead of a checkpoint maps new blocks under the lock and
 * stores their bytes after letting it go (digest.c, "Stores after the
 * lock").  Between a pass and its stores (the test's hook runs there, and
 * waits a little), a scrub in another thread must not check the mapped
 * blocks whose bytes are not there yet, and reads must see every file
 * whole. */
#define AHEAD_FILES 12

static struct {
	int passes, storing, bad_reads;
} ahead_seen;
static atomic_int scrub_stop;
static uint64_t scrub_damage, scrubs;

static void ahead_hook(struct cairn_fs *fs)
{
	ahead_seen.passes++;
	if (!atomic_load(&fs->digest_storing))
		return;
	ahead_seen.storing++;
	unsigned char *want = malloc(FSIZE), *got = malloc(FSIZE);
	for (int k = 0; k < AHEAD_FILES; k++) {
		char p[32];
		snprintf(p, sizeof(p), "/a%d", k);
		tv_fill(want, FSIZE, 500 + (uint64_t)k);
		int fd = cairn_open(fs, p, O_RDONLY);
		ssize_t n = fd < 0 ? -1 : cairn_pread(fs, fd, got, FSIZE, 0);
		if (n != FSIZE || memcmp(want, got, FSIZE) != 0)
			ahead_seen.bad_reads++;
		if (fd >= 0)
			cairn_close(fs, fd);
	}
	free(want);
	free(got);
	nanosleep(&(struct timespec){0, 2000000}, NULL); /* the scrub's turn */
}

static void *scrub_loop(void *arg)
{
	cairn_fs *fs = arg;
	while (!atomic_load(&scrub_stop)) {
		struct cairn_scrub s;
		memset(&s, 0, sizeof(s));
		if (cairn_scrub(fs, &s) == 0) {
			scrub_damage += s.damaged_blocks;
			scrubs++;
		}
	}
	return NULL;
}

static void test_scrub_during_digest_stores(void **state)
{
	(void)state;
	struct testvol *tv = volume(CAIRN_MEDIA_EMUL);
	struct cairn_mount_opts mo = {.digest_threshold = 100}; /* only cairn_digest */
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	assert_true(fs->digest_thread_running);
	events_reset();
	for (int k = 0; k < AHEAD_FILES; k++) {
		char p[32];
		snprintf(p, sizeof(p), "/a%d", k);
		put(fs, p, 500 + (uint64_t)k);
	}
	memset(&ahead_seen, 0, sizeof(ahead_seen));
	scrub_damage = scrubs = 0;
	atomic_store(&scrub_stop, 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, scrub_loop, fs), 0);
	fs->digest_pass_blocks = 8;
	fs->between_passes = ahead_hook;
	TV_OK(cairn_digest(fs));
	fs->between_passes = NULL;
	fs->digest_pass_blocks = 0;
	atomic_store(&scrub_stop, 1);
	pthread_join(t, NULL);
	/* 12 files of 16 blocks in passes of 8: every pass has stores. */
	assert_true(ahead_seen.storing >= AHEAD_FILES);
	assert_true(scrubs > 0);
	TV_EQ(ahead_seen.bad_reads, 0);
	TV_EQ(scrub_damage, 0);
	TV_EQ(events, 0);
	for (int k = 0; k < AHEAD_FILES; k++) {
		char p[32];
		snprintf(p, sizeof(p), "/a%d", k);
		expect(fs, p, 500 + (uint64_t)k);
	}
	struct cairn_scrub s = scrub(fs);
	TV_EQ(s.damaged_blocks, 0);
	assert_true(s.bytes_done >= AHEAD_FILES * FSIZE);
	tv_unmount(tv);
	TV_EQ(fsck_data_problems(tv), 0);
	tv_destroy(tv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_damaged_block_emul),
	    cmocka_unit_test(test_damaged_block_file),
	    cmocka_unit_test(test_misdirected_write),
	    cmocka_unit_test(test_file_medium_remount),
	    cmocka_unit_test(test_capacity_tier),
	    cmocka_unit_test(test_scrub_rehashes_verified_blocks),
	    cmocka_unit_test(test_written_block_is_trusted_no_longer),
	    cmocka_unit_test(test_scrub_clean_and_cancel),
	    cmocka_unit_test(test_scrub_during_digest_stores),
	};
	return cmocka_run_group_tests(tests, tv_setup, tv_teardown);
}
