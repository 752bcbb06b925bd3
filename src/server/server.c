/*
 * server.c - the daemon's socket: accepting clients, learning who they are
 * from the kernel, one thread per client reading its requests and writing
 * the replies, and the end of a session when the client exits, dies or
 * misbehaves.
 *
 * Owns: struct ctl_server, the socket file, the list of sessions.
 * May call: serve_ops.c (serve_request), access.h, libc.
 *
 * A client's death is seen at once: the kernel closes its end of the
 * socket, the session's read returns end-of-file, and what the client
 * held open is closed.  Everything it was told succeeded is already in
 * the volume's log (the call returned after the daemon's own call did),
 * so nothing acknowledged depends on the client still being there.
 */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/un.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "libfs/clients.h"
#include "server/server_internal.h"

struct ctl_server {
	cairn_fs *fs;
	int listen_fd;
	int stop_pipe[2]; /* written once to stop the accepting thread */
	int admit_all;
	uid_t owner;
	void (*say)(const char *msg);
	struct ctl_watch watch;
	int watched;
	uint64_t spin_ns; /* both ends poll this long before sleeping */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_t acceptor;
	pthread_mutex_t lock; /* the list and the count below */
	pthread_cond_t idle;
	struct session *sessions;
	int live;
	int stopping;
	struct scrub_job scrub;
	time_t last_refusal_said; /* the acceptor's alone */
	pthread_t catcher;        /* copies the clients' logs into the volume's */
	atomic_int catching;
};

struct scrub_job *server_scrub_job(struct ctl_server *srv)
{
	return &srv->scrub;
}

int ctl_server_scrub(struct ctl_server *srv, int cmd, struct ctl_scrub_status *out)
{
	int rc = scrub_job_control(&srv->scrub, cmd);
	if (!rc && out)
		scrub_job_status(&srv->scrub, out);
	return rc;
}

static void say(struct ctl_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct ctl_server *srv, const char *fmt, ...)
{
	if (!srv->say)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	srv->say(msg);
}

static void say_line(void *arg, const char *msg)
{
	say(arg, "%s; session ended", msg);
}

/* ---- bytes on the socket ------------------------------------------------- */

/* The reply, with the descriptors the request passes to the client (which
 * are closed here: the client has its own copies). */
static int send_reply(struct session *s, const struct ctl_rep *rp)
{
	struct iovec iov[2] = {{(void *)rp, sizeof(*rp)}, {s->out, rp->len}};
	int rc = ctl_send_fds(s->sock, iov, rp->len ? 2 : 1, s->pass_fds, rp->err ? 0 : s->npass);
	for (int i = 0; i < s->npass; i++)
		close(s->pass_fds[i]);
	s->npass = 0;
	return rc;
}

/* Splits a payload into its strings and data; -1 when it is malformed. */
static int parse(const struct ctl_req *h, const uint8_t *payload, struct request *rq)
{
	memset(rq, 0, sizeof(*rq));
	rq->h = h;
	if (h->nstr > 3)
		return -1;
	size_t at = 0;
	for (int i = 0; i < h->nstr; i++) {
		if (at >= h->len)
			return -1;
		const uint8_t *nul = memchr(payload + at, 0, h->len - at);
		if (!nul || (size_t)(nul - (payload + at)) >= PATH_MAX)
			return -1;
		rq->str[i] = (const char *)payload + at;
		at = (size_t)(nul - payload) + 1;
	}
	rq->data = payload + at;
	rq->dlen = h->len - at;
	return 0;
}

/* ---- one session --------------------------------------------------------- */

/* Learns the client's uid, gid and groups from the kernel. */
static int learn_cred(int sock, struct cred *c)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &uc, &len))
		return -errno;
	c->uid = uc.uid;
	c->gid = uc.gid;
	c->pid = uc.pid;
	gid_t groups[256];
	len = sizeof(groups);
	gid_t *g = groups;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, g, &len)) {
		if (errno != ERANGE)
			return -errno;
		g = malloc(len);
		if (!g || getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, g, &len)) {
			free(g);
			return -ENOMEM;
		}
	}
	c->ngroups = (int)(len / sizeof(gid_t));
	c->groups = malloc((size_t)(c->ngroups ? c->ngroups : 1) * sizeof(uint32_t));
	if (c->groups)
		for (int i = 0; i < c->ngroups; i++)
			c->groups[i] = g[i];
	if (g != groups)
		free(g);
	return c->groups ? 0 : -ENOMEM;
}

