/*
 * cache.h - the metadata block cache of the shared area.
 *
 * Owns: in-memory copies of metadata blocks (bitmaps, inode table, extent
 * and directory tree nodes), their dirty state, and the snapshot of dirty
 * blocks that a checkpoint writes through the journal.
 * May call: the media layer (reads only; writes happen in digest/journal).
 *
 * Callers serialize access to a buffer's bytes themselves (the file-system
 * lock); the cache's own mutex protects only its table, so readers holding a
 * shared lock may load blocks concurrently.  Dirty buffers are never evicted.
 */
#ifndef CAIRN_FS_CACHE_H
#define CAIRN_FS_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct media;
struct cache;

struct buf {
	uint64_t blkno;
	uint8_t *data; /* FS_BLOCK_SIZE bytes */
	/* private to the cache */
	int refs;
	int dirty;
	struct buf *hnext;
	struct buf *lru_prev, *lru_next;
};

/* max_clean: how many clean, unreferenced buffers to keep (0 = 4096). */
int cache_create(struct cache **out, struct media *m, size_t max_clean);
void cache_destroy(struct cache *c);

/* Returns the buffer of blkno, loading it from the media if needed.
 * Returns 0 or -errno (EIO, EINVAL for a block beyond the medium). */
int cache_get(struct cache *c, uint64_t blkno, struct buf **out);

/* Returns a zeroed buffer for a freshly allocated block without reading the
 * media; it is dirty. */
int cache_get_new(struct cache *c, uint64_t blkno, struct buf **out);

void cache_put(struct cache *c, struct buf *b);
void cache_mark_dirty(struct cache *c, struct buf *b);
/* cache_mark_dirty for a caller whose own lock excludes
 * cache_snapshot_dirty, the one move out of the dirty state: a buffer
 * dirty already is left as it is, without the mutex (whose line every
 * writer would take in turn). */
void cache_keep_dirty(struct cache *c, struct buf *b);

/* The block was freed: drop its buffer, dirty or not (it must be unreferenced). */
void cache_forget(struct cache *c, uint64_t blkno);

size_t cache_dirty_count(struct cache *c);

/* A checkpoint's copy of every dirty block, taken atomically under the
 * caller's lock; taking it marks the blocks clean. */
struct cache_snapshot {
	size_t count;
	uint64_t *blknos; /* ascending */
	uint8_t *images;  /* count * FS_BLOCK_SIZE bytes */
};
int cache_snapshot_dirty(struct cache *c, struct cache_snapshot *out);
void cache_snapshot_free(struct cache_snapshot *s);

/* A failed checkpoint puts its blocks back to dirty unless they were
 * dirtied or forgotten since. */
void cache_snapshot_restore(struct cache *c, const struct cache_snapshot *s);

/* Replaces the cached copy of blkno if present (journal replay at mount). */
void cache_invalidate(struct cache *c, uint64_t blkno);

/*
 * The checkpoint of s has written every block home durably.  Until then
 * (or until the next cache_snapshot_dirty, which implies the previous
 * checkpoint ended) snapshotted buffers stay pinned in memory: their home
 * copies on the media are stale, so evicting and re-reading them would
 * return old bytes.  One checkpoint at a time.
 */
void cache_snapshot_commit(struct cache *c, const struct cache_snapshot *s);

/* Counters for tests and `cairn stat`. */
struct cache_stats {
	size_t buffers;      /* in the table */
	size_t clean_unused; /* on the LRU (evictable) */
	size_t dirty;
	size_t inflight; /* snapshotted, not yet committed */
	uint64_t hits, misses, evictions;
};
void cache_stats(struct cache *c, struct cache_stats *st);

#endif
