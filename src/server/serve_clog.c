/*
 * serve_clog.c - a session's private log: starting it (the two descriptors
 * passed to the client), grants on the files it opens for writing, the
 * client's requests to catch up, and the end of it.
 *
 * Owns: nothing of its own; the log and its state are src/libfs/clients.c's.
 * May call: src/libfs/clients.h, src/proto/ctl.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libfs/clients.h"
#include "libfs/icalls.h"
#include "log/clog_format.h"
#include "server/server_internal.h"

static int64_t clog_start_reply(struct session *s, uint32_t *outlen)
{
	if (s->clog)
		return SERVE_END; /* one log per session */
	struct clog_start st;
	int rc = clog_start(s->fs, s->sock, s->cred.uid, s->cred.gid, &s->clog, &st);
	if (rc)
		return rc;
	struct ctl_clog *r = (struct ctl_clog *)s->out;
	memset(r, 0, sizeof(*r));
	memcpy(r->log_id, st.log_id, 16);
	r->media_kind = st.media_kind;
	r->credit = st.credit;
	*outlen = sizeof(*r);
	s->pass_fds[0] = st.log_fd;
	s->pass_fds[1] = st.state_fd;
	s->npass = 2;
	return 0;
}

int64_t serve_clog(struct session *s, const struct request *rq, uint32_t *outlen)
{
	if (rq->h->op == CTL_CLOG_START)
		return clog_start_reply(s, outlen);
	if (!s->clog)
		return SERVE_END;
	const int64_t *a = rq->h->a;
	if (rq->h->op == CTL_OWN_OPENS) {
		clog_own_opens(s->fs, s->clog, a[0] ? s->cred.pid : 0);
		return 0;
	}
	if (a[0] < 0 || a[1] < 0)
		return SERVE_END;
	struct ctl_clog_sync *r = (struct ctl_clog_sync *)s->out;
	memset(r, 0, sizeof(*r));
	int ingested = 0;
	int rc = clog_sync(s->fs, s->clog, (uint64_t)a[0], (uint64_t)a[1], &r->credit, &r->granted,
	                   &r->head_off, &r->head_seq, &ingested);
	r->ingested = ingested;
	*outlen = sizeof(*r);
	return rc;
}

/* ---- names ---------------------------------------------------------------- */

struct listing {
	uint8_t *out;
	size_t used, cap;
	uint32_t count;
	int full;
};

static int list_entry(void *arg, const char *name, uint64_t ino, unsigned char type, uint64_t next)
{
	(void)next;
	struct listing *l = arg;
	size_t len = strlen(name);
	if ((len == 1 && name[0] == '.') || (len == 2 && !strcmp(name, "..")))
		return 0;
	size_t need = CTL_DENTRY_SIZE(len);
	if (l->used + need > l->cap) {
		l->full = 1;
		return 1;
	}
	struct ctl_dentry e;
	memset(&e, 0, sizeof(e));
	e.ino = ino;
	e.type = type;
	e.namelen = (uint8_t)len;
	memset(l->out + l->used, 0, need);
	memcpy(l->out + l->used, &e, sizeof(e));
	memcpy(l->out + l->used + sizeof(e), name, len);
	l->used += need;
	l->count++;
	return 0;
}

/* The grant of a directory the client may write and search, with its
 * names.  A directory with the sticky bit is not granted (an unlink there
 * depends on who owns each file), nor one whose names do not fit a reply:
 * the client then asks the daemon for every change of them. */
int64_t serve_dir_grant(struct session *s, const struct walked *w, uint64_t gen, uint32_t *outlen)
{
	if (!s->clog)
		return -EOPNOTSUPP;
	if (!S_ISDIR(w->st.st_mode))
		return -ENOTDIR;
	if (w->st.st_mode & S_ISVTX)
		return -EBUSY;
	int rc = may_access(&s->cred, &w->st, MAY_WRITE | MAY_EXEC);
	if (rc || (rc = session_out(s, CTL_MAX_DATA)))
		return rc;
	uint64_t dir = (uint64_t)w->st.st_ino;
	struct ctl_dir_grant g;
	memset(&g, 0, sizeof(g));
	if ((rc = clog_grant_dir(s->fs, s->clog, dir, gen, &g.index, &g.epoch)))
		return rc;
	/* Listed after the grant: a change after the listing revokes it. */
	struct listing l = {s->out + sizeof(g), 0, CTL_MAX_DATA - sizeof(g), 0, 0};
	rc = ic_readdir(s->fs, dir, 0, list_entry, &l);
	if (rc || l.full) {
		clog_drop_dir(s->fs, s->clog, g.index);
		return rc ? rc : -EBUSY;
	}
	g.ino = dir;
	g.count = l.count;
	memcpy(s->out, &g, sizeof(g));
	*outlen = (uint32_t)(sizeof(g) + l.used);
	/* Its attributes change with each name: the kernel keeps none. */
	if (s->watch)
		s->watch->inode(s->watch->arg, dir, -1, 0);
	return *outlen;
}

int64_t serve_set_aside(struct session *s, const struct request *rq, uint32_t *outlen)
{
	int64_t n = rq->h->a[0];
	if (!s->clog)
		return -EOPNOTSUPP;
	if (n < 0 || n > CLOG_GRANTS || rq->dlen != (size_t)n * sizeof(uint32_t))
		return SERVE_END;
	uint32_t done[CLOG_GRANTS];
	if (n)
		memcpy(done, rq->data, rq->dlen);
	struct clog_aside a[CLOG_GRANTS];
	int got = clog_set_aside(s->fs, s->clog, done, (int)n, 0, a, CLOG_GRANTS);
	if (got < 0)
		return got;
	struct ctl_aside *r = (struct ctl_aside *)s->out;
	for (int i = 0; i < got; i++)
		r[i] = (struct ctl_aside){a[i].ino, a[i].epoch, a[i].index, 0};
	*outlen = (uint32_t)((size_t)got * sizeof(*r));
	return got;
}

void serve_grant(struct session *s, int slot, int64_t want, mode_t mode, uint32_t *outlen)
{
	struct client_fd *f = &s->fds[slot];
	int acc = f->flags & O_ACCMODE;
	if (!(want & CTL_OPEN_GRANT) || !s->clog || !S_ISREG(mode) || acc == O_RDONLY)
		return;
	/* A write by anyone but root clears set-ID bits, which only the
	 * daemon can do: such a file is written through it. */
	if (s->cred.uid != 0 && without_setid(mode) != mode)
		return;
	struct ctl_grant *g = (struct ctl_grant *)s->out;
	memset(g, 0, sizeof(*g));
	if (clog_grant(s->fs, s->clog, f->ino, &g->index, &g->epoch))
		return; /* the client writes through the daemon */
	f->grant = (int)g->index + 1;
	g->ino = f->ino;
	*outlen = sizeof(*g);
	/* The mount's kernel must not keep what the client will change. */
	if (s->watch)
		s->watch->inode(s->watch->arg, f->ino, 0, 0);
}

void serve_ungrant(struct session *s, int slot)
{
	struct client_fd *f = &s->fds[slot];
	if (f->grant)
		clog_ungrant(s->fs, s->clog, (uint32_t)(f->grant - 1));
	f->grant = 0;
}

void serve_clog_end(struct session *s, void (*say)(void *arg, const char *msg), void *arg)
{
	if (!s->clog)
		return;
	char why[300];
	clog_end(s->fs, s->clog, why, sizeof(why));
	s->clog = NULL;
	if (why[0])
		say(arg, why);
}