#define HELLO_SECONDS 5

static int set_recv_timeout(int sock, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	return setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* The first request must be a hello of this build's protocol.  A
 * connection that says nothing holds a place: it has HELLO_SECONDS to
 * greet, then it is closed. */
static int hello(struct session *s)
{
	struct ctl_req h;
	if (set_recv_timeout(s->sock, HELLO_SECONDS) || ctl_recv_all(s->sock, &h, sizeof(h)) ||
	    set_recv_timeout(s->sock, 0))
		return -1;
	struct ctl_rep rp = {.ret = (int64_t)s->srv->spin_ns};
	if (h.magic != CTL_MAGIC || h.op != CTL_HELLO || h.len != 0)
		return -1;
	if (h.a[0] != CTL_VERSION || h.a[1] != (int64_t)sizeof(struct stat) ||
	    h.a[2] != (int64_t)sizeof(struct cairn_info) ||
	    h.a[3] != (int64_t)sizeof(struct ctl_dirent))
		rp.err = EPROTO;
	else if (!s->srv->admit_all && s->cred.uid != 0 && s->cred.uid != s->srv->owner)
		rp.err = EACCES;
	int sent = send_reply(s, &rp) == 0;
	if (rp.err)
		say(s->srv, "client pid %d uid %u refused: %s", s->cred.pid, s->cred.uid,
		    rp.err == EACCES ? "this daemon admits only its own user and root"
		                     : "a client of another protocol version");
	return sent && !rp.err ? 0 : -1;
}

#define BUF_START 65536
#define MAX_SESSIONS 1024
#define MAX_SESSIONS_PER_USER 256

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = need < BUF_START ? BUF_START : need;
	uint8_t *b = realloc(*buf, n);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = n;
	return 0;
}

int session_out(struct session *s, size_t need)
{
	return grow(&s->out, &s->outcap, need);
}

/* After a large request a buffer goes back to its first size: an idle
 * client may not keep megabytes of the daemon's memory. */
static void shrink(uint8_t **buf, size_t *cap)
{
	uint8_t *b = *cap > BUF_START ? realloc(*buf, BUF_START) : NULL;
	if (b) {
		*buf = b;
		*cap = BUF_START;
	}
}

/* Serves requests until the client goes or sends something malformed. */
static void serve_loop(struct session *s)
{
	for (;;) {
		struct ctl_req h;
		size_t have;
		ctl_spin_readable(s->sock, s->srv->spin_ns);
		if (ctl_recv_head(s->sock, &h, sizeof(h), s->in, s->incap, &have))
			return; /* the client closed, exited or died */
		struct request rq;
		const char *why = NULL;
		if (h.magic != CTL_MAGIC || h.len > CTL_MAX_PAYLOAD)
			why = "a bad header";
		else if (have > h.len)
			why = "a request sent before the reply to the last one";
		else if (grow(&s->in, &s->incap, h.len))
			return;
		else if (ctl_recv_all(s->sock, s->in + have, h.len - have))
			return;
		else if (parse(&h, s->in, &rq))
			why = "bad strings";
		uint32_t outlen = 0;
		int64_t r = why ? SERVE_END : serve_request(s, &rq, &outlen);
		if (r == SERVE_END) {
			say(s->srv,
			    "client pid %d uid %u: malformed request (%s, op %u); session ended",
			    s->cred.pid, s->cred.uid, why ? why : "bad arguments", h.op);
			return;
		}
		struct ctl_rep rp = {.err = r < 0 ? (int32_t)-r : 0,
		                     .len = r < 0 ? 0 : outlen,
		                     .ret = r < 0 ? -1 : r};
		if (send_reply(s, &rp))
			return;
		shrink(&s->in, &s->incap);
		shrink(&s->out, &s->outcap);
	}
}

