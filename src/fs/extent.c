/*
 * extent.c - the block map of a file: extents in the generic B+tree.
 *
 * Owns: extent-tree nodes of regular files and symlinks, and the record
 * format {u64 lblk, u64 pblk, u64 len} (24 bytes, keyed by lblk).
 * May call: btree, alloc (to free data blocks), cache.
 *
 * Invariants kept here: extents never overlap logically; len >= 1;
 * lblk + len <= EXTENT_MAX_LBLK.  Adjacent extents that are also physically
 * contiguous are merged on insert, so sequential appends stay one extent.
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

static int rec_valid(const struct erec *r)
{
	return r->len >= 1 && r->lblk < EXTENT_MAX_LBLK && r->len <= EXTENT_MAX_LBLK - r->lblk &&
	       r->pblk != 0 && r->pblk + r->len > r->pblk;
}

static struct extent to_extent(const struct erec *r)
{
	return (struct extent){r->lblk, r->pblk, r->len};
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

static int inline_get(const struct fs_inode *ino, struct erec *r)
{
	if (!(ino->flags & FS_INODE_INLINE_EXTENT))
		return 0;
	*r = (struct erec){ino->inline_lblk, ino->rdev, ino->inline_len};
	return rec_valid(r) ? 1 : -EUCLEAN;
}

static int inline_fits(const struct erec *r)
{
	return r->lblk <= UINT32_MAX && r->len <= UINT32_MAX;
}

static void inline_put(struct fs_inode *ino, const struct erec *r)
{
	ino->flags |= FS_INODE_INLINE_EXTENT;
	ino->inline_lblk = (uint32_t)r->lblk;
	ino->inline_len = (uint32_t)r->len;
	ino->rdev = r->pblk;
}

void extent_clear_inline(struct fs_inode *ino)
{
	ino->flags &= ~FS_INODE_INLINE_EXTENT;
	ino->inline_lblk = ino->inline_len = 0;
	ino->rdev = 0;
}

/* Moves the inline extent into a new tree (one node), so the tree code
 * can take the change.  On failure the inode is as it was. */
static int spill(struct fsctx *fx, struct fs_inode *ino, const struct erec *r)
{
	struct btree t;
	struct erec copy = *r;
	extent_clear_inline(ino);
	open_rw(&t, fx, ino);
	t.node_hint = FS_PBLK_TIER(copy.pblk) ? 0 : copy.pblk + copy.len + EXTENT_NODE_GAP;
	int err = btree_insert(&t, &copy, sizeof(copy));
	if (err)
		inline_put(ino, &copy);
	return err;
}

/* 1 and the record, 0 if none, or -errno. */
static int get_rec(int len, const struct erec *r)
{
	if (len <= 0)
		return len;
	if (len != (int)sizeof(*r) || !rec_valid(r))
		return -EUCLEAN;
	return 1;
}

static int get_le(struct btree *t, uint64_t lblk, struct erec *r)
{
	return get_rec(btree_get_le(t, lblk, r, sizeof(*r)), r);
}

