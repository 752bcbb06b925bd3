/*
 * fusetest.c - helpers shared by the FUSE mount and daemon tests (see
 * fusetest.h).
 */
#include "fusetest.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <mntent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

void fuse_tests_require(const char *prog)
{
	const char *why = NULL;
	if (geteuid() != 0)
		why = "not root (FUSE mounts need root here)";
	else if (access("/dev/fuse", R_OK | W_OK))
		why = "/dev/fuse is missing";
	if (why) {
		printf("SKIP: %s: %s; none of its tests ran\n", prog, why);
		exit(77);
	}
}

int run_cairn(const char *arg, ...)
{
	char *argv[16] = {"cairn"};
	va_list ap;
	va_start(ap, arg);
	for (int i = 1; arg && i < 15; i++, arg = va_arg(ap, const char *))
		argv[i] = (char *)arg;
	va_end(ap);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1); /* mkfs's greeting */
		execv(CAIRN_BIN, argv);
		_exit(127);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int is_mounted_at(const char *mnt)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	int found = 0;
	struct mntent *m;
	while (f && (m = getmntent(f)))
		found |= !strcmp(m->mnt_dir, mnt);
	if (f)
		endmntent(f);
	return found;
}

void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

void wait_for_mount(pid_t *daemon, const char *mnt)
{
	for (int ms = 0; ms < 10000; ms += 5) {
		if (is_mounted_at(mnt))
			return;
		int st;
		if (waitpid(*daemon, &st, WNOHANG) == *daemon) {
			*daemon = 0;
			fail_msg("cairn mount exited (status %d) before mounting", st);
		}
		sleep_ms(5);
	}
	fail_msg("%s did not show up in /proc/self/mounts", mnt);
}

pid_t spawn_cairn(uid_t uid, const char *arg, ...)
{
	char *argv[16] = {"cairn"};
	va_list ap;
	va_start(ap, arg);
	for (int i = 1; arg && i < 15; i++, arg = va_arg(ap, const char *))
		argv[i] = (char *)arg;
	va_end(ap);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		if (uid != 0 && (setgroups(0, NULL) || setgid(uid) || setuid(uid)))
			_exit(126);
		/* A daemon must not outlive a test that crashed: it would hold
		 * the volume and the output pipe of whoever runs the tests.
		 * (After setuid, which clears this.) */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(126);
		execv(CAIRN_BIN, argv);
		_exit(127);
	}
	return pid;
}

pid_t wait_bounded(pid_t pid, int *st, int ms)
{
	for (int waited = 0;; waited += 2) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r != 0 || waited >= ms)
			return r;
		sleep_ms(2);
	}
}

void daemon_stop(pid_t *pid)
{
	daemon_stop_with(pid, SIGTERM);
}

void daemon_stop_with(pid_t *pid, int sig)
{
	int st = 0;
	assert_true(*pid > 0);
	assert_int_equal(kill(*pid, sig), 0);
	if (wait_bounded(*pid, &st, 20000) != *pid) {
		kill_reap(pid);
		fail_msg("the daemon did not exit within 20 s of signal %d", sig);
	}
	*pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("the daemon ended with %s %d, expected exit 0",
		         WIFEXITED(st) ? "exit" : "signal",
		         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

void kill_reap(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

int scratch_volume(const char *tag, char *root, char *vol)
{
	snprintf(root, PATH_MAX, "/dev/shm/cairn-%s.XXXXXX", tag);
	/* 0755: tests that drop privileges must reach the volume's socket. */
	if (!mkdtemp(root) || chmod(root, 0755)) {
		printf("cannot make %s: %s\n", root, strerror(errno));
		return -1;
	}
	snprintf(vol, PATH_MAX, "%s/vol", root);
	if (run_cairn("mkfs", vol, "--media", "emul", "--log-size", "16M", "--fast-size", "64M",
	              NULL) != 0) {
		printf("cairn mkfs %s failed\n", vol);
		return -1;
	}
	return 0;
}

void scratch_remove(const char *root)
{
	if (!root[0] || getenv("CAIRN_TEST_KEEP"))
		return;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		printf("could not remove %s\n", root);
}
