/*
 * data.c - reading file data: the shared area's extents overlaid with the
 * undigested pieces of the log, so every read sees every acknowledged write.
 *
 * Owns: nothing persistent; the report of a data block that fails its
 * checksum (an event, a counter, EIO to the reader, never the bytes).
 * May call: shared (data blocks), extent, log (payload bytes), dindex.  Caller holds fs->lock
 * (shared is enough: the file's vnode lock is then taken here, as writes
 * beside each other change its index and size under it).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs/extent.h"
#include "libfs/fs_internal.h"

#define B FS_BLOCK_SIZE

/* Whether a record replayed at this mount wrote into block lblk of ino.
 * A checkpoint that the crash cut short may have rewritten such a block in
 * place without its checksum, or the reverse (docs/FORMAT.md, "Data
 * checksums"); a read-write mount digests the replayed records before
 * anything reads, but a read-only mount reads the block as it is, so a
 * mismatch there is the crash's, not damage: the bytes the records did not
 * write are the block's old ones either way. */
static int replayed_into(struct cairn_fs *fs, uint64_t ino, uint64_t lblk)
{
	struct vnode *vn = vnode_find(fs, ino);
	if (!vn)
		return 0;
	for (struct piece *p = dindex_first_after(&vn->data, lblk * B);
	     p && p->off < (lblk + 1) * B; p = dindex_next(&vn->data, p))
		if (p->seq < fs->recovered_until)
			return 1;
	return 0;
}

/* n bytes of ino at file block lblk + byte in, from pblk on, one block at
 * a time: a block that fails its checksum is read as it is when a replayed
 * record wrote into it, and is damage otherwise. */
static int pread_blockwise(struct cairn_fs *fs, uint64_t ino, uint64_t lblk, uint64_t pblk,
                           uint64_t in, uint8_t *buf, uint64_t n)
{
	while (n > 0) {
		uint64_t k = B - in < n ? B - in : n;
		int rc = shared_data_pread(&fs->sh, pblk, in, buf, k, NULL);
		if (rc == -SHARED_EBADSUM && replayed_into(fs, ino, lblk))
			rc = shared_data_pread_unverified(&fs->sh, pblk, in, buf, k);
		else if (rc == -SHARED_EBADSUM) {
			data_report_damage(fs, ino, lblk, pblk, "read");
			return -EIO;
		}
		if (rc)
			return rc;
		lblk++;
		pblk++;
		buf += k;
		n -= k;
		in = 0;
	}
	return 0;
}

/* Copies file bytes [off, off+len) from the shared area (holes and
 * unwritten extents are zeros: the blocks fallocate set aside hold
 * nothing of the file's until data is digested into them). */
