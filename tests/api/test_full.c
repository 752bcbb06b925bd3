/*
 * test_full.c - full volumes: data, names, xattrs and small files fill the
 * fast tier on every medium.  Whatever fills it, a call that cannot be
 * applied gets ENOSPC before anything is logged (never EIO); unlink,
 * rmdir, rename and truncate still work on the full volume and give the
 * space back; the volume remounts with the same contents and fsck finds
 * it clean.  A volume whose last record cannot be applied (written before
 * calls reserved their tree nodes) mounts, dropping that record.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/alloc.h"
#include "fsck/fsck.h"
#include "libfs/fs_internal.h"
#include "testvol.h"

#define LONG_NAME "a-rather-long-file-name-that-fills-directory-leaves-quickly-"

static struct testvol *small_volume(enum cairn_media media, uint64_t fast, uint64_t inodes)
{
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.media = media;
	o.log_size = 4 * TV_MiB;
	o.fast_size = fast;
	o.inodes = inodes;
	struct testvol *tv = tv_create(&o);
	assert_non_null(tv);
	return tv;
}

static void expect_fsck_clean(struct testvol *tv)
{
	struct fsck_opts o = {0};
	struct fsck_report r;
	int rc = fsck_run(tv->dir, &o, &r);
	if (rc != FSCK_CLEAN)
		fsck_print_text(stderr, tv->dir, &r);
	assert_int_equal(rc, FSCK_CLEAN);
	fsck_report_free(&r);
}

/* Unmount, fsck, mount again: the dump must not change. */
static void remount_same(struct testvol *tv)
{
	char *before = tv_dump(tv->fs, TV_DUMP_ALL);
	TV_OK(tv_unmount(tv));
	expect_fsck_clean(tv);
	assert_non_null(tv_mount(tv, NULL));
	char *after = tv_dump(tv->fs, TV_DUMP_ALL);
	tv_assert_dump_eq(before, after, "after a remount of the full volume");
	free(before);
	free(after);
}

/* Writes 64 KiB pieces to path until ENOSPC; returns the bytes written. */
static uint64_t fill_with_data(cairn_fs *fs, const char *path)
{
	static char buf[64 * 1024];
	memset(buf, 'd', sizeof(buf));
	int fd = TV_OK(cairn_open(fs, path, O_CREAT | O_WRONLY, 0644));
	uint64_t total = 0;
	for (;;) {
		ssize_t n = cairn_write(fs, fd, buf, sizeof(buf));
		if (n < 0) {
			assert_int_equal(errno, ENOSPC);
			break;
		}
		total += (uint64_t)n;
	}
	TV_OK(cairn_close(fs, fd));
	return total;
}

/* Creates dir/NAME<k> until ENOSPC; returns how many were made. */
static int fill_with_names(cairn_fs *fs, const char *dir, int limit)
{
	char p[256];
	for (int k = 0; k < limit; k++) {
		snprintf(p, sizeof(p), "%s/" LONG_NAME "%d", dir, k);
		int fd = cairn_open(fs, p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0) {
			if (errno != ENOSPC)
				fail_msg("create %d: %s (expected ENOSPC)", k, strerror(errno));
			return k;
		}
		TV_OK(cairn_close(fs, fd));
	}
	fail_msg("%d names fit; the volume never filled", limit);
	return limit;
}

/* On a full volume the calls that give space back still work, and the
 * space they give comes back to new calls. */
static void free_space_on_full_volume(cairn_fs *fs, const char *dir, int names)
{
	char a[256], b[256];
	snprintf(a, sizeof(a), "%s/" LONG_NAME "0", dir);
	snprintf(b, sizeof(b), "%s/renamed", dir);
	TV_OK(cairn_rename(fs, a, b, 0));
	TV_OK(cairn_truncate(fs, "/data", 4096));
	TV_OK(cairn_unlink(fs, b));
	for (int k = 1; k < names; k++) {
		snprintf(a, sizeof(a), "%s/" LONG_NAME "%d", dir, k);
		TV_OK(cairn_unlink(fs, a));
	}
	TV_OK(cairn_rmdir(fs, dir));
	TV_OK(cairn_mkdir(fs, "/after", 0755));
	tv_put_str(fs, "/after/file", "written after space was freed");
}

static void names_after_data(enum cairn_media media)
{
	struct testvol *tv = small_volume(media, 16 * TV_MiB, 8192);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	assert_true(fill_with_data(fs, "/data") > 4 * TV_MiB);
	int names = fill_with_names(fs, "/d", 100000);
	TV_ERR(cairn_mkdir(fs, "/d2", 0755), ENOSPC);
	TV_ERR(cairn_symlink(fs, "/data", "/link"), ENOSPC);
	/* ENOSPC, not a failed volume: reads and attribute changes work. */
	TV_OK(cairn_chmod(fs, "/data", 0600));
	remount_same(tv);
	free_space_on_full_volume(tv->fs, "/d", names);
	remount_same(tv);
	tv_destroy(tv);
}

