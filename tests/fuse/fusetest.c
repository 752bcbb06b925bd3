/*
 * fusetest.c - helpers shared by the FUSE mount tests (see fusetest.h).
 */
#include "fusetest.h"

#include <fcntl.h>
#include <mntent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
