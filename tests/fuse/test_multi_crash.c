/*
 * test_multi_crash.c - processes attached to a volume's daemon die, and
 * the daemon dies under them.
 *
 *   1. kill -9 of a client in the middle of a loop of appends, each one
 *      reported over a pipe when it returned: the daemon goes on serving,
 *      and every reported append is there, through a new handle and, after
 *      the daemon stopped, through a local mount;
 *   2. a client that dies (kill -9) or exits without closing leaves no
 *      file open: the space of a file it had open after unlinking it comes
 *      back;
 *   3. kill -9 of the daemon while a client loops on writes: the client's
 *      call in flight and every later one fail with EIO within seconds,
 *      as do those of an idle handle; a local mount and then a new daemon
 *      (over the dead one's socket) both show every reported write;
 *   4. one client creates files and another writes into each as soon as it
 *      is told of it; the daemon is killed: every write the second client
 *      was told had succeeded is there, in the first client's file, with
 *      the first client's bytes (a write never survives without the
 *      create it depended on, whichever client made each).
 * fsck finds the volume clean after each.  Skipped unless root with
 * /dev/fuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "multitest.h"

#define REC 4096          /* bytes of each append */
#define MAX_RECS 3000     /* a writer appends at most this many (12 MiB) */
#define KILL_AFTER_MS 250 /* or after KILL_AFTER_ACKS acknowledgements */
#define KILL_AFTER_ACKS 1500
#define NAME_EVERY 16     /* a writer creates a name every so many appends */
#define ORPHAN (8u << 20) /* bytes of the unlinked open file */

static struct multi_scratch g;

static int group_setup(void **state)
{
	return multi_setup(&g, "mcrash");
}

static int group_teardown(void **state)
{
	return multi_teardown(&g);
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Appends stamp(who, i) to `file` and creates `dir`/n<i> every NAME_EVERY
 * appends, reporting i on `ack` after both returned.  Past MAX_RECS it
 * only stats the file.  Returns (status for _exit) at the first failure:
 * 0 if that failure was EIO and every later call fails with EIO at once. */
static int writer(int who, const char *file, const char *dir, int ack)
{
	cairn_fs *fs = cairn_attach(g.vol);
	if (!fs)
		C_FAIL("cairn_attach: %s", strerror(errno));
	int fd = cairn_open(fs, file, O_CREAT | O_WRONLY | O_APPEND, 0644);
	if (fd < 0)
		C_FAIL("open %s: %s", file, strerror(errno));
	char buf[REC], path[PATH_MAX];
	struct stat st;
	for (uint64_t i = 0;; i++) {
		if (i < MAX_RECS) {
			stamp(buf, REC, (uint64_t)who, i);
			if (cairn_write(fs, fd, buf, REC) != REC)
				break;
			if (i % NAME_EVERY == 0) {
				snprintf(path, sizeof(path), "%s/n%llu", dir,
				         (unsigned long long)i);
				int nfd = cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, 0644);
				if (nfd < 0 || cairn_close(fs, nfd))
					break;
			}
			if (write(ack, &i, sizeof(i)) != sizeof(i))
				C_FAIL("ack: %s", strerror(errno));
		} else if (cairn_fstat(fs, fd, &st)) {
			break;
		}
	}
	/* The daemon is gone (the only way out of the loop that is not a
	 * failure): this call and every later one fail with EIO, quickly. */
	if (errno != EIO)
		C_FAIL("the call the daemon's death interrupted: %s, expected EIO",
		       strerror(errno));
	watchdog(10, "calls after the daemon died");
	char b;
	C_ERR(cairn_write(fs, fd, buf, REC), EIO);
	C_ERR(cairn_pread(fs, fd, &b, 1, 0), EIO);
	C_ERR(cairn_fstat(fs, fd, &st), EIO);
	C_ERR(cairn_stat(fs, file, &st), EIO);
	C_ERR(cairn_open(fs, file, O_RDONLY), EIO);
	C_ERR(cairn_mkdir(fs, "/after-death", 0755), EIO);
	C_ERR(cairn_sync(fs), EIO);
	errno = 0;
	C_TRUE(!cairn_opendir(fs, "/") && errno == EIO);
	C_ERR(cairn_close(fs, fd), EIO);
	C_ERR(cairn_stat(fs, file, &st), EIO); /* still */
	cairn_unmount(fs);                     /* returns, whatever it says */
	_exit(0);
}

