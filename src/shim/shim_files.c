/*
 * shim_files.c - the preload shim's state: the cairn mounts, a client of
 * each one's daemon (attached at the first file the program opens for
 * writing there), and the table from descriptor numbers to the files the
 * shim writes natively (see shim.h).
 *
 * Owns: the mounts, the table.  May call: src/client/client.h, libc
 * (through REAL() where the shim interposes the function itself).
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "client/client.h"
#include "util/mountinfo.h"

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
/* A signal handler closed the descriptor (or changed its file's O_APPEND)
 * while its thread was inside the shim: the slot is not written natively
 * any more, and is emptied when the thread leaves the shim.  Cleared
 * whenever the slot is set. */
static atomic_uchar gone[SHIM_FDS];
/* Initial-exec: the variables live in the static TLS block, so reaching
 * them allocates nothing, even in a signal handler. */
#define SHIM_TLS __thread __attribute__((tls_model("initial-exec")))
static SHIM_TLS int depth; /* how deep this thread is in the shim */
/* What handlers left to do when this thread leaves the shim: fd to empty
 * if it still holds f (-1: none), and a reference to f to let go of.
 * Pushed and taken with signals blocked. */
#define SHIM_LATER 64
static SHIM_TLS struct later {
	int fd;
	struct shim_file *f;
} laters[SHIM_LATER];
static SHIM_TLS int nlater;
/* A fork made by a handler that interrupted its thread inside the shim:
 * the child's shim stands aside (every call goes to the kernel). */
static int shim_off;
static atomic_int in_table; /* descriptors in the table: 0 spares the lock */
static atomic_int top_fd;   /* no descriptor above it was ever in the table */
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;

static void table_swap(int fd, struct shim_file *expect, struct shim_file *f);

/* A file's memory comes from mmap, not malloc: a signal handler may open
 * a file while its thread is inside malloc.  Freed ones wait in spare
 * slots for the next open: on this kind of machine a munmap costs tens of
 * microseconds, and a program that opens and closes a file per operation
 * (a mail server, SQLite's journal) would pay it with every close, and an
 * mmap with every open.  A slot is taken and filled with one atomic
 * exchange, so a handler that interrupts either still finds the slots
 * whole. */
#define SHIM_SPARE_FILES 32
static _Atomic(struct shim_file *) spare[SHIM_SPARE_FILES];

static struct shim_file *spare_take(void)
{
	for (int i = 0; i < SHIM_SPARE_FILES; i++)
		if (atomic_load_explicit(&spare[i], memory_order_relaxed)) {
			struct shim_file *f = atomic_exchange(&spare[i], NULL);
			if (f)
				return f;
		}
	return NULL;
}

static int spare_put(struct shim_file *f)
{
	for (int i = 0; i < SHIM_SPARE_FILES; i++) {
		struct shim_file *none = NULL;
		if (atomic_compare_exchange_strong(&spare[i], &none, f))
			return 1;
	}
	return 0;
}

/* A zeroed file, its locks set up. */
static struct shim_file *file_new(void)
{
	struct shim_file *f = spare_take();
	if (f) {
		memset(f, 0, sizeof(*f));
	} else {
		void *p = mmap(NULL, sizeof(struct shim_file), PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		f = p;
	}
	pthread_rwlock_init(&f->io_lock, NULL);
	pthread_mutex_init(&f->pos_lock, NULL);
	return f;
}

static void file_free(struct shim_file *f)
{
	pthread_mutex_destroy(&f->pos_lock);
	pthread_rwlock_destroy(&f->io_lock);
	if (!spare_put(f))
		munmap(f, sizeof(*f));
}

/* ---- the mounts ------------------------------------------------------------ */

/* The cairn mounts, from the mount table: all of them, or only the one
 * CAIRN_SHIM_MOUNT names (what `cairn run --mount` sets). */
static void find_mounts(void)
{
	const char *only = getenv("CAIRN_SHIM_MOUNT");
	char want[PATH_MAX] = "";
	if (only && *only && !realpath(only, want))
		return;
	FILE *t = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	while (t && nmounts < SHIM_MOUNTS && fgets(line, sizeof(line), t)) {
		char *dir;
		dev_t dev;
		line[strcspn(line, "\n")] = '\0';
		/* The device from the line, not a stat of the mount point:
		 * one whose daemon is stopped or stuck would hang every
		 * program the shim is preloaded into at its first open for
		 * writing. */
		if (!mountinfo_cairn_line(line, &dir, &dev) || strlen(dir) >= PATH_MAX ||
		    (want[0] && strcmp(want, dir)))
			continue;
		struct shim_mount *sm = &mounts[nmounts++];
		strcpy(sm->path, dir);
		sm->dev = dev;
	}
	if (t)
		fclose(t);
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
		__atomic_store_n(&m->state, m->client ? 1 : -1, __ATOMIC_RELEASE);
		*fresh = m->client != NULL;
	}
	struct client *c = m->state == 1 ? m->client : NULL;
	pthread_mutex_unlock(&attach_lock);
	return c;
}

