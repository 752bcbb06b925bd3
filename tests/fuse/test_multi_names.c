/*
 * test_multi_names.c - names in a client's log (src/libfs/clients.h,
 * "names"), with real processes, the FUSE mount and `cairn serve`:
 *
 *   1. coherence and locality: a client of uid 65534 creates, writes and
 *      unlinks files in a directory it holds, with the daemon stopped
 *      (so no call of it may need the daemon); as soon as the daemon runs
 *      again the mount and another client see exactly those names, their
 *      bytes, owned by 65534 with the bits asked; O_EXCL of a name that
 *      is there is EEXIST; a name made through the mount in the directory
 *      ends the client's grant, and the client sees it (EEXIST) and goes on
 *      creating; a name the mount looked up before the client made or
 *      unlinked it reads as the client left it (the kernel kept no entry);
 *   2. kill -9 of a client in the middle of a stream of creates and writes:
 *      once its session has ended, every file it was told was made and
 *      written is there, whole;
 *   3. kill -9 of `cairn serve` while a client creates: the client's next
 *      call that needs the daemon fails with EIO, never hangs, and a new
 *      mount shows every file it was told was made and written;
 *   4. a directory the client may not write is never granted: its creates
 *      there fail with EACCES, through the daemon.
 * Skipped unless root with /dev/fuse.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "multitest.h"

#define NOBODY 65534
#define LOCAL_FILES 40 /* made with the daemon stopped: fewer than a client sets aside */
#define STREAM 3000    /* files a killed client tries to make */

static struct {
	char root[PATH_MAX], vol[PATH_MAX], mnt[PATH_MAX];
	pid_t daemon;
} g;

static int group_setup(void **state)
{
	(void)state;
	umask(0);
	watchdog_cleanup(&g.daemon, g.mnt);
	snprintf(g.root, sizeof(g.root), "/dev/shm/cairn-mnames.XXXXXX");
	if (!mkdtemp(g.root) || chmod(g.root, 0755))
		return -1;
	snprintf(g.vol, sizeof(g.vol), "%s/vol", g.root);
	snprintf(g.mnt, sizeof(g.mnt), "%s/mnt", g.root);
	if (run_cairn("mkfs", g.vol, "--media", "emul", "--log-size", "16M", "--fast-size", "512M",
	              NULL) ||
	    mkdir(g.mnt, 0755))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	alarm(0);
	kill_reap(&g.daemon);
	if (g.root[0] && is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH);
	scratch_remove(g.root);
	return 0;
}

static void mount_up(void)
{
	kill_reap(&g.daemon);
	if (is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH);
	g.daemon = spawn_cairn(0, "mount", g.vol, g.mnt, "--foreground", NULL);
	assert_true(g.daemon > 0);
	wait_for_mount(&g.daemon, g.mnt);
}

static void mount_down(void)
{
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	int st;
	if (wait_bounded(g.daemon, &st, 20000) != g.daemon) {
		kill_reap(&g.daemon);
		fail_msg("cairn mount did not exit within 20 s of cairn umount");
	}
	g.daemon = 0;
}

static char *at(const char *fmt, ...)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];
	int n = snprintf(b, PATH_MAX, "%s", g.mnt);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b + n, (size_t)(PATH_MAX - n), fmt, ap);
	va_end(ap);
	return b;
}

/* What file k holds: its name, repeated to 20 + k % 50 bytes. */
static size_t content(int k, char *buf)
{
	size_t len = 20 + (size_t)(k % 50);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (k + (int)i) % 26);
	return len;
}

static void drop_to_nobody(void)
{
	/* A child the test gave up on must not wait for it forever. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	gid_t groups[1] = {NOBODY};
	if (setgroups(1, groups) || setgid(NOBODY) || setuid(NOBODY))
		C_FAIL("cannot become uid %d", NOBODY);
}

/* Creates /dir/fK, writes its content and closes it: 0, or -1 (errno). */
static int make_file(cairn_fs *fs, const char *dir, int k)
{
	char path[PATH_MAX], buf[128];
	snprintf(path, sizeof(path), "%s/f%d", dir, k);
	int fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, 0640);
	if (fd < 0)
		return -1;
	size_t len = content(k, buf);
	int rc = cairn_write(fs, fd, buf, len) == (ssize_t)len ? 0 : -1;
	int e = errno;
	cairn_close(fs, fd);
	errno = e;
	return rc;
}

