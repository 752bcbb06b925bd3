/*
 * shim_calls.c - the functions a program preloaded with libcairn-preload.so
 * calls in place of libc's (see shim.h for the design).
 *
 * Owns: nothing; the state is shim_files.c's.  May call: shim.h,
 * src/client/client.h, and libc's own functions through REAL().
 *
 * Three kinds of call are here:
 *   - those that make, copy or end descriptors (open, dup, fcntl, close,
 *     fclose...): the kernel does the work, the shim keeps its table true;
 *   - the writes and ftruncate: on a file the shim took over, a record in
 *     the client's log, durable on return; a write goes at the position
 *     the kernel keeps for the descriptor (moved past the bytes by one
 *     lseek);
 *   - the reads of those files, which wait for a native write in progress
 *     (it drops the kernel's pages it covers) and set the kernel's
 *     position first if a native append left it behind; lseek too; and
 *     mmap, after which the kernel writes the file.
 * Everything else reaches the kernel untouched: the mount's daemon
 * applies the client's log before it serves any request of the mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client/client.h"
#include "shim/shim.h"

#define EXPORT __attribute__((visibility("default")))

/* `normal` inside the shim (shim_enter, shim_leave), or `reentered` when a
 * signal handler called in while its thread was already inside (shim.h). */
#define GUARDED(type, reentered, normal)                                                           \
	({                                                                                         \
		type r_;                                                                           \
		if (shim_busy()) {                                                                 \
			r_ = (reentered);                                                          \
		} else {                                                                           \
			shim_enter();                                                              \
			r_ = (normal);                                                             \
			int e_ = errno;                                                            \
			shim_leave();                                                              \
			errno = e_;                                                                \
		}                                                                                  \
		r_;                                                                                \
	})

/* A write no larger than this fits a record of every client log (their
 * rings take records of 1 MiB): if the log refuses it, the grant went. */
#define FITS_A_RECORD (512u << 10)

/* ---- descriptors made -------------------------------------------------------- */

static int wants_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return wants_mode(flags) ? (mode_t)va_arg(ap, int) : 0;
}

static int opened(int fd, int flags)
{
	if (fd >= 0)
		shim_opened(fd, flags);
	return fd;
}

EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int (*real)(const char *, int, ...) = REAL(open, int (*)(const char *, int, ...));
	return GUARDED(
	    int, real(path, flags, mode),
	    (shim_before_open(AT_FDCWD, path, flags), opened(real(path, flags, mode), flags)));
}

/* On 64-bit Linux the 64 forms are the same calls (O_LARGEFILE is implied). */
EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return open(path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int (*real)(int, const char *, int, ...) =
	    REAL(openat, int (*)(int, const char *, int, ...));
	return GUARDED(
	    int, real(dirfd, path, flags, mode),
	    (shim_before_open(dirfd, path, flags), opened(real(dirfd, path, flags, mode), flags)));
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return openat(dirfd, path, flags, mode);
}

