/*
 * client.c - cairn_attach's connection to the daemon (see client.h).
 *
 * Owns: struct client.  May call: src/proto/ctl.h, libc.
 *
 * A request is written whole and its reply read whole under the client's
 * lock, so threads that share a handle take turns.  Any failure of the
 * socket means the daemon is gone (or misbehaved): the client is marked
 * dead and this and every later call fail with EIO at once, never
 * blocking, as a file system whose device went away.
 */
#include "client/client.h"
#include "client/client_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "log/clog_format.h"
#include "proto/ctl.h"

/* What the client knows of one of its descriptors beyond its number. */
struct client_fd {
	struct client_grant g; /* local writes, if granted */
	uint64_t ino;
	/* A granted descriptor keeps its file position here (the daemon's
	 * never moves): write() and read() become pwrite() and pread(). */
	int local_pos;
	uint64_t pos;
	/* O_APPEND: every write goes at the end, which only the daemon
	 * knows; after one, the position is that end until asked. */
	int append, pos_at_end;
	int taken; /* a local descriptor (client_adopt_local) in use */
	/* A local descriptor of a file made in the log: the daemon's
	 * descriptor of it (opened when first needed), or -1. */
	int made, remote, flags;
	pthread_mutex_t lock; /* the fields above; made once, never reset */
};

#define CLIENT_FDS 1024 /* the daemon's limit per client */
/* Descriptors of files the client writes under a grant its process's
 * opens through the mount hold, numbered after the daemon's: the daemon
 * knows nothing of them. */
#define CLIENT_LOCAL_FDS 1024
#define CLIENT_ALL_FDS (CLIENT_FDS + CLIENT_LOCAL_FDS)

struct client {
	int sock;
	int dead;
	uint64_t spin_ns;  /* how long to poll for a reply: the daemon says */
	unsigned fork_gen; /* fork_gen when attached: a child shares the socket */
	pthread_mutex_t lock;
	/* The private log (client_log.c): NULL until the first open for
	 * writing asks for it, or when refused (log_state -1). */
	struct client_log *log;
	int log_state;
	struct client_fd *fds;      /* CLIENT_FDS of them, once a log exists */
	pthread_mutex_t pos_lock;   /* starting the log */
	struct client_names *names; /* client_names.c, once a log exists */
};

static int fail_errno(int e)
{
	errno = e;
	return -1;
}

/* ---- finding and greeting the daemon ------------------------------------- */

/* The volume directory behind a cairn mount point, from the mount's
 * source ("cairn:VOLUME"); 0 or -1. */
static int volume_of_mount(const char *mp, char *vol, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	if (!f)
		return -1;
	int rc = -1;
	/* getmntent_r: threads of one process attach at once, and
	 * getmntent's entry is one static buffer for them all. */
	struct mntent ent, *m;
	char buf[3 * PATH_MAX];
	while ((m = getmntent_r(f, &ent, buf, sizeof(buf))))
		if (!strcmp(m->mnt_dir, mp) && !strncmp(m->mnt_fsname, "cairn:", 6) &&
		    strlen(m->mnt_fsname + 6) < len) {
			strcpy(vol, m->mnt_fsname + 6);
			rc = 0; /* the last mount at mp is the one seen there */
		}
	endmntent(f);
	return rc;
}

static int socket_path(const char *path, struct sockaddr_un *a, char *err, size_t errlen)
{
	char real[PATH_MAX], vol[PATH_MAX];
	if (!realpath(path, real)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (volume_of_mount(real, vol, sizeof(vol)))
		strcpy(vol, real);
	int n = snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", vol, CTL_SOCKET_NAME);
	if (n < 0 || (size_t)n >= sizeof(a->sun_path)) {
		snprintf(err, errlen, "%s: the path of its socket is too long", vol);
		return -ENAMETOOLONG;
	}
	if (access(a->sun_path, F_OK)) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errlen, "%s: no daemon serves this volume (no %s)", path,
			         CTL_SOCKET_NAME);
		else
			snprintf(err, errlen, "%s: %s", a->sun_path, strerror(e));
		return -e;
	}
	return 0;
}

static int call(struct client *c, struct iovec *iov, int cnt, struct ctl_rep *rp, void *out,
                size_t outlen);

/* Whether this process is a child of the one that attached c: counted by
 * a fork handler rather than asked of the kernel (getpid is a system
 * call, and a local write makes none). */
static atomic_uint fork_gen;
static pthread_once_t fork_watch = PTHREAD_ONCE_INIT;

static void child_forked(void)
{
	atomic_fetch_add(&fork_gen, 1);
}

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, child_forked);
}

static int forked(const struct client *c)
{
	return atomic_load_explicit(&fork_gen, memory_order_relaxed) != c->fork_gen;
}
static int call_fds(struct client *c, struct iovec *iov, int cnt, struct ctl_rep *rp, void *out,
                    size_t outlen, int *fds, int *nfds);

