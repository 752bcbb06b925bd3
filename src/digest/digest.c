/*
 * digest.c - checkpoints and the digest thread (see digest.h for the
 * protocol and why it is crash-safe).
 *
 * Owns: the order of a checkpoint's steps, the digest thread, the batch
 * commit thread.
 * May call: libfs state (vnodes, dindex), fs (shared, extent, alloc, cache),
 * log, volume (to name a part whose medium failed).
 */
#include "digest/digest.h"
#include "tier/migrate.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/alloc.h"
#include "fs/extent.h"
#include "libfs/clients.h"
#include "libfs/fs_internal.h"

#define B FS_BLOCK_SIZE

/* ---- step 2: undigested bytes into data blocks -------------------------- */

/* Blocks one pass of the digest ahead stores at most (digest_pass_blocks
 * is clamped to it). */
#define PASS_BLOCKS_MAX 1024

/* One block being assembled from the pieces that cover it. */
struct blockbuf {
	uint64_t lblk;
	int active;
	int mapped;    /* already has a block in the shared area */
	int unwritten; /* ... set aside by fallocate: its old bytes are not the file's */
	int has_data;  /* a PIECE_LOG byte landed in it */
	int damaged;   /* its old contents failed their checksum */
	uint64_t pblk;
	struct extent ext; /* the extent that maps it */
	/* Blocks stored into one unwritten extent (run_ext), still to be
	 * marked written: [run_lblk, run_lblk + run_len). */
	uint64_t run_lblk, run_len;
	/* An append digests block after block past the file's last extent:
	 * the hole the last lookup found, [hole_lblk, hole_end), spares
	 * a lookup for each block in it (the blocks placed meanwhile lie
	 * before the next one looked for), and the blocks placed there in
	 * a row, [new_lblk, new_lblk + new_len) at new_pblk, are mapped
	 * with one insert.  Both are of the vnode being digested. */
	uint64_t hole_lblk, hole_end;
	uint64_t new_lblk, new_pblk, new_len;
	struct extent run_ext;
	/* What one call may digest: blocks it may still store, and pieces
	 * of records before upto only (see digest_ahead). */
	uint64_t budget, upto;
	/* Where a pass stopped for its budget: the next starts there. */
	uint64_t resume_ino, resume_off;
	/* The block's bytes in place in the log, when one piece covers it
	 * whole on byte-addressable media: stored from there, not copied
	 * into data first. */
	const uint8_t *direct;
	/* Passes of the digest ahead: new blocks whose bytes are stored
	 * after the lock is let go (see "Stores after the lock"). */
	int defer;
	size_t nlater;
	struct later_store {
		uint64_t pblk;
		const uint8_t *src;
	} later[PASS_BLOCKS_MAX];
	uint8_t data[B];
};

/* The blocks placed in a row are mapped (before any other change to the
 * file's map, and before the digest of the file ends). */
static int map_new_blocks(struct cairn_fs *fs, struct fs_inode *i, struct blockbuf *bb)
{
	uint64_t n = bb->new_len;
	bb->new_len = 0;
	return n ? extent_insert(&fs->sh.fx, i, bb->new_lblk, bb->new_pblk, n) : 0;
}

/* The extent mapping lblk, or the hole it lies in (extent_lookup). */
static int find_block(struct cairn_fs *fs, struct fs_inode *i, struct blockbuf *bb, uint64_t lblk,
                      struct extent *e)
{
	if (lblk >= bb->hole_lblk && lblk < bb->hole_end) {
		*e = (struct extent){.lblk = lblk, .len = bb->hole_end - lblk};
		return 0;
	}
	int rc = map_new_blocks(fs, i, bb);
	int found = rc ? rc : extent_lookup(&fs->sh.fx, i, lblk, e);
	bb->hole_lblk = bb->hole_end = 0;
	if (found == 0 && e->len <= UINT64_MAX - lblk) {
		bb->hole_lblk = lblk;
		bb->hole_end = lblk + e->len;
	}
	return found;
}

