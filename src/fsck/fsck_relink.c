/*
 * fsck_relink.c - the repairs that allocate: rebuilding a damaged
 * directory or block map from the records still readable in it, putting
 * an entry back in its name's bucket, and linking inodes that nothing
 * names into /lost+found.
 *
 * Owns: the salvage walks over damaged trees and the /lost+found
 * directory's creation and names ("#INO").
 * May call: shared (inodes, inode_pick), dir (dir_insert, dir_lookup),
 * extent (extent_insert), btree (get, delete), cache (reads of damaged
 * nodes).
 *
 * Allocation in a repair is safe only when the allocators' in-memory
 * copies (loaded from the bitmaps at open) never hand out a unit that is
 * in use: that is, when the check found no inode in use but free in the
 * inode bitmap and no block in use but free in the block bitmap.  The
 * caller sets c->alloc_safe accordingly; otherwise these fixes wait for
 * the next round, after those bits are fixed.  Nodes of the damaged tree
 * are never handed out either: they stay marked used until a later round
 * reclaims them as leaks.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/dir.h"
#include "fs/extent.h"
#include "fs/format.h"
#include "fsck/fsck_internal.h"

#define LOST_FOUND "lost+found"
#define DREC_HDR FSCK_DREC_HDR
#define MAX_CHILDREN ((FS_BLOCK_SIZE - BTREE_HDR_SIZE) / 16)

/* ---- salvage --------------------------------------------------------------- */

struct salvaged {
	uint64_t ino;
	uint8_t type, namelen;
	char name[DIR_NAME_MAX];
};

/* A salvage walk: every leaf record that can still be read under a tree
 * root, handed to fn; nodes and slots that fail their checks are skipped,
 * not trusted. */
typedef void (*salvage_fn)(void *arg, const uint8_t *rec, unsigned len);

struct walk {
	struct fsck_ctx *c;
	uint32_t magic; /* the tree kind's node magic */
	salvage_fn fn;
	void *arg;
	uint64_t visits; /* bounds a walk of a tree that points into itself */
};

static void walk_leaf(struct walk *w, const uint8_t *n, unsigned count)
{
	for (unsigned i = 0; i < count && BTREE_HDR_SIZE + 4 * (i + 1) <= FS_BLOCK_SIZE; i++) {
		uint16_t off, len;
		memcpy(&off, n + BTREE_HDR_SIZE + 4 * i, 2);
		memcpy(&len, n + BTREE_HDR_SIZE + 4 * i + 2, 2);
		if (off >= BTREE_HDR_SIZE && (unsigned)off + len <= FS_BLOCK_SIZE)
			w->fn(w->arg, n + off, len);
	}
}

static void walk_node(struct walk *w, uint64_t blk, int level)
{
	struct fsck_ctx *c = w->c;
	if (++w->visits > c->sb->total_blocks || !fsck_node_block(c, blk))
		return;
	struct buf *b;
	if (cache_get(c->sh.cache, blk, &b))
		return;
	const uint8_t *n = b->data;
	uint32_t magic;
	uint16_t lv, count;
	memcpy(&magic, n, 4);
	memcpy(&lv, n + 4, 2);
	memcpy(&count, n + 6, 2);
	if (magic == w->magic && lv < BTREE_MAX_DEPTH && (level < 0 || lv == level)) {
		if (lv == 0)
			walk_leaf(w, n, count);
		for (unsigned i = 0; lv > 0 && i < count && i < MAX_CHILDREN; i++) {
			uint64_t child;
			memcpy(&child, n + BTREE_HDR_SIZE + 16 * i + 8, 8);
			walk_node(w, child, lv - 1);
		}
	}
	cache_put(c->sh.cache, b);
}

static void salvage_walk(struct fsck_ctx *c, uint32_t magic, uint64_t root, salvage_fn fn,
                         void *arg)
{
	struct walk w = {.c = c, .magic = magic, .fn = fn, .arg = arg};
	if (root)
		walk_node(&w, root, -1);
}

struct salvage {
	struct fsck_ctx *c;
	struct salvaged *v;
	size_t n, cap;
	int nomem; /* a record was not kept: the rebuild would lose it */
};

