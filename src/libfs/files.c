/*
 * files.c - the calls on open files: open, close, read, write, seek,
 * truncate, sync, and stat.
 *
 * Owns: the open-file table.
 * May call: path, data, apply (through op_log_apply), shared (inodes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/alloc.h"
#include "fs/extent.h"
#include "libfs/fs_internal.h"
#include "util/spin.h"
#include "libfs/icalls.h"
#include "libfs/oprec.h"

#define B FS_BLOCK_SIZE

/* ---- the open-file table ------------------------------------------------ */

/*
 * fs->files[fd] holds one reference to its open file; each call on an fd
 * takes another for as long as it runs (fd_get ... fd_put).  cairn_close
 * takes the fd out of the table and drops the table's reference, so a call
 * racing a close either finds the fd gone (EBADF) or completes on the file
 * as it was; the last reference closes the file for good.  The hot path
 * costs one short critical section on fd_lock and two atomic operations.
 */

#define FD_MAX (1 << 20) /* open files per mount, as a generous RLIMIT_NOFILE */

static int vnode_unref(struct cairn_fs *fs, struct vnode *vn, int64_t n, uint64_t *seq);

/* The lowest free fd, growing the table if none is free; -EMFILE or
 * -ENOMEM.  Called with fd_lock held. */
static int fd_slot(struct cairn_fs *fs)
{
	for (int i = 0; i < fs->nfiles; i++)
		if (!fs->files[i])
			return i;
	if (fs->nfiles >= FD_MAX)
		return -EMFILE;
	int n = fs->nfiles ? fs->nfiles * 2 : 16;
	struct open_file **nf = realloc(fs->files, (size_t)n * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	memset(nf + fs->nfiles, 0, (size_t)(n - fs->nfiles) * sizeof(*nf));
	fs->files = nf;
	int fd = fs->nfiles;
	fs->nfiles = n;
	return fd;
}

/* Publishes a new open file of vn at the lowest free fd.  The caller has
 * already counted the open in vn->open_count; the file owns that count. */
static int fd_alloc(struct cairn_fs *fs, struct vnode *vn, int flags)
{
	struct open_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->vn = vn;
	f->flags = flags & (O_ACCMODE | O_APPEND);
	atomic_init(&f->refs, 1); /* the table's */
	pthread_mutex_init(&f->pos_lock, NULL);
	pthread_mutex_lock(&fs->fd_lock);
	int fd = fd_slot(fs);
	if (fd >= 0)
		fs->files[fd] = f;
	pthread_mutex_unlock(&fs->fd_lock);
	if (fd < 0) {
		pthread_mutex_destroy(&f->pos_lock);
		free(f);
	}
	return fd;
}

/* The open file of fd, with a reference the caller drops with fd_put; NULL
 * if fd is not open. */
static struct open_file *fd_get(struct cairn_fs *fs, int fd)
{
	struct open_file *f = NULL;
	pthread_mutex_lock(&fs->fd_lock);
	if (fd >= 0 && fd < fs->nfiles)
		f = fs->files[fd];
	if (f)
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&fs->fd_lock);
	return f;
}

/* Takes fd out of the table; the table's reference passes to the caller. */
static struct open_file *fd_take(struct cairn_fs *fs, int fd)
{
	struct open_file *f = NULL;
	pthread_mutex_lock(&fs->fd_lock);
	if (fd >= 0 && fd < fs->nfiles) {
		f = fs->files[fd];
		fs->files[fd] = NULL;
	}
	pthread_mutex_unlock(&fs->fd_lock);
	return f;
}

/* Drops a reference.  The last one gives the vnode's open count back (the
 * last close of an unlinked file releases it) and frees the file.  Never
 * called with fs->lock held.  Returns 0, or the release's -errno: a close
 * that is not the last reference leaves that error to the call finishing
 * last, which has no way to report it (as a Linux close racing a read). */
static int fd_put(struct cairn_fs *fs, struct open_file *f)
{
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return 0;
	uint64_t seq = 0;
	fs_lock_exclusive(fs);
	int rc = vnode_unref(fs, f->vn, 1, &seq);
	pthread_rwlock_unlock(&fs->lock);
	if (!rc && seq)
		rc = op_finish(fs, seq);
	pthread_mutex_destroy(&f->pos_lock);
	free(f);
	return rc;
}

/* O_ACCMODE itself (3) opens for neither, as on Linux. */
static int can_read(const struct open_file *f)
{
	int m = f->flags & O_ACCMODE;
	return m == O_RDONLY || m == O_RDWR;
}

static int can_write(const struct open_file *f)
{
	int m = f->flags & O_ACCMODE;
	return m == O_WRONLY || m == O_RDWR;
}

/* ---- stat ---------------------------------------------------------------- */

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	if (ts->tv_nsec < 0) {
		ts->tv_nsec += 1000000000;
		ts->tv_sec--;
	}
}

/* The blocks a file will hold once its undigested writes are stored: the
 * ones it has, and the reservation of its writes in the log.  That
 * reservation counts a block for every block each write touches (many
 * small appends into one block hold many, docs/ARCHITECTURE.md "Space"),
 * so 4,600 appends of 128 bytes showed 18 MB where the file held 589 KB.
 * The estimate is held to the file's size in blocks, or to what it has
 * when it has more (fallocate past the end): new pieces either fill holes,
 * or replace blocks it has.  An estimate: a file with both holes and
 * blocks set aside past its end may show fewer until the digest. */
static uint64_t blocks_estimate(uint64_t have, uint64_t reserved, uint64_t size)
{
	uint64_t span = size / B + (size % B != 0);
	uint64_t bound = have > span ? have : span;
	return have + reserved < bound ? have + reserved : bound;
}

