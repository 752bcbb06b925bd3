/*
 * test_api_attrs.c - attributes through the native API: stat/lstat/fstat
 * fields (type, mode, size, nlink, uid/gid, st_ino stability, st_blocks,
 * st_blksize), chmod, chown, utimens (explicit, UTIME_NOW, UTIME_OMIT,
 * NULL), the mtime/ctime updates Linux makes on write, truncate, create,
 * unlink, mkdir, rmdir, rename, link, symlink and chmod, and statvfs.
 */
#include "testvol.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define OLD_SEC 1000000000LL /* 2001-09-09: "long ago" for timestamps */
#define NS 1000000000LL

/* ---- stat ---------------------------------------------------------------- */

static void test_stat_regular_file_fields(void **state)
{
	cairn_fs *fs = TV_FS(state);
	unsigned char data[5000];
	tv_fill(data, sizeof(data), 1);
	tv_put(fs, "/f", data, sizeof(data), 0640);
	struct stat st = tv_stat(fs, "/f");
	assert_true(S_ISREG(st.st_mode));
	TV_EQ(st.st_mode & 07777, 0640);
	TV_EQ(st.st_size, 5000);
	TV_EQ(st.st_nlink, 1);
	TV_EQ(st.st_uid, geteuid());
	TV_EQ(st.st_gid, getegid());
	assert_true(st.st_blksize > 0);
	assert_true(st.st_ino != 0);
	/* lstat of a non-link is stat. */
	struct stat l = tv_lstat(fs, "/f");
	TV_EQ(l.st_ino, st.st_ino);
	TV_EQ(l.st_mode, st.st_mode);
	TV_EQ(l.st_size, st.st_size);
}

static void test_stat_directory_fields(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0711));
	struct stat st = tv_stat(fs, "/d");
	assert_true(S_ISDIR(st.st_mode));
	TV_EQ(st.st_mode & 07777, 0711);
	TV_EQ(st.st_nlink, 2);
	TV_EQ(st.st_uid, geteuid());
	TV_EQ(st.st_gid, getegid());
	struct stat root = tv_stat(fs, "/");
	assert_true(S_ISDIR(root.st_mode));
	assert_true(root.st_ino != st.st_ino);
}

static void test_lstat_symlink_stat_follows(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/target", "0123456789");
	TV_OK(cairn_symlink(fs, "target", "/l"));
	struct stat l = tv_lstat(fs, "/l");
	assert_true(S_ISLNK(l.st_mode));
	TV_EQ(l.st_size, 6); /* strlen("target") */
	TV_EQ(l.st_mode & 0777, 0777);
	TV_EQ(l.st_nlink, 1);
	struct stat s = tv_stat(fs, "/l");
	assert_true(S_ISREG(s.st_mode));
	TV_EQ(s.st_size, 10);
	TV_EQ(s.st_ino, tv_stat(fs, "/target").st_ino);
	assert_true(l.st_ino != s.st_ino);
}

static void test_fstat_matches_stat(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = TV_OK(cairn_open(fs, "/f", O_CREAT | O_RDWR, 0600));
	TV_EQ(cairn_pwrite(fs, fd, "abc", 3, 100), 3);
	struct stat a, b;
	TV_OK(cairn_fstat(fs, fd, &a));
	TV_OK(cairn_stat(fs, "/f", &b));
	TV_EQ(a.st_ino, b.st_ino);
	TV_EQ(a.st_mode, b.st_mode);
	TV_EQ(a.st_size, 103);
	TV_EQ(b.st_size, 103);
	TV_EQ(a.st_nlink, b.st_nlink);
	TV_EQ(tv_ts_ns(&a.st_mtim), tv_ts_ns(&b.st_mtim));
	/* fstat on a directory descriptor. */
	TV_OK(cairn_close(fs, fd));
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	fd = TV_OK(cairn_open(fs, "/d", O_RDONLY | O_DIRECTORY));
	TV_OK(cairn_fstat(fs, fd, &a));
	assert_true(S_ISDIR(a.st_mode));
	TV_EQ(a.st_ino, tv_stat(fs, "/d").st_ino);
	TV_OK(cairn_close(fs, fd));
}

