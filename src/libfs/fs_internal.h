/*
 * fs_internal.h - the state of a mounted volume, shared by the libfs files.
 *
 * Owns: struct cairn_fs, vnodes and open files.
 * May call: everything below libfs (log, fs, digest, volume, media).
 *
 * Concurrency: one readers-writer lock, fs->lock, guards the in-memory
 * state (the metadata cache's bytes, vnodes and their indexes, the log's
 * tail).  Calls that change the volume take it exclusively for validate +
 * append + apply, and wait for durability after releasing it, so that
 * commits of concurrent threads share a fence (group commit).
 */
#ifndef CAIRN_LIBFS_FS_INTERNAL_H
#define CAIRN_LIBFS_FS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cairn.h"
#include "client/client.h"
#include "fs/shared.h"
#include "libfs/dindex.h"
#include "log/log.h"
#include "proto/ctl.h"
#include "volume/volume.h"

#define MAX_FILE_SIZE (1ull << 52) /* 4 PiB: logical blocks stay below 2^40 */

/* An inode that is open or has undigested data. */
struct vnode {
	uint64_t ino;
	int64_t open_count; /* open files, plus references a front end holds */
	/* The file's lock: a write taken beside others (files.c, "Writes
	 * beside each other") changes data and the inode's size and times
	 * under it and the volume lock held shared; whoever reads them under
	 * the shared lock takes it too. */
	pthread_mutex_t lock;
	struct dindex data;
	struct vnode *hnext;
	/* The inode's cache buffer, held from the first write while the
	 * vnode is open (vnode_inode): a write then finds its inode without
	 * the cache's mutex, counters and lists, lines that every other
	 * writer of the volume stores to as well. */
	struct iref inode;
};

/* An open file description.  fs->files[fd] holds one reference and every
 * call using the fd holds another while it runs, so a close racing a read
 * only takes the fd number away: the file, and the vnode open_count it
 * holds, go when the last reference is dropped (files.c). */
struct open_file {
	struct vnode *vn; /* fixed for the file's life */
	int flags;        /* O_ACCMODE | O_APPEND */
	atomic_int refs;
	pthread_mutex_t pos_lock;
	uint64_t pos;
};

struct fs_stats {
	uint64_t ops_logged;
	uint64_t client_records; /* clients' local writes applied (clients.c) */
	uint64_t checkpoints;
	uint64_t bytes_digested;
	uint64_t log_waits;
	/* migration, per tier: blocks that arrived from above (demoted into
	 * it) and from below (promoted into it), and that left it */
	uint64_t tier_in_down[FS_MAX_TIERS + 1], tier_in_up[FS_MAX_TIERS + 1];
	uint64_t tier_out[FS_MAX_TIERS + 1];
	uint64_t migrations;  /* batches committed */
	uint64_t migrate_ns;  /* time spent copying and switching */
	uint64_t data_errors; /* blocks found not to match their checksums */
};

/* A range of a file that was read from a capacity tier (heat.c): at most
 * one aligned window of PROMOTE_WINDOW blocks (1 MiB). */
#define PROMOTE_TABLE 64
#define PROMOTE_WINDOW 256u
struct promote_entry {
	uint64_t ino, lblk, len;
	uint32_t hits;     /* passes over the range: one per reader, not per read */
	uint64_t last;     /* promote_clock at the last read */
	uint64_t next_off; /* file byte after the last read: where a scan goes on */
	uint64_t seen[PROMOTE_WINDOW / 64]; /* blocks read in the current pass */
};

struct cairn_fs {
	/* A handle made by cairn_attach: every call goes to the daemon
	 * through this, and nothing below is used. */
	struct client *client;
	/* Private logs of the clients this daemon serves (clients.c). */
	struct clients *clients;
	struct volume vol;
	struct log *log;
	struct shared sh;
	struct cairn_mount_opts opts;
	int read_only;
	int failed; /* an applied record failed: no more changes */