/* Through the mount: fK is there with its content (want) or not. */
static void check_mount_file(const char *dir, int k, int want, uid_t uid)
{
	struct stat st;
	int there = stat(at("%s/f%d", dir, k), &st) == 0;
	if (there != want)
		fail_msg("%s/f%d is %s through the mount", dir, k, there ? "there" : "missing");
	if (!want)
		return;
	char buf[128], got[128];
	size_t len = content(k, buf);
	if (st.st_uid != uid || (st.st_mode & 07777) != 0640 || (size_t)st.st_size != len)
		fail_msg("%s/f%d: uid %d mode %o size %lld through the mount", dir, k,
		         (int)st.st_uid, (unsigned)(st.st_mode & 07777), (long long)st.st_size);
	int fd = open(at("%s/f%d", dir, k), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, got, sizeof(got)), (ssize_t)len);
	close(fd);
	if (memcmp(buf, got, len))
		fail_msg("%s/f%d: other bytes through the mount", dir, k);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(at("%s", dir));
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- 1 ---------------------------------------------------------------------- */

static void coherence_child(int ready, int go)
{
	drop_to_nobody();
	cairn_fs *fs = cairn_attach(g.mnt);
	if (!fs)
		C_FAIL("cairn_attach: %s", cairn_last_error());
	/* The first create asks for the directory's grant and inode numbers. */
	C_OK(make_file(fs, "/n", 1000));
	char b = 1;
	C_TRUE(write(ready, &b, 1) == 1);
	C_TRUE(read(go, &b, 1) == 1); /* the daemon is stopped now */
	for (int k = 0; k < LOCAL_FILES; k++)
		C_OK(make_file(fs, "/n", k));
	C_ERR(cairn_open(fs, "/n/f3", O_CREAT | O_EXCL | O_WRONLY, 0640), EEXIST);
	char path[64];
	for (int k = 0; k < LOCAL_FILES; k += 4) {
		snprintf(path, sizeof(path), "/n/f%d", k);
		C_OK(cairn_unlink(fs, path));
	}
	C_ERR(cairn_unlink(fs, "/n/f0"), ENOENT);
	C_OK(cairn_unlink(fs, "/n/f1000"));
	C_TRUE(write(ready, &b, 1) == 1);
	C_TRUE(read(go, &b, 1) == 1); /* the mount made /n/m */
	C_ERR(cairn_open(fs, "/n/m", O_CREAT | O_EXCL | O_WRONLY, 0640), EEXIST);
	C_OK(make_file(fs, "/n", 2000));
	C_OK(cairn_unlink(fs, "/n/f2000"));
	C_OK(make_file(fs, "/n", 2001));
	cairn_unmount(fs);
	_exit(0);
}

static void test_coherence(void **state)
{
	(void)state;
	watchdog(120, "test_coherence");
	mount_up();
	assert_int_equal(mkdir(at("/n"), 0755), 0);
	assert_int_equal(chown(at("/n"), NOBODY, NOBODY), 0);
	int up[2], down[2];
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0)
		coherence_child(up[1], down[0]);
	char b;
	assert_int_equal(read(up[0], &b, 1), 1);
	/* The mount looks up a name the client will make and one it will
	 * unlink: entries the kernel must not keep while the client holds
	 * the directory. */
	struct stat st;
	assert_int_equal(stat(at("/n/f5"), &st), -1);
	assert_int_equal(stat(at("/n/f1000"), &st), 0); /* no open: that would end its grant */
	assert_int_equal(kill(g.daemon, SIGSTOP), 0);
	assert_int_equal(write(down[1], &b, 1), 1);
	/* Every call of the child's until the next byte is local: with the
	 * daemon stopped, one that needed it would never return. */
	assert_int_equal(read(up[0], &b, 1), 1);
	assert_int_equal(kill(g.daemon, SIGCONT), 0);
	for (int k = 0; k < LOCAL_FILES; k++)
		check_mount_file("/n", k, k % 4 != 0, NOBODY);
	check_mount_file("/n", 1000, 0, NOBODY);
	assert_int_equal(count_entries("/n"), LOCAL_FILES - LOCAL_FILES / 4);
	/* Another client sees them too. */
	cairn_fs *other = attach_wait(g.mnt, &g.daemon);
	assert_int_equal(cairn_stat(other, "/n/f1", &st), 0);
	assert_int_equal(cairn_stat(other, "/n/f4", &st), -1);
	cairn_unmount(other);
	/* A name made through the mount ends the grant. */
	int fd = open(at("/n/m"), O_CREAT | O_EXCL | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(write(down[1], &b, 1), 1);
	child_ok(c, 30000, "the creating client");
	check_mount_file("/n", 2001, 1, NOBODY);
	check_mount_file("/n", 2000, 0, NOBODY);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	mount_down();
}

/* ---- 2 and 3 ----------------------------------------------------------------- */

