/*
 * extent.c - the block map of a file: extents in the generic B+tree.
 *
 * Owns: extent-tree nodes of regular files and symlinks, and the record
 * format {u64 lblk, u64 pblk, u64 len} (24 bytes, keyed by lblk), whose
 * len carries the extent's state, written or unwritten, in its top byte
 * (FS_EXTENT_STATE).
 * May call: btree, alloc (to free data blocks), cache.
 *
 * Invariants kept here: extents never overlap logically; len >= 1;
 * lblk + len <= EXTENT_MAX_LBLK; an unwritten extent is at most
 * FS_EXTENT_UNWRITTEN_MAX blocks.  Adjacent extents that are also
 * physically contiguous and in the same state are merged on insert, so
 * sequential appends stay one extent.
 * ino->blocks counts data blocks (adjusted here) and tree nodes (adjusted
 * by the btree through its blocks pointer).
 *
 * A map of one extent lives in the inode (FS_INODE_INLINE_EXTENT) while it
 * fits there (logical block and length below 2^32): most small files then
 * need no tree node.  A change that needs a second extent first moves the
 * inline one into a new tree ("spills"); the tree is never folded back.
 */
#include "fs/extent.h"

#include <errno.h>
#include <string.h>

#include "fs/alloc.h"
#include "fs/btree.h"
#include "fs/format.h"
#include "fs/fsctx.h"

#define EXTENT_NODE_MAGIC 0x4e545843u /* "CXTN" */
#define EXTENT_MAX_LBLK (1ull << 40)
/* The first tree node of a file goes this far past its first data, not
 * right after it, so that appends (allocated with hint = end of the last
 * extent) stay physically contiguous and merge into one extent. */
#define EXTENT_NODE_GAP 1024

/* A record as the tree stores it: the state is in len's top byte. */
struct erec {
	uint64_t lblk, pblk, len;
};
_Static_assert(sizeof(struct erec) == 24, "extent record is 24 bytes");

static const struct btree_ops extent_ops = {
    .magic = EXTENT_NODE_MAGIC,
    .node_size = 0,
    .min_rec = sizeof(struct erec),
    .max_rec = sizeof(struct erec),
};

static int ext_valid(const struct extent *e)
{
	return e->len >= 1 && e->lblk < EXTENT_MAX_LBLK && e->len <= EXTENT_MAX_LBLK - e->lblk &&
	       e->pblk != 0 && e->pblk + e->len > e->pblk &&
	       (!e->unwritten || e->len <= FS_EXTENT_UNWRITTEN_MAX);
}

/* 0, or -EUCLEAN for a record no valid extent encodes (a state byte that
 * is neither written nor unwritten included). */
static int decode(const struct erec *r, struct extent *e)
{
	uint64_t state = r->len & FS_EXTENT_STATE;
	*e = (struct extent){r->lblk, r->pblk, r->len & ~FS_EXTENT_STATE,
	                     state == FS_EXTENT_UNWRITTEN};
	return (state == 0 || e->unwritten) && ext_valid(e) ? 0 : -EUCLEAN;
}

static struct erec encode(const struct extent *e)
{
	return (struct erec){e->lblk, e->pblk, e->len | (e->unwritten ? FS_EXTENT_UNWRITTEN : 0)};
}

static int tree_insert(struct btree *t, const struct extent *e)
{
	struct erec r = encode(e);
	return btree_insert(t, &r, sizeof(r));
}

static int tree_update(struct btree *t, uint64_t oldkey, const struct extent *e)
{
	struct erec r = encode(e);
	return btree_update(t, oldkey, &r, sizeof(r));
}

/* Whether b continues a logically and physically, in the same state (an
 * unwritten extent only up to its longest). */
static int joins(const struct extent *a, const struct extent *b)
{
	return a->lblk + a->len == b->lblk && a->pblk + a->len == b->pblk &&
	       a->unwritten == b->unwritten &&
	       (!a->unwritten || a->len + b->len <= FS_EXTENT_UNWRITTEN_MAX);
}

