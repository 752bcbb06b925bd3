/*
 * migrate.c - moving file data between tiers: the coldest data down when a
 * tier passes its high watermark, data read often back up (heat.c says
 * which).
 *
 * Owns: the migration protocol, its batches and its counters.
 * May call: libfs state (heat, inodes), fs (shared, extent), and
 * fs_checkpoint to commit a batch.
 *
 * A batch, under the digest mutex (so no digest writes a data block
 * meanwhile):
 *  1. picks extents and allocates their destination blocks (volume lock);
 *  2. copies the bytes and fences the destination tier (no volume lock:
 *     readers and writers go on; writers only append to the log);
 *  3. switches each extent to the destination in the cached tree, freeing
 *     the source blocks into quarantine (volume lock; an extent that changed
 *     meanwhile is skipped and its destination freed);
 *  4. a checkpoint commits every switch of the batch through the journal.
 * A crash before 4 completes leaves the durable tree pointing at the source
 * blocks, which nothing overwrote: only the digest writes data blocks, and
 * freed blocks are not reused before the checkpoint that frees them is
 * durable.  The destination blocks are then free in the durable bitmap.  A
 * crash after 4 leaves the tree pointing at destination blocks that were
 * durable before the journal committed.  In every state each byte is
 * readable exactly once.
 *
 * Unwritten extents (blocks fallocate set aside) move down like any
 * other, without a copy: their bytes are not the file's, and the moved
 * extent stays unwritten.  They are never promoted: nothing in them is
 * read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tier/migrate.h"
#include "fs/alloc.h"
#include "fs/extent.h"
#include "libfs/fs_internal.h"

#define B FS_BLOCK_SIZE
#define BATCH_MOVES 512     /* extents per checkpoint: bounds the journal */
#define BATCH_BLOCKS 16384u /* 64 MiB per checkpoint */
#define COPY_BLOCKS 256u    /* 1 MiB copied at a time */
#define MOVE_NODES 12       /* tree nodes one extent move may need: two inserts */
#define MOVE_JOURNAL 16     /* metadata blocks one move may dirty: inode, tree path, bitmaps */

struct move {
	uint64_t ino, lblk, len;
	uint64_t src, dst; /* tier-tagged */
	int unwritten;     /* nothing to copy */
	int damaged;       /* a source block failed its checksum: not moved */
};

struct batch {
	struct move m[BATCH_MOVES];
	int n;
	uint64_t blocks;
	unsigned dst_tier;
	uint64_t hint;
	int evacuate; /* every extent goes, unwritten ones up too */
};

/* ---- watermarks ---------------------------------------------------------- */

/* Blocks of tier t in use (quarantined ones count: they are not free yet). */
static uint64_t tier_used(struct cairn_fs *fs, unsigned t)
{
	return shared_tier_used(&fs->sh, t);
}

/* Whether new data may go to tier t: it is there, and not being drained. */
static int takes_data(struct cairn_fs *fs, unsigned t)
{
	return shared_tier_live(&fs->sh, t) && (t == 0 || !fs->sh.tier[t].draining);
}

/* The tier tier t's cold data goes down to: the next one that takes data
 * (a removed or draining tier is passed over), or 0 when there is none. */
static unsigned tier_below(struct cairn_fs *fs, unsigned t)
{
	for (unsigned d = t + 1; d < fs->sh.ntiers; d++)
		if (takes_data(fs, d))
			return d;
	return 0;
}

static uint64_t mark_blocks(struct cairn_fs *fs, unsigned t, int percent)
{
	return shared_tier_blocks(&fs->sh, t) * (uint64_t)percent / 100;
}

/* After a demotion pass that could move nothing (every tier below full,
 * or nothing cold to move), passes wait this long: each one scans the
 * inode table, and the digest thread would otherwise retry after every
 * checkpoint. */
#define STUCK_BACKOFF_NS (5ll * 1000000000)

