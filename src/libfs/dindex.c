/*
 * dindex.c - per-file index of undigested data (see dindex.h).
 *
 * Owns: struct piece allocations, a pool's spare pieces and each index's
 * stash of them.  May call: libc.
 *
 * Most writes append: each lands after every piece the file has.  The
 * index keeps its last piece at hand so that an append neither searches
 * the tree nor walks down it to insert; with hundreds of thousands of
 * small appends waiting for the digest, those walks were most of what
 * applying a record cost.
 */
#include "libfs/dindex.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

static int piece_cmp(const struct piece *a, const struct piece *b)
{
	return a->off < b->off ? -1 : a->off > b->off;
}

RB_GENERATE_STATIC(piece_tree, piece, link, piece_cmp)

void dindex_init(struct dindex *d, struct piece_pool *pool)
{
	RB_INIT(&d->tree);
	d->npieces = 0;
	d->resv = 0;
	d->pool = pool;
	d->last = NULL;
	d->clean_gen = 0;
	d->clean_below = 0;
	d->stash = NULL;
	d->nstash = 0;
}

/*
 * Slabs are mapped, not taken from the heap, and their pages populated by
 * the kernel in one call: a piece is allocated under the volume lock, and
 * on this kind of virtual machine each first touch of a heap page traps
 * (several microseconds), which a writer then paid for every ~60 pieces
 * while the others waited for the lock.  The first slab is small, each
 * next one twice as large up to SLAB_MAX_BYTES, whose slabs are also
 * offered to the kernel as huge pages.
 */
#define SLAB_MIN_BYTES ((size_t)64 << 10)
#define SLAB_MAX_BYTES ((size_t)4 << 20)

struct piece_slab {
	struct piece_slab *next;
	size_t bytes;
	struct piece pieces[];
};

/* A new slab to carve pieces from; 0, or -1 when none could be mapped. */
static int slab_add(struct piece_pool *pool)
{
	size_t bytes = pool->next_slab ? pool->next_slab : SLAB_MIN_BYTES;
	struct piece_slab *s =
	    mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return -1;
	if (bytes >= SLAB_MAX_BYTES)
		(void)madvise(s, bytes, MADV_HUGEPAGE);
	/* Without it (an older kernel) the pages fault in one by one. */
	(void)madvise(s, bytes, MADV_POPULATE_WRITE);
	s->bytes = bytes;
	s->next = pool->slabs;
	pool->slabs = s;
	pool->carve = s->pieces;
	pool->carve_end = s->pieces + (bytes - sizeof(*s)) / sizeof(struct piece);
	pool->next_slab = bytes < SLAB_MAX_BYTES ? 2 * bytes : SLAB_MAX_BYTES;
	return 0;
}

/* An index takes STASH_TAKE pieces from the pool at a time and keeps up
 * to STASH_MAX of those it drops: an append takes one piece, and a digest
 * drops them in runs. */
#define STASH_TAKE 8u
#define STASH_MAX 16u

static void stash_push(struct dindex *d, struct piece *p)
{
	RB_RIGHT(p, link) = d->stash;
	d->stash = p;
	d->nstash++;
}

static struct piece *stash_pop(struct dindex *d)
{
	struct piece *p = d->stash;
	d->stash = RB_RIGHT(p, link);
	d->nstash--;
	return p;
}

/* Moves STASH_TAKE pieces from the pool to d's stash; -1 when the pool
 * has none and no slab could be mapped. */
static int stash_fill(struct dindex *d)
{
	struct piece_pool *pool = d->pool;
	int rc = 0;
	pthread_mutex_lock(&pool->lock);
	while (d->nstash < STASH_TAKE) {
		struct piece *p = pool->spare;
		if (p)
			pool->spare = RB_RIGHT(p, link);
		else if (pool->carve < pool->carve_end || !slab_add(pool))
			p = pool->carve++;
		else {
			rc = d->nstash ? 0 : -1;
			break;
		}
		stash_push(d, p);
	}
	pthread_mutex_unlock(&pool->lock);
	return rc;
}

