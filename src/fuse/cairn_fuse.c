/*
 * cairn_fuse.c - the life of a FUSE mount: mount the volume, mount FUSE,
 * become a daemon, serve requests on several threads, and on exit (the
 * mount point unmounted, or SIGINT/SIGTERM/SIGHUP) unmount both; and
 * `cairn umount`.
 *
 * Owns: the FUSE session and the daemon.
 * May call: libfuse3, include/cairn.h, fuse_ops.c (through cfuse_ops),
 * src/libfs/icalls.h (what failed), src/server (client processes), libc,
 * libsystemd (sd_notify: READY=1 once the mount is up, for a unit of
 * Type=notify running `cairn mount --foreground`).
 *
 * The volume lock: cairn_mount holds an exclusive flock on the volume
 * directory until cairn_unmount (src/volume), so a second mount of the
 * volume is refused; `cairn umount` waits for that lock to be free, so
 * that when it returns the volume is unmounted for real (its last
 * checkpoint written) and may be mounted again at once.
 */
#include "fuse/cairn_fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "fuse/fuse_internal.h"
#include "libfs/icalls.h"
#include "server/server.h"

#define UMOUNT_WAIT_MS 60000 /* the longest `cairn umount` waits for the daemon */

static int daemonized; /* errors go to syslog too: stderr is /dev/null */

static void report(const char *cmd, const char *what, const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cairn: %s: %s: %s\n", cmd, what, msg);
	if (daemonized)
		syslog(LOG_ERR, "%s: %s: %s", cmd, what, msg);
}

/* Damage the volume finds while serving (a data block that fails its
 * checksum) is said where the daemon's errors go. */
static void event_to_log(const char *msg)
{
	fprintf(stderr, "cairn: %s\n", msg);
	if (daemonized)
		syslog(LOG_ERR, "%s", msg);
}

/* The library says a medium failure on stderr itself; a daemon's stderr
 * is /dev/null, so it goes to syslog here. */
void cfuse_note_eio(struct cfuse *cf)
{
	char msg[512];
	if (!daemonized || atomic_load(&cf->failure_said) || !ic_failure(cf->fs, msg, sizeof(msg)))
		return;
	if (!atomic_exchange(&cf->failure_said, true))
		syslog(LOG_ERR, "mount: %s: %s (changes fail with EIO)", cf->vol, msg);
}

/* ---- the volume lock ----------------------------------------------------- */

/* Waits until no process holds the volume lock; 0, or -1 after timeout. */
static int volume_wait_free(const char *vol, int timeout_ms)
{
	int fd = open(vol, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* no volume there: nothing to wait for */
	int rc = -1;
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		if (!flock(fd, LOCK_SH | LOCK_NB)) {
			rc = 0;
			break;
		}
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	close(fd);
	return rc;
}

/* ---- the FUSE arguments -------------------------------------------------- */

/* Appends s to out, with the commas and backslashes libfuse's option
 * parser would split on escaped. */
static void append_escaped(char *out, size_t len, const char *s)
{
	size_t n = strlen(out);
	for (; *s && n + 2 < len; s++) {
		if (*s == ',' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n] = '\0';
}

static int build_args(struct fuse_args *args, const char *vol, const struct cairn_fuse_opts *o)
{
	char opts[PATH_MAX * 2 + 128] = "fsname=cairn:";
	append_escaped(opts, sizeof(opts), vol);
	/* The kernel checks permissions with the mode bits cairn keeps; root
	 * may let every user in (others need user_allow_other in fuse.conf). */
	strcat(opts, ",subtype=cairn,default_permissions");
	if (geteuid() == 0)
		strcat(opts, ",allow_other");
	if (fuse_opt_add_arg(args, "cairn") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts))
		return -1;
	if (o->options && o->options[0])
		if (fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, o->options))
			return -1;
	return 0;
}

/* Whether the user's -o options hold "ro": the volume is then mounted
 * read-only too, so that cairn writes nothing (recovery in memory only). */
static int wants_read_only(const char *options)
{
	if (!options)
		return 0;
	char *copy = strdup(options), *save = NULL;
	int ro = 0;
	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
		ro |= !strcmp(t, "ro");
	free(copy);
	return ro;
}

