/*
 * test_multi_attach.c - several processes on one volume through its daemon
 * (cairn_attach), end to end.
 *
 * The tests run in order and share one scratch volume:
 *   1. no daemon: cairn_attach fails with ENOENT;
 *   2. `cairn serve`, then every call of cairn.h through an attached
 *      handle, with the results and errors POSIX gives;
 *   3. two handles in one process: each change is seen by the other at
 *      once, and descriptors belong to the handle that opened them;
 *      a second daemon for the volume fails and leaves the first its
 *      socket; threads that share one handle; a handle inherited across
 *      fork never answers one process with the other's result; `cairn serve --batch`, whose data
 *      survives kill -9 of the daemon; SIGTERM and SIGINT end the daemon (exit 0) while processes
 *      are attached, whose calls then fail with EIO;
 *   4. four processes write their own files, create names in one shared
 *      directory, race for the same names and append to one file at once;
 *      a fresh attach sees every byte and name, and so does a local mount
 *      after the daemon stopped (exit 0), and fsck finds the volume clean;
 *   5. `cairn mount`: a client attached through the mount point and the
 *      kernel's view of the mount see each other's changes at once,
 *      including names the kernel had looked up before and pages it had
 *      cached; after `cairn umount` the client's calls fail with EIO;
 *   6. kill -9 of the mount's daemon while a client and two processes
 *      through the mount create names in one directory, six rounds:
 *      every process returns, the daemon's process ends whole, and the
 *      volume mounts again and is clean (the daemon's thread that tells
 *      the kernel of a client's name can be held by the kernel, and the
 *      keeper must end the connection: fuse_keeper.c).
 * Skipped unless root with /dev/fuse.  The scratch directory is in /dev/shm
 * and removed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "multitest.h"

#define NPROC 4    /* concurrent client processes */
#define NFILE 40   /* files each writes, names each creates */
#define NRACE 40   /* names all of them try to create with O_EXCL */
#define NMANY 200  /* entries of the directory read back in batches */
#define RECLEN 100 /* bytes of each O_APPEND record */

static struct {
	char root[PATH_MAX], vol[PATH_MAX], mnt[PATH_MAX];
	pid_t daemon; /* `cairn serve` or `cairn mount --foreground`, or 0 */
} g;

static int group_setup(void **state)
{
	umask(0); /* modes given to create calls are exact */
	watchdog_cleanup(&g.daemon, g.mnt);
	if (scratch_volume("mattach", g.root, g.vol))
		return -1;
	snprintf(g.mnt, sizeof(g.mnt), "%s/mnt", g.root);
	return mkdir(g.mnt, 0755);
}

static int group_teardown(void **state)
{
	alarm(0);
	if (g.root[0] && is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH);
	kill_reap(&g.daemon);
	scratch_remove(g.root);
	return 0;
}

/* A handle on the `cairn serve` daemon, started if need be: each test
 * takes its own, so that one that failed leaves the next a working one. */
static cairn_fs *served(void)
{
	if (!g.daemon)
		g.daemon = spawn_cairn(0, "serve", g.vol, NULL);
	assert_true(g.daemon > 0);
	return attach_wait(g.vol, &g.daemon);
}

/* ---- 1. no daemon ------------------------------------------------------- */

static void test_no_daemon(void **state)
{
	watchdog(10, "attach without a daemon");
	CHECK_PTR_ERRNO(cairn_attach(g.vol), ENOENT);
	CHECK_PTR_ERRNO(cairn_attach(g.mnt), ENOENT);
	CHECK_PTR_ERRNO(cairn_attach("/nonexistent/cairn/volume"), ENOENT);
	alarm(0);
}

/* ---- 2. every call ------------------------------------------------------- */

static void write_text(cairn_fs *fs, const char *path, const char *text)
{
	int fd = cairn_open(fs, path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	CHECK(fd);
	assert_int_equal(cairn_write(fs, fd, text, strlen(text)), (ssize_t)strlen(text));
	CHECK(cairn_close(fs, fd));
}

static void assert_text(cairn_fs *fs, const char *path, const char *text)
{
	char buf[4096];
	int fd = cairn_open(fs, path, O_RDONLY);
	CHECK(fd);
	ssize_t n = cairn_read(fs, fd, buf, sizeof(buf) - 1);
	CHECK(cairn_close(fs, fd));
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, text);
}