static void salvage_rec(void *arg, const uint8_t *rec, unsigned len)
{
	struct salvage *sv = arg;
	if (len <= DREC_HDR)
		return;
	uint8_t nl = rec[17];
	if (len < DREC_HDR + 1 || nl == 0 || len != DREC_HDR + (unsigned)nl)
		return;
	const char *name = (const char *)rec + DREC_HDR;
	if (memchr(name, '/', nl) || memchr(name, 0, nl))
		return;
	if (sv->n == sv->cap) {
		size_t ncap = sv->cap ? sv->cap * 2 : 64;
		struct salvaged *nv = realloc(sv->v, ncap * sizeof(*nv));
		if (!nv) {
			sv->nomem = 1;
			return;
		}
		sv->v = nv;
		sv->cap = ncap;
	}
	struct salvaged *s = &sv->v[sv->n++];
	memcpy(&s->ino, rec + 8, 8);
	s->type = rec[16];
	s->namelen = nl;
	memcpy(s->name, name, nl);
}

/* Rebuilds a directory from its readable records: the tree is replaced by
 * a new one made by dir_insert (new keys, in their buckets).  The old
 * nodes become leaks; names that cannot go back (a duplicate) are
 * dropped, and what they named is then reported as unreachable. */
int fsck_salvage_dir(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	if (!c->alloc_safe)
		return -EAGAIN;
	struct iref r;
	int rc = inode_get(&c->sh, p->a, &r);
	if (rc)
		return rc;
	if (!S_ISDIR(r.i->mode)) {
		inode_put(&c->sh, &r);
		return -EINVAL;
	}
	struct salvage sv = {.c = c};
	salvage_walk(c, fsck_dir_ops.magic, r.i->tree_root, salvage_rec, &sv);
	if (sv.nomem) { /* nothing changed: a rebuild now would drop names */
		inode_put(&c->sh, &r);
		free(sv.v);
		return -ENOMEM;
	}
	r.i->tree_root = 0;
	r.i->entries = 0;
	size_t kept = 0;
	for (size_t i = 0; i < sv.n && !rc; i++) {
		const struct salvaged *s = &sv.v[i];
		rc = dir_insert(&c->sh.fx, r.i, s->name, s->namelen, s->ino, s->type);
		if (rc == -EEXIST)
			rc = 0;
		else if (!rc)
			kept++;
	}
	inode_dirty(&c->sh, &r);
	inode_put(&c->sh, &r);
	free(sv.v);
	if (!rc)
		fsck_list_addf(done, p->code, "%s -> directory rebuilt from its %zu readable names",
		               p->msg, kept);
	return rc;
}

/* ---- lost+found ------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A new directory inode for /lost+found, as mkdir would make it. */
static int make_dir_inode(struct fsck_ctx *c, uint64_t *ino)
{
	int rc = inode_pick(&c->sh, FS_ROOT_INO + 1, ino);
	struct iref r;
	if (!rc)
		rc = inode_get(&c->sh, *ino, &r);
	if (rc)
		return rc;
	if (r.i->mode != 0) { /* the bitmap lied: alloc_safe should have said so */
		inode_put(&c->sh, &r);
		return -EUCLEAN;
	}
	uint32_t gen = r.i->generation + 1;
	memset(r.i, 0, sizeof(*r.i));
	r.i->generation = gen;
	r.i->mode = S_IFDIR | 0700;
	r.i->nlink = 2;
	r.i->parent = FS_ROOT_INO;
	r.i->atime_ns = r.i->mtime_ns = r.i->ctime_ns = now_ns();
	inode_dirty(&c->sh, &r);
	inode_put(&c->sh, &r);
	return 0;
}

/* The inode of /lost+found, made if missing. */
static int lost_found(struct fsck_ctx *c, uint64_t *out)
{
	if (c->lost_found) {
		*out = c->lost_found;
		return 0;
	}
	struct iref root;
	int rc = inode_get(&c->sh, FS_ROOT_INO, &root);
	if (rc)
		return rc;
	uint8_t type;
	rc = dir_lookup(&c->sh.fx, root.i, LOST_FOUND, strlen(LOST_FOUND), out, &type);
	if (rc == 0 && type != DT_DIR)
		rc = -EEXIST; /* a file took the name: leave it alone */
	if (rc == -ENOENT) {
		rc = make_dir_inode(c, out);
		if (!rc)
			rc = dir_insert(&c->sh.fx, root.i, LOST_FOUND, strlen(LOST_FOUND), *out,
			                DT_DIR);
		if (!rc) {
			root.i->nlink++;
			root.i->mtime_ns = root.i->ctime_ns = now_ns();
			inode_dirty(&c->sh, &root);
		}
		/* A failed insert leaves the new inode unnamed: the next round
		 * frees it as an empty unreachable directory. */
	}
	inode_put(&c->sh, &root);
	if (!rc)
		c->lost_found = *out;
	return rc;
}