EXPORT int creat(const char *path, mode_t mode)
{
	return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

EXPORT int creat64(const char *path, mode_t mode)
{
	return creat(path, mode);
}

/* _FORTIFY_SOURCE's forms: they only check that O_CREAT has its mode. */
EXPORT int __open_2(const char *path, int flags)
{
	int (*real)(const char *, int) = REAL(__open_2, int (*)(const char *, int));
	return GUARDED(int, real(path, flags),
	               (shim_before_open(AT_FDCWD, path, flags), opened(real(path, flags), flags)));
}

EXPORT int __open64_2(const char *path, int flags)
{
	return __open_2(path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	int (*real)(int, const char *, int) = REAL(__openat_2, int (*)(int, const char *, int));
	return GUARDED(
	    int, real(dirfd, path, flags),
	    (shim_before_open(dirfd, path, flags), opened(real(dirfd, path, flags), flags)));
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return __openat_2(dirfd, path, flags);
}

static void settle_first(int fd);

/* ---- descriptors copied and ended ----------------------------------------------- */

static int duped(int fd, int r)
{
	if (r >= 0)
		shim_dup(fd, r);
	return r;
}

/* A copy a handler makes is the kernel's to write, at the position the
 * shim holds. */
static int duped_later(int fd, int r)
{
	if (r >= 0)
		shim_settle_pos_now(fd);
	return r;
}

EXPORT int dup(int fd)
{
	int r = REAL(dup, int (*)(int))(fd);
	return GUARDED(int, duped_later(fd, r), duped(fd, r));
}

/* fd2 is forgotten first, so that no thread writes the file it held as
 * the new one (if the call fails, the kernel just writes fd2 from now on). */
static int forgotten(int fd)
{
	return GUARDED(int, (shim_forget_later(fd), fd), (shim_forget(fd), fd));
}

/* Whether fd is one of the shim's own descriptors (shim_own_fds). */
static int own_fd(int fd)
{
	int fds[SHIM_OWN_FDS], n = shim_own_fds(fds, SHIM_OWN_FDS);
	for (int i = 0; i < n; i++)
		if (fds[i] == fd)
			return 1;
	return 0;
}

/* fd2 is about to be the program's: if the shim holds that number, its
 * descriptor moves first.  A handler that interrupted a thread inside the
 * shim (which may hold the client's lock) cannot move it: EBUSY, as the
 * kernel says when dup2 races an open. */
static int vacated(int fd2)
{
	if (!own_fd(fd2))
		return 0;
	return GUARDED(int, (errno = EBUSY, -1), shim_vacate_fd(fd2));
}

EXPORT int dup2(int fd, int fd2)
{
	if (fd != fd2 && vacated(fd2))
		return -1;
	if (fd != fd2)
		forgotten(fd2);
	int r = REAL(dup2, int (*)(int, int))(fd, fd2);
	return fd == fd2 ? r : GUARDED(int, duped_later(fd, r), duped(fd, r));
}

EXPORT int dup3(int fd, int fd2, int flags)
{
	if (fd != fd2 && vacated(fd2))
		return -1;
	if (fd != fd2)
		forgotten(fd2);
	int r = REAL(dup3, int (*)(int, int, int))(fd, fd2, flags);
	return GUARDED(int, duped_later(fd, r), duped(fd, r));
}

/* The kernel appends at the end of the file as it last heard of it,
 * which the shim's native writes left behind: the position it gives the
 * descriptor after the append would count from there.  A stat makes it
 * ask (a file the shim wrote has no attribute timeout), and the daemon
 * applies the client's log before it answers. */
static void kernel_learns_size(int fd)
{
	struct stat st;
	int e = errno;
	fstat(fd, &st);
	errno = e;
}

/* fcntl's third argument is an int or a pointer: passed on as it came. */
static int fcntl_done(int fd, int cmd, void *arg, int r)
{
	if (r < 0)
		return r;
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
		shim_dup(fd, r);
	} else if (cmd == F_SETFL) {
		/* A change of O_APPEND: the shim's writes would go to the wrong
		 * place; the kernel takes the descriptor back. */
		struct shim_file *f = shim_get(fd);
		int append = ((int)(intptr_t)arg & O_APPEND) != 0;
		if (f && f->append != append)
			shim_give_back_all(f); /* which has the kernel ask the size */
		shim_put(f);
	}
	return r;
}

static int fcntl_reentered(int fd, int cmd, void *arg, int r)
{
	if (r >= 0 && cmd == F_SETFL && shim_setfl_later(fd, ((int)(intptr_t)arg & O_APPEND) != 0))
		kernel_learns_size(fd);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		duped_later(fd, r);
	return r;
}

/* A lock's range may start at the position (SEEK_CUR). */
static int is_lock_cmd(int cmd)
{
	return cmd == F_GETLK || cmd == F_SETLK || cmd == F_SETLKW || cmd == F_OFD_GETLK ||
	       cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	if (is_lock_cmd(cmd))
		settle_first(fd);
	int r = real(fd, cmd, arg);
	return GUARDED(int, fcntl_reentered(fd, cmd, arg, r), fcntl_done(fd, cmd, arg, r));
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(REAL(fcntl, int (*)(int, int, ...)), fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(REAL(fcntl64, int (*)(int, int, ...)), fd, cmd, arg);
}

/* The table forgets a descriptor before the kernel does: after, its
 * number could already be another file's, opened on another thread. */
EXPORT int close(int fd)
{
	/* Not the program's to close: as if it were not open. */
	if (own_fd(fd))
		return errno = EBADF, -1;
	forgotten(fd);
	return REAL(close, int (*)(int))(fd);
}

static void forget_range(unsigned first, unsigned last)
{
	GUARDED(int, (shim_forget_range_later(first, last), 0),
	        (shim_forget_range(first, last), 0));
}

/* The kernel's close_range of [first, last] in the pieces between the
 * shim's own descriptors.  Marking them close-on-exec instead changes
 * nothing (they are). */
static int close_range_around(unsigned first, unsigned last, int flags)
{
	int (*real)(unsigned, unsigned, int) = REAL(close_range, int (*)(unsigned, unsigned, int));
	int fds[SHIM_OWN_FDS],
	    n = flags & CLOSE_RANGE_CLOEXEC ? 0 : shim_own_fds(fds, SHIM_OWN_FDS);
	unsigned from = first;
	for (int i = 0; i < n && from <= last; i++) {
		unsigned own = (unsigned)fds[i];
		if (own < from || own > last)
			continue;
		if (own > from && real(from, own - 1, flags) < 0)
			return -1;
		from = own + 1;
	}
	return from <= last ? real(from, last, flags) : 0;
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last)
		forget_range(first, last);
	if (first > last)
		return REAL(close_range, int (*)(unsigned, unsigned, int))(first, last, flags);
	return close_range_around(first, last, flags);
}

/* glibc's closefrom calls the kernel's close_range from inside libc. */
EXPORT void closefrom(int lowfd)
{
	if (lowfd < 0) {
		REAL(closefrom, void (*)(int))(lowfd);
		return;
	}
	forget_range((unsigned)lowfd, UINT_MAX);
	int e = errno;
	if (close_range_around((unsigned)lowfd, UINT_MAX, 0) < 0) {
		/* No close_range (a kernel before 5.9): one at a time, as
		 * glibc's own fallback does, up to the highest open. */
		long top = sysconf(_SC_OPEN_MAX);
		for (long fd = lowfd; fd < top; fd++)
			if (!own_fd((int)fd))
				REAL(close, int (*)(int))((int)fd);
	}
	errno = e;
}

/* libc's streams close their descriptor inside libc, where the shim
 * cannot see; the shim's own (shim_stdio.c) close it with the shim's
 * close, after their last buffer went out natively. */
EXPORT int fclose(FILE *stream)
{
	if (stream && !shim_stream_owns(stream))
		forgotten(REAL(fileno, int (*)(FILE *))(stream));
	return REAL(fclose, int (*)(FILE *))(stream);
}

EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
	if (stream && shim_stream_owns(stream))
		return shim_stream_reopen(path, mode, stream);
	if (stream)
		forgotten(REAL(fileno, int (*)(FILE *))(stream));
	return REAL(freopen, FILE * (*)(const char *, const char *, FILE *))(path, mode, stream);
}

EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
	if (stream && shim_stream_owns(stream))
		return shim_stream_reopen(path, mode, stream);
	if (stream)
		forgotten(REAL(fileno, int (*)(FILE *))(stream));
	return REAL(freopen64, FILE * (*)(const char *, const char *, FILE *))(path, mode, stream);
}

/* ---- native writes ---------------------------------------------------------- */

static off_t real_lseek(int fd, off_t off, int whence)
{
	return REAL(lseek, off_t(*)(int, off_t, int))(fd, off, whence);
}

/* The record is in the log, not in the kernel's pages of the file.  A
 * page the kernel holds of it (a read brought it, or a write through the
 * kernel) would answer a later read with what the file held before: so
 * all of them go whenever the daemon has served such a request since the
 * last drop (it counts them in the grant, before it looks at the log);
 * otherwise the kernel holds none, and this costs no system call.  A read
 * after the drop asks the daemon, which ingests the log first.  With
 * f->io_lock held alone. */
static void drop_pages(struct shim_file *f, int fd)
{
	uint64_t n = 0;
	int counted = client_local_kernel_reads(f->client, f->cfd, &n) == 1;
	if (counted && f->pages_dropped && n == f->pages_dropped_at)
		return;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	/* A request counted after n was read is seen by the next write. */
	f->pages_dropped = counted;
	f->pages_dropped_at = n;
}

/* The descriptor's position for a write() of n bytes, moved past them:
 * the one the shim holds, or the kernel's, learnt and moved by one lseek
 * (atomic with the kernel's own writes through another descriptor
 * sharing it).  *taken: the word stored, or 0.  -1 with errno.  With
 * pos_lock held.  A signal handler that writes through the kernel between
 * the look and the store makes the compare-and-swap fail (struct
 * shim_file, pos): the shim's position is then taken again, after the
 * handler's bytes; the kernel's, which the handler's write moved past the
 * range the lseek took, holds as the handler left it.  Before, a
 * handler's write that came between them was covered by the thread's
 * next write. */
static off_t take_position(struct shim_file *f, int fd, size_t n, uint64_t *taken)
{
	for (;;) {
		uint64_t w = atomic_load(&f->pos);
		int state = shim_pos_state(w);
		if (state == SHIM_POS_SYNCED || state == SHIM_POS_AHEAD) {
			off_t pos = shim_pos_at(w);
			*taken = shim_pos_word(SHIM_POS_AHEAD, pos + (off_t)n);
			if (atomic_compare_exchange_strong(&f->pos, &w, *taken))
				return pos;
			continue;
		}
		off_t end = real_lseek(fd, (off_t)n, SEEK_CUR);
		if (end < 0)
			return -1;
		*taken = shim_pos_held(end, w);
		if (!atomic_compare_exchange_strong(&f->pos, &w, *taken))
			*taken = 0;
		return end - (off_t)n;
	}
}

/* Writes the n bytes iov gathers to f natively: at `at`, or (at < 0) at
 * the descriptor's position, which moves on.  n; 0 when the kernel must
 * write them; or -1 with errno.  *refused: the log did not take them.
 * With f->io_lock held alone. */
