/*
 * shim_files.c - the preload shim's state: the cairn mounts, a client of
 * each one's daemon (attached at the first file the program opens for
 * writing there), and the table from descriptor numbers to the files the
 * shim writes natively (see shim.h).
 *
 * Owns: the mounts, the table.  May call: src/client/client.h, libc
 * (through shim_real where the shim interposes the function itself).
 *
 * The table is read on every write(): a read lock and a reference, so
 * that a close() on another thread cannot free a file in use.  A file is
 * given back to the daemon (client_close) when its last descriptor goes.
 */
#include "shim/shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "client/client.h"

/* Descriptors numbered this high or higher stay the kernel's. */
#define SHIM_FDS 65536
#define SHIM_MOUNTS 16

struct shim_mount {
	char path[PATH_MAX];
	dev_t dev;
	struct client *client;
	int state; /* 0: not attached yet, 1: attached, -1: cannot be */
};

static struct shim_mount mounts[SHIM_MOUNTS];
static int nmounts;
static pthread_once_t mounts_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;

static struct shim_file *table[SHIM_FDS];
static atomic_int in_table; /* descriptors in the table: 0 spares the lock */
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;

/* ---- the mounts ------------------------------------------------------------ */

/* The cairn mounts, from the mount table: all of them, or only the one
 * CAIRN_SHIM_MOUNT names (what `cairn run --mount` sets). */
static void find_mounts(void)
{
	const char *only = getenv("CAIRN_SHIM_MOUNT");
	char want[PATH_MAX] = "";
	if (only && *only && !realpath(only, want))
		return;
	FILE *t = setmntent("/proc/self/mounts", "re");
	struct mntent m;
	char buf[4096];
	while (t && nmounts < SHIM_MOUNTS && getmntent_r(t, &m, buf, sizeof(buf))) {
		struct stat st;
		if (strcmp(m.mnt_type, "fuse.cairn") || (want[0] && strcmp(want, m.mnt_dir)))
			continue;
		if (strlen(m.mnt_dir) >= PATH_MAX || stat(m.mnt_dir, &st))
			continue;
		struct shim_mount *sm = &mounts[nmounts++];
		strcpy(sm->path, m.mnt_dir);
		sm->dev = st.st_dev;
	}
	if (t)
		endmntent(t);
}

static struct shim_mount *mount_of_dev(dev_t dev)
{
	pthread_once(&mounts_once, find_mounts);
	for (int i = 0; i < nmounts; i++)
		if (mounts[i].dev == dev)
			return &mounts[i];
	return NULL;
}

/* The mount's client, attached now if need be; *fresh says it was just
 * attached, so the open that led here was not yet the client's own. */
static struct client *client_of(struct shim_mount *m, int *fresh)
{
	*fresh = 0;
	pthread_mutex_lock(&attach_lock);
	if (m->state == 0) {
		char err[512];
		m->client = client_attach(m->path, err, sizeof(err));
		if (m->client && client_own_opens(m->client, 1)) {
			client_detach(m->client);
			m->client = NULL;
		}
		m->state = m->client ? 1 : -1;
		*fresh = m->client != NULL;
	}
	struct client *c = m->state == 1 ? m->client : NULL;
	pthread_mutex_unlock(&attach_lock);
	return c;
}

/* A child of fork() is not the client its parent attached (the socket and
 * the log are the parent's): it forgets them, and attaches anew if it
 * opens a file for writing.  The descriptors it inherited stay open on
 * the kernel, which serves them through the daemon. */
static void forget_after_fork(void)
{
	for (int fd = 0; fd < SHIM_FDS && atomic_load(&in_table); fd++) {
		struct shim_file *f = table[fd];
		if (!f)
			continue;
		table[fd] = NULL;
		atomic_fetch_sub(&in_table, 1);
		if (atomic_fetch_sub(&f->refs, 1) == 1)
			free(f);
	}
	for (int i = 0; i < nmounts; i++) {
		if (mounts[i].client)
			client_detach(mounts[i].client);
		mounts[i].client = NULL;
		mounts[i].state = 0;
	}
	pthread_rwlock_init(&table_lock, NULL);
	pthread_mutex_init(&attach_lock, NULL);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, forget_after_fork);
}

/* ---- the table ------------------------------------------------------------- */

struct shim_file *shim_get(int fd)
{
	if (fd < 0 || fd >= SHIM_FDS || atomic_load_explicit(&in_table, memory_order_relaxed) == 0)
		return NULL;
	pthread_rwlock_rdlock(&table_lock);
	struct shim_file *f = table[fd];
	if (f)
		atomic_fetch_add(&f->refs, 1);
	pthread_rwlock_unlock(&table_lock);
	return f;
}

