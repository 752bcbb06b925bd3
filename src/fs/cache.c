/*
 * cache.c - the metadata block cache of the shared area.
 *
 * Owns: struct buf lifetimes, the hash table keyed by block number, the LRU
 * of clean unreferenced buffers, the list of dirty buffers, and the list of
 * buffers handed to the checkpoint in progress ("in flight").
 * May call: media_read() (never a media write: the digest writes snapshots
 * through the journal), libc, pthreads.
 *
 * Locking: c->mu protects the table and the lists, refs and state.  Buffer
 * bytes are protected by the caller's file-system lock; cache_get may run
 * concurrently from readers holding that lock shared, so a miss reads the
 * media with c->mu released and re-checks the table before inserting.
 *
 * Every buffer is on at most one list, using lru_prev/lru_next:
 *   BUF_CLEAN, refs == 0   -> the LRU (evictable)
 *   BUF_CLEAN, refs > 0    -> no list
 *   BUF_DIRTY              -> the dirty list (never evicted)
 *   BUF_INFLIGHT           -> the in-flight list (never evicted)
 *   BUF_ORPHAN             -> no list, not in the table (forgotten while
 *                             referenced; freed by the last cache_put)
 *
 * Why "in flight": a snapshot marks blocks clean, but their home copies on
 * the media stay stale until the checkpoint has written them home.  Evicting
 * such a buffer and reading it back in that window would return old bytes.
 * So snapshotted buffers stay pinned until cache_snapshot_commit(), or until
 * the next snapshot (checkpoints are serialized, so a new snapshot proves
 * the previous one finished or was restored).
 */
#include "fs/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fs/format.h"
#include "media/media.h"

enum { BUF_CLEAN = 0, BUF_DIRTY = 1, BUF_INFLIGHT = 2, BUF_ORPHAN = 3 };

#define CACHE_DEFAULT_CLEAN 4096
#define CACHE_MIN_BUCKETS 1024

struct buf_list {
	struct buf *head, *tail; /* head = most recently used */
	size_t n;
};

struct cache {
	struct media *m; /* its size bounds the block numbers: it may grow */
	size_t max_clean;
	pthread_mutex_t mu;
	struct buf **tab;
	size_t mask;  /* buckets - 1, buckets a power of two */
	size_t count; /* buffers in the table */
	struct buf_list lru, dirty, inflight;
	uint64_t hits, misses, evictions;
};

static size_t bucket(const struct cache *c, uint64_t blkno)
{
	return (size_t)((blkno * 0x9e3779b97f4a7c15ull) >> 17) & c->mask;
}

static void list_push(struct buf_list *l, struct buf *b)
{
	b->lru_prev = NULL;
	b->lru_next = l->head;
	if (l->head)
		l->head->lru_prev = b;
	else
		l->tail = b;
	l->head = b;
	l->n++;
}

static void list_del(struct buf_list *l, struct buf *b)
{
	if (b->lru_prev)
		b->lru_prev->lru_next = b->lru_next;
	else
		l->head = b->lru_next;
	if (b->lru_next)
		b->lru_next->lru_prev = b->lru_prev;
	else
		l->tail = b->lru_prev;
	b->lru_prev = b->lru_next = NULL;
	l->n--;
}

/* The list a buffer is on given its state and refs, or NULL. */
static struct buf_list *list_of(struct cache *c, const struct buf *b)
{
	switch (b->dirty) {
	case BUF_CLEAN:
		return b->refs == 0 ? &c->lru : NULL;
	case BUF_DIRTY:
		return &c->dirty;
	case BUF_INFLIGHT:
		return &c->inflight;
	default:
		return NULL;
	}
}

/* Changes state, moving the buffer between lists. */
static void set_state(struct cache *c, struct buf *b, int state)
{
	struct buf_list *from = list_of(c, b);
	if (from)
		list_del(from, b);
	b->dirty = state;
	struct buf_list *to = list_of(c, b);
	if (to)
		list_push(to, b);
}

static struct buf *tab_find(struct cache *c, uint64_t blkno)
{
	for (struct buf *b = c->tab[bucket(c, blkno)]; b; b = b->hnext)
		if (b->blkno == blkno)
			return b;
	return NULL;
}

static void tab_remove(struct cache *c, struct buf *b)
{
	struct buf **pp = &c->tab[bucket(c, b->blkno)];
	while (*pp && *pp != b)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = b->hnext;
		c->count--;
	}
	b->hnext = NULL;
}

/* Doubles the table when it gets crowded; failure to grow only costs speed. */
static void tab_maybe_grow(struct cache *c)
{
	if (c->count <= c->mask + 1)
		return;
	size_t nb = (c->mask + 1) * 2;
	struct buf **nt = calloc(nb, sizeof(*nt));
	if (!nt)
		return;
	struct buf **old = c->tab;
	size_t oldn = c->mask + 1;
	c->tab = nt;
	c->mask = nb - 1;
	for (size_t i = 0; i < oldn; i++) {
		struct buf *b = old[i];
		while (b) {
			struct buf *next = b->hnext;
			size_t h = bucket(c, b->blkno);
			b->hnext = nt[h];
			nt[h] = b;
			b = next;
		}
	}
	free(old);
}

