/*
 * test_fuse_fastpath.c - what keeps a durable write through the FUSE mount
 * to one round trip, and the duties that come with it:
 *   1. sync mode: the kernel stops asking for fsync and fsyncdir (every
 *      change is already durable) and, when it offers
 *      FUSE_HANDLE_KILLPRIV_V2, stops asking getxattr("security.capability")
 *      before each write; the data is all there after a remount;
 *   2. batch mode: every fsync and fsyncdir still reaches cairn, which
 *      makes the log durable;
 *   3. set-user-ID and set-group-ID bits are cleared as Linux clears them
 *      (now by cairn when the kernel hands that over): on write, O_TRUNC
 *      open, truncate, fallocate and chown, by a caller without privilege,
 *      with set-group-ID kept only for a member of the group when group
 *      execute is off;
 *   4. the kernel keeps file pages across opens (and asks nothing to open
 *      a directory): a file never shows the pages of the removed file
 *      whose inode number it got, and a change through one descriptor is
 *      seen through another at once;
 *   5. several threads calling at once all get their writes in;
 *   6. SIGTERM ends the daemon cleanly, asleep or busy.
 * The requests the kernel sends are counted in libfuse's debug output
 * (`cairn mount --foreground -o debug`).  Skipped unless root with
 * /dev/fuse.  The cairn command is CAIRN_BIN (set by CMake).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <dirent.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fusetest.h"

#ifndef CAIRN_BIN
#error "CAIRN_BIN must name the cairn command"
#endif

#define WRITES 100
#define NOBODY 65534
#define KILLPRIV_V2 (1u << 28) /* FUSE_HANDLE_KILLPRIV_V2 in the INIT flags */
#define NO_OPENDIR (1u << 24)  /* FUSE_NO_OPENDIR_SUPPORT */
#define REUSES 300             /* files made, read and removed in turn */
#define WRITERS 4

static struct {
	char root[PATH_MAX], vol[PATH_MAX], mnt[PATH_MAX], log[PATH_MAX];
	pid_t daemon;
} g;

static char *at(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, PATH_MAX, "%s/%s", g.mnt, rel);
	return b;
}

/* `cairn mount --foreground`, with -o debug into g.log when debug, and
 * --batch batch_ms when batch_ms > 0. */
static void mount_start(int debug, const char *batch_ms)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[12] = {"cairn", "mount", g.vol, g.mnt, "--foreground"};
		int n = 5;
		if (debug) {
			int fd = open(g.log, O_CREAT | O_TRUNC | O_WRONLY, 0644);
			dup2(fd, 2);
			argv[n++] = "-o";
			argv[n++] = "debug";
		}
		if (batch_ms) {
			argv[n++] = "--batch";
			argv[n++] = (char *)batch_ms;
		}
		execv(CAIRN_BIN, argv);
		_exit(127);
	}
	g.daemon = pid;
	wait_for_mount(&g.daemon, g.mnt);
}

static void mount_stop(void)
{
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	int st;
	assert_int_equal(waitpid(g.daemon, &st, 0), g.daemon);
	g.daemon = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Requests of the given opcode name ("WRITE", "FSYNC", ...) in the debug
 * log; *init_flags gets the flags of the kernel's INIT request. */
static int count_requests(const char *opcode, unsigned *init_flags)
{
	FILE *f = fopen(g.log, "r");
	assert_non_null(f);
	char line[512], want[64];
	snprintf(want, sizeof(want), "opcode: %s (", opcode);
	int n = 0, in_init = 0;
	*init_flags = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, want))
			n++;
		if (strstr(line, "opcode: INIT ("))
			in_init = 1;
		else if (in_init && !strncmp(line, "flags=0x", 8)) {
			*init_flags = (unsigned)strtoul(line + 8, NULL, 16);
			in_init = 0;
		}
	}
	fclose(f);
	return n;
}

/* ---- fixtures ------------------------------------------------------------ */