static int stat_locked(struct cairn_fs *fs, uint64_t ino, struct vnode *vn, struct stat *st)
{
	struct iref r;
	int rc = inode_get(&fs->sh, ino, &r);
	if (rc)
		return rc;
	if (r.i->mode == 0) {
		inode_put(&fs->sh, &r);
		return -ENOENT;
	}
	memset(st, 0, sizeof(*st));
	uint64_t dev;
	memcpy(&dev, fs->sh.sb.uuid, sizeof(dev));
	st->st_dev = (dev_t)(dev & 0xffffffff);
	st->st_ino = ino;
	st->st_mode = r.i->mode;
	st->st_nlink = r.i->nlink;
	st->st_uid = r.i->uid;
	st->st_gid = r.i->gid;
	/* Only device nodes have a device number; files keep their
	 * inline extent there. */
	st->st_rdev = S_ISCHR(r.i->mode) || S_ISBLK(r.i->mode) ? r.i->rdev : 0;
	st->st_size = (off_t)r.i->size;
	st->st_blksize = B;
	st->st_blocks =
	    (blkcnt_t)(blocks_estimate(r.i->blocks, vn ? vn->data.resv : 0, r.i->size) * (B / 512));
	ns_to_ts(r.i->atime_ns, &st->st_atim);
	ns_to_ts(r.i->mtime_ns, &st->st_mtim);
	ns_to_ts(r.i->ctime_ns, &st->st_ctim);
	inode_put(&fs->sh, &r);
	return 0;
}

int fill_stat(struct cairn_fs *fs, uint64_t ino, struct stat *st)
{
	struct vnode *vn = vnode_lock_ino(fs, ino);
	int rc = stat_locked(fs, ino, vn, st);
	vnode_unlock(vn);
	return rc;
}

static int stat_path(cairn_fs *fs, const char *path, struct stat *st, int flags)
{
	if (!fs)
		return fail(-EINVAL);
	if (!st)
		return fail(-EFAULT);
	pthread_rwlock_rdlock(&fs->lock);
	struct lookup lk;
	int rc = path_lookup(fs, path, flags, &lk);
	if (!rc)
		rc = fill_stat(fs, lk.ino, st);
	pthread_rwlock_unlock(&fs->lock);
	return rc ? fail(rc) : 0;
}

int cairn_stat(cairn_fs *fs, const char *path, struct stat *st)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_stat(fs->client, path, st, 1);
	return stat_path(fs, path, st, LOOKUP_FOLLOW);
}

int cairn_lstat(cairn_fs *fs, const char *path, struct stat *st)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_stat(fs->client, path, st, 0);
	return stat_path(fs, path, st, 0);
}

static int file_stat(struct cairn_fs *fs, struct open_file *f, struct stat *st)
{
	pthread_rwlock_rdlock(&fs->lock);
	int rc = fill_stat(fs, f->vn->ino, st);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int cairn_fstat(cairn_fs *fs, int fd, struct stat *st)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_fstat(fs->client, fd, st);
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_get(fs, fd);
	if (!f)
		return fail(-EBADF);
	int rc = st ? file_stat(fs, f, st) : -EFAULT;
	fd_put(fs, f);
	return rc ? fail(rc) : 0;
}

/* ---- space --------------------------------------------------------------- */

int for_each_data_file(struct cairn_fs *fs,
                       int (*fn)(void *arg, uint64_t ino, const struct fs_inode *i), void *arg)
{
	int rc = 0;
	for (uint64_t ino = FS_ROOT_INO + 1; ino < fs->sh.sb.inode_count && !rc; ino++) {
		struct iref r;
		if (!inode_in_use(&fs->sh, ino) || inode_get(&fs->sh, ino, &r))
			continue;
		if (S_ISREG(r.i->mode) && !extent_map_empty(r.i))
			rc = fn(arg, ino, r.i);
		inode_put(&fs->sh, &r);
	}
	return rc;
}

/* ---- creating ------------------------------------------------------------ */

int dir_is_linked(struct cairn_fs *fs, uint64_t dir)
{
	struct iref r;
	if (inode_get(&fs->sh, dir, &r))
		return 0;
	int linked = r.i->nlink > 0;
	inode_put(&fs->sh, &r);
	return linked;
}

int make_node(struct cairn_fs *fs, const struct icaller *owner, uint64_t parent, const char *name,
              size_t namelen, uint32_t mode, uint64_t rdev, const char *target, size_t targetlen,
              uint64_t *ino_out, uint64_t *seq)
{
	if (!dir_is_linked(fs, parent))
		return -ENOENT; /* a removed directory that is still open or a cwd */
	uint64_t ino;
	int rc = inode_pick(&fs->sh, parent, &ino);
	if (rc)
		return -ENOSPC;
	/* The pick only chose the number; the record's replay takes it. */
	inode_release(&fs->sh, ino);
	struct {
		struct op_mknod p;
		char names[256 + 4096];
	} rec;
	memset(&rec.p, 0, sizeof(rec.p));
	rec.p.parent = parent;
	rec.p.ino = ino;
	rec.p.time_ns = now_ns();
	rec.p.rdev = rdev;
	rec.p.mode = mode;
	rec.p.uid = owner ? owner->uid : (uint32_t)geteuid();
	rec.p.gid = owner ? owner->gid : (uint32_t)getegid();
	rec.p.namelen = (uint16_t)namelen;
	rec.p.targetlen = (uint16_t)targetlen;
	memcpy(rec.names, name, namelen);
	if (targetlen)
		memcpy(rec.names + namelen, target, targetlen);
	struct iovec iov = {&rec, sizeof(rec.p) + namelen + targetlen};
	fs->apply_resv = targetlen ? 1 : 0;
	rc = op_log_apply(fs, OP_MKNOD, NULL, &iov, 1, seq);
	if (!rc && ino_out)
		*ino_out = ino;
	return rc;
}