static ssize_t native_write_locked(struct shim_file *f, int fd, const struct iovec *iov, int cnt,
                                   size_t n, off_t at, int *refused)
{
	if (f->append || at >= 0) {
		/* pwrite appends too, but leaves the position where the last
		 * write() put it: settled first, it stays there. */
		if (f->append && at >= 0)
			shim_settle_pos(f, fd);
		uint64_t w = atomic_load(&f->pos); /* a handler's lseek after it holds */
		int r = client_local_pwritev(f->client, f->cfd, iov, cnt, f->append ? 0 : at);
		if (r == 1) {
			drop_pages(f, fd);
			if (f->append && at < 0)
				atomic_compare_exchange_strong(&f->pos, &w,
				                               shim_pos_word(SHIM_POS_END, 0));
		}
		*refused = r == 0;
		return r == 1 ? (ssize_t)n : r;
	}
	/* The range is this write's once taken: if the log does not take
	 * the bytes (or they may be too large for it), the kernel writes
	 * them there. */
	pthread_mutex_lock(&f->pos_lock);
	uint64_t taken = 0;
	off_t pos = take_position(f, fd, n, &taken);
	ssize_t r = -1;
	if (pos >= 0) {
		int lr =
		    n <= FITS_A_RECORD ? client_local_pwritev(f->client, f->cfd, iov, cnt, pos) : 0;
		*refused = lr == 0 && n <= FITS_A_RECORD;
		if (lr == 1)
			drop_pages(f, fd);
		r = lr == 1   ? (ssize_t)n
		    : lr == 0 ? REAL(pwritev, ssize_t(*)(int, const struct iovec *, int, off_t))(
		                    fd, iov, cnt, pos)
		              : -1;
		if (r < (ssize_t)n) {
			/* What was not written gives its part of the range back:
			 * the position ends after what was. */
			uint64_t expect = taken;
			if (taken && pos + (r > 0 ? r : 0) < SHIM_POS_FITS)
				atomic_compare_exchange_strong(
				    &f->pos, &expect,
				    shim_pos_word(SHIM_POS_AHEAD, pos + (r > 0 ? r : 0)));
		}
		if (r == 0)
			r = -1, errno = EIO; /* nothing written, and no error said */
	}
	pthread_mutex_unlock(&f->pos_lock);
	return r;
}

static ssize_t native_write(struct shim_file *f, int fd, const struct iovec *iov, int cnt, size_t n,
                            off_t at, int *refused)
{
	pthread_rwlock_wrlock(&f->io_lock);
	ssize_t r =
	    atomic_load(&f->given_back) ? 0 : native_write_locked(f, fd, iov, cnt, n, at, refused);
	pthread_rwlock_unlock(&f->io_lock);
	return r;
}

/* ---- the file size limit ------------------------------------------------------ */

/* RLIMIT_FSIZE: the kernel's writes and truncates check it (EFBIG and
 * SIGXFSZ past it, a short write across it); the shim's records would
 * not.  So while the process has a limit, the shim leaves every write of
 * its files to the kernel (a shell's `ulimit -f` before a program, which
 * sets it after it opened its files).  The limit is read at the first
 * write and again after the process sets one (setrlimit, prlimit on
 * itself); a limit another process sets with prlimit is not seen. */
static _Atomic uint64_t fsize_gen = 1; /* moved by every change */
static _Atomic uint64_t fsize_seen;    /* gen << 1 | limited, as last read */

static int fsize_limited(void)
{
	uint64_t gen = atomic_load(&fsize_gen), seen = atomic_load(&fsize_seen);
	if (seen >> 1 == gen)
		return (int)(seen & 1);
	struct rlimit rl;
	int limited = getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
	/* A change meanwhile moved gen past this one: the next write reads
	 * the limit again. */
	atomic_store(&fsize_seen, gen << 1 | (uint64_t)limited);
	return limited;
}

static void fsize_changed(int resource, int r)
{
	if (r == 0 && resource == RLIMIT_FSIZE)
		atomic_fetch_add(&fsize_gen, 1);
}

EXPORT int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl)
{
	int r = REAL(setrlimit, int (*)(__rlimit_resource_t, const struct rlimit *))(resource, rl);
	fsize_changed((int)resource, r);
	return r;
}

EXPORT int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rl)
{
	int r =
	    REAL(setrlimit64, int (*)(__rlimit_resource_t, const struct rlimit64 *))(resource, rl);
	fsize_changed((int)resource, r);
	return r;
}

EXPORT int prlimit(pid_t pid, __rlimit_resource_t resource, const struct rlimit *rl,
                   struct rlimit *old)
{
	int r = REAL(prlimit, int (*)(pid_t, __rlimit_resource_t, const struct rlimit *,
	                              struct rlimit *))(pid, resource, rl, old);
	if (rl && (pid == 0 || pid == getpid()))
		fsize_changed((int)resource, r);
	return r;
}

EXPORT int prlimit64(pid_t pid, __rlimit_resource_t resource, const struct rlimit64 *rl,
                     struct rlimit64 *old)
{
	int r = REAL(prlimit64, int (*)(pid_t, __rlimit_resource_t, const struct rlimit64 *,
	                                struct rlimit64 *))(pid, resource, rl, old);
	if (rl && (pid == 0 || pid == getpid()))
		fsize_changed((int)resource, r);
	return r;
}

