/*
 * btree.c - the generic B+tree behind extent maps and directories.
 *
 * Owns: the node format (docs/FORMAT.md, "Tree nodes"): a 32-byte header, then
 *   leaf (level 0):  a slot array {u16 off, u16 len} sorted by key, growing
 *                    up; record bytes in a heap growing down from the end;
 *   internal:        an array of {u64 key, u64 child}; child i holds the
 *                    keys in [key[i], key[i+1]); key[0] is never consulted
 *                    (the parent's bound applies), so it may be stale.
 * May call: cache (node buffers), alloc (node blocks), libc.
 *
 * Safety rules that keep a damaged tree from crashing or looping:
 *   - every node is checked on load (magic, level, counts, heap bounds),
 *     and each slot is checked before its record is touched;
 *   - a child must have exactly its parent's level - 1, so every descent
 *     ends within BTREE_MAX_DEPTH loads;
 *   - multi-round operations (iteration, get_le) move a key strictly in one
 *     direction each round and stop with -EUCLEAN when they cannot.
 * Mutations obtain every new block before changing anything, so -ENOSPC
 * (or -ENOMEM, -EIO) leaves the tree as it was.
 */
#include "fs/btree.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "fs/alloc.h"
#include "fs/cache.h"
#include "fs/format.h"
#include "fs/fsctx.h"

struct node_hdr {
	uint32_t magic;
	uint16_t level; /* 0 = leaf */
	uint16_t count; /* records (leaf) or children (internal) */
	uint16_t heap;  /* leaf: offset of the lowest record byte; internal: 0 */
	uint16_t reserved0;
	uint32_t reserved1;
	uint64_t reserved2[2];
};
_Static_assert(sizeof(struct node_hdr) == BTREE_HDR_SIZE, "node header size");

struct slot {
	uint16_t off, len;
};

struct ient {
	uint64_t key, child;
};

/* Most records a leaf (plus one being inserted) can hold: 8-byte records. */
#define MAX_LEAF_RECS (FS_BLOCK_SIZE / (8 + sizeof(struct slot)) + 2)
#define MAX_IENTS (FS_BLOCK_SIZE / sizeof(struct ient) + 1)

/* ---- raw node access ---------------------------------------------------- */

static inline uint64_t ld64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline struct node_hdr *hdr(uint8_t *n)
{
	return (struct node_hdr *)n;
}

static inline const struct node_hdr *chdr(const uint8_t *n)
{
	return (const struct node_hdr *)n;
}

static inline struct slot *slots(uint8_t *n)
{
	return (struct slot *)(n + BTREE_HDR_SIZE);
}

static inline const struct slot *cslots(const uint8_t *n)
{
	return (const struct slot *)(n + BTREE_HDR_SIZE);
}

static inline struct ient *ients(uint8_t *n)
{
	return (struct ient *)(n + BTREE_HDR_SIZE);
}

static inline const struct ient *cients(const uint8_t *n)
{
	return (const struct ient *)(n + BTREE_HDR_SIZE);
}

static inline unsigned icap(const struct btree *t)
{
	return (t->nsz - BTREE_HDR_SIZE) / sizeof(struct ient);
}

static inline unsigned leaf_space(const struct btree *t)
{
	return t->nsz - BTREE_HDR_SIZE;
}

/* The checks made on every load, before any other field is trusted. */
static int node_check(const struct btree *t, const uint8_t *n, int want_level)
{
	const struct node_hdr *h = chdr(n);
	if (h->magic != t->ops->magic || h->level >= BTREE_MAX_DEPTH)
		return -EUCLEAN;
	if (want_level >= 0 && h->level != (unsigned)want_level)
		return -EUCLEAN;
	if (h->level == 0) {
		if (h->heap > t->nsz || BTREE_HDR_SIZE + sizeof(struct slot) * h->count > h->heap)
			return -EUCLEAN;
	} else if (h->count < 1 || h->count > icap(t)) {
		return -EUCLEAN;
	}
	return 0;
}

/* Record of slot i of a checked leaf, validated; NULL if damaged. */
static const uint8_t *leaf_rec(const struct btree *t, const uint8_t *n, unsigned i, unsigned *len)
{
	const struct node_hdr *h = chdr(n);
	if (i >= h->count)
		return NULL;
	const struct slot *s = &cslots(n)[i];
	if (s->off < h->heap || s->len < t->min || s->len > t->max || (unsigned)s->off + s->len > t->nsz)
		return NULL;
	*len = s->len;
	return n + s->off;
}

/* Key of slot i: 1 and *key, 0 if i == count, -EUCLEAN. */
static int leaf_key(const struct btree *t, const uint8_t *n, unsigned i, uint64_t *key)
{
	unsigned len;
	if (i == chdr(n)->count)
		return 0;
	const uint8_t *r = leaf_rec(t, n, i, &len);
	if (!r)
		return -EUCLEAN;
	*key = ld64(r);
	return 1;
}

