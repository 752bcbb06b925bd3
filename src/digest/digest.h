/*
 * digest.h - the digest: makes the shared area durable up to a point of
 * the log and frees the log before it.
 *
 * Owns: checkpoints (plan, data copy, journal commit, log reclaim) and the
 * background digest thread.
 * May call: libfs's in-memory state (vnodes, undigested-data index), fs
 * (extent, alloc, shared_commit), log.
 *
 * A checkpoint at log position P, taken under the file-system lock:
 *  1. makes the log durable up to P (records are the redo log);
 *  2. writes every undigested byte into data blocks of the shared area,
 *     allocating blocks and extending extent trees in the cache - data
 *     overwritten in the log is written once, and data of a file deleted
 *     before P is never written at all;
 *  3. snapshots the dirty metadata blocks; the lock is then released;
 *  4. shared_commit(): journal, fence, home, fence, new checkpoint slot
 *     naming P as the log head;
 *  5. retakes the lock, drops the index pieces before P and frees the log.
 * A crash before 4 completes leaves the old checkpoint, whose log head still
 * covers every record: recovery replays them (digest again).  A crash after
 * the journal commits is completed from the journal at mount.  Blocks
 * written in 2 are free in the durable state, or hold bytes its records
 * rewrite, or are set aside as unwritten there: those read as zeros
 * whatever they hold until a commit marks them written (2 writes data, or
 * zeros, into them before it marks them in the cache).
 *
 * The digest thread does most of step 2 before step 1, in short passes
 * that let writers in between (digest.c, digest_ahead): the lock is then
 * held through steps 1-3 only for what arrived during the last pass.
 *
 * fs_checkpoint(fs, locked = 0) takes the digest mutex and then the volume
 * lock (the digest thread, cairn_digest with a thread).  locked = 1 means
 * the caller already holds the volume lock exclusively; it is used only
 * when no digest thread runs (inline digests, mount, unmount), so the two
 * orders never meet.
 */
#ifndef CAIRN_DIGEST_H
#define CAIRN_DIGEST_H

struct cairn_fs;

int digest_start(struct cairn_fs *fs);
void digest_stop(struct cairn_fs *fs);

#endif