/* Waits for acknowledgements until KILL_AFTER_MS passed or KILL_AFTER_ACKS
 * came; returns how many came (the writer must still be running). */
static uint64_t await_acks(int ack, pid_t writer_pid)
{
	uint64_t i, n = 0;
	int64_t start = now_ms();
	while (now_ms() - start < KILL_AFTER_MS && n < KILL_AFTER_ACKS) {
		ssize_t r = read(ack, &i, sizeof(i));
		if (r != sizeof(i)) {
			int st;
			if (waitpid(writer_pid, &st, WNOHANG) == writer_pid)
				fail_msg("the writer ended early (status %#x)", st);
			fail_msg("ack pipe: %zd", r);
		}
		assert_int_equal(i, n);
		n++;
	}
	return n;
}

/* Reads what is left in the pipe after the writer died; the count of
 * acknowledgements in all. */
static uint64_t drain_acks(int ack, uint64_t n)
{
	uint64_t i;
	while (read(ack, &i, sizeof(i)) == sizeof(i)) {
		assert_int_equal(i, n);
		n++;
	}
	close(ack);
	return n;
}

/* Every acknowledged append of `who` is whole in `file`; only the one in
 * flight may follow it, whole too; so are the names. */
static void verify_appends(cairn_fs *fs, int who, const char *file, const char *dir, uint64_t acked)
{
	int fd = cairn_open(fs, file, O_RDONLY);
	if (fd < 0)
		fail_msg("open %s: %s", file, strerror(errno));
	struct stat st;
	CHECK(cairn_fstat(fs, fd, &st));
	if (st.st_size % REC || (uint64_t)st.st_size / REC < acked ||
	    (uint64_t)st.st_size / REC > acked + 1)
		fail_msg("%s holds %lld bytes after %llu acknowledged appends of %d", file,
		         (long long)st.st_size, (unsigned long long)acked, REC);
	char buf[REC];
	for (uint64_t i = 0; i < (uint64_t)st.st_size / REC; i++) {
		assert_int_equal(pread_full(fs, fd, buf, REC, (off_t)(i * REC)), REC);
		if (!stamped(buf, REC, (uint64_t)who, i))
			fail_msg("%s: append %llu is not what was written", file,
			         (unsigned long long)i);
	}
	CHECK(cairn_close(fs, fd));
	char path[PATH_MAX];
	for (uint64_t i = 0; i < acked; i += NAME_EVERY) {
		snprintf(path, sizeof(path), "%s/n%llu", dir, (unsigned long long)i);
		if (cairn_stat(fs, path, &st))
			fail_msg("%s: %s (acknowledged)", path, strerror(errno));
	}
}

static cairn_fs *mount_local(void)
{
	cairn_fs *fs = cairn_mount(g.vol, &(struct cairn_mount_opts){0});
	if (!fs)
		fail_msg("cairn_mount: %s", cairn_last_error());
	return fs;
}

/* ---- 1. a client killed ----------------------------------------------------- */