/* The shim's write of iov (one record, atomic, as the kernel's), or
 * *done = 0 when the kernel must make it: always for a signal handler
 * that interrupted its thread inside the shim, and while the process has
 * a file size limit (the file then goes back to the kernel for good). */
static ssize_t try_native(int fd, const struct iovec *iov, int cnt, off_t at, int *done)
{
	*done = 0;
	/* What the kernel would refuse, it is left to refuse. */
	size_t total = 0;
	int fits = cnt > 0 && cnt <= IOV_MAX;
	for (int i = 0; i < cnt && fits; i++) {
		fits = iov[i].iov_len <= (size_t)SSIZE_MAX - total &&
		       (iov[i].iov_base || !iov[i].iov_len);
		total += fits ? iov[i].iov_len : 0;
	}
	if (shim_busy() && at < 0)
		shim_settle_pos_now(fd); /* the kernel writes at the position */
	struct shim_file *f = fits && total > 0 && !shim_busy() ? shim_get(fd) : NULL;
	if (!f)
		return 0;
	shim_enter();
	if (fsize_limited()) {
		shim_give_back(fd, f);
		shim_put(f);
		shim_leave();
		return 0;
	}
	int refused = 0;
	ssize_t r = native_write(f, fd, iov, cnt, total, at, &refused);
	if (refused && total <= FITS_A_RECORD) {
		/* The grant went (a write this small fits any client log's
		 * record): the kernel writes fd from now on. */
		shim_give_back(fd, f);
	}
	shim_put(f);
	int e = errno;
	shim_leave();
	errno = e;
	*done = r != 0;
	return r;
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct iovec v = {(void *)buf, n};
	int done;
	ssize_t r = try_native(fd, &v, n ? 1 : 0, -1, &done);
	return done ? r : REAL(write, ssize_t(*)(int, const void *, size_t))(fd, buf, n);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct iovec v = {(void *)buf, n};
	int done = 0;
	ssize_t r = off >= 0 ? try_native(fd, &v, n ? 1 : 0, off, &done) : 0;
	return done ? r
	            : REAL(pwrite, ssize_t(*)(int, const void *, size_t, off_t))(fd, buf, n, off);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	int done;
	ssize_t r = try_native(fd, iov, cnt, -1, &done);
	return done ? r : REAL(writev, ssize_t(*)(int, const struct iovec *, int))(fd, iov, cnt);
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	int done = 0;
	ssize_t r = off >= 0 ? try_native(fd, iov, cnt, off, &done) : 0;
	return done ? r
	            : REAL(pwritev, ssize_t(*)(int, const struct iovec *, int, off_t))(fd, iov, cnt,
	                                                                               off);
}

EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

/* Flags of pwritev2 that a native write already honours: it is durable
 * when it returns. */
#define RWF_NATIVE (RWF_HIPRI | RWF_DSYNC | RWF_SYNC)

typedef ssize_t (*pwritev2_fn)(int, const struct iovec *, int, off_t, int);

/* pwritev2 with other flags (RWF_APPEND, RWF_NOAPPEND, RWF_NOWAIT...) is
 * the kernel's, with the native writes of the file held off: at the
 * position (off -1), which is settled first and the kernel's after; and
 * where the kernel places an append, at the end it last heard of, which
 * it is made to ask for first (kernel_learns_size says why).  Before,
 * `hello` then `world` at the position with RWF_DSYNC left `world`, and
 * RWF_APPEND wrote over the start of the file. */
static ssize_t kernel_pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	pwritev2_fn real = REAL(pwritev2, pwritev2_fn);
	struct shim_file *f = shim_busy() ? NULL : shim_get(fd);
	if (!f) {
		if (shim_busy() && off == -1)
			shim_settle_pos_now(fd);
		return real(fd, iov, cnt, off, flags);
	}
	shim_enter();
	pthread_rwlock_wrlock(&f->io_lock);
	if (off == -1)
		shim_settle_pos(f, fd);
	if ((flags & RWF_APPEND) || f->append)
		kernel_learns_size(fd);
	ssize_t r = real(fd, iov, cnt, off, flags);
	int e = errno;
	if (off == -1)
		shim_pos_to_kernel(f);
	pthread_rwlock_unlock(&f->io_lock);
	shim_put(f);
	shim_leave();
	errno = e;
	return r;
}

EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	int done = 0;
	ssize_t r = !(flags & ~RWF_NATIVE) && off >= -1 ? try_native(fd, iov, cnt, off, &done) : 0;
	return done ? r : kernel_pwritev2(fd, iov, cnt, off, flags);
}

EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return pwritev2(fd, iov, cnt, off, flags);
}

/* ---- reads, and the kernel's position ----------------------------------------- */

/* Before a read at the kernel's position (not positional): the position
 * is set, if a native append left it behind.  A read of a file the shim
 * writes holds its io_lock shared until it is done (read_done lets go of
 * it), inside the shim.  A signal handler's read takes no lock. */