static int moved_high(int fd);

/* The table of descriptors, zeroed, with their locks ready.  Where a
 * mutex's static initializer is all zero bytes (glibc's), calloc's zeros
 * are that initializer already, and its pages stay untouched until used:
 * initializing the 2048 locks one by one touched 240 KiB at every
 * client's start, each page a fault here (docs/PERFORMANCE.md, "Starting
 * programs under the shim"). */
static int zeros_are_a_mutex(void)
{
	static const pthread_mutex_t initial = PTHREAD_MUTEX_INITIALIZER;
	static const pthread_mutex_t zero;
	return memcmp(&initial, &zero, sizeof(zero)) == 0;
}

static struct client_fd *new_fds(void)
{
	struct client_fd *fds = calloc(CLIENT_ALL_FDS, sizeof(*fds));
	for (int i = 0; fds && !zeros_are_a_mutex() && i < CLIENT_ALL_FDS; i++)
		pthread_mutex_init(&fds[i].lock, NULL);
	return fds;
}

struct client *client_attach(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int rc = socket_path(path, &a, err, errlen);
	if (rc)
		return errno = -rc, NULL;
	struct client *c = calloc(1, sizeof(*c));
	if (!c)
		return errno = ENOMEM, NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->pos_lock, NULL);
	pthread_once(&fork_watch, watch_forks);
	c->fork_gen = atomic_load(&fork_gen);
	c->sock = moved_high(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (c->sock < 0 || connect(c->sock, (struct sockaddr *)&a, sizeof(a))) {
		rc = errno == ECONNREFUSED ? ENOENT : errno;
		snprintf(err, errlen, "%s: %s", a.sun_path,
		         rc == ENOENT ? "no daemon serves this volume" : strerror(rc));
		goto fail;
	}
	struct ctl_req h = {.magic = CTL_MAGIC,
	                    .op = CTL_HELLO,
	                    .a = {CTL_VERSION, sizeof(struct stat), sizeof(struct cairn_info),
	                          sizeof(struct ctl_dirent)}};
	struct ctl_rep rp;
	struct iovec iov = {&h, sizeof(h)};
	if (call(c, &iov, 1, &rp, NULL, 0) < 0 || rp.err) {
		rc = c->dead ? EIO : rp.err;
		snprintf(err, errlen, "%s: %s", a.sun_path,
		         rc == EACCES   ? "the daemon does not admit this user"
		         : rc == EPROTO ? "the daemon is of another cairn build"
		                        : "the daemon closed the connection");
		goto fail;
	}
	c->spin_ns = rp.ret > 0 && rp.ret <= 1000000 ? (uint64_t)rp.ret : 0;
	return c;
fail:
	if (c->sock >= 0)
		close(c->sock);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->pos_lock);
	free(c);
	return errno = rc, NULL;
}

void client_detach(struct client *c)
{
	if (!c)
		return;
	/* The daemon closes what this client left open, and applies what its
	 * log holds. */
	close(c->sock);
	client_log_close(c->log);
	client_names_free(c->names);
	/* Locks made by the initializer's zeros (new_fds) need no destroying,
	 * nor the pages of the unused ones touching. */
	for (int i = 0; c->fds && !zeros_are_a_mutex() && i < CLIENT_ALL_FDS; i++)
		pthread_mutex_destroy(&c->fds[i].lock);
	free(c->fds);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->pos_lock);
	free(c);
}

/* ---- the client's own descriptors ----------------------------------------- */

/* The socket moves only under c->lock (client_vacate_fd), and the log is
 * set once: both are read here with no lock, as a signal handler may. */
int client_own_fds(struct client *c, int *fds, int max)
{
	int n = 0, sock = __atomic_load_n(&c->sock, __ATOMIC_ACQUIRE);
	struct client_log *l = __atomic_load_n(&c->log, __ATOMIC_ACQUIRE);
	int logfd = l ? client_log_fd(l) : -1;
	if (sock >= 0 && n < max)
		fds[n++] = sock;
	if (logfd >= 0 && n < max)
		fds[n++] = logfd;
	return n;
}

int client_fd_floor(void)
{
	/* The top 64 numbers below the process's limit, or below 1024 when
	 * the limit is higher: a number far up makes the kernel grow the
	 * process's descriptor table to it (8 MiB for a limit of a million). */
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r))
		return 3;
	rlim_t top = r.rlim_cur < 1024 ? r.rlim_cur : 1024;
	return top > 64 + 3 ? (int)top - 64 : 3;
}

/* fd, moved to the lowest free number from client_fd_floor() on; fd
 * itself if it cannot be. */