/*
 * A block only partly overwritten is read first, and verified.  When its
 * old bytes fail their checksum the new bytes are merged all the same (the
 * record is durable and must apply), but the block is stored with a
 * checksum that does not match: the damage in the bytes the record did not
 * cover stays visible (EIO to readers) until the block is written whole,
 * instead of being sealed under a fresh checksum.  The exception is a
 * block that a record replayed at mount writes: a digest cut short by the
 * crash may have stored the block and not its checksum, or the reverse,
 * and the mismatch is then no damage; the replay's merge is what the block
 * must hold, and it gets a fresh checksum.
 */
static int load_block(struct cairn_fs *fs, uint64_t ino, struct fs_inode *i, struct blockbuf *bb,
                      uint64_t lblk, int whole, uint64_t seq)
{
	struct extent e;
	int found = find_block(fs, i, bb, lblk, &e);
	if (found < 0)
		return found;
	if (found && !shared_blocks_ok(&fs->sh, e.pblk, e.len))
		return -EUCLEAN;
	bb->lblk = lblk;
	bb->active = 1;
	bb->direct = NULL;
	bb->has_data = 0;
	bb->damaged = 0;
	bb->mapped = found;
	bb->unwritten = found && e.unwritten; /* starts from zeros, not from the block */
	bb->ext = e;
	bb->pblk = found ? e.pblk + (lblk - e.lblk) : 0;
	if (found && !whole && !bb->unwritten) {
		int rc = shared_data_read(&fs->sh, bb->pblk, bb->data, 1, NULL);
		if (rc == -SHARED_EBADSUM && seq < fs->recovered_until) {
			rc = 0; /* in the crash's window: see above */
		} else if (rc == -SHARED_EBADSUM) {
			data_report_damage(fs, ino, lblk, bb->pblk, "digest");
			bb->damaged = 1;
			rc = 0;
		}
		return rc;
	}
	if (!whole) /* a hole, or unwritten: what no piece covers reads as zeros */
		memset(bb->data, 0, B);
	return 0;
}

/* The tier a new block goes to is the space rules' choice (space.c). */
static int place_block(struct cairn_fs *fs, uint64_t hint, uint64_t *pblk)
{
	uint64_t got;
	return space_place_data(fs, hint, 1, pblk, &got);
}

/* ---- blocks written into unwritten extents ------------------------------ */

static const uint8_t zeros[16 * B];

static int write_zeros(struct cairn_fs *fs, uint64_t pblk, uint64_t n)
{
	for (uint64_t done = 0; done < n;) {
		uint64_t k = n - done < 16 ? n - done : 16;
		int rc = shared_data_write(&fs->sh, pblk + done, zeros, k);
		if (rc)
			return rc;
		done += k;
	}
	return 0;
}

/* Tree nodes marking part of an extent written may take: two inserts. */
#define SPLIT_NODES 12

/*
 * The run of blocks just stored into an unwritten extent becomes written.
 * Marking part of the extent splits it, which may need tree nodes: the
 * digest takes them only when they are spare beside what the log's other
 * data and the reserve need (space.c).  Otherwise it writes zeros over the
 * rest of the extent (reading it gives zeros either way, and its blocks
 * are the file's already) and marks the whole extent, which needs no node:
 * as ext4 does when it cannot split one.  The zeros are bounded by the
 * longest unwritten extent (FS_EXTENT_UNWRITTEN_MAX).
 */
static int mark_run_written(struct cairn_fs *fs, struct fs_inode *i, struct blockbuf *bb)
{
	int mrc = map_new_blocks(fs, i, bb);
	if (mrc)
		return mrc;
	const struct extent *x = &bb->run_ext;
	uint64_t lblk = bb->run_lblk, n = bb->run_len;
	bb->run_len = 0;
	int rc = -ENOSPC;
	if (n == x->len || space_nodes_spare(fs, SPLIT_NODES))
		rc = extent_mark_written(&fs->sh.fx, i, lblk, n);
	if (rc != -ENOSPC)
		return rc;
	uint64_t head = lblk - x->lblk, tail = x->len - head - n;
	rc = write_zeros(fs, x->pblk, head);
	if (!rc)
		rc = write_zeros(fs, x->pblk + head + n, tail);
	return rc ? rc : extent_mark_written(&fs->sh.fx, i, x->lblk, x->len);
}

