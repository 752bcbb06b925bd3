/*
 * client_names.c - names in a client's log: a create or an unlink in a
 * directory the client holds the grant of is a record in its own log, with
 * no message (src/libfs/clients.h has the daemon's side and the rules).
 *
 * Owns: struct client_names: the directories granted (each with every
 * name it holds, exact while the grant lives), the paths known to lead to
 * them, the inode numbers set aside for creates, and the files made.
 * May call: client_log.c (the records), client.c (round trips).
 *
 * One lock serializes the client's changes of names, local or not: a
 * name the daemon creates for this client while another of its threads
 * creates the same name in the log would make that record one of a name
 * that is there, which the daemon refuses as forged.
 */
#include "client/client_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log/clog_format.h"
#include "proto/ctl.h"

#define NAMES_DIRS 8   /* CLOG_DIR_GRANTS */
#define NAMES_PATHS 32 /* paths known to lead to a granted directory */
#define NAMES_REFUSED 16

struct lname {
	char *name;   /* NULL: free; TOMB: removed */
	uint64_t ino; /* 0: not known (made by the daemon for this client) */
	uint8_t type;
};
static char tomb;
#define TOMB (&tomb)

struct ldir {
	uint64_t ino; /* 0: slot free */
	struct client_grant g;
	struct lname *tab;
	size_t cap, used; /* used counts tombs too */
};

struct lpath {
	char *path;
	int dir;
};

struct refused {
	char *path;
	int64_t until;
};

struct made {
	uint64_t ino;
	struct client_grant g;
	int fds;
};

struct client_names {
	pthread_mutex_t lock;
	struct ldir dirs[NAMES_DIRS];
	struct lpath paths[NAMES_PATHS];
	struct refused refused[NAMES_REFUSED];
	struct ctl_aside aside[CLOG_GRANTS];
	int naside;
	uint32_t done[CLOG_GRANTS];
	int ndone;
	struct made made[CLOG_GRANTS];
	int nmade;
};

struct client_names *client_names_new(void)
{
	struct client_names *n = calloc(1, sizeof(*n));
	if (n)
		pthread_mutex_init(&n->lock, NULL);
	return n;
}

static void dir_clear(struct ldir *d)
{
	for (size_t i = 0; i < d->cap; i++)
		if (d->tab[i].name != TOMB)
			free(d->tab[i].name);
	free(d->tab);
	memset(d, 0, sizeof(*d));
}