/* Makes /dir/f0, f1, ... and reports each k over fd once it is made and
 * written; stops at the first failure (the daemon gone) or after STREAM. */
static void stream_child(cairn_fs *fs, const char *dir, int report)
{
	for (int k = 0; k < STREAM; k++) {
		if (make_file(fs, dir, k))
			_exit(errno == EIO ? 0 : 2);
		if (write(report, &k, sizeof(k)) != sizeof(k))
			_exit(3);
	}
	_exit(0);
}

/* Reads acknowledgements until n of them came (or the writer ended):
 * the last k acknowledged, or -1. */
static int read_acks(int fd, int n)
{
	int last = -1, k;
	for (int i = 0; i < n && read(fd, &k, sizeof(k)) == sizeof(k); i++)
		last = k;
	return last;
}

static void test_client_killed(void **state)
{
	(void)state;
	watchdog(120, "test_client_killed");
	mount_up();
	assert_int_equal(mkdir(at("/k"), 0755), 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		close(p[0]);
		cairn_fs *fs = cairn_attach(g.mnt);
		if (!fs)
			_exit(4);
		stream_child(fs, "/k", p[1]);
	}
	close(p[1]);
	int last = read_acks(p[0], 700);
	assert_int_equal(kill(c, SIGKILL), 0);
	int more = read_acks(p[0], STREAM);
	if (more > last)
		last = more;
	close(p[0]);
	int st;
	assert_int_equal(waitpid(c, &st, 0), c);
	assert_true(last >= 100);
	/* Its session ends; what it left is applied. */
	cairn_fs *other = attach_wait(g.mnt, &g.daemon);
	cairn_sync(other);
	cairn_unmount(other);
	for (int k = 0; k <= last; k++)
		check_mount_file("/k", k, 1, 0);
	mount_down();
}

static void test_daemon_killed(void **state)
{
	(void)state;
	watchdog(120, "test_daemon_killed");
	kill_reap(&g.daemon);
	cairn_fs *fs0 = NULL;
	serve_and_attach(g.vol, &g.daemon, &fs0);
	assert_int_equal(cairn_mkdir(fs0, "/s", 0755), 0);
	cairn_unmount(fs0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		close(p[0]);
		signal(SIGPIPE, SIG_DFL);
		cairn_fs *fs = cairn_attach(g.vol);
		if (!fs)
			_exit(4);
		stream_child(fs, "/s", p[1]);
	}
	close(p[1]);
	int last = read_acks(p[0], 500);
	kill_reap(&g.daemon);
	int more = read_acks(p[0], STREAM);
	if (more > last)
		last = more;
	close(p[0]);
	child_ok(c, 30000, "the client whose daemon died");
	assert_true(last >= 100);
	cairn_fs *fs = cairn_mount(g.vol, &(struct cairn_mount_opts){0});
	if (!fs)
		fail_msg("cairn_mount: %s", cairn_last_error());
	for (int k = 0; k <= last; k++) {
		char path[64], buf[128], got[128];
		snprintf(path, sizeof(path), "/s/f%d", k);
		int fd = cairn_open(fs, path, O_RDONLY);
		size_t len = content(k, buf);
		if (fd < 0 || cairn_read(fs, fd, got, sizeof(got)) != (ssize_t)len ||
		    memcmp(buf, got, len))
			fail_msg("%s, acknowledged, is not there whole after the daemon died",
			         path);
		cairn_close(fs, fd);
	}
	cairn_unmount(fs);
}

/* ---- 4 ------------------------------------------------------------------------ */

static void test_not_writable(void **state)
{
	(void)state;
	watchdog(60, "test_not_writable");
	mount_up();
	assert_int_equal(mkdir(at("/ro"), 0755), 0);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		drop_to_nobody();
		cairn_fs *fs = cairn_attach(g.mnt);
		if (!fs)
			C_FAIL("cairn_attach: %s", cairn_last_error());
		for (int i = 0; i < 3; i++)
			C_ERR(cairn_open(fs, "/ro/x", O_CREAT | O_EXCL | O_WRONLY, 0644), EACCES);
		cairn_unmount(fs);
		_exit(0);
	}
	child_ok(c, 30000, "the client of uid 65534");
	assert_int_equal(count_entries("/ro"), 0);
	mount_down();
}

int main(int argc, char **argv)
{
	fuse_tests_require(argv[0]);
	signal(SIGPIPE, SIG_DFL);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_coherence),
	    cmocka_unit_test(test_client_killed),
	    cmocka_unit_test(test_daemon_killed),
	    cmocka_unit_test(test_not_writable),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
