/*
 * dindex.h - the undigested-data index of one file: which byte ranges of
 * the file live in the log (not yet in the shared area), and where.
 *
 * Owns: the pieces of one file's index (a red-black tree by offset, from
 * libbsd's <sys/tree.h>).
 * May call: libc only.  The caller holds the file-system lock
 * exclusively, or shared with the file's lock (libfs/files.c, "Writes
 * beside each other"); the pool has a lock of its own for that.
 *
 * Pieces never overlap: a newer write cuts the older pieces it covers.
 * A ZERO piece stands for bytes that must read as zeros although the shared
 * area may still hold old data there (the tail block after a truncate).
 */
#ifndef CAIRN_LIBFS_DINDEX_H
#define CAIRN_LIBFS_DINDEX_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#ifndef __unused
#define __unused __attribute__((unused)) /* used by the BSD tree macros */
#endif
#include <bsd/sys/tree.h> /* libbsd: the BSD red-black tree macros */

enum piece_kind { PIECE_LOG = 0, PIECE_ZERO = 1 };

struct piece {
	RB_ENTRY(piece) link;
	uint64_t off, len; /* file bytes [off, off+len) */
	uint64_t src;      /* log offset of the first byte (PIECE_LOG) */
	uint64_t seq;      /* the record that wrote it */
	uint64_t resv;     /* blocks reserved for it in the shared area */
	uint64_t stored;   /* the digest generation that stored it (0: none) */
	uint8_t kind;
};

RB_HEAD(piece_tree, piece);

/* The pieces of many indexes (a volume's): their count, and where they
 * come from.  Pieces are carved from slabs of many and, once dropped,
 * kept for the next inserts until the pool is drained (at unmount): one
 * malloc a piece made the heap of a daemon's thread grow a page at a
 * time, each with a system call and a page fault, and a digest's frees
 * made it shrink again.  So the pool holds as many pieces as were ever
 * undigested at once (dindex.c says how slabs are made). */
struct piece_slab;
struct piece_pool {
	/* Pieces in the indexes: each file's index changes under its own
	 * lock while writers of other files change theirs. */
	_Atomic uint64_t total;
	/* The lists below.  An index keeps a few pieces of its own (its
	 * stash) and comes here for more only now and then, so that writers
	 * of different files seldom meet on this line. */
	pthread_mutex_t lock;
	struct piece *spare; /* linked through link.rbe_right */
	struct piece_slab *slabs;
	struct piece *carve, *carve_end; /* the newest slab's pieces never used */
	size_t next_slab;                /* bytes of the next slab (0: the first) */
};

struct dindex {
	struct piece_tree tree;
	uint64_t npieces;
	uint64_t resv;           /* sum of pieces' resv */
	struct piece_pool *pool; /* where pieces come from and go, or NULL */
	struct piece *last;      /* the piece with the highest offset, or NULL */
	/* Every piece that starts below clean_below was stored by the digest
	 * of generation clean_gen (dindex_first_unstored). */
	uint64_t clean_gen, clean_below;
	struct piece *stash; /* pieces taken from the pool, not in the tree */
	unsigned nstash;
};

void dindex_init(struct dindex *d, struct piece_pool *pool);
/* Frees the pool's slabs: every index of it must be cleared first. */
void piece_pool_drain(struct piece_pool *pool);
/* Empties the index and gives its stash back to the pool. */
void dindex_clear(struct dindex *d);
int dindex_empty(const struct dindex *d);

/* Adds [off, off+len) -> src, cutting what it overlaps.  Returns 0 or -ENOMEM.
 * *released gets the reservation of the pieces that disappeared. */
int dindex_insert(struct dindex *d, uint64_t off, uint64_t len, uint64_t src, uint64_t seq,
                  uint64_t resv, enum piece_kind kind, uint64_t *released);

/* Drops everything at or after size.  Returns the reservation released. */
uint64_t dindex_truncate(struct dindex *d, uint64_t size);

/* The first piece that ends after off, or NULL. */
struct piece *dindex_first_after(struct dindex *d, uint64_t off);
struct piece *dindex_next(struct dindex *d, struct piece *p);
struct piece *dindex_min(struct dindex *d);

/* The first piece, in file order, that the digest of generation gen has
 * not stored, or one before it: where that digest starts looking, so that
 * each of its passes does not walk again over every piece it stored. */
struct piece *dindex_first_unstored(struct dindex *d, uint64_t gen);

/* Notes that the digest of generation gen stored p in the shared area
 * (it stays in the index until its checkpoint commits); returns the
 * reservation it held. */
uint64_t dindex_mark_stored(struct dindex *d, struct piece *p, uint64_t gen);

/* Forgets every piece's reservation (the digest allocated the blocks);
 * returns the total. */
uint64_t dindex_take_resv(struct dindex *d);

/* Drops pieces written by records before seq (now in the shared area). */
void dindex_remove_before(struct dindex *d, uint64_t seq);

#endif
