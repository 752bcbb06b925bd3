/*
 * media_file.c - the file kind: a preallocated ordinary file (or block
 * device) written with pwrite() and made durable with fdatasync().
 *
 * Owns: the descriptor and the group commit of one file medium, and the
 * open/size rules that emul shares (media_open_fd).  May call: the kernel
 * (open, pwrite, pread, fallocate, fdatasync), pthreads, util/progress (the
 * zeros written over a new part, which take seconds).  Called only by
 * media.c, which has already checked ranges and reports to the recorder.
 *
 * Mapping of the persistent-memory model: a write is a pwrite into the page
 * cache; flush is a no-op (the kernel writes back by itself); fence is
 * fdatasync, shared between threads that fence at the same time.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/media_internal.h"
#include "util/progress.h"

/* ---- opening and sizing (shared with emul) ---- */

static int device_size(int fd, const struct stat *st, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = (uint64_t)st->st_size;
		return 0;
	}
	if (ioctl(fd, BLKGETSIZE64, size) < 0)
		return -errno;
	return 0;
}

/* Makes a regular file exactly size bytes with its blocks allocated, so that
 * later writes need no allocation (cheaper fdatasync, no ENOSPC mid-log, and
 * on tmpfs no SIGBUS on a mapping). */
static int size_regular_file(int fd, uint64_t cur, uint64_t size)
{
	if (cur > size && ftruncate(fd, (off_t)size) < 0)
		return -errno;
	if (fallocate(fd, 0, 0, (off_t)size) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	/* No preallocation on this file system: a sparse file will do. */
	if (ftruncate(fd, (off_t)size) < 0)
		return -errno;
	return 0;
}

static int check_size(struct media *m, int fd, const struct stat *st, uint64_t size, int flags,
                      char *err, size_t errlen)
{
	uint64_t have;
	int rc = device_size(fd, st, &have);
	if (rc < 0) {
		media_errf(err, errlen, m->path, "cannot read the device size: %s", strerror(-rc));
		return rc;
	}
	if ((flags & MEDIA_CREATE) && S_ISREG(st->st_mode)) {
		rc = size_regular_file(fd, have, size);
		if (rc < 0) {
			media_errf(err, errlen, m->path, "cannot size the file to %llu bytes: %s",
			           (unsigned long long)size, strerror(-rc));
			return rc;
		}
		have = size;
	}
	if (have == 0) {
		media_errf(err, errlen, m->path, "the medium is empty (size 0)");
		return -EINVAL;
	}
	if ((flags & MEDIA_PREFIX) && size != 0 && have > size)
		have = size;
	/* A tier smaller (or larger) than the manifest says is not this tier. */
	if (size != 0 && have != size) {
		media_errf(err, errlen, m->path, "size %llu does not match the manifest's %llu",
		           (unsigned long long)have, (unsigned long long)size);
		return -EINVAL;
	}
	m->size = have;
	return 0;
}

int media_open_fd(struct media *m, uint64_t size, int flags, bool allow_blockdev, char *err,
                  size_t errlen)
{
	int oflags = O_RDWR | O_CLOEXEC | ((flags & MEDIA_CREATE) ? O_CREAT : 0);
	/* A descriptor passed by another process (a client's log, which it
	 * may not open by name) is used through a copy of its own. */
	int fd =
	    m->given_fd >= 0 ? fcntl(m->given_fd, F_DUPFD_CLOEXEC, 0) : open(m->path, oflags, 0600);
	if (fd < 0) {
		int e = errno;
		media_errf(err, errlen, m->path, "cannot open: %s", strerror(e));
		return -e;
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		media_errf(err, errlen, m->path, "cannot stat: %s", strerror(-rc));
	} else if (!S_ISREG(st.st_mode) && !(allow_blockdev && S_ISBLK(st.st_mode))) {
		rc = -EINVAL;
		media_errf(err, errlen, m->path, "not a regular file%s",
		           allow_blockdev ? " or block device" : "");
	} else {
		rc = check_size(m, fd, &st, size, flags, err, errlen);
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int media_extend_fd(struct media *m, int fd, uint64_t size, char *err, size_t errlen)
{
	struct stat st;
	uint64_t have = 0;
	int rc = fstat(fd, &st) < 0 ? -errno : device_size(fd, &st, &have);
	if (!rc && S_ISREG(st.st_mode) && have < size) {
		rc = size_regular_file(fd, have, size);
		/* The new length is file metadata: fsync, not fdatasync. */
		if (!rc && fsync(fd) < 0)
			rc = -errno;
	} else if (!rc && have < size) {
		media_errf(err, errlen, m->path, "the device holds %llu bytes, not %llu",
		           (unsigned long long)have, (unsigned long long)size);
		return -ENOSPC;
	}
	if (rc)
		media_errf(err, errlen, m->path, "cannot extend to %llu bytes: %s",
		           (unsigned long long)size, strerror(-rc));
	return rc;
}

/* Writes zeros over the new part [from, size) of a regular file.
 * Preallocated extents are "unwritten" on ext4 and XFS: the first write to
 * each one changes file metadata, so every fdatasync on the log would also
 * commit the file system's journal.  Written once at mkfs, later
 * fdatasyncs flush data only. */
static int zero_fill(int fd, uint64_t from, uint64_t size)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	/* Gigabytes take seconds: the progress handler hears each 64 MiB. */
	char what[96];
	snprintf(what, sizeof(what), "writing zeros over a new part of %llu MiB",
	         (unsigned long long)((size - from) >> 20));
	size_t chunk = 1 << 20;
	char *zeros = calloc(1, chunk);
	if (!zeros)
		return -ENOMEM;
	int rc = 0;
	uint64_t synced = from; /* written and on the disk up to here */
	for (uint64_t off = from; off < size && !rc;) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
		ssize_t w = pwrite(fd, zeros, n, (off_t)off);
		if (w < 0 && errno != EINTR)
			rc = -errno;
		else if (w > 0)
			off += (uint64_t)w;
		/* Each 64 MiB written goes to the disk before it is counted: the
		 * progress says what is durable, not what sits in the page cache. */
		if (!rc && (off - synced >= (64u << 20) || off >= size)) {
			if (sync_file_range(fd, (off_t)synced, (off_t)(off - synced),
			                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			                        SYNC_FILE_RANGE_WAIT_AFTER) < 0)
				rc = -errno;
			synced = off;
			progress_note(what, off - from, size - from);
		}
	}
	free(zeros);
	if (!rc && fdatasync(fd) < 0)
		rc = -errno;
	return rc;
}

static int file_open(struct media *m, uint64_t size, int flags, char *err, size_t errlen)
{
	struct stat before;
	uint64_t old_size =
	    m->given_fd < 0 && stat(m->path, &before) == 0 ? (uint64_t)before.st_size : 0;
	int fd = media_open_fd(m, size, flags, true, err, errlen);
	if (fd < 0)
		return fd;
	if ((flags & MEDIA_CREATE) && !(flags & MEDIA_SPARSE)) {
		int rc = zero_fill(fd, old_size < m->size ? old_size : m->size, m->size);
		if (rc < 0) {
			media_errf(err, errlen, m->path, "cannot initialize: %s", strerror(-rc));
			close(fd);
			return rc;
		}
	}
	m->fd = fd;
	pthread_rwlock_init(&m->fd_lock, NULL);
	struct media_group *g = &m->group;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->done, NULL);
	atomic_init(&g->write_gen, 0);
	g->synced_gen = 0;
	g->syncing = false;
	g->error = 0;
	return 0;
}

