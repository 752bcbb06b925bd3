/*
 * space.c - how much of the shared area a call may take, decided before
 * its record enters the log.
 *
 * A record in the log must always apply: if it did not, the volume could
 * neither go on nor replay its log at the next mount.  So every call that
 * can make a tree grow checks here, before it appends, that the blocks its
 * record and the next digest will need exist.  The accounting:
 *
 *   - File data may go to any tier.  Data logged but not yet digested holds
 *     a reservation (fs->reserved_blocks); data that will not fit on the
 *     capacity tiers must land on the fast tier.
 *   - Tree nodes (directories, extent maps, xattrs) live on the fast tier
 *     only.  Calls that insert into a tree allocate their nodes when the
 *     record is applied; the extent-map nodes for undigested data are
 *     allocated by the digest, so they are counted here in advance
 *     (pending_nodes).
 *   - fallocate takes its blocks when its record is applied (unwritten
 *     extents), with the extent-map nodes they need: a later write into
 *     them needs no data block.  The digest's marking them written may
 *     split an extent; it does so only with nodes to spare beside
 *     everything above, and otherwise writes zeros over the rest of the
 *     extent, which needs none (space_nodes_spare).
 *   - A reserve of the fast tier is kept for the calls that give space
 *     back but may insert into a tree (rename, truncate, hole punching):
 *     on a volume full of data or of names, those still work, as with
 *     ext4's reserved blocks or btrfs's global reserve.  Calls that
 *     allocate nothing (unlink, rmdir, xattr removal, chmod) are never
 *     refused for space.
 *
 * Owns: the space rules, and where new file data goes (space_place_data).
 * May call: the shared area's free counts and allocators (fs/).
 */
#include <errno.h>

#include "fs/alloc.h"
#include "libfs/fs_internal.h"

/* Tree nodes one insert may allocate: a leaf split through every level of
 * a tree of realistic height, plus a new root.  A directory of ten million
 * names is four levels deep. */
#define NODES_PER_INSERT 6
/* Tree nodes a data write may add to the next digest: a new extent-map
 * root or a split of its path. */
#define NODES_PER_DATA_WRITE (NODES_PER_INSERT - 1)

/* The fast-tier blocks only space-freeing calls may use. */
static uint64_t space_reserve(struct cairn_fs *fs)
{
	return 32 + alloc_total(fs->sh.balloc) / 256;
}

/* Extent-map nodes the next digest may allocate for the data in the log:
 * per file with undigested data a new root or one split path, and one leaf
 * per 64 extents (a leaf holds about 170, half that after a split; a
 * reserved block may become an extent of its own when free space is
 * fragmented). */
static uint64_t pending_nodes(struct cairn_fs *fs)
{
	uint64_t files = fs->vcount < fs->pieces.total ? fs->vcount : fs->pieces.total;
	return NODES_PER_DATA_WRITE * files + fs->pieces.total / 64 + fs->reserved_blocks / 64;
}

uint64_t tier_data_free(struct cairn_fs *fs, unsigned t)
{
	uint64_t f = shared_tier_room(&fs->sh, t);
	/* On the fast tier, file data may not take the reserve nor the tree
	 * nodes the next digest may need. */
	uint64_t keep = t == 0 ? space_reserve(fs) + pending_nodes(fs) : 0;
	return f > keep ? f - keep : 0;
}

/* The one inequality behind every check: the fast tier must hold the
 * nodes that are kept or asked for, plus whatever data (reserved, and
 * `blocks` more) the capacity tiers cannot take. */
static int fits(struct cairn_fs *fs, uint64_t blocks, uint64_t nodes, int use_reserve)
{
	uint64_t capacity_free = 0;
	for (unsigned t = 1; t < fs->sh.ntiers; t++)
		capacity_free += shared_tier_room(&fs->sh, t);
	uint64_t data = fs->reserved_blocks + blocks;
	uint64_t data_on_fast = data > capacity_free ? data - capacity_free : 0;
	uint64_t keep = pending_nodes(fs) + nodes + (use_reserve ? 0 : space_reserve(fs));
	return shared_tier_free(&fs->sh, 0) >= keep + data_on_fast;
}