static void test_names_after_data_emul(void **state)
{
	(void)state;
	names_after_data(CAIRN_MEDIA_EMUL);
}

static void test_names_after_data_file(void **state)
{
	(void)state;
	names_after_data(CAIRN_MEDIA_FILE);
}

/* Names alone fill the fast tier (no data at all), then data is refused. */
static void test_names_only(void **state)
{
	(void)state;
	struct testvol *tv = small_volume(CAIRN_MEDIA_EMUL, 16 * TV_MiB, 32768);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/data", "x");
	int names = fill_with_names(fs, "/d", 200000);
	assert_true(names > 1000);
	int fd = TV_OK(cairn_open(fs, "/data", O_WRONLY));
	static char buf[256 * 1024];
	ssize_t n;
	while ((n = cairn_write(fs, fd, buf, sizeof(buf))) > 0)
		;
	assert_int_equal(n, -1);
	assert_int_equal(errno, ENOSPC);
	TV_OK(cairn_close(fs, fd));
	remount_same(tv);
	free_space_on_full_volume(tv->fs, "/d", names);
	remount_same(tv);
	tv_destroy(tv);
}

/* Extended attributes fill it: removexattr still works. */
static void test_xattrs_fill(void **state)
{
	(void)state;
	struct testvol *tv = small_volume(CAIRN_MEDIA_EMUL, 8 * TV_MiB, 2048);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	fill_with_data(fs, "/data");
	char value[1000], name[64];
	memset(value, 'v', sizeof(value));
	int files = 0, k = 0;
	for (int done = 0; !done && files < 2000; files++) {
		char p[64];
		snprintf(p, sizeof(p), "/x%d", files);
		int fd = cairn_open(fs, p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0) {
			assert_int_equal(errno, ENOSPC);
			break;
		}
		TV_OK(cairn_close(fs, fd));
		for (k = 0; k < 16; k++) {
			snprintf(name, sizeof(name), "user.attr%d", k);
			if (cairn_setxattr(fs, p, name, value, sizeof(value), 0) < 0) {
				assert_int_equal(errno, ENOSPC);
				done = 1;
				break;
			}
		}
	}
	remount_same(tv);
	fs = tv->fs;
	for (int f = 0; f < files; f++) {
		char p[64];
		snprintf(p, sizeof(p), "/x%d", f);
		for (int j = 0; j < 16; j++) {
			snprintf(name, sizeof(name), "user.attr%d", j);
			if (cairn_removexattr(fs, p, name) < 0)
				assert_int_equal(errno, ENODATA);
		}
	}
	TV_OK(cairn_unlink(fs, "/data"));
	tv_put_str(fs, "/after", "space is back");
	remount_same(tv);
	tv_destroy(tv);
}

/* Small files on a tiered volume: every file's data may go to a capacity
 * tier, but its extent map lives on the fast tier. */
static void test_small_files_tiered(void **state)
{
	(void)state;
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.log_size = 4 * TV_MiB;
	o.fast_size = 4 * TV_MiB;
	o.inodes = 8192;
	o.ntiers = 1;
	o.tiers[0].name = "ssd";
	o.tiers[0].size = 64 * TV_MiB;
	struct testvol *tv = tv_scratch("full-tiered");
	char tier[PATH_MAX];
	snprintf(tier, sizeof(tier), "%s/ssd.img", tv->root);
	o.tiers[0].path = tier;
	TV_OK(tv_mkfs(tv, &o));
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	int k;
	for (k = 0; k < 8192; k++) {
		char p[64], s[32];
		snprintf(p, sizeof(p), "/f%d", k);
		snprintf(s, sizeof(s), "%d\n", k);
		int fd = cairn_open(fs, p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0) {
			assert_int_equal(errno, ENOSPC);
			break;
		}
		ssize_t n = cairn_write(fs, fd, s, strlen(s));
		TV_OK(cairn_close(fs, fd));
		if (n < 0) {
			assert_int_equal(errno, ENOSPC);
			TV_OK(cairn_unlink(fs, p));
			break;
		}
	}
	assert_true(k > 100);
	remount_same(tv);
	for (int j = 0; j < k; j++) {
		char p[64];
		snprintf(p, sizeof(p), "/f%d", j);
		TV_OK(cairn_unlink(tv->fs, p));
	}
	tv_put_str(tv->fs, "/after", "space is back");
	remount_same(tv);
	tv_destroy(tv);
}

