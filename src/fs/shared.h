/*
 * shared.h - the shared area of a volume: superblock, checkpoint slots,
 * redo journal, inode table, allocators, and the data blocks of the tier.
 *
 * Owns: every byte of the fast-tier part.  Nothing else writes it.
 * May call: media, cache, alloc (and through them the trees).
 *
 * Changes to metadata are made in the cache and reach the media only as a
 * whole, through shared_commit(): a redo journal makes each checkpoint
 * atomic, so the durable shared area always equals the state after some
 * digested prefix of the log.
 */
#ifndef CAIRN_FS_SHARED_H
#define CAIRN_FS_SHARED_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/cache.h"
#include "fs/format.h"
#include "fs/fsctx.h"
#include "fs/sums.h"

struct media;
struct alloc;

/* One tier of the shared area.  Tier 0 is the fast tier (the part that
 * holds all metadata); tiers 1.. are capacity tiers, data only. */
struct tier {
	struct media *m;
	struct alloc *a;       /* its blocks (tier 0: data and tree nodes) */
	uint64_t total_blocks; /* size of the part in blocks */
	uint64_t first_block;  /* first block that may hold data */
	uint32_t unit_blocks;  /* allocation alignment suited to the medium */
	char name[16];
	int dirty;        /* stored to since its last fence */
	struct sums sums; /* a checksum per block (on the fast tier) */
	int retired;      /* removed (FS_TIER_RETIRED): no part, no blocks */
	int draining;     /* being emptied for removal: nothing new goes there */
};

/* What mkfs needs to know of each capacity tier. */
struct tier_spec {
	struct media *m;
	const char *name;
	uint32_t unit_blocks;
	uint64_t size; /* bytes of the medium to use (a device may be larger) */
};

struct shared {
	struct media *m;
	struct fs_super sb; /* a valid copy of the superblock */
	unsigned super_bad; /* damaged copy: 1 block 0, 2 the backup */
	char super_why[160];
	struct fs_checkpoint ckpt; /* the current durable checkpoint */
	/* Its ops_digested, for readers that hold only fs->lock (a commit
	 * runs without it): stored and loaded atomically. */
	uint64_t ops_digested;
	int ckpt_slot; /* 0 or 1: where ckpt lives */
	struct cache *cache;
	struct alloc *balloc; /* blocks of the tier */
	struct alloc *ialloc; /* inode numbers */
	unsigned ntiers;      /* tiers, the fast tier and retired ones included */
	struct tier tier[FS_MAX_TIERS + 1];
	struct fsctx fx;
	/* Left by a crash between the steps of a tier change (open_tiers):
	 * the manifest's last tier not yet in the superblock, and a tier
	 * retired whose manifest line still names its part. */
	int tier_pending, manifest_stale;
};

/* The caller settled what open_tiers found (tier_pending, manifest_stale). */
static inline void shared_tiers_settled(struct shared *s)
{
	s->tier_pending = s->manifest_stale = 0;
}

/* mkfs: lays out the fast tier m, writes the superblock, bitmaps, the root
 * directory and checkpoint 1 (log head at log_head_off, seq 1), and the
 * header of each of the ncap capacity tiers. */
int shared_format(struct media *m, const struct tier_spec *cap, unsigned ncap,
                  const uint8_t uuid[16], uint64_t inodes, uint64_t log_head_off, uint64_t now_ns,
                  char *err, size_t errlen);

/* Mount: validates the superblock (a valid copy is enough: then err holds a
 * warning naming the damaged one while 0 is returned) and every capacity tier's header,
 * replays a committed journal (unless read_only, in which case the replay is
 * done in the cache only), loads the current checkpoint and the allocators.
 * cap[k] is capacity tier k + 1, in the manifest's order. */
int shared_open(struct shared *s, struct media *m, struct media *const *cap, unsigned ncap,
                const uint8_t uuid[16], int read_only, char *err, size_t errlen);
void shared_close(struct shared *s);

/* Which superblock copy shared_open found damaged (1: block 0, 2: the
 * backup in the part's last block; shared_open then warned in err and used
 * the other); when one, *off and *why say where and what. */
unsigned shared_super_damaged(const struct shared *s, uint64_t *off, const char **why);
/* Rewrites the damaged copy from the valid one, and fences. */
int shared_super_repair(struct shared *s);

