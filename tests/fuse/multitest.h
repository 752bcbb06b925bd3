/*
 * multitest.h - what the tests of the volume daemon share (test_multi_*):
 * assertions that name errno, attaching with a bounded wait, a watchdog
 * that fails a hung call instead of hanging CI, and the byte patterns the
 * writers stamp so that a reader can tell which write a block came from.
 *
 * Header only: it calls cairn_attach, which the other FUSE tests do not
 * link against.
 */
#ifndef CAIRN_MULTITEST_H
#define CAIRN_MULTITEST_H

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cairn.h"
#include "fusetest.h"

#ifndef CAIRN_BIN
#error "CAIRN_BIN must name the cairn command"
#endif

/* The same for calls that return a pointer (NULL on failure). */
#define CHECK_PTR_ERRNO(call, e)                                                                   \
	do {                                                                                       \
		errno = 0;                                                                         \
		void *p_ = (void *)(call);                                                         \
		if (p_ || errno != (e))                                                            \
			fail_msg("%s: expected NULL and %s, got %p (%s)", #call, strerror(e), p_,  \
			         strerror(errno));                                                 \
	} while (0)

/* Checks for forked children, where cmocka cannot report: a failure says
 * which line and call, and ends the child with status 1. */
#define C_FAIL(...)                                                                                \
	do {                                                                                       \
		fprintf(stderr, "child %d (uid %d), line %d: ", (int)getpid(), (int)getuid(),      \
		        __LINE__);                                                                 \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		_exit(1);                                                                          \
	} while (0)
#define C_OK(call)                                                                                 \
	do {                                                                                       \
		errno = 0;                                                                         \
		if ((long)(call) < 0)                                                              \
			C_FAIL("%s: %s", #call, strerror(errno));                                  \
	} while (0)
#define C_ERR(call, e)                                                                             \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		if (r_ != -1 || errno != (e))                                                      \
			C_FAIL("%s: expected %s, got %ld (%s)", #call, strerror(e), r_,            \
			       strerror(errno));                                                   \
	} while (0)
#define C_TRUE(cond)                                                                               \
	do {                                                                                       \
		if (!(cond))                                                                       \
			C_FAIL("%s is false", #cond);                                              \
	} while (0)

/* Waits up to ms for the child pid; fails the test unless it exited 0. */
static inline void child_ok(pid_t pid, int ms, const char *what)
{
	int st = 0;
	if (wait_bounded(pid, &st, ms) != pid) {
		kill_reap(&pid);
		fail_msg("%s: did not finish within %d ms", what, ms);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s: %s %d", what, WIFEXITED(st) ? "exit status" : "killed by signal",
		         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* A call that hangs must fail the test: SIGALRM prints what was running
 * and ends the process (a child: with status 99).  In the process that
 * called watchdog_cleanup, it first kills the daemon and detaches the
 * mount named there, which a teardown would otherwise do. */
static const char *watchdog_what = "";
static pid_t watchdog_owner, *watchdog_daemon;
static const char *watchdog_mnt;
static inline void watchdog_fired(int sig)
{
	(void)sig;
	const char *a = "TIMEOUT: hung in ";
	(void)!write(2, a, strlen(a));
	(void)!write(2, watchdog_what, strlen(watchdog_what));
	(void)!write(2, "\n", 1);
	if (watchdog_owner == getpid()) {
		if (watchdog_daemon && *watchdog_daemon > 0)
			kill(*watchdog_daemon, SIGKILL);
		if (watchdog_mnt)
			umount2(watchdog_mnt, MNT_DETACH);
	}
	_exit(99);
}
static inline void watchdog(unsigned seconds, const char *what)
{
	watchdog_what = what;
	signal(SIGALRM, watchdog_fired);
	alarm(seconds);
}
static inline void watchdog_cleanup(pid_t *daemon, const char *mnt)
{
	watchdog_owner = getpid();
	watchdog_daemon = daemon;
	watchdog_mnt = mnt;
}

/* Attaches to path, retrying while no daemon answers yet (ENOENT) for up
 * to 10 s; fails at once on another error or when *daemon (if > 0) exits. */
static inline cairn_fs *attach_wait(const char *path, pid_t *daemon)
{
	for (int ms = 0; ms < 10000; ms += 5) {
		errno = 0;
		cairn_fs *fs = cairn_attach(path);
		if (fs)
			return fs;
		if (errno != ENOENT)
			fail_msg("cairn_attach(%s): %s (%s)", path, strerror(errno),
			         cairn_last_error());
		int st;
		if (daemon && *daemon > 0 && waitpid(*daemon, &st, WNOHANG) == *daemon) {
			*daemon = 0;
			fail_msg("the daemon exited (status %#x) before serving %s", st, path);
		}
		sleep_ms(5);
	}
	fail_msg("no daemon served %s within 10 s", path);
	return NULL;
}

/* Starts `cairn serve VOL` as *daemon and waits until it answers; first
 * kills a daemon that a failed test left in *daemon, which would answer
 * in its place. */
static inline void serve_and_attach(const char *vol, pid_t *daemon, cairn_fs **fs)
{
	kill_reap(daemon);
	*daemon = spawn_cairn(0, "serve", vol, NULL);
	assert_true(*daemon > 0);
	*fs = attach_wait(vol, daemon);
}

/* Block `index` of writer `who`: its first 16 bytes say who and which, the
 * rest is a byte that depends on both, so a torn or misplaced block shows. */
static inline void stamp(char *buf, size_t len, uint64_t who, uint64_t index)
{
	memset(buf, (int)((who * 131 + index * 7 + 1) & 0xff), len);
	if (len >= 16) {
		memcpy(buf, &who, 8);
		memcpy(buf + 8, &index, 8);
	}
}

/* Whether buf holds stamp(who, index). */
static inline int stamped(const char *buf, size_t len, uint64_t who, uint64_t index)
{
	char want[65536];
	if (len > sizeof(want))
		return 0;
	stamp(want, len, who, index);
	return !memcmp(buf, want, len);
}

/* Reads exactly len bytes at off through fs, looping over short reads;
 * the count read. */
static inline ssize_t pread_full(cairn_fs *fs, int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = cairn_pread(fs, fd, (char *)buf + got, len - got, off + (off_t)got);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* The scratch volume and the daemon of a test program, made and removed
 * by its group setup and teardown. */
struct multi_scratch {
	char root[PATH_MAX], vol[PATH_MAX];
	pid_t daemon;
};

static inline int multi_setup(struct multi_scratch *m, const char *tag)
{
	umask(0);
	watchdog_cleanup(&m->daemon, NULL);
	return scratch_volume(tag, m->root, m->vol);
}

static inline int multi_teardown(struct multi_scratch *m)
{
	alarm(0);
	kill_reap(&m->daemon);
	scratch_remove(m->root);
	return 0;
}

#endif