/* First slot whose key is >= key (strict: > key). */
static int leaf_search(const struct btree *t, const uint8_t *n, uint64_t key, bool strict,
		       unsigned *pos)
{
	unsigned lo = 0, hi = chdr(n)->count, len;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const uint8_t *r = leaf_rec(t, n, mid, &len);
		if (!r)
			return -EUCLEAN;
		uint64_t k = ld64(r);
		if (k < key || (strict && k == key))
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return 0;
}

/* Bytes used by the records and slots of a leaf; UINT_MAX if damaged. */
static unsigned leaf_used(const struct btree *t, const uint8_t *n)
{
	unsigned used = 0, len;
	for (unsigned i = 0; i < chdr(n)->count; i++) {
		if (!leaf_rec(t, n, i, &len))
			return UINT_MAX;
		used += len + sizeof(struct slot);
	}
	return used;
}

/* Child index for key: the greatest i >= 1 with key[i] <= key, else 0. */
static unsigned ichoose(const uint8_t *n, uint64_t key)
{
	const struct ient *e = cients(n);
	unsigned lo = 1, hi = chdr(n)->count;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (e[mid].key <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

static void node_init(const struct btree *t, uint8_t *n, unsigned level)
{
	memset(n, 0, t->nsz);
	hdr(n)->magic = t->ops->magic;
	hdr(n)->level = (uint16_t)level;
	hdr(n)->heap = level == 0 ? (uint16_t)t->nsz : 0;
}

/* ---- leaf edits (callers checked that the leaf is sound) ---------------- */

/* Rewrites the record heap without holes. */
static void leaf_compact(const struct btree *t, uint8_t *n)
{
	uint8_t tmp[FS_BLOCK_SIZE];
	memcpy(tmp, n, t->nsz);
	struct slot *s = slots(n);
	unsigned heap = t->nsz, count = hdr(n)->count;
	for (unsigned i = 0; i < count; i++) {
		heap -= s[i].len;
		memcpy(n + heap, tmp + s[i].off, s[i].len);
		s[i].off = (uint16_t)heap;
	}
	unsigned slots_end = BTREE_HDR_SIZE + sizeof(struct slot) * count;
	memset(n + slots_end, 0, heap - slots_end);
	hdr(n)->heap = (uint16_t)heap;
}

/* 1 if a record of len bytes fits (compacting if that makes it fit), 0 if
 * not, -EUCLEAN. */
static int leaf_room(const struct btree *t, uint8_t *n, unsigned len)
{
	unsigned need = len + sizeof(struct slot);
	unsigned slots_end = BTREE_HDR_SIZE + sizeof(struct slot) * hdr(n)->count;
	if (hdr(n)->heap - slots_end >= need)
		return 1;
	unsigned used = leaf_used(t, n);
	if (used == UINT_MAX || used > leaf_space(t))
		return -EUCLEAN;
	if (BTREE_HDR_SIZE + used + need > t->nsz)
		return 0;
	leaf_compact(t, n);
	return 1;
}

static void leaf_put(uint8_t *n, unsigned pos, const void *rec, unsigned len)
{
	struct node_hdr *h = hdr(n);
	struct slot *s = slots(n);
	h->heap = (uint16_t)(h->heap - len);
	memcpy(n + h->heap, rec, len);
	memmove(&s[pos + 1], &s[pos], (h->count - pos) * sizeof(*s));
	s[pos].off = h->heap;
	s[pos].len = (uint16_t)len;
	h->count++;
}

static void leaf_del(const struct btree *t, uint8_t *n, unsigned pos)
{
	struct node_hdr *h = hdr(n);
	struct slot *s = slots(n);
	struct slot victim = s[pos];
	memmove(&s[pos], &s[pos + 1], (h->count - pos - 1) * sizeof(*s));
	h->count--;
	memset(&s[h->count], 0, sizeof(*s));
	memset(n + victim.off, 0, victim.len);
	if (h->count == 0)
		h->heap = (uint16_t)t->nsz;
	else if (victim.off == h->heap)
		h->heap = (uint16_t)(h->heap + victim.len); /* cheap partial reclaim */
}

/* An ordered list of records, pointing into copies of nodes. */
struct reclist {
	unsigned n;
	const uint8_t *p[MAX_LEAF_RECS];
	uint16_t len[MAX_LEAF_RECS];
};

static void rl_add(struct reclist *rl, const void *p, unsigned len)
{
	rl->p[rl->n] = p;
	rl->len[rl->n] = (uint16_t)len;
	rl->n++;
}

/* Appends the records of a leaf copy, checking that keys keep rising. */
static int rl_gather(const struct btree *t, struct reclist *rl, const uint8_t *n)
{
	unsigned len;
	for (unsigned i = 0; i < chdr(n)->count; i++) {
		const uint8_t *r = leaf_rec(t, n, i, &len);
		if (!r || rl->n >= MAX_LEAF_RECS)
			return -EUCLEAN;
		if (rl->n && ld64(rl->p[rl->n - 1]) >= ld64(r))
			return -EUCLEAN;
		rl_add(rl, r, len);
	}
	return 0;
}

static void leaf_build(const struct btree *t, uint8_t *n, const struct reclist *rl, unsigned from,
		       unsigned to)
{
	node_init(t, n, 0);
	unsigned heap = t->nsz;
	struct slot *s = slots(n);
	for (unsigned i = from; i < to; i++) {
		heap -= rl->len[i];
		memcpy(n + heap, rl->p[i], rl->len[i]);
		s[i - from].off = (uint16_t)heap;
		s[i - from].len = rl->len[i];
	}
	hdr(n)->count = (uint16_t)(to - from);
	hdr(n)->heap = (uint16_t)heap;
}

/* The split index that best balances bytes; both halves non-empty.  With
 * max_rec + 4 <= space / 3 both halves are guaranteed to fit. */
static unsigned split_point(const struct reclist *rl)
{
	unsigned total = 0, acc = 0, best = 1, bestm = UINT_MAX;
	for (unsigned i = 0; i < rl->n; i++)
		total += rl->len[i] + sizeof(struct slot);
	for (unsigned s = 1; s < rl->n; s++) {
		acc += rl->len[s - 1] + sizeof(struct slot);
		unsigned m = acc > total - acc ? acc : total - acc;
		if (m < bestm) {
			bestm = m;
			best = s;
		}
	}
	return best;
}

/* ---- internal edits ------------------------------------------------------ */

static void int_put(uint8_t *n, unsigned at, uint64_t key, uint64_t child)
{
	struct ient *e = ients(n);
	unsigned count = hdr(n)->count;
	memmove(&e[at + 1], &e[at], (count - at) * sizeof(*e));
	e[at].key = key;
	e[at].child = child;
	hdr(n)->count = (uint16_t)(count + 1);
}

static void int_del(uint8_t *n, unsigned at)
{
	struct ient *e = ients(n);
	unsigned count = hdr(n)->count;
	memmove(&e[at], &e[at + 1], (count - at - 1) * sizeof(*e));
	memset(&e[count - 1], 0, sizeof(*e));
	hdr(n)->count = (uint16_t)(count - 1);
}

/* Splits a full internal node while inserting (key, child) at index at.
 * Appending at the right edge of the tree keeps the left node full, so
 * ascending inserts pack nodes instead of leaving them half empty. */
static uint64_t int_split(const struct btree *t, uint8_t *left, uint8_t *right, unsigned at,
			  uint64_t key, uint64_t child, bool append)
{
	struct ient tmp[MAX_IENTS];
	unsigned count = hdr(left)->count, level = hdr(left)->level, n = count + 1;
	memcpy(tmp, cients(left), at * sizeof(tmp[0]));
	tmp[at].key = key;
	tmp[at].child = child;
	memcpy(&tmp[at + 1], cients(left) + at, (count - at) * sizeof(tmp[0]));
	unsigned s = append ? count : n / 2;
	node_init(t, left, level);
	node_init(t, right, level);
	memcpy(ients(left), tmp, s * sizeof(tmp[0]));
	hdr(left)->count = (uint16_t)s;
	memcpy(ients(right), &tmp[s], (n - s) * sizeof(tmp[0]));
	hdr(right)->count = (uint16_t)(n - s);
	return tmp[s].key;
}

/* ---- node blocks ---------------------------------------------------------- */

static int load(struct btree *t, uint64_t blk, int level, struct buf **out)
{
	*out = NULL;
	if (blk == 0)
		return -EUCLEAN;
	struct buf *b;
	int err = cache_get(t->fx->cache, blk, &b);
	if (err)
		return err == -EINVAL ? -EUCLEAN : err; /* pointer beyond the tier */
	err = node_check(t, b->data, level);
	if (err) {
		cache_put(t->fx->cache, b);
		return err;
	}
	*out = b;
	return 0;
}

static int node_alloc(struct btree *t, uint64_t hint, struct buf **out)
{
	uint64_t start, got;
	int err = alloc_run(t->fx->balloc, hint, 1, &start, &got);
	if (err)
		return err;
	err = cache_get_new(t->fx->cache, start, out);
	if (err) {
		alloc_free(t->fx->balloc, start, 1);
		return err;
	}
	return 0;
}

/* Gives back a node allocated by this operation and never linked in. */
static void node_unalloc(struct btree *t, struct buf *b)
{
	uint64_t blk = b->blkno;
	cache_put(t->fx->cache, b);
	cache_forget(t->fx->cache, blk);
	alloc_free(t->fx->balloc, blk, 1);
}

/* Frees a node that was part of the tree; no reference may be held. */
static void node_free(struct btree *t, uint64_t blk)
{
	cache_forget(t->fx->cache, blk);
	alloc_free(t->fx->balloc, blk, 1);
	if (t->blocks && *t->blocks)
		(*t->blocks)--;
}

/* ---- descent ------------------------------------------------------------- */

struct path {
	int depth;                        /* b[0] = root ... b[depth-1] = leaf */
	struct buf *b[BTREE_MAX_DEPTH];
	unsigned idx[BTREE_MAX_DEPTH];    /* internal levels: child taken */
	bool rightmost[BTREE_MAX_DEPTH];  /* node is the last of its level */
	bool has_lower, has_upper;        /* the leaf covers [lower, upper) */
	uint64_t lower, upper;
};

static void path_put(struct btree *t, struct path *p)
{
	for (int i = 0; i < p->depth; i++) {
		if (p->b[i])
			cache_put(t->fx->cache, p->b[i]);
		p->b[i] = NULL;
	}
}

/* Walks from the root (which must not be 0) to the leaf for key.  With
 * hold, every node on the path stays referenced; otherwise only the leaf. */
static int descend(struct btree *t, uint64_t key, struct path *p, bool hold)
{
	memset(p, 0, sizeof(*p));
	uint64_t blk = *t->root_r;
	int level = -1; /* the root's level is whatever it says */
	bool rm = true;
	for (;;) {
		struct buf *b;
		int err = load(t, blk, level, &b);
		if (err) {
			path_put(t, p);
			return err;
		}
		int d = p->depth++;
		p->b[d] = b;
		p->rightmost[d] = rm;
		const uint8_t *n = b->data;
		if (chdr(n)->level == 0)
			return 0;
		/* Levels strictly decrease, so depth < BTREE_MAX_DEPTH here. */
		const struct ient *e = cients(n);
		unsigned i = ichoose(n, key);
		p->idx[d] = i;
		if (i > 0) {
			p->lower = e[i].key; /* deeper bounds are tighter */
			p->has_lower = true;
		}
		if (i + 1 < chdr(n)->count) {
			p->upper = e[i + 1].key;
			p->has_upper = true;
			rm = false;
		}
		level = chdr(n)->level - 1;
		blk = e[i].child;
		if (!hold) {
			cache_put(t->fx->cache, b);
			p->b[d] = NULL;
		}
	}
}

/* Finds key in the held path's leaf: 0 and *pos, -ENOENT, -EUCLEAN. */
static int path_find(struct btree *t, struct path *p, uint64_t key, unsigned *pos)
{
	const uint8_t *n = p->b[p->depth - 1]->data;
	uint64_t k;
	int err = leaf_search(t, n, key, false, pos);
	if (err)
		return err;
	err = leaf_key(t, n, *pos, &k);
	if (err < 0)
		return err;
	return err == 1 && k == key ? 0 : -ENOENT;
}

/* ---- handles --------------------------------------------------------------- */

static int init_common(struct btree *t, struct fsctx *fx, const struct btree_ops *ops)
{
	memset(t, 0, sizeof(*t));
	unsigned nsz = ops->node_size ? ops->node_size : FS_BLOCK_SIZE;
	if (nsz < BTREE_MIN_NODE || nsz > FS_BLOCK_SIZE)
		return -EINVAL;
	if (ops->min_rec < 8 || ops->max_rec < ops->min_rec)
		return -EINVAL;
	if (ops->max_rec + sizeof(struct slot) > (nsz - BTREE_HDR_SIZE) / 3)
		return -EINVAL;
	t->fx = fx;
	t->ops = ops;
	t->nsz = nsz;
	t->min = ops->min_rec;
	t->max = ops->max_rec;
	return 0;
}

int btree_init(struct btree *t, struct fsctx *fx, const struct btree_ops *ops, uint64_t *root,
	       uint64_t *blocks)
{
	int err = init_common(t, fx, ops);
	if (err)
		return err;
	t->root_r = root;
	t->root_w = root;
	t->blocks = blocks;
	return 0;
}

int btree_init_ro(struct btree *t, struct fsctx *fx, const struct btree_ops *ops,
		  const uint64_t *root)
{
	int err = init_common(t, fx, ops);
	if (err)
		return err;
	t->root_r = root;
	return 0;
}

/* ---- lookups ------------------------------------------------------------- */

static int copy_out(void *rec, size_t cap, const uint8_t *r, unsigned len)
{
	memcpy(rec, r, len < cap ? len : cap);
	return (int)len;
}

int btree_get(struct btree *t, uint64_t key, void *rec, size_t cap)
{
	if (*t->root_r == 0)
		return -ENOENT;
	struct path p;
	unsigned pos, len = 0;
	int err = descend(t, key, &p, false);
	if (err)
		return err;
	err = path_find(t, &p, key, &pos);
	if (!err) {
		const uint8_t *r = leaf_rec(t, p.b[p.depth - 1]->data, pos, &len);
		err = copy_out(rec, cap, r, len);
	}
	path_put(t, &p);
	return err;
}

int btree_get_le(struct btree *t, uint64_t key, void *rec, size_t cap)
{
	uint64_t k = key;
	for (;;) {
		if (*t->root_r == 0)
			return 0;
		struct path p;
		unsigned pos, len = 0;
		int err = descend(t, k, &p, false);
		if (err)
			return err;
		const uint8_t *n = p.b[p.depth - 1]->data;
		err = leaf_search(t, n, k, true, &pos);
		if (!err && pos > 0) {
			const uint8_t *r = leaf_rec(t, n, pos - 1, &len);
			err = r ? copy_out(rec, cap, r, len) : -EUCLEAN;
			path_put(t, &p);
			return err;
		}
		path_put(t, &p);
		if (err)
			return err;
		/* Every key of this leaf is > k: the answer, if any, lies
		 * before the leaf's lower bound.  k strictly decreases. */
		if (!p.has_lower || p.lower == 0)
			return 0;
		if (p.lower > k)
			return -EUCLEAN;
		k = p.lower - 1;
	}
}

struct first_ctx {
	void *rec;
	size_t cap;
	int len;
};

static int first_cb(void *arg, const void *rec, size_t len)
{
	struct first_ctx *f = arg;
	f->len = copy_out(f->rec, f->cap, rec, (unsigned)len);
	return 1;
}

int btree_get_ge(struct btree *t, uint64_t key, void *rec, size_t cap)
{
	struct first_ctx f = { rec, cap, 0 };
	int err = btree_iter(t, key, UINT64_MAX, 0, first_cb, &f);
	if (err < 0)
		return err;
	return err == 1 ? f.len : 0;
}

/* ---- iteration ------------------------------------------------------------- */

int btree_iter(struct btree *t, uint64_t first, uint64_t last, int flags, btree_rec_fn fn,
	       void *arg)
{
	uint8_t copy[FS_BLOCK_SIZE];
	uint64_t from = first;
	while (from <= last) {
		if (*t->root_r == 0)
			return 0;
		struct path p;
		int err = descend(t, from, &p, false);
		if (err)
			return err;
		const uint8_t *n = p.b[p.depth - 1]->data;
		if (flags & BTREE_ITER_COPY) {
			memcpy(copy, n, t->nsz);
			path_put(t, &p);
			n = copy;
		}
		uint64_t start = from;
		unsigned pos;
		int ret = 0;
		bool done = false;
		err = leaf_search(t, n, from, false, &pos);
		for (unsigned i = pos; !err && !done && i < chdr(n)->count; i++) {
			unsigned len;
			const uint8_t *r = leaf_rec(t, n, i, &len);
			if (!r || ld64(r) < from) {
				err = -EUCLEAN; /* bad slot or keys out of order */
				break;
			}
			uint64_t k = ld64(r);
			if (k > last) {
				done = true;
				break;
			}
			ret = fn(arg, r, len);
			if (ret || k == UINT64_MAX)
				done = true;
			else
				from = k + 1;
		}
		path_put(t, &p);
		if (err)
			return err;
		if (ret)
			return ret;
		if (done || !p.has_upper)
			return 0;
		/* Every key in [start, upper) was in this leaf: go on at upper.
		 * A valid tree always moves forward here. */
		if (p.upper <= start || from > p.upper)
			return -EUCLEAN;
		from = p.upper;
	}
	return 0;
}

/* ---- insert ---------------------------------------------------------------- */

static int insert_first(struct btree *t, const void *rec, unsigned len)
{
	struct buf *b;
	int err = node_alloc(t, t->node_hint, &b);
	if (err)
		return err;
	node_init(t, b->data, 0);
	leaf_put(b->data, 0, rec, len);
	*t->root_w = b->blkno;
	if (t->blocks)
		(*t->blocks)++;
	cache_put(t->fx->cache, b);
	return 0;
}

/* The leaf is full: split it, and its ancestors as needed, inserting rec. */
static int split_insert(struct btree *t, struct path *p, unsigned pos, const void *rec, unsigned len)
{
	struct cache *c = t->fx->cache;
	int leaf = p->depth - 1;
	struct buf *lb = p->b[leaf];
	uint8_t copy[FS_BLOCK_SIZE];
	struct reclist rl;
	memcpy(copy, lb->data, t->nsz);
	unsigned count = chdr(copy)->count;

	/* Records in order, the new one at pos; checked before anything moves. */
	rl.n = 0;
	for (unsigned i = 0; i <= count; i++) {
		unsigned l;
		if (i == pos)
			rl_add(&rl, rec, len);
		if (i == count)
			break;
		const uint8_t *r = leaf_rec(t, copy, i, &l);
		if (!r || rl.n >= MAX_LEAF_RECS - 1)
			return -EUCLEAN;
		rl_add(&rl, r, l);
	}

	/* How many blocks: the leaf's sibling, one per full ancestor, and a
	 * new root if the split reaches it.  All obtained before any change. */
	unsigned need = 1;
	int lvl = leaf - 1;
	while (lvl >= 0 && chdr(p->b[lvl]->data)->count >= icap(t)) {
		need++;
		lvl--;
	}
	if (lvl < 0) {
		need++;
		if (p->depth + 1 > BTREE_MAX_DEPTH)
			return -EFBIG;
	}
	struct buf *nb[BTREE_MAX_DEPTH + 1];
	for (unsigned k = 0; k < need; k++) {
		int err = node_alloc(t, lb->blkno, &nb[k]);
		if (err) {
			while (k--)
				node_unalloc(t, nb[k]);
			return err;
		}
	}

	/* From here on nothing can fail. */
	unsigned s = (pos == count && p->rightmost[leaf]) ? count : split_point(&rl);
	leaf_build(t, lb->data, &rl, 0, s);
	leaf_build(t, nb[0]->data, &rl, s, rl.n);
	cache_mark_dirty(c, lb);
	uint64_t ckey = ld64(rl.p[s]), cchild = nb[0]->blkno;
	unsigned used = 1;
	for (lvl = leaf - 1; lvl >= 0 && cchild; lvl--) {
		uint8_t *n = p->b[lvl]->data;
		unsigned at = p->idx[lvl] + 1;
		if (chdr(n)->count < icap(t)) {
			int_put(n, at, ckey, cchild);
			cchild = 0;
		} else {
			bool append = at == chdr(n)->count && p->rightmost[lvl];
			ckey = int_split(t, n, nb[used]->data, at, ckey, cchild, append);
			cchild = nb[used++]->blkno;
		}
		cache_mark_dirty(c, p->b[lvl]);
	}
	if (cchild) {
		uint8_t *r = nb[used]->data;
		node_init(t, r, chdr(p->b[0]->data)->level + 1u);
		int_put(r, 0, 0, p->b[0]->blkno);
		int_put(r, 1, ckey, cchild);
		*t->root_w = nb[used++]->blkno;
	}
	if (t->blocks)
		*t->blocks += used;
	for (unsigned k = 0; k < need; k++)
		cache_put(c, nb[k]);
	return 0;
}

int btree_insert(struct btree *t, const void *rec, size_t len)
{
	if (!t->root_w)
		return -EROFS;
	if (len < t->min || len > t->max)
		return -EINVAL;
	if (*t->root_w == 0)
		return insert_first(t, rec, (unsigned)len);
	uint64_t key = ld64(rec);
	struct path p;
	unsigned pos;
	int err = descend(t, key, &p, true);
	if (err)
		return err;
	err = path_find(t, &p, key, &pos);
	if (err == 0) {
		err = -EEXIST;
	} else if (err == -ENOENT) {
		struct buf *lb = p.b[p.depth - 1];
		err = leaf_room(t, lb->data, (unsigned)len);
		if (err == 1) {
			leaf_put(lb->data, pos, rec, (unsigned)len);
			cache_mark_dirty(t->fx->cache, lb);
			err = 0;
		} else if (err == 0) {
			err = split_insert(t, &p, pos, rec, (unsigned)len);
		}
	}
	path_put(t, &p);
	return err;
}

/* ---- delete ---------------------------------------------------------------- */

/* Blocks to free once every buffer reference is dropped. */
struct freelist {
	unsigned n;
	uint64_t blk[2 * BTREE_MAX_DEPTH + 2];
};

static void fl_add(struct freelist *fl, uint64_t blk)
{
	if (fl->n < sizeof(fl->blk) / sizeof(fl->blk[0]))
		fl->blk[fl->n++] = blk;
}

/* The leaf is empty: unlink it, and ancestors left without children. */
static void unlink_empty(struct btree *t, struct path *p, struct freelist *fl)
{
	for (int lvl = p->depth - 1;; lvl--) {
		fl_add(fl, p->b[lvl]->blkno);
		if (lvl == 0) {
			*t->root_w = 0;
			return;
		}
		struct buf *parent = p->b[lvl - 1];
		int_del(parent->data, p->idx[lvl - 1]);
		cache_mark_dirty(t->fx->cache, parent);
		if (chdr(parent->data)->count > 0)
			return;
	}
}

/* A leaf under a quarter full merges with a sibling when the two fit in
 * three quarters of a node, so mass deletions do not leave a tree of
 * near-empty leaves.  Returns the sibling buffer (to put) or NULL. */
static struct buf *maybe_merge(struct btree *t, struct path *p, struct freelist *fl)
{
	int leaf = p->depth - 1;
	if (leaf == 0)
		return NULL;
	struct buf *lb = p->b[leaf], *pb = p->b[leaf - 1];
	unsigned i = p->idx[leaf - 1], pc = chdr(pb->data)->count;
	unsigned used = leaf_used(t, lb->data), space = leaf_space(t);
	if (used >= space / 4)
		return NULL;
	unsigned si;
	if (i + 1 < pc)
		si = i + 1;
	else if (i > 0)
		si = i - 1;
	else
		return NULL;
	struct buf *sb;
	if (load(t, cients(pb->data)[si].child, 0, &sb))
		return NULL; /* no merge; the tree is fine as it is */
	unsigned sused = leaf_used(t, sb->data);
	if (sused == UINT_MAX || used + sused > space * 3 / 4)
		return sb;
	struct buf *left = si < i ? sb : lb, *right = si < i ? lb : sb;
	uint8_t cl[FS_BLOCK_SIZE], cr[FS_BLOCK_SIZE];
	struct reclist rl;
	memcpy(cl, left->data, t->nsz);
	memcpy(cr, right->data, t->nsz);
	rl.n = 0;
	if (rl_gather(t, &rl, cl) || rl_gather(t, &rl, cr))
		return sb; /* keys overlap: damaged, leave it for fsck */
	leaf_build(t, left->data, &rl, 0, rl.n);
	cache_mark_dirty(t->fx->cache, left);
	int_del(pb->data, si < i ? i : si);
	cache_mark_dirty(t->fx->cache, pb);
	fl_add(fl, right->blkno);
	return sb;
}

/* A root with a single child is replaced by that child, repeatedly. */
static void collapse_root(struct btree *t, struct path *p, struct freelist *fl)
{
	if (*t->root_w == 0)
		return;
	struct buf *b = p->b[0];
	bool own = false;
	while (chdr(b->data)->level > 0 && chdr(b->data)->count == 1) {
		uint64_t child = cients(b->data)[0].child;
		int clevel = chdr(b->data)->level - 1;
		fl_add(fl, b->blkno);
		*t->root_w = child;
		if (own)
			cache_put(t->fx->cache, b);
		own = false;
		if (load(t, child, clevel, &b))
			return; /* unreadable: stop here, the tree is valid */
		own = true;
	}
	if (own)
		cache_put(t->fx->cache, b);
}

int btree_delete(struct btree *t, uint64_t key)
{
	if (!t->root_w)
		return -EROFS;
	if (*t->root_w == 0)
		return -ENOENT;
	struct path p;
	unsigned pos;
	int err = descend(t, key, &p, true);
	if (err)
		return err;
	err = path_find(t, &p, key, &pos);
	if (err) {
		path_put(t, &p);
		return err;
	}
	struct buf *lb = p.b[p.depth - 1], *extra = NULL;
	struct freelist fl = { 0 };
	leaf_del(t, lb->data, pos);
	cache_mark_dirty(t->fx->cache, lb);
	if (chdr(lb->data)->count == 0)
		unlink_empty(t, &p, &fl);
	else
		extra = maybe_merge(t, &p, &fl);
	collapse_root(t, &p, &fl);
	if (extra)
		cache_put(t->fx->cache, extra);
	path_put(t, &p);
	for (unsigned i = 0; i < fl.n; i++)
		node_free(t, fl.blk[i]);
	return 0;
}

/* ---- update ---------------------------------------------------------------- */

int btree_update(struct btree *t, uint64_t oldkey, const void *rec, size_t len)
{
	if (!t->root_w)
		return -EROFS;
	if (len < t->min || len > t->max)
		return -EINVAL;
	if (*t->root_w == 0)
		return -ENOENT;
	uint64_t nk = ld64(rec);
	struct path p;
	unsigned pos, olen = 0;
	int err = descend(t, oldkey, &p, true);
	if (err)
		return err;
	err = path_find(t, &p, oldkey, &pos);
	if (err) {
		path_put(t, &p);
		return err;
	}
	struct buf *lb = p.b[p.depth - 1];
	uint8_t *n = lb->data;
	leaf_rec(t, n, pos, &olen);
	bool inplace = false;
	if (olen == len && nk == oldkey) {
		inplace = true;
	} else if (olen == len) {
		/* The new key must stay between its neighbours and inside the
		 * leaf's bounds, or the record would sit in the wrong leaf. */
		uint64_t k;
		bool lo_ok = pos > 0 ? (leaf_key(t, n, pos - 1, &k) == 1 && k < nk)
				     : (!p.has_lower || p.lower <= nk);
		int r = leaf_key(t, n, pos + 1, &k);
		bool hi_ok = r == 1 ? nk < k : (r == 0 && (!p.has_upper || nk < p.upper));
		inplace = lo_ok && hi_ok;
	} else if (nk == oldkey) {
		path_put(t, &p);
		return -EINVAL;
	}
	if (inplace) {
		memcpy(n + slots(n)[pos].off, rec, len);
		cache_mark_dirty(t->fx->cache, lb);
		path_put(t, &p);
		return 0;
	}
	path_put(t, &p);
	/* Insert first: if it fails the tree is unchanged. */
	err = btree_insert(t, rec, len);
	if (err)
		return err;
	return btree_delete(t, oldkey);
}

/* ---- destroy ------------------------------------------------------------- */

static int destroy_node(struct btree *t, uint64_t blk, int level, btree_rec_fn fn, void *arg)
{
	/* A block already free was freed earlier in this walk (a damaged
	 * tree pointing twice at one node): never free it twice. */
	if (blk == 0 || !alloc_is_used(t->fx->balloc, blk))
		return -EUCLEAN;
	struct buf *b;
	int err = load(t, blk, level, &b);
	if (err)
		return err; /* leaked: safe, fsck reclaims */
	const uint8_t *n = b->data;
	int ret = 0;
	if (chdr(n)->level == 0) {
		for (unsigned i = 0; i < chdr(n)->count; i++) {
			unsigned len;
			const uint8_t *r = leaf_rec(t, n, i, &len);
			if (!r)
				ret = -EUCLEAN;
			else if (fn)
				fn(arg, r, len);
		}
	} else {
		for (unsigned i = 0; i < chdr(n)->count; i++) {
			err = destroy_node(t, cients(n)[i].child, chdr(n)->level - 1, fn, arg);
			if (err && !ret)
				ret = err;
		}
	}
	cache_put(t->fx->cache, b);
	node_free(t, blk);
	return ret;
}

int btree_destroy(struct btree *t, btree_rec_fn fn, void *arg)
{
	if (!t->root_w)
		return -EROFS;
	if (*t->root_w == 0)
		return 0;
	int err = destroy_node(t, *t->root_w, -1, fn, arg);
	*t->root_w = 0;
	return err;
}

/* ---- check ------------------------------------------------------------------ */

struct bounds {
	bool has_lo, has_hi;
	uint64_t lo, hi;
};

static bool in_bounds(const struct bounds *bd, uint64_t k)
{
	return (!bd->has_lo || k >= bd->lo) && (!bd->has_hi || k < bd->hi);
}

static int check_leaf(struct btree *t, const uint8_t *n, bool is_root, const struct bounds *bd,
		      struct btree_stats *st)
{
	unsigned count = chdr(n)->count, len, sum = 0;
	if (count == 0 && !is_root)
		return -EUCLEAN;
	uint64_t prev = 0;
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *r = leaf_rec(t, n, i, &len);
		if (!r)
			return -EUCLEAN;
		uint64_t k = ld64(r);
		if ((i > 0 && k <= prev) || !in_bounds(bd, k))
			return -EUCLEAN;
		prev = k;
		sum += len;
	}
	if (sum > t->nsz - chdr(n)->heap) /* records overlap */
		return -EUCLEAN;
	st->leaves++;
	st->records += count;
	st->leaf_bytes += sum + count * sizeof(struct slot);
	return 0;
}

static int check_node(struct btree *t, uint64_t blk, int level, bool is_root,
		      const struct bounds *bd, struct btree_stats *st)
{
	struct buf *b;
	int err = load(t, blk, level, &b);
	if (err)
		return err;
	const uint8_t *n = b->data;
	st->nodes++;
	if (is_root)
		st->depth = chdr(n)->level + 1u;
	if (chdr(n)->level == 0) {
		err = check_leaf(t, n, is_root, bd, st);
		cache_put(t->fx->cache, b);
		return err;
	}
	const struct ient *e = cients(n);
	unsigned count = chdr(n)->count;
	for (unsigned i = 1; i < count && !err; i++)
		if ((i > 1 && e[i].key <= e[i - 1].key) || !in_bounds(bd, e[i].key))
			err = -EUCLEAN;
	for (unsigned i = 0; i < count && !err; i++) {
		struct bounds cb = *bd;
		if (i > 0) {
			cb.has_lo = true;
			cb.lo = e[i].key;
		}
		if (i + 1 < count) {
			cb.has_hi = true;
			cb.hi = e[i + 1].key;
		}
		err = check_node(t, e[i].child, chdr(n)->level - 1, false, &cb, st);
	}
	cache_put(t->fx->cache, b);
	return err;
}

int btree_check(struct btree *t, struct btree_stats *st)
{
	struct btree_stats local;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (*t->root_r == 0)
		return 0;
	struct bounds bd = { 0 };
	return check_node(t, *t->root_r, -1, true, &bd, st);
}