static void open_rw(struct btree *t, struct fsctx *fx, struct fs_inode *ino)
{
	/* extent_ops is valid by construction: init cannot fail. */
	(void)btree_init(t, fx, &extent_ops, &ino->tree_root, &ino->blocks);
}

static void open_ro(struct btree *t, struct fsctx *fx, const struct fs_inode *ino)
{
	(void)btree_init_ro(t, fx, &extent_ops, &ino->tree_root);
}

/* ---- the inline extent ---------------------------------------------------- */

static int inline_get(const struct fs_inode *ino, struct extent *e)
{
	if (!(ino->flags & FS_INODE_INLINE_EXTENT))
		return 0;
	uint32_t state = ino->flags & FS_INODE_INLINE_STATE;
	*e = (struct extent){ino->inline_lblk, ino->rdev, ino->inline_len,
	                     state == FS_INODE_INLINE_UNWRITTEN};
	return (state == 0 || e->unwritten) && ext_valid(e) ? 1 : -EUCLEAN;
}

static int inline_fits(const struct extent *e)
{
	return e->lblk <= UINT32_MAX && e->len <= UINT32_MAX;
}

static void inline_put(struct fs_inode *ino, const struct extent *e)
{
	ino->flags &= ~FS_INODE_INLINE_STATE;
	ino->flags |= FS_INODE_INLINE_EXTENT | (e->unwritten ? FS_INODE_INLINE_UNWRITTEN : 0);
	ino->inline_lblk = (uint32_t)e->lblk;
	ino->inline_len = (uint32_t)e->len;
	ino->rdev = e->pblk;
}

void extent_clear_inline(struct fs_inode *ino)
{
	ino->flags &= ~(FS_INODE_INLINE_EXTENT | FS_INODE_INLINE_STATE);
	ino->inline_lblk = ino->inline_len = 0;
	ino->rdev = 0;
}

/* Moves the inline extent into a new tree (one node), so the tree code
 * can take the change.  On failure the inode is as it was. */
static int spill(struct fsctx *fx, struct fs_inode *ino, const struct extent *e)
{
	struct btree t;
	struct extent copy = *e;
	extent_clear_inline(ino);
	open_rw(&t, fx, ino);
	t.node_hint = FS_PBLK_TIER(copy.pblk) ? 0 : copy.pblk + copy.len + EXTENT_NODE_GAP;
	int err = tree_insert(&t, &copy);
	if (err)
		inline_put(ino, &copy);
	return err;
}

/* 1 and the extent, 0 if none, or -errno. */
static int get_rec(int len, const struct erec *r, struct extent *e)
{
	if (len <= 0)
		return len;
	if (len != (int)sizeof(*r) || decode(r, e))
		return -EUCLEAN;
	return 1;
}

static int get_le(struct btree *t, uint64_t lblk, struct extent *e)
{
	struct erec r;
	return get_rec(btree_get_le(t, lblk, &r, sizeof(r)), &r, e);
}

static int get_ge(struct btree *t, uint64_t lblk, struct extent *e)
{
	struct erec r;
	return get_rec(btree_get_ge(t, lblk, &r, sizeof(r)), &r, e);
}

/* Data blocks go back to the allocator of the tier that holds them. */
static void free_data(struct fsctx *fx, struct fs_inode *ino, uint64_t pblk, uint64_t n)
{
	unsigned tier = FS_PBLK_TIER(pblk);
	struct alloc *a = tier == 0 ? fx->balloc : tier <= FS_MAX_TIERS ? fx->talloc[tier] : NULL;
	if (a)
		alloc_free(a, FS_PBLK_BLK(pblk), n);
	ino->blocks = ino->blocks >= n ? ino->blocks - n : 0;
}

