/*
 * ops_common.c - the path every mutating call takes: make room in the log,
 * append the record, apply it, and (after the lock is dropped) wait until
 * it is durable.  Also decides when the digest must run.
 *
 * Owns: the begin/append/finish protocol.  May call: log, apply, digest.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "fs/cache.h"
#include "libfs/fs_internal.h"
#include "libfs/oprec.h"
#include "log/log_format.h"

int64_t ts_to_ns(const struct timespec *ts)
{
	const int64_t max_s = INT64_MAX / 1000000000 - 1;
	if (ts->tv_sec > max_s)
		return INT64_MAX;
	if (ts->tv_sec < -max_s)
		return INT64_MIN;
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_to_ns(&ts);
}

/* Metadata blocks the next checkpoint will write, estimated from above:
 * the dirty blocks, plus an inode block, an extent path and a bitmap block
 * for every file with undigested data, plus extent leaves for the pieces
 * (a leaf holds about 170 extents, half that after a split). */
uint64_t checkpoint_cost(struct cairn_fs *fs)
{
	/* Files with data are at most the vnodes and at most the pieces
	 * (vnodes also stand for open or pinned inodes without data). */
	uint64_t files = fs->vcount < fs->pieces.total ? fs->vcount : fs->pieces.total;
	return cache_dirty_count(fs->sh.cache) + 4 * files + fs->pieces.total / 64 + 16;
}

static int digest_threshold_reached(struct cairn_fs *fs)
{
	int pct = fs->opts.digest_threshold ? fs->opts.digest_threshold : 50;
	uint64_t cap = shared_journal_capacity(&fs->sh);
	return log_used(fs->log) * 100 >= log_capacity(fs->log) * (uint64_t)pct ||
	       checkpoint_cost(fs) * 2 >= cap;
}

/* After each record applied, under the lock: whether the log has reached
 * the threshold (DIGEST_DUE), unless a digest was already asked for. */
static void note_digest_due(struct cairn_fs *fs)
{
	if (!digest_threshold_reached(fs)) {
		/* Stored only when it changes: a store on every record would
		 * take the line from every other core that reads it. */
		if (atomic_load(&fs->digest_due) != DIGEST_NOT_DUE)
			atomic_store(&fs->digest_due, DIGEST_NOT_DUE);
		return;
	}
	int expect = DIGEST_NOT_DUE;
	atomic_compare_exchange_strong(&fs->digest_due, &expect, DIGEST_DUE);
}

/* Whether the log and the journal have room for the record (see op_begin). */
static int log_has_room(struct cairn_fs *fs, uint64_t payload_len)
{
	uint64_t cap = shared_journal_capacity(&fs->sh);
	return log_room(fs->log, payload_len) && checkpoint_cost(fs) * 4 < cap * 3;
}

int op_has_room(struct cairn_fs *fs, uint64_t payload_len, uint64_t blocks, enum space_class cls)
{
	return log_has_room(fs, payload_len) && space_check(fs, cls, blocks) == 0;
}

int op_begin(struct cairn_fs *fs, uint64_t payload_len, uint64_t blocks, enum space_class cls,
             int *attempt)
{
	if (fs->read_only)
		return -EROFS;
	if (fs->failed)
		return -EIO;
	int room = log_has_room(fs, payload_len);
	int space = space_check(fs, cls, blocks) == 0;
	if (room && space)
		return 0;
	/* A digest frees the log and turns reservations into exact
	 * allocations; if space is still short after one, it is ENOSPC. */
	if ((room && *attempt >= 1) || *attempt >= 4)
		return -ENOSPC;
	(*attempt)++;
	int rc = fs_digest_wait(fs);
	if (rc && rc != -ENOSPC)
		return rc;
	return -EAGAIN;
}