/* Names an unreachable inode "#INO" in /lost+found.  Link counts and the
 * parent of a directory are made right; the next round checks them. */
int fsck_link_lost(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	if (!c->alloc_safe)
		return -EAGAIN;
	uint64_t lf;
	int rc = lost_found(c, &lf);
	struct iref dir, r;
	if (!rc)
		rc = inode_get(&c->sh, lf, &dir);
	if (rc)
		return rc;
	rc = inode_get(&c->sh, p->a, &r);
	if (rc) {
		inode_put(&c->sh, &dir);
		return rc;
	}
	char name[32];
	int len = snprintf(name, sizeof(name), "#%llu", (unsigned long long)p->a);
	rc = r.i->mode ? dir_insert(&c->sh.fx, dir.i, name, (size_t)len, p->a, IFTODT(r.i->mode))
	               : -ENOENT;
	if (!rc && S_ISDIR(r.i->mode)) {
		dir.i->nlink++;
		r.i->parent = lf;
	} else if (!rc && r.i->nlink == 0) {
		r.i->nlink = 1;
	}
	if (!rc) {
		inode_dirty(&c->sh, &r);
		inode_dirty(&c->sh, &dir);
	}
	inode_put(&c->sh, &r);
	inode_put(&c->sh, &dir);
	if (!rc)
		fsck_list_addf(done, p->code, "%s -> linked as /%s/%s", p->msg, LOST_FOUND, name);
	return rc;
}

/* ---- extent salvage ------------------------------------------------------------ */

#define EXTENT_MAX_LBLK (1ull << 40)

struct xsalvage {
	struct fsck_ctx *c;
	struct extent_rec {
		uint64_t lblk, pblk, len;
		int unwritten;
	} * v;
	size_t n, cap;
	int regular; /* unwritten extents belong to regular files only */
	int nomem;   /* an extent was not kept: the rebuild would lose it */
};

/* An extent may come back only if its blocks are all in the data area of
 * their tier, marked used (so no allocation of the rebuild can take them)
 * and claimed by no other inode. */
static int extent_usable(struct fsck_ctx *c, uint64_t pblk, uint64_t len)
{
	if (!fsck_data_range(c, pblk, len))
		return 0;
	uint64_t first = fsck_flat(c, pblk);
	for (uint64_t b = first; b < first + len; b++)
		if (!bit_test(c->bbits, b) || bit_test(c->claimed, b))
			return 0;
	return 1;
}

static void xsalvage_rec(void *arg, const uint8_t *rec, unsigned len)
{
	struct xsalvage *sv = arg;
	if (len != 24)
		return;
	uint64_t word = fsck_ld64(rec + 16), state = word & FS_EXTENT_STATE;
	struct extent_rec e = {fsck_ld64(rec), fsck_ld64(rec + 8), word & ~FS_EXTENT_STATE,
	                       state == FS_EXTENT_UNWRITTEN};
	if ((state && !e.unwritten) ||
	    (e.unwritten && (!sv->regular || e.len > FS_EXTENT_UNWRITTEN_MAX)) || e.len == 0 ||
	    e.lblk >= EXTENT_MAX_LBLK || e.len > EXTENT_MAX_LBLK - e.lblk ||
	    !extent_usable(sv->c, e.pblk, e.len))
		return;
	if (sv->n == sv->cap) {
		size_t ncap = sv->cap ? sv->cap * 2 : 64;
		struct extent_rec *nv = realloc(sv->v, ncap * sizeof(*nv));
		if (!nv) {
			sv->nomem = 1;
			return;
		}
		sv->v = nv;
		sv->cap = ncap;
	}
	sv->v[sv->n++] = e;
}

static int cmp_lblk(const void *a, const void *b)
{
	const struct extent_rec *x = a, *y = b;
	return x->lblk < y->lblk ? -1 : x->lblk > y->lblk;
}

/* Keeps the first of overlapping extents (logically or physically): a
 * block must belong to one place only.  claimed_tmp is in flat blocks. */
static size_t drop_overlaps(const struct fsck_ctx *c, struct extent_rec *v, size_t n,
                            uint64_t *claimed_tmp)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_lblk);
	size_t m = 0;
	uint64_t end = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t first = fsck_flat(c, v[i].pblk);
		int clash = m && v[i].lblk < end;
		for (uint64_t b = first; !clash && b < first + v[i].len; b++)
			clash = bit_test(claimed_tmp, b);
		if (clash)
			continue;
		for (uint64_t b = first; b < first + v[i].len; b++)
			bit_set(claimed_tmp, b);
		v[m++] = v[i];
		end = v[i].lblk + v[i].len;
	}
	return m;
}