static int inline_lookup(const struct extent *e, uint64_t lblk, struct extent *out)
{
	if (lblk - e->lblk < e->len) {
		*out = *e;
		return 1;
	}
	*out = (struct extent){lblk, 0, lblk < e->lblk ? e->lblk - lblk : UINT64_MAX - lblk, 0};
	return 0;
}

int extent_lookup(struct fsctx *fx, const struct fs_inode *ino, uint64_t lblk, struct extent *out)
{
	struct btree t;
	struct extent e;
	int in = inline_get(ino, &e);
	if (in)
		return in < 0 ? in : inline_lookup(&e, lblk, out);
	open_ro(&t, fx, ino);
	int err = get_le(&t, lblk, &e);
	if (err < 0)
		return err;
	if (err == 1 && lblk - e.lblk < e.len) {
		*out = e;
		return 1;
	}
	err = get_ge(&t, lblk, &e);
	if (err < 0)
		return err;
	if (err == 1 && e.lblk <= lblk)
		return -EUCLEAN; /* le and ge disagree: the leaves are out of order */
	*out = (struct extent){lblk, 0, err == 1 ? e.lblk - lblk : UINT64_MAX - lblk, 0};
	return 0;
}

/* Insert without a tree: the first extent goes inline, one that joins the
 * inline extent grows it.  Returns 1 when the tree must take the insert
 * (spilled if needed), else 0 or -errno. */
static int inline_insert(struct fsctx *fx, struct fs_inode *ino, const struct extent *n)
{
	struct extent r;
	int in = inline_get(ino, &r);
	if (in < 0)
		return in;
	if (!in) {
		if (ino->tree_root || !inline_fits(n))
			return 1;
		inline_put(ino, n);
		ino->blocks += n->len;
		return 0;
	}
	if (n->lblk < r.lblk + r.len && r.lblk < n->lblk + n->len)
		return -EEXIST; /* not a hole */
	struct extent joined = r;
	if (joins(&r, n))
		joined.len += n->len;
	else if (joins(n, &r))
		joined = (struct extent){n->lblk, n->pblk, n->len + r.len, r.unwritten};
	if (joined.len != r.len && inline_fits(&joined)) {
		inline_put(ino, &joined);
		ino->blocks += n->len;
		return 0;
	}
	int err = spill(fx, ino, &r);
	return err ? err : 1;
}

static int insert(struct fsctx *fx, struct fs_inode *ino, const struct extent *n)
{
	uint64_t lblk = n->lblk, pblk = n->pblk, len = n->len;
	if (len == 0 || pblk == 0 || pblk + len < pblk ||
	    (n->unwritten && len > FS_EXTENT_UNWRITTEN_MAX))
		return -EINVAL;
	if (lblk >= EXTENT_MAX_LBLK || len > EXTENT_MAX_LBLK - lblk)
		return -EFBIG;
	int err = inline_insert(fx, ino, n);
	if (err != 1)
		return err;
	struct btree t;
	struct extent prev, next;
	open_rw(&t, fx, ino);
	/* Tree nodes live on the fast tier: a capacity-tier pblk is no hint. */
	t.node_hint = FS_PBLK_TIER(pblk) ? 0 : pblk + len + EXTENT_NODE_GAP;
	int hp = get_le(&t, lblk, &prev);
	if (hp < 0)
		return hp;
	if (hp && prev.lblk + prev.len > lblk)
		return -EEXIST; /* not a hole */
	int hn = get_ge(&t, lblk, &next);
	if (hn < 0)
		return hn;
	if (hn && next.lblk < lblk + len)
		return -EEXIST;

	int mp = hp && joins(&prev, n);
	int mn = hn && joins(n, &next);
	if (mp && mn && n->unwritten && prev.len + len + next.len > FS_EXTENT_UNWRITTEN_MAX)
		mn = 0; /* all three would be too long: join one side */
	if (mp && mn) {
		/* Bridge: delete the successor, grow the predecessor in place.
		 * Neither step allocates, so neither can give -ENOSPC. */
		err = btree_delete(&t, next.lblk);
		if (!err) {
			prev.len += len + next.len;
			err = tree_update(&t, prev.lblk, &prev);
		}
	} else if (mp) {
		prev.len += len;
		err = tree_update(&t, prev.lblk, &prev);
	} else if (mn) {
		struct extent r = {lblk, pblk, len + next.len, n->unwritten};
		err = tree_update(&t, next.lblk, &r);
	} else {
		err = tree_insert(&t, n);
	}
	if (!err)
		ino->blocks += len;
	return err;
}