static void tab_insert(struct cache *c, struct buf *b)
{
	size_t h = bucket(c, b->blkno);
	b->hnext = c->tab[h];
	c->tab[h] = b;
	c->count++;
	tab_maybe_grow(c);
}

static struct buf *buf_alloc(uint64_t blkno)
{
	struct buf *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	/* Page-aligned so that direct-I/O backends can read straight into it. */
	if (posix_memalign((void **)&b->data, FS_BLOCK_SIZE, FS_BLOCK_SIZE)) {
		free(b);
		return NULL;
	}
	b->blkno = blkno;
	return b;
}

static void buf_free(struct buf *b)
{
	free(b->data);
	free(b);
}

static void trim(struct cache *c)
{
	while (c->lru.n > c->max_clean) {
		struct buf *b = c->lru.tail;
		list_del(&c->lru, b);
		tab_remove(c, b);
		buf_free(b);
		c->evictions++;
	}
}

int cache_create(struct cache **out, struct media *m, size_t max_clean)
{
	struct cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->tab = calloc(CACHE_MIN_BUCKETS, sizeof(*c->tab));
	if (!c->tab) {
		free(c);
		return -ENOMEM;
	}
	c->mask = CACHE_MIN_BUCKETS - 1;
	c->m = m;
	c->max_clean = max_clean ? max_clean : CACHE_DEFAULT_CLEAN;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

void cache_destroy(struct cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i <= c->mask; i++) {
		struct buf *b = c->tab[i];
		while (b) {
			struct buf *next = b->hnext;
			buf_free(b);
			b = next;
		}
	}
	/* Orphans still referenced by a buggy caller are leaked, not freed
	 * under its feet. */
	free(c->tab);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Takes a reference on a buffer found in the table (c->mu held). */
static void ref_found(struct cache *c, struct buf *b)
{
	if (b->refs == 0 && b->dirty == BUF_CLEAN)
		list_del(&c->lru, b);
	b->refs++;
}

int cache_get(struct cache *c, uint64_t blkno, struct buf **out)
{
	if (blkno >= media_size(c->m) / FS_BLOCK_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	struct buf *b = tab_find(c, blkno);
	if (b) {
		ref_found(c, b);
		c->hits++;
		pthread_mutex_unlock(&c->mu);
		*out = b;
		return 0;
	}
	c->misses++;
	pthread_mutex_unlock(&c->mu);

	/* Miss: read without the mutex so concurrent readers are not
	 * serialized behind one media read. */
	struct buf *nb = buf_alloc(blkno);
	if (!nb)
		return -ENOMEM;
	int err = media_read(c->m, blkno * FS_BLOCK_SIZE, nb->data, FS_BLOCK_SIZE);
	if (err) {
		buf_free(nb);
		return err < 0 ? err : -EIO;
	}

	pthread_mutex_lock(&c->mu);
	b = tab_find(c, blkno);
	if (b) {
		/* Another reader loaded it meanwhile: theirs wins. */
		ref_found(c, b);
		pthread_mutex_unlock(&c->mu);
		buf_free(nb);
		*out = b;
		return 0;
	}
	nb->refs = 1;
	nb->dirty = BUF_CLEAN;
	tab_insert(c, nb);
	trim(c);
	pthread_mutex_unlock(&c->mu);
	*out = nb;
	return 0;
}

int cache_get_new(struct cache *c, uint64_t blkno, struct buf **out)
{
	if (blkno >= media_size(c->m) / FS_BLOCK_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	struct buf *b = tab_find(c, blkno);
	if (b) {
		/* A stale copy of a block that was freed without a forget. */
		ref_found(c, b);
	} else {
		b = buf_alloc(blkno);
		if (!b) {
			pthread_mutex_unlock(&c->mu);
			return -ENOMEM;
		}
		b->refs = 1;
		tab_insert(c, b);
	}
	memset(b->data, 0, FS_BLOCK_SIZE);
	set_state(c, b, BUF_DIRTY);
	pthread_mutex_unlock(&c->mu);
	*out = b;
	return 0;
}

void cache_put(struct cache *c, struct buf *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&c->mu);
	if (b->refs <= 0) {
		pthread_mutex_unlock(&c->mu);
		return; /* unbalanced put: ignore rather than corrupt the lists */
	}
	if (b->refs == 1 && b->dirty == BUF_ORPHAN) {
		pthread_mutex_unlock(&c->mu);
		buf_free(b);
		return;
	}
	b->refs--;
	if (b->refs == 0 && b->dirty == BUF_CLEAN) {
		list_push(&c->lru, b);
		trim(c);
	}
	pthread_mutex_unlock(&c->mu);
}

void cache_mark_dirty(struct cache *c, struct buf *b)
{
	pthread_mutex_lock(&c->mu);
	if (b->dirty != BUF_DIRTY && b->dirty != BUF_ORPHAN)
		set_state(c, b, BUF_DIRTY);
	pthread_mutex_unlock(&c->mu);
}

void cache_keep_dirty(struct cache *c, struct buf *b)
{
	if (b->dirty != BUF_DIRTY)
		cache_mark_dirty(c, b);
}

void cache_forget(struct cache *c, uint64_t blkno)
{
	pthread_mutex_lock(&c->mu);
	struct buf *b = tab_find(c, blkno);
	if (b) {
		struct buf_list *l = list_of(c, b);
		if (l)
			list_del(l, b);
		tab_remove(c, b);
		if (b->refs == 0) {
			buf_free(b);
		} else {
			/* Contract says unreferenced; survive a holder anyway. */
			b->dirty = BUF_ORPHAN;
		}
	}
	pthread_mutex_unlock(&c->mu);
}

/* An estimate for thresholds, read on every record applied: without the
 * mutex, whose cache line every writer would otherwise take in turn. */
size_t cache_dirty_count(struct cache *c)
{
	return __atomic_load_n(&c->dirty.n, __ATOMIC_RELAXED);
}

void cache_stats(struct cache *c, struct cache_stats *st)
{
	pthread_mutex_lock(&c->mu);
	st->buffers = c->count;
	st->clean_unused = c->lru.n;
	st->dirty = c->dirty.n;
	st->inflight = c->inflight.n;
	st->hits = c->hits;
	st->misses = c->misses;
	st->evictions = c->evictions;
	pthread_mutex_unlock(&c->mu);
}

/* Unpins every in-flight buffer: their checkpoint is complete. (c->mu held) */
static void release_inflight(struct cache *c)
{
	while (c->inflight.head)
		set_state(c, c->inflight.head, BUF_CLEAN);
	trim(c);
}

static int cmp_buf_blkno(const void *a, const void *b)
{
	const struct buf *x = *(struct buf *const *)a, *y = *(struct buf *const *)b;
	return x->blkno < y->blkno ? -1 : x->blkno > y->blkno;
}

int cache_snapshot_dirty(struct cache *c, struct cache_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->mu);
	release_inflight(c);
	size_t n = c->dirty.n;
	if (n == 0) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	struct buf **v = malloc(n * sizeof(*v));
	uint64_t *blknos = malloc(n * sizeof(*blknos));
	uint8_t *images = malloc(n * (size_t)FS_BLOCK_SIZE);
	if (!v || !blknos || !images) {
		pthread_mutex_unlock(&c->mu);
		free(v);
		free(blknos);
		free(images);
		return -ENOMEM;
	}
	size_t i = 0;
	for (struct buf *b = c->dirty.head; b; b = b->lru_next)
		v[i++] = b;
	qsort(v, n, sizeof(*v), cmp_buf_blkno);
	for (i = 0; i < n; i++) {
		blknos[i] = v[i]->blkno;
		memcpy(images + i * (size_t)FS_BLOCK_SIZE, v[i]->data, FS_BLOCK_SIZE);
		set_state(c, v[i], BUF_INFLIGHT);
	}
	pthread_mutex_unlock(&c->mu);
	free(v);
	out->count = n;
	out->blknos = blknos;
	out->images = images;
	return 0;
}

void cache_snapshot_free(struct cache_snapshot *s)
{
	if (!s)
		return;
	free(s->blknos);
	free(s->images);
	memset(s, 0, sizeof(*s));
}

void cache_snapshot_restore(struct cache *c, const struct cache_snapshot *s)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < s->count; i++) {
		struct buf *b = tab_find(c, s->blknos[i]);
		/* Only buffers still exactly as the snapshot left them: a buffer
		 * dirtied since is dirty already, one forgotten since is gone or
		 * was reloaded (state clean), and must not be resurrected. */
		if (b && b->dirty == BUF_INFLIGHT)
			set_state(c, b, BUF_DIRTY);
	}
	pthread_mutex_unlock(&c->mu);
}

void cache_snapshot_commit(struct cache *c, const struct cache_snapshot *s)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < s->count; i++) {
		struct buf *b = tab_find(c, s->blknos[i]);
		if (b && b->dirty == BUF_INFLIGHT)
			set_state(c, b, BUF_CLEAN);
	}
	trim(c);
	pthread_mutex_unlock(&c->mu);
}

void cache_invalidate(struct cache *c, uint64_t blkno)
{
	pthread_mutex_lock(&c->mu);
	struct buf *b = tab_find(c, blkno);
	if (!b) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	struct buf_list *l = list_of(c, b);
	if (l)
		list_del(l, b);
	if (b->refs == 0) {
		tab_remove(c, b);
		buf_free(b);
	} else {
		/* Someone holds it: refresh the bytes in place.  If the read
		 * fails the buffer is dropped from the table so nobody else
		 * sees the stale copy. */
		if (media_read(c->m, blkno * FS_BLOCK_SIZE, b->data, FS_BLOCK_SIZE) == 0) {
			b->dirty = BUF_CLEAN;
		} else {
			tab_remove(c, b);
			b->dirty = BUF_ORPHAN;
		}
	}
	pthread_mutex_unlock(&c->mu);
}