static void test_ino_stable_and_unique(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/a", "a");
	tv_put_str(fs, "/b", "b");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	ino_t a = tv_stat(fs, "/a").st_ino, b = tv_stat(fs, "/b").st_ino;
	ino_t d = tv_stat(fs, "/d").st_ino, root = tv_stat(fs, "/").st_ino;
	assert_true(a != b && a != d && b != d && a != root && d != root);
	/* Stable across calls, writes, renames and links. */
	TV_EQ(tv_stat(fs, "/a").st_ino, a);
	int fd = TV_OK(cairn_open(fs, "/a", O_WRONLY | O_APPEND));
	TV_EQ(cairn_write(fs, fd, "more", 4), 4);
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_ino, a);
	TV_OK(cairn_close(fs, fd));
	TV_OK(cairn_rename(fs, "/a", "/d/a2", 0));
	TV_EQ(tv_stat(fs, "/d/a2").st_ino, a);
	TV_OK(cairn_link(fs, "/d/a2", "/a3"));
	TV_EQ(tv_stat(fs, "/a3").st_ino, a);
	TV_OK(cairn_digest(fs));
	TV_EQ(tv_stat(fs, "/a3").st_ino, a);
	TV_EQ(tv_stat(fs, "/d").st_ino, d);
}

static void test_st_blocks(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put(fs, "/empty", NULL, 0, 0644);
	TV_EQ(tv_stat(fs, "/empty").st_blocks, 0);
	/* 64 KiB of data occupy at least 128 blocks of 512 bytes, at once
	 * (as ext4 reports delayed allocations) and after digest. */
	unsigned char *data = malloc(64 * 1024);
	tv_fill(data, 64 * 1024, 2);
	tv_put(fs, "/dense", data, 64 * 1024, 0644);
	struct stat st = tv_stat(fs, "/dense");
	if (st.st_blocks < 128)
		fail_msg("64 KiB file has st_blocks %lld before digest", (long long)st.st_blocks);
	/* A 16 MiB file with 4 KiB of data is sparse. */
	int fd = TV_OK(cairn_open(fs, "/sparse", O_CREAT | O_WRONLY, 0644));
	TV_EQ(cairn_pwrite(fs, fd, data, 4096, 16 * TV_MiB - 4096), 4096);
	TV_OK(cairn_close(fs, fd));
	TV_OK(cairn_digest(fs));
	st = tv_stat(fs, "/dense");
	if (st.st_blocks < 128 || st.st_blocks > 1024)
		fail_msg("64 KiB file has st_blocks %lld after digest", (long long)st.st_blocks);
	st = tv_stat(fs, "/sparse");
	TV_EQ(st.st_size, 16 * TV_MiB);
	if (st.st_blocks < 8 || st.st_blocks > 1024)
		fail_msg("sparse file (4 KiB of data) has st_blocks %lld", (long long)st.st_blocks);
	TV_EQ(tv_stat(fs, "/empty").st_blocks, 0);
	/* Small appends, not yet digested, each hold a block of the shared
	 * area until the digest stores them; the file reports what it will
	 * hold, as ext4 does its delayed allocations: 4096 appends of 128
	 * bytes are 512 KiB, 1024 blocks of 512 bytes (not 4096 * 8). */
	fd = TV_OK(cairn_open(fs, "/appended", O_CREAT | O_WRONLY | O_APPEND, 0644));
	for (int i = 0; i < 4096; i++)
		TV_EQ(cairn_write(fs, fd, data + (i % 256) * 128, 128), 128);
	TV_OK(cairn_close(fs, fd));
	st = tv_stat(fs, "/appended");
	if (st.st_blocks < 1024 || st.st_blocks > 1024 + 8)
		fail_msg("512 KiB of small appends show st_blocks %lld", (long long)st.st_blocks);
	/* Rewriting a digested file in place adds nothing. */
	tv_put(fs, "/dense", data, 64 * 1024, 0644);
	st = tv_stat(fs, "/dense");
	if (st.st_blocks < 128 || st.st_blocks > 128 + 8)
		fail_msg("64 KiB file rewritten shows st_blocks %lld", (long long)st.st_blocks);
	TV_OK(cairn_digest(fs));
	st = tv_stat(fs, "/appended");
	if (st.st_blocks < 1024 || st.st_blocks > 1024 + 8)
		fail_msg("512 KiB of small appends show st_blocks %lld after digest",
		         (long long)st.st_blocks);
	/* Truncating to zero frees the blocks. */
	TV_OK(cairn_truncate(fs, "/dense", 0));
	TV_OK(cairn_digest(fs));
	TV_EQ(tv_stat(fs, "/dense").st_blocks, 0);
	free(data);
}

