/*
 * test_fuse_mount.c - the FUSE mount, end to end: `cairn mount` of a
 * scratch emul volume, then ordinary system calls on the mount point, as
 * any program would make them.
 *
 * The tests run in order and share one volume:
 *   1. names, data, attributes, xattrs, fallocate, permissions, a directory
 *      of 1000 entries, statfs, a FIFO;
 *   2. `cairn umount`, the daemon exits 0, a new mount shows it all again;
 *   3. kill -9 of the daemon in the middle of a write loop, lazy unmount of
 *      the dead mount, a new mount: every write and create acknowledged
 *      before the kill is there.
 * Skipped unless root with /dev/fuse.  The scratch directory is in /dev/shm
 * and removed at the end; the teardown detaches any mount a failing test
 * left behind.  The cairn command is CAIRN_BIN (set by CMake).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
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
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fusetest.h"

#ifndef CAIRN_BIN
#error "CAIRN_BIN must name the cairn command"
#endif

#define FUSE_SUPER_MAGIC 0x65735546
#define MANY 1000 /* entries of the big directory */
#define RING 1024 /* 4 KiB slots of the file the kill test overwrites */
#define KILL_AFTER_MS 300

static struct {
	char root[PATH_MAX], vol[PATH_MAX], mnt[PATH_MAX];
	pid_t daemon; /* the `cairn mount --foreground` child, or 0 */
} g;

/* ---- helpers ------------------------------------------------------------- */

static char *at(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, PATH_MAX, "%s/%s", g.mnt, rel);
	return b;
}

/* Starts `cairn mount VOLUME MNT --foreground` and waits for the mount. */
static void mount_start(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(CAIRN_BIN, "cairn", "mount", g.vol, g.mnt, "--foreground", (char *)NULL);
		_exit(127);
	}
	g.daemon = pid;
	wait_for_mount(&g.daemon, g.mnt);
}

/* `cairn umount`, then the daemon must exit 0. */
static void mount_stop(void)
{
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	assert_false(is_mounted_at(g.mnt));
	int st;
	assert_int_equal(waitpid(g.daemon, &st, 0), g.daemon);
	g.daemon = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void write_file(const char *rel, const char *text)
{
	int fd = open(at(rel), O_CREAT | O_TRUNC | O_WRONLY, 0644);
	CHECK(fd);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	CHECK(close(fd));
}

static void assert_file(const char *rel, const char *text)
{
	char buf[4096];
	int fd = open(at(rel), O_RDONLY);
	CHECK(fd);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, text);
}

/* Names in a directory (without "." and ".."); each must be eNNNN once. */
static int count_many(const char *rel)
{
	static unsigned char seen[MANY];
	memset(seen, 0, sizeof(seen));
	DIR *d = opendir(at(rel));
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int i;
		assert_int_equal(sscanf(e->d_name, "e%d", &i), 1);
		assert_true(i >= 0 && i < MANY);
		assert_int_equal(seen[i]++, 0);
		assert_int_equal(e->d_type, DT_REG);
		n++;
	}
	closedir(d);
	return n;
}

/* ---- fixtures ------------------------------------------------------------ */

