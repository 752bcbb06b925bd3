/*
 * test_full.c - full volumes: data, names, xattrs and small files fill the
 * fast tier on every medium.  Whatever fills it, a call that cannot be
 * applied gets ENOSPC before anything is logged (never EIO); unlink,
 * rmdir, rename and truncate still work on the full volume and give the
 * space back; the volume remounts with the same contents and fsck finds
 * it clean.  A volume whose last record cannot be applied (written before
 * calls reserved their tree nodes) mounts, dropping that record.
 * fallocate sets its blocks aside: every byte of a preallocated range can
 * be written on a volume filled since, across a remount and a crash.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fs/alloc.h"
#include "fsck/fsck.h"
#include "libfs/fs_internal.h"
#include "testvol.h"
#include "tvsoil.h"

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

/* Unmount, fsck, mount again: the dump must not change. */
static void remount_same(struct testvol *tv)
{
	char *before = tv_dump(tv->fs, TV_DUMP_ALL);
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
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
	/* Opening a file that is there makes no name: O_TRUNC and O_CREAT
	 * work, and O_EXCL says EEXIST, while a new name is still refused. */
	snprintf(a, sizeof(a), "%s/new", dir);
	TV_ERR(cairn_open(fs, a, O_CREAT | O_WRONLY, 0644), ENOSPC);
	snprintf(a, sizeof(a), "%s/" LONG_NAME "1", dir);
	TV_ERR(cairn_open(fs, a, O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	TV_OK(cairn_close(fs, TV_OK(cairn_open(fs, a, O_WRONLY | O_TRUNC))));
	TV_OK(cairn_close(fs, TV_OK(cairn_open(fs, a, O_CREAT | O_WRONLY | O_TRUNC, 0644))));
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

/* A 4 MiB fast tier (and log) over an "ssd" tier of ssd_size bytes. */
static struct testvol *tiered_volume(const char *tag, uint64_t ssd_size, uint64_t inodes)
{
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.log_size = 4 * TV_MiB;
	o.fast_size = 4 * TV_MiB;
	o.inodes = inodes;
	o.ntiers = 1;
	o.tiers[0].name = "ssd";
	o.tiers[0].size = ssd_size;
	struct testvol *tv = tv_scratch(tag);
	static char tier[PATH_MAX]; /* tv->mkfs keeps the pointer */
	snprintf(tier, sizeof(tier), "%s/ssd.img", tv->root);
	o.tiers[0].path = tier;
	TV_OK(tv_mkfs(tv, &o));
	return tv;
}

/* Small files on a tiered volume: every file's data may go to a capacity
 * tier, but its extent map lives on the fast tier. */
static void test_small_files_tiered(void **state)
{
	(void)state;
	struct testvol *tv = tiered_volume("full-tiered", 64 * TV_MiB, 8192);
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

/* fallocate inside a sparse file's holes checks the space of the holes:
 * on a full volume it is refused, and mtime/ctime change when it works. */
static void test_fallocate_holes(void **state)
{
	(void)state;
	struct testvol *tv = small_volume(CAIRN_MEDIA_EMUL, 16 * TV_MiB, 2048);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	int fd = TV_OK(cairn_open(fs, "/sparse", O_CREAT | O_RDWR, 0644));
	TV_OK(cairn_ftruncate(fs, fd, 10 * TV_MiB));
	struct stat before, after;
	TV_OK(cairn_fstat(fs, fd, &before));
	struct timespec pause = {0, 2000000};
	nanosleep(&pause, NULL);
	TV_OK(cairn_fallocate(fs, fd, 0, 0, 64 * 1024));
	TV_OK(cairn_fstat(fs, fd, &after));
	assert_true(after.st_mtim.tv_sec * 1000000000ll + after.st_mtim.tv_nsec >
	            before.st_mtim.tv_sec * 1000000000ll + before.st_mtim.tv_nsec);
	assert_int_equal(after.st_size, 10 * TV_MiB);
	fill_with_data(fs, "/data");
	TV_ERR(cairn_fallocate(fs, fd, 0, 0, 5 * TV_MiB), ENOSPC);
	TV_ERR(cairn_fallocate(fs, fd, 1 /* KEEP_SIZE */, 0, 5 * TV_MiB), ENOSPC);
	TV_OK(cairn_close(fs, fd));
	tv_destroy(tv);
}

/* ---- fallocate sets blocks aside --------------------------------------------- */

#define PRE_LEN (2 * TV_MiB + 5000) /* the preallocated range: ends inside a block */

/* Writes `len` bytes to path in 1 MiB calls; 0 or -1 (errno set): usable
 * in a child process too. */
static int put_bytes(cairn_fs *fs, const char *path, uint64_t len)
{
	static char buf[TV_MiB];
	memset(buf, 'b', sizeof(buf));
	int fd = cairn_open(fs, path, O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		return -1;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < sizeof(buf) ? (size_t)(len - done) : sizeof(buf);
		ssize_t w = cairn_write(fs, fd, buf, n);
		if (w <= 0)
			return -1;
		done += (uint64_t)w;
	}
	return cairn_close(fs, fd);
}

/* Fills the volume to the last block a write can take: 64 KiB writes, then
 * 4 KiB ones, until ENOSPC. */
static void fill_tight(cairn_fs *fs, const char *path)
{
	assert_true(fill_with_data(fs, path) > 0);
	static char block[4096];
	int fd = TV_OK(cairn_open(fs, path, O_WRONLY | O_APPEND));
	while (cairn_write(fs, fd, block, sizeof(block)) == (ssize_t)sizeof(block))
		;
	assert_int_equal(errno, ENOSPC);
	TV_OK(cairn_close(fs, fd));
}

/* Fills all of the volume but about `keep` bytes with /base. */
static int fill_all_but(cairn_fs *fs, uint64_t keep)
{
	struct statvfs sv;
	if (cairn_statvfs(fs, "/", &sv) != 0 || sv.f_bavail * 4096 < keep + 4 * TV_MiB)
		return -1;
	return put_bytes(fs, "/base", sv.f_bavail * 4096 - keep);
}

/* Writes exp[from, to) at the same offsets in unaligned calls of every
 * size (1 byte, then one crossing a block boundary, then 60001-byte
 * pieces).  0, or -1 with the failing write reported on stderr. */
static int write_range(cairn_fs *fs, int fd, const char *exp, size_t from, size_t to)
{
	static const size_t steps[] = {1, 4094, 100, 60001};
	for (size_t off = from, k = 0; off < to; k++) {
		size_t n = steps[k < 3 ? k : 3];
		if (n > to - off)
			n = to - off;
		ssize_t w = cairn_pwrite(fs, fd, exp + off, n, (off_t)off);
		if (w != (ssize_t)n) {
			fprintf(stderr,
			        "write of %zu bytes at %zu into the preallocated range: %s\n", n,
			        off, w < 0 ? strerror(errno) : "short");
			return -1;
		}
		off += n;
	}
	return 0;
}

/* The range is set aside: size, st_blocks covering it, contents. */
static void expect_prealloc(cairn_fs *fs, int fd, const char *exp, size_t written)
{
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	assert_int_equal(st.st_size, PRE_LEN);
	if ((uint64_t)st.st_blocks * 512 < (PRE_LEN + 4095) / 4096 * 4096)
		fail_msg("st_blocks %lld does not cover the %d preallocated bytes",
		         (long long)st.st_blocks, PRE_LEN);
	tv_expect_at(fs, fd, 0, exp, written);
	tv_expect_at(fs, fd, (off_t)written, NULL, PRE_LEN - written);
}

/* On a nearly full volume a range is preallocated; another file fills the
 * rest until ENOSPC; every byte of the range can still be written.  Reads
 * give zeros before and the data after (whatever the blocks held), and
 * st_blocks covers the range from the call on.  A digest in between finds
 * no tree node to split the extent with: it writes zeros over the rest.
 * All of it holds across a remount and fsck. */
static void test_fallocate_reserves(void **state)
{
	(void)state;
	struct testvol *tv = small_volume(CAIRN_MEDIA_EMUL, 16 * TV_MiB, 2048);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	char *exp = malloc(PRE_LEN);
	assert_non_null(exp);
	tv_fill(exp, PRE_LEN, 77);
	TV_OK(fill_all_but(fs, 3 * TV_MiB));
	int fd = TV_OK(cairn_open(fs, "/pre", O_CREAT | O_RDWR, 0644));
	TV_OK(cairn_fallocate(fs, fd, 0, 0, PRE_LEN));
	assert_int_equal(tv_soil_unwritten(fs, "/pre"), (PRE_LEN + 4095) / 4096);
	expect_prealloc(fs, fd, exp, 0);
	fill_tight(fs, "/data");
	TV_ERR(cairn_fallocate(fs, fd, 1 /* KEEP_SIZE */, PRE_LEN, TV_MiB), ENOSPC);
	TV_OK(cairn_fallocate(fs, fd, 0, 0, PRE_LEN)); /* nothing more to set aside */
	const size_t part = 1 + 4094 + 100;            /* the first three writes */
	if (write_range(fs, fd, exp, 0, part))
		fail_msg("a write into the preallocated range was refused");
	TV_OK(cairn_digest(fs));
	expect_prealloc(fs, fd, exp, part);
	if (write_range(fs, fd, exp, part, PRE_LEN))
		fail_msg("a write into the preallocated range was refused");
	expect_prealloc(fs, fd, exp, PRE_LEN);
	TV_OK(cairn_digest(fs));
	expect_prealloc(fs, fd, exp, PRE_LEN);
	TV_OK(cairn_close(fs, fd));
	remount_same(tv);
	fd = TV_OK(cairn_open(tv->fs, "/pre", O_RDONLY));
	expect_prealloc(tv->fs, fd, exp, PRE_LEN);
	TV_OK(cairn_close(tv->fs, fd));
	free(exp);
	tv_destroy(tv);
}

/* The child of the crash test: preallocates with its record left in the
 * log, writes the first half of the range, and dies without unmounting.
 * Exits non-zero when something fails before the kill. */
static void crash_child(struct testvol *tv, const char *exp)
{
	struct cairn_mount_opts mo = {.no_digest_thread = 1, .digest_threshold = 90};
	cairn_fs *fs = cairn_mount(tv->dir, &mo);
	if (!fs || fill_all_but(fs, 3 * TV_MiB) || cairn_digest(fs))
		_exit(2);
	int fd = cairn_open(fs, "/pre", O_CREAT | O_RDWR, 0644);
	if (fd < 0 || cairn_fallocate(fs, fd, 0, 0, PRE_LEN) ||
	    write_range(fs, fd, exp, 0, PRE_LEN / 2))
		_exit(3);
	raise(SIGKILL); /* every call returned: all of it is durable (sync mode) */
	_exit(4);
}

/* The same across a crash: the next mount replays the preallocation from
 * the log, and the range keeps its blocks against a volume filled after. */
static void test_fallocate_reserves_crash(void **state)
{
	(void)state;
	struct testvol *tv = small_volume(CAIRN_MEDIA_EMUL, 16 * TV_MiB, 2048);
	char *exp = malloc(PRE_LEN);
	assert_non_null(exp);
	tv_fill(exp, PRE_LEN, 78);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(tv, exp);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("the child did not get as far as its kill (status %#x)", status);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	int fd = TV_OK(cairn_open(fs, "/pre", O_RDWR));
	assert_true(tv_soil_unwritten(fs, "/pre") >= PRE_LEN / 2 / 4096);
	expect_prealloc(fs, fd, exp, PRE_LEN / 2);
	fill_tight(fs, "/data");
	if (write_range(fs, fd, exp, PRE_LEN / 2, PRE_LEN))
		fail_msg("a write into the range preallocated before the crash was refused");
	expect_prealloc(fs, fd, exp, PRE_LEN);
	TV_OK(cairn_close(fs, fd));
	remount_same(tv);
	fd = TV_OK(cairn_open(tv->fs, "/pre", O_RDONLY));
	expect_prealloc(tv->fs, fd, exp, PRE_LEN);
	TV_OK(cairn_close(tv->fs, fd));
	free(exp);
	tv_destroy(tv);
}

/* A range much larger than the fast tier, on a tiered volume: its blocks
 * go to the capacity tier, and only the extent-map nodes it really needs
 * (a few: free space comes in long runs) are taken from the fast tier, not
 * a leaf per 64 blocks of the whole range. */
static void test_fallocate_tiered(void **state)
{
	(void)state;
	struct testvol *tv = tiered_volume("full-prealloc", 512 * TV_MiB, 0);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	const off_t len = 400 * TV_MiB;
	int fd = TV_OK(cairn_open(fs, "/big", O_CREAT | O_RDWR, 0644));
	TV_OK(cairn_fallocate(fs, fd, 0, 0, len));
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	assert_true(st.st_blocks * 512 >= len);
	TV_EQ(cairn_pwrite(fs, fd, "middle", 6, len / 2), 6);
	TV_EQ(cairn_pwrite(fs, fd, "end", 3, len - 3), 3);
	TV_OK(cairn_digest(fs));
	char got[6];
	TV_EQ(cairn_pread(fs, fd, got, 6, len / 2), 6);
	assert_memory_equal(got, "middle", 6);
	tv_expect_at(fs, fd, len / 2 - 4096, NULL, 4096);
	TV_OK(cairn_close(fs, fd));
	remount_same(tv);
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
	tv_expect_fsck_clean(tv->dir);
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
	    cmocka_unit_test(test_fallocate_holes),
	    cmocka_unit_test(test_fallocate_reserves),
	    cmocka_unit_test(test_fallocate_reserves_crash),
	    cmocka_unit_test(test_fallocate_tiered),
	    cmocka_unit_test(test_unappliable_last_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