/* ---- open and close ------------------------------------------------------ */

static int truncate_locked(struct cairn_fs *fs, uint64_t ino, uint64_t size, uint64_t *seq)
{
	uint64_t args[3] = {ino, size, (uint64_t)now_ns()};
	return op_log_apply(fs, OP_TRUNCATE, args, NULL, 0, seq);
}

static int open_existing(struct cairn_fs *fs, struct lookup *lk, int flags, uint64_t *seq)
{
	if ((flags & O_CREAT) && (flags & O_EXCL))
		return -EEXIST;
	if (lk->type == DT_LNK)
		return -ELOOP; /* O_NOFOLLOW on a symlink */
	if ((flags & O_DIRECTORY) && lk->type != DT_DIR)
		return -ENOTDIR;
	if (lk->type == DT_DIR && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT)))
		return -EISDIR;
	/* Linux truncates on O_TRUNC whatever the access mode (the caller's
	 * permission to write was checked by the kernel, or is the library
	 * caller's own), and an empty file's times change too. */
	if ((flags & O_TRUNC) && lk->type == DT_REG)
		return fs->read_only ? -EROFS : truncate_locked(fs, lk->ino, 0, seq);
	return 0;
}

/* Whether the open names a file that is there.  Opening it makes no name,
 * and truncating it frees space: so it is not refused for want of room
 * for a name (on a full fast tier `> file` and `dd of=file` got ENOSPC
 * where truncate(2) worked; test_full's `open_trunc_when_full`). */
static int names_existing(struct cairn_fs *fs, const struct target *t, int lflags)
{
	struct lookup lk;
	return target_lookup(fs, t, lflags, &lk) == 0 && lk.ino != 0;
}

static int open_locked(struct cairn_fs *fs, const struct target *t, const struct icaller *owner,
                       int flags, mode_t mode, uint64_t *ino_out, uint64_t *seq, int *attempt)
{
	int rc = 0;
	int lflags = (flags & O_CREAT) ? LOOKUP_PARENT : 0;
	if (!(flags & O_NOFOLLOW) && !((flags & O_CREAT) && (flags & O_EXCL)))
		lflags |= LOOKUP_FOLLOW;
	if (flags & (O_CREAT | O_TRUNC))
		rc = op_begin(fs, sizeof(struct op_mknod) + 256, 0, SPACE_NAME, attempt);
	if (rc == -ENOSPC && names_existing(fs, t, lflags))
		rc = op_begin(fs, sizeof(struct op_mknod) + 256, 0, SPACE_FREES, attempt);
	if (rc == -EROFS && !(flags & O_CREAT) && (flags & O_ACCMODE) == O_RDONLY)
		rc = 0;
	if (rc)
		return rc;
	struct lookup lk;
	rc = target_lookup(fs, t, lflags, &lk);
	if (rc)
		return rc;
	if (fs->read_only && (flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	uint64_t ino = lk.ino;
	if (ino) {
		rc = open_existing(fs, &lk, flags, seq);
	} else {
		if (lk.trailing_slash)
			return -EISDIR;
		if (fs->read_only)
			return -EROFS;
		rc = make_node(fs, owner, lk.parent, lk.name, lk.namelen, S_IFREG | (mode & 07777),
		               0, NULL, 0, &ino, seq);
	}
	if (rc)
		return rc;
	struct vnode *vn = vnode_get(fs, ino);
	if (!vn)
		return -ENOMEM;
	vn->open_count++; /* before the fd is visible: a racing close drops it */
	int fd = fd_alloc(fs, vn, flags);
	if (fd < 0) {
		vn->open_count--;
		vnode_maybe_free(fs, vn);
		return fd;
	}
	if (ino_out)
		*ino_out = ino;
	return fd;
}

int open_target(struct cairn_fs *fs, const struct target *t, const struct icaller *owner, int flags,
                mode_t mode, uint64_t *ino)
{
	uint64_t seq = 0;
	int attempt = 0, fd;
	fs_lock_exclusive(fs);
	do
		fd = open_locked(fs, t, owner, flags, mode, ino, &seq, &attempt);
	while (fd == -EAGAIN);
	pthread_rwlock_unlock(&fs->lock);
	if (fd >= 0 && seq) {
		int rc = op_finish(fs, seq);
		if (rc) {
			cairn_close(fs, fd);
			return rc;
		}
	}
	return fd;
}

int cairn_open(cairn_fs *fs, const char *path, int flags, ...)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	mode_t mode = 0;
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (!fs)
		return fail(-EINVAL);
	if (!path)
		return fail(-EFAULT); /* a target with no path would name inode 0 */
	if (fs->client)
		return client_open(fs->client, path, flags, mode);
	struct target t = {.path = path};
	int fd = open_target(fs, &t, NULL, flags, mode, NULL);
	return fd < 0 ? fail(fd) : fd;
}

/* Last close of an unlinked inode: the RELEASE record frees it. */
static int release_orphan(struct cairn_fs *fs, struct vnode *vn, uint64_t *seq)
{
	struct iref r;
	int rc = inode_get(&fs->sh, vn->ino, &r);
	if (rc)
		return rc;
	uint32_t nlink = r.i->nlink, mode = r.i->mode;
	inode_put(&fs->sh, &r);
	if (nlink != 0 || mode == 0 || fs->read_only || fs->failed)
		return 0;
	int attempt = 0;
	uint64_t ino = vn->ino;
	while ((rc = op_begin(fs, 0, 0, SPACE_NONE, &attempt)) == -EAGAIN) {
		/* The lock was dropped: someone may have opened it again. */
		vn = vnode_find(fs, ino);
		if (vn && vn->open_count > 0)
			return 0;
	}
	if (rc)
		return rc;
	uint64_t args[3] = {ino, 0, 0};
	return op_log_apply(fs, OP_RELEASE, args, NULL, 0, seq);
}

/* Drops n references of a vnode; the last one releases an orphan.  Called
 * with the lock held; *seq gets the RELEASE record's seq, if any. */
static int vnode_unref(struct cairn_fs *fs, struct vnode *vn, int64_t n, uint64_t *seq)
{
	uint64_t ino = vn->ino;
	vn->open_count -= n < vn->open_count ? n : vn->open_count;
	int rc = 0;
	if (vn->open_count == 0) {
		rc = release_orphan(fs, vn, seq);
		/* op_begin may have dropped the lock: look the vnode up again. */
		vnode_maybe_free(fs, vnode_find(fs, ino));
	}
	return rc;
}

int ic_pin(cairn_fs *fs, uint64_t ino, uint64_t n)
{
	fs_lock_exclusive(fs);
	struct vnode *vn = inode_in_use(&fs->sh, ino) ? vnode_get(fs, ino) : NULL;
	if (vn)
		vn->open_count += (int64_t)n;
	pthread_rwlock_unlock(&fs->lock);
	return vn ? 0 : -ENOENT;
}

void ic_unpin(cairn_fs *fs, uint64_t ino, uint64_t n)
{
	uint64_t seq = 0;
	fs_lock_exclusive(fs);
	struct vnode *vn = vnode_find(fs, ino);
	if (vn)
		vnode_unref(fs, vn, (int64_t)n, &seq);
	pthread_rwlock_unlock(&fs->lock);
	if (seq)
		op_finish(fs, seq);
}

/* The fd is free when this returns; the file itself stays until the calls
 * still using it finish. */
int cairn_close(cairn_fs *fs, int fd)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_close(fs->client, fd);
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_take(fs, fd);
	if (!f)
		return fail(-EBADF);
	int rc = fd_put(fs, f);
	return rc ? fail(rc) : 0;
}