	pthread_rwlock_t lock;
	/* Callers waiting for fs->lock held exclusively (fs_lock_exclusive):
	 * writes that would take it shared step back for them meanwhile. */
	atomic_int exclusive_wanted;
	/* With fs->lock held shared, the log's tail (log_reserve),
	 * reserved_blocks and the count of logged records are changed under
	 * this (files.c, "Writes beside each other"). */
	pthread_mutex_t log_lock;
	/* The log fills records after reserving them (log_fills_later, set
	 * at mount): writes may run beside each other.  Kept here because the
	 * log's own fields share lines that every writer stores to. */
	int writes_beside;

	/* vnodes: hash table by inode number */
	struct vnode **vtab;
	size_t vtab_size, vcount;
	struct piece_pool pieces; /* undigested pieces over all vnodes */

	/* open files: files[fd] is NULL when fd is free.  fd_lock guards the
	 * array and is innermost: no other lock is taken while it is held. */
	pthread_mutex_t fd_lock;
	struct open_file **files;
	int nfiles;

	/* space the undigested writes will need in the shared area */
	uint64_t reserved_blocks;
	uint64_t apply_resv; /* reservation handed to the next applied write */
	uint64_t orphan_head;
	uint64_t ops_digested;
	uint64_t directories; /* in use, kept by apply and written by each checkpoint */

	/* digest */
	pthread_mutex_t digest_lock; /* one checkpoint at a time */
	pthread_mutex_t tier_lock;   /* one tier change (add, remove, grow) or manifest
	                              * rewrite at a time; taken before the others */
	pthread_mutex_t dstate_lock;
	pthread_cond_t dstate_cond;
	int digest_requested, digest_stop;
	uint64_t checkpoint_gen; /* bumped after each checkpoint */
	uint64_t digest_gen;     /* bumped as each checkpoint starts (piece.stored) */
	atomic_int digest_due;   /* DIGEST_*: fs_digest_if_due reads it unlocked */
	/* Set under fs->lock (exclusive) while a pass of the digest ahead has
	 * mapped new blocks whose bytes it stores after letting the lock go;
	 * cleared once they are stored (digest.c, "Stores after the lock"). */
	atomic_int digest_storing;
	int digest_error;
	pthread_t digest_thread;
	int digest_thread_running;
	pthread_t batch_thread;
	int batch_thread_running;
	/* Crash tests: runs between a sync-mode call's append (the lock
	 * already dropped) and its commit, where the digest thread may run. */
	void (*before_commit)(struct cairn_fs *fs);
	/* ... and between a write's reservation in the log (applied, the lock
	 * dropped) and the copy of its bytes (log_fill). */
	void (*before_fill)(struct cairn_fs *fs);
	/* Tests: blocks per pass of the digest ahead of a checkpoint (0: the
	 * default), and a call between two passes (the lock not held). */
	unsigned digest_pass_blocks;
	void (*between_passes)(struct cairn_fs *fs);
	/* The latest medium failure that stopped a checkpoint or a migration
	 * (volume_failure's sentence), under dstate_lock; said on stderr the
	 * first time. */
	char failure[512];
	int failure_said;

	struct fs_stats stats;
	/* Records before this sequence number were replayed at mount: a digest
	 * before the crash may have rewritten their blocks in place without
	 * the checksums, or the reverse (docs/FORMAT.md, "Data checksums"). */
	uint64_t recovered_until;

	/* tiers: coldness and promotion (heat.c), migration (digest) */
	int64_t *heat; /* per inode: ns since the epoch of the last read */
	uint64_t heat_count;
	pthread_mutex_t promote_lock;
	struct promote_entry promote[PROMOTE_TABLE];
	uint64_t promote_clock;
	int migrate_requested;       /* under dstate_lock */
	int64_t migrate_stuck_until; /* no automatic demotion before (ns) */
};

/* ---- data damage (data.c) ---- */
/* Reports a block that failed its checksum: lblk of inode ino, at pblk,
 * found while `during` ("read", "digest", "migration", "scrub"). */
