/*
 * extent.h - the block map of a file: a B+tree of extents keyed by logical
 * block, rooted in the inode (tree_root).
 *
 * Owns: extent-tree nodes of regular files and symlinks.
 * May call: btree, cache, alloc.
 *
 * Functions update ino->tree_root, the inline extent (a map of one extent
 * is kept in the inode: FS_INODE_INLINE_EXTENT) and ino->blocks (data
 * blocks and tree nodes, 4 KiB units); the caller marks the inode's block
 * dirty.  Logical
 * blocks go up to 2^40 (4 PiB files); holes are simply absent.
 *
 * An extent is written or unwritten.  Unwritten extents hold blocks set
 * aside by fallocate: they count as allocated (ino->blocks, the bitmap)
 * but their contents are not the file's, so readers see zeros and the
 * digest starts from zeros when it writes into one, then marks what it
 * wrote written (extent_mark_written).
 */
#ifndef CAIRN_FS_EXTENT_H
#define CAIRN_FS_EXTENT_H

#include <stdint.h>

struct fsctx;
struct fs_inode;

struct extent {
	uint64_t lblk;  /* first logical block */
	uint64_t pblk;  /* first physical block on the tier */
	uint64_t len;   /* blocks */
	int unwritten;  /* preallocated: reads as zeros */
};

/* Finds the mapping of lblk.  Returns 1 and the whole extent containing it,
 * or 0 for a hole, with out->lblk = lblk and out->len = blocks until the next
 * extent (UINT64_MAX - lblk if none), out->pblk = 0.  Or -errno. */
int extent_lookup(struct fsctx *fx, const struct fs_inode *ino, uint64_t lblk, struct extent *out);

/* Maps [lblk, lblk+len) (which must be a hole) to [pblk, pblk+len), merging
 * with a physically contiguous neighbour.  Adds len to ino->blocks. */
int extent_insert(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t pblk, uint64_t len);

/* The same for preallocated blocks: the extent is unwritten.  len is at
 * most FS_EXTENT_UNWRITTEN_MAX (-EINVAL otherwise). */
int extent_insert_unwritten(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t pblk,
			    uint64_t len);

/* Marks [lblk, lblk+len), which must lie inside one unwritten extent
 * (-EINVAL otherwise), written.  Marking a whole extent never allocates;
 * a part splits it, which may need tree nodes: -ENOSPC then leaves the
 * map as it was (the inline extent may have moved into a tree). */
int extent_mark_written(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t len);

/* Unmaps every block at or after first_lblk and frees it (data blocks back
 * to the allocator, empty tree nodes too).  first_lblk = 0 frees the whole
 * tree and sets tree_root = 0. */
int extent_truncate(struct fsctx *fx, struct fs_inode *ino, uint64_t first_lblk);

/* Unmaps and frees [lblk, lblk+len) (a hole punch). */
int extent_punch(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t len);

/* Migration: maps [lblk, lblk+len), which must lie inside one extent and
 * start at old_pblk, to [new_pblk, new_pblk+len) (already allocated and
 * holding the same bytes, unless the extent is unwritten: it stays so) and
 * frees the old blocks.  -ESTALE if the range
 * is no longer mapped that way.
 * The change is in the cache only: the next checkpoint makes the switch
 * atomic, and the old blocks stay quarantined until it is durable. */
int extent_move(struct fsctx *fx, struct fs_inode *ino, uint64_t lblk, uint64_t len,
		uint64_t old_pblk, uint64_t new_pblk);

/* Forgets the inline extent (its blocks are not freed: fsck's repair of a
 * damaged one, whose blocks are then leaks to reclaim). */
void extent_clear_inline(struct fs_inode *ino);

/* Whether the file maps no block at all (no tree and no inline extent). */
int extent_map_empty(const struct fs_inode *ino);

/* Calls fn for each extent in logical order, starting with the one that
 * contains or follows lblk; stops when fn returns non-zero (and returns it). */
int extent_walk(struct fsctx *fx, const struct fs_inode *ino, uint64_t lblk,
		int (*fn)(void *arg, const struct extent *e), void *arg);

#endif