static void file_calls(cairn_fs *fs)
{
	CHECK(cairn_mkdir(fs, "/d", 0755));
	CHECK_ERRNO(cairn_mkdir(fs, "/d", 0755), EEXIST);
	int fd = cairn_open(fs, "/d/f", O_CREAT | O_RDWR, 0644);
	CHECK(fd);
	assert_int_equal(cairn_write(fs, fd, "hello world", 11), 11);
	assert_int_equal(cairn_pwrite(fs, fd, "HELLO", 5, 0), 5);
	assert_int_equal(cairn_lseek(fs, fd, 0, SEEK_CUR), 11); /* pwrite kept it */
	assert_int_equal(cairn_lseek(fs, fd, 0, SEEK_SET), 0);
	char buf[64] = {0};
	assert_int_equal(cairn_read(fs, fd, buf, sizeof(buf)), 11);
	assert_memory_equal(buf, "HELLO world", 11);
	assert_int_equal(cairn_read(fs, fd, buf, sizeof(buf)), 0); /* end of file */
	assert_int_equal(cairn_pread(fs, fd, buf, 5, 6), 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(cairn_lseek(fs, fd, -3, SEEK_END), 8);
	assert_int_equal(cairn_read(fs, fd, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "rld", 3);
	CHECK_ERRNO(cairn_lseek(fs, fd, -100, SEEK_SET), EINVAL);
	assert_int_equal(cairn_lseek(fs, fd, 0, SEEK_CUR), 11); /* a failed lseek moved nothing */

	struct stat st;
	CHECK(cairn_fstat(fs, fd, &st));
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_size, 11);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
	struct stat st2;
	CHECK(cairn_stat(fs, "/d/f", &st2));
	assert_int_equal(st2.st_ino, st.st_ino);
	assert_int_equal(st2.st_size, 11);
	CHECK(cairn_lstat(fs, "/d/f", &st2));
	assert_int_equal(st2.st_ino, st.st_ino);

	CHECK(cairn_ftruncate(fs, fd, 5));
	CHECK(cairn_fstat(fs, fd, &st));
	assert_int_equal(st.st_size, 5);
	assert_int_equal(cairn_pread(fs, fd, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "HELLO", 5);
	CHECK(cairn_truncate(fs, "/d/f", 8192)); /* grows with zeros */
	assert_int_equal(cairn_pread(fs, fd, buf, 8, 5), 8);
	assert_memory_equal(buf, "\0\0\0\0\0\0\0\0", 8);

	/* fallocate: mode 0 extends, KEEP_SIZE keeps the size, punch frees */
	CHECK(cairn_fallocate(fs, fd, 0, 0, 16384));
	CHECK(cairn_fstat(fs, fd, &st));
	assert_int_equal(st.st_size, 16384);
	CHECK(cairn_fallocate(fs, fd, FALLOC_FL_KEEP_SIZE, 0, 65536));
	CHECK(cairn_fstat(fs, fd, &st));
	assert_int_equal(st.st_size, 16384);
	assert_true(st.st_blocks * 512 >= 65536);
	static char blk[8192];
	memset(blk, 'f', sizeof(blk));
	assert_int_equal(cairn_pwrite(fs, fd, blk, sizeof(blk), 0), (ssize_t)sizeof(blk));
	CHECK(cairn_fallocate(fs, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
	assert_int_equal(cairn_pread(fs, fd, blk, sizeof(blk), 0), (ssize_t)sizeof(blk));
	assert_int_equal(blk[0], 0);
	assert_int_equal(blk[4095], 0);
	assert_int_equal(blk[4096], 'f');
	CHECK_ERRNO(cairn_fallocate(fs, fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), EOPNOTSUPP);
	CHECK(cairn_fsync(fs, fd));
	CHECK(cairn_sync(fs));

	/* Closed, the number is dead to every call. */
	CHECK(cairn_close(fs, fd));
	CHECK_ERRNO(cairn_close(fs, fd), EBADF);
	CHECK_ERRNO(cairn_read(fs, fd, buf, 1), EBADF);
	CHECK_ERRNO(cairn_pwrite(fs, fd, "x", 1, 0), EBADF);
	CHECK_ERRNO(cairn_fstat(fs, fd, &st), EBADF);
	CHECK_ERRNO(cairn_fsync(fs, fd), EBADF);
	/* Numbers never opened. */
	CHECK_ERRNO(cairn_close(fs, 4711), EBADF);
	CHECK_ERRNO(cairn_read(fs, 123456, buf, 1), EBADF);
	CHECK_ERRNO(cairn_fstat(fs, -1, &st), EBADF);
	CHECK_ERRNO(cairn_lseek(fs, INT32_MAX, 0, SEEK_SET), EBADF);

	/* A read-only descriptor cannot write, a write-only one cannot read. */
	fd = cairn_open(fs, "/d/f", O_RDONLY);
	CHECK(fd);
	CHECK_ERRNO(cairn_write(fs, fd, "x", 1), EBADF);
	CHECK(cairn_close(fs, fd));
	fd = cairn_open(fs, "/d/f", O_WRONLY);
	CHECK(fd);
	CHECK_ERRNO(cairn_read(fs, fd, buf, 1), EBADF);
	CHECK(cairn_close(fs, fd));

	/* O_APPEND writes at the end whatever the offset says. */
	fd = cairn_open(fs, "/d/app", O_CREAT | O_WRONLY | O_APPEND, 0600);
	CHECK(fd);
	assert_int_equal(cairn_write(fs, fd, "abc", 3), 3);
	assert_int_equal(cairn_lseek(fs, fd, 0, SEEK_SET), 0);
	assert_int_equal(cairn_write(fs, fd, "def", 3), 3);
	CHECK(cairn_close(fs, fd));
	assert_text(fs, "/d/app", "abcdef");

	/* O_TRUNC, O_EXCL */
	CHECK_ERRNO(cairn_open(fs, "/d/app", O_CREAT | O_EXCL | O_WRONLY, 0600), EEXIST);
	fd = cairn_open(fs, "/d/app", O_WRONLY | O_TRUNC);
	CHECK(fd);
	CHECK(cairn_close(fs, fd));
	CHECK(cairn_stat(fs, "/d/app", &st));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* Larger than any one request is likely to carry: the client splits. */
static void big_io(cairn_fs *fs)
{
	size_t len = 3 * 1024 * 1024 + 1234;
	char *w = malloc(len), *r = malloc(len);
	assert_non_null(w);
	assert_non_null(r);
	for (size_t i = 0; i < len; i++)
		w[i] = (char)(i * 2654435761u >> 13);
	int fd = cairn_open(fs, "/d/big", O_CREAT | O_RDWR, 0644);
	CHECK(fd);
	assert_int_equal(cairn_write(fs, fd, w, len), (ssize_t)len);
	assert_int_equal(cairn_lseek(fs, fd, 0, SEEK_CUR), (off_t)len);
	assert_int_equal(cairn_pread(fs, fd, r, len, 0), (ssize_t)len);
	assert_memory_equal(r, w, len);
	assert_int_equal(cairn_lseek(fs, fd, 0, SEEK_SET), 0);
	memset(r, 0, len);
	assert_int_equal(cairn_read(fs, fd, r, len + 100), (ssize_t)len);
	assert_memory_equal(r, w, len);
	CHECK(cairn_close(fs, fd));
	free(w);
	free(r);
}

/* Names of dir, without "." and "..", into names[] (NMANY + 8 at most). */
static int list_dir(cairn_fs *fs, const char *dir, char names[][64], unsigned char *types)
{
	cairn_dir *d = cairn_opendir(fs, dir);
	if (!d)
		fail_msg("cairn_opendir(%s): %s", dir, strerror(errno));
	int n = 0;
	struct cairn_dirent *e;
	while ((e = cairn_readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		assert_true(n < NMANY + 8);
		assert_true(strlen(e->d_name) < 64);
		strcpy(names[n], e->d_name);
		if (types)
			types[n] = e->d_type;
		n++;
	}
	CHECK(cairn_closedir(d));
	return n;
}

static void name_calls(cairn_fs *fs)
{
	write_text(fs, "/d/a", "aaa");
	write_text(fs, "/d/b", "bbb");
	CHECK(cairn_rename(fs, "/d/a", "/d/c", 0));
	CHECK_ERRNO(cairn_stat(fs, "/d/a", &(struct stat){0}), ENOENT);
	assert_text(fs, "/d/c", "aaa");
	CHECK_ERRNO(cairn_rename(fs, "/d/b", "/d/c", CAIRN_RENAME_NOREPLACE), EEXIST);
	CHECK(cairn_rename(fs, "/d/b", "/d/c", 0)); /* replaces */
	assert_text(fs, "/d/c", "bbb");
	CHECK_ERRNO(cairn_stat(fs, "/d/b", &(struct stat){0}), ENOENT);

	CHECK(cairn_link(fs, "/d/c", "/d/c2"));
	struct stat st;
	CHECK(cairn_stat(fs, "/d/c", &st));
	assert_int_equal(st.st_nlink, 2);
	CHECK_ERRNO(cairn_link(fs, "/d/c", "/d/c2"), EEXIST);

	CHECK(cairn_symlink(fs, "c", "/d/s"));
	char buf[64];
	assert_int_equal(cairn_readlink(fs, "/d/s", buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'c');
	CHECK(cairn_lstat(fs, "/d/s", &st));
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_size, 1);
	CHECK(cairn_stat(fs, "/d/s", &st)); /* follows */
	assert_true(S_ISREG(st.st_mode));
	assert_text(fs, "/d/s", "bbb");
	CHECK_ERRNO(cairn_readlink(fs, "/d/c", buf, sizeof(buf)), EINVAL);

	CHECK(cairn_unlink(fs, "/d/c2"));
	CHECK_ERRNO(cairn_unlink(fs, "/d/c2"), ENOENT);
	CHECK(cairn_stat(fs, "/d/c", &st));
	assert_int_equal(st.st_nlink, 1);

	CHECK(cairn_mkdir(fs, "/d/sub", 0700));
	write_text(fs, "/d/sub/x", "x");
	CHECK_ERRNO(cairn_rmdir(fs, "/d/sub"), ENOTEMPTY);
	CHECK_ERRNO(cairn_unlink(fs, "/d/sub"), EISDIR);
	CHECK_ERRNO(cairn_rmdir(fs, "/d/sub/x"), ENOTDIR);
	CHECK(cairn_unlink(fs, "/d/sub/x"));
	CHECK(cairn_rmdir(fs, "/d/sub"));
	CHECK_ERRNO(cairn_rmdir(fs, "/d/sub"), ENOENT);

	/* The errors of paths. */
	CHECK_ERRNO(cairn_open(fs, "/nope", O_RDONLY), ENOENT);
	CHECK_ERRNO(cairn_open(fs, "/nope/x", O_CREAT | O_WRONLY, 0644), ENOENT);
	CHECK_ERRNO(cairn_open(fs, "/d/c/x", O_RDONLY), ENOTDIR);
	CHECK_ERRNO(cairn_mkdir(fs, "/d/c/x", 0755), ENOTDIR);
	CHECK_ERRNO(cairn_open(fs, "/d", O_WRONLY), EISDIR);
	CHECK_ERRNO(cairn_open(fs, "/d/c", O_RDONLY | O_DIRECTORY), ENOTDIR);
	CHECK_PTR_ERRNO(cairn_opendir(fs, "/d/c"), ENOTDIR);
	CHECK_PTR_ERRNO(cairn_opendir(fs, "/nope"), ENOENT);
	CHECK_ERRNO(cairn_stat(fs, "/nope", &st), ENOENT);
	CHECK_ERRNO(cairn_rename(fs, "/nope", "/d/n", 0), ENOENT);

	/* A directory read back in several batches: each name once. */
	CHECK(cairn_mkdir(fs, "/many", 0755));
	char path[64];
	for (int i = 0; i < NMANY; i++) {
		snprintf(path, sizeof(path), "/many/entry-with-a-longish-name-%04d", i);
		int fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		CHECK(fd);
		CHECK(cairn_close(fs, fd));
	}
	CHECK(cairn_mkdir(fs, "/many/subdir", 0755));
	static char names[NMANY + 8][64];
	static unsigned char types[NMANY + 8];
	int n = list_dir(fs, "/many", names, types);
	assert_int_equal(n, NMANY + 1);
	static unsigned char seen[NMANY];
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < n; i++) {
		if (!strcmp(names[i], "subdir")) {
			assert_int_equal(types[i], DT_DIR);
			continue;
		}
		int k;
		assert_int_equal(sscanf(names[i], "entry-with-a-longish-name-%d", &k), 1);
		assert_true(k >= 0 && k < NMANY);
		assert_int_equal(seen[k]++, 0);
		assert_int_equal(types[i], DT_REG);
	}
	/* Several streams at once. */
	cairn_dir *d1 = cairn_opendir(fs, "/many"), *d2 = cairn_opendir(fs, "/d");
	assert_non_null(d1);
	assert_non_null(d2);
	assert_non_null(cairn_readdir(d1));
	assert_non_null(cairn_readdir(d2));
	CHECK(cairn_closedir(d2));
	assert_non_null(cairn_readdir(d1));
	CHECK(cairn_closedir(d1));
}

static void attribute_calls(cairn_fs *fs)
{
	struct stat st;
	CHECK(cairn_chmod(fs, "/d/c", 0640));
	CHECK(cairn_chown(fs, "/d/c", 1234, 5678));
	CHECK(cairn_stat(fs, "/d/c", &st));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	CHECK(cairn_chown(fs, "/d/c", (uid_t)-1, 42)); /* -1: unchanged */
	CHECK(cairn_stat(fs, "/d/c", &st));
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 42);

	struct timespec ts[2] = {{1000000000, 123}, {1500000000, 456}};
	CHECK(cairn_utimens(fs, "/d/c", ts));
	CHECK(cairn_stat(fs, "/d/c", &st));
	assert_int_equal(st.st_atim.tv_sec, 1000000000);
	assert_int_equal(st.st_atim.tv_nsec, 123);
	assert_int_equal(st.st_mtim.tv_sec, 1500000000);
	assert_int_equal(st.st_mtim.tv_nsec, 456);
	time_t before = time(NULL);
	CHECK(cairn_utimens(fs, "/d/c", NULL)); /* now */
	CHECK(cairn_stat(fs, "/d/c", &st));
	assert_true(st.st_mtim.tv_sec >= before - 1 && st.st_mtim.tv_sec <= time(NULL) + 1);
	CHECK_ERRNO(cairn_chmod(fs, "/nope", 0644), ENOENT);

	/* Extended attributes */
	const char *f = "/d/c";
	CHECK(cairn_setxattr(fs, f, "user.color", "blue", 4, 1));
	CHECK_ERRNO(cairn_setxattr(fs, f, "user.color", "red", 3, 1), EEXIST);
	CHECK_ERRNO(cairn_setxattr(fs, f, "user.none", "x", 1, 2), ENODATA);
	CHECK(cairn_setxattr(fs, f, "user.empty", "", 0, 0));
	CHECK(cairn_setxattr(fs, f, "trusted.t", "root only", 9, 0));
	char buf[1100];
	assert_int_equal(cairn_getxattr(fs, f, "user.color", NULL, 0), 4);
	assert_int_equal(cairn_getxattr(fs, f, "user.color", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "blue", 4);
	CHECK_ERRNO(cairn_getxattr(fs, f, "user.color", buf, 2), ERANGE);
	assert_int_equal(cairn_getxattr(fs, f, "user.empty", buf, sizeof(buf)), 0);
	CHECK_ERRNO(cairn_getxattr(fs, f, "user.none", buf, sizeof(buf)), ENODATA);
	assert_int_equal(cairn_getxattr(fs, f, "trusted.t", buf, sizeof(buf)), 9);
	/* A value of the largest size crosses intact. */
	char big[1024];
	for (int i = 0; i < 1024; i++)
		big[i] = (char)(i * 7);
	CHECK(cairn_setxattr(fs, f, "user.big", big, sizeof(big), 0));
	assert_int_equal(cairn_getxattr(fs, f, "user.big", buf, sizeof(buf)), 1024);
	assert_memory_equal(buf, big, 1024);
	ssize_t want = (ssize_t)(sizeof("user.color") + sizeof("user.empty") + sizeof("trusted.t") +
	                         sizeof("user.big"));
	assert_int_equal(cairn_listxattr(fs, f, NULL, 0), want);
	assert_int_equal(cairn_listxattr(fs, f, buf, sizeof(buf)), want);
	int found = 0;
	for (char *p = buf; p < buf + want; p += strlen(p) + 1)
		found += !strcmp(p, "user.color") + !strcmp(p, "user.empty") +
		         !strcmp(p, "trusted.t") + !strcmp(p, "user.big");
	assert_int_equal(found, 4);
	CHECK_ERRNO(cairn_listxattr(fs, f, buf, 3), ERANGE);
	CHECK(cairn_removexattr(fs, f, "user.empty"));
	CHECK_ERRNO(cairn_removexattr(fs, f, "user.empty"), ENODATA);
	CHECK_ERRNO(cairn_getxattr(fs, "/nope", "user.color", buf, sizeof(buf)), ENOENT);
}

static void volume_calls(cairn_fs *fs)
{
	struct statvfs sv;
	CHECK(cairn_statvfs(fs, "/", &sv));
	assert_true(sv.f_blocks > 0 && sv.f_bfree <= sv.f_blocks && sv.f_bavail <= sv.f_bfree);
	assert_true(sv.f_files > 0 && sv.f_ffree < sv.f_files);
	assert_true(sv.f_namemax >= 255);
	struct cairn_info info;
	memset(&info, 0xa5, sizeof(info));
	CHECK(cairn_info(fs, &info));
	assert_int_equal(info.block_size, 4096);
	assert_int_equal(info.batch_ms, 0); /* `cairn serve` without --batch */
	assert_string_equal(info.media, "emul");
	assert_true(info.tier_count >= 1);
	assert_true(info.inodes > info.free_inodes);
	assert_true(info.directories >= 4); /* /, /d, /many, /many/subdir */
	CHECK(cairn_digest(fs));
	CHECK(cairn_info(fs, &info));
	assert_int_equal(info.log_used, 0);
	CHECK(cairn_migrate(fs));
	/* The daemon scrubs (root's request, as this test runs): every file
	 * with data was verified, and the handle's struct got the progress. */
	struct cairn_scrub sc;
	memset(&sc, 0, sizeof(sc));
	CHECK(cairn_scrub(fs, &sc));
	assert_true(sc.files_done > 0);
	assert_int_equal(sc.files_done, sc.files_total);
	assert_int_equal(sc.bytes_done, sc.bytes_total);
	assert_int_equal(sc.damaged_blocks, 0);
}

/* A client holds at most 1024 descriptors (EMFILE beyond, as the usual
 * ulimit): one user cannot fill the volume's open-file table.  Closing
 * one makes room again; a new handle has its own 1024. */
static void test_descriptor_limit(void **state)
{
	watchdog(60, "test_descriptor_limit");
	cairn_fs *fs = served();
	/* Made first: a create may be the client's alone (a file made in its
	 * own log has a descriptor of the client's, not the daemon's). */
	int fd = cairn_open(fs, "/limit", O_CREAT | O_WRONLY, 0644);
	CHECK(fd);
	CHECK(cairn_close(fs, fd));
	CHECK(fd = cairn_open(fs, "/limit", O_WRONLY));
	int n = 1;
	while (n < 1024) {
		CHECK(cairn_open(fs, "/limit", O_RDONLY));
		n++;
	}
	CHECK_ERRNO(cairn_open(fs, "/limit", O_RDONLY), EMFILE);
	CHECK(cairn_close(fs, fd));
	CHECK(fd = cairn_open(fs, "/limit", O_RDONLY));
	CHECK_ERRNO(cairn_open(fs, "/limit", O_RDONLY), EMFILE);
	cairn_fs *other = attach_wait(g.vol, &g.daemon);
	CHECK(fd = cairn_open(other, "/limit", O_RDONLY));
	CHECK(cairn_close(other, fd));
	CHECK(cairn_unmount(other));
	CHECK(cairn_unmount(fs)); /* closes the 1024 */
	alarm(0);
}

static void test_calls(void **state)
{
	watchdog(60, "test_calls");
	cairn_fs *fs = served();
	file_calls(fs);
	big_io(fs);
	name_calls(fs);
	attribute_calls(fs);
	volume_calls(fs);
	/* A descriptor left open here belongs to the handle: detaching
	 * closes it, and a new handle starts with none. */
	int fd = cairn_open(fs, "/d/c", O_RDONLY);
	CHECK(fd);
	CHECK(cairn_unmount(fs));
	fs = attach_wait(g.vol, &g.daemon);
	CHECK_ERRNO(cairn_fstat(fs, fd, &(struct stat){0}), EBADF);
	/* What the first handle did is all there. */
	assert_text(fs, "/d/c", "bbb");
	assert_text(fs, "/d/app", "");
	CHECK(cairn_unmount(fs));
	alarm(0);
}

/* ---- 3. two handles in one process --------------------------------------- */

static void test_two_handles(void **state)
{
	watchdog(30, "test_two_handles");
	cairn_fs *a = served(), *b = attach_wait(g.vol, &g.daemon);
	int fa = cairn_open(a, "/two", O_CREAT | O_RDWR, 0644);
	CHECK(fa);
	assert_int_equal(cairn_pwrite(a, fa, "from a", 6, 0), 6);
	/* b sees a's write at once, and a sees b's. */
	int fb = cairn_open(b, "/two", O_RDWR);
	CHECK(fb);
	char buf[16] = {0};
	assert_int_equal(cairn_pread(b, fb, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "from a", 6);
	assert_int_equal(cairn_pwrite(b, fb, "FROM B", 6, 0), 6);
	assert_int_equal(cairn_pread(a, fa, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "FROM B", 6);
	CHECK(cairn_mkdir(b, "/two-dir", 0755));
	struct stat st;
	CHECK(cairn_stat(a, "/two-dir", &st));
	assert_true(S_ISDIR(st.st_mode));

	/* Descriptors belong to their handle: a number b never opened is
	 * EBADF to b even while a has it open, and closing it in b leaves
	 * a's file open. */
	int other = fa > fb ? fa : fb;
	other += 17; /* neither opened it */
	int fa2 = cairn_open(a, "/two", O_RDONLY);
	CHECK(fa2);
	if (fa2 != fb) {
		CHECK_ERRNO(cairn_fstat(b, fa2, &st), EBADF);
		CHECK_ERRNO(cairn_close(b, fa2), EBADF);
	}
	CHECK_ERRNO(cairn_fstat(a, other, &st), EBADF);
	CHECK(cairn_fstat(a, fa2, &st));
	CHECK(cairn_close(b, fb));
	/* a's descriptors survive b's close and b's detach. */
	CHECK(cairn_unmount(b));
	assert_int_equal(cairn_pread(a, fa, buf, sizeof(buf), 0), 6);
	CHECK(cairn_close(a, fa2));
	CHECK(cairn_close(a, fa));
	CHECK(cairn_unmount(a));
	alarm(0);
}

/* ---- one daemon per volume ------------------------------------------------ */

/* A second `cairn serve` (or `cairn mount`) of a served volume fails at
 * once and leaves the first daemon's socket to it. */
static void test_second_daemon(void **state)
{
	watchdog(60, "test_second_daemon");
	cairn_fs *fs = served();
	pid_t second = spawn_cairn(0, "serve", g.vol, NULL);
	int st;
	if (wait_bounded(second, &st, 10000) != second) {
		kill_reap(&second);
		fail_msg("a second cairn serve of a served volume was still running after 10 s");
	}
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	second = spawn_cairn(0, "mount", g.vol, g.mnt, "--foreground", NULL);
	if (wait_bounded(second, &st, 10000) != second) {
		kill_reap(&second);
		umount2(g.mnt, MNT_DETACH);
		fail_msg("cairn mount of a served volume was still running after 10 s");
	}
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	assert_false(is_mounted_at(g.mnt));
	/* The first still serves, old handles and new. */
	struct stat sb;
	CHECK(cairn_stat(fs, "/d", &sb));
	cairn_fs *fresh = attach_wait(g.vol, &g.daemon);
	CHECK(cairn_stat(fresh, "/d", &sb));
	CHECK(cairn_unmount(fresh));
	CHECK(cairn_unmount(fs));
	alarm(0);
}

/* ---- threads that share a handle ---------------------------------------- */

#define NTHREAD 4
#define TBLOCKS 64

struct worker {
	cairn_fs *fs;
	int id;
	char err[160]; /* empty when all went well */
};

/* Writes its own file a block at a time, reading each back at once, with
 * stats and a directory read between; every thread on one handle. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char path[32], blk[4096], back[4096];
	snprintf(path, sizeof(path), "/threads/t%d", w->id);
	int fd = cairn_open(w->fs, path, O_CREAT | O_EXCL | O_RDWR, 0644);
	if (fd < 0) {
		snprintf(w->err, sizeof(w->err), "open %s: %s", path, strerror(errno));
		return NULL;
	}
	for (int i = 0; i < TBLOCKS; i++) {
		stamp(blk, sizeof(blk), (uint64_t)w->id, (uint64_t)i);
		struct stat st;
		if (cairn_pwrite(w->fs, fd, blk, sizeof(blk), (off_t)i * 4096) != 4096 ||
		    cairn_pread(w->fs, fd, back, sizeof(back), (off_t)i * 4096) != 4096 ||
		    memcmp(blk, back, sizeof(blk)) || cairn_fstat(w->fs, fd, &st) ||
		    st.st_size != (off_t)(i + 1) * 4096) {
			snprintf(w->err, sizeof(w->err), "%s block %d: %s", path, i,
			         strerror(errno));
			return NULL;
		}
		if (i % 16 == 0) {
			cairn_dir *d = cairn_opendir(w->fs, "/threads");
			if (!d || !cairn_readdir(d) || cairn_closedir(d)) {
				snprintf(w->err, sizeof(w->err), "readdir: %s", strerror(errno));
				return NULL;
			}
		}
	}
	if (cairn_close(w->fs, fd))
		snprintf(w->err, sizeof(w->err), "close: %s", strerror(errno));
	return NULL;
}

static void test_threads_share_handle(void **state)
{
	watchdog(60, "test_threads_share_handle");
	cairn_fs *fs = served();
	CHECK(cairn_mkdir(fs, "/threads", 0755));
	struct worker w[NTHREAD];
	pthread_t t[NTHREAD];
	for (int i = 0; i < NTHREAD; i++) {
		w[i] = (struct worker){.fs = fs, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREAD; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < NTHREAD; i++)
		if (w[i].err[0])
			fail_msg("thread %d: %s", i, w[i].err);
	/* Read back through another handle. */
	cairn_fs *other = attach_wait(g.vol, &g.daemon);
	char path[32], blk[4096];
	for (int i = 0; i < NTHREAD; i++) {
		snprintf(path, sizeof(path), "/threads/t%d", i);
		int fd = cairn_open(other, path, O_RDONLY);
		CHECK(fd);
		for (int b = 0; b < TBLOCKS; b++) {
			assert_int_equal(cairn_pread(other, fd, blk, sizeof(blk), (off_t)b * 4096),
			                 4096);
			if (!stamped(blk, sizeof(blk), (uint64_t)i, (uint64_t)b))
				fail_msg("%s block %d is not what was written", path, b);
		}
		CHECK(cairn_close(other, fd));
	}
	CHECK(cairn_unmount(other));
	CHECK(cairn_unmount(fs));
	alarm(0);
}

/* ---- a handle inherited across fork ---------------------------------------- */

#define FORK_ROUNDS 3000

/* Reads its own file through fs FORK_ROUNDS times; how many reads
 * returned another file's bytes (failures may be fine: the handle was
 * opened by another process; a wrong answer never is). */
static long wrong_reads(cairn_fs *fs, int fd, char want)
{
	long wrong = 0;
	char buf[4096];
	for (int i = 0; i < FORK_ROUNDS; i++) {
		ssize_t n = cairn_pread(fs, fd, buf, sizeof(buf), 0);
		if (n >= 0 && (n != 4096 || buf[0] != want || buf[4095] != want))
			wrong++;
	}
	return wrong;
}

/* A process that forks after attaching: parent and child calling through
 * the one handle at once must each get their own call's answer, or an
 * error; never the other's. */
static void test_fork_shared_handle(void **state)
{
	watchdog(60, "test_fork_shared_handle");
	cairn_fs *fs = served();
	char blk[4096];
	int fds[2];
	for (int k = 0; k < 2; k++) {
		fds[k] = cairn_open(fs, k ? "/fork-child" : "/fork-parent", O_CREAT | O_RDWR, 0644);
		CHECK(fds[k]);
		memset(blk, k ? 'C' : 'P', sizeof(blk));
		assert_int_equal(cairn_pwrite(fs, fds[k], blk, sizeof(blk), 0), 4096);
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		watchdog(30, "the child's calls through its parent's handle");
		long wrong = wrong_reads(fs, fds[1], 'C');
		if (wrong)
			C_FAIL("%ld of %d reads through the inherited handle returned the "
			       "parent's file",
			       wrong, FORK_ROUNDS);
		_exit(0);
	}
	long wrong = wrong_reads(fs, fds[0], 'P');
	child_ok(pid, 30000, "the child using the inherited handle");
	if (wrong)
		fail_msg("%ld of %d reads in the parent returned the child's file", wrong,
		         FORK_ROUNDS);
	cairn_unmount(fs);
	alarm(0);
}

/* ---- batch mode ----------------------------------------------------------- */

/* `cairn serve --batch`: the handle reports the daemon's mode, and what
 * cairn_fsync and cairn_sync returned from is on the volume when the
 * daemon is killed right after.  (A process crash cannot tell whether
 * they committed: the records are in the shared memory of the emul
 * medium either way, and recovery replays every whole record.  What
 * batch mode leaves to fsync shows only after a power loss, which the
 * crash tests of the engine simulate.) */
static void test_batch_mode(void **state)
{
	watchdog(60, "test_batch_mode");
	if (g.daemon)
		daemon_stop(&g.daemon);
	g.daemon = spawn_cairn(0, "serve", g.vol, "--batch", "20", NULL);
	assert_true(g.daemon > 0);
	cairn_fs *fs = attach_wait(g.vol, &g.daemon);
	struct cairn_info info;
	CHECK(cairn_info(fs, &info));
	assert_int_equal(info.batch_ms, 20);
	char blk[4096];
	int fd = cairn_open(fs, "/batch-fsync", O_CREAT | O_WRONLY, 0644);
	CHECK(fd);
	for (int i = 0; i < 8; i++) {
		stamp(blk, sizeof(blk), 77, (uint64_t)i);
		assert_int_equal(cairn_write(fs, fd, blk, sizeof(blk)), 4096);
	}
	CHECK(cairn_fsync(fs, fd));
	CHECK(cairn_close(fs, fd));
	CHECK(cairn_mkdir(fs, "/batch-dir", 0755));
	fd = cairn_open(fs, "/batch-dir/synced", O_CREAT | O_WRONLY, 0644);
	CHECK(fd);
	assert_int_equal(cairn_write(fs, fd, "synced", 6), 6);
	CHECK(cairn_close(fs, fd));
	CHECK(cairn_sync(fs));
	/* Killed at once: no later commit can have saved them. */
	assert_int_equal(kill(g.daemon, SIGKILL), 0);
	assert_int_equal(waitpid(g.daemon, NULL, 0), g.daemon);
	g.daemon = 0;
	CHECK_ERRNO(cairn_stat(fs, "/", &(struct stat){0}), EIO);
	cairn_unmount(fs);
	alarm(0);
	fs = cairn_mount(g.vol, &(struct cairn_mount_opts){0});
	if (!fs)
		fail_msg("cairn_mount: %s", cairn_last_error());
	fd = cairn_open(fs, "/batch-fsync", O_RDONLY);
	CHECK(fd);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pread_full(fs, fd, blk, sizeof(blk), (off_t)i * 4096), 4096);
		if (!stamped(blk, sizeof(blk), 77, (uint64_t)i))
			fail_msg("block %d written before cairn_fsync is lost", i);
	}
	CHECK(cairn_close(fs, fd));
	assert_text(fs, "/batch-dir/synced", "synced");
	CHECK(cairn_unmount(fs));
}

/* ---- stopping with clients attached ------------------------------------- */

/* SIGTERM and SIGINT end the daemon (exit 0) while processes are
 * attached with files and directory streams open; their calls then fail
 * with EIO. */
static void test_stop_with_clients(void **state)
{
	watchdog(60, "test_stop_with_clients");
	int sigs[2] = {SIGTERM, SIGINT};
	for (int k = 0; k < 2; k++) {
		cairn_fs *fs = served();
		int fd = cairn_open(fs, "/d/c", O_RDONLY);
		CHECK(fd);
		cairn_dir *d = cairn_opendir(fs, "/");
		assert_non_null(d);
		int go[2], ready[2];
		CHECK(pipe(go));
		CHECK(pipe(ready));
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			watchdog(20, "an attached process when the daemon stopped");
			cairn_fs *mine = cairn_attach(g.vol);
			if (!mine)
				C_FAIL("cairn_attach: %s", strerror(errno));
			int f;
			C_OK(f = cairn_open(mine, "/d/c", O_RDONLY));
			C_TRUE(write(ready[1], "r", 1) == 1);
			char c;
			C_TRUE(read(go[0], &c, 1) == 1);
			C_ERR(cairn_fstat(mine, f, &(struct stat){0}), EIO);
			C_ERR(cairn_stat(mine, "/", &(struct stat){0}), EIO);
			cairn_unmount(mine);
			_exit(0);
		}
		char c;
		assert_int_equal(read(ready[0], &c, 1), 1);
		daemon_stop_with(&g.daemon, sigs[k]);
		assert_int_equal(write(go[1], "g", 1), 1);
		child_ok(pid, 20000, "the attached process");
		close(go[0]);
		close(go[1]);
		close(ready[0]);
		close(ready[1]);
		CHECK_ERRNO(cairn_fstat(fs, fd, &(struct stat){0}), EIO);
		assert_null(cairn_readdir(d));
		cairn_closedir(d);
		cairn_unmount(fs);
		CHECK_PTR_ERRNO(cairn_attach(g.vol), ENOENT);
	}
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* ---- 4. several processes at once ---------------------------------------- */

/* The bytes of child c's file k: a length that varies from 1 byte to
 * several blocks, each byte depending on c, k and its offset. */
static size_t file_len(int c, int k)
{
	return 1 + (size_t)((c * 7919 + k * 104729) % 20000);
}
static char file_byte(int c, int k, size_t i)
{
	return (char)(c * 31 + k * 17 + i * 13 + (i >> 9));
}

static void record(char *rec, int c, int k)
{
	memset(rec, 'a' + c, RECLEN);
	snprintf(rec, RECLEN, "child %d record %04d ", c, k);
	rec[RECLEN - 1] = '\n';
}

/* A child's work; returns 0, or the step that failed (and says so). */
static int child_work(int c, int go, int out)
{
	char b;
	if (read(go, &b, 1) < 0) /* wait until every child is ready */
		return 1;
	cairn_fs *fs = cairn_attach(g.vol);
	if (!fs) {
		fprintf(stderr, "child %d: attach: %s\n", c, strerror(errno));
		return 2;
	}
	char path[64], rec[RECLEN];
	static char data[20000];
	unsigned char won[NRACE] = {0};
	snprintf(path, sizeof(path), "/p/c%d", c);
	if (cairn_mkdir(fs, path, 0755))
		return 3;
	int log = cairn_open(fs, "/shared.log", O_WRONLY | O_APPEND);
	if (log < 0)
		return 4;
	for (int k = 0; k < NFILE; k++) {
		size_t len = file_len(c, k);
		for (size_t i = 0; i < len; i++)
			data[i] = file_byte(c, k, i);
		snprintf(path, sizeof(path), "/p/c%d/f%d", c, k);
		int fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0 || cairn_write(fs, fd, data, len) != (ssize_t)len ||
		    cairn_close(fs, fd)) {
			fprintf(stderr, "child %d: %s: %s\n", c, path, strerror(errno));
			return 5;
		}
		snprintf(path, sizeof(path), "/shared/c%d-n%d", c, k);
		fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, 0600);
		if (fd < 0 || cairn_close(fs, fd)) {
			fprintf(stderr, "child %d: %s: %s\n", c, path, strerror(errno));
			return 6;
		}
		record(rec, c, k);
		if (cairn_write(fs, log, rec, RECLEN) != RECLEN) {
			fprintf(stderr, "child %d: append: %s\n", c, strerror(errno));
			return 7;
		}
		if (k < NRACE) {
			/* Everyone tries this name: one wins, the rest see EEXIST.
			 * The winner writes its number into the file. */
			snprintf(path, sizeof(path), "/race/r%d", k);
			fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd >= 0) {
				char who = (char)('0' + c);
				if (cairn_write(fs, fd, &who, 1) != 1 || cairn_close(fs, fd))
					return 8;
				won[k] = 1;
			} else if (errno != EEXIST) {
				fprintf(stderr, "child %d: %s: %s\n", c, path, strerror(errno));
				return 9;
			}
		}
	}
	if (write(out, won, sizeof(won)) != sizeof(won))
		return 10;
	/* Leaves the log descriptor open: the daemon closes it at exit. */
	return 0;
}

/* Everything the children wrote, through fs (attached or mounted). */
static void verify_many(cairn_fs *fs, unsigned char won[NPROC][NRACE])
{
	char path[64];
	static char data[20001];
	for (int c = 0; c < NPROC; c++)
		for (int k = 0; k < NFILE; k++) {
			snprintf(path, sizeof(path), "/p/c%d/f%d", c, k);
			size_t len = file_len(c, k);
			int fd = cairn_open(fs, path, O_RDONLY);
			if (fd < 0)
				fail_msg("%s: %s", path, strerror(errno));
			assert_int_equal(pread_full(fs, fd, data, sizeof(data), 0), (ssize_t)len);
			for (size_t i = 0; i < len; i++)
				if (data[i] != file_byte(c, k, i))
					fail_msg("%s: byte %zu is wrong", path, i);
			CHECK(cairn_close(fs, fd));
		}
	/* The shared directory holds every name once and no other. */
	static unsigned char seen[NPROC][NFILE];
	memset(seen, 0, sizeof(seen));
	cairn_dir *d = cairn_opendir(fs, "/shared");
	assert_non_null(d);
	struct cairn_dirent *e;
	int n = 0;
	while ((e = cairn_readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int c, k;
		if (sscanf(e->d_name, "c%d-n%d", &c, &k) != 2 || c < 0 || c >= NPROC || k < 0 ||
		    k >= NFILE)
			fail_msg("unexpected name /shared/%s", e->d_name);
		assert_int_equal(seen[c][k]++, 0);
		n++;
	}
	CHECK(cairn_closedir(d));
	assert_int_equal(n, NPROC * NFILE);
	/* The appended log: every record whole, each once, each child's in
	 * its order. */
	int fd = cairn_open(fs, "/shared.log", O_RDONLY);
	CHECK(fd);
	struct stat st;
	CHECK(cairn_fstat(fs, fd, &st));
	assert_int_equal(st.st_size, NPROC * NFILE * RECLEN);
	int next[NPROC] = {0};
	char rec[RECLEN], want[RECLEN];
	for (int r = 0; r < NPROC * NFILE; r++) {
		assert_int_equal(pread_full(fs, fd, rec, RECLEN, (off_t)r * RECLEN), RECLEN);
		int c, k;
		if (sscanf(rec, "child %d record %d", &c, &k) != 2 || c < 0 || c >= NPROC)
			fail_msg("record %d of /shared.log is torn: %.40s", r, rec);
		assert_int_equal(k, next[c]++);
		record(want, c, k);
		assert_memory_equal(rec, want, RECLEN);
	}
	CHECK(cairn_close(fs, fd));
	/* Each raced name was won by exactly one child, whose number it holds. */
	for (int k = 0; k < NRACE; k++) {
		int winner = -1;
		for (int c = 0; c < NPROC; c++)
			if (won[c][k]) {
				if (winner >= 0)
					fail_msg("/race/r%d: children %d and %d both created it", k,
					         winner, c);
				winner = c;
			}
		if (winner < 0)
			fail_msg("/race/r%d: no child created it", k);
		snprintf(path, sizeof(path), "/race/r%d", k);
		char who[2] = {(char)('0' + winner), 0};
		assert_text(fs, path, who);
	}
}

static void test_many_processes(void **state)
{
	watchdog(120, "test_many_processes");
	cairn_fs *fs = served();
	CHECK(cairn_mkdir(fs, "/p", 0755));
	CHECK(cairn_mkdir(fs, "/shared", 0755));
	CHECK(cairn_mkdir(fs, "/race", 0755));
	int fd = cairn_open(fs, "/shared.log", O_CREAT | O_WRONLY, 0644);
	CHECK(fd);
	CHECK(cairn_close(fs, fd));
	CHECK(cairn_unmount(fs));

	int go[2];
	CHECK(pipe(go));
	pid_t kids[NPROC];
	int outs[NPROC];
	for (int c = 0; c < NPROC; c++) {
		int out[2];
		CHECK(pipe(out));
		kids[c] = fork();
		assert_true(kids[c] >= 0);
		if (kids[c] == 0) {
			alarm(60);
			close(go[1]);
			close(out[0]);
			_exit(child_work(c, go[0], out[1]));
		}
		close(out[1]);
		outs[c] = out[0];
	}
	close(go[0]);
	close(go[1]); /* go: every child's read returns */
	unsigned char won[NPROC][NRACE];
	for (int c = 0; c < NPROC; c++) {
		int st;
		if (wait_bounded(kids[c], &st, 60000) != kids[c]) {
			for (int k = c; k < NPROC; k++)
				kill_reap(&kids[k]);
			fail_msg("child %d did not finish within 60 s", c);
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("child %d failed: %s %d", c, WIFEXITED(st) ? "step" : "signal",
			         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		assert_int_equal(read(outs[c], won[c], NRACE), NRACE);
		close(outs[c]);
	}

	/* A fresh handle sees it all ... */
	cairn_fs *fresh = attach_wait(g.vol, &g.daemon);
	verify_many(fresh, won);
	CHECK(cairn_unmount(fresh));
	/* ... and so does the volume itself once the daemon has stopped. */
	daemon_stop(&g.daemon);
	alarm(0);
	cairn_fs *local = cairn_mount(g.vol, &(struct cairn_mount_opts){0});
	if (!local)
		fail_msg("cairn_mount: %s", cairn_last_error());
	verify_many(local, won);
	assert_text(local, "/d/c", "bbb");
	assert_text(local, "/two", "FROM B");
	CHECK(cairn_unmount(local));
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* ---- 5. beside the FUSE mount -------------------------------------------- */

static char *at(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, PATH_MAX, "%s%s", g.mnt, rel);
	return b;
}

static void read_mnt(const char *rel, char *buf, size_t size)
{
	int fd = open(at(rel), O_RDONLY);
	CHECK(fd);
	ssize_t n = read(fd, buf, size - 1);
	CHECK(n);
	buf[n] = '\0';
	close(fd);
}

#define ATTACHERS 16
#define ATTACHES 20

static void *attach_through_mount(void *arg)
{
	int *failed = arg;
	for (int i = 0; i < ATTACHES; i++) {
		cairn_fs *fs = cairn_attach(g.mnt);
		if (!fs) {
			__atomic_add_fetch(failed, 1, __ATOMIC_RELAXED);
			continue;
		}
		cairn_unmount(fs);
	}
	return NULL;
}

/* Threads of one process attaching through the mount point at once: each
 * finds the volume behind it in the mount table. */
static void attach_from_threads(void)
{
	pthread_t th[ATTACHERS];
	int failed = 0;
	for (int i = 0; i < ATTACHERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, attach_through_mount, &failed), 0);
	for (int i = 0; i < ATTACHERS; i++)
		pthread_join(th[i], NULL);
	if (failed)
		fail_msg("%d of %d attaches from %d threads failed", failed, ATTACHERS * ATTACHES,
		         ATTACHERS);
}

static void test_fuse_coherence(void **state)
{
	if (g.daemon)
		daemon_stop(&g.daemon); /* `cairn serve`, done */
	g.daemon = spawn_cairn(0, "mount", g.vol, g.mnt, "--foreground", NULL);
	assert_true(g.daemon > 0);
	wait_for_mount(&g.daemon, g.mnt);
	watchdog(60, "test_fuse_coherence");
	/* Through the mount point, and through the volume: one daemon. */
	cairn_fs *fs = attach_wait(g.mnt, &g.daemon);
	cairn_fs *byvol = attach_wait(g.vol, &g.daemon);
	CHECK(cairn_unmount(byvol));
	attach_from_threads();

	struct stat st;
	char buf[256];
	/* The kernel has looked these names up and found nothing: the client's
	 * creates must replace those negative entries at once. */
	CHECK_ERRNO(stat(at("/co"), &st), ENOENT);
	CHECK_ERRNO(stat(at("/co-file"), &st), ENOENT);
	CHECK(cairn_mkdir(fs, "/co", 0755));
	write_text(fs, "/co-file", "one");
	CHECK(stat(at("/co"), &st));
	assert_true(S_ISDIR(st.st_mode));
	CHECK(stat(at("/co-file"), &st));
	assert_int_equal(st.st_size, 3);
	read_mnt("/co-file", buf, sizeof(buf));
	assert_string_equal(buf, "one");

	/* Cached pages and attributes: the kernel read the file; the client
	 * rewrites and extends it; the kernel's next read and stat see it. */
	int kfd = open(at("/co-file"), O_RDONLY);
	CHECK(kfd);
	assert_int_equal(pread(kfd, buf, sizeof(buf), 0), 3);
	int fd = cairn_open(fs, "/co-file", O_RDWR);
	CHECK(fd);
	assert_int_equal(cairn_pwrite(fs, fd, "TWO, longer", 11, 0), 11);
	CHECK(stat(at("/co-file"), &st));
	assert_int_equal(st.st_size, 11);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(pread(kfd, buf, sizeof(buf), 0), 11); /* the open descriptor */
	assert_memory_equal(buf, "TWO, longer", 11);
	read_mnt("/co-file", buf, sizeof(buf)); /* a new open */
	assert_string_equal(buf, "TWO, longer");
	CHECK(cairn_ftruncate(fs, fd, 3));
	CHECK(fstat(kfd, &st));
	assert_int_equal(st.st_size, 3);
	assert_int_equal(pread(kfd, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "TWO", 3);
	/* An overwrite that changes neither the size nor (within the clock's
	 * grain) the times: only invalidation tells the kernel. */
	assert_int_equal(cairn_pwrite(fs, fd, "two", 3, 0), 3);
	assert_int_equal(pread(kfd, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "two", 3);
	read_mnt("/co-file", buf, sizeof(buf));
	assert_string_equal(buf, "two");
	CHECK(cairn_chmod(fs, "/co-file", 0604));
	CHECK(stat(at("/co-file"), &st));
	assert_int_equal(st.st_mode & 07777, 0604);

	/* Names the kernel knows, changed by the client. */
	CHECK(cairn_rename(fs, "/co-file", "/co/moved", 0));
	CHECK_ERRNO(stat(at("/co-file"), &st), ENOENT);
	read_mnt("/co/moved", buf, sizeof(buf));
	assert_string_equal(buf, "two");
	write_text(fs, "/co/gone", "x");
	CHECK(stat(at("/co/gone"), &st));
	CHECK(cairn_unlink(fs, "/co/gone"));
	CHECK_ERRNO(stat(at("/co/gone"), &st), ENOENT);
	DIR *d = opendir(at("/co"));
	assert_non_null(d);
	int names = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		names += !strcmp(e->d_name, "moved") - !strcmp(e->d_name, "gone");
	closedir(d);
	assert_int_equal(names, 1);
	CHECK(cairn_setxattr(fs, "/co/moved", "user.k", "v", 1, 0));
	assert_int_equal(getxattr(at("/co/moved"), "user.k", buf, sizeof(buf)), 1);

	/* The other way: what a program does on the mount, the client sees at
	 * once, through the descriptor it already has too. */
	int wfd = open(at("/co/kernel"), O_CREAT | O_WRONLY, 0644);
	CHECK(wfd);
	assert_int_equal(write(wfd, "via the kernel", 14), 14);
	CHECK(close(wfd));
	assert_text(fs, "/co/kernel", "via the kernel");
	int cfd = cairn_open(fs, "/co/kernel", O_RDONLY);
	CHECK(cfd);
	wfd = open(at("/co/kernel"), O_WRONLY | O_APPEND);
	CHECK(wfd);
	assert_int_equal(write(wfd, ", more", 6), 6);
	CHECK(close(wfd));
	assert_int_equal(cairn_pread(fs, cfd, buf, sizeof(buf), 0), 20);
	assert_memory_equal(buf, "via the kernel, more", 20);
	CHECK(cairn_close(fs, cfd));
	CHECK(mkdir(at("/co/kdir"), 0700));
	CHECK(cairn_stat(fs, "/co/kdir", &st));
	assert_int_equal(st.st_mode & 07777, 0700);
	CHECK(unlink(at("/co/moved")));
	CHECK_ERRNO(cairn_stat(fs, "/co/moved", &st), ENOENT);
	close(kfd);

	/* `cairn umount` ends the daemon whatever clients are attached;
	 * their next call fails with EIO, at once. */
	CHECK(cairn_close(fs, fd));
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	int st2;
	assert_int_equal(wait_bounded(g.daemon, &st2, 20000), g.daemon);
	g.daemon = 0;
	assert_true(WIFEXITED(st2));
	assert_int_equal(WEXITSTATUS(st2), 0);
	CHECK_ERRNO(cairn_stat(fs, "/co", &st), EIO);
	CHECK_ERRNO(cairn_open(fs, "/co/kernel", O_RDONLY), EIO);
	cairn_unmount(fs);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* ---- 6. kill -9 of the daemon while names are made ------------------------ */

/* Makes files of 4 KiB named prefix.N, through the client fs or (fs NULL)
 * through the mount, until a call fails: the daemon's death. */
static void make_names(cairn_fs *fs, const char *prefix)
{
	static char block[4096];
	char path[PATH_MAX];
	for (int k = 0;; k++) {
		snprintf(path, sizeof(path), "%s.%d", prefix, k);
		int fd = fs ? cairn_open(fs, path, O_CREAT | O_WRONLY, 0644)
		            : open(path, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			break;
		ssize_t n = fs ? cairn_write(fs, fd, block, sizeof(block))
		               : write(fd, block, sizeof(block));
		int closed = fs ? cairn_close(fs, fd) : close(fd);
		if (n != (ssize_t)sizeof(block) || closed)
			break;
	}
	_exit(0);
}

static pid_t start_maker(int client, const char *prefix)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(0);
		cairn_fs *fs = client ? cairn_attach(g.mnt) : NULL;
		if (client && !fs)
			_exit(2);
		make_names(fs, prefix);
	}
	return pid;
}

static void test_daemon_killed_mid_names(void **state)
{
	if (g.daemon)
		daemon_stop(&g.daemon);
	watchdog(150, "test_daemon_killed_mid_names");
	for (int round = 0; round < 6; round++) {
		g.daemon = spawn_cairn(0, "mount", g.vol, g.mnt, "--foreground", NULL);
		assert_true(g.daemon > 0);
		wait_for_mount(&g.daemon, g.mnt);
		if (mkdir(at("/kd"), 0755) && errno != EEXIST)
			fail_msg("mkdir: %s", strerror(errno));
		char prefix[3][64];
		snprintf(prefix[0], sizeof(prefix[0]), "/kd/c%d", round);
		snprintf(prefix[1], sizeof(prefix[1]), "%s/kd/a%d", g.mnt, round);
		snprintf(prefix[2], sizeof(prefix[2]), "%s/kd/b%d", g.mnt, round);
		pid_t makers[3];
		for (int i = 0; i < 3; i++)
			makers[i] = start_maker(i == 0, prefix[i]);
		sleep_ms(700);
		assert_int_equal(kill(g.daemon, SIGKILL), 0);
		for (int i = 0; i < 3; i++)
			child_ok(makers[i], 10000, "a process making names when the daemon died");
		int st;
		if (wait_bounded(g.daemon, &st, 10000) != g.daemon)
			fail_msg("round %d: the killed daemon's process did not end", round);
		g.daemon = 0;
		assert_int_equal(umount2(g.mnt, MNT_DETACH), 0);
	}
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

int main(int argc, char **argv)
{
	fuse_tests_require(argv[0]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_daemon),
	    cmocka_unit_test(test_calls),
	    cmocka_unit_test(test_descriptor_limit),
	    cmocka_unit_test(test_two_handles),
	    cmocka_unit_test(test_second_daemon),
	    cmocka_unit_test(test_threads_share_handle),
	    cmocka_unit_test(test_fork_shared_handle),
	    cmocka_unit_test(test_batch_mode),
	    cmocka_unit_test(test_stop_with_clients),
	    cmocka_unit_test(test_many_processes),
	    cmocka_unit_test(test_fuse_coherence),
	    cmocka_unit_test(test_daemon_killed_mid_names),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