static int get_ge(struct btree *t, uint64_t lblk, struct erec *r)
{
	return get_rec(btree_get_ge(t, lblk, r, sizeof(*r)), r);
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

static int inline_lookup(const struct erec *r, uint64_t lblk, struct extent *out)
{
	if (lblk - r->lblk < r->len) {
		*out = to_extent(r);
		return 1;
	}
	out->lblk = lblk;
	out->pblk = 0;
	out->len = lblk < r->lblk ? r->lblk - lblk : UINT64_MAX - lblk;
	return 0;
}

int extent_lookup(struct fsctx *fx, const struct fs_inode *ino, uint64_t lblk, struct extent *out)
{
	struct btree t;
	struct erec r;
	int in = inline_get(ino, &r);
	if (in)
		return in < 0 ? in : inline_lookup(&r, lblk, out);
	open_ro(&t, fx, ino);
	int err = get_le(&t, lblk, &r);
	if (err < 0)
		return err;
	if (err == 1 && lblk - r.lblk < r.len) {
		*out = to_extent(&r);
		return 1;
	}
	err = get_ge(&t, lblk, &r);
	if (err < 0)
		return err;
	if (err == 1 && r.lblk <= lblk)
		return -EUCLEAN; /* le and ge disagree: the leaves are out of order */
	out->lblk = lblk;
	out->pblk = 0;
	out->len = err == 1 ? r.lblk - lblk : UINT64_MAX - lblk;
	return 0;
}

/* Insert without a tree: the first extent goes inline, one that joins the
 * inline extent grows it.  Returns 1 when the tree must take the insert
 * (spilled if needed), else 0 or -errno. */
static int inline_insert(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t pblk,
                         uint64_t len)
{
	struct erec r, n = {lblk, pblk, len};
	int in = inline_get(ino, &r);
	if (in < 0)
		return in;
	if (!in) {
		if (ino->tree_root || !inline_fits(&n))
			return 1;
		inline_put(ino, &n);
		ino->blocks += len;
		return 0;
	}
	if (lblk < r.lblk + r.len && r.lblk < lblk + len)
		return -EEXIST; /* not a hole */
	struct erec joined = r;
	if (r.lblk + r.len == lblk && r.pblk + r.len == pblk)
		joined.len += len;
	else if (lblk + len == r.lblk && pblk + len == r.pblk)
		joined = (struct erec){lblk, pblk, len + r.len};
	if (joined.len != r.len && inline_fits(&joined)) {
		inline_put(ino, &joined);
		ino->blocks += len;
		return 0;
	}
	int err = spill(fx, ino, &r);
	return err ? err : 1;
}

int extent_insert(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t pblk,
                  uint64_t len)
{
	if (len == 0 || pblk == 0 || pblk + len < pblk)
		return -EINVAL;
	if (lblk >= EXTENT_MAX_LBLK || len > EXTENT_MAX_LBLK - lblk)
		return -EFBIG;
	int err = inline_insert(fx, ino, lblk, pblk, len);
	if (err != 1)
		return err;
	struct btree t;
	struct erec prev, next;
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

	int mp = hp && prev.lblk + prev.len == lblk && prev.pblk + prev.len == pblk;
	int mn = hn && lblk + len == next.lblk && pblk + len == next.pblk;
	if (mp && mn) {
		/* Bridge: delete the successor, grow the predecessor in place.
		 * Neither step allocates, so neither can give -ENOSPC. */
		err = btree_delete(&t, next.lblk);
		if (!err) {
			prev.len += len + next.len;
			err = btree_update(&t, prev.lblk, &prev, sizeof(prev));
		}
	} else if (mp) {
		prev.len += len;
		err = btree_update(&t, prev.lblk, &prev, sizeof(prev));
	} else if (mn) {
		struct erec r = {lblk, pblk, len + next.len};
		err = btree_update(&t, next.lblk, &r, sizeof(r));
	} else {
		struct erec r = {lblk, pblk, len};
		err = btree_insert(&t, &r, sizeof(r));
	}
	if (!err)
		ino->blocks += len;
	return err;
}

/*
 * Unmaps [start, end) and frees its data blocks.  On error the range may be
 * partly unmapped; the tree stays valid and nothing is freed that is still
 * mapped.  Only splitting one extent in two can need a new tree block.
 */
/* unmap_range for the inline extent: a cut at either end stays inline; a
 * hole inside it needs two extents, so it spills (returns 1) first. */
static int inline_unmap(struct fsctx *fx, struct fs_inode *ino, const struct erec *r,
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
	struct erec kept = *r;
	if (start <= r->lblk) { /* the head goes */
		kept = (struct erec){end, r->pblk + (end - r->lblk), r_end - end};
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
	struct erec e;
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
			struct erec tail = {end, e.pblk + (end - e.lblk), e_end - end};
			int err = btree_insert(&t, &tail, sizeof(tail));
			if (err)
				return err;
			e.len = start - e.lblk;
			err = btree_update(&t, e.lblk, &e, sizeof(e));
			if (err)
				return err;
			free_data(fx, ino, e.pblk + e.len, end - start);
			return 0;
		}
		uint64_t cut = e_end - start;
		e.len = start - e.lblk;
		int err = btree_update(&t, e.lblk, &e, sizeof(e));
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
		struct erec tail = {end, e.pblk + cut, e.len - cut};
		int err = btree_update(&t, e.lblk, &tail, sizeof(tail));
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
	memcpy(&r, rec, sizeof(r));
	if (len == sizeof(r) && rec_valid(&r))
		free_data(d->fx, d->ino, r.pblk, r.len);
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
 * logically and physically, as an insert would have: moved runs stay
 * whole.  Deletes and same-size updates never allocate. */
static int merge_neighbours(struct btree *t, struct erec *r)
{
	struct erec o;
	int h = r->lblk ? get_le(t, r->lblk - 1, &o) : 0;
	if (h < 0)
		return h;
	if (h && o.lblk + o.len == r->lblk && o.pblk + o.len == r->pblk) {
		int rc = btree_delete(t, r->lblk);
		if (rc)
			return rc;
		o.len += r->len;
		rc = btree_update(t, o.lblk, &o, sizeof(o));
		if (rc)
			return rc;
		*r = o;
	}
	h = get_ge(t, r->lblk + r->len, &o);
	if (h < 0)
		return h;
	if (h && r->lblk + r->len == o.lblk && r->pblk + r->len == o.pblk) {
		int rc = btree_delete(t, o.lblk);
		if (rc)
			return rc;
		r->len += o.len;
		return btree_update(t, r->lblk, r, sizeof(*r));
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
	struct erec in;
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
		struct erec r = {lblk, new_pblk, len};
		open_rw(&t, fx, ino);
		rc = btree_update(&t, lblk, &r, sizeof(r));
		if (rc)
			return rc;
		free_data(fx, ino, old_pblk, len);
		ino->blocks += len;
		return merge_neighbours(&t, &r);
	}
	rc = extent_punch(fx, ino, lblk, len);
	return rc ? rc : extent_insert(fx, ino, lblk, new_pblk, len);
}

struct walk_ctx {
	int (*fn)(void *arg, const struct extent *e);
	void *arg;
};

static int walk_rec(void *arg, const void *rec, size_t len)
{
	struct walk_ctx *w = arg;
	struct erec r;
	if (len != sizeof(r))
		return -EUCLEAN;
	memcpy(&r, rec, sizeof(r));
	if (!rec_valid(&r))
		return -EUCLEAN;
	struct extent e = to_extent(&r);
	return w->fn(w->arg, &e);
}

int extent_walk(struct fsctx *fx, const struct fs_inode *ino, uint64_t lblk,
                int (*fn)(void *arg, const struct extent *e), void *arg)
{
	struct btree t;
	struct erec r;
	int in = inline_get(ino, &r);
	if (in) {
		if (in < 0 || r.lblk + r.len <= lblk)
			return in < 0 ? in : 0;
		struct extent e = to_extent(&r);
		return fn(arg, &e);
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