/* Before block lblk is loaded: a run it does not continue (in the same
 * extent) is marked written, so the block's extent is looked up after. */
static int end_run_before(struct cairn_fs *fs, struct fs_inode *i, struct blockbuf *bb,
                          uint64_t lblk)
{
	uint64_t next = bb->run_lblk + bb->run_len;
	if (bb->run_len && (lblk != next || next == bb->run_ext.lblk + bb->run_ext.len))
		return mark_run_written(fs, i, bb);
	return 0;
}

static void add_to_run(struct blockbuf *bb)
{
	if (bb->run_len++ == 0) {
		bb->run_lblk = bb->lblk;
		bb->run_ext = bb->ext;
	}
}

static int store_block(struct cairn_fs *fs, struct fs_inode *i, struct blockbuf *bb, uint64_t *hint)
{
	bb->active = 0;
	if (bb->unwritten) {
		if (!bb->has_data)
			return 0; /* only zeros over a preallocated block: it stays unwritten */
		add_to_run(bb);
	}
	if (!bb->mapped) {
		if (!bb->has_data)
			return 0; /* only zeros over a hole: it stays a hole */
		int rc = place_block(fs, *hint, &bb->pblk);
		if (rc)
			return rc;
		if (bb->new_len && bb->lblk == bb->new_lblk + bb->new_len &&
		    bb->pblk == bb->new_pblk + bb->new_len) {
			bb->new_len++;
		} else {
			rc = map_new_blocks(fs, i, bb);
			if (rc)
				return rc;
			bb->new_lblk = bb->lblk;
			bb->new_pblk = bb->pblk;
			bb->new_len = 1;
		}
	}
	*hint = bb->pblk + 1;
	fs->stats.bytes_digested += B;
	if (bb->budget)
		bb->budget--;
	if (bb->damaged)
		return shared_data_write_damaged(&fs->sh, bb->pblk, bb->data);
	if (bb->defer && !bb->mapped && bb->direct && bb->nlater < PASS_BLOCKS_MAX) {
		bb->later[bb->nlater++] = (struct later_store){bb->pblk, bb->direct};
		return 0;
	}
	return shared_data_write(&fs->sh, bb->pblk, bb->direct ? bb->direct : bb->data, 1);
}

/* Puts the piece's bytes [off, off + len) at in of bb's block. */
static int copy_piece_bytes(struct cairn_fs *fs, const struct piece *p, uint64_t off,
                            struct blockbuf *bb, uint64_t in, uint64_t len)
{
	uint8_t *dst = bb->data + in;
	if (p->kind == PIECE_ZERO) {
		memset(dst, 0, len);
		return 0;
	}
	uint64_t src = p->src + (off - p->off);
	const uint8_t *direct = log_direct(fs->log, src);
	if (direct && len == B) {
		bb->direct = direct; /* the log is not reclaimed before the block is stored */
		return 0;
	}
	if (direct) {
		memcpy(dst, direct, len);
		return 0;
	}
	return log_read(fs->log, src, dst, len);
}

static int digest_piece(struct cairn_fs *fs, uint64_t ino, struct fs_inode *i,
                        const struct piece *p, struct blockbuf *bb, uint64_t *hint)
{
	uint64_t off = p->off, end = p->off + p->len;
	uint64_t limit = (i->size + B - 1) / B * B;
	if (end > limit)
		end = limit; /* nothing past the block holding EOF is digested */
	while (off < end) {
		uint64_t lblk = off / B, in = off % B;
		uint64_t n = B - in < end - off ? B - in : end - off;
		int rc = 0;
		if (bb->active && bb->lblk != lblk)
			rc = store_block(fs, i, bb, hint);
		if (!rc && !bb->active)
			rc = end_run_before(fs, i, bb, lblk);
		if (!rc && !bb->active)
			rc = load_block(fs, ino, i, bb, lblk, n == B, p->seq);
		if (!rc)
			rc = copy_piece_bytes(fs, p, off, bb, in, n);
		if (rc)
			return rc;
		if (p->kind == PIECE_LOG)
			bb->has_data = 1;
		off += n;
	}
	return 0;
}

