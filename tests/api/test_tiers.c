/*
 * test_tiers.c - capacity tiers: a volume holding four times its fast tier
 * keeps every byte across migration and remount, with data on every tier
 * and the hot files on the fast one; data read often moves back up (and
 * does not with promotion off); a volume filled to ENOSPC stays whole;
 * mkfs and mount refuse bad, missing or shrunken tiers with a message that
 * names the tier.
 */
/* The engine's headers come before cmocka's, whose fail() macro would
 * clash with libfs's fail(). */
#include "fs/extent.h"
#include "libfs/fs_internal.h"

#include "testvol.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FAST (16 * TV_MiB)
#define FILE_SIZE (TV_MiB)
#define NFILES 64 /* 64 MiB: four times the fast tier */
#define NHOT 4

static char tier_path[2][PATH_MAX];

/* A volume: 16 MiB fast tier, a 32 MiB "ssd" and a 64 MiB "hdd" tier. */
static struct testvol *tiered_volume(uint64_t ssd, uint64_t hdd)
{
	struct testvol *tv = tv_scratch("tiers");
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.fast_size = FAST;
	o.ntiers = 2;
	snprintf(tier_path[0], PATH_MAX, "%s/ssd.tier", tv->root);
	snprintf(tier_path[1], PATH_MAX, "%s/hdd.tier", tv->root);
	o.tiers[0] = (struct cairn_tier_opts){"ssd", tier_path[0], ssd, 0};
	o.tiers[1] = (struct cairn_tier_opts){"hdd", tier_path[1], hdd, 0};
	if (tv_mkfs(tv, &o))
		fail_msg("mkfs with tiers: %s", cairn_last_error());
	return tv;
}

static void put_file(cairn_fs *fs, int k)
{
	char p[64];
	unsigned char *buf = malloc(FILE_SIZE);
	snprintf(p, sizeof(p), "/f%02d", k);
	tv_fill(buf, FILE_SIZE, 1000 + (uint64_t)k);
	tv_put(fs, p, buf, FILE_SIZE, 0644);
	free(buf);
}

static void expect_file(cairn_fs *fs, int k)
{
	char p[64];
	unsigned char *buf = malloc(FILE_SIZE);
	snprintf(p, sizeof(p), "/f%02d", k);
	tv_fill(buf, FILE_SIZE, 1000 + (uint64_t)k);
	tv_expect(fs, p, buf, FILE_SIZE);
	free(buf);
}

static void read_file(cairn_fs *fs, int k)
{
	char p[64];
	unsigned char *buf = malloc(FILE_SIZE);
	snprintf(p, sizeof(p), "/f%02d", k);
	int fd = TV_OK(cairn_open(fs, p, O_RDONLY));
	TV_EQ(cairn_pread(fs, fd, buf, FILE_SIZE, 0), FILE_SIZE);
	TV_OK(cairn_close(fs, fd));
	free(buf);
}

/* Blocks of file /fKK on each tier (looked up in the extent map). */
struct per_tier {
	uint64_t blocks[FS_MAX_TIERS + 1];
};

static int count_blocks(void *arg, const struct extent *e)
{
	((struct per_tier *)arg)->blocks[FS_PBLK_TIER(e->pblk)] += e->len;
	return 0;
}

static struct per_tier file_tiers(cairn_fs *fs, int k)
{
	char p[64];
	snprintf(p, sizeof(p), "/f%02d", k);
	struct stat st = tv_stat(fs, p);
	struct per_tier pt = {{0}};
	struct iref r;
	pthread_rwlock_rdlock(&fs->lock);
	assert_int_equal(inode_get(&fs->sh, st.st_ino, &r), 0);
	assert_int_equal(extent_walk(&fs->sh.fx, r.i, 0, count_blocks, &pt), 0);
	inode_put(&fs->sh, &r);
	pthread_rwlock_unlock(&fs->lock);
	return pt;
}

/* Unmounts, mounts again: the tree dumps the same and files /f00 ..
 * /f(n-1) hold what put_file wrote. */