static int rm_tree(const char *path)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int group_setup(void **state)
{
	snprintf(g.root, sizeof(g.root), "/dev/shm/cairn-fuse.XXXXXX");
	/* 0755: the permission test's other user must reach the mount point. */
	if (!mkdtemp(g.root) || chmod(g.root, 0755))
		return -1;
	snprintf(g.vol, sizeof(g.vol), "%s/vol", g.root);
	snprintf(g.mnt, sizeof(g.mnt), "%s/mnt", g.root);
	if (mkdir(g.mnt, 0755))
		return -1;
	/* A small log, so that the digest runs during the kill test. */
	if (run_cairn("mkfs", g.vol, "--media", "emul", "--log-size", "16M", "--fast-size", "64M",
	              NULL) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	if (!g.root[0])
		return 0;
	/* Whatever failed, leave no mount and no daemon behind. */
	if (is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH);
	if (g.daemon > 0) {
		kill(g.daemon, SIGKILL);
		waitpid(g.daemon, NULL, 0);
	}
	if (!getenv("CAIRN_TEST_KEEP"))
		rm_tree(g.root);
	return 0;
}

/* ---- 1. the calls -------------------------------------------------------- */

static void names(void)
{
	CHECK(mkdir(at("d"), 0755));
	CHECK_ERRNO(mkdir(at("d"), 0755), EEXIST);
	write_file("d/hello", "hello, cairn\n");
	assert_file("d/hello", "hello, cairn\n");
	CHECK(rename(at("d/hello"), at("d/greeting")));
	CHECK_ERRNO(open(at("d/hello"), O_RDONLY), ENOENT);
	write_file("d/other", "other\n");
	CHECK_ERRNO(syscall(SYS_renameat2, AT_FDCWD, at("d/other"), AT_FDCWD, at("d/greeting"),
	                    RENAME_NOREPLACE),
	            EEXIST);
	CHECK_ERRNO(syscall(SYS_renameat2, AT_FDCWD, at("d/other"), AT_FDCWD, at("d/greeting"),
	                    RENAME_EXCHANGE),
	            EINVAL);
	CHECK(rename(at("d/other"), at("d/replaced")));
	write_file("d/victim", "victim\n");
	CHECK(rename(at("d/replaced"), at("d/victim"))); /* over an existing name */
	assert_file("d/victim", "other\n");
	CHECK(link(at("d/greeting"), at("d/hardlink")));
	CHECK(symlink("greeting", at("d/symlink")));
	char buf[64];
	ssize_t n = readlink(at("d/symlink"), buf, sizeof(buf));
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "greeting", 8);
	assert_file("d/symlink", "hello, cairn\n");
	CHECK(mkdir(at("d/sub"), 0700));
	write_file("d/sub/f", "x");
	CHECK_ERRNO(rmdir(at("d/sub")), ENOTEMPTY);
	CHECK_ERRNO(unlink(at("d/sub")), EISDIR);
	CHECK(unlink(at("d/sub/f")));
	CHECK(rmdir(at("d/sub")));
	CHECK(unlink(at("d/victim")));
	CHECK_ERRNO(unlink(at("d/victim")), ENOENT);
}

static void stat_fields(void)
{
	struct stat st;
	CHECK(stat(at("d/greeting"), &st));
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_nlink, 2); /* d/hardlink */
	assert_int_equal(st.st_size, 13);
	assert_true(st.st_blocks >= 1);
	CHECK(lstat(at("d/symlink"), &st));
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_size, 8);
	/* 100 KiB of data: at least that many 512-byte blocks. */
	static char big[100 * 1024];
	memset(big, 'b', sizeof(big));
	int fd = open(at("d/big"), O_CREAT | O_WRONLY, 0600);
	CHECK(fd);
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	CHECK(fstat(fd, &st));
	assert_int_equal(st.st_size, (off_t)sizeof(big));
	assert_true(st.st_blocks >= (blkcnt_t)(sizeof(big) / 512));
	CHECK(close(fd));
}

static void attributes(void)
{
	struct stat st;
	CHECK(chmod(at("d/greeting"), 0640));
	CHECK(chown(at("d/greeting"), 1234, 5678));
	struct timespec ts[2] = {{1000000000, 123}, {1500000000, 456}};
	CHECK(utimensat(AT_FDCWD, at("d/greeting"), ts, 0));
	CHECK(stat(at("d/greeting"), &st));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_atim.tv_sec, 1000000000);
	assert_int_equal(st.st_atim.tv_nsec, 123);
	assert_int_equal(st.st_mtim.tv_sec, 1500000000);
	assert_int_equal(st.st_mtim.tv_nsec, 456);
	/* UTIME_NOW: the mount's clock is this machine's. */
	write_file("d/touched", "");
	struct timespec now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	time_t before = time(NULL);
	CHECK(utimensat(AT_FDCWD, at("d/touched"), now, 0));
	CHECK(stat(at("d/touched"), &st));
	assert_true(st.st_mtim.tv_sec >= before - 1 && st.st_mtim.tv_sec <= time(NULL) + 1);
	/* truncate: grow sparse, shrink */
	CHECK(truncate(at("d/big"), 1 << 20));
	CHECK(stat(at("d/big"), &st));
	assert_int_equal(st.st_size, 1 << 20);
	CHECK(truncate(at("d/big"), 5000));
	CHECK(stat(at("d/big"), &st));
	assert_int_equal(st.st_size, 5000);
	/* fallocate: mode 0 extends, KEEP_SIZE keeps the size and sets the
	 * blocks aside all the same, punching frees */
	int fd = open(at("d/falloc"), O_CREAT | O_RDWR, 0644);
	CHECK(fd);
	CHECK(fallocate(fd, 0, 0, 8192));
	CHECK(fstat(fd, &st));
	assert_int_equal(st.st_size, 8192);
	CHECK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 65536));
	CHECK(fstat(fd, &st));
	assert_int_equal(st.st_size, 8192);
	assert_true(st.st_blocks * 512 >= 65536);
	char blk[8192], zero[4096] = {0};
	memset(blk, 'f', sizeof(blk));
	assert_int_equal(pwrite(fd, blk, sizeof(blk), 0), (ssize_t)sizeof(blk));
	CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
	assert_int_equal(pread(fd, blk, sizeof(blk), 0), (ssize_t)sizeof(blk));
	assert_memory_equal(blk, zero, 4096);
	assert_int_equal(blk[4096], 'f');
	CHECK_ERRNO(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), EOPNOTSUPP);
	CHECK(close(fd));
}