static int moved_high(int fd)
{
	int high = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, client_fd_floor()) : -1;
	if (high < 0)
		return fd;
	close(fd);
	return high;
}

int client_vacate_fd(struct client *c, int fd)
{
	struct client_log *l = __atomic_load_n(&c->log, __ATOMIC_ACQUIRE);
	if (l && client_log_fd(l) == fd)
		return client_log_move_fd(l, client_fd_floor());
	pthread_mutex_lock(&c->lock);
	int rc = 0;
	if (c->sock == fd) {
		int moved = moved_high(fd);
		if (moved == fd)
			rc = -1;
		else
			__atomic_store_n(&c->sock, moved, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- one request --------------------------------------------------------- */

/* Sends a request (iov[0] its header, the rest its payload, in place: no
 * copy of the caller's data), reads the reply into *rp and at most outlen
 * bytes into out.  0, or -1 (errno EIO) when the daemon is gone. */
static int call(struct client *c, struct iovec *iov, int cnt, struct ctl_rep *rp, void *out,
                size_t outlen)
{
	return call_fds(c, iov, cnt, rp, out, outlen, NULL, NULL);
}

/* call(), also taking the descriptors that come with the reply (at most
 * 2, their number in *nfds) when fds is not NULL. */
static int call_fds(struct client *c, struct iovec *iov, int cnt, struct ctl_rep *rp, void *out,
                    size_t outlen, int *fds, int *nfds)
{
	/* A child of fork() holds the same socket: its requests and its
	 * parent's would interleave and each could read the other's reply.
	 * The handle is the attaching process's; a child attaches anew. */
	if (forked(c))
		return fail_errno(EIO);
	pthread_mutex_lock(&c->lock);
	int ok = !c->dead;
	if (ok && ctl_send_all(c->sock, iov, cnt))
		ok = 0;
	if (ok)
		ctl_spin_readable(c->sock, c->spin_ns);
	size_t have = 0;
	if (ok && fds)
		ok = !ctl_recv_fds(c->sock, rp, sizeof(*rp), fds, 2, nfds) && rp->len <= outlen;
	else if (ok && (ctl_recv_head(c->sock, rp, sizeof(*rp), out, outlen, &have) ||
	                rp->len > outlen || have > rp->len))
		ok = 0;
	if (ok && rp->len > have && ctl_recv_all(c->sock, (uint8_t *)out + have, rp->len - have))
		ok = 0;
	if (!ok && !c->dead) {
		c->dead = 1;
		shutdown(c->sock, SHUT_RDWR);
	}
	pthread_mutex_unlock(&c->lock);
	return ok ? 0 : fail_errno(EIO);
}

/* A request with up to three strings and some data; the reply's result,
 * or -1 with errno. */
static int64_t request(struct client *c, int op, const int64_t a[4], const char *const *strs,
                       int nstr, const void *data, size_t dlen, void *out, size_t outlen)
{
	struct ctl_req h = {.magic = CTL_MAGIC, .op = (uint16_t)op, .nstr = (uint16_t)nstr};
	if (a)
		memcpy(h.a, a, sizeof(h.a));
	struct iovec iov[5] = {{&h, sizeof(h)}};
	int cnt = 1;
	size_t total = dlen;
	for (int i = 0; i < nstr; i++) {
		if (!strs[i])
			return fail_errno(EFAULT);
		size_t len = strnlen(strs[i], PATH_MAX) + 1;
		if (len > PATH_MAX)
			return fail_errno(ENAMETOOLONG);
		iov[cnt++] = (struct iovec){(void *)strs[i], len};
		total += len;
	}
	if (total > CTL_MAX_PAYLOAD)
		return fail_errno(EINVAL);
	if (dlen)
		iov[cnt++] = (struct iovec){(void *)data, dlen};
	h.len = (uint32_t)total;
	struct ctl_rep rp;
	if (call(c, iov, cnt, &rp, out, outlen))
		return -1;
	return rp.err ? fail_errno(rp.err) : rp.ret;
}

#define ARGS(...) ((const int64_t[4]){__VA_ARGS__})

int64_t client_request(struct client *c, int op, const int64_t a[4], const char *const *strs,
                       int nstr, const void *data, size_t dlen, void *out, size_t outlen)
{
	return request(c, op, a, strs, nstr, data, dlen, out, outlen);
}

struct client_log *client_log_of(struct client *c)
{
	return c->log;
}

/* ---- the calls ----------------------------------------------------------- */

/* ---- the private log ------------------------------------------------------ */

/* CTL_CLOG_START: its reply carries the two descriptors. */
static int start_log(struct client *c)
{
	struct ctl_req h = {.magic = CTL_MAGIC, .op = CTL_CLOG_START};
	struct iovec iov = {&h, sizeof(h)};
	struct ctl_rep rp;
	struct ctl_clog info;
	int fds[2], nfds = 0;
	int ok = call_fds(c, &iov, 1, &rp, &info, sizeof(info), fds, &nfds) == 0;
	if (ok && !rp.err && rp.len == sizeof(info) && nfds == 2) {
		c->fds = new_fds();
		/* Before the log: whoever sees the log sees its names. */
		if (c->fds)
			c->names = client_names_new();
		if (c->fds) /* published whole: client_own_fds reads it with no lock */
			__atomic_store_n(&c->log, client_log_open(fds[0], fds[1], &info),
			                 __ATOMIC_RELEASE);
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]); /* the log keeps its own copy, the state its mapping */
	if (!c->log) {
		free(c->fds);
		c->fds = NULL;
		client_names_free(c->names);
		c->names = NULL;
	}
	c->log_state = c->log ? 1 : -1;
	return ok ? 0 : fail_errno(EIO);
}

int client_sync(struct client *c, uint64_t seq, uint64_t want, struct ctl_clog_sync *out)
{
	int64_t r = request(c, CTL_CLOG_SYNC, ARGS((int64_t)seq, (int64_t)want), NULL, 0, NULL, 0,
	                    out, sizeof(*out));
	return r < 0 ? -1 : 0;
}

/* Whether a client may write in a log of its own: not when the
 * environment says CAIRN_CLIENT_LOG=0. */
static int log_wanted(void)
{
	const char *e = getenv("CAIRN_CLIENT_LOG");
	return !e || strcmp(e, "0") != 0;
}

static struct client_fd *granted_fd(struct client *c, int fd)
{
	if (!c->log || fd < 0 || fd >= CLIENT_ALL_FDS)
		return NULL;
	return __atomic_load_n(&c->fds[fd].local_pos, __ATOMIC_ACQUIRE) ? &c->fds[fd] : NULL;
}

/* One thread starts the log; another racing it writes through the daemon
 * until it is there. */
static void want_log(struct client *c)
{
	if (c->log_state == 0 && log_wanted()) {
		pthread_mutex_lock(&c->pos_lock);
		if (c->log_state == 0)
			start_log(c);
		pthread_mutex_unlock(&c->pos_lock);
	}
}

/* f writes ino under grant g (epoch 0: none) from its position 0; with
 * f->lock held. */
static void set_grant(struct client_fd *f, struct client_grant g, uint64_t ino, int flags)
{
	f->g = g;
	f->ino = ino;
	f->pos = 0;
	f->append = (flags & O_APPEND) != 0;
	f->pos_at_end = 0;
	/* Last: granted_fd looks at it without the lock. */
	__atomic_store_n(&f->local_pos, g.epoch != 0, __ATOMIC_RELEASE);
}

/* Descriptor fd of the daemon's reply comes with grant g (epoch 0: none). */
static void note_grant(struct client *c, int fd, const struct ctl_grant *g, int flags)
{
	if (fd < 0 || !c->log || fd >= CLIENT_FDS)
		return;
	struct client_fd *f = &c->fds[fd];
	pthread_mutex_lock(&f->lock);
	set_grant(f, (struct client_grant){g->index, g->epoch}, g->ino, flags);
	pthread_mutex_unlock(&f->lock);
}

/* A local descriptor (numbered after the daemon's) writing ino under
 * grant g; made: a file made in the log.  -1 when all are taken. */
static int local_fd(struct client *c, uint64_t ino, struct client_grant g, int flags, int made)
{
	for (int fd = CLIENT_FDS; fd < CLIENT_ALL_FDS; fd++) {
		struct client_fd *f = &c->fds[fd];
		pthread_mutex_lock(&f->lock);
		int mine = !f->taken;
		if (mine) {
			f->taken = 1;
			f->made = made;
			f->remote = -1;
			f->flags = flags & ~(O_CREAT | O_EXCL | O_TRUNC);
			set_grant(f, g, ino, flags);
		}
		pthread_mutex_unlock(&f->lock);
		if (mine)
			return fd;
	}
	return -1;
}

/* A create in the log, when the client holds its directory's grant:
 * the descriptor, -2 when the daemon must do it, or -1 with errno. */
static int open_made(struct client *c, const char *path, int flags, mode_t mode)
{
	uint64_t ino;
	struct client_grant g;
	int r = client_names_create(c, c->names, path, flags, mode, &ino, &g);
	if (r <= 0)
		return r < 0 ? -1 : -2;
	int fd = local_fd(c, ino, g, flags, 1);
	if (fd < 0)
		client_names_opened(c->names, ino, -1);
	/* Made, but no descriptor to give: the file stays, as after a
	 * create whose open then failed. */
	return fd < 0 ? fail_errno(EMFILE) : fd;
}

int client_open(struct client *c, const char *path, int flags, mode_t mode)
{
	int want = (flags & O_ACCMODE) != O_RDONLY;
	if (want)
		want_log(c);
	want = want && c->log;
	if (want && (flags & O_CREAT)) {
		int fd = open_made(c, path, flags, mode);
		if (fd != -2)
			return fd;
	}
	struct ctl_grant g = {0};
	/* Read once: another thread may be starting the log. */
	struct client_names *n = (flags & O_CREAT) && c->log ? c->names : NULL;
	uint64_t dir = client_names_begin(c, n, path);
	int fd =
	    (int)request(c, CTL_OPEN, ARGS(flags, mode, want ? CTL_OPEN_GRANT : 0, (int64_t)dir),
	                 &path, 1, NULL, 0, &g, sizeof(g));
	client_names_done(n, path, fd < 0 ? -1 : 0, 1, g.ino);
	note_grant(c, fd, &g, flags);
	return fd;
}

int client_own_opens(struct client *c, int on)
{
	want_log(c);
	if (!c->log)
		return fail_errno(EOPNOTSUPP);
	return (int)request(c, CTL_OWN_OPENS, ARGS(on ? 1 : 0), NULL, 0, NULL, 0, NULL, 0);
}

int client_adopt_local(struct client *c, uint64_t ino, int flags)
{
	struct client_grant g;
	if (!c->log || !client_log_find_grant(c->log, ino, &g))
		return -1;
	return local_fd(c, ino, g, flags, 0);
}

int client_local_pwrite(struct client *c, int fd, const void *buf, size_t count, off_t off)
{
	struct iovec v = {(void *)buf, count};
	return client_local_pwritev(c, fd, &v, 1, off);
}

int client_local_pwritev(struct client *c, int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	struct client_fd *f = granted_fd(c, fd);
	size_t count = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SIZE_MAX - count || (!iov[i].iov_base && iov[i].iov_len))
			return 0;
		count += iov[i].iov_len;
	}
	if (!f || off < 0 || iovcnt < 0)
		return 0;
	/* The fork() and dead-daemon checks of call(), without a system
	 * call. */
	if (forked(c) || c->dead)
		return fail_errno(EIO);
	/* Linux appends on pwrite() to an O_APPEND descriptor too. */
	uint64_t at = f->append ? CLOG_AT_END : (uint64_t)off;
	return client_log_write(c, c->log, &f->g, f->ino, iov, iovcnt, count, at);
}