int shim_own_fds(int *fds, int max)
{
	int n = 0;
	for (int i = 0; i < nmounts && n < max; i++) {
		if (__atomic_load_n(&mounts[i].state, __ATOMIC_ACQUIRE) != 1)
			continue;
		n += client_own_fds(mounts[i].client, fds + n, max - n);
	}
	for (int i = 1; i < n; i++) /* a handful: insertion sort */
		for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];
			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	return n;
}

int shim_vacate_fd(int fd)
{
	int rc = 0;
	for (int i = 0; i < nmounts && !rc; i++) /* each client moves only its own */
		if (__atomic_load_n(&mounts[i].state, __ATOMIC_ACQUIRE) == 1)
			rc = client_vacate_fd(mounts[i].client, fd);
	return rc;
}

/* Whether path (absolute, as written) is at or under mount point mnt. */
static int under(const char *path, const char *mnt)
{
	size_t n = strlen(mnt);
	return !strncmp(path, mnt, n) && (path[n] == '/' || path[n] == '\0');
}

/* path (relative to dirfd) made absolute, as written (no link followed),
 * into full; 0, or -1 if the directory it starts from cannot be named. */
static int absolute(int dirfd, const char *path, char *full, size_t size)
{
	char base[PATH_MAX];
	if (path[0] == '/') {
		snprintf(full, size, "%s", path);
		return 0;
	}
	ssize_t n = -1;
	if (dirfd == AT_FDCWD) {
		n = getcwd(base, sizeof(base)) ? (ssize_t)strlen(base) : -1;
	} else {
		char link[64];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		n = readlink(link, base, sizeof(base) - 1);
	}
	if (n < 0)
		return -1;
	base[n] = '\0';
	snprintf(full, size, "%s/%s", base, path);
	return 0;
}

void shim_before_open(int dirfd, const char *path, int flags)
{
	int acc = flags & O_ACCMODE;
	if (!path || acc == O_RDONLY || (flags & O_PATH))
		return;
	pthread_once(&mounts_once, find_mounts);
	struct shim_mount *todo = NULL;
	for (int i = 0; i < nmounts && !todo; i++)
		if (__atomic_load_n(&mounts[i].state, __ATOMIC_ACQUIRE) == 0)
			todo = &mounts[i];
	if (!todo)
		return; /* every client attached (or refused): nothing to learn */
	int saved = errno;
	char full[2 * PATH_MAX + 2];
	if (absolute(dirfd, path, full, sizeof(full)) == 0)
		for (int i = 0; i < nmounts; i++) {
			int fresh;
			if (mounts[i].state == 0 && under(full, mounts[i].path))
				client_of(&mounts[i], &fresh);
		}
	errno = saved;
}

int shim_on_mount(const char *path)
{
	pthread_once(&mounts_once, find_mounts);
	if (!path || !nmounts)
		return 0;
	int saved = errno, on = 0;
	char full[2 * PATH_MAX + 2];
	if (absolute(AT_FDCWD, path, full, sizeof(full)) == 0)
		for (int i = 0; i < nmounts && !on; i++)
			on = __atomic_load_n(&mounts[i].state, __ATOMIC_ACQUIRE) >= 0 &&
			     under(full, mounts[i].path);
	errno = saved;
	return on;
}

static void release_fork_held(int in_parent);
/* The fork's thread stays counted in the shim from the hold to the
 * release (settle_before_fork), so that a handler that runs in between
 * (it would wait for a lock its own thread holds) goes to the kernel. */