int migrate_needed(struct cairn_fs *fs)
{
	if (heat_clock_ns() < __atomic_load_n(&fs->migrate_stuck_until, __ATOMIC_RELAXED))
		return 0;
	for (unsigned t = 0; t + 1 < fs->sh.ntiers; t++)
		if (takes_data(fs, t) && tier_below(fs, t) &&
		    tier_used(fs, t) > mark_blocks(fs, t, fs_opt_get(&fs->opts.high_watermark)))
			return 1;
	return 0;
}

/* ---- step 1: choosing and allocating -------------------------------------- */

struct cold_file {
	uint64_t ino;
	int64_t heat;
};

static int by_heat(const void *a, const void *b)
{
	const struct cold_file *x = a, *y = b;
	if (x->heat != y->heat)
		return x->heat < y->heat ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct file_list {
	struct cairn_fs *fs;
	struct cold_file *v;
	size_t n, cap;
};

static int add_file(void *arg, uint64_t ino, const struct fs_inode *i)
{
	struct file_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		struct cold_file *w = realloc(l->v, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		l->v = w;
		l->cap = cap;
	}
	l->v[l->n++] = (struct cold_file){ino, heat_of(l->fs, ino, i)};
	return 0;
}

/* Regular files with data, coldest first. */
static int list_files(struct cairn_fs *fs, struct cold_file **out, size_t *count)
{
	struct file_list l = {fs, NULL, 0, 0};
	int rc = for_each_data_file(fs, add_file, &l);
	if (rc) {
		free(l.v);
		return rc;
	}
	qsort(l.v, l.n, sizeof(*l.v), by_heat);
	*out = l.v;
	*count = l.n;
	return 0;
}

static int batch_full(const struct batch *b)
{
	return b->n == BATCH_MOVES || b->blocks >= BATCH_BLOCKS;
}

/* Adds moves for [lblk, lblk+len) at src to the batch, allocating the
 * destination in as few runs as the tier gives.  Returns 0, 1 when the
 * batch is full, or -ENOSPC when the destination tier is. */
static int add_moves(struct cairn_fs *fs, struct batch *b, uint64_t ino, uint64_t lblk,
                     uint64_t len, uint64_t src, int unwritten)
{
	while (len > 0) {
		if (batch_full(b))
			return 1;
		uint64_t want = len < BATCH_BLOCKS - b->blocks ? len : BATCH_BLOCKS - b->blocks;
		uint64_t dst, got;
		int rc = shared_alloc_data(&fs->sh, b->dst_tier, b->hint, want, &dst, &got);
		if (rc)
			return rc;
		b->m[b->n++] = (struct move){ino, lblk, got, src, dst, unwritten, 0};
		b->blocks += got;
		b->hint = dst + got;
		lblk += got;
		src += got;
		len -= got;
	}
	return 0;
}

struct pick_ctx {
	struct cairn_fs *fs;
	struct batch *b;
	uint64_t ino;
	unsigned src_tier;
	uint64_t lo, hi;  /* logical range considered */
	uint64_t *budget; /* blocks still wanted */
};

static int pick_extent(void *arg, const struct extent *e)
{
	struct pick_ctx *p = arg;
	if (e->lblk >= p->hi || *p->budget == 0)
		return 1;
	if (FS_PBLK_TIER(e->pblk) != p->src_tier ||
	    (e->unwritten && p->b->dst_tier < p->src_tier && !p->b->evacuate))
		return 0;
	uint64_t from = e->lblk > p->lo ? e->lblk : p->lo;
	uint64_t to = e->lblk + e->len < p->hi ? e->lblk + e->len : p->hi;
	uint64_t len = to - from < *p->budget ? to - from : *p->budget;
	uint64_t src = e->pblk + (from - e->lblk);
	if (!e->unwritten && shared_data_known_damaged(&p->fs->sh, src, len))
		return 0; /* it stays where it is (copy_moves); spend the budget elsewhere */
	uint64_t before = p->b->blocks;
	int rc = add_moves(p->fs, p->b, p->ino, from, len, src, e->unwritten);
	uint64_t added = p->b->blocks - before;
	*p->budget = *p->budget > added ? *p->budget - added : 0;
	return rc;
}

/* The medium's unit: a file's data starts a fresh unit on the destination,
 * so runs on a disk tier stay long. */
static uint64_t unit_hint(struct cairn_fs *fs, struct batch *b)
{
	uint64_t unit = fs->sh.tier[b->dst_tier].unit_blocks;
	uint64_t blk = FS_PBLK_BLK(b->hint);
	if (unit > 1)
		blk = (blk + unit - 1) / unit * unit;
	return FS_PBLK(b->dst_tier, blk);
}

/* The extents on tier t of every file with data, coldest first, to
 * b->dst_tier, up to `want` blocks. */
static int pick_files(struct cairn_fs *fs, unsigned t, uint64_t want, struct batch *b)
{
	struct cold_file *files;
	size_t n;
	int rc = list_files(fs, &files, &n);
	if (rc)
		return rc;
	b->hint = FS_PBLK(b->dst_tier, 0);
	for (size_t k = 0; k < n && want > 0 && rc == 0; k++) {
		struct iref r;
		if (inode_get(&fs->sh, files[k].ino, &r))
			continue;
		b->hint = unit_hint(fs, b);
		struct pick_ctx p = {fs, b, files[k].ino, t, 0, UINT64_MAX, &want};
		rc = extent_walk(&fs->sh.fx, r.i, 0, pick_extent, &p);
		inode_put(&fs->sh, &r);
	}
	free(files);
	return rc < 0 && b->n == 0 ? rc : 0; /* a full batch or tier ends the pick */
}

/* Demotion: the coldest files' extents on tier t, up to `want` blocks. */
static int pick_cold(struct cairn_fs *fs, unsigned t, uint64_t want, struct batch *b)
{
	b->dst_tier = tier_below(fs, t);
	return pick_files(fs, t, want, b);
}

/* Where tier t's data goes when it is drained, and how many blocks that
 * tier takes: the slower tiers first (the data was cold enough to be
 * down there), then the faster ones, the fast tier last and only what it
 * has beyond its reserve.  0 blocks: nowhere. */
static unsigned evacuation_target(struct cairn_fs *fs, unsigned t, uint64_t *room)
{
	for (unsigned d = t + 1; d < fs->sh.ntiers; d++)
		if (takes_data(fs, d) && (*room = shared_tier_room(&fs->sh, d)) > 0)
			return d;
	for (unsigned d = t - 1; d > 0; d--)
		if (takes_data(fs, d) && (*room = shared_tier_room(&fs->sh, d)) > 0)
			return d;
	*room = tier_data_free(fs, 0);
	return 0;
}

/* Evacuation: any file's extents on tier t, up to `want` blocks. */
static int pick_all(struct cairn_fs *fs, unsigned t, uint64_t want, struct batch *b)
{
	uint64_t room;
	b->dst_tier = evacuation_target(fs, t, &room);
	b->evacuate = 1;
	if (room < want)
		want = room;
	return want ? pick_files(fs, t, want, b) : -ENOSPC;
}

/* Promotion: ranges read often from capacity tiers, while the fast tier
 * stays at or below its high watermark. */
static int pick_hot(struct cairn_fs *fs, struct batch *b)
{
	struct promote_entry ready[PROMOTE_TABLE];
	int n = heat_take_ready(fs, ready, PROMOTE_TABLE);
	uint64_t used = tier_used(fs, 0),
	         high = mark_blocks(fs, 0, fs_opt_get(&fs->opts.high_watermark));
	uint64_t room = high > used ? high - used : 0;
	b->dst_tier = 0;
	b->hint = 0;
	int rc = 0;
	for (int k = 0; k < n && rc == 0 && room > 0; k++) {
		struct iref r;
		if (!inode_in_use(&fs->sh, ready[k].ino) || inode_get(&fs->sh, ready[k].ino, &r))
			continue;
		if (S_ISREG(r.i->mode))
			for (unsigned t = 1; t < fs->sh.ntiers && rc == 0; t++) {
				struct pick_ctx p = {fs,
				                     b,
				                     ready[k].ino,
				                     t,
				                     ready[k].lblk,
				                     ready[k].lblk + ready[k].len,
				                     &room};
				rc = extent_walk(&fs->sh.fx, r.i, ready[k].lblk, pick_extent, &p);
				if (rc == 1 && !batch_full(b))
					rc = 0; /* the walk passed the window: go on */
			}
		inode_put(&fs->sh, &r);
	}
	return rc < 0 && b->n == 0 ? rc : 0;
}

/* ---- step 2: copying ------------------------------------------------------- */

/* A move whose source does not verify is dropped, not copied: copying
 * would give the damaged bytes a fresh checksum on the new tier.  The
 * extent stays where it is, and readers keep getting EIO for it. */
static int copy_moves(struct cairn_fs *fs, struct batch *b)
{
	uint8_t *buf = malloc((size_t)COPY_BLOCKS * B);
	if (!buf)
		return -ENOMEM;
	int rc = 0;
	for (int k = 0; k < b->n && !rc; k++) {
		struct move *m = &b->m[k];
		for (uint64_t done = 0; done < m->len && !rc && !m->damaged && !m->unwritten;) {
			uint64_t n = m->len - done < COPY_BLOCKS ? m->len - done : COPY_BLOCKS, bad;
			rc = shared_data_read(&fs->sh, m->src + done, buf, n, &bad);
			if (rc == -SHARED_EBADSUM) {
				data_report_damage(fs, m->ino, m->lblk + (bad - m->src), bad,
				                   "migration");
				m->damaged = 1;
				rc = 0;
			}
			if (!rc && !m->damaged)
				rc = shared_data_write(&fs->sh, m->dst + done, buf, n);
			done += n;
		}
	}
	free(buf);
	return rc ? rc : shared_fence(&fs->sh);
}

/* ---- step 3: switching ----------------------------------------------------- */

static void free_dst(struct cairn_fs *fs, const struct move *m)
{
	unsigned t = FS_PBLK_TIER(m->dst);
	alloc_free(fs->sh.tier[t].a, FS_PBLK_BLK(m->dst), m->len);
}

/* A move that splits an extent takes up to two inserts; one that cannot
 * be sure of their nodes is skipped (its copy is dropped), since a move
 * half made would leave its range unmapped.  So is one whose metadata
 * would not fit in the journal beside what the next checkpoint already
 * writes: on a small volume a batch of many small files could not commit. */
static int room_for_one_move(struct cairn_fs *fs)
{
	return space_nodes_fit(fs, MOVE_NODES) &&
	       checkpoint_cost(fs) + MOVE_JOURNAL <= shared_journal_capacity(&fs->sh);
}

/* Whether the move's range is still mapped in the state it was picked in
 * (only the digest marks blocks written, and it waits for the batch; this
 * keeps a copy from being skipped even so). */
static int same_state(struct cairn_fs *fs, const struct fs_inode *i, const struct move *m)
{
	struct extent e;
	return extent_lookup(&fs->sh.fx, i, m->lblk, &e) == 1 && e.unwritten == m->unwritten;
}

static int switch_moves(struct cairn_fs *fs, const struct batch *b, int copy_rc)
{
	int rc = 0;
	for (int k = 0; k < b->n; k++) {
		const struct move *m = &b->m[k];
		struct iref r;
		int moved = 0;
		if (!copy_rc && !rc && !m->damaged && room_for_one_move(fs) &&
		    inode_in_use(&fs->sh, m->ino) && inode_get(&fs->sh, m->ino, &r) == 0) {
			int e = same_state(fs, r.i, m)
			            ? extent_move(&fs->sh.fx, r.i, m->lblk, m->len, m->src, m->dst)
			            : -ESTALE;
			if (e == 0) {
				moved = 1;
				inode_dirty(&fs->sh, &r);
			} else if (e != -ESTALE) {
				rc = e; /* the tree could not take the change */
			}
			inode_put(&fs->sh, &r);
		}
		if (!moved) {
			free_dst(fs, m);
			continue;
		}
		unsigned from = FS_PBLK_TIER(m->src), to = FS_PBLK_TIER(m->dst);
		fs->stats.tier_out[from] += m->len;
		if (to > from)
			fs->stats.tier_in_down[to] += m->len;
		else
			fs->stats.tier_in_up[to] += m->len;
	}
	return copy_rc ? copy_rc : rc;
}

/* ---- one batch ------------------------------------------------------------- */

enum batch_kind { DEMOTE, PROMOTE, EVACUATE };

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Runs one batch; *moved gets the blocks it moved.  locked: the caller
 * holds the volume lock exclusively (no digest thread). */
static int run_batch(struct cairn_fs *fs, enum batch_kind kind, unsigned t, uint64_t want,
                     int locked, uint64_t *moved)
{
	struct batch *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	int64_t t0 = mono_ns();
	pthread_mutex_lock(&fs->digest_lock);
	if (!locked)
		fs_lock_exclusive(fs);
	/* Switching extents may split them, and the new extents need tree
	 * nodes.  Demotion gives the fast tier space back, so like unlink it
	 * may use the reserve; it must leave the nodes the digest needs. */
	int rc = space_nodes_fit(fs, MOVE_NODES) ? 0 : -ENOSPC;
	if (!rc && !fs->failed)
		rc = kind == DEMOTE    ? pick_cold(fs, t, want, b)
		     : kind == PROMOTE ? pick_hot(fs, b)
		                       : pick_all(fs, t, want, b);
	if (!locked)
		pthread_rwlock_unlock(&fs->lock);
	int copy_rc = rc ? rc : copy_moves(fs, b);
	if (!locked)
		fs_lock_exclusive(fs);
	rc = switch_moves(fs, b, copy_rc);
	if (rc && rc != copy_rc)
		fs->failed = 1; /* the cached tree is not trustworthy: stop changes */
	if (!locked)
		pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->digest_lock);
	*moved = rc ? 0 : b->blocks;
	if (!rc && b->n > 0)
		rc = fs_checkpoint(fs, locked);
	if (!rc && b->n > 0) {
		fs->stats.migrations++;
		fs->stats.migrate_ns += (uint64_t)(mono_ns() - t0);
	}
	free(b);
	return rc;
}

