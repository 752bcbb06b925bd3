/*
 * sums.h - the data checksum table of one tier: one 32-bit checksum per
 * block, kept on the fast tier (docs/FORMAT.md, "Data checksums").
 *
 * Owns: the bytes of one table region of the fast-tier part, and the copy
 * of it in memory.  May call: media.  Called only by shared.c, which owns
 * the data blocks the entries describe.
 *
 * On byte-addressable media the table is read in place through the
 * mapping; on the file medium it is read whole at mount into memory (4
 * bytes per 4 KiB block: 0.1% of the tier) and changed entries are written
 * back a table block at a time by sums_flush, before the fence that makes
 * the data they describe durable.
 *
 * A block that verified once is remembered (one bit per block, in memory)
 * until it is written again, and later reads of it are not hashed again:
 * the bytes are then the ones that verified, held in memory that hashing
 * could not protect anyway (the mapping of a byte-addressable part, the
 * page cache of a file part).  Hashing every 4 KiB read from DRAM cost
 * about half the time of a warm random read.  Scrub and fsck always hash.
 */
#ifndef CAIRN_FS_SUMS_H
#define CAIRN_FS_SUMS_H

#include <pthread.h>
#include <stdint.h>

struct media;

struct sums {
	struct media *m;      /* the fast tier, which holds every table */
	uint64_t off;         /* byte offset of the table in m */
	uint64_t nblocks;     /* entries: blocks of the tier */
	const uint32_t *v;    /* the entries: m's mapping, or copy */
	uint32_t *copy;       /* the file medium: the table in memory */
	uint64_t *dirty;      /* copy: table blocks changed since sums_flush */
	uint64_t *verified;   /* blocks read and found good since last written */
	uint64_t *reported;   /* blocks found damaged and said so, since last written */
	pthread_mutex_t lock; /* copy and dirty, between writers */
};

/* The checksum of one 4096-byte block that lives at tier-tagged pblk. */
uint32_t sums_of(const void *block, uint64_t pblk);

/* Opens the table of nblocks entries at block `start` of the fast tier m.
 * Returns 0 or -errno. */
int sums_open(struct sums *t, struct media *m, uint64_t start, uint64_t nblocks);
void sums_close(struct sums *t);
/* The table, copied to block `start` by the caller, used there with
 * nblocks entries (no fewer than it had), keeping what is known of the
 * blocks it had.  On failure (-errno) nothing changed. */
int sums_move(struct sums *t, uint64_t start, uint64_t nblocks);

/* Records the checksums of n blocks just written at tier-tagged pblk
 * (block blk of the tier).  With damaged, the entries are made not to
 * match: the blocks stay unreadable until they are written whole. */
int sums_set(struct sums *t, uint64_t pblk, uint64_t blk, const void *data, uint64_t n,
             int damaged);

/* The number of leading blocks of the n at pblk (data) whose checksums
 * match: n when all do.  With always, blocks that verified before are
 * hashed again too. */
uint64_t sums_verify(struct sums *t, uint64_t pblk, uint64_t blk, const void *data, uint64_t n,
                     int always);
/* Whether every block of [blk, blk+n) verified since it was last written. */
int sums_known_good(const struct sums *t, uint64_t blk, uint64_t n);

/* Marks block blk as found damaged and reported; 1 the first time since
 * it was last written, 0 after (and for a block beyond the table). */
int sums_note_damage(struct sums *t, uint64_t blk);
/* Whether a block of [blk, blk+n) was found damaged since last written. */
int sums_known_damaged(const struct sums *t, uint64_t blk, uint64_t n);

/* Stores and flushes the entries sums_set changed (a no-op in place). */
int sums_flush(struct sums *t);

#endif
