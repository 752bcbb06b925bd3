/*
 * fusetest.h - helpers shared by the FUSE mount and daemon tests: running
 * the cairn command (CAIRN_BIN), waiting for a mount to appear, starting
 * and stopping a daemon with bounded waits.
 */
#ifndef CAIRN_FUSETEST_H
#define CAIRN_FUSETEST_H

#include <errno.h>
#include <string.h>
#include <sys/types.h>

/* Assertions that name the call and errno: CHECK for a call that must not
 * fail (a negative result), CHECK_ERRNO for one that must fail with e. */
#define CHECK(call)                                                                                \
	do {                                                                                       \
		if ((long)(call) < 0)                                                              \
			fail_msg("%s: %s", #call, strerror(errno));                                \
	} while (0)

#define CHECK_ERRNO(call, e)                                                                       \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		if (r_ != -1 || errno != (e))                                                      \
			fail_msg("%s: expected %s, got %ld (%s)", #call, strerror(e), r_,          \
			         strerror(errno));                                                 \
	} while (0)

/* Exits 77 (CTest: skipped) with a line saying so when the FUSE tests
 * cannot run here: not root, or no usable /dev/fuse.  Called first in
 * main(), so that a machine without FUSE shows every test of prog as not
 * run instead of passed; scripts/test.sh then fails unless told that
 * skipping is fine. */
void fuse_tests_require(const char *prog);

/* Runs CAIRN_BIN with the arguments (NULL-terminated, at most 14), its
 * standard output to /dev/null; returns its exit status (or -1). */
int run_cairn(const char *arg, ...);

/* Whether mnt is a mount point in /proc/self/mounts. */
int is_mounted_at(const char *mnt);

void sleep_ms(int ms);

/* Waits until the `cairn mount --foreground` daemon *daemon has mounted mnt;
 * fails the test if it exits first (then *daemon = 0) or after 10 s. */
void wait_for_mount(pid_t *daemon, const char *mnt);

/* Forks CAIRN_BIN with the arguments (NULL-terminated, at most 14) and
 * returns its pid at once.  With uid != 0 the child first drops to
 * uid/gid (no supplementary groups).  Its output goes where ours does;
 * it is killed if this process dies. */
pid_t spawn_cairn(uid_t uid, const char *arg, ...);

/* waitpid that gives up after ms: the pid on exit (status in *st), 0 on
 * timeout (the process is left running), -1 on error. */
pid_t wait_bounded(pid_t pid, int *st, int ms);

/* Sends sig to the daemon *pid and waits up to 20 s for it; fails the test
 * unless it exits with status 0 (SIGKILLs it after the timeout).  *pid = 0
 * afterwards. */
void daemon_stop(pid_t *pid);
/* The same with another signal (SIGINT, SIGHUP). */
void daemon_stop_with(pid_t *pid, int sig);

/* Kills (SIGKILL) and reaps *pid if it is > 0, for teardowns. */
void kill_reap(pid_t *pid);

/* A new directory /dev/shm/cairn-TAG.XXXXXX, mode 0755, in root
 * (PATH_MAX); vol = root/vol holds a new 64 MiB emul volume with a 16 MiB
 * log.  0, or -1 with a message. */
int scratch_volume(const char *tag, char *root, char *vol);

/* rm -rf root, unless CAIRN_TEST_KEEP is set. */
void scratch_remove(const char *root);

#endif