/* ---- chmod / chown ------------------------------------------------------- */

static void test_chmod_sets_permission_bits(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	static const mode_t modes[] = {0, 0777, 0644, 04755, 02755, 0600, 0444};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		TV_OK(cairn_chmod(fs, "/f", modes[i]));
		struct stat st = tv_stat(fs, "/f");
		assert_true(S_ISREG(st.st_mode));
		if ((st.st_mode & 07777) != modes[i])
			fail_msg("chmod %04o gave %04o", modes[i], st.st_mode & 07777);
	}
	TV_OK(cairn_chmod(fs, "/d", 01777));
	struct stat st = tv_stat(fs, "/d");
	assert_true(S_ISDIR(st.st_mode));
	TV_EQ(st.st_mode & 07777, 01777);
	/* File type bits in the argument are ignored. */
	TV_OK(cairn_chmod(fs, "/f", S_IFDIR | 0640));
	st = tv_stat(fs, "/f");
	assert_true(S_ISREG(st.st_mode));
	TV_EQ(st.st_mode & 07777, 0640);
}

static void test_chmod_follows_symlink(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_symlink(fs, "/f", "/l"));
	TV_OK(cairn_chmod(fs, "/l", 0600));
	TV_EQ(tv_stat(fs, "/f").st_mode & 07777, 0600);
	TV_EQ(tv_lstat(fs, "/l").st_mode & 0777, 0777);
	TV_ERR(cairn_chmod(fs, "/missing", 0600), ENOENT);
	TV_ERR(cairn_chmod(fs, "/f/x", 0600), ENOTDIR);
}

static void test_chown(void **state)
{
	cairn_fs *fs = TV_FS(state);
	if (geteuid() != 0)
		skip();
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_chown(fs, "/f", 1234, 5678));
	struct stat st = tv_stat(fs, "/f");
	TV_EQ(st.st_uid, 1234);
	TV_EQ(st.st_gid, 5678);
	/* -1 leaves a field alone. */
	TV_OK(cairn_chown(fs, "/f", (uid_t)-1, 42));
	st = tv_stat(fs, "/f");
	TV_EQ(st.st_uid, 1234);
	TV_EQ(st.st_gid, 42);
	TV_OK(cairn_chown(fs, "/f", 7, (gid_t)-1));
	st = tv_stat(fs, "/f");
	TV_EQ(st.st_uid, 7);
	TV_EQ(st.st_gid, 42);
	/* Follows symlinks; directories too. */
	TV_OK(cairn_symlink(fs, "/f", "/l"));
	TV_OK(cairn_chown(fs, "/l", 99, 98));
	TV_EQ(tv_stat(fs, "/f").st_uid, 99);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_OK(cairn_chown(fs, "/d", 3, 4));
	TV_EQ(tv_stat(fs, "/d").st_gid, 4);
	TV_ERR(cairn_chown(fs, "/missing", 1, 1), ENOENT);
}

