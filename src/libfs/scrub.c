/*
 * scrub.c - cairn_scrub: every data block of every file, on every tier,
 * read and verified against its checksum while the volume is in use.
 *
 * Owns: the walk and the progress it reports.  May call: shared (data
 * verification), extent (the block maps), the inode table, and data.c's
 * damage report.
 *
 * The walk goes by inode number, not by name, so it reaches every file
 * once, hard links and open unlinked files included, and needs no path
 * lookups.  It holds the volume's read lock for one chunk of one extent
 * at a time: the digest, which rewrites mapped blocks in place under the
 * write lock, never runs in the middle of a chunk, and writers wait at
 * most one chunk.  New blocks the digest stores after letting the lock go
 * are waited for (read_lock_stored).  Undigested data is still in the log, whose records are
 * verified by their own checksums at every replay; the scrub checks what
 * the digest has stored.  Unwritten (preallocated) extents are skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/extent.h"
#include "libfs/fs_internal.h"

#define B FS_BLOCK_SIZE
#define SCRUB_CHUNK 64 /* blocks verified per hold of the lock */

static void add(uint64_t *field, uint64_t n)
{
	__atomic_add_fetch(field, n, __ATOMIC_RELAXED);
}

static int scrubbed_kind(uint32_t mode)
{
	return S_ISREG(mode) || S_ISLNK(mode);
}

static void note_damage(struct cairn_fs *fs, struct cairn_scrub *s, uint64_t ino, uint64_t lblk,
                        uint64_t pblk)
{
	data_report_damage(fs, ino, lblk, pblk, "scrub");
	add(&s->damaged_blocks, 1);
	unsigned k = s->listed;
	if (k >= CAIRN_SCRUB_LIST)
		return;
	struct cairn_scrub_damage *d = &s->damaged[k];
	d->ino = ino;
	d->offset = lblk * B;
	d->block = FS_PBLK_BLK(pblk);
	snprintf(d->tier, sizeof(d->tier), "%s", fs->sh.tier[FS_PBLK_TIER(pblk)].name);
	__atomic_store_n(&s->listed, k + 1, __ATOMIC_RELEASE);
}

/* Verifies up to SCRUB_CHUNK blocks of ino from *lblk under the read lock
 * and advances *lblk.  Returns 1 at the end of the file's map (or when the
 * inode went away), 0 to go on, or -errno. */
static int scrub_chunk(struct cairn_fs *fs, struct cairn_scrub *s, uint64_t ino, uint32_t gen,
                       uint64_t *lblk)
{
	struct iref r;
	if (!inode_in_use(&fs->sh, ino) || inode_get(&fs->sh, ino, &r))
		return 1;
	int rc;
	struct extent e;
	if (r.i->generation != gen || !scrubbed_kind(r.i->mode)) {
		rc = 1; /* freed and reused since the walk began */
	} else if ((rc = extent_lookup(&fs->sh.fx, r.i, *lblk, &e)) == 0) {
		if (e.len > UINT64_MAX / 2)
			rc = 1; /* the hole past the last extent */
		else
			*lblk = e.lblk + e.len;
	} else if (rc == 1 && e.unwritten) {
		/* Blocks fallocate set aside hold nothing of the file's yet:
		 * nothing to verify (their checksums mean nothing). */
		add(&s->bytes_done, (e.lblk + e.len - *lblk) * B);
		*lblk = e.lblk + e.len;
		rc = 0;
	} else if (rc == 1) {
		uint64_t n = e.lblk + e.len - *lblk, bad = 0;
		n = n < SCRUB_CHUNK ? n : SCRUB_CHUNK;
		uint64_t pblk = e.pblk + (*lblk - e.lblk);
		rc = shared_data_verify(&fs->sh, pblk, n, &bad, 1);
		if (rc == -SHARED_EBADSUM) {
			note_damage(fs, s, ino, *lblk + (bad - pblk), bad);
			n = bad - pblk + 1; /* go on after the damaged block */
			rc = 0;
		}
		if (!rc) {
			add(&s->bytes_done, n * B);
			*lblk += n;
		}
	}
	inode_put(&fs->sh, &r);
	return rc;
}

/* The read lock, once no pass of the digest has blocks mapped and not yet
 * stored (digest.c, "Stores after the lock"): their checksums would not
 * match bytes that are not there yet.  The flag is set under the write
 * lock, so seen clear under the read lock it stays clear until we let go. */
static void read_lock_stored(struct cairn_fs *fs)
{
	for (;;) {
		pthread_rwlock_rdlock(&fs->lock);
		if (!atomic_load(&fs->digest_storing))
			return;
		pthread_rwlock_unlock(&fs->lock);
		nanosleep(&(struct timespec){0, 20000}, NULL);
	}
}

static int scrub_file(struct cairn_fs *fs, struct cairn_scrub *s, uint64_t ino)
{
	uint32_t gen;
	struct iref r;
	pthread_rwlock_rdlock(&fs->lock);
	int rc = inode_in_use(&fs->sh, ino) ? inode_get(&fs->sh, ino, &r) : 1;
	if (!rc) {
		gen = r.i->generation;
		if (!scrubbed_kind(r.i->mode))
			rc = 1;
		inode_put(&fs->sh, &r);
	}
	pthread_rwlock_unlock(&fs->lock);
	if (rc)
		return 0; /* not a file with data */
	for (uint64_t lblk = 0; !rc;) {
		if (__atomic_load_n(&s->cancel, __ATOMIC_RELAXED))
			return -ECANCELED;
		read_lock_stored(fs);
		rc = scrub_chunk(fs, s, ino, gen, &lblk);
		pthread_rwlock_unlock(&fs->lock);
	}
	if (rc > 0)
		add(&s->files_done, 1);
	return rc < 0 ? rc : 0;
}

/* The files to walk and their blocks, for the progress fields. */
static void count_files(struct cairn_fs *fs, struct cairn_scrub *s)
{
	uint64_t files = 0, blocks = 0;
	pthread_rwlock_rdlock(&fs->lock);
	for (uint64_t ino = FS_ROOT_INO; ino < fs->sh.sb.inode_count; ino++) {
		struct iref r;
		if (!inode_in_use(&fs->sh, ino) || inode_get(&fs->sh, ino, &r))
			continue;
		if (scrubbed_kind(r.i->mode)) {
			files++;
			blocks += r.i->blocks;
		}
		inode_put(&fs->sh, &r);
	}
	pthread_rwlock_unlock(&fs->lock);
	__atomic_store_n(&s->files_total, files, __ATOMIC_RELAXED);
	__atomic_store_n(&s->bytes_total, blocks * B, __ATOMIC_RELAXED);
}

int cairn_scrub(cairn_fs *fs, struct cairn_scrub *s)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_scrub(fs->client, s);
	if (!fs || !s)
		return fail(-EINVAL);
	int cancel = s->cancel;
	memset(s, 0, sizeof(*s));
	s->cancel = cancel;
	int rc = 0;
	count_files(fs, s);
	for (uint64_t ino = FS_ROOT_INO; ino < fs->sh.sb.inode_count && !rc; ino++)
		rc = scrub_file(fs, s, ino);
	if (!rc) /* blocks counts tree nodes too: the end is the whole */
		__atomic_store_n(&s->bytes_done, s->bytes_total, __ATOMIC_RELAXED);
	return rc ? fail(rc) : 0;
}