static void xattrs(void)
{
	const char *f = at("d/greeting");
	CHECK(setxattr(f, "user.color", "blue", 4, XATTR_CREATE));
	CHECK_ERRNO(setxattr(f, "user.color", "red", 3, XATTR_CREATE), EEXIST);
	CHECK_ERRNO(setxattr(f, "user.none", "x", 1, XATTR_REPLACE), ENODATA);
	CHECK(setxattr(f, "user.empty", "", 0, 0));
	char buf[64];
	assert_int_equal(getxattr(f, "user.color", NULL, 0), 4);
	assert_int_equal(getxattr(f, "user.color", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "blue", 4);
	CHECK_ERRNO(getxattr(f, "user.color", buf, 2), ERANGE);
	assert_int_equal(getxattr(f, "user.empty", buf, sizeof(buf)), 0);
	CHECK_ERRNO(getxattr(f, "user.none", buf, sizeof(buf)), ENODATA);
	ssize_t n = listxattr(f, buf, sizeof(buf));
	assert_int_equal(n, (ssize_t)sizeof("user.color") + (ssize_t)sizeof("user.empty"));
	CHECK(removexattr(f, "user.empty"));
	CHECK_ERRNO(removexattr(f, "user.empty"), ENODATA);
	/* ACLs would not be enforced (the kernel checks mode bits): refused. */
	CHECK_ERRNO(setxattr(f, "system.posix_acl_access", "\x02\0\0\0", 4, 0), EOPNOTSUPP);
}

/* The kernel checks permissions (default_permissions): another user may
 * read a 0644 file of root's, not write it. */
static void permissions(void)
{
	write_file("d/rootfile", "root's\n");
	CHECK(chmod(at("d/rootfile"), 0644));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(4321) || setuid(4321))
			_exit(10);
		int fd = open(at("d/rootfile"), O_RDONLY);
		if (fd < 0)
			_exit(11);
		close(fd);
		_exit(open(at("d/rootfile"), O_WRONLY) < 0 && errno == EACCES ? 0 : 12);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void big_directory(void)
{
	CHECK(mkdir(at("many"), 0755));
	char name[32];
	for (int i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "many/e%04d", i);
		int fd = open(at(name), O_CREAT | O_EXCL | O_WRONLY, 0644);
		CHECK(fd);
		close(fd);
	}
	assert_int_equal(count_many("many"), MANY);
	for (int i = 0; i < MANY; i += 2) {
		snprintf(name, sizeof(name), "many/e%04d", i);
		CHECK(unlink(at(name)));
	}
	assert_int_equal(count_many("many"), MANY / 2);
}

static void volume_and_fifo(void)
{
	struct statfs sf;
	CHECK(statfs(g.mnt, &sf));
	assert_int_equal(sf.f_type, FUSE_SUPER_MAGIC);
	assert_true(sf.f_blocks > 0 && sf.f_bfree <= sf.f_blocks && sf.f_bavail <= sf.f_bfree);
	assert_true(sf.f_files > 0 && sf.f_ffree < sf.f_files);
	CHECK(mkfifo(at("d/fifo"), 0600));
	struct stat st;
	CHECK(stat(at("d/fifo"), &st));
	assert_true(S_ISFIFO(st.st_mode));
	/* The kernel runs the pipe itself: it works like any FIFO. */
	int fd = open(at("d/fifo"), O_RDWR | O_NONBLOCK);
	CHECK(fd);
	char c = 0;
	assert_int_equal(write(fd, "p", 1), 1);
	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(c, 'p');
	close(fd);
}

static void test_calls(void **state)
{
	mount_start();
	names();
	stat_fields();
	attributes();
	xattrs();
	permissions();
	big_directory();
	volume_and_fifo();
}

/* ---- 2. persistence across `cairn umount` -------------------------------- */

