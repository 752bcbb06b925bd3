/*
 * cairn.h - the native C API of cairn.
 *
 * POSIX-shaped calls on a cairn volume, for programs that link cairn
 * directly and skip the kernel.  Every call takes the mounted file system
 * first, returns -1 (or NULL) and sets errno on failure, exactly as the POSIX
 * call of the same name would.  Paths are absolute within the volume
 * ("/dir/file").  All calls are thread-safe.
 *
 * Bad arguments: a NULL fs is EINVAL (it is a handle, not memory the call
 * reads); a NULL path, name, or
 * result pointer is EFAULT, as the kernel answers (cairn_mkfs and
 * cairn_mount: EINVAL); a NULL buffer is EFAULT when the call has bytes to
 * move through it, and valid when the size is 0 (a write of nothing, a
 * getxattr or listxattr size query, a setxattr of an empty value).
 *
 * File descriptors: closing an fd while another thread uses it is safe.
 * The racing call either completes on the file or fails with EBADF; the
 * file is closed for good when the last such call returns.  As on Linux, a
 * closed fd number may be reused by the next open at once.
 *
 * Durability: in the default sync mode a mutating call is durable and ordered
 * when it returns.  In batch mode it becomes durable at the next
 * cairn_fsync()/cairn_sync() or within batch_ms milliseconds.  After a crash
 * the volume holds exactly a prefix of the operations in issue order.
 */
#ifndef CAIRN_H
#define CAIRN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cairn_fs cairn_fs;
typedef struct cairn_dir cairn_dir;

/* How a part of the volume persists its bytes. */
enum cairn_media {
	CAIRN_MEDIA_DEFAULT = 0, /* mkfs: file; mount: what the manifest says */
	CAIRN_MEDIA_PMEM = 1,    /* DAX mapping, libpmem flushes */
	CAIRN_MEDIA_FILE = 2,    /* ordinary file, fdatasync group commit */
	CAIRN_MEDIA_EMUL = 3,    /* DRAM (/dev/shm) treated exactly like pmem */
};

/* A capacity tier below the fast tier: file data only, reached with
 * pread/pwrite and fdatasync (the file medium), whatever `media` says. */
#define CAIRN_MAX_TIERS 6
struct cairn_tier_opts {
	const char *name; /* "ssd", "hdd", ...: 1 to 15 characters */
	const char *path; /* a file (created if missing) or a block device */
	uint64_t size;    /* bytes; 0 = the size of an existing file or device */
	uint64_t unit;    /* allocation unit in bytes, a multiple of 4096; 0 = by
			   * name: 1 MiB for "hdd", 4 KiB for any other */
};

struct cairn_mkfs_opts {
	uint64_t log_size;    /* bytes of operation log; 0 = 256 MiB */
	uint64_t fast_size;   /* bytes of fast tier; 0 = 1 GiB */
	uint64_t inodes;      /* inode count; 0 = one per 4 KiB of fast tier */
	enum cairn_media media;
	const char *log_path;  /* where the log part lives; NULL = inside volume */
	const char *fast_path; /* where the fast tier lives; NULL = inside volume */
	unsigned ntiers;       /* capacity tiers, fastest first */
	struct cairn_tier_opts tiers[CAIRN_MAX_TIERS];
	/* mkfs refuses (EEXIST) an existing volume, a part's file that is not
	 * empty and a device that holds data; force replaces them.  Never
	 * replaced, forced or not: a part of a mounted volume (EBUSY), a
	 * symbolic link (ELOOP), one file named as two parts (EINVAL). */
	int force;
};