static void session_end(struct session *s)
{
	struct ctl_server *srv = s->srv;
	/* Off the list before its socket closes: ctl_server_stop shuts
	 * down the sockets of the list, and the number may be reused. */
	pthread_mutex_lock(&srv->lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&srv->lock);
	/* The client's own log first: its records apply to files it held
	 * open. */
	serve_clog_end(s, say_line, srv);
	serve_tiers_end(s);
	serve_release(s);
	close(s->sock);
	free(s->cred.groups);
	free(s->in);
	free(s->out);
	free(s);
	pthread_mutex_lock(&srv->lock);
	if (--srv->live == 0)
		pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	if (!session_out(s, BUF_START) && !hello(s))
		serve_loop(s);
	session_end(s);
	return NULL;
}

/* ---- accepting ----------------------------------------------------------- */

static void start_session(struct ctl_server *srv, int sock)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s || learn_cred(sock, &s->cred)) {
		free(s);
		close(sock);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	int live = srv->live, full = live >= MAX_SESSIONS;
	int mine = 0;
	for (struct session *o = srv->sessions; o; o = o->next)
		mine += o->cred.uid == s->cred.uid;
	pthread_mutex_unlock(&srv->lock);
	/* One user may not take every place: root's and the others' stay. */
	if (s->cred.uid != 0 && mine >= MAX_SESSIONS_PER_USER)
		full = 1;
	if (full) {
		/* A user knocking on and on gets one line a second, not one
		 * per connection: the log is not for it to fill. */
		time_t now = time(NULL);
		if (now != srv->last_refusal_said) {
			srv->last_refusal_said = now;
			say(srv,
			    "client pid %d uid %u refused: %d clients attached already (%d of "
			    "this user)",
			    s->cred.pid, s->cred.uid, live, mine);
		}
		free(s->cred.groups);
		free(s);
		close(sock);
		return;
	}
	s->srv = srv;
	s->fs = srv->fs;
	s->sock = sock;
	s->watch = srv->watched ? &srv->watch : NULL;
	pthread_mutex_lock(&srv->lock);
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->live++;
	pthread_mutex_unlock(&srv->lock);
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, session_main, s)) {
		say(srv, "client pid %d: cannot start a thread for it", s->cred.pid);
		session_end(s);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
	struct ctl_server *srv = arg;
	struct pollfd p[2] = {{srv->listen_fd, POLLIN, 0}, {srv->stop_pipe[0], POLLIN, 0}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		int sock = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (sock >= 0)
			start_session(srv, sock);
		else if (errno == EMFILE || errno == ENFILE)
			poll(NULL, 0, 100); /* let sessions end before trying again */
	}
	return NULL;
}

/* Whether no call of this volume waits for a device (byte-addressable
 * media, no capacity tier): then polling beats sleeping. */
static int calls_are_quick(cairn_fs *fs)
{
	struct cairn_info in;
	if (cairn_info(fs, &in))
		return 0;
	return strcmp(in.media, "file") != 0 && in.tier_count <= 1;
}