static void test_persist(void **state)
{
	if (!g.daemon)
		mount_start();
	mount_stop();
	mount_start();
	assert_file("d/greeting", "hello, cairn\n");
	assert_file("d/hardlink", "hello, cairn\n");
	char buf[64];
	assert_int_equal(readlink(at("d/symlink"), buf, sizeof(buf)), 8);
	struct stat st;
	CHECK(stat(at("d/greeting"), &st));
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_mtim.tv_sec, 1500000000);
	CHECK(stat(at("d/big"), &st));
	assert_int_equal(st.st_size, 5000);
	assert_int_equal(getxattr(at("d/greeting"), "user.color", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "blue", 4);
	CHECK(stat(at("d/fifo"), &st));
	assert_true(S_ISFIFO(st.st_mode));
	CHECK_ERRNO(stat(at("d/victim"), &st), ENOENT);
	assert_int_equal(count_many("many"), MANY / 2);
}

/* ---- 3. kill -9 during a write loop -------------------------------------- */

struct writer {
	int fd;
	volatile uint64_t acked_writes;  /* pwrites 0..acked-1 returned */
	volatile uint64_t acked_creates; /* files k0..k(acked-1) created */
};

static void fill_slot(char *blk, uint64_t i)
{
	memset(blk, (int)(i & 0xff), 4096);
	memcpy(blk, &i, sizeof(i));
}

/* Overwrites the ring's slots (so the fast tier cannot fill) and now and
 * then creates a file, until the mount dies under it. */
static void *writer_loop(void *arg)
{
	struct writer *w = arg;
	char blk[4096], name[32];
	for (uint64_t i = 0;; i++) {
		fill_slot(blk, i);
		if (pwrite(w->fd, blk, sizeof(blk), (off_t)(i % RING) * 4096) != 4096)
			break;
		w->acked_writes = i + 1;
		if (i % 64 == 0) {
			snprintf(name, sizeof(name), "k/%llu", (unsigned long long)(i / 64));
			int fd = open(at(name), O_CREAT | O_WRONLY, 0644);
			if (fd < 0)
				break;
			close(fd);
			w->acked_creates = i / 64 + 1;
		}
	}
	return NULL;
}

/* Slot s holds the last acknowledged write to it, or the one in flight. */
static void check_ring(uint64_t acked)
{
	int fd = open(at("ring"), O_RDONLY);
	CHECK(fd);
	char blk[4096], want[4096];
	for (uint64_t s = 0; s < RING && s < acked + 1; s++) {
		if (pread(fd, blk, sizeof(blk), (off_t)s * 4096) != 4096) {
			assert_true(s >= acked); /* only the write in flight may be missing */
			continue;
		}
		uint64_t got;
		memcpy(&got, blk, sizeof(got));
		uint64_t last = acked > s ? s + (acked - 1 - s) / RING * RING : UINT64_MAX;
		if (got != last && !(got == acked && acked % RING == s))
			fail_msg("slot %llu holds write %llu, expected %llu (acked %llu)",
			         (unsigned long long)s, (unsigned long long)got,
			         (unsigned long long)last, (unsigned long long)acked);
		fill_slot(want, got);
		assert_memory_equal(blk, want, sizeof(blk));
	}
	close(fd);
}

static void test_kill9(void **state)
{
	if (!g.daemon)
		mount_start();
	CHECK(mkdir(at("k"), 0755));
	struct writer w = {.fd = open(at("ring"), O_CREAT | O_RDWR, 0644)};
	CHECK(w.fd);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, writer_loop, &w), 0);
	sleep_ms(KILL_AFTER_MS);
	assert_int_equal(kill(g.daemon, SIGKILL), 0);
	pthread_join(t, NULL); /* the dead mount fails its next call */
	close(w.fd);
	int st;
	assert_int_equal(waitpid(g.daemon, &st, 0), g.daemon);
	g.daemon = 0;
	assert_true(WIFSIGNALED(st));
	uint64_t acked = w.acked_writes, creates = w.acked_creates;
	print_message("kill -9 after %llu acknowledged writes, %llu creates\n",
	              (unsigned long long)acked, (unsigned long long)creates);
	assert_true(acked > 0);
	assert_int_equal(umount2(g.mnt, MNT_DETACH), 0); /* umount -l */
	mount_start();
	check_ring(acked);
	char name[32];
	struct stat sb;
	for (uint64_t i = 0; i < creates; i++) {
		snprintf(name, sizeof(name), "k/%llu", (unsigned long long)i);
		CHECK(stat(at(name), &sb));
	}
	assert_file("d/greeting", "hello, cairn\n");
	mount_stop();
}

int main(void)
{
	fuse_tests_require("test_fuse_mount");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_calls),
	    cmocka_unit_test(test_persist),
	    cmocka_unit_test(test_kill9),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