void shim_put(struct shim_file *f)
{
	if (!f || atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	/* Its last descriptor is gone: the daemon ends its grant, applying
	 * what the log holds of it first. */
	int saved = errno;
	client_close(f->client, f->cfd);
	pthread_mutex_destroy(&f->pos_lock);
	free(f);
	errno = saved;
}

/* Puts f (a reference the caller gives) at fd; what fd held goes. */
static void table_set(int fd, struct shim_file *f)
{
	if (fd < 0 || fd >= SHIM_FDS) {
		shim_put(f);
		return;
	}
	pthread_rwlock_wrlock(&table_lock);
	struct shim_file *old = table[fd];
	table[fd] = f;
	atomic_fetch_add(&in_table, (f != NULL) - (old != NULL));
	pthread_rwlock_unlock(&table_lock);
	shim_put(old);
}

void shim_forget(int fd)
{
	if (fd >= 0 && fd < SHIM_FDS && atomic_load(&in_table))
		table_set(fd, NULL);
}

void shim_forget_range(unsigned first, unsigned last)
{
	for (unsigned fd = first; fd <= last && fd < SHIM_FDS && atomic_load(&in_table); fd++)
		shim_forget((int)fd);
}

void shim_dup(int fd, int fd2)
{
	if (fd2 < 0 || fd2 == fd)
		return;
	struct shim_file *f = shim_get(fd);
	if (f || atomic_load(&in_table))
		table_set(fd2, f);
}

/* ---- taking a file over ---------------------------------------------------- */

/* Opens fd's file again through the mount, in place of fd: same flags,
 * same position, same close-on-exec. */
static int reopen_in_place(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	int fdflags = fcntl(fd, F_GETFD);
	off_t pos = REAL(lseek, off_t (*)(int, off_t, int))(fd, 0, SEEK_CUR);
	if (flags < 0 || fdflags < 0 || pos < 0)
		return -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int nfd = REAL(open, int (*)(const char *, int, ...))(
	    path, (flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) | O_CLOEXEC);
	if (nfd < 0)
		return -1;
	int rc = REAL(lseek, off_t (*)(int, off_t, int))(nfd, pos, SEEK_SET) < 0
	             ? -1
	             : REAL(dup3, int (*)(int, int, int))(nfd, fd,
	                                                  (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0);
	REAL(close, int (*)(int))(nfd);
	return rc < 0 ? -1 : 0;
}

/* The cairn mount fd is on, and its inode number, without asking the
 * daemon (the kernel's cached attributes: an inode number never changes). */
static struct shim_mount *mount_of_fd(int fd, uint64_t *ino)
{
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx) ||
	    !S_ISREG(sx.stx_mode))
		return NULL;
	*ino = sx.stx_ino;
	return mount_of_dev(makedev(sx.stx_dev_major, sx.stx_dev_minor));
}

/* The client's descriptor for ino with a grant, or -1.  After a reopen
 * in place, the kernel's release of the open replaced is still on its way
 * to the daemon (releases are sent in the background), and until it
 * arrives that open bars the grant: a few tries, a fraction of a
 * millisecond apart. */
static int adopt(struct client *c, uint64_t ino, int flags, int fresh)
{
	for (int tries = fresh ? 40 : 1; tries > 0; tries--) {
		int granted;
		int cfd = client_adopt(c, ino, flags & (O_ACCMODE | O_APPEND), &granted);
		if (cfd >= 0 && granted)
			return cfd;
		if (cfd >= 0)
			client_close(c, cfd);
		else if (errno != EBUSY)
			return -1;
		if (tries > 1)
			usleep(100);
	}
	return -1;
}

void shim_opened(int fd, int flags)
{
	int acc = flags & O_ACCMODE;
	if (fd < 0 || fd >= SHIM_FDS || acc == O_RDONLY || acc == 3 || (flags & O_PATH))
		return;
	int saved = errno;
	uint64_t ino;
	struct shim_mount *m = mount_of_fd(fd, &ino);
	int fresh = 0;
	struct client *c = m ? client_of(m, &fresh) : NULL;
	pthread_once(&fork_once, watch_forks);
	/* The open that made the client was not its own yet. */
	if (c && fresh && reopen_in_place(fd))
		c = NULL;
	int cfd = c ? adopt(c, ino, flags, fresh) : -1;
	struct shim_file *f = cfd >= 0 ? calloc(1, sizeof(*f)) : NULL;
	if (f) {
		atomic_init(&f->refs, 1);
		f->client = c;
		f->cfd = cfd;
		f->append = (flags & O_APPEND) != 0;
		pthread_mutex_init(&f->pos_lock, NULL);
		table_set(fd, f);
	} else {
		shim_forget(fd);
		if (cfd >= 0)
			client_close(c, cfd);
	}
	errno = saved;
}

int shim_reopen_for_mmap(int fd)
{
	uint64_t ino;
	struct shim_mount *m = mount_of_fd(fd, &ino);
	if (!m)
		return -1;
	struct shim_file *f = shim_get(fd);
	if (f)
		shim_settle_pos(f, fd);
	shim_put(f);
	shim_forget(fd);
	/* While the client disowns its opens, another thread's open is an
	 * ordinary one too: slower for that file, never wrong. */
	pthread_mutex_lock(&attach_lock);
	struct client *c = m->state == 1 ? m->client : NULL;
	int rc = c ? client_own_opens(c, 0) : 0;
	if (!rc)
		rc = reopen_in_place(fd);
	if (c)
		client_own_opens(c, 1);
	pthread_mutex_unlock(&attach_lock);
	return rc;
}

void shim_settle_pos(struct shim_file *f, int fd)
{
	if (!atomic_load(&f->pos_stale))
		return;
	pthread_mutex_lock(&f->pos_lock);
	/* The mount asks the daemon for the size, which ingests first. */
	if (atomic_load(&f->pos_stale) &&
	    REAL(lseek, off_t (*)(int, off_t, int))(fd, 0, SEEK_END) >= 0)
		atomic_store(&f->pos_stale, 0);
	pthread_mutex_unlock(&f->pos_lock);
}