/* Rebuilds a file's block map from the extents still readable in its
 * damaged tree.  What the unreadable nodes mapped reads as zeros; their
 * blocks become leaks for the next round. */
int fsck_salvage_extents(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	if (!c->alloc_safe)
		return -EAGAIN;
	struct iref r;
	int rc = inode_get(&c->sh, p->a, &r);
	if (rc)
		return rc;
	if (!S_ISREG(r.i->mode) && !S_ISLNK(r.i->mode)) {
		inode_put(&c->sh, &r);
		return -EINVAL;
	}
	struct xsalvage sv = {.c = c, .regular = S_ISREG(r.i->mode)};
	uint64_t *seen = calloc(fsck_flat_blocks(c) / 64, 8);
	if (!seen) {
		inode_put(&c->sh, &r);
		return -ENOMEM;
	}
	salvage_walk(c, fsck_extent_ops.magic, r.i->tree_root, xsalvage_rec, &sv);
	if (sv.nomem) { /* nothing changed: a rebuild now would drop extents */
		free(seen);
		free(sv.v);
		inode_put(&c->sh, &r);
		return -ENOMEM;
	}
	size_t n = drop_overlaps(c, sv.v, sv.n, seen);
	free(seen);
	r.i->tree_root = 0;
	r.i->blocks = 0; /* extent_insert counts again; the next round checks */
	uint64_t kept = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct extent_rec *x = &sv.v[i];
		rc = x->unwritten
		         ? extent_insert_unwritten(&c->sh.fx, r.i, x->lblk, x->pblk, x->len)
		         : extent_insert(&c->sh.fx, r.i, x->lblk, x->pblk, x->len);
		kept += rc ? 0 : sv.v[i].len;
	}
	inode_dirty(&c->sh, &r);
	inode_put(&c->sh, &r);
	free(sv.v);
	if (!rc)
		fsck_list_addf(done, p->code,
		               "%s -> block map rebuilt from its %zu readable extents "
		               "(%llu blocks); the rest reads as zeros",
		               p->msg, n, (unsigned long long)kept);
	return rc;
}

/* ---- re-keying a directory entry ----------------------------------------------- */

/* An entry whose key left its name's bucket cannot be found by name: it is
 * deleted and inserted again, which picks a key in the right bucket. */
/* Deletes directory p->a's entry p->b and inserts it again, with type
 * `type` (-1: the one it has), under the lowest free key of its name's
 * bucket. */
static int reinsert_entry(struct fsck_ctx *c, const struct fsck_item *p, int type)
{
	if (!c->alloc_safe)
		return -EAGAIN;
	struct iref r;
	int rc = inode_get(&c->sh, p->a, &r);
	if (rc)
		return rc;
	uint8_t rec[DREC_HDR + DIR_NAME_MAX];
	struct btree t;
	(void)btree_init(&t, &c->sh.fx, &fsck_dir_ops, &r.i->tree_root, &r.i->blocks);
	int len = S_ISDIR(r.i->mode) ? btree_get(&t, p->b, rec, sizeof(rec)) : -EINVAL;
	rc = len < 0 ? len : len != DREC_HDR + rec[17] ? -EUCLEAN : 0;
	if (!rc)
		rc = btree_delete(&t, p->b);
	if (!rc) {
		uint64_t ino;
		memcpy(&ino, rec + 8, 8);
		if (r.i->entries)
			r.i->entries--;
		/* On failure the name is lost and its inode comes back in
		 * /lost+found next round. */
		rc = dir_insert(&c->sh.fx, r.i, (const char *)rec + DREC_HDR, rec[17], ino,
		                type < 0 ? rec[16] : (uint8_t)type);
	}
	inode_dirty(&c->sh, &r);
	inode_put(&c->sh, &r);
	return rc;
}

int fsck_rekey_entry(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	int rc = reinsert_entry(c, p, -1);
	if (!rc)
		fsck_list_addf(done, p->code,
		               "%s -> entry inserted again under a key of its bucket", p->msg);
	return rc;
}

int fsck_retype_entry(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	int rc = reinsert_entry(c, p, (int)p->c);
	if (!rc)
		fsck_list_addf(done, p->code, "%s -> entry's type set to %u, the inode's", p->msg,
		               (unsigned)p->c);
	return rc;
}