static struct shim_file *read_start(int fd, int positional)
{
	if (shim_busy()) {
		if (!positional)
			shim_settle_pos_now(fd);
		return NULL;
	}
	struct shim_file *f = shim_get(fd);
	if (!f)
		return NULL;
	shim_enter();
	pthread_rwlock_rdlock(&f->io_lock);
	if (!positional)
		shim_settle_pos(f, fd);
	return f;
}

/* errno is the read's when it returns.  A read at the kernel's position
 * moved it. */
static void read_done(struct shim_file *f, int positional)
{
	if (!f)
		return;
	int e = errno;
	if (!positional)
		shim_pos_to_kernel(f);
	pthread_rwlock_unlock(&f->io_lock);
	shim_put(f);
	shim_leave();
	errno = e;
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	struct shim_file *f = read_start(fd, 0);
	ssize_t r = REAL(read, ssize_t(*)(int, void *, size_t))(fd, buf, n);
	read_done(f, 0);
	return r;
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct shim_file *f = read_start(fd, 0);
	ssize_t r = REAL(readv, ssize_t(*)(int, const struct iovec *, int))(fd, iov, cnt);
	read_done(f, 0);
	return r;
}

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	struct shim_file *f = read_start(fd, 1);
	ssize_t r = REAL(pread, ssize_t(*)(int, void *, size_t, off_t))(fd, buf, n, off);
	read_done(f, 1);
	return r;
}

EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	return pread(fd, buf, n, off);
}

EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	struct shim_file *f = read_start(fd, 1);
	ssize_t r =
	    REAL(preadv, ssize_t(*)(int, const struct iovec *, int, off_t))(fd, iov, cnt, off);
	read_done(f, 1);
	return r;
}

EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return preadv(fd, iov, cnt, off);
}

EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	struct shim_file *f = read_start(fd, off != -1);
	ssize_t r = REAL(preadv2, ssize_t(*)(int, const struct iovec *, int, off_t, int))(
	    fd, iov, cnt, off, flags);
	read_done(f, off != -1);
	return r;
}

EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return preadv2(fd, iov, cnt, off, flags);
}

static int settled(int fd)
{
	struct shim_file *f = shim_get(fd);
	if (f)
		shim_settle_pos(f, fd);
	shim_put(f);
	return 0;
}

/* Before the kernel uses fd's position: set to the one the shim holds (a
 * handler's call takes no lock for it). */
static void settle_first(int fd)
{
	GUARDED(int, (shim_settle_pos_now(fd), 0), settled(fd));
}

/* lseek of a descriptor the shim writes: no read or write of it is in
 * flight meanwhile, so the position it returns is the one that holds.
 * Only SEEK_CUR counts from the position: the others do not read it. */
static off_t seek(int fd, off_t off, int whence)
{
	struct shim_file *f = shim_get(fd);
	if (!f)
		return real_lseek(fd, off, whence);
	pthread_rwlock_wrlock(&f->io_lock);
	if (whence == SEEK_CUR)
		shim_settle_pos(f, fd);
	/* pos_lock too: a settling (before a lock command, a fork) moves the
	 * kernel's position under it alone.  A failed lseek moves nothing:
	 * the state holds.  A signal handler's write between the look and
	 * the store makes the swap fail.  If the word held a position ahead
	 * of the kernel's, the handler put the kernel's back there before it
	 * wrote, undoing this lseek if it came after it: an lseek to a place
	 * not counted from the position is made again (the handler's write
	 * came first).  Otherwise the handler moved nothing back, its write
	 * went where this lseek put the position, and the kernel's holds as
	 * that write left it. */
	pthread_mutex_lock(&f->pos_lock);
	off_t r;
	for (;;) {
		uint64_t w = atomic_load(&f->pos);
		int was = shim_pos_state(w);
		r = real_lseek(fd, off, whence);
		if (r < 0 || atomic_compare_exchange_strong(&f->pos, &w, shim_pos_held(r, w)))
			break;
		if (whence == SEEK_CUR || (was != SHIM_POS_AHEAD && was != SHIM_POS_END))
			break;
	}
	pthread_mutex_unlock(&f->pos_lock);
	pthread_rwlock_unlock(&f->io_lock);
	shim_put(f);
	return r;
}

EXPORT off_t lseek(int fd, off_t off, int whence)
{
	return GUARDED(off_t, (shim_settle_pos_now(fd), real_lseek(fd, off, whence)),
	               seek(fd, off, whence));
}

EXPORT off_t lseek64(int fd, off_t off, int whence)
{
	return lseek(fd, off, whence);
}

/* ---- truncation ------------------------------------------------------------- */

/* ftruncate of a file the shim writes: a record in the client's log, as
 * a write.  The position an O_APPEND write left behind is set first (a
 * truncate does not move it; set later, it would be the new end).  The
 * kernel's pages from the new end on go: they may hold bytes that must
 * read as zeros if the file grows again.  *done = 0: the kernel's. */
