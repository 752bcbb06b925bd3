/*
 * client_names.c - names in a client's log: grants of directories, inode
 * numbers set aside for a client's creates, and the ingestion of the
 * creates and unlinks it makes in its log (docs/ARCHITECTURE.md, "Names
 * in a client's log").
 *
 * Owns: nothing of its own: struct clog and struct clients are clients.c's
 * (clients_internal.h); this file writes the fields of them that are
 * about names (kind, dirs, creds, cached).
 * May call: libfs internals (op_begin, op_log_apply, vnodes), the shared
 * area's inodes and directories, the media layer.
 *
 * Locks as in clients.c: clients->lock before fs->lock.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/alloc.h"
#include "fs/dir.h"
#include "libfs/clients_internal.h"
#include "libfs/fs_internal.h"
#include "libfs/icalls.h"
#include "libfs/oprec.h"
#include "log/log_format.h"
#include "media/media.h"
#include "util/checksum.h"

/* Inode numbers a client holds set aside at once. */
#define CLOG_ASIDE 64

/* ---- credentials ----------------------------------------------------------- */

int clog_write_creds(struct clog *c)
{
	struct clog_creds k;
	memset(&k, 0, sizeof(k));
	k.magic = CLOG_CREDS_MAGIC;
	k.uid = c->uid;
	k.gid = c->gid;
	memcpy(k.log_id, c->log_id, 16);
	k.checksum = checksum64(&k, offsetof(struct clog_creds, checksum));
	int rc = media_store(c->sm, CLOG_CREDS_OFF, &k, sizeof(k));
	return rc ? rc : media_fence(c->sm);
}

/* A state file without them (or with damaged ones) makes every create of
 * its log refused: nobody could say whose the files would be. */
void clog_read_creds(struct clog *c)
{
	struct clog_creds k;
	c->has_creds = 0;
	if (media_read(c->sm, CLOG_CREDS_OFF, &k, sizeof(k)) == 0 && k.magic == CLOG_CREDS_MAGIC &&
	    !memcmp(k.log_id, c->log_id, 16) &&
	    k.checksum == checksum64(&k, offsetof(struct clog_creds, checksum))) {
		c->uid = k.uid;
		c->gid = k.gid;
		c->has_creds = 1;
	}
}

/* ---- what the mount's kernel keeps ------------------------------------------ */

static int64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void clients_dir_count(struct clients *cl, uint64_t dir, int delta)
{
	int n = atomic_load(&cl->dir_grants);
	if (delta > 0 && n < (int)(sizeof(cl->gdir) / sizeof(cl->gdir[0]))) {
		cl->gdir[n] = dir;
		atomic_store(&cl->dir_grants, n + 1);
		return;
	}
	for (int i = 0; i < n && delta < 0; i++)
		if (cl->gdir[i] == dir) {
			cl->gdir[i] = cl->gdir[n - 1];
			atomic_store(&cl->dir_grants, n - 1);
			return;
		}
}

/* Whether a client holds a grant of dir: a look at the few granted. */
static int dir_granted(const struct clients *cl, uint64_t dir)
{
	int n = atomic_load(&cl->dir_grants);
	for (int i = 0; i < n; i++)
		if (cl->gdir[i] == dir)
			return 1;
	return 0;
}

#define CACHED_PROBES 16

static struct cached_dir *cached_slot(struct clients *cl, uint64_t dir, int64_t now, int make)
{
	for (int k = 0; k < CACHED_PROBES; k++) {
		struct cached_dir *d =
		    &cl->cached[(dir * 0x9e3779b97f4a7c15ull + (uint64_t)k) % CACHED_DIRS];
		if (d->dir == dir || (make && d->until <= now))
			return d;
	}
	return NULL;
}

/* Whether the kernel may still hold entries of dir that it got with a
 * timeout: a local change of a name there would not be seen through the
 * mount until they expire. */
static int entries_cached(struct clients *cl, uint64_t dir)
{
	int64_t now = mono_ns();
	if (now < cl->all_cached_until)
		return 1;
	struct cached_dir *d = cached_slot(cl, dir, now, 0);
	return d && d->until > now;
}