int extent_insert(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t pblk,
                  uint64_t len)
{
	struct extent n = {lblk, pblk, len, 0};
	return insert(fx, ino, &n);
}

int extent_insert_unwritten(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t pblk,
                            uint64_t len)
{
	struct extent n = {lblk, pblk, len, 1};
	return insert(fx, ino, &n);
}

/*
 * Unmaps [start, end) and frees its data blocks.  On error the range may be
 * partly unmapped; the tree stays valid and nothing is freed that is still
 * mapped.  Only splitting one extent in two can need a new tree block.
 */
/* unmap_range for the inline extent: a cut at either end stays inline; a
 * hole inside it needs two extents, so it spills (returns 1) first. */
static int inline_unmap(struct fsctx *fx, struct fs_inode *ino, const struct extent *r,
                        uint64_t start, uint64_t end)
{
	uint64_t r_end = r->lblk + r->len;
	if (end <= r->lblk || start >= r_end)
		return 0;
	if (start > r->lblk && end < r_end) {
		int err = spill(fx, ino, r);
		return err ? err : 1;
	}
	if (start <= r->lblk && end >= r_end) {
		extent_clear_inline(ino);
		free_data(fx, ino, r->pblk, r->len);
		return 0;
	}
	struct extent kept = *r;
	if (start <= r->lblk) { /* the head goes */
		kept = (struct extent){end, r->pblk + (end - r->lblk), r_end - end, r->unwritten};
		free_data(fx, ino, r->pblk, end - r->lblk);
	} else { /* the tail goes */
		kept.len = start - r->lblk;
		free_data(fx, ino, r->pblk + kept.len, r_end - start);
	}
	inline_put(ino, &kept);
	return 0;
}

static int unmap_range(struct fsctx *fx, struct fs_inode *ino, uint64_t start, uint64_t end)
{
	struct btree t;
	struct extent e;
	int in = inline_get(ino, &e);
	if (in > 0)
		in = inline_unmap(fx, ino, &e, start, end);
	if (in != 1 && (in || !ino->tree_root))
		return in;
	open_rw(&t, fx, ino);
	int r = get_le(&t, start, &e);
	if (r < 0)
		return r;
	if (r == 1 && e.lblk < start && e.lblk + e.len > start) {
		uint64_t e_end = e.lblk + e.len;
		if (e_end > end) {
			/* The hole is inside e: keep head and tail. */
			struct extent tail = {end, e.pblk + (end - e.lblk), e_end - end,
			                      e.unwritten};
			int err = tree_insert(&t, &tail);
			if (err)
				return err;
			e.len = start - e.lblk;
			err = tree_update(&t, e.lblk, &e);
			if (err)
				return err;
			free_data(fx, ino, e.pblk + e.len, end - start);
			return 0;
		}
		uint64_t cut = e_end - start;
		e.len = start - e.lblk;
		int err = tree_update(&t, e.lblk, &e);
		if (err)
			return err;
		free_data(fx, ino, e.pblk + e.len, cut);
	}
	for (;;) {
		r = get_ge(&t, start, &e);
		if (r <= 0)
			return r;
		if (e.lblk >= end)
			return 0;
		if (e.lblk + e.len <= end) {
			int err = btree_delete(&t, e.lblk);
			if (err)
				return err;
			free_data(fx, ino, e.pblk, e.len);
			continue;
		}
		/* e starts inside the range and ends after it: keep its tail. */
		uint64_t cut = end - e.lblk;
		struct extent tail = {end, e.pblk + cut, e.len - cut, e.unwritten};
		int err = tree_update(&t, e.lblk, &tail);
		if (err)
			return err;
		free_data(fx, ino, e.pblk, cut);
		return 0;
	}
}