static void remount_and_check(struct testvol *tv, const char *what, int n)
{
	char *before = tv_dump(tv->fs, TV_DUMP_ALL);
	TV_OK(tv_unmount(tv));
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	char *after = tv_dump(fs, TV_DUMP_ALL);
	tv_assert_dump_eq(before, after, what);
	for (int k = 0; k < n; k++)
		expect_file(fs, k);
	free(before);
	free(after);
}

/* Writes NFILES files, the first NHOT read again and again in between. */
static void fill_mixed(cairn_fs *fs)
{
	for (int k = 0; k < NFILES; k++) {
		put_file(fs, k);
		if (k % 8 == 7) {
			TV_OK(cairn_digest(fs));
			TV_OK(cairn_migrate(fs));
		}
		for (int h = 0; h < NHOT && h < k; h++)
			read_file(fs, h);
	}
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_migrate(fs));
}

static void test_four_times_fast_tier(void **state)
{
	(void)state;
	struct testvol *tv = tiered_volume(32 * TV_MiB, 64 * TV_MiB);
	struct cairn_mount_opts mo = {.no_digest_thread = 1, .no_promotion = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	/* Cold files first: their mtimes are older than the hot ones' reads. */
	fill_mixed(fs);
	struct cairn_info in;
	TV_OK(cairn_info(fs, &in));
	TV_EQ(in.tier_count, 3);
	assert_string_equal(in.tiers[1].name, "ssd");
	assert_string_equal(in.tiers[2].name, "hdd");
	for (unsigned t = 0; t < 3; t++) {
		if (in.tiers[t].extents == 0)
			fail_msg("tier %s holds no extent", in.tiers[t].name);
		assert_true(in.tiers[t].blocks > in.tiers[t].free_blocks);
	}
	/* Below the high watermark after migration. */
	uint64_t used0 = in.tiers[0].blocks - in.tiers[0].free_blocks;
	assert_true(used0 * 100 <= in.tiers[0].blocks * 80);
	assert_true(in.tiers[0].out > 0 && in.tiers[1].in_down > 0 && in.tiers[2].in_down > 0);
	/* The hot files stayed on the fast tier; the oldest cold one went to hdd. */
	for (int h = 0; h < NHOT; h++) {
		struct per_tier pt = file_tiers(fs, h);
		if (pt.blocks[0] != FILE_SIZE / 4096)
			fail_msg("hot file %d: %llu of %llu blocks on the fast tier", h,
			         (unsigned long long)pt.blocks[0],
			         (unsigned long long)(FILE_SIZE / 4096));
	}
	assert_int_equal(file_tiers(fs, NHOT).blocks[2], FILE_SIZE / 4096);
	for (int k = 0; k < NFILES; k++)
		expect_file(fs, k);
	remount_and_check(tv, "remount after migration", NFILES);
	tv_destroy(tv);
}

/* Reads /fKK front to back in 128 KiB pieces, the largest FUSE READ: what
 * one `cat` of the file through the mount does.  swap: each pair of pieces
 * in the other order, as readahead may deliver them. */
static void scan_file(cairn_fs *fs, int k, int swap)
{
	enum { PIECE = 128 * 1024 };
	char p[64];
	unsigned char *buf = malloc(PIECE);
	snprintf(p, sizeof(p), "/f%02d", k);
	int fd = TV_OK(cairn_open(fs, p, O_RDONLY));
	for (int i = 0; i < (int)(FILE_SIZE / PIECE); i++) {
		int piece = swap ? i ^ 1 : i;
		TV_EQ(cairn_pread(fs, fd, buf, PIECE, (off_t)piece * PIECE), PIECE);
	}
	TV_OK(cairn_close(fs, fd));
	free(buf);
}

/* Mounts with watermarks that send /f00 down to a capacity tier. */
static cairn_fs *demoted(struct testvol *tv, int no_promotion)
{
	struct cairn_mount_opts mo = {.no_digest_thread = 1,
	                              .no_promotion = no_promotion,
	                              .high_watermark = 30,
	                              .low_watermark = 10};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	for (int k = 0; k < 8; k++)
		put_file(fs, k); /* 8 MiB: half the fast tier */
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_migrate(fs));
	struct per_tier pt = file_tiers(fs, 0);
	assert_int_equal(pt.blocks[0], 0); /* the coldest went down */
	return fs;
}