double clients_entry_timeout(cairn_fs *fs, uint64_t dir, double want)
{
	struct clients *cl = clients_table(fs);
	if (!cl || want <= 0)
		return want;
	pthread_mutex_lock(&cl->lock);
	if (dir_granted(cl, dir)) {
		want = 0;
	} else {
		/* A second more than the kernel keeps it: clocks and the
		 * time the reply takes to arrive. */
		int64_t now = mono_ns(), until = now + (int64_t)(want * 1e9) + 1000000000;
		struct cached_dir *d = cached_slot(cl, dir, now, 1);
		if (d) {
			d->dir = dir;
			d->until = until;
		} else if (until > cl->all_cached_until) {
			cl->all_cached_until = until;
		}
	}
	pthread_mutex_unlock(&cl->lock);
	return want;
}

/* ---- grants of directories -------------------------------------------------- */

int clog_grant_dir(cairn_fs *fs, struct clog *c, uint64_t dir, uint64_t gen, uint32_t *index,
                   uint64_t *epoch)
{
	struct clients *cl = clients_table(fs);
	pthread_mutex_lock(&cl->lock);
	int rc = c->forged[0] || !c->has_creds ? -EBUSY : 0;
	/* A change of names made or begun since the caller's walk: its
	 * revocation found no grant to end, so none may be given now. */
	if (!rc && (entries_cached(cl, dir) || cl->changing || cl->names_gen != gen))
		rc = -EAGAIN;
	int slot = -1, dirs = 0;
	for (int i = 0; i < CLOG_GRANTS && !rc; i++) {
		if (c->kind[i] == GRANT_DIR && c->grants[i].live)
			dirs++;
		if (c->kind[i] == GRANT_DIR && c->grants[i].ino == dir && c->grants[i].live)
			slot = i;
	}
	if (!rc && slot < 0) {
		if (dirs >= CLOG_DIR_GRANTS || (slot = clog_free_grant(c)) < 0)
			rc = -EBUSY;
		/* One client at a time changes a directory's names. */
		if (!rc)
			clog_revoke_others(fs, cl, c, dir);
		if (!rc)
			rc = clog_grant_write(c, (uint32_t)slot, dir);
		if (!rc) {
			c->kind[slot] = GRANT_DIR;
			clients_dir_count(cl, dir, 1);
		}
	}
	if (!rc) {
		*index = (uint32_t)slot;
		*epoch = c->grants[slot].epoch;
	}
	pthread_mutex_unlock(&cl->lock);
	return rc;
}

void clog_drop_dir(cairn_fs *fs, struct clog *c, uint32_t index)
{
	struct clients *cl = clients_table(fs);
	pthread_mutex_lock(&cl->lock);
	if (index < CLOG_GRANTS && c->kind[index] == GRANT_DIR)
		clog_revoke(fs, c, index, 1);
	pthread_mutex_unlock(&cl->lock);
}

/* The client whose request this thread serves, and the directory whose
 * names it says it keeps up to date itself (clients_acting). */
static __thread struct clog *acting;
static __thread uint64_t acting_dir;

void clients_acting(struct clog *c, uint64_t dir)
{
	acting = c;
	acting_dir = dir;
}

void clients_change_begin(cairn_fs *fs, uint64_t dir, int all)
{
	struct clients *cl = clients_table(fs);
	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	cl->changing++;
	for (int s = 0; s < CLOG_SLOTS && atomic_load(&cl->dir_grants) > 0; s++) {
		struct clog *c = cl->slot[s];
		for (uint32_t g = 0; c && g < CLOG_GRANTS; g++)
			if (c->kind[g] == GRANT_DIR && c->grants[g].live &&
			    (all ||
			     (c->grants[g].ino == dir && (c != acting || dir != acting_dir))))
				clog_revoke(fs, c, g, 1);
	}
	pthread_mutex_unlock(&cl->lock);
}

void clients_change_end(cairn_fs *fs)
{
	struct clients *cl = clients_table(fs);
	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	cl->changing--;
	cl->names_gen++;
	pthread_mutex_unlock(&cl->lock);
}

uint64_t clients_names_gen(cairn_fs *fs)
{
	struct clients *cl = clients_table(fs);
	if (!cl)
		return 0;
	pthread_mutex_lock(&cl->lock);
	uint64_t g = cl->names_gen;
	pthread_mutex_unlock(&cl->lock);
	return g;
}