void data_report_damage(struct cairn_fs *fs, uint64_t ino, uint64_t lblk, uint64_t pblk,
                        const char *during);

/* fs->lock held exclusively; writes taken under the shared lock step
 * back while a caller waits for it (a readers-first lock would otherwise
 * keep it waiting as long as writes overlap). */
void fs_lock_exclusive(struct cairn_fs *fs);

/* ---- vnodes (vnode.c) ---- */
struct vnode *vnode_find(struct cairn_fs *fs, uint64_t ino);
struct vnode *vnode_get(struct cairn_fs *fs, uint64_t ino); /* creates */
void vnode_maybe_free(struct cairn_fs *fs, struct vnode *vn);
/* The inode of an open vnode, through the buffer it holds (taken at the
 * first call, given back by vnode_maybe_free once the vnode is no longer
 * open): 0 and *r, not to be put, or -errno.  Caller holds fs->lock
 * exclusively, or shared with vn->lock. */
int vnode_inode(struct cairn_fs *fs, struct vnode *vn, struct iref *r);
/* Gives back the inode's buffer held by vn, if it holds one. */
void vnode_let_go(struct cairn_fs *fs, struct vnode *vn);
void vnode_destroy_all(struct cairn_fs *fs);
/* For a reader under fs->lock held shared: ino's vnode, if it has one,
 * with its lock held (writes beside each other change the file's index,
 * size and times under it), or NULL.  vnode_unlock(NULL) does nothing. */
struct vnode *vnode_lock_ino(struct cairn_fs *fs, uint64_t ino);
void vnode_unlock(struct vnode *vn);
int vnode_is_open(struct cairn_fs *fs, uint64_t ino);

/* ---- apply (apply.c): one record to the in-memory state ---- */
struct log_rec_hdr;
int apply_record(struct cairn_fs *fs, const struct log_rec_hdr *h, const void *payload,
                 uint64_t payload_off);
/* A write's piece (pos: its record's seq and payload) put into vn's index
 * and the inode's size and times set, r being vn's inode: what applying an
 * OP_WRITE does once its file is found.  resv: blocks reserved for it;
 * *released: those of the pieces it replaced.  Caller holds fs->lock
 * exclusively, or shared with vn->lock. */
struct log_pos;
int apply_write_to(struct cairn_fs *fs, struct vnode *vn, struct iref *r, const struct log_pos *pos,
                   uint64_t off, uint64_t len, int64_t time_ns, uint64_t resv, uint64_t *released);
/* Frees an inode's blocks and number (nlink 0 and not open). */
int apply_free_inode(struct cairn_fs *fs, uint64_t ino);
int orphan_add(struct cairn_fs *fs, struct iref *r);
int orphan_remove(struct cairn_fs *fs, uint64_t ino);
int orphans_release_all(struct cairn_fs *fs);

/* ---- space (space.c): checked before a record is logged ---- */
/* What a call may take from the shared area. */
enum space_class {
	SPACE_NONE,     /* allocates nothing: chmod, utimens, atime, unlink, rmdir,
	                 * xattr removal, the last close of an unlinked file */
	SPACE_FREES,    /* gives space back but may insert once: rename, truncate,
	                 * hole punching; may use the reserve */
	SPACE_NAME,     /* adds a name or an xattr (plus `blocks` of data: a symlink) */
	SPACE_DATA,     /* writes `blocks` new data blocks (0 for an overwrite) */
	SPACE_PREALLOC, /* fallocate: takes `blocks` data blocks and their
	                 * extent-map nodes when its record is applied */
};
/* 0 if a call of class cls needing `blocks` new data blocks fits, else
 * -ENOSPC. */
int space_check(struct cairn_fs *fs, enum space_class cls, uint64_t blocks);
/* Whether `nodes` more tree nodes fit beside what the log already needs,
 * the reserve included (migration, which gives the fast tier space back). */