/* A piece this checkpoint still has to store: not stored by an earlier
 * pass of it, and written before the point the call digests up to. */
static int to_store(const struct cairn_fs *fs, const struct blockbuf *bb, const struct piece *p)
{
	return p->stored != fs->digest_gen && p->seq < bb->upto;
}

static struct piece *first_to_store(struct cairn_fs *fs, struct vnode *vn, struct blockbuf *bb)
{
	struct piece *p = bb->resume_ino == vn->ino
	                      ? dindex_first_after(&vn->data, bb->resume_off)
	                      : dindex_first_unstored(&vn->data, fs->digest_gen);
	while (p && !to_store(fs, bb, p))
		p = dindex_next(&vn->data, p);
	return p;
}

/* Stores vn's pieces still to store, in file order, until bb's budget
 * runs out; each stored piece gives back its reservation.  The block
 * being assembled is always stored before it returns, so that every piece
 * marked stored is in the shared area when the lock is let go. */
static int digest_vnode(struct cairn_fs *fs, struct vnode *vn, struct blockbuf *bb)
{
	struct piece *p = first_to_store(fs, vn, bb);
	if (!p)
		return 0;
	struct iref r;
	int rc = inode_get(&fs->sh, vn->ino, &r);
	if (rc)
		return rc;
	uint64_t hint = 0;
	struct extent e;
	if (extent_lookup(&fs->sh.fx, r.i, 0, &e) == 1)
		hint = e.pblk;
	bb->active = 0;
	bb->run_len = 0;
	bb->hole_lblk = bb->hole_end = 0;
	bb->new_len = 0;
	for (; p && !rc && bb->budget; p = dindex_next(&vn->data, p)) {
		if (!to_store(fs, bb, p))
			continue;
		rc = digest_piece(fs, vn->ino, r.i, p, bb, &hint);
		if (!rc)
			fs->reserved_blocks -= dindex_mark_stored(&vn->data, p, fs->digest_gen);
	}
	bb->resume_ino = p ? vn->ino : 0;
	bb->resume_off = p ? p->off : 0;
	if (!rc && bb->active)
		rc = store_block(fs, r.i, bb, &hint);
	if (!rc && bb->run_len)
		rc = mark_run_written(fs, r.i, bb);
	/* Even after a failure: the blocks placed are stored, and the
	 * pieces in them marked so. */
	int mrc = map_new_blocks(fs, r.i, bb);
	if (!rc)
		rc = mrc;
	inode_dirty(&fs->sh, &r);
	inode_put(&fs->sh, &r);
	return rc;
}

/* Digests vnodes from vtab slot *cursor on until bb's budget runs out;
 * *cursor is then the slot to go on from (vtab_size: all done). */
static int digest_some(struct cairn_fs *fs, struct blockbuf *bb, size_t *cursor)
{
	int rc = 0;
	size_t s = *cursor;
	for (; s < fs->vtab_size && !rc; s++) {
		for (struct vnode *v = fs->vtab[s]; v && !rc; v = v->hnext) {
			rc = digest_vnode(fs, v, bb);
			if (!bb->budget) {
				*cursor = s;
				return rc;
			}
		}
	}
	*cursor = s;
	return rc;
}

static int digest_all_data(struct cairn_fs *fs)
{
	struct blockbuf *bb = malloc(sizeof(*bb));
	if (!bb)
		return -ENOMEM;
	bb->budget = UINT64_MAX;
	bb->upto = UINT64_MAX;
	bb->resume_ino = 0;
	bb->defer = 0; /* the lock is held to the end: stored at once */
	bb->nlater = 0;
	size_t cursor = 0;
	int rc = digest_some(fs, bb, &cursor);
	free(bb);
	return rc;
}

/* ---- before the checkpoint: digesting ahead ----------------------------- */

/* Blocks one pass stores before it lets writers have the lock. */
#define PASS_BLOCKS 256
/* Rounds at most; a round digests what the log held when it began. */
#define AHEAD_ROUNDS 8