static int listen_on(struct ctl_server *srv, const char *volume_dir)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int n = snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", volume_dir, CTL_SOCKET_NAME);
	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(srv->path, a.sun_path, sizeof(srv->path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Only a socket may be replaced: it is a dead daemon's, since the
	 * caller holds the volume lock. */
	struct stat st;
	if (!lstat(a.sun_path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			return -EEXIST;
		}
		unlink(a.sun_path);
	}
	/* The socket is made with the mode it keeps: no moment where a user
	 * the daemon would refuse can connect is needed, and none exists. */
	mode_t old = umask(srv->admit_all ? 0 : 077);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (!rc && srv->admit_all)
		rc = chmod(a.sun_path, 0666);
	if (!rc)
		rc = listen(fd, 64);
	if (rc) {
		rc = -errno;
		close(fd);
		return rc;
	}
	srv->listen_fd = fd;
	return 0;
}

/* While clients have private logs, their records are copied into the
 * volume's log by this thread, and each client is told how much of its
 * log it may reuse: without this, a client would learn it only by
 * asking, when its log is full (and would wait for the copy then).  While
 * records keep coming it looks again after CATCH_UP_BUSY_NS, so that a
 * client streaming writes finds its ring freed as it goes (a 4 MiB ring
 * holds about a millisecond of 4 KiB appends); when a look finds none,
 * the pause doubles up to CATCH_UP_IDLE_NS.  A look that filled a batch
 * at least is followed by a yield instead: a client is streaming, the
 * copy is what it waits for, and a sleep of 100 us takes 171 on this
 * machine, with nothing copied meanwhile (docs/PERFORMANCE.md, "The
 * catch-up thread's yield").  A client that writes now and then still
 * gets the sleep, so this thread does not poll a processor away from
 * it.  (Requests do not wait for it: each ingests first.)
 * After a client started, it also makes the next client's log file
 * (clients_make_spare). */
#define CATCH_UP_BUSY_NS 100000
#define CATCH_UP_IDLE_NS 1000000

static void *catch_up_main(void *arg)
{
	struct ctl_server *srv = arg;
	long pause = CATCH_UP_IDLE_NS;
	while (atomic_load(&srv->catching)) {
		if (pause)
			nanosleep(&(struct timespec){0, pause}, NULL);
		else
			sched_yield();
		clients_make_spare(srv->fs); /* after a client started */
		int got = clients_catch_up(srv->fs);
		if (got == CLIENTS_STREAMING)
			pause = 0;
		else if (got > 0 || pause == 0)
			pause = CATCH_UP_BUSY_NS;
		else if (pause < CATCH_UP_IDLE_NS)
			pause = pause * 2 < CATCH_UP_IDLE_NS ? pause * 2 : CATCH_UP_IDLE_NS;
	}
	return NULL;
}

int ctl_server_start(cairn_fs *fs, const char *volume_dir, int admit_all,
                     void (*sayfn)(const char *msg), const struct ctl_watch *watch,
                     struct ctl_server **out)
{
	struct ctl_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->fs = fs;
	srv->admit_all = admit_all;
	srv->owner = geteuid();
	srv->say = sayfn;
	if (watch) {
		srv->watch = *watch;
		srv->watched = 1;
	}
	srv->listen_fd = -1;
	srv->spin_ns = calls_are_quick(fs) ? CTL_SPIN_NS : 0;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle, NULL);
	scrub_job_init(&srv->scrub, fs);
	int rc = pipe2(srv->stop_pipe, O_CLOEXEC) ? -errno : listen_on(srv, volume_dir);
	atomic_store(&srv->catching, 1);
	if (!rc && pthread_create(&srv->catcher, NULL, catch_up_main, srv))
		rc = -EAGAIN;
	if (!rc && pthread_create(&srv->acceptor, NULL, accept_main, srv)) {
		rc = -EAGAIN;
		atomic_store(&srv->catching, 0);
		pthread_join(srv->catcher, NULL);
	}
	if (rc && srv->listen_fd >= 0) {
		unlink(srv->path);
		close(srv->listen_fd);
	}
	if (rc) {
		if (srv->stop_pipe[0] > 0) {
			close(srv->stop_pipe[0]);
			close(srv->stop_pipe[1]);
		}
		scrub_job_stop(&srv->scrub);
		free(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

int ctl_server_sessions(const struct ctl_server *srv)
{
	return srv ? __atomic_load_n(&srv->live, __ATOMIC_RELAXED) : 0;
}

void ctl_server_stop(struct ctl_server *srv)
{
	if (!srv)
		return;
	char b = 1;
	if (write(srv->stop_pipe[1], &b, 1) != 1) {
		/* a pipe of one byte does not fill: cannot happen */
	}
	pthread_join(srv->acceptor, NULL);
	unlink(srv->path);
	close(srv->listen_fd);
	pthread_mutex_lock(&srv->lock);
	for (struct session *s = srv->sessions; s; s = s->next)
		shutdown(s->sock, SHUT_RDWR); /* its thread reads end-of-file */
	while (srv->live > 0)
		pthread_cond_wait(&srv->idle, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	atomic_store(&srv->catching, 0);
	pthread_join(srv->catcher, NULL);
	close(srv->stop_pipe[0]);
	close(srv->stop_pipe[1]);
	scrub_job_stop(&srv->scrub);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->idle);
	free(srv);
}
