/*
 * fsctx.h - what the tree layers (extent, directory) need of the shared area:
 * the metadata cache, the block allocator of the fast tier (tree nodes and
 * fast-tier data) and the allocators of the capacity tiers (data only).
 */
#ifndef CAIRN_FS_FSCTX_H
#define CAIRN_FS_FSCTX_H

#include "fs/format.h"

struct cache;
struct alloc;

struct fsctx {
	struct cache *cache;
	struct alloc *balloc;
	/* talloc[t] allocates the blocks of capacity tier t (1..); NULL where
	 * the volume has no such tier.  talloc[0] is unused: see balloc. */
	struct alloc *talloc[FS_MAX_TIERS + 1];
};

#endif