/*
 * Stores after the lock.  Most of a pass is the copy of whole blocks from
 * the log into blocks it has just placed (appends, and writes of whole
 * blocks).  Those copies need not hold the lock, so a pass only places and
 * maps such blocks under it and stores their bytes after letting it go,
 * beside the writers and the ingestion of the clients' logs.  Why nothing
 * reads such a block before its bytes are there:
 *  - readers take a file's bytes from its undigested pieces first, and
 *    from the shared area only where no piece covers them; each deferred
 *    block is covered whole by one piece, which stays in the index until
 *    step 5 of a checkpoint, and a truncate or a punch that cuts it covers
 *    what it cut with a ZERO piece or unmaps the block;
 *  - a block unmapped meanwhile (truncate, punch, unlink) is quarantined
 *    until the next checkpoint commits, so nothing else is placed there;
 *  - the digest, migrations and tier changes run under digest_lock, as
 *    this pass does, and see the block only after it is stored;
 *  - the scrub, which reads mapped blocks under the read lock, waits while
 *    fs->digest_storing says a pass has blocks to store.
 * Blocks mapped before the pass are stored under the lock as before: a
 * reader may read their other bytes, and must not find the block and its
 * checksum disagreeing.
 */
static int store_later(struct cairn_fs *fs, struct blockbuf *bb)
{
	int rc = 0;
	for (size_t k = 0; k < bb->nlater && !rc; k++)
		rc = shared_data_write(&fs->sh, bb->later[k].pblk, bb->later[k].src, 1);
	bb->nlater = 0;
	atomic_store(&fs->digest_storing, 0);
	fs_note_failure(fs, rc);
	return rc;
}

/*
 * Steps 1 and 2 (digest.h) cost a copy of every undigested byte, and the
 * lock is held through them: writers, and the ingestion of the clients'
 * logs, would wait as long as the copies take (about a tenth of a second
 * for 128 MiB here).  So the digest thread first does most of step 2 in
 * passes of PASS_BLOCKS blocks, each holding the lock alone, with writers
 * let in between.  A round of passes digests the records the log held
 * when the round began; while it runs, more arrive, and the next round
 * takes those, until a round finds little left.  The checkpoint proper
 * then holds the lock only for what came in during the last round.
 *
 * Why it is as safe as step 2 done at once: each pass starts by making
 * the log durable, so only durable records reach the shared area; a pass
 * ends with every block it assembled stored, so between passes the shared
 * area and the in-memory state agree as they do after step 2 (the index
 * still holds the stored pieces until step 5, and readers prefer it); and
 * what is durable is unchanged: until the checkpoint commits, recovery
 * replays from the old head, which covers every record a pass stored,
 * exactly as after a crash in the middle of step 2.  A piece a pass
 * stored is marked with this checkpoint's generation and not stored again;
 * a failed pass bumps the generation, so that step 2 stores everything.
 */
static void digest_ahead(struct cairn_fs *fs)
{
	struct blockbuf *bb = malloc(sizeof(*bb));
	if (!bb)
		return;
	uint64_t per = fs->digest_pass_blocks ? fs->digest_pass_blocks : PASS_BLOCKS;
	if (per > PASS_BLOCKS_MAX)
		per = PASS_BLOCKS_MAX;
	for (int round = 0; round < AHEAD_ROUNDS; round++) {
		size_t cursor = 0;
		uint64_t stored = 0;
		bb->resume_ino = 0;
		int rc = 0, done = 0;
		for (int pass = 0; !rc && !done; pass++) {
			fs_lock_exclusive(fs);
			rc = fs->failed ? -EIO : log_commit_all(fs->log);
			if (pass == 0)
				bb->upto = log_tail_seq(fs->log);
			bb->budget = per;
			bb->defer = 1;
			bb->nlater = 0;
			if (!rc)
				rc = digest_some(fs, bb, &cursor);
			if (bb->nlater)
				atomic_store(&fs->digest_storing, 1);
			stored += per - bb->budget;
			done = cursor >= fs->vtab_size;
			pthread_rwlock_unlock(&fs->lock);
			if (fs->between_passes)
				fs->between_passes(fs);
			int src = store_later(fs, bb);
			if (!rc)
				rc = src;
			if (rc)
				fs->digest_gen++; /* step 2 stores every piece again */
			/* Writers waiting for the lock queue for it beside the
			 * next pass (writes that would take it shared step back
			 * while a pass waits: fs_lock_exclusive), and a yield
			 * lets one of them run here first.  A sleep here (20 us
			 * asked, 89 us taken on this machine) left the digest
			 * idle after each pass: one writer appended 0.71M times
			 * a second with it, 0.91M with the yield, while the
			 * digest ran (docs/PERFORMANCE.md, "The digest's pause
			 * between passes"). */
			if (!fs->between_passes && !done)
				sched_yield();
		}
		if (rc || stored < per)
			break;
	}
	free(bb);
}