void client_names_free(struct client_names *n)
{
	if (!n)
		return;
	for (int i = 0; i < NAMES_DIRS; i++)
		dir_clear(&n->dirs[i]);
	for (int i = 0; i < NAMES_PATHS; i++)
		free(n->paths[i].path);
	for (int i = 0; i < NAMES_REFUSED; i++)
		free(n->refused[i].path);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

/* ---- a directory's names ------------------------------------------------------ */

static uint64_t hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

static struct lname *find(const struct ldir *d, const char *name, size_t len)
{
	if (!d->cap)
		return NULL;
	for (size_t k = 0, i = hash(name, len) % d->cap; k < d->cap; k++, i = (i + 1) % d->cap) {
		struct lname *e = &d->tab[i];
		if (!e->name)
			return NULL;
		if (e->name != TOMB && strlen(e->name) == len && !memcmp(e->name, name, len))
			return e;
	}
	return NULL;
}

static int grow(struct ldir *d)
{
	size_t cap = d->cap ? d->cap * 2 : 64;
	struct lname *t = calloc(cap, sizeof(*t));
	if (!t)
		return -1;
	struct ldir old = *d;
	d->tab = t;
	d->cap = cap;
	d->used = 0;
	for (size_t i = 0; i < old.cap; i++) {
		struct lname *e = &old.tab[i];
		if (!e->name || e->name == TOMB)
			continue;
		size_t j = hash(e->name, strlen(e->name)) % cap;
		while (t[j].name)
			j = (j + 1) % cap;
		t[j] = *e;
		d->used++;
	}
	free(old.tab);
	return 0;
}

static int add(struct ldir *d, const char *name, size_t len, uint64_t ino, uint8_t type)
{
	if ((d->used + 1) * 2 > d->cap && grow(d))
		return -1;
	size_t i = hash(name, len) % d->cap;
	while (d->tab[i].name && d->tab[i].name != TOMB)
		i = (i + 1) % d->cap;
	char *copy = strndup(name, len);
	if (!copy)
		return -1;
	if (!d->tab[i].name)
		d->used++;
	d->tab[i] = (struct lname){copy, ino, type};
	return 0;
}

static void drop(struct lname *e)
{
	free(e->name);
	e->name = TOMB;
}

/* ---- paths -------------------------------------------------------------------- */

/* Splits an absolute path into its directory's path (into parent) and
 * its last name: 1, or 0 when the path is not one the log can serve (no
 * name at its end, "." or "..", too long). */
static int split(const char *path, char *parent, size_t cap, const char **name, size_t *len)
{
	if (!path || path[0] != '/')
		return 0;
	const char *slash = strrchr(path, '/');
	*name = slash + 1;
	*len = strlen(*name);
	if (*len == 0 || *len > CLOG_NAME_MAX || !strcmp(*name, ".") || !strcmp(*name, ".."))
		return 0;
	size_t plen = slash == path ? 1 : (size_t)(slash - path);
	if (plen >= cap)
		return 0;
	memcpy(parent, path, plen);
	parent[plen] = 0;
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int refused_now(struct client_names *n, const char *parent)
{
	int64_t now = now_ms();
	for (int i = 0; i < NAMES_REFUSED; i++)
		if (n->refused[i].path && n->refused[i].until > now &&
		    !strcmp(n->refused[i].path, parent))
			return 1;
	return 0;
}

/* The daemon refused a grant of parent: not asked again for ms. */
static void refuse(struct client_names *n, const char *parent, int64_t ms)
{
	int k = 0;
	for (int i = 1; i < NAMES_REFUSED; i++)
		if (n->refused[i].until < n->refused[k].until)
			k = i;
	free(n->refused[k].path);
	n->refused[k].path = strdup(parent);
	n->refused[k].until = now_ms() + ms;
}

/* A directory whose grant went: it and every path to it are forgotten. */
static void dir_forget(struct client_names *n, int k)
{
	dir_clear(&n->dirs[k]);
	for (int i = 0; i < NAMES_PATHS; i++)
		if (n->paths[i].path && n->paths[i].dir == k) {
			free(n->paths[i].path);
			n->paths[i].path = NULL;
		}
}

static void path_add(struct client_names *n, const char *parent, int k)
{
	int free_at = -1;
	for (int i = 0; i < NAMES_PATHS && free_at < 0; i++)
		if (!n->paths[i].path)
			free_at = i;
	if (free_at < 0)
		return;
	n->paths[free_at].path = strdup(parent);
	n->paths[free_at].dir = k;
}

/* The granted directory parent leads to, if its grant still holds. */
static struct ldir *dir_known(struct client *c, struct client_names *n, const char *parent)
{
	for (int i = 0; i < NAMES_PATHS; i++) {
		if (!n->paths[i].path || strcmp(n->paths[i].path, parent))
			continue;
		int k = n->paths[i].dir;
		if (client_log_live(client_log_of(c), &n->dirs[k].g))
			return &n->dirs[k];
		dir_forget(n, k);
		return NULL;
	}
	return NULL;
}

/* Fills directory slot k from a CTL_DIR_GRANT reply of rlen bytes. */
static int dir_fill(struct ldir *d, const uint8_t *r, size_t rlen)
{
	struct ctl_dir_grant g;
	if (rlen < sizeof(g))
		return -1;
	memcpy(&g, r, sizeof(g));
	d->ino = g.ino;
	d->g = (struct client_grant){g.index, g.epoch};
	size_t off = sizeof(g);
	for (uint32_t i = 0; i < g.count; i++) {
		struct ctl_dentry e;
		if (off + sizeof(e) > rlen)
			return -1;
		memcpy(&e, r + off, sizeof(e));
		if (off + CTL_DENTRY_SIZE(e.namelen) > rlen ||
		    add(d, (const char *)r + off + sizeof(e), e.namelen, e.ino, e.type))
			return -1;
		off += CTL_DENTRY_SIZE(e.namelen);
	}
	return 0;
}

/* Asks for the grant of parent's directory. */
static struct ldir *dir_ask(struct client *c, struct client_names *n, const char *parent)
{
	if (refused_now(n, parent))
		return NULL;
	struct client_log *l = client_log_of(c);
	int k = -1;
	for (int i = 0; i < NAMES_DIRS; i++)
		if (n->dirs[i].ino && !client_log_live(l, &n->dirs[i].g))
			dir_forget(n, i); /* revoked since */
	for (int i = 0; i < NAMES_DIRS && k < 0; i++)
		if (!n->dirs[i].ino)
			k = i;
	if (k < 0)
		return NULL;
	uint8_t *r = malloc(CTL_MAX_DATA);
	if (!r)
		return NULL;
	const char *strs[1] = {parent};
	int64_t rc = client_request(c, CTL_DIR_GRANT, NULL, strs, 1, NULL, 0, r, CTL_MAX_DATA);
	struct ldir *d = NULL;
	if (rc < 0) {
		/* Entries the mount's kernel keeps expire within seconds. */
		refuse(n, parent, errno == EAGAIN ? 2000 : 30000);
	} else if (dir_fill(&n->dirs[k], r, (size_t)rc) == 0) {
		d = &n->dirs[k];
		/* Another path to a directory known already: the names just
		 * given are the ones that hold (the daemon applied this
		 * client's records first); an older copy, maybe of a grant
		 * since revoked, goes with the paths to it. */
		for (int i = 0; i < NAMES_DIRS; i++)
			if (i != k && n->dirs[i].ino == d->ino)
				dir_forget(n, i);
		path_add(n, parent, k);
	} else {
		dir_clear(&n->dirs[k]);
	}
	free(r);
	return d;
}

/* ---- inode numbers set aside, files made ------------------------------------ */

static struct made *made_of(struct client_names *n, uint64_t ino)
{
	for (int i = 0; i < n->nmade; i++)
		if (n->made[i].ino == ino)
			return &n->made[i];
	return NULL;
}

/* Made files with no descriptor left go back with the next request for
 * inode numbers: their grants hold until then. */
static void made_done(struct client_names *n, int i)
{
	n->done[n->ndone++] = n->made[i].g.index;
	n->made[i] = n->made[--n->nmade];
}

static int take_aside(struct client *c, struct client_names *n, struct ctl_aside *out)
{
	if (!n->naside) {
		for (int i = n->nmade - 1; i >= 0; i--)
			if (!n->made[i].fds)
				made_done(n, i);
		int64_t got =
		    client_request(c, CTL_SET_ASIDE, (const int64_t[4]){n->ndone}, NULL, 0, n->done,
		                   (size_t)n->ndone * sizeof(uint32_t), n->aside, sizeof(n->aside));
		if (got >= 0)
			n->ndone = 0;
		n->naside = got > 0 ? (int)got : 0;
	}
	if (!n->naside || n->nmade >= CLOG_GRANTS)
		return 0;
	*out = n->aside[--n->naside];
	return 1;
}

void client_names_opened(struct client_names *n, uint64_t ino, int delta)
{
	pthread_mutex_lock(&n->lock);
	struct made *m = made_of(n, ino);
	if (m)
		m->fds += delta;
	pthread_mutex_unlock(&n->lock);
}

/* ---- the calls ------------------------------------------------------------------- */

static int create_locked(struct client *c, struct client_names *n, const char *path, int flags,
                         mode_t mode, uint64_t *ino, struct client_grant *g)
{
	char parent[PATH_MAX];
	const char *name;
	size_t len;
	if (!split(path, parent, sizeof(parent), &name, &len))
		return 0;
	struct ldir *d = dir_known(c, n, parent);
	if (!d)
		d = dir_ask(c, n, parent);
	if (!d)
		return 0;
	if (find(d, name, len)) {
		if (flags & O_EXCL) {
			errno = EEXIST;
			return -1;
		}
		return 0; /* the daemon opens it */
	}
	struct ctl_aside a;
	if (!take_aside(c, n, &a))
		return 0;
	struct client_log *l = client_log_of(c);
	int r = client_log_create(c, l, &d->g, d->ino, a.ino, (uint32_t)(mode & 07777), name, len);
	if (r <= 0) {
		n->aside[n->naside++] = a; /* not made: still set aside */
		return r;
	}
	if (add(d, name, len, a.ino, DT_REG))
		dir_forget(n, (int)(d - n->dirs)); /* asked for anew */
	struct made *m = &n->made[n->nmade++];
	*m = (struct made){a.ino, {a.index, a.epoch}, 1};
	*ino = a.ino;
	*g = m->g;
	return 1;
}

int client_names_create(struct client *c, struct client_names *n, const char *path, int flags,
                        mode_t mode, uint64_t *ino, struct client_grant *g)
{
	/* Only a new regular file opened for writing, with bits the daemon
	 * would give as asked. */
	if ((flags & O_ACCMODE) == O_RDONLY || (flags & O_DIRECTORY) ||
	    (mode & (S_ISUID | S_ISGID)) || !n)
		return 0;
	pthread_mutex_lock(&n->lock);
	int r = create_locked(c, n, path, flags, mode, ino, g);
	pthread_mutex_unlock(&n->lock);
	return r;
}

static int unlink_locked(struct client *c, struct client_names *n, const char *path)
{
	char parent[PATH_MAX];
	const char *name;
	size_t len;
	if (!split(path, parent, sizeof(parent), &name, &len))
		return 0;
	struct ldir *d = dir_known(c, n, parent);
	if (!d)
		return 0;
	struct lname *e = find(d, name, len);
	if (!e) {
		errno = ENOENT;
		return -1;
	}
	if (e->type == DT_DIR) {
		errno = EISDIR;
		return -1;
	}
	/* Only a file the client made and still holds: the mount's kernel
	 * keeps no attributes of it, so none that the unlink makes stale. */
	struct made *m = made_of(n, e->ino);
	struct client_log *l = client_log_of(c);
	if (!m || !client_log_live(l, &m->g))
		return 0;
	int r = client_log_unlink(c, l, &d->g, d->ino, e->ino, name, len);
	if (r == 1)
		drop(e);
	return r;
}

int client_names_unlink(struct client *c, struct client_names *n, const char *path)
{
	if (!n)
		return 0;
	pthread_mutex_lock(&n->lock);
	int r = unlink_locked(c, n, path);
	pthread_mutex_unlock(&n->lock);
	return r;
}

uint64_t client_names_begin(struct client *c, struct client_names *n, const char *path)
{
	if (!n)
		return 0;
	pthread_mutex_lock(&n->lock);
	char parent[PATH_MAX];
	const char *name;
	size_t len;
	struct ldir *d = NULL;
	if (split(path, parent, sizeof(parent), &name, &len))
		d = dir_known(c, n, parent);
	/* A symbolic link (or a name of unknown type) may lead the daemon
	 * to change another name than this one: not ours to follow, so the
	 * grant is not kept through it. */
	struct lname *e = d ? find(d, name, len) : NULL;
	if (e && e->type != DT_REG)
		d = NULL;
	return d ? d->ino : 0;
}

void client_names_done(struct client_names *n, const char *path, int rc, int exists, uint64_t ino)
{
	if (!n)
		return;
	char parent[PATH_MAX];
	const char *name;
	size_t len;
	int ok = split(path, parent, sizeof(parent), &name, &len);
	for (int i = 0; ok && i < NAMES_PATHS; i++) {
		if (!n->paths[i].path || strcmp(n->paths[i].path, parent))
			continue;
		int k = n->paths[i].dir;
		struct ldir *d = &n->dirs[k];
		struct lname *e = find(d, name, len);
		/* A failed call may still have changed the name (a create whose
		 * descriptor could not be given): the copy is asked for anew. */
		if (rc != 0 || (!e && exists && add(d, name, len, ino, DT_REG)))
			dir_forget(n, k);
		else if (e && !exists)
			drop(e);
		break;
	}
	pthread_mutex_unlock(&n->lock);
}