struct destroy_ctx {
	struct fsctx *fx;
	struct fs_inode *ino;
};

static int destroy_rec(void *arg, const void *rec, size_t len)
{
	struct destroy_ctx *d = arg;
	struct erec r;
	struct extent e;
	memcpy(&r, rec, sizeof(r));
	if (len == sizeof(r) && decode(&r, &e) == 0)
		free_data(d->fx, d->ino, e.pblk, e.len);
	return 0;
}

int extent_truncate(struct fsctx *fx, struct fs_inode *ino, uint64_t first_lblk)
{
	if (first_lblk >= EXTENT_MAX_LBLK)
		return 0;
	if (first_lblk > 0 || (ino->flags & FS_INODE_INLINE_EXTENT))
		return unmap_range(fx, ino, first_lblk, EXTENT_MAX_LBLK);
	/* Everything goes: one pass over the leaves, no per-record delete. */
	struct btree t;
	struct destroy_ctx d = {fx, ino};
	open_rw(&t, fx, ino);
	return btree_destroy(&t, destroy_rec, &d);
}

int extent_punch(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t len)
{
	if (len == 0 || lblk >= EXTENT_MAX_LBLK)
		return 0;
	uint64_t end = len > EXTENT_MAX_LBLK - lblk ? EXTENT_MAX_LBLK : lblk + len;
	return unmap_range(fx, ino, lblk, end);
}

/* Joins extent r with its neighbours where they are contiguous both
 * logically and physically and in the same state, as an insert would
 * have: moved runs stay whole.  Deletes and same-size updates never
 * allocate. */
static int merge_neighbours(struct btree *t, struct extent *r)
{
	struct extent o;
	int h = r->lblk ? get_le(t, r->lblk - 1, &o) : 0;
	if (h < 0)
		return h;
	if (h && joins(&o, r)) {
		int rc = btree_delete(t, r->lblk);
		if (rc)
			return rc;
		o.len += r->len;
		rc = tree_update(t, o.lblk, &o);
		if (rc)
			return rc;
		*r = o;
	}
	h = get_ge(t, r->lblk + r->len, &o);
	if (h < 0)
		return h;
	if (h && joins(r, &o)) {
		int rc = btree_delete(t, o.lblk);
		if (rc)
			return rc;
		r->len += o.len;
		return tree_update(t, r->lblk, r);
	}
	return 0;
}

int extent_move(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t len,
                uint64_t old_pblk, uint64_t new_pblk)
{
	struct extent e;
	int rc = extent_lookup(fx, ino, lblk, &e);
	if (rc < 0)
		return rc;
	if (rc == 0 || lblk + len > e.lblk + e.len || e.pblk + (lblk - e.lblk) != old_pblk)
		return -ESTALE; /* no longer one mapped run: the file changed */
	struct extent in;
	if (e.lblk == lblk && e.len == len && inline_get(ino, &in) == 1) {
		in.pblk = new_pblk;
		inline_put(ino, &in);
		free_data(fx, ino, old_pblk, len);
		ino->blocks += len;
		return 0;
	}
	if (e.lblk == lblk && e.len == len) {
		/* The whole extent moves: rewrite its record where it is, so
		 * that the move needs no tree node. */
		struct btree t;
		struct extent r = {lblk, new_pblk, len, e.unwritten};
		open_rw(&t, fx, ino);
		rc = tree_update(&t, lblk, &r);
		if (rc)
			return rc;
		free_data(fx, ino, old_pblk, len);
		ino->blocks += len;
		return merge_neighbours(&t, &r);
	}
	rc = extent_punch(fx, ino, lblk, len);
	struct extent moved = {lblk, new_pblk, len, e.unwritten};
	return rc ? rc : insert(fx, ino, &moved);
}