/* Moves cold data of tier t down until it is below its low watermark. */
static int demote_tier(struct cairn_fs *fs, unsigned t, int locked)
{
	if (!takes_data(fs, t) || !tier_below(fs, t) ||
	    tier_used(fs, t) <= mark_blocks(fs, t, fs_opt_get(&fs->opts.high_watermark)))
		return 0;
	for (;;) {
		uint64_t used = tier_used(fs, t),
		         low = mark_blocks(fs, t, fs_opt_get(&fs->opts.low_watermark));
		if (used <= low)
			return 0;
		uint64_t moved;
		int rc = run_batch(fs, DEMOTE, t, used - low, locked, &moved);
		if (rc || moved == 0) { /* nothing (more) can move */
			if (moved == 0)
				__atomic_store_n(&fs->migrate_stuck_until,
				                 heat_clock_ns() + STUCK_BACKOFF_NS,
				                 __ATOMIC_RELAXED);
			return rc == -ENOSPC ? 0 : rc;
		}
	}
}

int migrate_run(struct cairn_fs *fs, int locked)
{
	if (fs->read_only || fs->sh.ntiers < 2)
		return 0;
	int rc = 0;
	for (unsigned t = 0; t + 1 < fs->sh.ntiers && !rc; t++)
		rc = demote_tier(fs, t, locked);
	uint64_t moved;
	if (!rc && !fs_opt_get(&fs->opts.no_promotion))
		rc = run_batch(fs, PROMOTE, 0, 0, locked, &moved);
	return rc == -ENOSPC ? 0 : rc;
}

int migrate_evacuate(struct cairn_fs *fs, unsigned t, uint64_t want, uint64_t *moved)
{
	*moved = 0;
	if (fs->read_only)
		return -EROFS;
	if (!shared_tier_live(&fs->sh, t) || t == 0)
		return -EINVAL;
	while (*moved < want && tier_used(fs, t) > 0) {
		uint64_t n;
		int rc = run_batch(fs, EVACUATE, t, want - *moved, 0, &n);
		if (rc)
			return rc;
		if (n == 0)
			break; /* what is left cannot move (damaged blocks) */
		*moved += n;
	}
	return 0;
}