/* Demotes /f00 to a capacity tier, then reads it twice. */
static cairn_fs *demoted_then_read(struct testvol *tv, int no_promotion)
{
	cairn_fs *fs = demoted(tv, no_promotion);
	read_file(fs, 0);
	read_file(fs, 0);
	TV_OK(cairn_migrate(fs));
	return fs;
}

static void test_promotion(void **state)
{
	(void)state;
	struct testvol *tv = tiered_volume(32 * TV_MiB, 64 * TV_MiB);
	cairn_fs *fs = demoted_then_read(tv, 0);
	struct per_tier pt = file_tiers(fs, 0);
	/* Each 1 MiB window read twice comes back up while the fast tier has
	 * room below its high watermark. */
	assert_true(pt.blocks[0] > 0);
	struct cairn_info in;
	TV_OK(cairn_info(fs, &in));
	assert_true(in.tiers[0].in_up > 0);
	assert_int_equal(in.promotion, 1);
	expect_file(fs, 0);
	TV_OK(tv_unmount(tv));
	fs = tv_mount(tv, NULL);
	expect_file(fs, 0);
	tv_destroy(tv);
}

/* One sequential read of cold data is one pass, however many pieces it
 * comes in: it must not count as data read often.  Each 128 KiB piece used
 * to count as a read of its 1 MiB window, so one scan promoted everything
 * it read. */
static void test_one_scan_promotes_nothing(void **state)
{
	(void)state;
	struct testvol *tv = tiered_volume(32 * TV_MiB, 64 * TV_MiB);
	cairn_fs *fs = demoted(tv, 0);
	assert_int_equal(file_tiers(fs, 1).blocks[0], 0);
	scan_file(fs, 0, 0);
	TV_OK(cairn_migrate(fs));
	struct cairn_info in;
	TV_OK(cairn_info(fs, &in));
	assert_int_equal(file_tiers(fs, 0).blocks[0], 0);
	assert_int_equal(in.tiers[0].in_up, 0);
	/* The same with the pieces out of order. */
	scan_file(fs, 1, 1);
	TV_OK(cairn_migrate(fs));
	TV_OK(cairn_info(fs, &in));
	assert_int_equal(file_tiers(fs, 1).blocks[0], 0);
	assert_int_equal(in.tiers[0].in_up, 0);
	/* A second pass over /f00 is a second read: now it comes up, whole. */
	scan_file(fs, 0, 0);
	TV_OK(cairn_migrate(fs));
	TV_OK(cairn_info(fs, &in));
	assert_int_equal(file_tiers(fs, 0).blocks[0], FILE_SIZE / 4096);
	assert_true(in.tiers[0].in_up > 0);
	assert_int_equal(file_tiers(fs, 1).blocks[0], 0);
	expect_file(fs, 0);
	expect_file(fs, 1);
	tv_destroy(tv);
}

static void test_promotion_off(void **state)
{
	(void)state;
	struct testvol *tv = tiered_volume(32 * TV_MiB, 64 * TV_MiB);
	cairn_fs *fs = demoted_then_read(tv, 1);
	assert_int_equal(file_tiers(fs, 0).blocks[0], 0);
	struct cairn_info in;
	TV_OK(cairn_info(fs, &in));
	assert_int_equal(in.tiers[0].in_up, 0);
	assert_int_equal(in.promotion, 0);
	expect_file(fs, 0);
	tv_destroy(tv);
}

static void test_full_volume(void **state)
{
	(void)state;
	struct testvol *tv = tiered_volume(8 * TV_MiB, 8 * TV_MiB);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	unsigned char *buf = malloc(FILE_SIZE);
	int k, full = 0;
	for (k = 0; k < 64 && !full; k++) {
		char p[64];
		snprintf(p, sizeof(p), "/f%02d", k);
		tv_fill(buf, FILE_SIZE, 1000 + (uint64_t)k);
		int fd = TV_OK(cairn_open(fs, p, O_CREAT | O_WRONLY, 0644));
		ssize_t n = tv_write_full(fs, fd, buf, FILE_SIZE);
		if (n < 0) {
			assert_int_equal(errno, ENOSPC);
			full = 1;
			TV_OK(cairn_ftruncate(fs, fd, 0)); /* the partial one goes */
		}
		TV_OK(cairn_close(fs, fd));
		if (k % 4 == 3)
			TV_OK(cairn_migrate(fs));
	}
	free(buf);
	assert_true(full);
	assert_true(k > 20); /* about 30 MiB fit: more than the fast tier */
	remount_and_check(tv, "remount of a full tiered volume", k - 1);
	tv_destroy(tv);
}