static int fork_in_shim;

/* A child of fork() is not the client its parent attached (the socket and
 * the log are the parent's): it forgets them, and attaches anew if it
 * opens a file for writing.  The descriptors it inherited stay open on
 * the kernel, which serves them through the daemon. */
static void forget_after_fork(void)
{
	if (fork_in_shim) {
		/* Not shim_leave: what handlers left for later is the
		 * parent's, and goes with the table. */
		fork_in_shim = 0;
		release_fork_held(0);
		depth--;
	}
	if (depth > 0) {
		/* The interrupted code resumes in the child holding what it
		 * held: nothing is freed or reset under it. */
		shim_off = 1;
		return;
	}
	for (int fd = 0; fd < SHIM_FDS && atomic_load(&in_table); fd++) {
		struct shim_file *f = table[fd];
		if (!f)
			continue;
		table[fd] = NULL;
		atomic_store(&gone[fd], 0);
		atomic_fetch_sub(&in_table, 1);
		if (atomic_fetch_sub(&f->refs, 1) == 1)
			file_free(f);
	}
	for (int i = 0; i < nmounts; i++) {
		if (mounts[i].client)
			client_detach(mounts[i].client);
		mounts[i].client = NULL;
		mounts[i].state = 0;
	}
	pthread_rwlock_init(&table_lock, NULL);
	pthread_mutex_init(&attach_lock, NULL);
	nlater = 0; /* their files are gone with the table */
}

/* Calls fn for each file in the table, with a reference held. */
static void each_file(void (*fn)(int fd, struct shim_file *f, const void *arg), const void *arg)
{
	for (int fd = 0; fd <= atomic_load(&top_fd) && atomic_load(&in_table); fd++) {
		struct shim_file *f = shim_get(fd);
		if (f)
			fn(fd, f, arg);
		shim_put(f);
	}
}

/* The kernel places an append at the end it last heard of, which native
 * writes left behind: a descriptor that appends (now: F_SETFL may have
 * just turned it on) makes it ask, while no write of the file can be in
 * flight.  Asked later, a write through the kernel by another thread
 * during the request made the kernel drop the size it brought back, and
 * its appends went on from the old end (their bytes at the true end, the
 * position behind). */
static void kernel_size_known(struct shim_file *f, int fd)
{
	int fl = fcntl(fd, F_GETFL);
	struct stat st;
	if (f->append || (fl >= 0 && (fl & O_APPEND)))
		fstat(fd, &st);
}

/* A native write in flight ends first, and none starts after: a writer
 * finds the mark under the lock and goes to the kernel, at the position
 * settled here.  Before, another thread's write that came between the
 * settling and the table's change was made at a position the kernel did
 * not have, and the next write, the kernel's, covered it (a dprintf, an
 * mmap or an F_SETFL in one thread while another wrote lost a record
 * now and then). */
void shim_give_back(int fd, struct shim_file *f)
{
	pthread_rwlock_wrlock(&f->io_lock);
	atomic_store(&f->given_back, 1);
	shim_settle_pos(f, fd);
	kernel_size_known(f, fd);
	pthread_rwlock_unlock(&f->io_lock);
	table_swap(fd, f, NULL); /* only if fd still holds f */
}

static void give_back_if_same(int fd, struct shim_file *f, const void *arg)
{
	if (f == arg)
		shim_give_back(fd, f);
}

void shim_give_back_all(struct shim_file *f)
{
	each_file(give_back_if_same, f);
}

static void settle_one(int fd, struct shim_file *f, const void *arg)
{
	(void)arg;
	shim_settle_pos(f, fd);
}

/* The files whose native writes a fork holds off: from before it (their
 * positions settled) until the parent has given them back, so that no
 * thread writes one natively at a position the kernel, and the child,
 * do not have.  Before, a thread's writes between the settling and the
 * giving back were covered by its next write, the kernel's (4 runs in 6
 * of one thread writing while another forked lost 575-1,046 records of
 * 20,000).  Forks run their handlers one at a time (libc's lock). */
static struct shim_file *fork_held[SHIM_FDS];
static int nfork_held;

