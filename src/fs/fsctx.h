/*
 * fsctx.h - what the tree layers (extent, directory) need of the shared area:
 * the metadata cache and the block allocator of the tier they live on.
 */
#ifndef CAIRN_FS_FSCTX_H
#define CAIRN_FS_FSCTX_H

struct cache;
struct alloc;

struct fsctx {
	struct cache *cache;
	struct alloc *balloc;
};

#endif