struct cairn_mount_opts {
	enum cairn_media media;  /* override the manifest (tests); 0 = keep */
	int batch_ms;            /* 0 = sync mode; >0 = batch mode, group commit */
	int no_digest_thread;    /* digest inline in the writer, deterministic */
	int digest_threshold;    /* percent of log fill that starts digest; 0 = 50 */
	int read_only;           /* recover in memory, never write the volume */
	/* Migration between tiers: when a tier's use passes high_watermark
	 * percent, its coldest data moves down until use is below
	 * low_watermark.  0 = 80 and 60. */
	int high_watermark, low_watermark;
	int no_promotion;        /* never move data read often back up */
	void *recorder;          /* internal: crash-state recorder (tests) */
	uint64_t clog_size;      /* internal: bytes of a client's log (tests); 0 = 4 MiB */
};

/* Volume lifetime.  A mount holds the volume's locks (another mount or a
 * mkfs of it gets EBUSY) until cairn_unmount.  A child of fork() cannot
 * use its parent's mount: its threads are not copied, and it shares the
 * parent's log, so every call on it fails with EIO there (cairn_unmount
 * too, which leaves it alone; cairn_attach to a daemon instead).  The
 * child keeps none of the mount's locks: the volume is free once the
 * parent unmounts, whatever its children do. */
int cairn_mkfs(const char *volume_dir, const struct cairn_mkfs_opts *opts);
cairn_fs *cairn_mount(const char *volume_dir, const struct cairn_mount_opts *opts);
int cairn_unmount(cairn_fs *fs);

/* Attaches to the daemon that serves a volume (`cairn mount` or `cairn
 * serve`), so that several processes use one volume at once, beside its
 * FUSE mount.  path is the volume directory or the mount point.  The
 * handle takes every call of this header (cairn_scrub excepted:
 * EOPNOTSUPP); each is one request to the daemon over the volume's socket
 * (VOLUME/cairn.sock), which serves it with this process's credentials as
 * the kernel gives them to it (uid, gid, supplementary groups) and checks
 * them as POSIX says: search permission on every directory of a path,
 * write permission on a directory to change its names, the sticky bit,
 * read and write permission to open, ownership to chmod or set times, root
 * to chown.  A change is durable when the call returns, as the daemon's
 * mount mode promises (sync mode: at once).  File descriptors and
 * directory streams belong to this handle; the daemon closes them when the
 * process exits or dies.  A handle is the process's that attached: in a
 * child of fork() its calls fail with EIO (attach again there;
 * cairn_unmount of the inherited handle frees it).  If the daemon goes
 * away, every later call fails with EIO and never blocks.  cairn_unmount
 * detaches.  NULL with errno on failure: ENOENT (no daemon serves path),
 * EACCES (the daemon does not admit this user), EPROTO (a daemon of
 * another build); cairn_last_error() says which. */
cairn_fs *cairn_attach(const char *path);

/* Why the last cairn_mount() or cairn_mkfs() in this thread failed, as a
 * sentence naming the part, the offset and what is wrong. */
const char *cairn_last_error(void);

/* Files.  read, write, pread and pwrite refuse a count above SSIZE_MAX
 * (EINVAL) and move at most 0x7ffff000 bytes a call (a short count beyond
 * that, as Linux).  lseek past the largest off_t is EOVERFLOW, before 0
 * EINVAL; a failed lseek leaves the offset where it was. */