/* statfs says what a write can still take: after a write fails with
 * ENOSPC, f_bavail is (almost) nothing, and a write of what it says fits. */
static void test_statfs_available(void **state)
{
	(void)state;
	struct testvol *tv = small_volume(CAIRN_MEDIA_EMUL, 16 * TV_MiB, 2048);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	struct statvfs sv;
	TV_OK(cairn_statvfs(fs, "/", &sv));
	uint64_t avail = sv.f_bavail;
	assert_true(avail > 0);
	/* What statfs offers can be written, and not much more. */
	int fd = TV_OK(cairn_open(fs, "/data", O_CREAT | O_WRONLY, 0644));
	char *buf = calloc(1, avail * 4096);
	memset(buf, 'a', avail * 4096);
	assert_int_equal(tv_write_full(fs, fd, buf, avail * 4096), (ssize_t)(avail * 4096));
	free(buf);
	uint64_t more = 0;
	char block[4096] = {0};
	while (cairn_write(fs, fd, block, sizeof(block)) == (ssize_t)sizeof(block))
		more++;
	assert_int_equal(errno, ENOSPC);
	if (more > avail / 32 + 8)
		fail_msg("statfs offered %llu blocks but %llu more fit", (unsigned long long)avail,
		         (unsigned long long)more);
	TV_OK(cairn_close(fs, fd));
	TV_OK(cairn_statvfs(fs, "/", &sv));
	assert_true(sv.f_bavail <= 8); /* what a write's own tree nodes need */
	tv_destroy(tv);
}

/*
 * A record whose apply fails for want of space (as volumes made before
 * calls reserved their tree nodes can hold): the call fails with EIO and
 * the volume takes no more changes; the next mount drops that last record
 * and the volume is whole and clean.  Names are made behind the space
 * checks (make_node is what a create calls after them) on a volume whose
 * data fills the fast tier, until one does not fit.
 */
static void test_unappliable_last_record(void **state)
{
	(void)state;
	struct testvol *tv = small_volume(CAIRN_MEDIA_EMUL, 8 * TV_MiB, 2048);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/kept", "acknowledged before the failure");
	fill_with_data(fs, "/data");
	TV_OK(cairn_digest(fs)); /* the data's blocks are taken on media */
	pthread_rwlock_wrlock(&fs->lock);
	struct lookup lk;
	assert_int_equal(path_lookup(fs, "/d", LOOKUP_FOLLOW, &lk), 0);
	uint64_t seq = 0;
	int rc = 0, made = 0;
	for (; made < 100000 && rc == 0; made++) {
		char name[200];
		int len = snprintf(name, sizeof(name), LONG_NAME "%d", made);
		rc = make_node(fs, NULL, lk.ino, name, (size_t)len, S_IFREG | 0644, 0, NULL, 0,
		               NULL, &seq);
	}
	pthread_rwlock_unlock(&fs->lock);
	assert_int_equal(rc, -EIO);
	TV_ERR(cairn_mkdir(fs, "/more", 0755), EIO);
	log_commit_all(fs->log);
	/* What the volume must show after the remount: everything but the
	 * refused name, so dump it from a read-only mount of the same log. */
	tv_unmount(tv);
	struct cairn_mount_opts ro = {.read_only = 1};
	cairn_fs *rofs = cairn_mount(tv->dir, &ro);
	assert_non_null(rofs);
	char *expected = tv_dump(rofs, TV_DUMP_ALL);
	TV_OK(cairn_unmount(rofs));
	assert_non_null(tv_mount(tv, NULL));
	char *after = tv_dump(tv->fs, TV_DUMP_ALL);
	tv_assert_dump_eq(expected, after, "read-write mount against read-only mount");
	assert_non_null(strstr(after, "/kept"));
	char last[200];
	snprintf(last, sizeof(last), "/d/" LONG_NAME "%d\n", made - 1);
	assert_null(strstr(after, last)); /* the refused name */
	TV_OK(cairn_unlink(tv->fs, "/data"));
	TV_OK(cairn_mkdir(tv->fs, "/more", 0755));
	TV_OK(tv_unmount(tv));
	expect_fsck_clean(tv);
	free(expected);
	free(after);
	tv_destroy(tv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_after_data_emul),
	    cmocka_unit_test(test_names_after_data_file),
	    cmocka_unit_test(test_names_only),
	    cmocka_unit_test(test_xattrs_fill),
	    cmocka_unit_test(test_small_files_tiered),
	    cmocka_unit_test(test_statfs_available),
	    cmocka_unit_test(test_unappliable_last_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