/* ---- read ---------------------------------------------------------------- */

#define DAY_NS (24LL * 3600 * 1000000000)

/* relatime, as Linux mounts by default: a read updates atime only when it
 * is not newer than mtime or ctime, or is a day old. */
static int atime_stale(const struct fs_inode *i, int64_t now)
{
	return i->atime_ns <= i->mtime_ns || i->atime_ns <= i->ctime_ns ||
	       now - i->atime_ns >= DAY_NS;
}

/* Logs the new atime without waiting for it to be durable: it rides on
 * the next commit, and losing it in a crash loses nothing a program wrote. */
static void touch_atime(struct cairn_fs *fs, uint64_t ino)
{
	struct op_setattr p;
	memset(&p, 0, sizeof(p));
	uint64_t seq = 0;
	int attempt = 0;
	fs_lock_exclusive(fs);
	int rc = op_begin(fs, sizeof(p), 0, SPACE_NONE, &attempt);
	struct iref r;
	if (!rc && inode_get(&fs->sh, ino, &r) == 0) {
		int64_t now = now_ns();
		if (r.i->mode && atime_stale(r.i, now)) {
			p.ino = ino;
			p.valid = SETATTR_ATIME | SETATTR_KEEP_CTIME;
			p.atime_ns = now;
			p.ctime_ns = r.i->ctime_ns;
			struct iovec iov = {&p, sizeof(p)};
			op_log_apply(fs, OP_SETATTR, NULL, &iov, 1, &seq);
		}
		inode_put(&fs->sh, &r);
	}
	pthread_rwlock_unlock(&fs->lock);
}

/* Checks a read or write of count bytes at buf, as Linux does: a count
 * above SSIZE_MAX is EINVAL (its result could not be told from an error),
 * one call moves at most MAX_RW_COUNT bytes (a short count, which POSIX
 * allows), and a NULL buffer with bytes to move is EFAULT.  A NULL buffer
 * with a count of 0 is a valid call that moves nothing. */
#define MAX_RW_COUNT ((size_t)INT_MAX & ~(size_t)(B - 1))

static int check_io(const void *buf, size_t *count)
{
	if (*count > SSIZE_MAX)
		return -EINVAL;
	if (*count > MAX_RW_COUNT)
		*count = MAX_RW_COUNT;
	return !buf && *count ? -EFAULT : 0;
}

static ssize_t file_pread(struct cairn_fs *fs, struct open_file *f, void *buf, size_t count,
                          off_t off)
{
	if (!can_read(f))
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	int bad = check_io(buf, &count);
	if (bad)
		return bad;
	pthread_rwlock_rdlock(&fs->lock);
	struct iref r;
	int stale = 0, isdir = 0;
	/* The times a write sets, under the file's lock. */
	pthread_mutex_lock(&f->vn->lock);
	ssize_t n = inode_get(&fs->sh, f->vn->ino, &r);
	if (!n) {
		isdir = S_ISDIR(r.i->mode);
		stale = atime_stale(r.i, now_ns());
		inode_put(&fs->sh, &r);
	}
	pthread_mutex_unlock(&f->vn->lock);
	if (!n)
		n = isdir ? -EISDIR : data_read(fs, f->vn->ino, buf, count, (uint64_t)off);
	pthread_rwlock_unlock(&fs->lock);
	if (n >= 0 && stale && !fs->read_only)
		touch_atime(fs, f->vn->ino);
	return n;
}