int cairn_open(cairn_fs *fs, const char *path, int flags, ...);
int cairn_close(cairn_fs *fs, int fd);
ssize_t cairn_read(cairn_fs *fs, int fd, void *buf, size_t count);
ssize_t cairn_write(cairn_fs *fs, int fd, const void *buf, size_t count);
ssize_t cairn_pread(cairn_fs *fs, int fd, void *buf, size_t count, off_t off);
ssize_t cairn_pwrite(cairn_fs *fs, int fd, const void *buf, size_t count, off_t off);
off_t cairn_lseek(cairn_fs *fs, int fd, off_t off, int whence);
int cairn_fsync(cairn_fs *fs, int fd);
int cairn_sync(cairn_fs *fs);
int cairn_ftruncate(cairn_fs *fs, int fd, off_t length);
int cairn_truncate(cairn_fs *fs, const char *path, off_t length);
int cairn_fstat(cairn_fs *fs, int fd, struct stat *st);
/* Modes: 0 and FALLOC_FL_KEEP_SIZE allocate every hole of the range (and
 * 0 extends the size): the blocks are set aside, so a later write into
 * the range never gets ENOSPC; they read as zeros until written and count
 * in st_blocks.  A range that does not fit gets ENOSPC with nothing set
 * aside.  A large one (over 128 MiB of holes, less on a small volume) is
 * set aside in several atomic steps, so a crash may leave part of it, as
 * with a large write.  FALLOC_FL_PUNCH_HOLE |
 * FALLOC_FL_KEEP_SIZE frees the range, which then reads as zeros.
 * Others: EOPNOTSUPP. */
int cairn_fallocate(cairn_fs *fs, int fd, int mode, off_t offset, off_t len);
int cairn_stat(cairn_fs *fs, const char *path, struct stat *st);
int cairn_lstat(cairn_fs *fs, const char *path, struct stat *st);

/* Names. */
#define CAIRN_RENAME_NOREPLACE 1u /* same value as Linux RENAME_NOREPLACE */
int cairn_unlink(cairn_fs *fs, const char *path);
int cairn_rename(cairn_fs *fs, const char *from, const char *to, unsigned flags);
int cairn_mkdir(cairn_fs *fs, const char *path, mode_t mode);
int cairn_rmdir(cairn_fs *fs, const char *path);
int cairn_link(cairn_fs *fs, const char *from, const char *to);
int cairn_symlink(cairn_fs *fs, const char *target, const char *linkpath);
ssize_t cairn_readlink(cairn_fs *fs, const char *path, char *buf, size_t size);

/* Directories. */
struct cairn_dirent {
	uint64_t d_ino;
	unsigned char d_type; /* DT_REG, DT_DIR, DT_LNK, ... */
	char d_name[256];
};
cairn_dir *cairn_opendir(cairn_fs *fs, const char *path);
struct cairn_dirent *cairn_readdir(cairn_dir *dir);
int cairn_closedir(cairn_dir *dir);

/* Attributes. */
int cairn_chmod(cairn_fs *fs, const char *path, mode_t mode);
int cairn_chown(cairn_fs *fs, const char *path, uid_t uid, gid_t gid);
int cairn_utimens(cairn_fs *fs, const char *path, const struct timespec times[2]);
int cairn_statvfs(cairn_fs *fs, const char *path, struct statvfs *sv);

/* Extended attributes (names "user.*", "trusted.*", "security.*",
 * "system.*"; values up to 1024 bytes).  Flags: 1 = XATTR_CREATE,
 * 2 = XATTR_REPLACE.  Symlinks are followed, as by setxattr(2). */
int cairn_setxattr(cairn_fs *fs, const char *path, const char *name, const void *value,
		   size_t size, int flags);
ssize_t cairn_getxattr(cairn_fs *fs, const char *path, const char *name, void *value, size_t size);
ssize_t cairn_listxattr(cairn_fs *fs, const char *path, char *list, size_t size);
int cairn_removexattr(cairn_fs *fs, const char *path, const char *name);