int client_local_kernel_reads(struct client *c, int fd, uint64_t *count)
{
	struct client_fd *f = granted_fd(c, fd);
	if (!f)
		return 0;
	*count = client_log_kernel_reads(c->log, &f->g);
	return 1;
}

static int resolve_end(struct client *c, struct client_fd *f, int fd);

/* A truncate does not move the position: one that appends left at "the
 * end" is asked for first (the end it means is the one before). */
int client_local_ftruncate(struct client *c, int fd, off_t length)
{
	struct client_fd *f = granted_fd(c, fd);
	if (!f || length < 0)
		return 0;
	if (forked(c) || c->dead)
		return fail_errno(EIO);
	pthread_mutex_lock(&f->lock);
	int r = resolve_end(c, f, fd);
	if (r == 0)
		r = client_log_truncate(c, c->log, &f->g, f->ino, (uint64_t)length);
	pthread_mutex_unlock(&f->lock);
	return r;
}

int client_ftruncate(struct client *c, int fd, off_t length)
{
	int r = client_local_ftruncate(c, fd, length);
	if (r != 0)
		return r < 0 ? -1 : 0;
	return client_fdcall(c, CTL_FTRUNCATE, fd, length, 0, 0);
}

int client_close(struct client *c, int fd)
{
	if (fd >= CLIENT_FDS && fd < CLIENT_ALL_FDS && c->fds) {
		/* A local descriptor: the grant is its opens' to let go of, or
		 * for a file made in the log the client's (client_names.c). */
		struct client_fd *f = &c->fds[fd];
		pthread_mutex_lock(&f->lock);
		/* As every call once the daemon is known gone: EIO (the
		 * descriptor goes all the same). */
		int rc = !f->taken                           ? fail_errno(EBADF)
		         : f->made && (c->dead || forked(c)) ? fail_errno(EIO)
		                                             : 0;
		__atomic_store_n(&f->local_pos, 0, __ATOMIC_RELEASE);
		if (f->taken && f->made && f->remote >= 0)
			request(c, CTL_CLOSE, ARGS(f->remote), NULL, 0, NULL, 0, NULL, 0);
		if (f->taken && f->made)
			client_names_opened(c->names, f->ino, -1);
		f->taken = f->made = 0;
		f->remote = -1;
		pthread_mutex_unlock(&f->lock);
		return rc;
	}
	int rc = (int)request(c, CTL_CLOSE, ARGS(fd), NULL, 0, NULL, 0, NULL, 0);
	struct client_fd *f = granted_fd(c, fd);
	if (f && rc == 0) {
		pthread_mutex_lock(&f->lock);
		__atomic_store_n(&f->local_pos, 0, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&f->lock);
	}
	return rc;
}