int clients_dir_grants(cairn_fs *fs)
{
	struct clients *cl = clients_table(fs);
	return cl ? atomic_load(&cl->dir_grants) : 0;
}

/* ---- inode numbers set aside ------------------------------------------------ */

/* Ends c's grants done[] of files it made (it has no descriptor of them
 * left): their last records are applied first, then the inodes are
 * unpinned (an unlinked one goes). */
static void release_made(cairn_fs *fs, struct clog *c, const uint32_t *done, int ndone)
{
	uint32_t idx[CLOG_GRANTS];
	uint64_t inos[CLOG_GRANTS];
	int n = 0;
	for (int k = 0; k < ndone && n < CLOG_GRANTS; k++) {
		uint32_t i = done[k];
		if (i < CLOG_GRANTS && c->kind[i] == GRANT_MADE && !c->refs[i]) {
			c->kind[i] = GRANT_FILE; /* not twice, if named twice */
			inos[n] = c->grants[i].ino;
			idx[n++] = i;
		}
	}
	if (n && clog_revoke_many(fs, c, idx, n) == 0)
		for (int k = 0; k < n; k++)
			ic_unpin(fs, inos[k], 1);
}

/* How many numbers a client may hold set aside, of `free` still free: at
 * most 1/256 of them, as its credit of blocks, so that clients that make
 * few files cannot make the volume full of names for the others (with 64
 * each, five idle clients held every inode of a volume of 300, and a
 * create through the mount got ENOSPC).  Below 256 free, none: a create
 * goes through the daemon. */
static int aside_share(uint64_t free)
{
	return free / 256 < CLOG_ASIDE ? (int)(free / 256) : CLOG_ASIDE;
}

/* Sets inode numbers aside for c (near hint), each with a grant, until it
 * holds its share (it holds `have`): the numbers held in memory first,
 * then the grants written. */
static int set_aside(cairn_fs *fs, struct clog *c, int have, uint64_t hint)
{
	uint32_t idx[CLOG_ASIDE];
	uint64_t inos[CLOG_ASIDE];
	int n = 0, rc = 0;
	fs_lock_exclusive(fs);
	int want = aside_share(alloc_free_count(fs->sh.ialloc)) - have;
	for (; n < want && !rc; n++) {
		int slot = -1;
		for (int i = 0; i < CLOG_GRANTS && slot < 0; i++)
			if (!c->grants[i].ino && !c->refs[i] && c->kind[i] == GRANT_FILE)
				slot = i;
		if (slot < 0 || (rc = inode_hold(&fs->sh, hint, &inos[n])))
			break;
		idx[n] = (uint32_t)slot;
		c->kind[slot] = GRANT_SET_BY; /* taken, for the loop */
		hint = inos[n] + 1;
	}
	pthread_rwlock_unlock(&fs->lock);
	if (n && clog_grant_many(c, idx, inos, n)) {
		fs_lock_exclusive(fs);
		for (int k = 0; k < n; k++) {
			inode_unhold(&fs->sh, inos[k]);
			c->kind[idx[k]] = GRANT_FILE;
		}
		pthread_rwlock_unlock(&fs->lock);
		return -EIO;
	}
	return n ? 0 : rc ? rc : -EBUSY;
}

int clog_set_aside(cairn_fs *fs, struct clog *c, const uint32_t *done, int ndone, uint64_t hint,
                   struct clog_aside *out, int max)
{
	struct clients *cl = clients_table(fs);
	pthread_mutex_lock(&cl->lock);
	release_made(fs, c, done, ndone);
	int have = 0, rc = c->forged[0] ? -EBUSY : 0;
	for (int i = 0; i < CLOG_GRANTS; i++)
		have += c->kind[i] == GRANT_SET_BY;
	if (!rc && have < CLOG_ASIDE)
		rc = set_aside(fs, c, have, hint);
	int n = 0;
	for (uint32_t i = 0; i < CLOG_GRANTS && n < max; i++)
		if (c->kind[i] == GRANT_SET_BY)
			out[n++] = (struct clog_aside){c->grants[i].ino, c->grants[i].epoch, i};
	pthread_mutex_unlock(&cl->lock);
	/* Some set aside is as good as all: the client asks again later. */
	return n > 0 ? n : rc ? rc : -ENOSPC;
}