static int group_setup(void **state)
{
	snprintf(g.root, sizeof(g.root), "/dev/shm/cairn-fastpath.XXXXXX");
	/* 0755: the set-ID test's other user must reach the mount point. */
	if (!mkdtemp(g.root) || chmod(g.root, 0755))
		return -1;
	snprintf(g.vol, sizeof(g.vol), "%s/vol", g.root);
	snprintf(g.mnt, sizeof(g.mnt), "%s/mnt", g.root);
	snprintf(g.log, sizeof(g.log), "%s/debug.log", g.root);
	if (mkdir(g.mnt, 0755))
		return -1;
	/* Few inodes, so that the page-cache test gets numbers back soon. */
	if (run_cairn("mkfs", g.vol, "--media", "emul", "--log-size", "16M", "--fast-size", "64M",
	              "--inodes", "32", NULL) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	if (!g.root[0])
		return 0;
	if (is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH);
	if (g.daemon > 0) {
		kill(g.daemon, SIGKILL);
		waitpid(g.daemon, NULL, 0);
	}
	if (!getenv("CAIRN_TEST_KEEP")) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g.root);
		if (system(cmd)) {
			/* nothing more to do */
		}
	}
	return 0;
}

/* ---- 1. sync mode -------------------------------------------------------- */

static void test_sync_mode(void **state)
{
	mount_start(1, NULL);
	int fd = open(at("appends"), O_CREAT | O_WRONLY | O_APPEND, 0644);
	CHECK(fd);
	int dir = open(g.mnt, O_RDONLY | O_DIRECTORY);
	CHECK(dir);
	char block[4096];
	for (int i = 0; i < WRITES; i++) {
		memset(block, 'a' + i % 26, sizeof(block));
		assert_int_equal(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
		CHECK(fdatasync(fd));
		CHECK(fsync(fd));
		CHECK(fsync(dir));
	}
	CHECK(close(fd));
	CHECK(close(dir));
	/* Directory streams work without opendir requests. */
	for (int i = 0; i < 3; i++) {
		DIR *d = opendir(g.mnt);
		assert_non_null(d);
		int found = 0;
		struct dirent *e;
		while ((e = readdir(d)))
			found |= !strcmp(e->d_name, "appends");
		closedir(d);
		assert_true(found);
	}
	mount_stop();

	unsigned flags;
	assert_int_equal(count_requests("WRITE", &flags), WRITES);
	int opendirs = count_requests("OPENDIR", &flags);
	if (flags & NO_OPENDIR)
		assert_true(opendirs <= 1);
	/* The first fsync (fsyncdir) is answered ENOSYS, then the kernel
	 * answers them itself. */
	assert_true(count_requests("FSYNC", &flags) <= 1);
	assert_true(count_requests("FSYNCDIR", &flags) <= 1);
	/* With KILLPRIV_V2 the kernel checks security.capability once per
	 * attribute refresh, not once per write. */
	int getxattrs = count_requests("GETXATTR", &flags);
	if (flags & KILLPRIV_V2)
		assert_true(getxattrs <= 2);
	else
		print_message("the kernel offers no FUSE_HANDLE_KILLPRIV_V2: %d getxattr\n",
		              getxattrs);

	mount_start(0, NULL);
	fd = open(at("appends"), O_RDONLY);
	CHECK(fd);
	for (int i = 0; i < WRITES; i++) {
		assert_int_equal(read(fd, block, sizeof(block)), (ssize_t)sizeof(block));
		assert_int_equal(block[0], 'a' + i % 26);
		assert_int_equal(block[sizeof(block) - 1], 'a' + i % 26);
	}
	CHECK(close(fd));
	mount_stop();
}

/* ---- 2. batch mode ------------------------------------------------------- */

static void test_batch_mode(void **state)
{
	/* A batch interval far longer than the test: only fsync commits. */
	mount_start(1, "600000");
	int fd = open(at("batched"), O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd);
	int dir = open(g.mnt, O_RDONLY | O_DIRECTORY);
	CHECK(dir);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(write(fd, "0123456789", 10), 10);
		CHECK(fsync(fd));
	}
	for (int i = 0; i < 3; i++)
		CHECK(fsync(dir));
	CHECK(close(fd));
	CHECK(close(dir));
	mount_stop();
	unsigned flags;
	assert_int_equal(count_requests("FSYNC", &flags), 10);
	assert_int_equal(count_requests("FSYNCDIR", &flags), 3);
}

/* ---- 3. set-ID bits ------------------------------------------------------ */

enum change { WRITE, OPEN_TRUNC, TRUNCATE, FALLOCATE, PUNCH, CHOWN_SAME };

/* Makes rel with the given mode (owner root, group gid), then applies the
 * change as uid/gid (with no supplementary groups); returns the mode
 * after it. */