static void test_client_killed(void **state)
{
	watchdog(60, "test_client_killed");
	cairn_fs *fs;
	serve_and_attach(g.vol, &g.daemon, &fs);
	CHECK(cairn_mkdir(fs, "/c1", 0755));
	int ack[2];
	CHECK(pipe(ack));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ack[0]);
		watchdog(30, "the writer");
		writer(1, "/c1/app", "/c1", ack[1]);
		_exit(1); /* the daemon never dies here */
	}
	close(ack[1]);
	uint64_t seen = await_acks(ack[0], pid);
	assert_int_equal(kill(pid, SIGKILL), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	uint64_t acked = drain_acks(ack[0], seen);
	print_message("client killed after %llu acknowledged appends\n", (unsigned long long)acked);
	assert_true(acked > 0 && acked < MAX_RECS);

	/* The daemon lives on and serves; a new handle sees every append. */
	assert_int_equal(waitpid(g.daemon, &st, WNOHANG), 0);
	verify_appends(fs, 1, "/c1/app", "/c1", acked);
	cairn_fs *fresh = attach_wait(g.vol, &g.daemon);
	verify_appends(fresh, 1, "/c1/app", "/c1", acked);
	/* It can go on writing the file the dead client had open. */
	int fd = cairn_open(fresh, "/c1/app", O_WRONLY | O_APPEND);
	CHECK(fd);
	CHECK(cairn_close(fresh, fd));
	CHECK(cairn_unmount(fresh));
	CHECK(cairn_unmount(fs));
	daemon_stop(&g.daemon);
	alarm(0);

	fs = mount_local();
	verify_appends(fs, 1, "/c1/app", "/c1", acked);
	CHECK(cairn_unmount(fs));
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* ---- 2. a dead client's open files are closed ------------------------------ */

/* Creates `path`, fills it with ORPHAN bytes, unlinks it while open,
 * says so on `ready`, then waits for a byte on `go` and exits without
 * closing or detaching (unless it is killed first). */
static void orphan_holder(const char *path, int ready, int go)
{
	watchdog(30, "the orphan holder");
	cairn_fs *fs = cairn_attach(g.vol);
	if (!fs)
		C_FAIL("cairn_attach: %s", strerror(errno));
	int fd;
	C_OK(fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_RDWR, 0644));
	static char buf[1 << 20];
	memset(buf, 'o', sizeof(buf));
	for (unsigned i = 0; i < ORPHAN / sizeof(buf); i++)
		C_TRUE(cairn_write(fs, fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	C_OK(cairn_unlink(fs, path));
	/* Unlinked, it is still there for its holder. */
	C_TRUE(cairn_pread(fs, fd, buf, 1, ORPHAN - 1) == 1 && buf[0] == 'o');
	C_TRUE(write(ready, "r", 1) == 1);
	char c;
	C_TRUE(read(go, &c, 1) == 1);
	_exit(0);
}

/* Free blocks of the shared area, once the log is digested into it (the
 * count leaves out what the log holds). */
static uint64_t free_blocks(cairn_fs *fs)
{
	struct statvfs sv;
	CHECK(cairn_digest(fs));
	CHECK(cairn_statvfs(fs, "/", &sv));
	return (uint64_t)sv.f_bfree * sv.f_frsize / 4096;
}

static void test_dead_client_closes(void **state)
{
	watchdog(60, "test_dead_client_closes");
	cairn_fs *fs;
	serve_and_attach(g.vol, &g.daemon, &fs);
	for (int how = 0; how < 2; how++) {
		int ready[2], go[2];
		CHECK(pipe(ready));
		CHECK(pipe(go));
		uint64_t before = free_blocks(fs);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			orphan_holder(how ? "/orphan-killed" : "/orphan-exited", ready[1], go[0]);
		}
		close(ready[1]);
		close(go[0]);
		char c;
		if (read(ready[0], &c, 1) != 1)
			fail_msg("the orphan holder failed before unlinking");
		close(ready[0]);
		uint64_t held = free_blocks(fs);
		if (held + ORPHAN / 4096 > before)
			fail_msg("%llu blocks free before the file, %llu with it open and unlinked",
			         (unsigned long long)before, (unsigned long long)held);
		if (how)
			assert_int_equal(kill(pid, SIGKILL), 0);
		else
			assert_int_equal(write(go[1], "g", 1), 1);
		close(go[1]);
		int st;
		assert_int_equal(wait_bounded(pid, &st, 10000), pid);
		if (how ? !WIFSIGNALED(st) : !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("the orphan holder ended with status %#x", st);
		/* Its descriptor goes with it, and so does the file's space. */
		uint64_t now = 0;
		for (int ms = 0; ms < 10000; ms += 20) {
			now = free_blocks(fs);
			if (now >= held + ORPHAN / 4096)
				break;
			sleep_ms(20);
		}
		if (now < held + ORPHAN / 4096)
			fail_msg("a client that %s kept its unlinked file: %llu blocks free, "
			         "%llu while it lived, %llu before",
			         how ? "was killed" : "exited", (unsigned long long)now,
			         (unsigned long long)held, (unsigned long long)before);
	}
	CHECK(cairn_unmount(fs));
	daemon_stop(&g.daemon);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* ---- 3. the daemon killed ------------------------------------------------- */

static void test_daemon_killed(void **state)
{
	watchdog(90, "test_daemon_killed");
	cairn_fs *fs, *idle;
	serve_and_attach(g.vol, &g.daemon, &fs);
	CHECK(cairn_mkdir(fs, "/c3", 0755));
	idle = attach_wait(g.vol, &g.daemon);
	int ifd = cairn_open(idle, "/c3", O_RDONLY | O_DIRECTORY);
	CHECK(ifd);
	int ack[2];
	CHECK(pipe(ack));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ack[0]);
		/* The loop runs KILL_AFTER_MS before the kill: 30 s is a hang. */
		watchdog(30, "the writer's call when the daemon died");
		writer(3, "/c3/app", "/c3", ack[1]);
	}
	close(ack[1]);
	uint64_t seen = await_acks(ack[0], pid);
	assert_int_equal(kill(g.daemon, SIGKILL), 0);
	int st;
	assert_int_equal(wait_bounded(g.daemon, &st, 10000), g.daemon);
	g.daemon = 0;
	int64_t killed = now_ms();
	/* The writer sees EIO, now and after; writer() says what failed. */
	child_ok(pid, 20000, "the writer when the daemon died");
	print_message("the writer's calls failed %lld ms after the kill\n",
	              (long long)(now_ms() - killed));
	uint64_t acked = drain_acks(ack[0], seen);
	print_message("daemon killed after %llu acknowledged appends\n", (unsigned long long)acked);
	assert_true(acked > 0);
	/* So does the handle that was idle, at once. */
	struct stat sb;
	int64_t t0 = now_ms();
	CHECK_ERRNO(cairn_stat(idle, "/c3", &sb), EIO);
	CHECK_ERRNO(cairn_fstat(idle, ifd, &sb), EIO);
	CHECK_ERRNO(cairn_mkdir(idle, "/c3/x", 0755), EIO);
	assert_true(now_ms() - t0 < 5000);
	CHECK_ERRNO(cairn_stat(fs, "/c3", &sb), EIO);
	cairn_unmount(idle);
	cairn_unmount(fs);
	CHECK_PTR_ERRNO(cairn_attach(g.vol), ENOENT); /* nobody serves it now */

	/* The volume, mounted here (its lock went with the dead daemon),
	 * holds every acknowledged append ... */
	fs = mount_local();
	verify_appends(fs, 3, "/c3/app", "/c3", acked);
	CHECK(cairn_unmount(fs));
	/* ... and so does a new daemon, which takes over the dead one's
	 * socket name. */
	serve_and_attach(g.vol, &g.daemon, &fs);
	verify_appends(fs, 3, "/c3/app", "/c3", acked);
	int fd = cairn_open(fs, "/c3/after", O_CREAT | O_WRONLY, 0644);
	CHECK(fd);
	assert_int_equal(cairn_write(fs, fd, "again", 5), 5);
	CHECK(cairn_close(fs, fd));
	CHECK(cairn_unmount(fs));
	daemon_stop(&g.daemon);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
	fs = mount_local();
	CHECK(cairn_stat(fs, "/c3/after", &sb));
	assert_int_equal(sb.st_size, 5);
	CHECK(cairn_unmount(fs));
}

/* ---- 4. a client's write into another client's file ----------------------- */

/* Client A creates files and passes each number to client B, which writes
 * into that file: B's write depends on A's create.  Whatever the daemon's
 * death keeps, it never keeps B's write without A's file and A's bytes. */
static void dep_creator(int to_b)
{
	cairn_fs *fs = cairn_attach(g.vol);
	if (!fs)
		C_FAIL("cairn_attach: %s", strerror(errno));
	/* A creates in its own log, which needs no daemon until it runs out
	 * of inode numbers set aside: it may outlive B, whose opens are
	 * round trips.  Its pipe to B then says EPIPE (the library's own
	 * sockets never raise SIGPIPE). */
	sigset_t pipe_sig;
	sigemptyset(&pipe_sig);
	sigaddset(&pipe_sig, SIGPIPE);
	sigprocmask(SIG_BLOCK, &pipe_sig, NULL);
	char path[64], text[16];
	for (uint64_t k = 0;; k++) {
		snprintf(path, sizeof(path), "/c4/f%llu", (unsigned long long)k);
		snprintf(text, sizeof(text), "A%07llu", (unsigned long long)k);
		int fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0 || cairn_write(fs, fd, text, 8) != 8 || cairn_close(fs, fd))
			break;
		if (write(to_b, &k, sizeof(k)) != sizeof(k)) {
			if (errno != EPIPE)
				C_FAIL("pipe to B: %s", strerror(errno));
			struct stat st;
			C_ERR(cairn_stat(fs, "/c4", &st), EIO); /* a round trip */
			errno = EIO;
			break;
		}
	}
	if (errno != EIO)
		C_FAIL("A: %s, expected EIO once the daemon died", strerror(errno));
	_exit(0);
}

