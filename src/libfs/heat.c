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
 * around a block read from a capacity tier is a candidate; read twice
 * while it is in the table, it is ready, and the next migration pass moves
 * it to the fast tier if that keeps the fast tier at or below its high
 * watermark.  The table is small and forgets its oldest entry, so a single
 * scan over cold data promotes nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/extent.h"
#include "libfs/fs_internal.h"

#define PROMOTE_WINDOW 256u

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

void heat_note_capacity_read(struct cairn_fs *fs, uint64_t ino, const struct extent *e,
                             uint64_t lblk)
{
	if (fs->opts.no_promotion || fs->read_only)
		return;
	int ready = 0;
	pthread_mutex_lock(&fs->promote_lock);
	struct promote_entry *p = find_entry(fs, ino, lblk);
	if (!p) {
		p = victim(fs);
		uint64_t lo = lblk / PROMOTE_WINDOW * PROMOTE_WINDOW;
		uint64_t hi = lo + PROMOTE_WINDOW;
		if (lo < e->lblk)
			lo = e->lblk;
		if (hi > e->lblk + e->len)
			hi = e->lblk + e->len;
		*p = (struct promote_entry){ino, lo, hi - lo, 0, 0};
	}
	p->hits++;
	p->last = ++fs->promote_clock;
	ready = p->hits == 2;
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