/* Beyond POSIX: the state of the volume, for `cairn stat` and monitoring. */
struct cairn_info {
	uint64_t block_size;
	uint64_t log_capacity;      /* bytes of log ring */
	uint64_t log_used;          /* bytes of undigested records */
	uint64_t undigested_records;
	uint64_t fast_blocks;       /* blocks of the fast tier for data and trees */
	uint64_t fast_free_blocks;
	uint64_t reserved_blocks;   /* promised to undigested writes */
	uint64_t inodes, free_inodes;
	uint64_t directories;       /* in use, the root included */
	uint64_t checkpoints;       /* digests completed since mount */
	uint64_t ops_logged;        /* records appended since mount */
	uint64_t ops_digested;      /* records digested over the volume's life */
	uint64_t log_waits;         /* times a writer waited for digest */
	int batch_ms;               /* 0: sync mode */
	char media[8];              /* "pmem", "file" or "emul" */
	/* Tiers, fastest first: tiers[0] is the fast tier. */
	unsigned tier_count;
	struct cairn_tier_info {
		char name[16];
		uint64_t blocks, free_blocks; /* data blocks (fast: and tree nodes) */
		uint64_t extents;             /* file extents with data on this tier */
		uint64_t in_down, in_up;      /* blocks migrated in from above / below */
		uint64_t out;                 /* blocks migrated out */
	} tiers[1 + CAIRN_MAX_TIERS];
	int high_watermark, low_watermark; /* percent of a tier */
	int promotion;                     /* 1: hot data moves back up */
	uint64_t migrations;               /* batches committed since mount */
	uint64_t migrate_ns;               /* time they took */
	uint64_t data_errors;              /* blocks found damaged since mount */
	/* Client processes (cairn_attach, cairn run) with logs of their own,
	 * and their local writes applied since mount. */
	uint64_t client_logs;
	uint64_t client_records;
};
int cairn_info(cairn_fs *fs, struct cairn_info *out);

/* Beyond POSIX: every data block carries a checksum, verified on each
 * read; a block that fails is EIO to the reader, never wrong bytes, and is
 * reported as an event: one line naming the inode, the file offset, the
 * tier and the block.  Events go to handler (process-wide; NULL restores
 * the default, a line "cairn: ..." on stderr). */
void cairn_set_event_handler(void (*handler)(const char *msg));

/* Beyond POSIX: scrub.  Reads every data block of every file and symlink,
 * on every tier, and verifies it against its checksum, beside the calls of
 * other threads (a file is checked a chunk at a time under the read lock).
 * The fields are progress, updated as it goes (read them with atomic
 * loads from other threads); set cancel to stop it early.  Each damaged
 * block is counted, reported as an event, and the first CAIRN_SCRUB_LIST
 * are listed.  cairn has no second copy of a block to repair it from: the
 * file named must be restored from a backup (writing the damaged blocks
 * whole makes them good again).  Returns 0 when it ran to the end
 * (damage or not), -1 with errno ECANCELED when cancelled, or another
 * errno if it could not go on. */
#define CAIRN_SCRUB_LIST 32
struct cairn_scrub {
	uint64_t files_total, files_done;
	uint64_t bytes_total, bytes_done; /* of data blocks, tree nodes excluded */
	uint64_t damaged_blocks;
	unsigned listed; /* entries of damaged[] filled */
	struct cairn_scrub_damage {
		uint64_t ino, offset; /* the file and the byte offset of the block */
		uint64_t block;       /* the block on its tier */
		char tier[16];
	} damaged[CAIRN_SCRUB_LIST];
	int cancel;
};
int cairn_scrub(cairn_fs *fs, struct cairn_scrub *s);

/* Beyond POSIX: apply the whole log to the shared area now (returns when the
 * shared area is durable and the log space is free). */
int cairn_digest(cairn_fs *fs);

/* Beyond POSIX: migrate between tiers now, as the watermarks and the
 * promotion policy say (the digest thread also does so by itself). */
int cairn_migrate(cairn_fs *fs);

/* Beyond POSIX: change the options of a mounted volume that may change
 * while it runs.  The watermarks and promotion take effect at once (a
 * lower high watermark starts migration) and are stored in the volume's
 * manifest as the defaults of its later mounts, whose own options still
 * win (a mount that gives one watermark takes the other's default, not
 * the stored one; promotion stored off stays off until tuned on again);
 * both watermarks are stored whenever either is given.  batch_ms
 * changes the interval of a volume mounted in batch mode, for this mount
 * only; a sync-mode volume refuses it (EINVAL): the mode is the mount's.
 * Fields left 0 keep their value.  Through cairn_attach, root alone may
 * (EPERM).  EINVAL: a value out of range (watermarks 1 <= low < high <=
 * 100, batch_ms 1..3600000); EROFS: a read-only mount.  Nothing changes
 * when it fails. */