static void test_chown_clears_setuid(void **state)
{
	cairn_fs *fs = TV_FS(state);
	if (geteuid() != 0)
		skip();
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_chmod(fs, "/f", 04755));
	TV_OK(cairn_chown(fs, "/f", 1000, 1000));
	/* Linux drops S_ISUID of a regular file on chown, even for root. */
	TV_EQ(tv_stat(fs, "/f").st_mode & 07777, 0755);
}

/* ---- utimens ------------------------------------------------------------- */

static void test_utimens_explicit_ns(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	struct timespec t[2] = {{.tv_sec = 1234567890, .tv_nsec = 123456789},
	                        {.tv_sec = 1500000000, .tv_nsec = 987654321}};
	int64_t before = tv_now_ns();
	TV_OK(cairn_utimens(fs, "/f", t));
	struct stat st = tv_stat(fs, "/f");
	TV_EQ(tv_ts_ns(&st.st_atim), 1234567890LL * NS + 123456789);
	TV_EQ(tv_ts_ns(&st.st_mtim), 1500000000LL * NS + 987654321);
	/* ctime becomes "now". */
	if (tv_ts_ns(&st.st_ctim) < before - NS)
		fail_msg("ctime %lld not updated by utimens (before %lld)",
		         (long long)tv_ts_ns(&st.st_ctim), (long long)before);
	/* Directories too; and times far in the future. */
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	struct timespec u[2] = {{.tv_sec = 4000000000LL, .tv_nsec = 1},
	                        {.tv_sec = 1, .tv_nsec = 999999999}};
	TV_OK(cairn_utimens(fs, "/d", u));
	st = tv_stat(fs, "/d");
	TV_EQ(tv_ts_ns(&st.st_atim), 4000000000LL * NS + 1);
	TV_EQ(tv_ts_ns(&st.st_mtim), 1 * NS + 999999999);
	/* Beyond what nanoseconds in 64 bits span (1677 to 2262): held to
	 * the nearest end, as ext4 clamps to its own range (2300-01-01 came
	 * back as 1715, 1600-01-01 as 2184). */
	struct timespec far[2] = {{.tv_sec = 10413792000LL, .tv_nsec = 0},
	                          {.tv_sec = -11676096000LL, .tv_nsec = 0}};
	TV_OK(cairn_utimens(fs, "/f", far));
	st = tv_stat(fs, "/f");
	TV_EQ(st.st_atim.tv_sec, INT64_MAX / NS);
	TV_EQ(st.st_mtim.tv_sec, INT64_MIN / NS - 1);
}

static void test_utimens_now(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	struct timespec old[2] = {{.tv_sec = OLD_SEC}, {.tv_sec = OLD_SEC}};
	TV_OK(cairn_utimens(fs, "/f", old));
	int64_t before = tv_now_ns();
	struct timespec t[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_NOW}};
	TV_OK(cairn_utimens(fs, "/f", t));
	int64_t after = tv_now_ns();
	struct stat st = tv_stat(fs, "/f");
	/* The engine may use a coarse clock: allow 1 s either way. */
	for (int i = 0; i < 2; i++) {
		int64_t v = tv_ts_ns(i == 0 ? &st.st_atim : &st.st_mtim);
		if (v < before - NS || v > after + NS)
			fail_msg("%s %lld not \"now\" [%lld, %lld]", i ? "mtime" : "atime",
			         (long long)v, (long long)before, (long long)after);
	}
	/* NULL times: both now. */
	TV_OK(cairn_utimens(fs, "/f", old));
	TV_OK(cairn_utimens(fs, "/f", NULL));
	st = tv_stat(fs, "/f");
	assert_true(tv_ts_ns(&st.st_atim) >= before - NS);
	assert_true(tv_ts_ns(&st.st_mtim) >= before - NS);
	/* One "now" for the times set and the change time, as on Linux. */
	TV_EQ(tv_ts_ns(&st.st_ctim), tv_ts_ns(&st.st_mtim));
	TV_EQ(tv_ts_ns(&st.st_atim), tv_ts_ns(&st.st_mtim));
}