static int native_truncate(int fd, off_t len, int *done)
{
	*done = 0;
	struct shim_file *f = len >= 0 && !shim_busy() ? shim_get(fd) : NULL;
	if (!f)
		return 0;
	shim_enter();
	if (fsize_limited()) {
		shim_give_back(fd, f);
		shim_put(f);
		shim_leave();
		return 0;
	}
	pthread_rwlock_wrlock(&f->io_lock);
	shim_settle_pos(f, fd);
	int r = atomic_load(&f->given_back) ? 0 : client_local_ftruncate(f->client, f->cfd, len);
	if (r == 1)
		drop_pages(f, fd);
	pthread_rwlock_unlock(&f->io_lock);
	shim_put(f);
	int e = errno;
	shim_leave();
	errno = e;
	*done = r != 0;
	return r == 1 ? 0 : -1;
}

EXPORT int ftruncate(int fd, off_t len)
{
	int done;
	int r = native_truncate(fd, len, &done);
	if (done)
		return r;
	settle_first(fd); /* the kernel's truncate moves the end too */
	return REAL(ftruncate, int (*)(int, off_t))(fd, len);
}

EXPORT int ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

/* ---- programs started ------------------------------------------------------------ */

/* A handler's spawn (not async-signal-safe anyway) gives nothing back. */
static void spawning(void)
{
	GUARDED(int, 0, (shim_before_spawn(), 0));
}

/* vfork's child shares the parent's memory until it execs or exits, and
 * runs no fork handlers: the shim's table is the parent's, so the child's
 * dup2, close and close_range (a shell's redirections, Python's
 * subprocess) would change what the parent's descriptors write, and the
 * program it execs would move the kernel's position of files the parent
 * writes natively without the parent knowing.  So the shim's vfork is a
 * fork, which POSIX allows (the child of vfork may only exec or _exit):
 * the handlers settle the positions, and the parent's files go back to
 * the kernel, as after any fork. */
EXPORT pid_t vfork(void)
{
	return fork();
}

/* fork itself is watched by pthread_atfork (shim_files.c); these start a
 * program without it, sharing the descriptors that do not close on exec. */
EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	spawning();
	return REAL(posix_spawn, int (*)(pid_t *, const char *, const posix_spawn_file_actions_t *,
	                                 const posix_spawnattr_t *, char *const[],
	                                 char *const[]))(pid, path, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	spawning();
	return REAL(posix_spawnp, int (*)(pid_t *, const char *, const posix_spawn_file_actions_t *,
	                                  const posix_spawnattr_t *, char *const[],
	                                  char *const[]))(pid, file, fa, attr, argv, envp);
}

EXPORT int system(const char *command)
{
	spawning();
	return REAL(system, int (*)(const char *))(command);
}

EXPORT FILE *popen(const char *command, const char *type)
{
	spawning();
	return REAL(popen, FILE * (*)(const char *, const char *))(command, type);
}

/* exec keeps the descriptors: the positions the shim holds go to the
 * kernel, where the new image finds them (the session itself ends with
 * the old image). */
static void execing(void)
{
	GUARDED(int, (shim_settle_all_later(), 0), (shim_settle_all(), 0));
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	execing();
	return REAL(execve, int (*)(const char *, char *const[], char *const[]))(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
	execing();
	return REAL(execv, int (*)(const char *, char *const[]))(path, argv);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	execing();
	return REAL(execvp, int (*)(const char *, char *const[]))(file, argv);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	execing();
	return REAL(execvpe, int (*)(const char *, char *const[], char *const[]))(file, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	execing();
	return REAL(fexecve, int (*)(int, char *const[], char *const[]))(fd, argv, envp);
}

EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	execing();
	return REAL(execveat, int (*)(int, const char *, char *const[], char *const[], int))(
	    dirfd, path, argv, envp, flags);
}

/* execl's arguments, up to the NULL, as an argv on the caller's stack
 * (exec is async-signal-safe: no malloc); with_env: also the pointer
 * after the NULL, execle's environment, into envp. */
#define EXECL_ARGV(argv, arg0, with_env, envp)                                                     \
	va_list ap_;                                                                               \
	size_t n_ = 1;                                                                             \
	va_start(ap_, arg0);                                                                       \
	while (va_arg(ap_, char *))                                                                \
		n_++;                                                                              \
	va_end(ap_);                                                                               \
	char *argv[n_ + 1];                                                                        \
	argv[0] = (char *)(arg0);                                                                  \
	va_start(ap_, arg0);                                                                       \
	for (size_t i_ = 1; i_ <= n_; i_++)                                                        \
		argv[i_] = va_arg(ap_, char *);                                                    \
	if (with_env)                                                                              \
		envp = va_arg(ap_, char *const *);                                                 \
	va_end(ap_)

EXPORT int execl(const char *path, const char *arg, ...)
{
	char *const *envp = NULL;
	EXECL_ARGV(argv, arg, 0, envp);
	(void)envp; /* execl takes no environment */
	return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	char *const *envp = NULL;
	EXECL_ARGV(argv, arg, 0, envp);
	(void)envp;
	return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	char *const *envp = NULL;
	EXECL_ARGV(argv, arg, 1, envp);
	return execve(path, argv, envp);
}

/* ---- code that uses the kernel's position behind the shim ------------------------ */

/* Every descriptor of fd's file goes back to the kernel, its position
 * settled: stdio (fdopen, dprintf) and other processes (a descriptor
 * sent over a socket) write and read at the kernel's position. */
static void give_back_fd(int fd)
{
	GUARDED(int, (shim_give_back_fd_later(fd), 0), (shim_give_back_fd(fd), 0));
}

EXPORT FILE *fdopen(int fd, const char *mode)
{
	give_back_fd(fd);
	return REAL(fdopen, FILE * (*)(int, const char *))(fd, mode);
}

EXPORT int vdprintf(int fd, const char *fmt, va_list ap)
{
	give_back_fd(fd);
	return REAL(vdprintf, int (*)(int, const char *, va_list))(fd, fmt, ap);
}

EXPORT int dprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vdprintf(fd, fmt, ap);
	va_end(ap);
	return r;
}