struct cairn_tuning {
	int high_watermark, low_watermark; /* percent of a tier; 0: keep */
	int promotion;                     /* 1: on, -1: off, 0: keep */
	int batch_ms;                      /* batch mode's interval; 0: keep */
};
int cairn_tune(cairn_fs *fs, const struct cairn_tuning *t);

/* Beyond POSIX: the capacity tiers of a mounted volume, changed while it
 * runs.  Through cairn_attach, root alone may (EPERM); a read-only mount
 * refuses (EROFS).  Each change is crash-safe: after a crash the volume
 * has the tiers it had before the call or after it, and loses nothing.
 *
 * cairn_tier_add: t (as for cairn_mkfs: a file is created when missing;
 * an existing file that is not empty, or a device holding data, is
 * refused with EEXIST unless force) becomes the slowest capacity tier.
 * EEXIST also for a name a tier has; ENOSPC when the volume has had
 * CAIRN_MAX_TIERS capacity tiers (removed ones count: their numbers are
 * not used again) or the fast tier has no room for the tier's bitmap and
 * checksums (about 1/1000 of its size).
 *
 * cairn_tier_evacuate: marks tier name draining (nothing new goes there)
 * and moves up to max_bytes of its data (0: all) to the other tiers,
 * slower ones first, the fast tier last; *left (if given) gets the bytes
 * still on it.  It stays draining until cairn_tier_remove removes it or
 * cairn_tier_keep takes it back (through the daemon, also when the
 * caller's session ends).  Each batch moved is committed before the next:
 * a crash keeps what moved, and the tier.  ENOENT: no capacity tier of
 * that name; ENOSPC: the other tiers have no room for what is left; EIO:
 * what is left failed its checksums and cannot move (events name it).
 *
 * cairn_tier_remove: removes tier name, which must hold no data (EBUSY:
 * evacuate it first).  Its part is no longer the volume's; the file or
 * device is left as it is.
 *
 * cairn_tier_grow: tier name takes size bytes of its part (0: all of it):
 * a regular file is made that large first, a device must already be
 * (EINVAL when that is not more than the tier has).  "fast" grows the
 * fast tier: more blocks for data and trees, the same inodes; a mapped
 * one (pmem, emul) grows by 1 TiB at most per mount (EOPNOTSUPP).
 *
 * cairn_tier_draining: *mask gets bit t set for each capacity tier t
 * (cairn_info's tiers[t]) that cairn_tier_evacuate marked draining and
 * that is neither removed nor taken back yet.  Any user may ask. */
int cairn_tier_add(cairn_fs *fs, const struct cairn_tier_opts *t, int force);
int cairn_tier_evacuate(cairn_fs *fs, const char *name, uint64_t max_bytes, uint64_t *left);
int cairn_tier_keep(cairn_fs *fs, const char *name);
int cairn_tier_remove(cairn_fs *fs, const char *name);
int cairn_tier_grow(cairn_fs *fs, const char *name, uint64_t size);
int cairn_tier_draining(cairn_fs *fs, uint32_t *mask);

/* Beyond POSIX: how far a long operation is.  handler (process-wide;
 * NULL: none, the default) is called from the thread doing the work with
 * what it is doing, as a phrase ("zeroing the fast tier's metadata"), and
 * done and total in that phase's own unit (bytes for zeroing).
 * cairn_mkfs calls it while it zeroes a large part. */
void cairn_set_progress_handler(void (*handler)(const char *what, uint64_t done,
                                                uint64_t total));

#ifdef __cplusplus
}
#endif
#endif /* CAIRN_H */