/* ---- step 5: forget what is now in the shared area ---------------------- */

static void drop_digested(struct cairn_fs *fs, uint64_t seq)
{
	for (size_t s = 0; s < fs->vtab_size; s++) {
		struct vnode *v = fs->vtab[s], *n;
		for (; v; v = n) {
			n = v->hnext;
			dindex_remove_before(&v->data, seq);
			vnode_maybe_free(fs, v);
		}
	}
}

static void fill_checkpoint(struct cairn_fs *fs, struct fs_checkpoint *ck, uint64_t head_off,
                            uint64_t head_seq)
{
	memset(ck, 0, sizeof(*ck));
	ck->log_head_off = head_off;
	ck->log_head_seq = head_seq;
	ck->orphan_head = fs->orphan_head;
	for (unsigned t = 0; t < fs->sh.ntiers; t++)
		ck->free_blocks += shared_tier_free(&fs->sh, t);
	ck->free_inodes = alloc_free_count(fs->sh.ialloc);
	ck->ops_digested = fs->sh.ckpt.ops_digested + (head_seq - log_head_seq(fs->log));
	ck->directories = fs->directories;
}

static void announce(struct cairn_fs *fs, int rc)
{
	fs_note_failure(fs, rc);
	pthread_mutex_lock(&fs->dstate_lock);
	fs->checkpoint_gen++;
	fs->digest_error = rc;
	pthread_cond_broadcast(&fs->dstate_cond);
	pthread_mutex_unlock(&fs->dstate_lock);
}

/* A medium that fails is not a full volume: writers waiting for this
 * checkpoint get EIO, and the sentence naming the part and the offset goes
 * to stderr (once: a failing medium fails every retry) and to whoever
 * asks: unmount, the FUSE daemon's log. */
void fs_note_failure(struct cairn_fs *fs, int rc)
{
	char msg[sizeof(fs->failure)];
	if (rc != -EIO || !volume_failure(&fs->vol, msg, sizeof(msg)))
		return;
	pthread_mutex_lock(&fs->dstate_lock);
	memcpy(fs->failure, msg, sizeof(msg));
	int said = fs->failure_said;
	fs->failure_said = 1;
	pthread_mutex_unlock(&fs->dstate_lock);
	if (!said)
		fprintf(stderr, "cairn: %s: %s (calls that wait for a digest fail with EIO)\n",
		        fs->vol.dir, msg);
}

int fs_failure(struct cairn_fs *fs, char *buf, size_t len)
{
	pthread_mutex_lock(&fs->dstate_lock);
	int any = fs->failure[0] != 0;
	if (any)
		snprintf(buf, len, "%s", fs->failure);
	pthread_mutex_unlock(&fs->dstate_lock);
	return any;
}