int clog_made(cairn_fs *fs, struct clog *c, uint64_t ino)
{
	struct clients *cl = clients_table(fs);
	pthread_mutex_lock(&cl->lock);
	int made = 0;
	for (int i = 0; i < CLOG_GRANTS && !made; i++)
		made = c->kind[i] == GRANT_MADE && c->grants[i].ino == ino;
	pthread_mutex_unlock(&cl->lock);
	return made;
}

void clog_names_end(struct cairn_fs *fs, struct clog *c)
{
	for (uint32_t i = 0; i < CLOG_GRANTS; i++) {
		if (c->kind[i] == GRANT_SET_BY) {
			fs_lock_exclusive(fs);
			inode_unhold(&fs->sh, c->grants[i].ino);
			pthread_rwlock_unlock(&fs->lock);
		} else if (c->kind[i] == GRANT_MADE) {
			ic_unpin(fs, c->grants[i].ino, 1);
		}
		c->kind[i] = GRANT_FILE;
	}
}

/* ---- ingestion ---------------------------------------------------------------- */

/* The name a record carries after `fixed` bytes of payload, or NULL. */
static const char *record_name(const struct log_rec_hdr *h, const void *data, size_t fixed,
                               size_t *len)
{
	if (h->payload_len <= fixed || h->payload_len - fixed > CLOG_NAME_MAX)
		return NULL;
	const char *name = (const char *)data + fixed;
	*len = h->payload_len - fixed;
	if (memchr(name, '/', *len) || memchr(name, 0, *len))
		return NULL;
	if ((*len == 1 && name[0] == '.') || (*len == 2 && name[0] == '.' && name[1] == '.'))
		return NULL;
	return name;
}

/* The directory a name record changes, looked up: NULL if all is well. */
static const char *dir_problem(struct cairn_fs *fs, uint64_t dir, const char *name, size_t len,
                               uint64_t *ino, uint8_t *type, struct fs_inode *copy)
{
	struct iref d;
	if (!inode_in_use(&fs->sh, dir) || inode_get(&fs->sh, dir, &d))
		return "a directory that is not there";
	const char *why = NULL;
	if (!S_ISDIR(d.i->mode) || d.i->nlink == 0)
		why = "a directory that is not there";
	*copy = *d.i;
	if (!why && dir_lookup(&fs->sh.fx, d.i, name, len, ino, type) != 0)
		*ino = 0;
	inode_put(&fs->sh, &d);
	return why;
}

/* The grant of ino that c's create may take: one set aside for it (as the
 * state file holds it, after a crash), or -1. */
static int aside_grant(const struct clog *c, uint64_t ino)
{
	for (int i = 0; i < CLOG_GRANTS; i++)
		if (c->grants[i].ino == ino && c->grants[i].epoch &&
		    (c->recovered || c->kind[i] == GRANT_SET_BY))
			return i;
	return -1;
}

/* Whether c holds a grant of the file ino it made (after a crash: any
 * grant the state file still names it in). */
static int held_grant(const struct clog *c, uint64_t ino)
{
	for (int i = 0; i < CLOG_GRANTS; i++)
		if (c->grants[i].ino == ino && (c->recovered || c->kind[i] == GRANT_MADE))
			return 1;
	return 0;
}