static void test_utimens_omit(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	struct timespec set[2] = {{.tv_sec = OLD_SEC, .tv_nsec = 1},
	                          {.tv_sec = OLD_SEC, .tv_nsec = 2}};
	TV_OK(cairn_utimens(fs, "/f", set));
	/* Only mtime. */
	struct timespec t[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = 1600000000, .tv_nsec = 5}};
	TV_OK(cairn_utimens(fs, "/f", t));
	struct stat st = tv_stat(fs, "/f");
	TV_EQ(tv_ts_ns(&st.st_atim), OLD_SEC * NS + 1);
	TV_EQ(tv_ts_ns(&st.st_mtim), 1600000000LL * NS + 5);
	/* Only atime, to now. */
	struct timespec u[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_OMIT}};
	int64_t before = tv_now_ns();
	TV_OK(cairn_utimens(fs, "/f", u));
	st = tv_stat(fs, "/f");
	assert_true(tv_ts_ns(&st.st_atim) >= before - NS);
	TV_EQ(tv_ts_ns(&st.st_mtim), 1600000000LL * NS + 5);
	/* Both omitted: nothing changes, not even ctime. */
	int64_t ctime = tv_ts_ns(&st.st_ctim);
	tv_sleep_ms(20);
	struct timespec o[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
	TV_OK(cairn_utimens(fs, "/f", o));
	struct stat st2 = tv_stat(fs, "/f");
	TV_EQ(tv_ts_ns(&st2.st_atim), tv_ts_ns(&st.st_atim));
	TV_EQ(tv_ts_ns(&st2.st_mtim), tv_ts_ns(&st.st_mtim));
	TV_EQ(tv_ts_ns(&st2.st_ctim), ctime);
}

static void test_utimens_errors_and_symlinks(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	struct timespec bad[2] = {{.tv_sec = 1, .tv_nsec = 1000000000}, {.tv_sec = 1}};
	TV_ERR(cairn_utimens(fs, "/f", bad), EINVAL);
	struct timespec neg[2] = {{.tv_sec = 1}, {.tv_sec = 1, .tv_nsec = -5}};
	TV_ERR(cairn_utimens(fs, "/f", neg), EINVAL);
	struct timespec ok[2] = {{.tv_sec = 1700000000}, {.tv_sec = 1700000001}};
	TV_ERR(cairn_utimens(fs, "/missing", ok), ENOENT);
	/* Follows a symlink to its target. */
	TV_OK(cairn_symlink(fs, "/f", "/l"));
	TV_OK(cairn_utimens(fs, "/l", ok));
	TV_EQ(tv_stat(fs, "/f").st_mtim.tv_sec, 1700000001);
	assert_true(tv_lstat(fs, "/l").st_mtim.tv_sec != 1700000001);
}

/* ---- timestamps updated by operations ------------------------------------ */

/* Sets atime/mtime of path to OLD_SEC and returns its ctime after a pause,
 * so that an operation that updates ctime must make it larger. */
static int64_t age(cairn_fs *fs, const char *path)
{
	struct timespec old[2] = {{.tv_sec = OLD_SEC}, {.tv_sec = OLD_SEC}};
	TV_OK(cairn_utimens(fs, path, old));
	struct stat st = tv_stat(fs, path);
	int64_t c = tv_ts_ns(&st.st_ctim);
	tv_sleep_ms(25);
	return c;
}

static void expect_mtime_updated(cairn_fs *fs, const char *path, int64_t before)
{
	struct stat st = tv_stat(fs, path);
	int64_t m = tv_ts_ns(&st.st_mtim);
	if (m == OLD_SEC * NS || m < before - NS || m > tv_now_ns() + NS)
		fail_msg("%s: mtime %lld was not updated to now (op started at %lld)", path,
		         (long long)m, (long long)before);
}

