/*
 * alloc.h - bitmap allocators: data/tree blocks of a tier, and inode numbers.
 *
 * Owns: the allocation bitmap region of the shared area (through the
 * cache) and an in-memory copy of it for fast search.
 * May call: the cache.
 *
 * One bitmap bit per unit (a block or an inode number).  Every change goes
 * to both copies, and the bitmap block in the cache is marked dirty so the
 * next checkpoint persists it.
 */
#ifndef CAIRN_FS_ALLOC_H
#define CAIRN_FS_ALLOC_H

#include <stdint.h>

struct cache;
struct alloc;

/* Loads a bitmap of nunits bits that lives in bitmap_blocks blocks starting
 * at block bitmap_start.  Units below first_unit are never handed out. */
int alloc_open(struct alloc **out, struct cache *c, uint64_t bitmap_start, uint64_t bitmap_blocks,
               uint64_t nunits, uint64_t first_unit);
void alloc_close(struct alloc *a);

/* Allocates a run of at most want free units, preferring one that starts at
 * or after hint; *got >= 1.  Returns 0 or -ENOSPC. */
int alloc_run(struct alloc *a, uint64_t hint, uint64_t want, uint64_t *start, uint64_t *got);

/* Allocates exactly unit (must be free).  Returns 0, -EEXIST if in use. */
int alloc_take(struct alloc *a, uint64_t unit);

void alloc_free(struct alloc *a, uint64_t start, uint64_t n);

/* Sets a free unit aside in memory only: nothing hands it out, and no
 * checkpoint records it used, so a crash frees it.  alloc_unhold gives it
 * back (before alloc_take takes it for good).  -EEXIST if in use. */
int alloc_hold(struct alloc *a, uint64_t unit);
void alloc_unhold(struct alloc *a, uint64_t unit);
/*
 * Quarantine, for the blocks of a tier.  File data is written in place
 * during a checkpoint, before its journal commits; it must never land in a
 * block that the durable checkpoint still uses as a tree node.  So a freed
 * block is not handed out again until the checkpoint that records it free
 * is durable: alloc_free marks it free in the bitmap block (what the next
 * checkpoint writes) but keeps it in use in memory; alloc_seal, called when
 * a checkpoint snapshots the bitmap, closes the set of frees it covers;
 * alloc_release_sealed, called once that checkpoint is durable, hands them
 * out again.  Quarantined units do not count as free.
 */
void alloc_set_quarantine(struct alloc *a, int on);
int alloc_seal(struct alloc *a);
void alloc_release_sealed(struct alloc *a);
uint64_t alloc_quarantined(const struct alloc *a);

int alloc_is_used(const struct alloc *a, uint64_t unit);
uint64_t alloc_free_count(const struct alloc *a);
uint64_t alloc_total(const struct alloc *a);
uint64_t alloc_first(const struct alloc *a); /* units below are never handed out */

/* mkfs: writes an initial bitmap with units [0, used_below) in use straight
 * into the cache (the caller checkpoints). */
int alloc_format(struct cache *c, uint64_t bitmap_start, uint64_t bitmap_blocks, uint64_t nunits,
                 uint64_t used_below);

#endif
