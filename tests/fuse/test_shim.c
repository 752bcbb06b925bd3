/*
 * test_shim.c - the preload shim (libcairn-preload.so, `cairn run`) with
 * a real mount and real programs:
 *
 *   1. shim_prog's POSIX checks of writes, positions, dup, O_APPEND,
 *      ftruncate, fork, a reader in another process, a shared mapping and
 *      a signal handler's calls in the middle of native writes pass under
 *      `cairn run` with its writes made natively (no write system call;
 *      its truncates made while the daemon is stopped), and pass the same
 *      without the shim (the kernel's writes through the mount), and with
 *      the shim on a directory that is not cairn's (which it must leave to
 *      the kernel);
 *   2. kill -9 of a shimmed program in the middle of a stream of native
 *      writes, at three points: every write it acknowledged is in the file
 *      through the mount, and after the volume is unmounted and mounted
 *      again; the same for a program that writes through a stdio stream
 *      and acknowledges each record once fflush returned;
 *   3. `cairn run` refuses a --mount that is not a cairn mount and says
 *      so; a program that does not exist exits 127, as env's.
 * Skipped unless root with /dev/fuse.
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "fusetest.h"

static struct {
	char root[PATH_MAX], vol[PATH_MAX], mnt[PATH_MAX + 8];
	pid_t daemon;
} g;

static void mount_up(void)
{
	g.daemon = spawn_cairn(0, "mount", "--foreground", g.vol, g.mnt, NULL);
	wait_for_mount(&g.daemon, g.mnt);
}

static int group_setup(void **state)
{
	(void)state;
	if (scratch_volume("shim", g.root, g.vol))
		return -1;
	snprintf(g.mnt, sizeof(g.mnt), "%s/mnt", g.root);
	if (mkdir(g.mnt, 0755))
		return -1;
	mount_up();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (g.daemon > 0 && is_mounted_at(g.mnt))
		run_cairn("umount", g.mnt, NULL);
	kill_reap(&g.daemon);
	if (is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH); /* a daemon killed: never leave the mount */
	scratch_remove(g.root);
	return 0;
}

/* Runs argv (NULL-terminated) and returns its exit status, or -1. */
static int run(char *const argv[])
{
	pid_t p = fork();
	if (p == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	if (p < 0 || waitpid(p, &st, 0) != p)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void sub(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", g.mnt, name);
	if (mkdir(out, 0755) && errno != EEXIST)
		fail_msg("mkdir %s: %s", out, strerror(errno));
}

static void test_files(void **state)
{
	(void)state;
	char d1[PATH_MAX], d2[PATH_MAX], plain[PATH_MAX];
	sub(d1, "native");
	sub(d2, "kernel");
	/* shim_prog stops the daemon around calls that must make no request. */
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)g.daemon);
	setenv("CAIRN_TEST_DAEMON_PID", pid, 1);
	char *shimmed[] = {CAIRN_BIN, "run", "--", SHIM_PROG, "files", d1, "native", NULL};
	assert_int_equal(run(shimmed), 0);
	char *bare[] = {SHIM_PROG, "files", d2, "kernel", NULL};
	assert_int_equal(run(bare), 0);
	snprintf(plain, sizeof(plain), "%s/plain", g.root);
	assert_int_equal(mkdir(plain, 0755), 0);
	char *elsewhere[] = {CAIRN_BIN, "run", "--", SHIM_PROG, "files", plain, "kernel", NULL};
	assert_int_equal(run(elsewhere), 0);
}

/* The records shim_prog's `ack` writes: record i, 512 bytes at i * 512. */
static void record(uint8_t *p, unsigned seed)
{
	for (size_t i = 0; i < 512; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

static void check_acked(const char *path, int acked)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	uint8_t want[512], got[512];
	for (int i = 0; i < acked; i++) {
		record(want, (unsigned)i);
		if (pread(fd, got, 512, (off_t)i * 512) != 512 || memcmp(got, want, 512))
			fail_msg("%s: acknowledged record %d of %d is missing", path, i, acked);
	}
	close(fd);
}

/* Starts `cairn run -- shim_prog how path n` (how: ack or ackf); its
 * acknowledgements come on *rd. */
static pid_t start_acks(const char *how, const char *path, int *rd)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(CAIRN_BIN, CAIRN_BIN, "run", "--", SHIM_PROG, how, path, "1000000",
		      (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	*rd = p[0];
	return pid;
}

/* Reads acknowledgements, `from` of them read already, until `until`
 * came (or the end); how many came in all. */
static int read_acks(int rd, int from, int until)
{
	int n = from, i;
	while (n < until && read(rd, &i, sizeof(i)) == sizeof(i)) {
		if (i != n)
			fail_msg("acknowledgement %d out of order (%d)", n, i);
		n++;
	}
	return n;
}

/* kill -9 of `shim_prog how` at each of the points; every acknowledged
 * record is in its file, then and after the volume went down and came
 * back. */
static void kill_at(const char *how, const int *points, int npoints)
{
	int acked[8];
	char path[8][PATH_MAX];
	assert_true(npoints <= 8);
	for (int k = 0; k < npoints; k++) {
		snprintf(path[k], PATH_MAX, "%s/%s%d", g.mnt, how, k);
		int rd;
		pid_t pid = start_acks(how, path[k], &rd);
		int n = read_acks(rd, 0, points[k]);
		assert_int_equal(n, points[k]);
		kill(pid, SIGKILL);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		n = read_acks(rd, n, INT32_MAX); /* what it acknowledged before it died */
		close(rd);
		acked[k] = n;
		check_acked(path[k], n);
	}
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	int st;
	assert_int_equal(wait_bounded(g.daemon, &st, 20000), g.daemon);
	g.daemon = 0;
	mount_up();
	for (int k = 0; k < npoints; k++)
		check_acked(path[k], acked[k]);
}

static void test_kill(void **state)
{
	(void)state;
	static const int points[] = {1, 3000, 20000};
	kill_at("ack", points, 3);
}

static void test_kill_stdio(void **state)
{
	(void)state;
	static const int points[] = {1, 5000};
	kill_at("ackf", points, 2);
}

static void test_run_refuses(void **state)
{
	(void)state;
	char *not_cairn[] = {CAIRN_BIN, "run", "--mount", g.root, "--", "/bin/true", NULL};
	assert_int_equal(run(not_cairn), 2);
	char *missing[] = {CAIRN_BIN, "run", "--", "/nonexistent/program", NULL};
	assert_int_equal(run(missing), 127);
	char *on_mount[] = {CAIRN_BIN, "run", "--mount", g.mnt, "--", "/bin/true", NULL};
	assert_int_equal(run(on_mount), 0);
}

int main(int argc, char **argv)
{
	(void)argc;
	fuse_tests_require(argv[0]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_files),
	    cmocka_unit_test(test_kill),
	    cmocka_unit_test(test_kill_stdio),
	    cmocka_unit_test(test_run_refuses),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