int space_nodes_fit(struct cairn_fs *fs, uint64_t nodes)
{
	return fits(fs, 0, nodes, 1);
}

int space_nodes_spare(struct cairn_fs *fs, uint64_t nodes)
{
	return fits(fs, 0, nodes, 0);
}

/* Extent-map nodes that one record preallocating `blocks` may add: an
 * insert's worst split, and a leaf per 64 extents (free space may give
 * the blocks in runs as short as one).  A record sets aside at most
 * FS_EXTENT_UNWRITTEN_MAX blocks; for a larger range (the check of a
 * whole call) this counts the first record's nodes, and each record
 * checks its own: a leaf per 64 blocks of a whole 100 GiB range would
 * refuse what takes a few nodes in practice. */
static uint64_t prealloc_nodes(uint64_t blocks)
{
	uint64_t one = blocks < FS_EXTENT_UNWRITTEN_MAX ? blocks : FS_EXTENT_UNWRITTEN_MAX;
	return NODES_PER_INSERT + one / 64 + 1;
}

int space_check(struct cairn_fs *fs, enum space_class cls, uint64_t blocks)
{
	if (cls == SPACE_NONE)
		return 0;
	uint64_t nodes;
	if (cls == SPACE_PREALLOC)
		nodes = blocks ? prealloc_nodes(blocks) : 0; /* nothing to set aside */
	else
		nodes = (cls == SPACE_DATA ? 0 : NODES_PER_INSERT) +
		        (blocks ? NODES_PER_DATA_WRITE : 0);
	return fits(fs, blocks, nodes, cls == SPACE_FREES) ? 0 : -ENOSPC;
}

/*
 * Placement: new data goes to the fastest tier that is below its spill mark
 * (SPILL_PERCENT full; on the fast tier, the tree-node margin counts as
 * used).  The migrator normally keeps the fast tier near its watermarks, so
 * this spills only when writes outrun migration - a large sequential write,
 * say - and then the data goes straight to the capacity tier instead of
 * waiting.  Failing that, any tier with a free block takes it.
 */
#define SPILL_PERCENT 95

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int space_place_data(struct cairn_fs *fs, uint64_t hint, uint64_t want, uint64_t *pblk,
                     uint64_t *got)
{
	for (unsigned t = 0; t < fs->sh.ntiers; t++) {
		uint64_t spare = shared_tier_blocks(&fs->sh, t) * (100 - SPILL_PERCENT) / 100;
		uint64_t avail = tier_data_free(fs, t);
		if (avail > spare)
			return shared_alloc_data(&fs->sh, t, hint, min_u64(want, avail - spare),
			                         pblk, got);
	}
	for (unsigned t = 1; t < fs->sh.ntiers; t++) {
		uint64_t avail = tier_data_free(fs, t);
		if (avail > 0)
			return shared_alloc_data(&fs->sh, t, hint, min_u64(want, avail), pblk, got);
	}
	return shared_alloc_data(&fs->sh, 0, hint, want, pblk, got);
}

/* The largest write that fits: its blocks, plus the extent-map nodes they
 * add to the next digest (one per 64 blocks, and a new file's root). */
uint64_t space_available(struct cairn_fs *fs)
{
	uint64_t room = shared_tier_free(&fs->sh, 0);
	for (unsigned t = 1; t < fs->sh.ntiers; t++)
		room += shared_tier_room(&fs->sh, t);
	uint64_t taken =
	    space_reserve(fs) + pending_nodes(fs) + fs->reserved_blocks + 2 * NODES_PER_DATA_WRITE;
	if (room <= taken)
		return 0;
	room -= taken;
	return room - room / 65 - 1;
}