/* Readers check ranges against m->size: it grows only once the bytes
 * behind it are there. */
static int file_grow(struct media *m, uint64_t size, char *err, size_t errlen)
{
	int rc = media_extend_fd(m, m->fd, size, err, errlen);
	if (!rc && (rc = zero_fill(m->fd, m->size, size)) < 0)
		media_errf(err, errlen, m->path, "cannot write zeros over the new part: %s",
		           strerror(-rc));
	if (!rc)
		__atomic_store_n(&m->size, size, __ATOMIC_RELEASE);
	return rc;
}

static void file_close(struct media *m)
{
	close(m->fd);
	pthread_rwlock_destroy(&m->fd_lock);
	pthread_cond_destroy(&m->group.done);
	pthread_mutex_destroy(&m->group.lock);
}

/* ---- data path ---- */

/* Every use of m->fd holds fd_lock shared, so that media_move_fd never
 * closes a number in use; only a medium whose descriptor another process
 * gave (a client's log, the one kind that moves) needs it. */
static void fd_hold(struct media *m)
{
	if (m->given_fd >= 0)
		pthread_rwlock_rdlock(&m->fd_lock);
}

static void fd_release(struct media *m)
{
	if (m->given_fd >= 0)
		pthread_rwlock_unlock(&m->fd_lock);
}