int space_nodes_fit(struct cairn_fs *fs, uint64_t nodes);
/* The same, leaving the reserve alone (the digest splitting an unwritten
 * extent, which has another way: writing zeros). */
int space_nodes_spare(struct cairn_fs *fs, uint64_t nodes);
/* Allocates a run of at most `want` blocks for new file data (near hint)
 * on the tier the placement rule picks; 0 or -ENOSPC. */
int space_place_data(struct cairn_fs *fs, uint64_t hint, uint64_t want, uint64_t *pblk,
                     uint64_t *got);
/* Free blocks of tier t that file data may take. */
uint64_t tier_data_free(struct cairn_fs *fs, unsigned t);
/* Blocks a new write could still take (what statfs calls available). */
uint64_t space_available(struct cairn_fs *fs);

/* ---- log append for an operation (ops_common.c) ---- */
/* Before appending a change: makes sure the log (and the journal) has room
 * for a record of payload_len bytes and the shared area has room for what
 * a call of class cls that needs `blocks` new data blocks will take
 * (space.c).  If not, it waits for a digest - which drops and retakes the
 * lock - and returns -EAGAIN: the caller starts over, validation included.
 * *attempt (0 at the start of the call) bounds the retries.
 * Returns 0, -EAGAIN, -EROFS, -EIO or -ENOSPC. */
enum space_class;
int op_begin(struct cairn_fs *fs, uint64_t payload_len, uint64_t blocks, enum space_class cls,
             int *attempt);
/* Whether op_begin would return 0 at once, without waiting for a digest. */
int op_has_room(struct cairn_fs *fs, uint64_t payload_len, uint64_t blocks, enum space_class cls);
/* Appends, applies, and returns the record's seq.  Called with the lock held
 * exclusively, after op_begin and validation. */
int op_log_apply(struct cairn_fs *fs, uint16_t type, const uint64_t args[3],
                 const struct iovec *iov, int iovcnt, uint64_t *seq);
/* op_log_apply for a record whose payload the caller writes after it
 * lets go of the lock, with log_fill (the copy and its checksum then run
 * beside other threads' calls).  The record is applied at once: readers of
 * its bytes wait for the fill (log_await). */
int op_log_reserve_apply(struct cairn_fs *fs, uint16_t type, const uint64_t args[3],
                         const struct iovec *iov, int iovcnt, uint64_t *seq, struct log_fill *fill);
/* The log half of a write taken beside others (files.c, "Writes beside
 * each other"), with fs->lock held shared: under fs->log_lock, reserves
 * an OP_WRITE record for iov (one piece) and the blocks it needs in the
 * shared area, if the log and the shared area have room without a
 * digest.  0 and *pos, -EAGAIN when they have not (the write then takes
 * the lock exclusively), or the log's error. */
int fs_reserve_write_beside(struct cairn_fs *fs, const uint64_t args[3], const struct iovec *iov,
                            uint64_t blocks, struct log_pos *pos, struct log_fill *fill);
/* Metadata blocks the next checkpoint will write, estimated from above
 * (it must fit in the journal). */
uint64_t checkpoint_cost(struct cairn_fs *fs);
/* After unlocking: wait for durability (sync mode) and maybe start digest. */
int op_finish(struct cairn_fs *fs, uint64_t seq);
int64_t now_ns(void);
/* A time as nanoseconds since the epoch, the inode's unit, held to what
 * 64 bits of them span (1677 to 2262), as a file system clamps a time it
 * cannot store: 2300-01-01 came back as 1715 (the product overflowed). */
int64_t ts_to_ns(const struct timespec *ts);

/* ---- path walk (path.c) ---- */
struct lookup {
	uint64_t parent; /* directory holding the last component */
	uint64_t ino;    /* 0 if the last component does not exist */
	uint8_t type;    /* DT_* of ino */
	char name[256];  /* last component */
	size_t namelen;
	int trailing_slash;
};
#define LOOKUP_FOLLOW 1 /* follow a symlink in the last component */
#define LOOKUP_PARENT 2 /* the last component may be missing */
int path_lookup(struct cairn_fs *fs, const char *path, int flags, struct lookup *out);
/* The entry name in directory dir (no symlink is followed).  With
 * LOOKUP_PARENT a missing entry gives ino 0 instead of -ENOENT. */