static void expect_mount_refused(struct testvol *tv, const char *words)
{
	errno = 0;
	cairn_fs *fs = cairn_mount(tv->dir, NULL);
	if (fs)
		fail_msg("mount succeeded; expected a refusal naming '%s'", words);
	if (!strstr(cairn_last_error(), words))
		fail_msg("refusal '%s' does not name '%s'", cairn_last_error(), words);
}

static void test_missing_tier(void **state)
{
	(void)state;
	struct testvol *tv = tiered_volume(8 * TV_MiB, 8 * TV_MiB);
	assert_int_equal(rename(tier_path[1], "/dev/shm/cairn-test-moved-tier"), 0);
	expect_mount_refused(tv, "tier hdd");
	assert_int_equal(rename("/dev/shm/cairn-test-moved-tier", tier_path[1]), 0);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	tv_destroy(tv);
}

static void test_shrunken_tier(void **state)
{
	(void)state;
	struct testvol *tv = tiered_volume(8 * TV_MiB, 8 * TV_MiB);
	assert_int_equal(truncate(tier_path[0], 4 * TV_MiB), 0);
	expect_mount_refused(tv, "tier ssd");
	expect_mount_refused(tv, "smaller");
	tv_destroy(tv);
}

static void test_foreign_tier(void **state)
{
	(void)state;
	struct testvol *a = tiered_volume(8 * TV_MiB, 8 * TV_MiB);
	char saved[PATH_MAX];
	snprintf(saved, sizeof(saved), "%s", tier_path[0]);
	struct testvol *b = tiered_volume(8 * TV_MiB, 8 * TV_MiB);
	/* b's ssd tier now holds a's: another volume's UUID. */
	assert_int_equal(rename(saved, tier_path[0]), 0);
	expect_mount_refused(b, "another volume");
	tv_destroy(a);
	tv_destroy(b);
}

static void test_bad_mkfs(void **state)
{
	(void)state;
	struct testvol *tv = tv_scratch("tiers-bad");
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.ntiers = 1;
	o.tiers[0] = (struct cairn_tier_opts){"no good", "/dev/shm/x", TV_MiB, 0};
	TV_ERR(cairn_mkfs(tv->dir, &o), EINVAL);
	assert_non_null(strstr(cairn_last_error(), "name"));
	char missing[PATH_MAX];
	snprintf(missing, sizeof(missing), "%s/none.tier", tv->root);
	o.tiers[0] = (struct cairn_tier_opts){"ssd", missing, 0, 0};
	TV_ERR(cairn_mkfs(tv->dir, &o), EINVAL);
	assert_non_null(strstr(cairn_last_error(), "no size"));
	o.tiers[0] = (struct cairn_tier_opts){"ssd", missing, TV_MiB, 1000};
	TV_ERR(cairn_mkfs(tv->dir, &o), EINVAL);
	struct cairn_mount_opts mo = {.high_watermark = 50, .low_watermark = 70};
	o.tiers[0].unit = 0;
	TV_OK(cairn_mkfs(tv->dir, &o));
	TV_ERR_NULL(cairn_mount(tv->dir, &mo), EINVAL);
	assert_non_null(strstr(cairn_last_error(), "watermark"));
	tv_destroy(tv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_four_times_fast_tier),
	    cmocka_unit_test(test_promotion),
	    cmocka_unit_test(test_one_scan_promotes_nothing),
	    cmocka_unit_test(test_promotion_off),
	    cmocka_unit_test(test_full_volume),
	    cmocka_unit_test(test_missing_tier),
	    cmocka_unit_test(test_shrunken_tier),
	    cmocka_unit_test(test_foreign_tier),
	    cmocka_unit_test(test_bad_mkfs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