ssize_t cairn_pread(cairn_fs *fs, int fd, void *buf, size_t count, off_t off)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_pread(fs->client, fd, buf, count, off);
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_get(fs, fd);
	if (!f)
		return fail(-EBADF);
	ssize_t n = file_pread(fs, f, buf, count, off);
	fd_put(fs, f);
	return n < 0 ? fail((int)n) : n;
}

ssize_t cairn_read(cairn_fs *fs, int fd, void *buf, size_t count)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_read(fs->client, fd, buf, count);
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_get(fs, fd);
	if (!f)
		return fail(-EBADF);
	pthread_mutex_lock(&f->pos_lock);
	ssize_t n = file_pread(fs, f, buf, count, (off_t)f->pos);
	if (n > 0)
		f->pos += (uint64_t)n;
	pthread_mutex_unlock(&f->pos_lock);
	fd_put(fs, f);
	return n < 0 ? fail((int)n) : n;
}

/* ---- write --------------------------------------------------------------- */

/* What a write settles first, whichever way it takes: how much one
 * record carries (at most the log's largest payload), where (the end for
 * O_APPEND), the inode, and the blocks it needs.  The byte count, or
 * -errno. */
static ssize_t write_plan(struct cairn_fs *fs, struct vnode *vn, size_t count, uint64_t *off,
                          int append, struct iref *r, uint64_t *need)
{
	size_t max = (size_t)log_max_payload(fs->log);
	if (count > max)
		count = max;
	int rc = vnode_inode(fs, vn, r);
	if (rc)
		return rc;
	if (append)
		*off = r->i->size;
	if (*off + count > MAX_FILE_SIZE)
		return -EFBIG;
	*need = 0;
	rc = data_blocks_needed(fs, r->i, vn, *off, count, need);
	return rc ? rc : (ssize_t)count;
}

/* Appends one WRITE record of at most the log's largest payload; -EAGAIN
 * means the lock was dropped to digest and the caller retries. */
static ssize_t write_chunk(struct cairn_fs *fs, struct open_file *f, const void *buf, size_t count,
                           uint64_t *off, int append, uint64_t *seq, int *attempt,
                           struct log_fill *fill)
{
	struct iref r;
	uint64_t need;
	ssize_t n = write_plan(fs, f->vn, count, off, append, &r, &need);
	if (n < 0)
		return n;
	int rc = op_begin(fs, (uint64_t)n, need, SPACE_DATA, attempt);
	if (rc)
		return rc;
	uint64_t args[3] = {f->vn->ino, *off, (uint64_t)now_ns()};
	struct iovec iov = {(void *)buf, (size_t)n};
	fs->apply_resv = need;
	rc = op_log_reserve_apply(fs, OP_WRITE, args, &iov, 1, seq, fill);
	return rc ? rc : n;
}

/* Tries for the lock this many times before sleeping on it. */
#define WRITE_LOCK_TRIES 100

/*
 * The lock for a write: held only to reserve the record and apply it (the
 * copy of the bytes comes after), well under a microsecond, while a writer
 * that sleeps on it pays a futex wake-up of several.  So a writer tries a
 * little first, and sleeps only when the holder is slow.
 */
static void write_lock(struct cairn_fs *fs)
{
	for (int i = 0; i < WRITE_LOCK_TRIES; i++) {
		if (pthread_rwlock_trywrlock(&fs->lock) == 0)
			return;
		cpu_relax();
	}
	fs_lock_exclusive(fs);
}

/*
 * Writes beside each other.  A write takes the volume lock shared and its
 * file's lock (vn->lock), so that writers of different files run side by
 * side: each reserves its record in the log and the blocks it needs under
 * fs->log_lock, held for that alone, then puts the piece into its file's
 * index and sets the inode's size and times under the file's lock.  Two
 * writers of one file take turns on the file's lock, so its records are
 * applied in the order of their sequence numbers, as recovery replays
 * them.  Whatever needs the lock exclusively goes the other way
 * (write_chunk): a log or a shared area without room (a digest must run
 * first), a log on a file (log_reserve writes each record into a buffer
 * the lock guards), a read-only or failed volume.  So does every write
 * while some caller waits for the exclusive lock, which a readers-first
 * lock would otherwise hand out only when no two writes overlap.
 */
static ssize_t write_chunk_beside(struct cairn_fs *fs, struct vnode *vn, const void *buf,
                                  size_t count, uint64_t *off, int append, uint64_t *seq,
                                  struct log_fill *fill)
{
	struct iref r;
	uint64_t need;
	ssize_t n = write_plan(fs, vn, count, off, append, &r, &need);
	if (n < 0)
		return n;
	uint64_t args[3] = {vn->ino, *off, (uint64_t)now_ns()};
	struct iovec iov = {(void *)buf, (size_t)n};
	struct log_pos pos;
	int rc = fs_reserve_write_beside(fs, args, &iov, need, &pos, fill);
	if (rc)
		return rc;
	uint64_t released = 0;
	rc = apply_write_to(fs, vn, &r, &pos, *off, (uint64_t)n, (int64_t)args[2], need, &released);
	if (released) {
		pthread_mutex_lock(&fs->log_lock);
		fs->reserved_blocks -= released;
		pthread_mutex_unlock(&fs->log_lock);
	}
	if (rc) {
		/* Logged but not applied, as in op_log_reserve_apply. */
		fs->failed = 1;
		return -EIO;
	}
	*seq = pos.seq;
	return n;
}