int child_lookup(struct cairn_fs *fs, uint64_t dir, const char *name, int flags,
                 struct lookup *out);
/* The inode itself, as if found by name (for calls given an inode). */
int ino_lookup(struct cairn_fs *fs, uint64_t ino, struct lookup *out);

/* A file named by path (native API), by directory and name, or by inode
 * number (icalls.h).  Exactly one of path, name or ino is set. */
struct target {
	const char *path;
	uint64_t dir;
	const char *name;
	uint64_t ino;
};
int target_lookup(struct cairn_fs *fs, const struct target *t, int flags, struct lookup *out);
int dir_lookup_name(struct cairn_fs *fs, uint64_t dir, const char *name, size_t len, uint64_t *ino,
                    uint8_t *type);

/* ---- reading file data (data.c) ---- */
ssize_t data_read(struct cairn_fs *fs, uint64_t ino, void *buf, size_t count, uint64_t off);
/* SEEK_DATA (want_data) / SEEK_HOLE from off: 0 and *out, or -ENXIO. */
int data_seek(struct cairn_fs *fs, uint64_t ino, uint64_t off, int want_data, uint64_t *out);
/* Blocks [off, off+len) will newly need in the shared area. */
int data_blocks_needed(struct cairn_fs *fs, struct fs_inode *i, struct vnode *vn, uint64_t off,
                       uint64_t len, uint64_t *need);

/* ---- files.c: shared by the name calls ---- */
int fill_stat(struct cairn_fs *fs, uint64_t ino, struct stat *st);
/* Whether a directory still has a name (a removed one stays an orphan while
 * open, and takes no new entries). */
int dir_is_linked(struct cairn_fs *fs, uint64_t dir);
/* Creates a node (file, dir, symlink, fifo...) named name in parent. */
struct icaller;
/* owner: the caller's uid/gid, or NULL for the process's own. */
int make_node(struct cairn_fs *fs, const struct icaller *owner, uint64_t parent, const char *name,
              size_t namelen, uint32_t mode, uint64_t rdev, const char *target, size_t targetlen,
              uint64_t *ino, uint64_t *seq);
int truncate_ino(struct cairn_fs *fs, uint64_t ino, off_t length);
/* Opens (creating with O_CREAT) the file t names; returns an fd or -errno. */
int open_target(struct cairn_fs *fs, const struct target *t, const struct icaller *owner, int flags,
                mode_t mode, uint64_t *ino);
struct op_setattr;
/* Appends a SETATTR record for ino (fills p->ino and the ctime) and waits
 * for durability.  Takes the lock itself.  Returns 0 or -errno. */
int setattr_ino(struct cairn_fs *fs, uint64_t ino, struct op_setattr *p);

/* ---- names.c: the name-changing calls, by target; 0 or -errno ---- */
int names_create(struct cairn_fs *fs, const struct target *t, const struct icaller *owner,
                 uint32_t mode, uint64_t rdev, const char *symlink_target, uint64_t *ino);
int names_unlink(struct cairn_fs *fs, const struct target *t);
int names_rmdir(struct cairn_fs *fs, const struct target *t);
int names_link(struct cairn_fs *fs, const struct target *from, const struct target *to);
int names_rename(struct cairn_fs *fs, const struct target *from, const struct target *to,
                 unsigned flags);

/* ---- heat.c: what migration needs to know of use ---- */
struct extent;
int heat_init(struct cairn_fs *fs);
void heat_destroy(struct cairn_fs *fs);
int64_t heat_clock_ns(void);
void heat_touch(struct cairn_fs *fs, uint64_t ino); /* a read */
/* When the file was last read or written (ns since the epoch). */
int64_t heat_of(struct cairn_fs *fs, uint64_t ino, const struct fs_inode *i);
/* A read of file bytes [off, off+len), all in extent e, which lies on a
 * capacity tier. */