/* Inodes live in cache buffers; a reference pins the buffer. */
struct iref {
	struct fs_inode *i;
	struct buf *b;
	uint64_t ino;
};
int inode_get(struct shared *s, uint64_t ino, struct iref *r);
void inode_put(struct shared *s, struct iref *r);
void inode_dirty(struct shared *s, struct iref *r);
/* inode_dirty for a caller holding the volume's lock exclusively, as the
 * checkpoint does when it takes the dirty buffers (cache_keep_dirty). */
void inode_keep_dirty(struct shared *s, struct iref *r);

/* Allocates the given inode number (it must be free) / a free one. */
int inode_take(struct shared *s, uint64_t ino);
int inode_pick(struct shared *s, uint64_t hint, uint64_t *ino);
/* An inode number set aside (alloc_hold) for a client to create a file
 * with; inode_unhold gives it back, as before the create takes it. */
int inode_hold(struct shared *s, uint64_t hint, uint64_t *ino);
void inode_unhold(struct shared *s, uint64_t ino);
void inode_release(struct shared *s, uint64_t ino);
int inode_in_use(struct shared *s, uint64_t ino);

/* Whether [pblk, pblk+n) lies in the data area of one tier: an extent read
 * from a damaged tree must not send a read or write anywhere else. */
int shared_blocks_ok(const struct shared *s, uint64_t pblk, uint64_t n);

/*
 * File data blocks (not cached), on whichever tier pblk names: whole
 * blocks, written then flushed, each with its checksum.  Every read is
 * verified against the checksums: a block that does not match fails the
 * read with SHARED_EBADSUM (EBADMSG) and *bad, when given, names it.
 */
#define SHARED_EBADSUM EBADMSG
int shared_data_write(struct shared *s, uint64_t pblk, const void *buf, uint64_t nblocks);
/* Writes one block whose old contents failed verification and were
 * merged into buf: its checksum is stored so as not to match, so the
 * damage stays visible until the block is written whole. */
int shared_data_write_damaged(struct shared *s, uint64_t pblk, const void *buf);
int shared_data_read(struct shared *s, uint64_t pblk, void *buf, uint64_t nblocks, uint64_t *bad);
/* len bytes from byte `in` of block pblk on (may run into later blocks);
 * every block the range touches is verified whole (on a byte-addressable
 * tier, a whole block is verified in the caller's copy). */
int shared_data_pread(struct shared *s, uint64_t pblk, uint64_t in, void *buf, uint64_t len,
                      uint64_t *bad);
/* len bytes from byte `in` of block pblk, within that block, with no
 * checksum check: for a block whose checksum a crash may have left stale
 * (a read-only mount's replayed records, see src/libfs/data.c). */
int shared_data_pread_unverified(struct shared *s, uint64_t pblk, uint64_t in, void *buf,
                                 uint64_t len);
/* Damage found: marks the block at pblk as found damaged, so that it is
 * said once; 1 the first time since it was last written, else 0. */
int shared_data_note_damage(struct shared *s, uint64_t pblk);
/* Whether a block of the n at pblk was found damaged since it was last
 * written (migration leaves such extents where they are). */
int shared_data_known_damaged(struct shared *s, uint64_t pblk, uint64_t n);
/* A pointer to the block for byte-addressable fast tiers, else NULL.  The
 * caller verifies what it reads with shared_data_verify. */
const void *shared_data_direct(struct shared *s, uint64_t pblk);
/* Verifies n blocks from pblk in place (direct) or by reading them.  A
 * block that verified since it was last written is not hashed again
 * (see fs/sums.h) unless always: scrub and fsck ask for always. */
int shared_data_verify(struct shared *s, uint64_t pblk, uint64_t n, uint64_t *bad, int always);
/* Makes every data store so far durable, on every tier written. */
int shared_fence(struct shared *s);

/* Allocates a run of at most want data blocks on tier t (near hint, a
 * pblk of that tier, if given); *pblk is tier-tagged.  0 or -ENOSPC. */
int shared_alloc_data(struct shared *s, unsigned t, uint64_t hint, uint64_t want, uint64_t *pblk,
                      uint64_t *got);