static void expect_mtime_unchanged(cairn_fs *fs, const char *path)
{
	struct stat st = tv_stat(fs, path);
	int64_t m = tv_ts_ns(&st.st_mtim);
	if (m != OLD_SEC * NS)
		fail_msg("%s: mtime changed to %lld", path, (long long)m);
}

static void expect_ctime_updated(cairn_fs *fs, const char *path, int64_t old_ctime)
{
	struct stat st = tv_lstat(fs, path);
	int64_t c = tv_ts_ns(&st.st_ctim);
	if (c <= old_ctime)
		fail_msg("%s: ctime %lld not updated (was %lld)", path, (long long)c,
		         (long long)old_ctime);
}

static void test_write_updates_mtime_ctime(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	int64_t c = age(fs, "/f");
	int64_t t0 = tv_now_ns();
	int fd = TV_OK(cairn_open(fs, "/f", O_WRONLY));
	TV_EQ(cairn_pwrite(fs, fd, "yy", 2, 10), 2);
	TV_OK(cairn_close(fs, fd));
	expect_mtime_updated(fs, "/f", t0);
	expect_ctime_updated(fs, "/f", c);
}

static void test_read_does_not_update_mtime(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "content");
	int64_t c = age(fs, "/f");
	int fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	char buf[16];
	TV_EQ(cairn_read(fs, fd, buf, sizeof(buf)), 7);
	TV_OK(cairn_close(fs, fd));
	expect_mtime_unchanged(fs, "/f");
	struct stat st = tv_stat(fs, "/f");
	TV_EQ(tv_ts_ns(&st.st_ctim), c);
}

static void test_truncate_updates_mtime_ctime(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "0123456789");
	int64_t c = age(fs, "/f");
	int64_t t0 = tv_now_ns();
	TV_OK(cairn_truncate(fs, "/f", 3));
	expect_mtime_updated(fs, "/f", t0);
	expect_ctime_updated(fs, "/f", c);
	c = age(fs, "/f");
	t0 = tv_now_ns();
	int fd = TV_OK(cairn_open(fs, "/f", O_RDWR));
	TV_OK(cairn_ftruncate(fs, fd, 100));
	TV_OK(cairn_close(fs, fd));
	expect_mtime_updated(fs, "/f", t0);
	expect_ctime_updated(fs, "/f", c);
	/* O_TRUNC of a non-empty file too. */
	c = age(fs, "/f");
	t0 = tv_now_ns();
	fd = TV_OK(cairn_open(fs, "/f", O_WRONLY | O_TRUNC));
	TV_OK(cairn_close(fs, fd));
	expect_mtime_updated(fs, "/f", t0);
	expect_ctime_updated(fs, "/f", c);
}

static void test_create_sets_times_and_updates_parent(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	int64_t c = age(fs, "/d");
	int64_t t0 = tv_now_ns();
	tv_put(fs, "/d/f", NULL, 0, 0644);
	expect_mtime_updated(fs, "/d", t0);
	expect_ctime_updated(fs, "/d", c);
	/* A new file's three times are equal and "now". */
	struct stat st = tv_stat(fs, "/d/f");
	TV_EQ(tv_ts_ns(&st.st_atim), tv_ts_ns(&st.st_mtim));
	TV_EQ(tv_ts_ns(&st.st_ctim), tv_ts_ns(&st.st_mtim));
	expect_mtime_updated(fs, "/d/f", t0);
	/* Opening an existing file with O_CREAT changes nothing. */
	age(fs, "/d");
	int fd = TV_OK(cairn_open(fs, "/d/f", O_CREAT | O_RDONLY, 0644));
	TV_OK(cairn_close(fs, fd));
	expect_mtime_unchanged(fs, "/d");
}

static void test_unlink_updates_parent_and_inode_ctime(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/d/f", "x");
	TV_OK(cairn_link(fs, "/d/f", "/keep"));
	int64_t cd = age(fs, "/d");
	int64_t cf = age(fs, "/keep");
	int64_t t0 = tv_now_ns();
	TV_OK(cairn_unlink(fs, "/d/f"));
	expect_mtime_updated(fs, "/d", t0);
	expect_ctime_updated(fs, "/d", cd);
	/* The inode lost a link: its ctime changes, its mtime does not. */
	expect_ctime_updated(fs, "/keep", cf);
	expect_mtime_unchanged(fs, "/keep");
}