/* Turns *fd into the daemon's descriptor behind it: itself, or for a file
 * made in the log the one opened for it when first needed (CTL_OPEN_INO).
 * 0, or -1 with errno when that open failed. */
static int remote_fd(struct client *c, int *fd)
{
	if (*fd < CLIENT_FDS || *fd >= CLIENT_ALL_FDS || !c->fds)
		return 0;
	struct client_fd *f = &c->fds[*fd];
	if (!__atomic_load_n(&f->made, __ATOMIC_ACQUIRE))
		return 0; /* the daemon knows it not: EBADF */
	int r = __atomic_load_n(&f->remote, __ATOMIC_ACQUIRE);
	if (r < 0) {
		pthread_mutex_lock(&c->pos_lock);
		if (f->remote < 0) {
			r = (int)request(c, CTL_OPEN_INO, ARGS((int64_t)f->ino, f->flags), NULL, 0,
			                 NULL, 0, NULL, 0);
			if (r >= 0)
				__atomic_store_n(&f->remote, r, __ATOMIC_RELEASE);
		}
		r = f->remote;
		pthread_mutex_unlock(&c->pos_lock);
	}
	if (r < 0)
		return -1;
	*fd = r;
	return 0;
}

/* Reads in pieces of at most CTL_MAX_DATA; a short piece is the end. */
static ssize_t read_pieces(struct client *c, int op, int fd, uint8_t *buf, size_t count, off_t off)
{
	if (remote_fd(c, &fd))
		return -1;
	if (!buf && count)
		return fail_errno(EFAULT);
	if (count > SSIZE_MAX)
		return fail_errno(EINVAL);
	size_t done = 0;
	while (done < count || count == 0) {
		size_t n = count - done < CTL_MAX_DATA ? count - done : CTL_MAX_DATA;
		int64_t r = request(c, op, ARGS(fd, (int64_t)n, off + (off_t)done), NULL, 0, NULL,
		                    0, buf + done, n);
		if (r < 0)
			return done ? (ssize_t)done : -1;
		done += (size_t)r;
		if ((size_t)r < n || count == 0)
			break;
	}
	return (ssize_t)done;
}