/* write_chunk_beside, or -EAGAIN when the write must take the lock
 * exclusively (nothing done then). */
static ssize_t write_beside(struct cairn_fs *fs, struct open_file *f, const void *buf, size_t count,
                            uint64_t *off, int append, uint64_t *seq, struct log_fill *fill)
{
	if (!fs->writes_beside)
		return -EAGAIN;
	ssize_t rc = -EAGAIN;
	pthread_rwlock_rdlock(&fs->lock);
	if (!atomic_load(&fs->exclusive_wanted) && !fs->read_only && !fs->failed) {
		pthread_mutex_lock(&f->vn->lock);
		rc = write_chunk_beside(fs, f->vn, buf, count, off, append, seq, fill);
		pthread_mutex_unlock(&f->vn->lock);
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

static ssize_t do_write(struct cairn_fs *fs, struct open_file *f, const void *buf, size_t count,
                        uint64_t off, int append, uint64_t *end)
{
	size_t done = 0;
	ssize_t rc = 0;
	while (done < count) {
		uint64_t seq = 0;
		int attempt = 0;
		struct log_fill fill = {.pending = 0};
		const uint8_t *from = (const uint8_t *)buf + done;
		rc = write_beside(fs, f, from, count - done, &off, append, &seq, &fill);
		if (rc == -EAGAIN) {
			write_lock(fs);
			do
				rc = write_chunk(fs, f, from, count - done, &off, append, &seq,
				                 &attempt, &fill);
			while (rc == -EAGAIN);
			pthread_rwlock_unlock(&fs->lock);
		}
		/* The data is copied into the log here, beside other writers. */
		if (fs->before_fill)
			fs->before_fill(fs);
		int frc = log_fill(fs->log, &fill);
		if (rc < 0)
			break;
		if (!frc)
			frc = op_finish(fs, seq);
		done += (size_t)rc;
		off += (uint64_t)rc;
		if (frc) {
			rc = frc;
			break;
		}
	}
	*end = off;
	if (done > 0)
		return (ssize_t)done; /* a short write, as POSIX allows */
	return rc;
}

/* Writes at off (at the end for O_APPEND: Linux appends on pwrite too);
 * *end gets the offset after the last byte written. */
static ssize_t file_pwrite(struct cairn_fs *fs, struct open_file *f, const void *buf, size_t count,
                           off_t off, uint64_t *end)
{
	*end = (uint64_t)off;
	if (!can_write(f))
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	int bad = check_io(buf, &count);
	if (bad)
		return bad;
	if (count == 0)
		return 0;
	return do_write(fs, f, buf, count, (uint64_t)off, (f->flags & O_APPEND) != 0, end);
}

/* pwrite on fd; append >= 0 first sets the descriptor's O_APPEND so. */
static ssize_t fd_pwrite(cairn_fs *fs, int fd, const void *buf, size_t count, off_t off, int append)
{
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_get(fs, fd);
	if (!f)
		return fail(-EBADF);
	int want = append ? (f->flags | O_APPEND) : (f->flags & ~O_APPEND);
	if (append >= 0 && f->flags != want)
		__atomic_store_n(&f->flags, want, __ATOMIC_RELAXED);
	uint64_t end;
	ssize_t n = file_pwrite(fs, f, buf, count, off, &end);
	fd_put(fs, f);
	return n < 0 ? fail((int)n) : n;
}

ssize_t cairn_pwrite(cairn_fs *fs, int fd, const void *buf, size_t count, off_t off)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_pwrite(fs->client, fd, buf, count, off);
	return fd_pwrite(fs, fd, buf, count, off, -1);
}

ssize_t ic_pwrite(cairn_fs *fs, int fd, const void *buf, size_t count, off_t off, int append)
{
	return fd_pwrite(fs, fd, buf, count, off, append != 0);
}

ssize_t cairn_write(cairn_fs *fs, int fd, const void *buf, size_t count)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_write(fs->client, fd, buf, count);
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_get(fs, fd);
	if (!f)
		return fail(-EBADF);
	pthread_mutex_lock(&f->pos_lock);
	uint64_t end;
	ssize_t n = file_pwrite(fs, f, buf, count, (off_t)f->pos, &end);
	if (n > 0)
		f->pos = end;
	pthread_mutex_unlock(&f->pos_lock);
	fd_put(fs, f);
	return n < 0 ? fail((int)n) : n;
}

/* ---- seek ---------------------------------------------------------------- */

/* The offset a seek counts from.  SEEK_DATA and SEEK_HOLE find it from
 * *off, which then adds nothing.  Called with f->pos_lock held. */
static int seek_base(struct cairn_fs *fs, struct open_file *f, off_t *off, int whence,
                     int64_t *base)
{
	struct stat st;
	int rc = file_stat(fs, f, &st);
	if (rc)
		return rc;
	switch (whence) {
	case SEEK_SET:
		*base = 0;
		return 0;
	case SEEK_CUR:
		*base = (int64_t)f->pos;
		return 0;
	case SEEK_END:
		*base = st.st_size;
		return 0;
	case SEEK_DATA:
	case SEEK_HOLE:
		break;
	default:
		return -EINVAL;
	}
	if (*off < 0)
		return -EINVAL;
	if (*off >= st.st_size)
		return -ENXIO;
	uint64_t at;
	pthread_rwlock_rdlock(&fs->lock);
	rc = data_seek(fs, f->vn->ino, (uint64_t)*off, whence == SEEK_DATA, &at);
	pthread_rwlock_unlock(&fs->lock);
	*base = (int64_t)at;
	*off = 0;
	return rc;
}