int fs_checkpoint(struct cairn_fs *fs, int locked)
{
	pthread_mutex_lock(&fs->digest_lock);
	/* A failed volume's cached state may not be whole: none of it goes
	 * to the media. */
	if (__atomic_load_n(&fs->failed, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&fs->digest_lock);
		return -EIO;
	}
	fs->digest_gen++;
	if (!locked) {
		digest_ahead(fs);
		fs_lock_exclusive(fs);
	}
	uint64_t head_off = log_tail_off(fs->log), head_seq = log_tail_seq(fs->log);
	int rc = log_commit_all(fs->log);
	/* The clients' progress covers the OP_CWRITE copies this checkpoint
	 * digests: it must be durable before their records leave the log. */
	if (!rc)
		rc = clients_persist_progress(fs);
	if (!rc)
		rc = digest_all_data(fs);
	struct cache_snapshot snap = {0};
	struct fs_checkpoint ck;
	fill_checkpoint(fs, &ck, head_off, head_seq);
	if (!rc)
		rc = cache_snapshot_dirty(fs->sh.cache, &snap);
	if (!rc)
		rc = shared_seal_frees(&fs->sh); /* the frees this checkpoint makes durable */
	if (!locked)
		pthread_rwlock_unlock(&fs->lock);

	if (!rc)
		rc = shared_commit(&fs->sh, &snap, &ck);

	if (!locked)
		fs_lock_exclusive(fs);
	if (rc) {
		cache_snapshot_restore(fs->sh.cache, &snap);
	} else {
		cache_snapshot_commit(fs->sh.cache, &snap); /* the blocks are home: unpin */
		shared_release_frees(&fs->sh);
		drop_digested(fs, head_seq);
		log_reclaim(fs->log, head_off, head_seq);
		fs->stats.checkpoints++;
	}
	/* The next record looks at the threshold again (a failed checkpoint
	 * is asked for again then). */
	atomic_store(&fs->digest_due, DIGEST_NOT_DUE);
	if (!locked)
		pthread_rwlock_unlock(&fs->lock);
	cache_snapshot_free(&snap);
	pthread_mutex_unlock(&fs->digest_lock);
	announce(fs, rc);
	return rc;
}

/* ---- the digest thread -------------------------------------------------- */

void fs_digest_kick(struct cairn_fs *fs)
{
	pthread_mutex_lock(&fs->dstate_lock);
	fs->digest_requested = 1;
	pthread_cond_broadcast(&fs->dstate_cond);
	pthread_mutex_unlock(&fs->dstate_lock);
}

int fs_digest_now(struct cairn_fs *fs)
{
	if (fs->read_only)
		return 0;
	if (fs->digest_thread_running)
		return fs_checkpoint(fs, 0);
	fs_lock_exclusive(fs);
	int rc = fs_checkpoint(fs, 1);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int fs_digest_wait(struct cairn_fs *fs)
{
	fs->stats.log_waits++;
	if (!fs->digest_thread_running)
		return fs_checkpoint(fs, 1);
	pthread_mutex_lock(&fs->dstate_lock);
	uint64_t gen = fs->checkpoint_gen;
	fs->digest_requested = 1;
	pthread_cond_broadcast(&fs->dstate_cond);
	pthread_rwlock_unlock(&fs->lock);
	while (fs->checkpoint_gen == gen && !fs->digest_stop)
		pthread_cond_wait(&fs->dstate_cond, &fs->dstate_lock);
	int rc = fs->digest_error;
	pthread_mutex_unlock(&fs->dstate_lock);
	fs_lock_exclusive(fs);
	return rc;
}

#define IDLE_DIGEST_S 5

/* Every IDLE_DIGEST_S seconds without a request, records still in the log
 * are digested: freed space and the last writes then reach the shared area
 * without waiting for the log to fill. */
static int idle_work(struct cairn_fs *fs)
{
	pthread_rwlock_rdlock(&fs->lock);
	pthread_mutex_lock(&fs->log_lock); /* the tail moves under it too */
	int work = log_used(fs->log) > 0;
	pthread_mutex_unlock(&fs->log_lock);
	pthread_rwlock_unlock(&fs->lock);
	return work;
}

void fs_migrate_kick(struct cairn_fs *fs)
{
	pthread_mutex_lock(&fs->dstate_lock);
	fs->migrate_requested = 1;
	pthread_cond_broadcast(&fs->dstate_cond);
	pthread_mutex_unlock(&fs->dstate_lock);
}

/* After each checkpoint, and when asked (hot data to promote), the digest
 * thread also migrates: a digest is what fills the fast tier. */
static void migrate_if_needed(struct cairn_fs *fs, int asked)
{
	if (fs->sh.ntiers < 2)
		return;
	pthread_rwlock_rdlock(&fs->lock);
	int needed = asked || migrate_needed(fs);
	pthread_rwlock_unlock(&fs->lock);
	if (needed)
		fs_note_failure(fs, migrate_run(fs, 0));
}

static void *digest_main(void *arg)
{
	struct cairn_fs *fs = arg;
	pthread_mutex_lock(&fs->dstate_lock);
	while (!fs->digest_stop) {
		if (!fs->digest_requested && !fs->migrate_requested) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += IDLE_DIGEST_S;
			int rc = pthread_cond_timedwait(&fs->dstate_cond, &fs->dstate_lock, &until);
			if (rc != ETIMEDOUT || fs->digest_stop)
				continue;
			pthread_mutex_unlock(&fs->dstate_lock);
			int work = idle_work(fs);
			pthread_mutex_lock(&fs->dstate_lock);
			if (!work) {
				pthread_mutex_unlock(&fs->dstate_lock);
				migrate_if_needed(fs, 0);
				pthread_mutex_lock(&fs->dstate_lock);
				continue;
			}
			fs->digest_requested = 1;
		}
		int digest = fs->digest_requested, asked = fs->migrate_requested;
		fs->digest_requested = fs->migrate_requested = 0;
		pthread_mutex_unlock(&fs->dstate_lock);
		if (digest)
			fs_checkpoint(fs, 0);
		migrate_if_needed(fs, asked);
		pthread_mutex_lock(&fs->dstate_lock);
	}
	pthread_mutex_unlock(&fs->dstate_lock);
	return NULL;
}