static void hold_for_fork(int fd, struct shim_file *f, const void *arg)
{
	(void)arg;
	for (int i = 0; i < nfork_held; i++)
		if (fork_held[i] == f)
			return;
	pthread_rwlock_wrlock(&f->io_lock);
	atomic_fetch_add(&f->refs, 1);
	fork_held[nfork_held++] = f;
	shim_settle_pos(f, fd);
	kernel_size_known(f, fd);
}

/* Lets them go: given back and unlocked in the parent.  The child forgets
 * them: their locks are left as they are (the child's thread has another
 * id than the one that took them, which an unlock would not recognize),
 * and their memory is set up anew before it is used again (file_new). */
static void release_fork_held(int in_parent)
{
	for (int i = 0; i < nfork_held; i++) {
		struct shim_file *f = fork_held[i];
		if (in_parent) {
			atomic_store(&f->given_back, 1);
			pthread_rwlock_unlock(&f->io_lock);
		}
		if (atomic_fetch_sub(&f->refs, 1) == 1)
			file_free(f);
	}
	nfork_held = 0;
}

/* Before a fork: the positions the shim holds go to the kernel, so that
 * the child inherits the right ones. */
static void settle_before_fork(void)
{
	nfork_held = 0;
	fork_in_shim = 0;
	if (shim_busy()) {
		shim_settle_all_later(); /* a handler's fork: no lock taken */
		return;
	}
	shim_enter(); /* left by the handler after the fork */
	each_file(hold_for_fork, NULL);
	fork_in_shim = 1;
}

/* After it, in the parent: the child shares every descriptor and may read
 * the files through the kernel while this process writes them.  A read
 * in flight in another process is not held off by this process's lock of
 * the file, and could put back a page from before a native write; so the
 * files go back to the kernel.  The files opened from now on are taken
 * over again. */
static void give_back_after_fork(void)
{
	unsigned top = (unsigned)atomic_load(&top_fd);
	if (!fork_in_shim) { /* a handler's fork */
		shim_forget_range_later(0, top);
		return;
	}
	fork_in_shim = 0;
	release_fork_held(1);
	shim_forget_range(0, top);
	shim_leave();
}

static void give_back_if_inherited(int fd, struct shim_file *f, const void *arg)
{
	(void)arg;
	int flags = fcntl(fd, F_GETFD);
	if (flags >= 0 && !(flags & FD_CLOEXEC))
		shim_give_back(fd, f);
}

void shim_before_spawn(void)
{
	/* A descriptor closed on exec may still be the child's, by a
	 * file action's dup2: every position is settled. */
	shim_settle_all();
	each_file(give_back_if_inherited, NULL);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void watch_forks(void)
{
	pthread_atfork(settle_before_fork, give_back_after_fork, forget_after_fork);
}

/* ---- the table ------------------------------------------------------------- */

struct shim_file *shim_get(int fd)
{
	if (fd < 0 || fd >= SHIM_FDS || atomic_load_explicit(&in_table, memory_order_relaxed) == 0)
		return NULL;
	/* Counted as in the shim: a handler that interrupts the read lock
	 * must not ask for the write lock. */
	shim_enter();
	pthread_rwlock_rdlock(&table_lock);
	struct shim_file *f = atomic_load(&gone[fd]) ? NULL : table[fd];
	if (f)
		atomic_fetch_add(&f->refs, 1);
	pthread_rwlock_unlock(&table_lock);
	shim_leave();
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
	file_free(f);
	errno = saved;
}

/* Puts f (a reference the caller gives) at fd, if fd holds `expect` (or
 * anything, for ANY); what fd held goes.  Signals are blocked while the
 * write lock is held: a handler's call takes the read lock. */
#define ANY ((struct shim_file *)-1)
static void table_swap(int fd, struct shim_file *expect, struct shim_file *f)
{
	if (fd < 0 || fd >= SHIM_FDS) {
		shim_put(f);
		return;
	}
	sigset_t all, old_mask;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old_mask);
	pthread_rwlock_wrlock(&table_lock);
	struct shim_file *old = table[fd];
	if (expect != ANY && old != expect) {
		old = f; /* not there any more: f goes instead */
	} else {
		table[fd] = f;
		atomic_store(&gone[fd], 0);
		if (f && fd > atomic_load(&top_fd))
			atomic_store(&top_fd, fd);
		atomic_fetch_add(&in_table, (f != NULL) - (old != NULL));
	}
	pthread_rwlock_unlock(&table_lock);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	shim_put(old);
}