static off_t file_lseek(struct cairn_fs *fs, struct open_file *f, off_t off, int whence)
{
	pthread_mutex_lock(&f->pos_lock);
	int64_t base = 0, pos = 0;
	int rc = seek_base(fs, f, &off, whence, &base);
	/* The sum is checked without computing an overflowed one: past the
	 * largest off_t is EOVERFLOW (POSIX), before the start EINVAL. */
	if (!rc && __builtin_add_overflow(base, (int64_t)off, &pos))
		rc = off > 0 ? -EOVERFLOW : -EINVAL;
	else if (!rc && pos < 0)
		rc = -EINVAL;
	if (!rc)
		f->pos = (uint64_t)pos;
	pthread_mutex_unlock(&f->pos_lock);
	return rc ? rc : (off_t)pos;
}

off_t cairn_lseek(cairn_fs *fs, int fd, off_t off, int whence)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_lseek(fs->client, fd, off, whence);
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_get(fs, fd);
	if (!f)
		return fail(-EBADF);
	off_t pos = file_lseek(fs, f, off, whence);
	fd_put(fs, f);
	return pos < 0 ? fail((int)pos) : pos;
}

/* ---- truncate and sync --------------------------------------------------- */

int truncate_ino(struct cairn_fs *fs, uint64_t ino, off_t length)
{
	if (length < 0)
		return -EINVAL;
	if ((uint64_t)length > MAX_FILE_SIZE)
		return -EFBIG;
	uint64_t seq = 0;
	int attempt = 0, rc;
	fs_lock_exclusive(fs);
	while ((rc = op_begin(fs, 0, 0, SPACE_FREES, &attempt)) == -EAGAIN)
		;
	struct stat st;
	if (!rc)
		rc = fill_stat(fs, ino, &st);
	if (!rc && S_ISDIR(st.st_mode))
		rc = -EISDIR;
	else if (!rc && !S_ISREG(st.st_mode))
		rc = -EINVAL;
	if (!rc)
		rc = truncate_locked(fs, ino, (uint64_t)length, &seq);
	pthread_rwlock_unlock(&fs->lock);
	if (!rc)
		rc = op_finish(fs, seq);
	return rc;
}

int cairn_ftruncate(cairn_fs *fs, int fd, off_t length)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_ftruncate(fs->client, fd, length);
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_get(fs, fd);
	if (!f)
		return fail(-EBADF);
	/* Linux: EINVAL when not open for writing */
	int rc = can_write(f) ? truncate_ino(fs, f->vn->ino, length) : -EINVAL;
	fd_put(fs, f);
	return rc ? fail(rc) : 0;
}

int cairn_truncate(cairn_fs *fs, const char *path, off_t length)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_TRUNCATE, path, NULL, length, 0);
	if (!fs)
		return fail(-EINVAL);
	pthread_rwlock_rdlock(&fs->lock);
	struct lookup lk;
	int rc = path_lookup(fs, path, LOOKUP_FOLLOW, &lk);
	pthread_rwlock_unlock(&fs->lock);
	if (!rc)
		rc = truncate_ino(fs, lk.ino, length);
	return rc ? fail(rc) : 0;
}

int cairn_fsync(cairn_fs *fs, int fd)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_fdcall(fs->client, CTL_FSYNC, fd, 0, 0, 0);
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_get(fs, fd);
	if (!f)
		return fail(-EBADF);
	/* Sync mode: already durable.  Batch mode: the log is the durability
	 * point, so a commit of everything appended is all fsync needs. */
	int rc = log_commit_all(fs->log);
	fd_put(fs, f);
	return rc ? fail(rc) : 0;
}

/* ---- fallocate ----------------------------------------------------------- */

#define FALLOC_KEEP_SIZE 1  /* FALLOC_FL_KEEP_SIZE */
#define FALLOC_PUNCH_HOLE 2 /* FALLOC_FL_PUNCH_HOLE */

static int punch_locked(struct cairn_fs *fs, uint64_t ino, uint64_t off, uint64_t len,
                        uint64_t *seq, int *attempt)
{
	int rc = op_begin(fs, sizeof(int64_t), 0, SPACE_FREES, attempt);
	if (rc)
		return rc;
	struct stat st;
	rc = fill_stat(fs, ino, &st);
	if (rc)
		return rc;
	if ((uint64_t)st.st_size <= off)
		return 0; /* nothing there to punch */
	if (off + len > (uint64_t)st.st_size)
		len = (uint64_t)st.st_size - off; /* KEEP_SIZE: bytes past EOF are a hole */
	int64_t t = now_ns();
	uint64_t args[3] = {ino, off, len};
	struct iovec iov = {&t, sizeof(t)};
	return op_log_apply(fs, OP_PUNCH, args, &iov, 1, seq);
}

static int punch(struct cairn_fs *fs, uint64_t ino, uint64_t off, uint64_t len)
{
	uint64_t seq = 0;
	int attempt = 0, rc;
	fs_lock_exclusive(fs);
	do
		rc = punch_locked(fs, ino, off, len, &seq, &attempt);
	while (rc == -EAGAIN);
	pthread_rwlock_unlock(&fs->lock);
	if (!rc && seq)
		rc = op_finish(fs, seq);
	return rc;
}