/* ---- client processes ---------------------------------------------------- */

/* The kernel keeps pages, attributes and names of this mount, trusting
 * that every change passes through it (fuse_ops.c); a change a client
 * process makes through the daemon's socket does not, so the kernel is
 * told to forget what went stale before the client's call returns.  The
 * calls come from the clients' threads, never from a FUSE request, so the
 * kernel may wait for requests in flight without waiting for us.  ENOENT:
 * the kernel holds nothing of it. */
static void forget_inode(void *arg, uint64_t ino, int64_t off, int64_t len)
{
	struct cfuse *cf = arg;
	if (cf->se)
		fuse_lowlevel_notify_inval_inode(cf->se, ino, off, len);
}

static void forget_entry(void *arg, uint64_t dir, const char *name)
{
	struct cfuse *cf = arg;
	if (cf->se)
		fuse_lowlevel_notify_inval_entry(cf->se, dir, name, strlen(name));
}

/* ---- serving ------------------------------------------------------------- */

/* Tells the waiting parent the mount is up, and cuts the daemon loose
 * from the terminal. */
static void detach(int ready_fd)
{
	if (ready_fd < 0)
		return;
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	daemonized = 1;
	openlog("cairn", LOG_PID, LOG_DAEMON);
	if (chdir("/")) {
		/* stay where we are: only relative paths would care */
	}
	char ok = 1;
	if (write(ready_fd, &ok, 1) != 1)
		syslog(LOG_WARNING, "mount: could not tell the parent the mount is up");
	close(ready_fd);
}

static struct fuse_session *session_start(struct cfuse *cf, const char *vol, const char *mp,
                                          const struct cairn_fuse_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	if (build_args(&args, vol, o) == 0)
		se = cf->se = fuse_session_new(&args, &cfuse_ops, sizeof(cfuse_ops), cf);
	fuse_opt_free_args(&args);
	if (!se) {
		report("mount", mp, "invalid FUSE options (see above)");
		return NULL;
	}
	if (fuse_set_signal_handlers(se)) {
		report("mount", mp, "cannot install the signal handlers");
		fuse_session_destroy(se);
		return NULL;
	}
	if (fuse_session_mount(se, mp)) {
		report("mount", mp, "FUSE mount failed (see above)");
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
		return NULL;
	}
	int rc = cfuse_wire_attach(se, cf);
	if (rc < 0) {
		report("mount", mp, "cannot attach to /dev/fuse: %s", strerror(-rc));
		fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
		return NULL;
	}
	return se;
}

/* Whether every request can be served by one thread: no request of this
 * volume waits for a device.  On byte-addressable media without capacity
 * tiers, durability is a cache-line flush and the digest runs on its own
 * thread, so a request takes microseconds, and one thread that serves
 * them all stays warm and close to its callers: measured on 2 cores,
 * varmail and SQLite inserts through the mount ran about twice as fast
 * as with libfuse's pool, which hands successive requests to different
 * threads; that thread polls briefly for the next request before it
 * sleeps (fuse_wire.c).  Where a request can wait for a disk (the file medium's
 * fdatasync, a capacity tier's reads), the pool lets other requests
 * proceed meanwhile and concurrent writers share one fdatasync. */
static bool one_thread_serves(cairn_fs *fs)
{
	struct cairn_info in;
	if (cairn_info(fs, &in))
		return false;
	return strcmp(in.media, "file") != 0 && in.tier_count <= 1;
}

