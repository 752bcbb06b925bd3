/*
 * fsenv.h - the scratch shared area of the fs-layer unit tests (btree,
 * extent, dir): an emul medium in /dev/shm, a metadata cache over it and a
 * block allocator whose bitmap starts at block FSENV_BMAP_START; blocks
 * below FSENV_FIRST_DATA are never handed out.
 */
#ifndef CAIRN_TEST_FSENV_H
#define CAIRN_TEST_FSENV_H

#include <stddef.h>
#include <stdint.h>

#include "fs/fsctx.h"

#define FSENV_BMAP_START 1
#define FSENV_FIRST_DATA 8

struct fsenv {
	char path[128];
	struct media *m;
	struct cache *c;
	struct alloc *a;
	struct fsctx fx;
	uint64_t nblocks;
};

/* tag names the scratch file; cache_max as for cache_create (0 = default).
 * Fails the current test on error. */
struct fsenv *fsenv_new(const char *tag, uint64_t nblocks, size_t cache_max);
void fsenv_free(struct fsenv *e);
/* Blocks handed out by the allocator. */
uint64_t fsenv_used_blocks(const struct fsenv *e);

#endif