static void test_mkdir_rmdir_update_parent(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/p", 0755));
	int64_t c = age(fs, "/p");
	int64_t t0 = tv_now_ns();
	TV_OK(cairn_mkdir(fs, "/p/sub", 0755));
	expect_mtime_updated(fs, "/p", t0);
	expect_ctime_updated(fs, "/p", c);
	c = age(fs, "/p");
	t0 = tv_now_ns();
	TV_OK(cairn_rmdir(fs, "/p/sub"));
	expect_mtime_updated(fs, "/p", t0);
	expect_ctime_updated(fs, "/p", c);
}

static void test_rename_updates_both_parents_and_inode_ctime(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/a", 0755));
	TV_OK(cairn_mkdir(fs, "/b", 0755));
	tv_put_str(fs, "/a/f", "x");
	int64_t ca = age(fs, "/a");
	int64_t cb = age(fs, "/b");
	int64_t cf = age(fs, "/a/f");
	int64_t t0 = tv_now_ns();
	TV_OK(cairn_rename(fs, "/a/f", "/b/g", 0));
	expect_mtime_updated(fs, "/a", t0);
	expect_ctime_updated(fs, "/a", ca);
	expect_mtime_updated(fs, "/b", t0);
	expect_ctime_updated(fs, "/b", cb);
	expect_ctime_updated(fs, "/b/g", cf); /* ext4 touches the moved inode's ctime */
	expect_mtime_unchanged(fs, "/b/g");
}

static void test_link_and_symlink_update_times(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/f", "x");
	int64_t cd = age(fs, "/d");
	int64_t cf = age(fs, "/f");
	int64_t t0 = tv_now_ns();
	TV_OK(cairn_link(fs, "/f", "/d/f2"));
	expect_mtime_updated(fs, "/d", t0);
	expect_ctime_updated(fs, "/d", cd);
	expect_ctime_updated(fs, "/f", cf);
	expect_mtime_unchanged(fs, "/f");
	cd = age(fs, "/d");
	t0 = tv_now_ns();
	TV_OK(cairn_symlink(fs, "/f", "/d/l"));
	expect_mtime_updated(fs, "/d", t0);
	expect_ctime_updated(fs, "/d", cd);
}

static void test_chmod_chown_update_ctime_only(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	int64_t c = age(fs, "/f");
	TV_OK(cairn_chmod(fs, "/f", 0600));
	expect_ctime_updated(fs, "/f", c);
	expect_mtime_unchanged(fs, "/f");
	c = age(fs, "/f");
	TV_OK(cairn_chown(fs, "/f", geteuid(), getegid()));
	expect_ctime_updated(fs, "/f", c);
	expect_mtime_unchanged(fs, "/f");
	TV_EQ(tv_stat(fs, "/f").st_atim.tv_sec, OLD_SEC);
}

/* ---- statvfs ------------------------------------------------------------- */

static uint64_t bfree_bytes(const struct statvfs *sv)
{
	uint64_t unit = sv->f_frsize ? sv->f_frsize : sv->f_bsize;
	return (uint64_t)sv->f_bfree * unit;
}