/* Runs the session until unmount or a signal; 0 on a clean exit. */
static int session_run(struct fuse_session *se, const struct cfuse *cf)
{
	int rc;
	if (cf->spin) {
		rc = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		if (!cfg)
			return -1;
		rc = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	/* A positive value is the signal that ended the loop: a clean exit. */
	return rc < 0 ? rc : 0;
}

/* The mount, from the volume lock to its release; ready_fd (or -1 in the
 * foreground) hears when the mount is up. */
static int serve(const char *vol, const char *mp, const struct cairn_fuse_opts *o, int ready_fd)
{
	struct cairn_mount_opts mo = {.batch_ms = o->batch_ms,
	                              .read_only = wants_read_only(o->options),
	                              .high_watermark = o->high_watermark,
	                              .low_watermark = o->low_watermark,
	                              .no_promotion = o->no_promotion};
	struct cfuse cf = {.fs = cairn_mount(vol, &mo), .sync_mode = o->batch_ms <= 0, .vol = vol};
	if (!cf.fs) {
		int e = errno;
		report("mount", vol, "%s",
		       cairn_last_error()[0] ? cairn_last_error() : strerror(e));
		return 1;
	}
	cf.spin = one_thread_serves(cf.fs);
	cairn_set_event_handler(event_to_log);
	/* Client processes attach beside the mount; the daemon admits the
	 * users its mount admits (allow_other when run by root). */
	struct ctl_server *srv = NULL;
	struct ctl_watch watch = {&cf, forget_inode, forget_entry};
	int src = ctl_server_start(cf.fs, vol, geteuid() == 0, event_to_log, &watch, &srv);
	if (src)
		report("mount", vol, "cannot listen for client processes: %s", strerror(-src));
	cf.clients = srv;
	struct fuse_session *se = src ? NULL : session_start(&cf, vol, mp, o);
	int rc = 1;
	if (se) {
		/* After detach: the keeper must not hold the terminal or the
		 * pipe of the command that mounted (mount(8) reads the
		 * helper's output to its end). */
		detach(ready_fd);
		int keeper = cfuse_keeper_start(mp);
		sd_notify(0, "READY=1");
		rc = session_run(se, &cf) ? 1 : 0;
		cfuse_keeper_stop(keeper);
		sd_notify(0, "STOPPING=1");
		if (rc)
			report("mount", mp, "the FUSE session failed");
		/* The clients' threads tell the session of changes: they end
		 * before it does. */
		ctl_server_stop(srv);
		srv = cf.clients = NULL;
		cf.se = NULL;
		fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	ctl_server_stop(srv);
	if (cairn_unmount(cf.fs)) {
		int e = errno;
		report("mount", vol, "unmount: %s",
		       cairn_last_error()[0] ? cairn_last_error() : strerror(e));
		rc = 1;
	}
	return rc;
}

/* The parent of the daemon: waits for "mount is up" or for the daemon's
 * death (its error went to our stderr). */
static int wait_ready(pid_t pid, int ready_fd)
{
	char ok;
	ssize_t n;
	do
		n = read(ready_fd, &ok, 1);
	while (n < 0 && errno == EINTR);
	close(ready_fd);
	if (n == 1)
		return 0;
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return 1;
}

int cairn_fuse_main(const char *volume, const char *mountpoint, const struct cairn_fuse_opts *o)
{
	/* Absolute paths: the daemon leaves the working directory, and the
	 * volume's path names the mount in /proc/mounts. */
	char vol[PATH_MAX], mp[PATH_MAX];
	if (!realpath(volume, vol)) {
		report("mount", volume, "%s", strerror(errno));
		return 1;
	}
	if (!realpath(mountpoint, mp)) {
		report("mount", mountpoint, "%s", strerror(errno));
		return 1;
	}
	if (o->foreground)
		return serve(vol, mp, o, -1);
	/* Fork before cairn_mount, not after as fuse_daemonize would: the
	 * volume's digest thread would not survive the fork, and errors must
	 * still reach the terminal. */
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC)) {
		report("mount", mp, "pipe: %s", strerror(errno));
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		report("mount", mp, "fork: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(pipefd[0]);
		setsid();
		_exit(serve(vol, mp, o, pipefd[1]));
	}
	close(pipefd[1]);
	return wait_ready(pid, pipefd[0]);
}

/* ---- cairn umount -------------------------------------------------------- */

/* The volume served at mp, from the mount's source "cairn:VOLUME" in
 * /proc/self/mounts; -1 if mp is not a cairn mount. */
static int find_mount(const char *mp, char *vol, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	if (!f)
		return -1;
	int found = -1;
	struct mntent ent, *m;
	char buf[3 * PATH_MAX]; /* getmntent_r: getmntent's buffer is one for all threads */
	while ((m = getmntent_r(f, &ent, buf, sizeof(buf)))) {
		if (strcmp(m->mnt_dir, mp) || strcmp(m->mnt_type, "fuse.cairn"))
			continue;
		const char *src = m->mnt_fsname;
		snprintf(vol, len, "%s", strncmp(src, "cairn:", 6) ? "" : src + 6);
		found = 0; /* the last match is the mount on top */
	}
	endmntent(f);
	return found;
}

/* The mount point serving volume directory vol, from /proc/self/mounts. */
static int find_volume_mount(const char *vol, char *mp, size_t len)
{
	char real[PATH_MAX];
	if (!realpath(vol, real))
		return -1;
	FILE *f = setmntent("/proc/self/mounts", "r");
	if (!f)
		return -1;
	int found = -1;
	struct mntent ent, *m;
	char buf[3 * PATH_MAX]; /* getmntent_r: getmntent's buffer is one for all threads */
	while ((m = getmntent_r(f, &ent, buf, sizeof(buf)))) {
		if (strcmp(m->mnt_type, "fuse.cairn") || strncmp(m->mnt_fsname, "cairn:", 6) ||
		    strcmp(m->mnt_fsname + 6, real))
			continue;
		snprintf(mp, len, "%s", m->mnt_dir);
		found = 0;
	}
	endmntent(f);
	return found;
}

/* The mount point serving path (a mount point or a mounted volume). */
static int mount_of(const char *path, char *mp, size_t len)
{
	char real[PATH_MAX], vol[PATH_MAX];
	if (realpath(path, real) && find_mount(real, vol, sizeof(vol)) == 0) {
		snprintf(mp, len, "%s", real);
		return 0;
	}
	return find_volume_mount(path, mp, len) ? -ENOENT : 0;
}

int cairn_fuse_info(const char *path, struct cairn_info *out)
{
	char mp[PATH_MAX];
	if (mount_of(path, mp, sizeof(mp)))
		return -ENOENT;
	ssize_t n = getxattr(mp, CFUSE_INFO_XATTR, out, sizeof(*out));
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(*out) ? 0 : -EPROTO;
}

/* The absolute form of mp, even when it cannot be resolved: a mount whose
 * daemon died answers ENOTCONN to every lookup. */
static void absolute(const char *mp, char *out, size_t len)
{
	if (realpath(mp, out))
		return;
	char cwd[PATH_MAX];
	if (mp[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		snprintf(out, len, "%s", mp);
	else
		snprintf(out, len, "%s/%s", cwd, mp);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
}

static int run_fusermount(const char *mp, int lazy)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (lazy)
			execlp("fusermount3", "fusermount3", "-u", "-z", "--", mp, (char *)NULL);
		else
			execlp("fusermount3", "fusermount3", "-u", "--", mp, (char *)NULL);
		perror("cairn: umount: fusermount3");
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPERM;
}

int cairn_fuse_umount(const char *mountpoint, int lazy)
{
	char mp[PATH_MAX], vol[PATH_MAX];
	absolute(mountpoint, mp, sizeof(mp));
	if (find_mount(mp, vol, sizeof(vol))) {
		report("umount", mountpoint, "not a cairn mount");
		return 1;
	}
	if (geteuid() == 0) {
		if (umount2(mp, lazy ? MNT_DETACH : 0)) {
			int e = errno;
			report("umount", mountpoint, "%s%s", strerror(e),
			       e == EBUSY ? " (files are open in it; --lazy detaches it now)" : "");
			return 1;
		}
	} else if (run_fusermount(mp, lazy)) {
		/* fusermount3 said why on stderr */
		report("umount", mountpoint, "fusermount3 -u failed");
		return 1;
	}
	/* A lazy unmount leaves the daemon serving the files still open. */
	if (!lazy && vol[0] && volume_wait_free(vol, UMOUNT_WAIT_MS)) {
		report("umount", mountpoint, "unmounted, but the daemon still holds %s", vol);
		return 1;
	}
	return 0;
}