static int pread_all(int fd, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) /* the file shrank under us */
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_read(struct media *m, uint64_t off, void *buf, size_t len)
{
	fd_hold(m);
	int rc = pread_all(m->fd, off, buf, len);
	fd_release(m);
	return rc;
}

static int pwrite_all(int fd, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Counted after the data is in the page cache, so a fence that loads the
 * generation covers every write that completed before it. */
static void wrote(struct media *m)
{
	atomic_fetch_add_explicit(&m->group.write_gen, 1, memory_order_release);
}

static int file_write(struct media *m, uint64_t off, const void *buf, size_t len)
{
	fd_hold(m);
	int rc = pwrite_all(m->fd, off, buf, len);
	fd_release(m);
	if (rc == 0)
		wrote(m);
	return rc;
}

static const uint8_t zeros[65536];

static int file_zero(struct media *m, uint64_t off, size_t len)
{
	while (len > 0) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);
		fd_hold(m);
		int rc = pwrite_all(m->fd, off, zeros, n);
		fd_release(m);
		if (rc < 0)
			return rc;
		off += n;
		len -= n;
	}
	wrote(m);
	return 0;
}

static void file_flush(struct media *m, uint64_t off, size_t len)
{
	/* The kernel writes dirty pages back on its own; fdatasync waits. */
}

int media_file_move_fd(struct media *m, int min)
{
	if (m->given_fd < 0)
		return -EINVAL; /* only a descriptor given by another process moves */
	pthread_rwlock_wrlock(&m->fd_lock);
	int fd = fcntl(m->fd, F_DUPFD_CLOEXEC, min);
	int rc = fd < 0 ? -errno : 0;
	if (fd >= 0) {
		close(m->fd);
		__atomic_store_n(&m->fd, fd, __ATOMIC_RELEASE);
	}
	pthread_rwlock_unlock(&m->fd_lock);
	return rc;
}

/* ---- group commit ---- */

/* Called with the lock held and no sync in flight: runs one fdatasync for
 * everybody, covering every write counted before it starts. */
static void sync_for_all(struct media *m)
{
	struct media_group *g = &m->group;
	uint64_t target = atomic_load_explicit(&g->write_gen, memory_order_acquire);
	g->syncing = true;
	pthread_mutex_unlock(&g->lock);
	int rc;
	fd_hold(m);
	do
		rc = fdatasync(m->fd);
	while (rc < 0 && errno == EINTR);
	int e = rc < 0 ? errno : 0;
	fd_release(m);
	atomic_fetch_add_explicit(&m->syncs, 1, memory_order_relaxed);
	pthread_mutex_lock(&g->lock);
	g->syncing = false;
	/* After a failed fdatasync the kernel may have dropped the dirty
	 * pages: a later "successful" sync proves nothing, so the error
	 * sticks for the life of the medium. */
	if (e != 0 && g->error == 0)
		g->error = -e;
	else if (e == 0 && target > g->synced_gen)
		g->synced_gen = target;
	pthread_cond_broadcast(&g->done);
}

static int file_fence(struct media *m)
{
	struct media_group *g = &m->group;
	uint64_t want = atomic_load_explicit(&g->write_gen, memory_order_acquire);
	pthread_mutex_lock(&g->lock);
	for (;;) {
		if (g->error != 0 || g->synced_gen >= want)
			break;
		if (g->syncing)
			/* The sync in flight may cover us; if it started too
			 * early, one of the waiters runs the next one. */
			pthread_cond_wait(&g->done, &g->lock);
		else
			sync_for_all(m);
	}
	int rc = g->error;
	pthread_mutex_unlock(&g->lock);
	return rc;
}

const struct media_ops media_file_ops = {
    .open = file_open,
    .close = file_close,
    .grow = file_grow,
    .read = file_read,
    .write = file_write,
    .zero = file_zero,
    .flush = file_flush,
    .fence = file_fence,
    .write_implies_flush = true,
};