/* Applies the record just logged at pos; see op_log_apply. */
static int apply_logged(struct cairn_fs *fs, uint16_t type, const uint64_t args[3],
                        const struct iovec *iov, int iovcnt, const struct log_pos *pos,
                        uint64_t *seq)
{
	struct log_rec_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.seq = pos->seq;
	h.payload_len = 0;
	for (int i = 0; i < iovcnt; i++)
		h.payload_len += (uint32_t)iov[i].iov_len;
	if (args)
		memcpy(h.args, args, sizeof(h.args));
	int rc = apply_record(fs, &h, iovcnt ? iov[0].iov_base : NULL, pos->payload_off);
	fs->apply_resv = 0;
	fs->stats.ops_logged++;
	note_digest_due(fs);
	if (rc) {
		/* The record is in the log but the state did not take it: stop
		 * accepting changes; a remount replays and reports. */
		fs->failed = 1;
		return -EIO;
	}
	*seq = pos->seq;
	return 0;
}

int op_log_apply(struct cairn_fs *fs, uint16_t type, const uint64_t args[3],
                 const struct iovec *iov, int iovcnt, uint64_t *seq)
{
	struct log_pos pos;
	int rc = log_append(fs->log, type, args, iov, iovcnt, &pos);
	return rc ? rc : apply_logged(fs, type, args, iov, iovcnt, &pos, seq);
}

int op_log_reserve_apply(struct cairn_fs *fs, uint16_t type, const uint64_t args[3],
                         const struct iovec *iov, int iovcnt, uint64_t *seq, struct log_fill *fill)
{
	struct log_pos pos;
	int rc = log_reserve(fs->log, type, args, iov, iovcnt, &pos, fill);
	return rc ? rc : apply_logged(fs, type, args, iov, iovcnt, &pos, seq);
}

int fs_reserve_write_beside(struct cairn_fs *fs, const uint64_t args[3], const struct iovec *iov,
                            uint64_t blocks, struct log_pos *pos, struct log_fill *fill)
{
	pthread_mutex_lock(&fs->log_lock);
	int rc = -EAGAIN;
	if (op_has_room(fs, iov->iov_len, blocks, SPACE_DATA))
		rc = log_reserve(fs->log, OP_WRITE, args, iov, 1, pos, fill);
	if (!rc) {
		fs->reserved_blocks += blocks;
		fs->stats.ops_logged++;
		note_digest_due(fs);
	}
	pthread_mutex_unlock(&fs->log_lock);
	return rc;
}

void fs_lock_exclusive(struct cairn_fs *fs)
{
	atomic_fetch_add(&fs->exclusive_wanted, 1);
	pthread_rwlock_wrlock(&fs->lock);
	atomic_fetch_sub(&fs->exclusive_wanted, 1);
}

int op_finish(struct cairn_fs *fs, uint64_t seq)
{
	int rc = 0;
	if (fs_opt_get(&fs->opts.batch_ms) == 0) {
		if (fs->before_commit)
			fs->before_commit(fs);
		rc = log_commit(fs->log, seq);
		fs_note_failure(fs, rc);
	}
	fs_digest_if_due(fs);
	return rc;
}

/* Reads the state the records left rather than the log under the lock:
 * this runs after every call that logs, and a lock taken here by every
 * writer made writers of different files queue for each other.  One
 * caller asks (DIGEST_ASKED), the checkpoint clears it. */
void fs_digest_if_due(struct cairn_fs *fs)
{
	int expect = DIGEST_DUE;
	/* Looked at first: a failed exchange still takes the line from the
	 * other cores, and writers beside each other came here in turn. */
	if (atomic_load(&fs->digest_due) != DIGEST_DUE ||
	    !atomic_compare_exchange_strong(&fs->digest_due, &expect, DIGEST_ASKED))
		return;
	if (!fs->opts.no_digest_thread) {
		fs_digest_kick(fs);
		return;
	}
	fs_lock_exclusive(fs);
	if (digest_threshold_reached(fs)) {
		int drc = fs_checkpoint(fs, 1);
		if (drc && drc != -ENOSPC)
			fs->failed = 1;
	}
	atomic_store(&fs->digest_due, DIGEST_NOT_DUE);
	pthread_rwlock_unlock(&fs->lock);
}