static mode_t mode_after(const char *rel, mode_t mode, gid_t gid, uid_t uid, gid_t as_gid,
                         enum change c)
{
	const char *p = at(rel);
	unlink(p);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	CHECK(fd);
	assert_int_equal(write(fd, "hello", 5), 5);
	CHECK(close(fd));
	CHECK(chown(p, 0, gid));
	CHECK(chmod(p, mode));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(as_gid, as_gid, as_gid) ||
		    setresuid(uid, uid, uid))
			_exit(2);
		int f = -1, rc = 0;
		switch (c) {
		case WRITE:
			f = open(p, O_WRONLY);
			rc = f < 0 || pwrite(f, "x", 1, 0) != 1;
			break;
		case OPEN_TRUNC:
			f = open(p, O_WRONLY | O_TRUNC);
			rc = f < 0;
			break;
		case TRUNCATE:
			rc = truncate(p, 2);
			break;
		case FALLOCATE:
			f = open(p, O_WRONLY);
			rc = f < 0 || fallocate(f, 0, 0, 8192);
			break;
		case PUNCH:
			f = open(p, O_WRONLY);
			rc =
			    f < 0 || fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2);
			break;
		case CHOWN_SAME:
			rc = chown(p, (uid_t)-1, gid);
			break;
		}
		_exit(rc ? 1 : 0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* Asked alone (as `stat -c %a` does): the kernel answers it from
	 * what it keeps unless it was told the mode changed. */
	struct statx sx;
	CHECK(statx(AT_FDCWD, p, 0, STATX_MODE, &sx));
	return sx.stx_mode & 07777;
}

static void test_setid(void **state)
{
	mount_start(0, NULL);
	/* A caller without CAP_FSETID clears set-user-ID, and set-group-ID
	 * when group-execute is set, whatever the change. */
	static const enum change all[] = {WRITE, OPEN_TRUNC, TRUNCATE, FALLOCATE, PUNCH};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_int_equal(mode_after("f", 06777, 0, NOBODY, NOBODY, all[i]), 0777);
		assert_int_equal(mode_after("f", 04777, 0, NOBODY, NOBODY, all[i]), 0777);
		/* Set-group-ID without group-execute: kept for a member of
		 * the file's group, cleared for anyone else. */
		assert_int_equal(mode_after("f", 02767, NOBODY, NOBODY, NOBODY, all[i]), 02767);
		assert_int_equal(mode_after("f", 02767, 0, NOBODY, NOBODY, all[i]), 0767);
		/* Root keeps them all. */
		assert_int_equal(mode_after("f", 06777, 0, 0, 0, all[i]), 06777);
	}
	/* chown clears set-user-ID whoever makes it, and set-group-ID with
	 * group-execute; without group-execute root keeps it. */
	assert_int_equal(mode_after("f", 06755, 0, 0, 0, CHOWN_SAME), 0755);
	assert_int_equal(mode_after("f", 06745, 0, 0, 0, CHOWN_SAME), 02745);
	/* Directories keep their bits on chown. */
	CHECK(mkdir(at("d"), 0755));
	CHECK(chmod(at("d"), 02755));
	CHECK(chown(at("d"), 0, NOBODY));
	struct stat sb;
	CHECK(stat(at("d"), &sb));
	assert_int_equal(sb.st_mode & 07777, 02755);
	mount_stop();
}

/* ---- 4. the page cache ---------------------------------------------------- */

/* The kernel keeps a file's pages across opens: never those of a removed
 * file whose inode number cairn gives to the next one. */
