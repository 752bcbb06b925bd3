/*
 * fuse_keeper.c - the keeper of a mount's FUSE connection: a small process
 * the daemon starts (`cairn keeper`) that ends the connection when the
 * daemon dies without doing so.
 *
 * Owns: the keeper process and the pipe that tells it the daemon is done.
 * May call: libc, Linux's fusectl file system (/sys/fs/fuse/connections).
 *
 * Why: the kernel ends a FUSE connection when the last descriptor of its
 * /dev/fuse goes, which for a killed daemon is when its last thread has
 * exited.  A thread of the daemon that tells the kernel to forget a name
 * (fuse_lowlevel_notify_inval_entry, for a client's change) waits in the
 * kernel, without a way to be interrupted, for the lock of the name's
 * directory; a process creating or looking up a name there holds that
 * lock while it waits for the daemon's answer.  Killed with such a notice
 * in flight, the daemon's other threads go, that one cannot, the
 * connection stays, and the process holding the lock waits for an answer
 * that never comes: every program using the mount hangs, the volume's
 * lock stays held, and kill -9 frees none of them.  Writing to the
 * connection's `abort` file ends it from outside: the waiting requests
 * fail, the lock is let go, the notice returns, and the daemon's last
 * thread exits.  The keeper writes it when the daemon's main thread has
 * died (a zombie) while another of its threads lives on, and goes away
 * without a word when the daemon says it is done or when the daemon's
 * last descriptor of the pipe closes (it died whole: the kernel ended the
 * connection itself).  A stopped daemon (SIGSTOP) is left alone.
 *
 * The keeper is the cairn program again (`cairn keeper`, which no one
 * else calls), in a session of its own: a signal to the daemon, to its
 * process group, or to the processes whose command line names the mount
 * (`pkill -f "cairn mount VOL"`) does not reach it.  It starts once the
 * daemon has let go of the terminal, so that it never holds the output
 * of the command that mounted (mount(8) reads its helper's to the end).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <syslog.h>
#include <unistd.h>

#include "fuse/fuse_internal.h"
#include "util/mountinfo.h"

#define FUSECTL "/sys/fs/fuse/connections"
#define FUSECTL_MAGIC 0x65735543 /* statfs's f_type of a fusectl mount */
#define KEEPER_LOOK_MS 200       /* how often the keeper looks at the daemon */

/* The device number of the newest cairn mount at mp, from
 * /proc/self/mountinfo rather than a stat of mp, which would ask this very
 * daemon before it serves; 0 if there is none. */
static dev_t mount_dev(const char *mp)
{
	FILE *t = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	dev_t dev = 0;
	while (t && fgets(line, sizeof(line), t)) {
		char *dir;
		dev_t d;
		line[strcspn(line, "\n")] = '\0';
		if (mountinfo_cairn_line(line, &dir, &d) && !strcmp(dir, mp))
			dev = d;
	}
	if (t)
		fclose(t);
	return dev;
}

/* The connection's abort file, fusectl mounted first if it is not (as
 * root); 0, or -1 when there is none to write. */
static int abort_path(const char *mp, char *path, size_t size)
{
	dev_t dev = mount_dev(mp);
	if (!dev)
		return -1;
	snprintf(path, size, FUSECTL "/%u/abort", (unsigned)dev);
	struct statfs sf;
	if ((statfs(FUSECTL, &sf) || sf.f_type != FUSECTL_MAGIC) &&
	    mount("fusectl", FUSECTL, "fusectl", 0, NULL))
		return -1;
	return access(path, W_OK) == 0 ? 0 : -1;
}

/* Whether the daemon's main thread has exited: its state in stat (the
 * daemon's /proc/PID/stat) is Z or X, or the process is gone.  Only calls
 * safe in the child of a threaded process. */
static int main_thread_dead(const char *stat)
{
	char buf[512];
	int fd = open(stat, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')'); /* the name may hold spaces */
	return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

static void keep(int done, const char *stat, const char *abort_file, const char *said)
{
	for (;;) {
		struct pollfd p = {.fd = done, .events = POLLIN};
		int n = poll(&p, 1, KEEPER_LOOK_MS);
		if (n > 0 || (n < 0 && errno != EINTR))
			_exit(0); /* done, or the daemon is gone whole */
		if (n == 0 && main_thread_dead(stat)) {
			int fd = open(abort_file, O_WRONLY | O_CLOEXEC);
			if (fd >= 0 && write(fd, "1", 1) == 1) {
				syslog(LOG_ERR, "%s", said);
				if (write(2, said, strlen(said)) < 0) {
					/* nobody to tell */
				}
			}
			_exit(0);
		}
	}
}

/* The keeper's descriptors: the pipe's end at 3, the daemon's standard
 * error at 2 (where it says what it did, besides syslog), /dev/null at 0
 * and 1, and
 * nothing else of the daemon's (above all no /dev/fuse, which would keep
 * the connection alive as the daemon's does); -1 if that failed. */
static int keeper_fds(int done)
{
	if (dup2(done, 3) != 3)
		return -1;
	int null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		return -1;
	close_range(4, ~0u, 0);
	return 3;
}

int cfuse_keeper_start(const char *mp)
{
	char abort_file[PATH_MAX], stat[64], said[PATH_MAX + 128];
	if (abort_path(mp, abort_file, sizeof(abort_file)))
		return -1;
	snprintf(stat, sizeof(stat), "/proc/%d/stat", (int)getpid());
	snprintf(said, sizeof(said),
	         "cairn: mount %s: the daemon died with a thread held in the kernel; "
	         "its FUSE connection was ended\n",
	         mp);
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid == 0) {
		if (keeper_fds(pipefd[0]) == 3 && setsid() >= 0)
			execl("/proc/self/exe", "cairn", "keeper", stat, abort_file, said,
			      (char *)NULL);
		_exit(0);
	}
	close(pipefd[0]);
	return pipefd[1];
}

int cairn_fuse_keeper_main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	signal(SIGPIPE, SIG_IGN); /* a standard error nobody reads any more */
	/* Said on the daemon's standard error (a terminal in the
	 * foreground, /dev/null once it detached) and in syslog, where a
	 * detached daemon's messages go. */
	openlog("cairn", LOG_PID, LOG_DAEMON);
	keep(3, argv[1], argv[2], argv[3]);
	return 0;
}

void cfuse_keeper_stop(int keeper)
{
	if (keeper < 0)
		return;
	if (write(keeper, "", 1) != 1) {
		/* the keeper is gone already */
	}
	close(keeper);
}