/* Free data blocks on tier t (quarantined ones not counted). */
uint64_t shared_tier_free(const struct shared *s, unsigned t);
/* Data blocks of tier t (the fast tier: all blocks after the metadata). */
uint64_t shared_tier_blocks(const struct shared *s, unsigned t);

/* Whether tier t holds data: it exists and is not retired. */
int shared_tier_live(const struct shared *s, unsigned t);

/*
 * Changing the capacity tiers of an open shared area (shared_tiers.c).
 * Each changes the superblock in memory and in the cache (both copies),
 * so that the next checkpoint commits it through the journal with
 * everything else the change wrote; the caller holds the volume lock and
 * checkpoints.
 *
 * shared_tier_add: m becomes capacity tier ntiers (the next number; at
 * most FS_MAX_TIERS over the volume's life), of size bytes (0: the whole
 * medium), with its header written and fenced, its bitmap and checksum
 * table allocated in the fast tier's data area.
 * shared_tier_retire: tier t, which holds no data any more, is retired;
 * its medium is the caller's to close.  -EBUSY if a block is in use.
 */
int shared_tier_add(struct shared *s, struct media *m, const char *name, uint32_t unit_blocks,
                    uint64_t size, char *err, size_t errlen);
int shared_tier_retire(struct shared *s, unsigned t, char *err, size_t errlen);
/* shared_tier_grow: tier t's part becomes `bigger` (the same file or
 * device, opened larger; the old medium is returned in *old for the caller
 * to close once nothing uses it), of blocks blocks.  Its bitmap and
 * checksum table move to new regions of the right size; its header keeps
 * the size it was made with.  The caller has made a checkpoint since the
 * tier's last free (no block in quarantine: -EAGAIN otherwise). */
/*
 * The fast tier grows in two steps, with the manifest's size written
 * between them by the caller:
 * shared_fast_extend: its part grows in place to `bytes` (media_grow),
 * and the superblock is copied to the new last block, where a mount that
 * reads the new size looks for the backup.
 * shared_fast_grow: the tier takes the blocks its part has (a no-op when
 * it has them all: shared_fast_pending says whether it has not); its
 * bitmap and checksum table move to the start of the new blocks, and
 * the superblock, staged, gains the new size.  The caller has made a
 * checkpoint since the last free (-EAGAIN otherwise), and makes the one
 * that commits it.  Inodes do not grow: the inode table stays as made.
 */
int shared_fast_extend(struct shared *s, uint64_t bytes, char *err, size_t errlen);
int shared_fast_grow(struct shared *s, char *err, size_t errlen);
int shared_fast_pending(const struct shared *s);
int shared_tier_grow(struct shared *s, unsigned t, struct media *bigger, uint64_t blocks,
                     struct media **old, char *err, size_t errlen);
/* Writes and fences tier t's header on m, as superblock sb says (mkfs,
 * and a tier added). */
int shared_tier_header_write(const struct fs_super *sb, unsigned tier, struct media *m);
/* Free blocks of tier t that new data may take: none on a tier being
 * drained.  shared_tier_set_draining marks capacity tier t so (or not):
 * nothing allocates there while it is. */
uint64_t shared_tier_room(const struct shared *s, unsigned t);
void shared_tier_set_draining(struct shared *s, unsigned t, int on);
/* Blocks of tier t in use (quarantined ones included), its header aside. */
uint64_t shared_tier_used(const struct shared *s, unsigned t);

/* Checkpoint hooks for the allocators of every tier (see alloc.h). */
int shared_seal_frees(struct shared *s);
void shared_release_frees(struct shared *s);

/* Journal capacity in blocks of metadata per checkpoint. */
uint64_t shared_journal_capacity(const struct shared *s);

/*
 * Makes the snapshot's blocks and the new checkpoint durable atomically:
 * journal images, fence, journal header, fence, home locations, fence, the
 * checkpoint slot that is not current, fence.  ck->seq is set here.
 * Returns 0 or -errno (then nothing changed in the durable state, or the
 * journal will complete it at the next mount).
 */
int shared_commit(struct shared *s, const struct cache_snapshot *snap, struct fs_checkpoint *ck);
/* The operations digested as of the current checkpoint, safe to read
 * while a checkpoint commits. */
uint64_t shared_ops_digested(const struct shared *s);

#endif