static int read_shared(struct cairn_fs *fs, uint64_t ino, const struct fs_inode *i, uint8_t *buf,
                       uint64_t off, uint64_t len)
{
	while (len > 0) {
		uint64_t lblk = off / B, in = off % B;
		struct extent e;
		int found = extent_lookup(&fs->sh.fx, i, lblk, &e);
		if (found < 0)
			return found;
		uint64_t avail = (e.lblk + e.len - lblk) * B - in; /* bytes left in extent/hole */
		if (e.len > UINT64_MAX / 2)
			avail = len;
		uint64_t n = avail < len ? avail : len;
		if (n == 0)
			return -EUCLEAN; /* a map that does not advance: damage */
		if (!found || e.unwritten) {
			memset(buf, 0, n);
		} else {
			if (!shared_blocks_ok(&fs->sh, e.pblk, e.len))
				return -EUCLEAN;
			uint64_t pblk = e.pblk + (lblk - e.lblk);
			int rc = shared_data_pread(&fs->sh, pblk, in, buf, n, NULL);
			if (rc == -SHARED_EBADSUM) /* block by block: the crash's or damage */
				rc = pread_blockwise(fs, ino, lblk, pblk, in, buf, n);
			if (rc)
				return rc;
			if (FS_PBLK_TIER(pblk))
				heat_note_capacity_read(fs, ino, &e, off, n);
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void (*event_handler)(const char *msg);

void cairn_set_event_handler(void (*handler)(const char *msg))
{
	__atomic_store_n(&event_handler, handler, __ATOMIC_RELEASE);
}

void data_report_damage(struct cairn_fs *fs, uint64_t ino, uint64_t lblk, uint64_t pblk,
                        const char *during)
{
	/* Said once per block until it is written again: a damaged cold
	 * extent would otherwise be reported by every migration pass, and a
	 * program retrying a read would fill the log. */
	if (!shared_data_note_damage(&fs->sh, pblk))
		return;
	char msg[256];
	unsigned t = FS_PBLK_TIER(pblk);
	snprintf(msg, sizeof(msg),
	         "data checksum mismatch (%s): inode %llu, file offset %llu, tier %s block %llu",
	         during, (unsigned long long)ino, (unsigned long long)(lblk * B),
	         t < fs->sh.ntiers ? fs->sh.tier[t].name : "?",
	         (unsigned long long)FS_PBLK_BLK(pblk));
	__atomic_add_fetch(&fs->stats.data_errors, 1, __ATOMIC_RELAXED);
	void (*h)(const char *) = __atomic_load_n(&event_handler, __ATOMIC_ACQUIRE);
	if (h)
		h(msg);
	else
		fprintf(stderr, "cairn: %s\n", msg);
}

static int read_piece(struct cairn_fs *fs, const struct piece *p, uint8_t *buf, uint64_t off,
                      uint64_t len)
{
	if (p->kind == PIECE_ZERO) {
		memset(buf, 0, len);
		return 0;
	}
	/* A write may still be copying its bytes in (log_fill). */
	int rc = log_await(fs->log, p->seq);
	if (rc)
		return rc;
	uint64_t src = p->src + (off - p->off);
	const uint8_t *direct = log_direct(fs->log, src);
	if (direct) {
		memcpy(buf, direct, len);
		return 0;
	}
	return log_read(fs->log, src, buf, len);
}

static ssize_t read_locked(struct cairn_fs *fs, uint64_t ino, struct vnode *vn, void *out,
                           size_t count, uint64_t off)
{
	struct iref r;
	int rc = inode_get(&fs->sh, ino, &r);
	if (rc)
		return rc;
	uint64_t size = r.i->size;
	if (off >= size || count == 0) {
		inode_put(&fs->sh, &r);
		return 0;
	}
	uint64_t len = size - off < count ? size - off : count;
	heat_touch(fs, ino);
	uint8_t *buf = out;
	uint64_t cur = off, end = off + len;
	struct piece *p = vn ? dindex_first_after(&vn->data, off) : NULL;
	for (; !rc && p && p->off < end; p = dindex_next(&vn->data, p)) {
		if (p->off > cur)
			rc = read_shared(fs, ino, r.i, buf + (cur - off), cur, p->off - cur);
		uint64_t s = p->off > cur ? p->off : cur;
		uint64_t e = p->off + p->len < end ? p->off + p->len : end;
		if (!rc)
			rc = read_piece(fs, p, buf + (s - off), s, e - s);
		cur = e;
	}
	if (!rc && cur < end)
		rc = read_shared(fs, ino, r.i, buf + (cur - off), cur, end - cur);
	inode_put(&fs->sh, &r);
	return rc ? rc : (ssize_t)len;
}

ssize_t data_read(struct cairn_fs *fs, uint64_t ino, void *out, size_t count, uint64_t off)
{
	struct vnode *vn = vnode_lock_ino(fs, ino);
	ssize_t n = read_locked(fs, ino, vn, out, count, off);
	vnode_unlock(vn);
	return n;
}

int data_blocks_needed(struct cairn_fs *fs, struct fs_inode *i, struct vnode *vn, uint64_t off,
                       uint64_t len, uint64_t *need)
{
	(void)vn;
	*need = 0;
	if (len == 0)
		return 0;
	uint64_t first = off / B, last = (off + len - 1) / B;
	for (uint64_t lblk = first; lblk <= last;) {
		struct extent e;
		int found = extent_lookup(&fs->sh.fx, i, lblk, &e);
		if (found < 0)
			return found;
		uint64_t n = e.lblk + e.len - lblk;
		if (e.len > UINT64_MAX / 2 || n > last - lblk + 1)
			n = last - lblk + 1;
		if (n == 0)
			return -EUCLEAN;
		if (!found)
			*need += n; /* unwritten blocks are set aside already */
		lblk += n;
	}
	return 0;
}

/* Whether file byte x is data: in a written extent of the shared area or
 * in an undigested piece.  Unwritten extents count as holes, as on ext4
 * (nothing was written there).  *next gets the first byte after x where
 * that may change. */
static int is_data_at(struct cairn_fs *fs, const struct fs_inode *i, struct vnode *vn, uint64_t x,
                      uint64_t *next)
{
	struct extent e;
	int found = extent_lookup(&fs->sh.fx, i, x / B, &e);
	if (found < 0)
		return found;
	uint64_t end_blk = e.lblk + e.len; /* a hole's len reaches at most UINT64_MAX */
	uint64_t ext_end = end_blk > UINT64_MAX / B ? UINT64_MAX : end_blk * B;
	struct piece *p = vn ? dindex_first_after(&vn->data, x) : NULL;
	if (p && p->off <= x) {
		*next = p->off + p->len;
		return 1;
	}
	if (found && !e.unwritten) {
		*next = ext_end;
		return 1;
	}
	*next = ext_end; /* the hole ends where the next extent starts ... */
	if (p && p->off < *next)
		*next = p->off; /* ... or the next piece */
	return 0;
}

static int seek_locked(struct cairn_fs *fs, uint64_t ino, struct vnode *vn, uint64_t off,
                       int want_data, uint64_t *out)
{
	struct iref r;
	int rc = inode_get(&fs->sh, ino, &r);
	if (rc)
		return rc;
	uint64_t size = r.i->size;
	uint64_t x = off;
	while (!rc && x < size) {
		uint64_t next;
		int d = is_data_at(fs, r.i, vn, x, &next);
		if (d < 0) {
			rc = d;
			break;
		}
		if (d == want_data)
			break;
		if (next <= x) {
			rc = -EUCLEAN;
			break;
		}
		x = next;
	}
	inode_put(&fs->sh, &r);
	if (rc)
		return rc;
	if (x >= size) {
		if (want_data)
			return -ENXIO;
		x = size; /* the end of the file counts as a hole */
	}
	*out = x;
	return 0;
}

int data_seek(struct cairn_fs *fs, uint64_t ino, uint64_t off, int want_data, uint64_t *out)
{
	struct vnode *vn = vnode_lock_ino(fs, ino);
	int rc = seek_locked(fs, ino, vn, off, want_data, out);
	vnode_unlock(vn);
	return rc;
}