/* extent_mark_written in a tree: [lblk, lblk+len) of unwritten extent e
 * becomes written; what is left of e on either side stays unwritten.  Up
 * to two inserts; on failure the tree maps what it did. */
static int tree_mark_written(struct fsctx *fx, struct fs_inode *ino, const struct extent *e,
                             uint64_t lblk, uint64_t len)
{
	struct btree t;
	open_rw(&t, fx, ino);
	uint64_t end = lblk + len, e_end = e->lblk + e->len;
	struct extent mid = {lblk, e->pblk + (lblk - e->lblk), len, 0};
	struct extent head = {e->lblk, e->pblk, lblk - e->lblk, 1};
	struct extent tail = {end, e->pblk + (end - e->lblk), e_end - end, 1};
	int rc = tail.len ? tree_insert(&t, &tail) : 0;
	if (!rc && head.len) {
		rc = tree_insert(&t, &mid);
		if (rc && tail.len) {
			int drc = btree_delete(&t, tail.lblk); /* never allocates */
			return drc ? drc : rc;
		}
		if (!rc)
			rc = tree_update(&t, e->lblk, &head); /* same key and size: in place */
	} else if (!rc) {
		rc = tree_update(&t, e->lblk, &mid); /* mid starts where e did */
	}
	return rc ? rc : merge_neighbours(&t, &mid);
}

int extent_mark_written(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t len)
{
	struct extent e, in;
	int rc = extent_lookup(fx, ino, lblk, &e);
	if (rc < 0)
		return rc;
	if (rc == 0 || !e.unwritten || len == 0 || len > e.lblk + e.len - lblk)
		return -EINVAL;
	int il = inline_get(ino, &in);
	if (il < 0)
		return il;
	if (il && len == in.len) {
		in.unwritten = 0;
		inline_put(ino, &in);
		return 0;
	}
	if (il) {
		rc = spill(fx, ino, &in);
		if (rc)
			return rc;
	}
	return tree_mark_written(fx, ino, &e, lblk, len);
}

struct walk_ctx {
	int (*fn)(void *arg, const struct extent *e);
	void *arg;
};

static int walk_rec(void *arg, const void *rec, size_t len)
{
	struct walk_ctx *w = arg;
	struct erec r;
	struct extent e;
	if (len != sizeof(r))
		return -EUCLEAN;
	memcpy(&r, rec, sizeof(r));
	if (decode(&r, &e))
		return -EUCLEAN;
	return w->fn(w->arg, &e);
}

int extent_walk(struct fsctx *fx, const struct fs_inode *ino, uint64_t lblk,
                int (*fn)(void *arg, const struct extent *e), void *arg)
{
	struct btree t;
	struct extent r;
	int in = inline_get(ino, &r);
	if (in) {
		if (in < 0 || r.lblk + r.len <= lblk)
			return in < 0 ? in : 0;
		return fn(arg, &r);
	}
	open_ro(&t, fx, ino);
	int err = get_le(&t, lblk, &r);
	if (err < 0)
		return err;
	uint64_t from = (err == 1 && lblk - r.lblk < r.len) ? r.lblk : lblk;
	struct walk_ctx w = {fn, arg};
	/* Copying leaves lets fn do anything, even change this file. */
	return btree_iter(&t, from, UINT64_MAX, BTREE_ITER_COPY, walk_rec, &w);
}

int extent_map_empty(const struct fs_inode *ino)
{
	return ino->tree_root == 0 && !(ino->flags & FS_INODE_INLINE_EXTENT);
}