/* Gives the pool back n pieces of d's stash. */
static void stash_return(struct dindex *d, unsigned n)
{
	struct piece_pool *pool = d->pool;
	pthread_mutex_lock(&pool->lock);
	while (n-- > 0 && d->stash) {
		struct piece *p = stash_pop(d);
		RB_RIGHT(p, link) = pool->spare;
		pool->spare = p;
	}
	pthread_mutex_unlock(&pool->lock);
}

static struct piece *piece_alloc(struct dindex *d)
{
	if (!d->pool)
		return malloc(sizeof(struct piece));
	if (!d->stash && stash_fill(d))
		return NULL;
	return stash_pop(d);
}

static void piece_free(struct dindex *d, struct piece *p)
{
	if (!d->pool) {
		free(p);
		return;
	}
	stash_push(d, p);
	if (d->nstash > STASH_MAX)
		stash_return(d, STASH_MAX / 2);
}

void piece_pool_drain(struct piece_pool *pool)
{
	while (pool->slabs) {
		struct piece_slab *s = pool->slabs;
		pool->slabs = s->next;
		munmap(s, s->bytes);
	}
	pool->spare = pool->carve = pool->carve_end = NULL;
	pool->next_slab = 0;
}

static void drop(struct dindex *d, struct piece *p)
{
	if (p == d->last)
		d->last = RB_PREV(piece_tree, &d->tree, p);
	RB_REMOVE(piece_tree, &d->tree, p);
	d->npieces--;
	if (d->pool)
		d->pool->total--;
	d->resv -= p->resv;
	piece_free(d, p);
}

void dindex_clear(struct dindex *d)
{
	struct piece *p, *n;
	RB_FOREACH_SAFE(p, piece_tree, &d->tree, n)
		drop(d, p);
	if (d->pool && d->nstash)
		stash_return(d, d->nstash);
}

int dindex_empty(const struct dindex *d)
{
	return RB_EMPTY(&d->tree);
}

struct piece *dindex_min(struct dindex *d)
{
	return RB_MIN(piece_tree, &d->tree);
}

struct piece *dindex_next(struct dindex *d, struct piece *p)
{
	(void)d;
	return RB_NEXT(piece_tree, &d->tree, p);
}

struct piece *dindex_first_after(struct dindex *d, uint64_t off)
{
	if (d->last && off >= d->last->off) /* at or after the last piece's start */
		return off < d->last->off + d->last->len ? d->last : NULL;
	struct piece key = {.off = off};
	struct piece *p = RB_NFIND(piece_tree, &d->tree, &key);
	struct piece *prev = p ? RB_PREV(piece_tree, &d->tree, p) : RB_MAX(piece_tree, &d->tree);
	if (prev && prev->off + prev->len > off)
		return prev;
	return p;
}

static struct piece *new_piece(struct dindex *d, uint64_t off, uint64_t len, uint64_t src,
                               uint64_t seq, uint64_t resv, uint8_t kind)
{
	struct piece *p = piece_alloc(d);
	if (!p)
		return NULL;
	p->off = off;
	p->len = len;
	p->src = src;
	p->seq = seq;
	p->resv = resv;
	p->stored = 0;
	p->kind = kind;
	return p;
}

/* A piece after the last one becomes the right child of the last (which
 * has none: it is the maximum), as RB_INSERT would place it after its
 * walk down; the tree is then rebalanced as RB_INSERT does. */
static void add(struct dindex *d, struct piece *p)
{
	if (d->last && p->off > d->last->off) {
		RB_SET(p, d->last, link);
		RB_RIGHT(d->last, link) = p;
		piece_tree_RB_INSERT_COLOR(&d->tree, p);
	} else {
		RB_INSERT(piece_tree, &d->tree, p);
	}
	if (!d->last || p->off > d->last->off)
		d->last = p;
	d->npieces++;
	if (d->pool)
		d->pool->total++;
	d->resv += p->resv;
}

