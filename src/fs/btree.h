/*
 * btree.h - the one generic B+tree of the shared area, used by extent maps
 * (extent.c) and directories (dir.c).  docs/FORMAT.md ("Tree nodes") gives the node
 * format byte by byte.
 *
 * Owns: tree nodes (cache blocks allocated from the tier's allocator).
 * May call: cache, alloc.
 *
 * Keys are uint64_t and unique within a tree.  Leaves hold variable-size
 * records, each starting with its little-endian u64 key; the tree stores
 * each record's size in its slot.  Internal nodes hold (key, child) pairs.
 * An empty tree has root 0: a leaf that becomes empty is freed and
 * unlinked from its parent, and a root with one child is collapsed.
 *
 * Callers hold the file-system lock: exclusive for the mutating calls,
 * shared (or exclusive) for lookups and iteration.  Every node is checked
 * on load (magic, level, counts, slot offsets); a damaged tree gives
 * -EUCLEAN, never a crash or an endless loop.
 */
#ifndef CAIRN_FS_BTREE_H
#define CAIRN_FS_BTREE_H

#include <stddef.h>
#include <stdint.h>

struct fsctx;

#define BTREE_MAX_DEPTH 16     /* levels, leaf included; a root split beyond gives -EFBIG */
#define BTREE_HDR_SIZE 32      /* node header bytes */
#define BTREE_MIN_NODE 128     /* smallest node_size (tests use small nodes for deep trees) */

struct btree_ops {
	uint32_t magic;     /* stored in every node: tells tree kinds apart */
	uint16_t node_size; /* bytes of each block used, 0 = FS_BLOCK_SIZE */
	uint16_t min_rec;   /* record size bounds, key included (>= 8) ... */
	uint16_t max_rec;   /* ... max_rec + 4 <= (node_size - 32) / 3 */
};

struct btree {
	struct fsctx *fx;
	const struct btree_ops *ops;
	const uint64_t *root_r; /* where the root block number is read */
	uint64_t *root_w;       /* and written; NULL for a read-only handle */
	uint64_t *blocks;       /* node count to adjust (inode blocks), or NULL */
	uint64_t node_hint;     /* where to look for the first node of an empty
				 * tree (0 = the allocator's cursor); later nodes
				 * go near the leaf they split from */
	unsigned nsz;           /* node size in bytes */
	unsigned min, max;      /* record size bounds */
};

/* A handle on a tree whose root block number lives at *root (0 = empty);
 * mutations update *root and add/subtract nodes to *blocks.  The handle
 * re-reads *root on each call, so it stays valid across mutations made
 * through another handle on the same root.  Returns -EINVAL for bad ops. */
int btree_init(struct btree *t, struct fsctx *fx, const struct btree_ops *ops, uint64_t *root,
	       uint64_t *blocks);
int btree_init_ro(struct btree *t, struct fsctx *fx, const struct btree_ops *ops,
		  const uint64_t *root);

/* Lookups copy the record (at most cap bytes) into rec and return its
 * length; exact: -ENOENT if absent; le / ge: 0 if there is none. */
int btree_get(struct btree *t, uint64_t key, void *rec, size_t cap);
int btree_get_le(struct btree *t, uint64_t key, void *rec, size_t cap); /* greatest key <= key */
int btree_get_ge(struct btree *t, uint64_t key, void *rec, size_t cap); /* least key >= key */

/* Inserts a record.  0, -EEXIST (key present), -ENOSPC (no block for a
 * split; the tree is unchanged), -EINVAL (size out of bounds), -errno. */
int btree_insert(struct btree *t, const void *rec, size_t len);

/* Replaces the record of oldkey by rec (whose key may differ, but must not
 * collide with another record).  Done in place, with no allocation, when
 * the length is the same and the new key stays between its neighbours in
 * the same leaf; otherwise as insert-then-delete (may give -ENOSPC, tree
 * unchanged).  A change of length with the same key gives -EINVAL. */
int btree_update(struct btree *t, uint64_t oldkey, const void *rec, size_t len);

/* Deletes a record.  0 or -ENOENT; never allocates. */
int btree_delete(struct btree *t, uint64_t key);

/*
 * Calls fn(arg, rec, len) for each record with first <= key <= last, in key
 * order, until fn returns non-zero (returned).  With BTREE_ITER_COPY each
 * leaf is copied before fn sees it and no buffer is held during fn, so fn
 * may modify the tree (records neither added nor removed meanwhile are seen
 * exactly once); without it rec points into the cache and fn must not
 * modify the tree.
 */
#define BTREE_ITER_COPY 1
typedef int (*btree_rec_fn)(void *arg, const void *rec, size_t len);
int btree_iter(struct btree *t, uint64_t first, uint64_t last, int flags, btree_rec_fn fn,
	       void *arg);

/* Frees every node, calling fn (if not NULL; its result is ignored) for
 * each record first, and sets the root to 0.  A damaged subtree is leaked
 * (never freed twice) and -EUCLEAN returned after the rest is freed. */
int btree_destroy(struct btree *t, btree_rec_fn fn, void *arg);

/* Full validation (key order, separator bounds, levels, sizes), for tests
 * and fsck.  Returns 0 or -EUCLEAN, and fills st if not NULL. */
struct btree_stats {
	unsigned depth;      /* levels, 0 for an empty tree */
	uint64_t nodes, leaves, records;
	uint64_t leaf_bytes; /* record + slot bytes in use in leaves */
};
int btree_check(struct btree *t, struct btree_stats *st);

/* Worst-case nodes one insert dirties or allocates: every level splits and
 * a new root appears: 2 * depth + 1 (plus allocator bitmap blocks). */

#endif