static void test_page_cache(void **state)
{
	mount_start(0, NULL);
	char want[64], got[64];
	static unsigned char seen[1024];
	int reused = 0;
	for (int i = 0; i < REUSES; i++) {
		int n = snprintf(want, sizeof(want), "file number %d", i);
		int fd = open(at("reuse"), O_CREAT | O_EXCL | O_WRONLY, 0644);
		CHECK(fd);
		assert_int_equal(write(fd, want, (size_t)n), n);
		struct stat sb;
		CHECK(fstat(fd, &sb));
		CHECK(close(fd));
		assert_true(sb.st_ino < sizeof(seen));
		reused += seen[sb.st_ino]++ > 0;
		for (int pass = 0; pass < 2; pass++) {
			fd = open(at("reuse"), O_RDONLY);
			CHECK(fd);
			memset(got, 0, sizeof(got));
			assert_int_equal(read(fd, got, sizeof(got)), n);
			CHECK(close(fd));
			assert_string_equal(got, want);
		}
		CHECK(unlink(at("reuse")));
	}
	assert_true(reused > 0); /* the case this is about did happen */
	/* A change through one descriptor is seen through another at once,
	 * cached or not: a write, a truncate, a punched hole. */
	int w = open(at("shared"), O_CREAT | O_RDWR, 0644);
	CHECK(w);
	assert_int_equal(pwrite(w, "abcdefgh", 8, 0), 8);
	int r = open(at("shared"), O_RDONLY);
	CHECK(r);
	assert_int_equal(pread(r, got, 8, 0), 8);
	assert_memory_equal(got, "abcdefgh", 8);
	assert_int_equal(pwrite(w, "XY", 2, 3), 2);
	assert_int_equal(pread(r, got, 8, 0), 8);
	assert_memory_equal(got, "abcXYfgh", 8);
	CHECK(ftruncate(w, 4));
	assert_int_equal(pread(r, got, 8, 0), 4);
	CHECK(ftruncate(w, 8));
	assert_int_equal(pread(r, got, 8, 0), 8);
	assert_memory_equal(got, "abcX\0\0\0\0", 8);
	CHECK(close(r));
	CHECK(close(w));
	mount_stop();
}

/* ---- 5. concurrent callers ------------------------------------------------- */

struct writer {
	int id, fd;
};

static void *writer_loop(void *arg)
{
	struct writer *w = arg;
	char block[4096];
	for (int i = 0; i < WRITES; i++) {
		memset(block, 'A' + (w->id * 7 + i) % 26, sizeof(block));
		if (write(w->fd, block, sizeof(block)) != (ssize_t)sizeof(block))
			return (void *)1;
		if (i % 10 == 0 && fsync(w->fd))
			return (void *)1;
	}
	return NULL;
}

/* Several threads write and read at once through the mount (whatever the
 * number of threads that serve it), and everything lands. */
static void test_concurrent(void **state)
{
	mount_start(0, NULL);
	struct writer w[WRITERS];
	pthread_t t[WRITERS];
	char name[32];
	for (int i = 0; i < WRITERS; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		w[i] = (struct writer){.id = i,
		                       .fd = open(at(name), O_CREAT | O_WRONLY | O_APPEND, 0644)};
		CHECK(w[i].fd);
		assert_int_equal(pthread_create(&t[i], NULL, writer_loop, &w[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++) {
		void *rc;
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_null(rc);
		CHECK(close(w[i].fd));
	}
	mount_stop();
	mount_start(0, NULL);
	char block[4096];
	for (int i = 0; i < WRITERS; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		int fd = open(at(name), O_RDONLY);
		CHECK(fd);
		for (int k = 0; k < WRITES; k++) {
			assert_int_equal(read(fd, block, sizeof(block)), (ssize_t)sizeof(block));
			assert_int_equal(block[0], 'A' + (i * 7 + k) % 26);
		}
		assert_int_equal(read(fd, block, sizeof(block)), 0);
		CHECK(close(fd));
	}
	mount_stop();
}

/* ---- 6. signals ------------------------------------------------------------ */

/* SIGTERM ends the daemon cleanly (exit 0, mount gone) whether it comes
 * while the daemon sleeps or just after a request, while it still polls
 * for the next one. */
static void test_sigterm(void **state)
{
	for (int late = 0; late < 2; late++) {
		mount_start(0, NULL);
		int fd = open(at("sig"), O_CREAT | O_WRONLY | O_TRUNC, 0644);
		CHECK(fd);
		assert_int_equal(write(fd, "x", 1), 1);
		CHECK(close(fd));
		if (late)
			sleep_ms(200);
		else
			CHECK(access(at("sig"), F_OK));
		assert_int_equal(kill(g.daemon, SIGTERM), 0);
		int st = 0, done = 0;
		for (int ms = 0; ms < 5000 && !done; ms += 5) {
			done = waitpid(g.daemon, &st, WNOHANG) == g.daemon;
			if (!done)
				sleep_ms(5);
		}
		if (!done)
			fail_msg("the daemon did not exit within 5 s of SIGTERM");
		g.daemon = 0;
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
		assert_false(is_mounted_at(g.mnt));
	}
}

int main(void)
{
	fuse_tests_require("test_fuse_fastpath");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sync_mode),  cmocka_unit_test(test_batch_mode),
	    cmocka_unit_test(test_setid),      cmocka_unit_test(test_page_cache),
	    cmocka_unit_test(test_concurrent), cmocka_unit_test(test_sigterm),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