/* Batch mode: records become durable at least every batch_ms. */
static void *batch_main(void *arg)
{
	struct cairn_fs *fs = arg;
	pthread_mutex_lock(&fs->dstate_lock);
	while (!fs->digest_stop) {
		/* Read each time: cairn_tune may change it (under dstate_lock). */
		int ms = fs_opt_get(&fs->opts.batch_ms);
		struct timespec period = {ms / 1000, (ms % 1000) * 1000000L};
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += period.tv_sec;
		until.tv_nsec += period.tv_nsec;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fs->dstate_cond, &fs->dstate_lock, &until);
		pthread_mutex_unlock(&fs->dstate_lock);
		log_commit_all(fs->log);
		pthread_mutex_lock(&fs->dstate_lock);
	}
	pthread_mutex_unlock(&fs->dstate_lock);
	return NULL;
}

void fs_set_batch_interval(struct cairn_fs *fs, int batch_ms)
{
	pthread_mutex_lock(&fs->dstate_lock);
	/* A writer tests it for 0 (sync mode) without the lock; it stays
	 * non-zero here. */
	fs_opt_set(&fs->opts.batch_ms, batch_ms);
	pthread_cond_broadcast(&fs->dstate_cond); /* the batch thread starts a new wait */
	pthread_mutex_unlock(&fs->dstate_lock);
}

int digest_start(struct cairn_fs *fs)
{
	if (!fs->opts.no_digest_thread) {
		if (pthread_create(&fs->digest_thread, NULL, digest_main, fs))
			return -EAGAIN;
		fs->digest_thread_running = 1;
	}
	if (fs->opts.batch_ms > 0) {
		if (pthread_create(&fs->batch_thread, NULL, batch_main, fs))
			return -EAGAIN;
		fs->batch_thread_running = 1;
	}
	return 0;
}

void digest_stop(struct cairn_fs *fs)
{
	pthread_mutex_lock(&fs->dstate_lock);
	fs->digest_stop = 1;
	pthread_cond_broadcast(&fs->dstate_cond);
	pthread_mutex_unlock(&fs->dstate_lock);
	if (fs->digest_thread_running)
		pthread_join(fs->digest_thread, NULL);
	if (fs->batch_thread_running)
		pthread_join(fs->batch_thread, NULL);
	fs->digest_thread_running = fs->batch_thread_running = 0;
}