static void table_set(int fd, struct shim_file *f)
{
	table_swap(fd, ANY, f);
}

/* An empty slot is left alone: nothing sets it while fd is open. */
void shim_forget(int fd)
{
	if (fd >= 0 && fd < SHIM_FDS && atomic_load(&in_table) &&
	    __atomic_load_n(&table[fd], __ATOMIC_ACQUIRE))
		table_set(fd, NULL);
}

void shim_forget_range(unsigned first, unsigned last)
{
	int top = atomic_load(&top_fd);
	for (unsigned fd = first; fd <= last && fd <= (unsigned)top && atomic_load(&in_table); fd++)
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

/* Inodes the process has mapped: their pages must stay the kernel's, so
 * the shim writes them natively no more (a mapping outlives descriptors;
 * the set only grows). */
#define SHIM_MAPPED 256
static uint64_t mapped_inos[SHIM_MAPPED];
static atomic_int nmapped; /* > SHIM_MAPPED: too many, none taken over */

static int is_mapped(uint64_t ino)
{
	int n = atomic_load(&nmapped);
	if (n > SHIM_MAPPED)
		return 1;
	for (int i = 0; i < n; i++)
		if (__atomic_load_n(&mapped_inos[i], __ATOMIC_ACQUIRE) == ino)
			return 1;
	return 0;
}

/* The client's descriptor for ino under the grant the open just made
 * holds, or -1 (the file is open elsewhere, or the client's table of
 * grants is full).  No message: the daemon gave the grant at the open. */
static int adopt(struct client *c, uint64_t ino, int flags)
{
	return client_adopt_local(c, ino, flags & (O_ACCMODE | O_APPEND));
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
	/* The open that made the client was not its own yet (its path did not
	 * show the mount: a symbolic link into it).  Opening the file again
	 * in its place would close a descriptor of it, which drops the
	 * process's record locks on it: the kernel keeps this one. */
	int cfd = c && !fresh && !is_mapped(ino) ? adopt(c, ino, flags) : -1;
	struct shim_file *f = cfd >= 0 ? file_new() : NULL;
	if (f) {
		atomic_init(&f->refs, 1);
		f->client = c;
		f->cfd = cfd;
		f->ino = ino;
		f->append = (flags & O_APPEND) != 0;
		/* A new open's position is 0, and nobody else has it yet. */
		atomic_init(&f->pos,
		            shim_pos_word(f->append ? SHIM_POS_KERNEL : SHIM_POS_SYNCED, 0));
		table_set(fd, f);
	} else {
		shim_forget(fd);
		if (cfd >= 0)
			client_close(c, cfd);
	}
	errno = saved;
}

/* ---- mappings -------------------------------------------------------------- */

static void give_back_if_ino(int fd, struct shim_file *f, const void *arg)
{
	if (f->ino == *(const uint64_t *)arg)
		shim_give_back(fd, f);
}

void shim_mapping(int fd)
{
	uint64_t ino;
	if (fd < 0 || fd >= SHIM_FDS || !mount_of_fd(fd, &ino))
		return;
	pthread_mutex_lock(&attach_lock);
	if (!is_mapped(ino)) {
		int i = atomic_load(&nmapped);
		if (i < SHIM_MAPPED)
			__atomic_store_n(&mapped_inos[i], ino, __ATOMIC_RELEASE);
		atomic_store(&nmapped, i + 1);
	}
	pthread_mutex_unlock(&attach_lock);
	/* Every descriptor of the inode goes back to the kernel. */
	each_file(give_back_if_ino, &ino);
	/* The kernel's size of the file may predate the native writes: a
	 * mapping past it would fault.  fstat asks the daemon. */
	struct stat st;
	fstat(fd, &st);
}

/* The kernel's position set to the one f holds; pos_lock held with
 * signals blocked, or none in a handler's call.  0, or -1 with errno (it
 * stays unsettled). */
static int settle(struct shim_file *f, int fd)
{
	off_t (*real_lseek)(int, off_t, int) = REAL(lseek, off_t(*)(int, off_t, int));
	uint64_t w = atomic_load(&f->pos);
	int state = shim_pos_state(w);
	off_t r;
	if (state == SHIM_POS_AHEAD)
		r = real_lseek(fd, shim_pos_at(w), SEEK_SET);
	else if (state == SHIM_POS_END) /* the mount asks the daemon, which ingests first */
		r = real_lseek(fd, 0, SEEK_END);
	else
		return 0;
	if (r < 0)
		return -1;
	atomic_compare_exchange_strong(&f->pos, &w, shim_pos_word(SHIM_POS_SYNCED, r));
	return 0;
}

void shim_settle_pos(struct shim_file *f, int fd)
{
	int state = shim_pos_state(atomic_load(&f->pos));
	if (state != SHIM_POS_AHEAD && state != SHIM_POS_END)
		return;
	sigset_t old;
	shim_signals_block(&old);
	pthread_mutex_lock(&f->pos_lock);
	settle(f, fd);
	pthread_mutex_unlock(&f->pos_lock);
	shim_signals_restore(&old);
}

void shim_pos_to_kernel(struct shim_file *f)
{
	uint64_t w = atomic_load(&f->pos);
	while (!atomic_compare_exchange_weak(&f->pos, &w,
	                                     shim_pos_word(SHIM_POS_KERNEL, shim_pos_at(w) + 1)))
		;
}

void shim_pos_moved(int fd)
{
	struct shim_file *f = shim_get(fd);
	if (f)
		shim_pos_to_kernel(f);
	shim_put(f);
}

void shim_settle_all(void)
{
	each_file(settle_one, NULL);
}

void shim_give_back_fd(int fd)
{
	struct shim_file *f = shim_get(fd);
	if (f)
		shim_give_back_all(f);
	shim_put(f);
}

/* ---- signal handlers ------------------------------------------------------ */

int shim_busy(void)
{
	return depth > 0 || shim_off;
}

void shim_enter(void)
{
	depth++;
}

/* Does what handlers left for this thread, still counted as in the shim
 * (a handler that runs meanwhile leaves its own work for later). */
static void block_signals(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

void shim_signals_block(sigset_t *old)
{
	block_signals(old);
}

void shim_signals_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void run_laters(void)
{
	while (nlater > 0) {
		/* Taken whole with signals blocked: a handler may push more
		 * while the batch is done. */
		struct later batch[SHIM_LATER];
		sigset_t old;
		block_signals(&old);
		int n = nlater;
		memcpy(batch, laters, (size_t)n * sizeof(batch[0]));
		nlater = 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		for (int i = 0; i < n; i++) {
			if (batch[i].fd >= 0)
				table_swap(batch[i].fd, batch[i].f, NULL);
			shim_put(batch[i].f);
		}
	}
}

void shim_leave(void)
{
	if (depth == 1 && nlater > 0) {
		int saved = errno;
		run_laters();
		errno = saved;
	}
	depth--;
}

/* Keeps the reference to f (and fd to empty) for the thread's leaving.
 * With no room left (64 descriptors closed by handlers in one stay in the
 * shim) the reference is never let go of: the slot stays marked gone
 * until it is set again, and the file stays granted to the process. */
static void later(int fd, struct shim_file *f)
{
	sigset_t old;
	block_signals(&old);
	if (nlater < SHIM_LATER)
		laters[nlater++] = (struct later){fd, f};
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Lets go of a reference now unless it is the last (whose letting go
 * asks the daemon): that one waits for the thread's leaving. */
static void put_or_later(struct shim_file *f)
{
	int r = atomic_load(&f->refs);
	while (r > 1)
		if (atomic_compare_exchange_weak(&f->refs, &r, r - 1))
			return;
	later(-1, f);
}

/* Marks slot fd gone (if it holds a file and is not marked yet), keeping
 * a reference to its file for later; the file, or NULL. */
static struct shim_file *mark_gone(int fd, const struct shim_file *only)
{
	if (fd < 0 || fd >= SHIM_FDS || !atomic_load(&in_table))
		return NULL;
	shim_enter();
	pthread_rwlock_rdlock(&table_lock);
	struct shim_file *f = table[fd];
	unsigned char no = 0;
	if (!f || (only && f != only) || !atomic_compare_exchange_strong(&gone[fd], &no, 1))
		f = NULL;
	if (f)
		atomic_fetch_add(&f->refs, 1);
	pthread_rwlock_unlock(&table_lock);
	shim_leave();
	if (f)
		later(fd, f);
	return f;
}

void shim_forget_later(int fd)
{
	mark_gone(fd, NULL);
}

void shim_forget_range_later(unsigned first, unsigned last)
{
	unsigned top = (unsigned)atomic_load(&top_fd);
	for (unsigned fd = first; fd <= last && fd <= top && atomic_load(&in_table); fd++)
		mark_gone((int)fd, NULL);
}

/* Every descriptor of f marked given back, after its position is
 * settled; no lock taken. */
static void give_back_now(struct shim_file *f, int fd)
{
	settle(f, fd);
	unsigned top = (unsigned)atomic_load(&top_fd);
	for (unsigned d = 0; d <= top; d++)
		mark_gone((int)d, f);
}

int shim_setfl_later(int fd, int append)
{
	struct shim_file *f = shim_get(fd);
	int turned_on = f && append && !f->append;
	if (f && f->append != append)
		give_back_now(f, fd);
	if (f)
		put_or_later(f);
	return turned_on;
}

void shim_give_back_fd_later(int fd)
{
	struct shim_file *f = shim_get(fd);
	if (f) {
		give_back_now(f, fd);
		put_or_later(f);
	}
}

static void settle_one_now(int fd, struct shim_file *f, const void *arg)
{
	(void)arg;
	settle(f, fd);
}

void shim_settle_all_later(void)
{
	each_file(settle_one_now, NULL);
}

void shim_settle_pos_now(int fd)
{
	struct shim_file *f = shim_get(fd);
	if (!f)
		return;
	settle(f, fd);
	shim_pos_to_kernel(f);
	put_or_later(f);
}

/* ---- libc's functions -------------------------------------------------------- */

static struct real_fn {
	const char *name;
	void *fn;
} reals[] = {
    {.name = "__open_2"},
    {.name = "__openat_2"},
    {.name = "close"},
    {.name = "close_range"},
    {.name = "closefrom"},
    {.name = "dup"},
    {.name = "dup2"},
    {.name = "dup3"},
    {.name = "fclose"},
    {.name = "fcntl"},
    {.name = "fcntl64"},
    {.name = "freopen"},
    {.name = "freopen64"},
    {.name = "ftruncate"},
    {.name = "lseek"},
    {.name = "mmap"},
    {.name = "open"},
    {.name = "openat"},
    {.name = "popen"},
    {.name = "posix_spawn"},
    {.name = "posix_spawnp"},
    {.name = "pread"},
    {.name = "preadv"},
    {.name = "preadv2"},
    {.name = "pwrite"},
    {.name = "pwritev"},
    {.name = "pwritev2"},
    {.name = "read"},
    {.name = "readv"},
    {.name = "system"},
    {.name = "write"},
    {.name = "writev"},
    {.name = "execve"},
    {.name = "execv"},
    {.name = "execvp"},
    {.name = "execvpe"},
    {.name = "fexecve"},
    {.name = "execveat"},
    {.name = "sendmsg"},
    {.name = "sendmmsg"},
    {.name = "sendfile"},
    {.name = "splice"},
    {.name = "copy_file_range"},
    {.name = "lockf"},
    {.name = "fdopen"},
    {.name = "vdprintf"},
    {.name = "setrlimit"},
    {.name = "setrlimit64"},
    {.name = "prlimit"},
    {.name = "prlimit64"},
};

__attribute__((constructor)) static void find_reals(void)
{
	for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
		__atomic_store_n(&reals[i].fn, dlsym(RTLD_NEXT, reals[i].name), __ATOMIC_RELEASE);
}

void *shim_real(const char *name)
{
	for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
		if (strcmp(reals[i].name, name))
			continue;
		void *fn = __atomic_load_n(&reals[i].fn, __ATOMIC_ACQUIRE);
		return fn ? fn : dlsym(RTLD_NEXT, name);
	}
	return dlsym(RTLD_NEXT, name);
}