/* Removes [off, end) from the index, splitting a piece that straddles it. */
static int cut(struct dindex *d, uint64_t off, uint64_t end, uint64_t *released)
{
	struct piece *p = dindex_first_after(d, off);
	while (p && p->off < end) {
		struct piece *next = RB_NEXT(piece_tree, &d->tree, p);
		uint64_t pend = p->off + p->len;
		if (p->off < off && pend > end) {
			/* Split: keep the head in p, add the tail. */
			uint64_t skip = end - p->off;
			struct piece *t =
			    new_piece(d, end, pend - end, p->kind == PIECE_LOG ? p->src + skip : 0,
			              p->seq, 0, p->kind);
			if (!t)
				return -ENOMEM;
			t->stored = p->stored;
			p->len = off - p->off;
			add(d, t);
			return 0;
		}
		if (p->off < off) {
			p->len = off - p->off; /* keep the head */
		} else if (pend > end) {
			uint64_t skip = end - p->off; /* keep the tail; the key grows but
			                                 order is kept */
			p->off = end;
			p->len = pend - end;
			if (p->kind == PIECE_LOG)
				p->src += skip;
		} else {
			*released += p->resv;
			drop(d, p);
		}
		p = next;
	}
	return 0;
}

int dindex_insert(struct dindex *d, uint64_t off, uint64_t len, uint64_t src, uint64_t seq,
                  uint64_t resv, enum piece_kind kind, uint64_t *released)
{
	*released = 0;
	if (len == 0)
		return 0;
	if (off < d->clean_below)
		d->clean_below = off; /* the new piece is not stored */
	struct piece *p = new_piece(d, off, len, src, seq, resv, kind);
	if (!p)
		return -ENOMEM;
	int rc = cut(d, off, off + len, released);
	if (rc) {
		piece_free(d, p);
		return rc;
	}
	/* A write that continues the previous one in the log extends it. */
	struct piece *prev = dindex_first_after(d, off ? off - 1 : 0);
	if (prev && prev->off + prev->len == off && prev->kind == kind && prev->seq == seq &&
	    (kind == PIECE_ZERO || prev->src + prev->len == src)) {
		prev->len += len;
		prev->resv += resv;
		d->resv += resv;
		piece_free(d, p);
		return 0;
	}
	add(d, p);
	return 0;
}

uint64_t dindex_truncate(struct dindex *d, uint64_t size)
{
	uint64_t released = 0;
	cut(d, size, UINT64_MAX, &released); /* cannot split: no end inside */
	return released;
}

void dindex_remove_before(struct dindex *d, uint64_t seq)
{
	struct piece *p, *n;
	RB_FOREACH_SAFE(p, piece_tree, &d->tree, n) {
		if (p->seq < seq)
			drop(d, p);
	}
}

struct piece *dindex_first_unstored(struct dindex *d, uint64_t gen)
{
	if (d->clean_gen != gen || d->clean_below == 0)
		return dindex_min(d);
	return dindex_first_after(d, d->clean_below);
}

/* When p is the first piece at or past clean_below, the clean prefix
 * grows over it and over the stored pieces that follow it.  Each piece is
 * passed over once a generation, unless a write below it lowers the
 * prefix again. */
static void grow_clean(struct dindex *d, struct piece *p, uint64_t gen)
{
	if (d->clean_gen != gen) {
		d->clean_gen = gen;
		d->clean_below = 0;
	}
	if (p->off < d->clean_below)
		return;
	struct piece *prev = RB_PREV(piece_tree, &d->tree, p);
	if (prev && prev->off >= d->clean_below)
		return; /* a piece between may be unstored */
	for (; p && p->stored == gen; p = RB_NEXT(piece_tree, &d->tree, p))
		d->clean_below = p->off + p->len;
}

uint64_t dindex_mark_stored(struct dindex *d, struct piece *p, uint64_t gen)
{
	uint64_t r = p->resv;
	p->stored = gen;
	p->resv = 0;
	d->resv -= r;
	grow_clean(d, p, gen);
	return r;
}

uint64_t dindex_take_resv(struct dindex *d)
{
	struct piece *p;
	RB_FOREACH(p, piece_tree, &d->tree)
		p->resv = 0;
	uint64_t total = d->resv;
	d->resv = 0;
	return total;
}
