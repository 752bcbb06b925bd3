/*
 * heat.c - how recently each file was used, and which data read from a
 * capacity tier is hot enough to move back up: the inputs of migration.
 *
 * Owns: fs->heat (last read of each inode, in memory only) and the
 * promotion table.  May call: nothing below libfs but the format macros.
 *
 * Tracking is cheap on purpose: one relaxed store per read.  Writes need
 * no tracking: they set the inode's mtime, which is durable and which the
 * migrator reads anyway.  A file's coldness is therefore the time of its
 * last read or write; at mount every file starts from its atime and mtime.
 *
 * Promotion policy: a window of PROMOTE_WINDOW blocks (1 MiB, aligned)
 * around a block read from a capacity tier is a candidate; read in two
 * passes while it is in the table, it is ready, and the next migration
 * pass moves it to the fast tier if that keeps the fast tier at or below
 * its high watermark.  A pass is one reader going over the data: reads
 * come in pieces (a FUSE READ is 128 KiB at most, readahead may deliver
 * them out of order), so a read continues the current pass when it starts
 * where the previous read of the window ended, or when it touches only
 * blocks that the pass has not read yet; reading a block of the pass again
 * starts the next pass.  So one scan over cold data is one pass and
 * promotes nothing, and the table is small and forgets its oldest entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/extent.h"
#include "libfs/fs_internal.h"

/* The fine clock (a vDSO call, tens of ns): with a coarse one, files used
 * within the same few milliseconds would all look equally cold. */
int64_t heat_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int heat_init(struct cairn_fs *fs)
{
	fs->heat_count = fs->sh.sb.inode_count;
	fs->heat = calloc(fs->heat_count, sizeof(*fs->heat));
	pthread_mutex_init(&fs->promote_lock, NULL);
	return fs->heat ? 0 : -ENOMEM;
}

void heat_destroy(struct cairn_fs *fs)
{
	free(fs->heat);
	fs->heat = NULL;
	pthread_mutex_destroy(&fs->promote_lock);
}

void heat_touch(struct cairn_fs *fs, uint64_t ino)
{
	if (fs->heat && ino < fs->heat_count)
		__atomic_store_n(&fs->heat[ino], heat_clock_ns(), __ATOMIC_RELAXED);
}

int64_t heat_of(struct cairn_fs *fs, uint64_t ino, const struct fs_inode *i)
{
	int64_t t = fs->heat && ino < fs->heat_count
	                ? __atomic_load_n(&fs->heat[ino], __ATOMIC_RELAXED)
	                : 0;
	if (i->mtime_ns > t)
		t = i->mtime_ns;
	return i->atime_ns > t ? i->atime_ns : t;
}

static struct promote_entry *find_entry(struct cairn_fs *fs, uint64_t ino, uint64_t lblk)
{
	for (int k = 0; k < PROMOTE_TABLE; k++) {
		struct promote_entry *p = &fs->promote[k];
		if (p->len && p->ino == ino && lblk >= p->lblk && lblk < p->lblk + p->len)
			return p;
	}
	return NULL;
}

/* The slot to reuse: a free one, else the least recently hit. */
static struct promote_entry *victim(struct cairn_fs *fs)
{
	struct promote_entry *v = &fs->promote[0];
	for (int k = 0; k < PROMOTE_TABLE; k++) {
		struct promote_entry *p = &fs->promote[k];
		if (!p->len)
			return p;
		if (p->last < v->last)
			v = p;
	}
	return v;
}

/* Whether one of the blocks [from, to) of p was read in its current pass. */
static int seen_any(const struct promote_entry *p, uint64_t from, uint64_t to)
{
	for (uint64_t b = from; b < to; b++)
		if (p->seen[(b - p->lblk) / 64] & (1ull << ((b - p->lblk) % 64)))
			return 1;
	return 0;
}

static void mark_seen(struct promote_entry *p, uint64_t from, uint64_t to)
{
	for (uint64_t b = from; b < to; b++)
		p->seen[(b - p->lblk) / 64] |= 1ull << ((b - p->lblk) % 64);
}

/* The entry of the window that holds block lblk of extent e: the one in
 * the table, else a new one in the least recently used slot. */
static struct promote_entry *window_of(struct cairn_fs *fs, uint64_t ino, const struct extent *e,
                                       uint64_t lblk)
{
	struct promote_entry *p = find_entry(fs, ino, lblk);
	if (p)
		return p;
	p = victim(fs);
	uint64_t lo = lblk / PROMOTE_WINDOW * PROMOTE_WINDOW;
	uint64_t hi = lo + PROMOTE_WINDOW;
	if (lo < e->lblk)
		lo = e->lblk;
	if (hi > e->lblk + e->len)
		hi = e->lblk + e->len;
	*p = (struct promote_entry){.ino = ino, .lblk = lo, .len = hi - lo};
	return p;
}

/* A read of bytes [off, end) that lie in one window; returns whether the
 * window has just become ready. */
static int note_window(struct cairn_fs *fs, uint64_t ino, const struct extent *e, uint64_t off,
                       uint64_t end)
{
	uint64_t from = off / FS_BLOCK_SIZE, to = (end + FS_BLOCK_SIZE - 1) / FS_BLOCK_SIZE;
	struct promote_entry *p = window_of(fs, ino, e, from);
	int goes_on = p->hits && (off == p->next_off || !seen_any(p, from, to));
	if (!goes_on) {
		p->hits++;
		memset(p->seen, 0, sizeof(p->seen));
	}
	mark_seen(p, from, to);
	p->next_off = end;
	p->last = ++fs->promote_clock;
	return !goes_on && p->hits == 2;
}

void heat_note_capacity_read(struct cairn_fs *fs, uint64_t ino, const struct extent *e,
                             uint64_t off, uint64_t len)
{
	if (fs_opt_get(&fs->opts.no_promotion) || fs->read_only || len == 0)
		return;
	int ready = 0;
	pthread_mutex_lock(&fs->promote_lock);
	/* Window by window: a read may cross the boundary of one. */
	for (uint64_t end = off + len; off < end;) {
		uint64_t wend =
		    (off / FS_BLOCK_SIZE / PROMOTE_WINDOW + 1) * PROMOTE_WINDOW * FS_BLOCK_SIZE;
		if (wend > end)
			wend = end;
		ready |= note_window(fs, ino, e, off, wend);
		off = wend;
	}
	pthread_mutex_unlock(&fs->promote_lock);
	if (ready)
		fs_migrate_kick(fs);
}

int heat_take_ready(struct cairn_fs *fs, struct promote_entry *out, int max)
{
	int n = 0;
	pthread_mutex_lock(&fs->promote_lock);
	for (int k = 0; k < PROMOTE_TABLE && n < max; k++) {
		struct promote_entry *p = &fs->promote[k];
		if (p->len && p->hits >= 2) {
			out[n++] = *p;
			memset(p, 0, sizeof(*p));
		}
	}
	pthread_mutex_unlock(&fs->promote_lock);
	return n;
}