static const char *ingest_create(struct cairn_fs *fs, struct clog *c, const struct log_rec_hdr *h,
                                 const void *data, uint64_t next, int *attempt, int *rc)
{
	struct clog_create cc;
	size_t len;
	const char *name = record_name(h, data, sizeof(cc), &len);
	if (!name)
		return "a name no file may have";
	memcpy(&cc, data, sizeof(cc));
	/* Set-ID bits are the daemon's to give: a write by anyone but root
	 * must clear them, and a local write does not. */
	if (cc.mode & ~(uint32_t)07777 || cc.mode & S_ISGID || (cc.mode & S_ISUID && c->uid != 0))
		return "a mode a create in a log may not give";
	if (!c->has_creds)
		return "a create by a client of unknown credentials";
	uint64_t dir = h->args[0], ino = h->args[1];
	int g = aside_grant(c, ino);
	if (g < 0)
		return "an inode number not set aside for it";
	if (c->recovered && inode_in_use(&fs->sh, ino))
		return "an inode number in use";
	struct {
		struct op_cwrite cw;
		struct op_mknod p;
		char name[CLOG_NAME_MAX];
	} rec;
	if ((*rc = op_begin(fs, sizeof(rec.cw) + sizeof(rec.p) + len, 0, SPACE_NONE, attempt)))
		return NULL;
	uint64_t found;
	uint8_t type;
	struct fs_inode d;
	const char *why = dir_problem(fs, dir, name, len, &found, &type, &d);
	if (!why && found)
		why = "a name that is there";
	if (why)
		return why;
	clog_copy_of(c, h, next, &rec.cw);
	memset(&rec.p, 0, sizeof(rec.p));
	rec.p.parent = dir;
	rec.p.ino = ino;
	rec.p.time_ns = now_ns();
	rec.p.mode = S_IFREG | cc.mode;
	rec.p.uid = c->uid;
	rec.p.gid = (d.mode & S_ISGID) ? d.gid : c->gid;
	rec.p.namelen = (uint16_t)len;
	memcpy(rec.name, name, len);
	if (!c->recovered)
		inode_unhold(&fs->sh, ino); /* the create takes it for good */
	fs->apply_resv = 0;
	struct iovec iov = {&rec, sizeof(rec.cw) + sizeof(rec.p) + len};
	uint64_t seq;
	*rc = op_log_apply(fs, OP_CMKNOD, NULL, &iov, 1, &seq);
	if (*rc || c->recovered)
		return NULL;
	/* The block the credit held for the directory's growth is free to
	 * use again; the file stays pinned while the client may write it. */
	c->credit -= 1;
	fs->reserved_blocks -= 1;
	c->kind[g] = GRANT_MADE;
	struct vnode *vn = vnode_get(fs, ino);
	if (vn)
		vn->open_count++;
	fs->stats.client_records++;
	return NULL;
}

static const char *ingest_unlink(struct cairn_fs *fs, struct clog *c, const struct log_rec_hdr *h,
                                 const void *data, uint64_t next, int *attempt, int *rc)
{
	size_t len;
	const char *name = record_name(h, data, 0, &len);
	if (!name)
		return "a name no file may have";
	struct {
		struct op_cwrite cw;
		struct op_unlink p;
		char name[CLOG_NAME_MAX];
	} rec;
	if ((*rc = op_begin(fs, sizeof(rec.cw) + sizeof(rec.p) + len, 0, SPACE_NONE, attempt)))
		return NULL;
	uint64_t dir = h->args[0], victim = h->args[1], found;
	uint8_t type;
	struct fs_inode d;
	const char *why = dir_problem(fs, dir, name, len, &found, &type, &d);
	if (!why && found != victim)
		why = "a name that does not name its inode";
	if (!why && type == DT_DIR)
		why = "an unlink of a directory";
	/* Only a regular file the client made and holds: no symbolic link
	 * (a step of paths others resolved), nothing whose attributes the
	 * mount's kernel may keep. */
	int held = held_grant(c, victim);
	if (!why && (type != DT_REG || !held))
		why = "an unlink of a file the client does not hold";
	if (why)
		return why;
	clog_copy_of(c, h, next, &rec.cw);
	memset(&rec.p, 0, sizeof(rec.p));
	rec.p.parent = dir;
	rec.p.ino = victim;
	rec.p.time_ns = now_ns();
	rec.p.namelen = (uint16_t)len;
	/* A file the client holds may still be written after its unlink:
	 * an orphan (after a crash too, when nothing is pinned). */
	rec.p.flags = vnode_is_open(fs, victim) || held ? OPF_ORPHAN : 0;
	memcpy(rec.name, name, len);
	struct iovec iov = {&rec, sizeof(rec.cw) + sizeof(rec.p) + len};
	uint64_t seq;
	*rc = op_log_apply(fs, OP_CUNLINK, NULL, &iov, 1, &seq);
	if (!*rc)
		fs->stats.client_records++;
	return NULL;
}

const char *clog_apply_name(struct cairn_fs *fs, struct clog *c, const struct log_rec_hdr *h,
                            const void *data, uint64_t next, int *attempt, int *rc)
{
	*rc = 0;
	if (fs->failed) {
		*rc = -EIO;
		return NULL;
	}
	if (h->type == CLOG_REC_CREATE)
		return ingest_create(fs, c, h, data, next, attempt, rc);
	return ingest_unlink(fs, c, h, data, next, attempt, rc);
}