static void dep_writer(int from_a, int ack)
{
	cairn_fs *fs = cairn_attach(g.vol);
	if (!fs)
		C_FAIL("cairn_attach: %s", strerror(errno));
	char path[64];
	uint64_t k;
	while (read(from_a, &k, sizeof(k)) == sizeof(k)) {
		snprintf(path, sizeof(path), "/c4/f%llu", (unsigned long long)k);
		int fd = cairn_open(fs, path, O_WRONLY);
		if (fd < 0 || cairn_pwrite(fs, fd, "B", 1, 8) != 1 || cairn_close(fs, fd))
			break;
		if (write(ack, &k, sizeof(k)) != sizeof(k))
			C_FAIL("ack: %s", strerror(errno));
	}
	if (errno != EIO)
		C_FAIL("B: %s, expected EIO once the daemon died", strerror(errno));
	_exit(0);
}

static void test_dependent_writes(void **state)
{
	watchdog(90, "test_dependent_writes");
	cairn_fs *fs;
	serve_and_attach(g.vol, &g.daemon, &fs);
	CHECK(cairn_mkdir(fs, "/c4", 0755));
	CHECK(cairn_unmount(fs));
	int a2b[2], ack[2];
	CHECK(pipe(a2b));
	CHECK(pipe(ack));
	pid_t a = fork();
	assert_true(a >= 0);
	if (a == 0) {
		close(a2b[0]);
		close(ack[0]);
		close(ack[1]);
		watchdog(30, "client A");
		dep_creator(a2b[1]);
	}
	pid_t b = fork();
	assert_true(b >= 0);
	if (b == 0) {
		close(a2b[1]);
		close(ack[0]);
		watchdog(30, "client B");
		dep_writer(a2b[0], ack[1]);
	}
	close(a2b[0]);
	close(a2b[1]);
	close(ack[1]);
	uint64_t seen = await_acks(ack[0], b);
	assert_int_equal(kill(g.daemon, SIGKILL), 0);
	int st;
	assert_int_equal(wait_bounded(g.daemon, &st, 10000), g.daemon);
	g.daemon = 0;
	child_ok(a, 20000, "client A when the daemon died");
	child_ok(b, 20000, "client B when the daemon died");
	uint64_t acked = drain_acks(ack[0], seen);
	print_message("daemon killed after %llu acknowledged dependent writes\n",
	              (unsigned long long)acked);
	assert_true(acked > 0);

	fs = mount_local();
	char path[64], want[16], got[16];
	for (uint64_t k = 0; k < acked; k++) {
		snprintf(path, sizeof(path), "/c4/f%llu", (unsigned long long)k);
		snprintf(want, sizeof(want), "A%07lluB", (unsigned long long)k);
		int fd = cairn_open(fs, path, O_RDONLY);
		if (fd < 0)
			fail_msg("%s: %s, though B's write into it was acknowledged", path,
			         strerror(errno));
		memset(got, 0, sizeof(got));
		assert_int_equal(pread_full(fs, fd, got, 9, 0), 9);
		if (memcmp(got, want, 9))
			fail_msg("%s holds \"%.9s\", expected \"%.9s\"", path, got, want);
		CHECK(cairn_close(fs, fd));
	}
	CHECK(cairn_unmount(fs));
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

int main(int argc, char **argv)
{
	fuse_tests_require(argv[0]);
	/* A client whose daemon died must not be killed by SIGPIPE: leave it
	 * at its default so that the test sees it if it happens. */
	signal(SIGPIPE, SIG_DFL);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_killed),
	    cmocka_unit_test(test_dead_client_closes),
	    cmocka_unit_test(test_daemon_killed),
	    cmocka_unit_test(test_dependent_writes),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