void heat_note_capacity_read(struct cairn_fs *fs, uint64_t ino, const struct extent *e,
                             uint64_t off, uint64_t len);
/* Moves up to max ranges that are ready for promotion into out. */
int heat_take_ready(struct cairn_fs *fs, struct promote_entry *out, int max);

/* ---- digest (digest/digest.h) is called through these ---- */
int fs_checkpoint(struct cairn_fs *fs, int locked);
/* A digest of everything in the log now, taking the locks itself (none
 * held): for calls that judge what the shared area holds (a tier's
 * evacuation), which must not find there blocks that writes still in the
 * log replaced.  0 on a read-only volume. */
int fs_digest_now(struct cairn_fs *fs);
enum { DIGEST_NOT_DUE, DIGEST_DUE, DIGEST_ASKED };
/* Starts a digest once the log has filled to its threshold: after each
 * call that logged, and after the clients' records are ingested. */
void fs_digest_if_due(struct cairn_fs *fs);
void fs_digest_kick(struct cairn_fs *fs);
int fs_digest_wait(struct cairn_fs *fs); /* called locked exclusively */
void fs_migrate_kick(struct cairn_fs *fs);
/* A checkpoint or a migration returned rc: when it is EIO because a medium
 * failed, keep what failed (fs->failure) and say it the first time. */
void fs_note_failure(struct cairn_fs *fs, int rc);
/* Copies fs->failure into buf; 0 when no medium failure was met. */
int fs_failure(struct cairn_fs *fs, char *buf, size_t len);
/* Calls fn for each regular file with data in the shared area, in inode
 * order; stops at fn's first non-zero result and returns it (files.c).
 * Migration and cairn stat scan the volume with it. */
int for_each_data_file(struct cairn_fs *fs,
                       int (*fn)(void *arg, uint64_t ino, const struct fs_inode *i), void *arg);

/* mount.c, for mkfs and cairn_tier_add: a capacity tier's name, path and
 * unit checked (tier k of the command, for messages; -EINVAL); the unit
 * its name suggests; a path made absolute against the working directory. */
struct cairn_tier_opts;
int tier_opts_check(const struct cairn_tier_opts *t, unsigned k);
uint32_t tier_default_unit(const char *name);
int path_absolute(char *out, const char *path);
/* tiers.c: at mount, what a crash left between the steps of a tier
 * change is finished (shared_open says what). */
int tiers_settle(struct cairn_fs *fs, char *err, size_t el);

/* The sentence cairn_last_error() gives this thread (mount.c). */
void fs_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The options cairn_tune may change while other threads read them (some
 * without fs->lock: migration, a capacity read noting heat, a writer
 * asking for sync mode): stored and loaded atomically. */
static inline int fs_opt_get(const int *field)
{
	return __atomic_load_n(field, __ATOMIC_RELAXED);
}
static inline void fs_opt_set(int *field, int v)
{
	__atomic_store_n(field, v, __ATOMIC_RELAXED);
}
/* tune.c: watermarks checked (1 <= low < high <= 100); -EINVAL and err. */
int tuning_check(int high, int low, char *err, size_t el);
/* digest.c: the batch thread's interval, changed while it runs. */
void fs_set_batch_interval(struct cairn_fs *fs, int batch_ms);

/* Whether fs is a mount this process inherited through fork: its
 * parent's, whose threads it lacks and whose log it would write over, so
 * every call of the API fails with EIO there (a client's handle fails
 * the same way in src/client). */
static inline int fs_inherited(const struct cairn_fs *fs)
{
	return fs && fs->vol.inherited;
}

/* errors as POSIX: set errno, return -1 */
static inline int fail(int neg_errno)
{
	extern int *__errno_location(void);
	*__errno_location() = -neg_errno;
	return -1;
}

#endif