static void test_statvfs_sane(void **state)
{
	cairn_fs *fs = TV_FS(state);
	struct statvfs sv;
	TV_OK(cairn_statvfs(fs, "/", &sv));
	assert_true(sv.f_bsize > 0);
	assert_true(sv.f_frsize > 0);
	uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
	/* The default test volume has a 64 MiB fast tier. */
	if (total > 64 * TV_MiB || total < 16 * TV_MiB)
		fail_msg("f_blocks * f_frsize = %llu, expected about 64 MiB",
		         (unsigned long long)total);
	assert_true(sv.f_bfree <= sv.f_blocks);
	assert_true(sv.f_bavail <= sv.f_bfree);
	assert_true(sv.f_bfree > 0);
	assert_true(sv.f_files > 0);
	assert_true(sv.f_ffree < sv.f_files); /* the root uses one */
	assert_true(sv.f_favail <= sv.f_ffree);
	TV_EQ(sv.f_namemax, 255);
	/* Any path in the volume gives the same numbers. */
	tv_put_str(fs, "/f", "x");
	struct statvfs sv2;
	TV_OK(cairn_statvfs(fs, "/f", &sv2));
	TV_EQ(sv2.f_blocks, sv.f_blocks);
	TV_EQ(sv2.f_files, sv.f_files);
	TV_EQ(sv2.f_namemax, 255);
	TV_ERR(cairn_statvfs(fs, "/missing", &sv2), ENOENT);
}

static void test_statvfs_tracks_data_and_inodes(void **state)
{
	cairn_fs *fs = TV_FS(state);
	struct statvfs a, b, c;
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_statvfs(fs, "/", &a));
	const size_t len = 8 * TV_MiB;
	unsigned char *data = malloc(len);
	tv_fill(data, len, 9);
	tv_put(fs, "/data", data, len, 0644);
	for (int i = 0; i < 20; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/empty%d", i);
		tv_put(fs, p, NULL, 0, 0644);
	}
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_statvfs(fs, "/", &b));
	if (bfree_bytes(&a) < bfree_bytes(&b) + len)
		fail_msg("f_bfree went from %llu to %llu bytes after writing %zu bytes",
		         (unsigned long long)bfree_bytes(&a), (unsigned long long)bfree_bytes(&b),
		         len);
	if (b.f_ffree + 21 > a.f_ffree)
		fail_msg("f_ffree went from %llu to %llu after creating 21 files",
		         (unsigned long long)a.f_ffree, (unsigned long long)b.f_ffree);
	TV_EQ(b.f_blocks, a.f_blocks);
	TV_EQ(b.f_files, a.f_files);
	/* Removing them gives the space and inodes back. */
	TV_OK(cairn_unlink(fs, "/data"));
	for (int i = 0; i < 20; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/empty%d", i);
		TV_OK(cairn_unlink(fs, p));
	}
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_statvfs(fs, "/", &c));
	if (bfree_bytes(&c) < bfree_bytes(&b) + len)
		fail_msg("f_bfree went from %llu to %llu bytes after unlinking %zu bytes",
		         (unsigned long long)bfree_bytes(&b), (unsigned long long)bfree_bytes(&c),
		         len);
	TV_EQ(c.f_ffree, a.f_ffree);
	free(data);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tv_setup, tv_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_stat_regular_file_fields),
	    T(test_stat_directory_fields),
	    T(test_lstat_symlink_stat_follows),
	    T(test_fstat_matches_stat),
	    T(test_ino_stable_and_unique),
	    T(test_st_blocks),
	    T(test_chmod_sets_permission_bits),
	    T(test_chmod_follows_symlink),
	    T(test_chown),
	    T(test_chown_clears_setuid),
	    T(test_utimens_explicit_ns),
	    T(test_utimens_now),
	    T(test_utimens_omit),
	    T(test_utimens_errors_and_symlinks),
	    T(test_write_updates_mtime_ctime),
	    T(test_read_does_not_update_mtime),
	    T(test_truncate_updates_mtime_ctime),
	    T(test_create_sets_times_and_updates_parent),
	    T(test_unlink_updates_parent_and_inode_ctime),
	    T(test_mkdir_rmdir_update_parent),
	    T(test_rename_updates_both_parents_and_inode_ctime),
	    T(test_link_and_symlink_update_times),
	    T(test_chmod_chown_update_ctime_only),
	    T(test_statvfs_sane),
	    T(test_statvfs_tracks_data_and_inodes),
	};
	return cmocka_run_group_tests_name("api_attrs", tests, NULL, NULL);
}