/*
 * Modes 0 and KEEP_SIZE set blocks aside for the holes of the range: each
 * OP_FALLOC record allocates them when it is applied, as unwritten
 * extents (reads give zeros until data is written there), so a later
 * write into the range needs no block and never gets ENOSPC.  Mode 0
 * also extends the size.  Like ext4 (file_modified), a successful call
 * changes mtime and ctime.
 *
 * One record sets aside at most falloc_chunk blocks, so that the metadata
 * it dirties (bitmap blocks, extent-map leaves) stays a small part of
 * what a checkpoint commits; a larger range takes several records, each
 * atomic, as a large write does.  The whole range is checked first (its
 * blocks, and the nodes of its first record), so a call that cannot fit
 * is refused before it sets anything aside.
 */
static uint64_t falloc_chunk(struct cairn_fs *fs)
{
	uint64_t cap = shared_journal_capacity(&fs->sh) * 8;
	return cap < FS_EXTENT_UNWRITTEN_MAX ? cap : FS_EXTENT_UNWRITTEN_MAX;
}

/* From byte pos towards end: *span_end gets where the range whose holes
 * come to at most max blocks ends, and *holes those blocks. */
static int falloc_span(struct cairn_fs *fs, const struct fs_inode *i, uint64_t pos, uint64_t end,
                       uint64_t max, uint64_t *span_end, uint64_t *holes)
{
	*holes = 0;
	*span_end = end;
	for (uint64_t lblk = pos / B, last = (end + B - 1) / B; lblk < last;) {
		struct extent e;
		int found = extent_lookup(&fs->sh.fx, i, lblk, &e);
		if (found < 0)
			return found;
		uint64_t n = e.lblk + e.len - lblk; /* a hole's len stops at UINT64_MAX */
		if (n > last - lblk)
			n = last - lblk;
		if (!found && *holes + n > max) {
			*span_end = (lblk + (max - *holes)) * B;
			*holes = max;
			return 0;
		}
		if (!found)
			*holes += n;
		lblk += n;
	}
	return 0;
}

/* Appends one OP_FALLOC record for [pos, ...); *next gets where it ended.
 * -EAGAIN: the lock was dropped to digest, and the caller retries. */
static int prealloc_locked(struct cairn_fs *fs, uint64_t ino, int mode, uint64_t pos, uint64_t end,
                           uint64_t *next, uint64_t *seq, int *attempt)
{
	struct iref r;
	uint64_t span_end = end, holes = 0;
	int rc = inode_get(&fs->sh, ino, &r);
	if (rc)
		return rc;
	rc = falloc_span(fs, r.i, pos, end, falloc_chunk(fs), &span_end, &holes);
	inode_put(&fs->sh, &r);
	if (!rc)
		rc = op_begin(fs, sizeof(struct op_falloc), holes, SPACE_PREALLOC, attempt);
	if (rc)
		return rc;
	struct op_falloc p = {.time_ns = now_ns(),
	                      .flags = (mode & FALLOC_KEEP_SIZE) ? OP_FALLOC_KEEP_SIZE : 0};
	uint64_t args[3] = {ino, pos, span_end - pos};
	struct iovec iov = {&p, sizeof(p)};
	rc = op_log_apply(fs, OP_FALLOC, args, &iov, 1, seq);
	if (!rc)
		*next = span_end;
	return rc;
}

/* Whether the whole range's holes fit, after a digest if need be. */
static int prealloc_fits(struct cairn_fs *fs, uint64_t ino, uint64_t off, uint64_t end)
{
	int attempt = 0, rc;
	fs_lock_exclusive(fs);
	do {
		struct iref r;
		uint64_t need = 0;
		rc = inode_get(&fs->sh, ino, &r);
		if (rc)
			break;
		rc = data_blocks_needed(fs, r.i, NULL, off, end - off, &need);
		inode_put(&fs->sh, &r);
		if (!rc)
			rc = op_begin(fs, 0, need, SPACE_PREALLOC, &attempt);
	} while (rc == -EAGAIN);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

static int preallocate(struct cairn_fs *fs, struct vnode *vn, int mode, uint64_t off, uint64_t end)
{
	int rc = prealloc_fits(fs, vn->ino, off, end);
	for (uint64_t pos = off; !rc && pos < end;) {
		uint64_t seq = 0;
		int attempt = 0;
		fs_lock_exclusive(fs);
		do
			rc = prealloc_locked(fs, vn->ino, mode, pos, end, &pos, &seq, &attempt);
		while (rc == -EAGAIN);
		pthread_rwlock_unlock(&fs->lock);
		if (!rc)
			rc = op_finish(fs, seq);
	}
	return rc;
}

static int file_fallocate(struct cairn_fs *fs, struct open_file *f, int mode, off_t off, off_t len)
{
	if (off < 0 || len <= 0)
		return -EINVAL;
	if ((uint64_t)off + (uint64_t)len > MAX_FILE_SIZE)
		return -EFBIG;
	if (!can_write(f))
		return -EBADF;
	struct stat st;
	int rc = file_stat(fs, f, &st);
	if (rc)
		return rc;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	if (mode == (FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE))
		return punch(fs, f->vn->ino, (uint64_t)off, (uint64_t)len);
	if (mode & ~FALLOC_KEEP_SIZE)
		return -EOPNOTSUPP;
	return preallocate(fs, f->vn, mode, (uint64_t)off, (uint64_t)off + (uint64_t)len);
}

int cairn_fallocate(cairn_fs *fs, int fd, int mode, off_t off, off_t len)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_fdcall(fs->client, CTL_FALLOCATE, fd, mode, off, len);
	if (!fs)
		return fail(-EINVAL);
	struct open_file *f = fd_get(fs, fd);
	if (!f)
		return fail(-EBADF);
	int rc = file_fallocate(fs, f, mode, off, len);
	fd_put(fs, f);
	return rc ? fail(rc) : 0;
}