/* An O_APPEND descriptor's position after its writes: the end of the
 * file, asked of the daemon (which applies the log first).  With
 * f->lock held. */
static int resolve_end(struct client *c, struct client_fd *f, int fd)
{
	if (!f->pos_at_end)
		return 0;
	int rfd = fd;
	off_t r = remote_fd(c, &rfd) ? -1
	                             : (off_t)request(c, CTL_LSEEK, ARGS(rfd, 0, SEEK_END), NULL, 0,
	                                              NULL, 0, NULL, 0);
	if (r < 0)
		return -1;
	f->pos = (uint64_t)r;
	f->pos_at_end = 0;
	return 0;
}

/* read() and write() on a descriptor with a local position. */
static ssize_t at_position(struct client *c, struct client_fd *f, int fd, int write, void *buf,
                           size_t count)
{
	pthread_mutex_lock(&f->lock);
	ssize_t n = -1;
	if (write && f->append) {
		n = client_pwrite(c, fd, buf, count, 0); /* at the end, as pwrite() */
		f->pos_at_end |= n > 0;
	} else if (resolve_end(c, f, fd) == 0) {
		off_t pos = (off_t)f->pos;
		n = write ? client_pwrite(c, fd, buf, count, pos)
		          : read_pieces(c, CTL_PREAD, fd, buf, count, pos);
		if (n > 0)
			f->pos += (uint64_t)n;
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

ssize_t client_read(struct client *c, int fd, void *buf, size_t count)
{
	struct client_fd *f = granted_fd(c, fd);
	if (f)
		return at_position(c, f, fd, 0, buf, count);
	return read_pieces(c, CTL_READ, fd, buf, count, 0);
}

ssize_t client_pread(struct client *c, int fd, void *buf, size_t count, off_t off)
{
	return read_pieces(c, CTL_PREAD, fd, buf, count, off);
}

static ssize_t write_pieces(struct client *c, int op, int fd, const uint8_t *buf, size_t count,
                            off_t off)
{
	if (remote_fd(c, &fd))
		return -1;
	if (!buf && count)
		return fail_errno(EFAULT);
	if (count > SSIZE_MAX)
		return fail_errno(EINVAL);
	size_t done = 0;
	do {
		size_t n = count - done < CTL_MAX_DATA ? count - done : CTL_MAX_DATA;
		int64_t r =
		    request(c, op, ARGS(fd, off + (off_t)done), NULL, 0, buf + done, n, NULL, 0);
		if (r < 0)
			return done ? (ssize_t)done : -1;
		done += (size_t)r;
		if ((size_t)r < n)
			break;
	} while (done < count);
	return (ssize_t)done;
}

ssize_t client_write(struct client *c, int fd, const void *buf, size_t count)
{
	struct client_fd *f = granted_fd(c, fd);
	if (f)
		return at_position(c, f, fd, 1, (void *)buf, count);
	return write_pieces(c, CTL_WRITE, fd, buf, count, 0);
}

ssize_t client_pwrite(struct client *c, int fd, const void *buf, size_t count, off_t off)
{
	int r = client_local_pwrite(c, fd, buf, count, off);
	if (r != 0)
		return r < 0 ? -1 : (ssize_t)count;
	return write_pieces(c, CTL_PWRITE, fd, buf, count, off);
}

off_t client_lseek(struct client *c, int fd, off_t off, int whence)
{
	struct client_fd *f = granted_fd(c, fd);
	if (!f)
		return (off_t)request(c, CTL_LSEEK, ARGS(fd, off, whence), NULL, 0, NULL, 0, NULL,
		                      0);
	pthread_mutex_lock(&f->lock);
	off_t r = 0;
	if (whence == SEEK_CUR)
		r = resolve_end(c, f, fd);
	off_t base = whence == SEEK_CUR ? (off_t)f->pos : 0;
	if (r < 0) {
		/* the daemon is gone: errno says so */
	} else if (whence == SEEK_SET || whence == SEEK_CUR) {
		if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
			r = fail_errno(off > 0 ? EOVERFLOW : EINVAL);
		else
			r = base + off;
	} else {
		/* The end, data and holes are the daemon's to know; it
		 * ingests the log first. */
		int rfd = fd;
		r = remote_fd(c, &rfd) ? -1
		                       : (off_t)request(c, CTL_LSEEK, ARGS(rfd, off, whence), NULL,
		                                        0, NULL, 0, NULL, 0);
	}
	if (r >= 0) {
		f->pos = (uint64_t)r;
		f->pos_at_end = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

int client_fdcall(struct client *c, int op, int fd, int64_t a1, int64_t a2, int64_t a3)
{
	if (remote_fd(c, &fd))
		return -1;
	return (int)request(c, op, ARGS(fd, a1, a2, a3), NULL, 0, NULL, 0, NULL, 0);
}

int client_fstat(struct client *c, int fd, struct stat *st)
{
	if (!st)
		return fail_errno(EFAULT);
	if (remote_fd(c, &fd))
		return -1;
	return (int)request(c, CTL_FSTAT, ARGS(fd), NULL, 0, NULL, 0, st, sizeof(*st));
}

int client_stat(struct client *c, const char *path, struct stat *st, int follow)
{
	if (!st)
		return fail_errno(EFAULT);
	return (int)request(c, follow ? CTL_STAT : CTL_LSTAT, NULL, &path, 1, NULL, 0, st,
	                    sizeof(*st));
}

/* An unlink in the log when the client made the file and holds its
 * directory; else the daemon's, which keeps the client's grant of the
 * directory (the name it held goes from it here). */
static int unlink_path(struct client *c, struct client_names *n, const char *path)
{
	int r = client_names_unlink(c, n, path);
	if (r != 0)
		return r < 0 ? -1 : 0;
	uint64_t dir = client_names_begin(c, n, path);
	r = (int)request(c, CTL_UNLINK, ARGS(0, 0, 0, (int64_t)dir), &path, 1, NULL, 0, NULL, 0);
	client_names_done(n, path, r, 0, 0);
	return r;
}

int client_path(struct client *c, int op, const char *p1, const char *p2, int64_t a0, int64_t a1)
{
	struct client_names *n = c->log ? c->names : NULL;
	if (op == CTL_UNLINK && n)
		return unlink_path(c, n, p1);
	int two = op == CTL_RENAME || op == CTL_LINK || op == CTL_SYMLINK || op == CTL_REMOVEXATTR;
	const char *strs[2] = {p1, p2};
	return (int)request(c, op, ARGS(a0, a1), strs, two ? 2 : 1, NULL, 0, NULL, 0);
}

ssize_t client_readlink(struct client *c, const char *path, char *buf, size_t size)
{
	if (!buf)
		return fail_errno(EFAULT);
	if (size > PATH_MAX)
		size = PATH_MAX;
	return request(c, CTL_READLINK, ARGS((int64_t)size), &path, 1, NULL, 0, buf, size);
}

int client_utimens(struct client *c, const char *path, const struct timespec times[2])
{
	return (int)request(c, CTL_UTIMENS, NULL, &path, 1, times, times ? 2 * sizeof(times[0]) : 0,
	                    NULL, 0);
}

int client_statvfs(struct client *c, const char *path, struct statvfs *sv)
{
	if (!sv)
		return fail_errno(EFAULT);
	return (int)request(c, CTL_STATVFS, NULL, &path, 1, NULL, 0, sv, sizeof(*sv));
}

int client_setxattr(struct client *c, const char *path, const char *name, const void *value,
                    size_t size, int flags)
{
	if (!value && size)
		return fail_errno(EFAULT);
	if (size > 65536)
		return fail_errno(E2BIG);
	const char *strs[2] = {path, name};
	return (int)request(c, CTL_SETXATTR, ARGS(flags), strs, 2, value, size, NULL, 0);
}

ssize_t client_getxattr(struct client *c, const char *path, const char *name, void *value,
                        size_t size)
{
	if (!value && size)
		return fail_errno(EFAULT);
	const char *strs[2] = {path, name};
	if (size > 65536)
		size = 65536;
	return request(c, CTL_GETXATTR, ARGS((int64_t)size), strs, 2, NULL, 0, value, size);
}

ssize_t client_listxattr(struct client *c, const char *path, char *list, size_t size)
{
	if (!list && size)
		return fail_errno(EFAULT);
	if (size > 65536)
		size = 65536;
	return request(c, CTL_LISTXATTR, ARGS((int64_t)size), &path, 1, NULL, 0, list, size);
}

int client_opendir(struct client *c, const char *path)
{
	return (int)request(c, CTL_OPENDIR, NULL, &path, 1, NULL, 0, NULL, 0);
}

int client_readdir(struct client *c, int h, uint64_t cookie, struct ctl_dirent *e)
{
	return (int)request(c, CTL_READDIR, ARGS(h, (int64_t)cookie), NULL, 0, NULL, 0, e,
	                    CTL_DIR_BATCH * sizeof(*e));
}

int client_closedir(struct client *c, int h)
{
	return (int)request(c, CTL_CLOSEDIR, ARGS(h), NULL, 0, NULL, 0, NULL, 0);
}

int client_info(struct client *c, struct cairn_info *out)
{
	if (!out)
		return fail_errno(EFAULT);
	return (int)request(c, CTL_INFO, NULL, NULL, 0, NULL, 0, out, sizeof(*out));
}

int client_tune(struct client *c, const struct cairn_tuning *t)
{
	return (int)request(c, CTL_TUNE,
	                    ARGS(t->high_watermark, t->low_watermark, t->promotion, t->batch_ms),
	                    NULL, 0, NULL, 0, NULL, 0);
}

int client_tier(struct client *c, int cmd, const char *name, const char *path, uint64_t n,
                uint64_t unit, int force, struct ctl_tier_reply *r)
{
	const char *strs[2] = {name ? name : "", path ? path : ""};
	memset(r, 0, sizeof(*r));
	int64_t rc = request(c, CTL_TIER, ARGS(cmd, (int64_t)n, (int64_t)unit, force), strs, 2,
	                     NULL, 0, r, sizeof(*r));
	r->msg[sizeof(r->msg) - 1] = 0;
	return rc < 0 ? -1 : 0;
}

int client_volume_call(struct client *c, int op)
{
	return (int)request(c, op, NULL, NULL, 0, NULL, 0, NULL, 0);
}

/* A scrub run by the daemon (root only), watched until it ends; the
 * caller's struct gets the progress as it goes, and its cancel flag is
 * passed on. */
int client_scrub(struct client *c, struct cairn_scrub *s)
{
	if (!s)
		return fail_errno(EFAULT);
	struct ctl_scrub_status st;
	int cancelled = 0;
	int64_t rc =
	    request(c, CTL_SCRUB, ARGS(CTL_SCRUB_START_CMD), NULL, 0, NULL, 0, &st, sizeof(st));
	while (rc >= 0) {
		if (__atomic_load_n(&s->cancel, __ATOMIC_RELAXED) && !cancelled) {
			cancelled = 1;
			rc = request(c, CTL_SCRUB, ARGS(CTL_SCRUB_CANCEL_CMD), NULL, 0, NULL, 0,
			             &st, sizeof(st));
			continue;
		}
		ctl_scrub_copy(s, &st.s); /* the caller may be watching it */
		if (st.state != CTL_SCRUB_RUNNING)
			break;
		nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
		rc = request(c, CTL_SCRUB, ARGS(CTL_SCRUB_STATUS_CMD), NULL, 0, NULL, 0, &st,
		             sizeof(st));
	}
	if (rc < 0)
		return -1;
	return st.state == CTL_SCRUB_FAILED ? fail_errno(st.error ? st.error : EIO) : 0;
}