/* lockf locks from the position on. */
EXPORT int lockf(int fd, int cmd, off_t len)
{
	settle_first(fd);
	return REAL(lockf, int (*)(int, int, off_t))(fd, cmd, len);
}

EXPORT int lockf64(int fd, int cmd, off_t len)
{
	return lockf(fd, cmd, len);
}

/* A copy between descriptors in the kernel: a file the shim writes that
 * it writes into is the kernel's from then on; one it reads at the
 * position has its position settled first, and moved after.  The
 * kernel's copy reads its pages without asking for the file's size, and
 * appends at the end it last heard of: the size native writes gave the
 * file is fetched first (a stat asks the daemon: a granted file's
 * attributes have no timeout), for `in`, and for `out` when it appends. */
static int size_refreshed(int fd, int if_appending)
{
	struct shim_file *f = shim_get(fd);
	struct stat st;
	if (f && (!if_appending || f->append))
		fstat(fd, &st);
	shim_put(f);
	return 0;
}

/* Both sizes are fetched before `out` goes back: a copy within one file
 * (or between two of its descriptors) gives `in` back with it, after
 * which the shim no longer knows it wrote `in`; such a copy copied
 * nothing. */
static void copy_start(int in, int in_at_pos, int out)
{
	GUARDED(int, 0, size_refreshed(in, 0));
	GUARDED(int, 0, size_refreshed(out, 1));
	give_back_fd(out);
	if (in_at_pos)
		settle_first(in);
}

static void copy_done(int in, int in_at_pos)
{
	if (in_at_pos)
		GUARDED(int, 0, (shim_pos_moved(in), 0));
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
	copy_start(in, !off, out);
	ssize_t r = REAL(sendfile, ssize_t(*)(int, int, off_t *, size_t))(out, in, off, count);
	copy_done(in, !off);
	return r;
}

EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t count)
{
	return sendfile(out, in, off, count);
}

EXPORT ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len,
                      unsigned int flags)
{
	copy_start(in, !off_in, out);
	ssize_t r = REAL(splice, ssize_t(*)(int, loff_t *, int, loff_t *, size_t, unsigned int))(
	    in, off_in, out, off_out, len, flags);
	copy_done(in, !off_in);
	return r;
}

EXPORT ssize_t copy_file_range(int in, loff_t *off_in, int out, loff_t *off_out, size_t len,
                               unsigned int flags)
{
	copy_start(in, !off_in, out);
	ssize_t r =
	    REAL(copy_file_range, ssize_t(*)(int, loff_t *, int, loff_t *, size_t, unsigned int))(
	        in, off_in, out, off_out, len, flags);
	copy_done(in, !off_in);
	return r;
}

/* Descriptors sent to another process share their position with it. */
static void sending(const struct msghdr *msg)
{
	if (!msg)
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			give_back_fd(fd);
		}
	}
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	sending(msg);
	return REAL(sendmsg, ssize_t(*)(int, const struct msghdr *, int))(fd, msg, flags);
}

EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags)
{
	for (unsigned int i = 0; vec && i < n; i++)
		sending(&vec[i].msg_hdr);
	return REAL(sendmmsg, int (*)(int, struct mmsghdr *, unsigned int, int))(fd, vec, n, flags);
}

/* ---- mappings ------------------------------------------------------------------ */

/* A mapping shares the kernel's pages of the file: the shim stops writing
 * the file natively first (and the kernel learns its size). */
EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (fd >= 0 && !(flags & MAP_ANONYMOUS))
		GUARDED(int, 0, (shim_mapping(fd), 0));
	return REAL(mmap, void *(*)(void *, size_t, int, int, int, off_t))(addr, len, prot, flags,
	                                                                   fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}
