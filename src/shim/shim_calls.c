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
 *   - the writes: on a file the shim took over, the bytes go into the
 *     client's log, durable on return, at the position the kernel keeps
 *     for the descriptor (read with lseek, moved on after);
 *   - the few calls that use the kernel's position after a native append
 *     (read, readv, lseek), which set it first; and mmap, which the
 *     mount refuses on the shim's own opens.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client/client.h"
#include "shim/shim.h"

#define EXPORT __attribute__((visibility("default")))

/* Writes gathered from more bytes than this go to the kernel. */
#define GATHER_MAX (1u << 20)

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
	return opened(REAL(open, int (*)(const char *, int, ...))(path, flags, mode), flags);
}

EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return opened(REAL(open64, int (*)(const char *, int, ...))(path, flags, mode), flags);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return opened(REAL(openat, int (*)(int, const char *, int, ...))(dirfd, path, flags, mode),
	              flags);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return opened(
	    REAL(openat64, int (*)(int, const char *, int, ...))(dirfd, path, flags, mode), flags);
}

EXPORT int creat(const char *path, mode_t mode)
{
	int flags = O_CREAT | O_WRONLY | O_TRUNC;
	return opened(REAL(open, int (*)(const char *, int, ...))(path, flags, mode), flags);
}

EXPORT int creat64(const char *path, mode_t mode)
{
	return creat(path, mode);
}

/* _FORTIFY_SOURCE's forms: they only check that O_CREAT has its mode. */
EXPORT int __open_2(const char *path, int flags)
{
	return opened(REAL(__open_2, int (*)(const char *, int))(path, flags), flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
	return opened(REAL(__open64_2, int (*)(const char *, int))(path, flags), flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return opened(REAL(__openat_2, int (*)(int, const char *, int))(dirfd, path, flags), flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return opened(REAL(__openat64_2, int (*)(int, const char *, int))(dirfd, path, flags),
	              flags);
}

/* ---- descriptors copied and ended ----------------------------------------------- */

EXPORT int dup(int fd)
{
	int r = REAL(dup, int (*)(int))(fd);
	if (r >= 0)
		shim_dup(fd, r);
	return r;
}

EXPORT int dup2(int fd, int fd2)
{
	int r = REAL(dup2, int (*)(int, int))(fd, fd2);
	if (r >= 0 && fd != fd2)
		shim_dup(fd, fd2);
	return r;
}

EXPORT int dup3(int fd, int fd2, int flags)
{
	int r = REAL(dup3, int (*)(int, int, int))(fd, fd2, flags);
	if (r >= 0)
		shim_dup(fd, fd2);
	return r;
}

/* fcntl's third argument is an int or a pointer: passed on as it came. */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	int r = real(fd, cmd, arg);
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
			shim_forget(fd);
		shim_put(f);
	}
	return r;
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
	shim_forget(fd);
	return REAL(close, int (*)(int))(fd);
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last)
		shim_forget_range(first, last);
	return REAL(close_range, int (*)(unsigned, unsigned, int))(first, last, flags);
}

EXPORT void closefrom(int lowfd)
{
	if (lowfd >= 0)
		shim_forget_range((unsigned)lowfd, UINT_MAX);
	REAL(closefrom, void (*)(int))(lowfd);
}

/* stdio closes its descriptor inside libc, where the shim cannot see. */
EXPORT int fclose(FILE *stream)
{
	if (stream)
		shim_forget(fileno(stream));
	return REAL(fclose, int (*)(FILE *))(stream);
}

EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
	if (stream)
		shim_forget(fileno(stream));
	return REAL(freopen, FILE * (*)(const char *, const char *, FILE *))(path, mode, stream);
}

EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
	if (stream)
		shim_forget(fileno(stream));
	return REAL(freopen64, FILE * (*)(const char *, const char *, FILE *))(path, mode, stream);
}

/* ---- writes -------------------------------------------------------------------- */

static off_t real_lseek(int fd, off_t off, int whence)
{
	return REAL(lseek, off_t (*)(int, off_t, int))(fd, off, whence);
}

/* Writes n bytes of buf to f natively: at `at`, or (at < 0) at the
 * descriptor's position, which moves on.  n, 0 when the kernel must write
 * them (the grant went), or -1 with errno. */
static ssize_t native_write(struct shim_file *f, int fd, const void *buf, size_t n, off_t at)
{
	if (f->append || at >= 0) {
		/* pwrite appends too, but leaves the position where the last
		 * write() put it: settled first, it stays there. */
		if (f->append && at >= 0)
			shim_settle_pos(f, fd);
		int r = client_local_pwrite(f->client, f->cfd, buf, n, f->append ? 0 : at);
		if (r == 1 && f->append && at < 0)
			atomic_store(&f->pos_stale, 1);
		return r == 1 ? (ssize_t)n : r;
	}
	pthread_mutex_lock(&f->pos_lock);
	off_t pos = real_lseek(fd, 0, SEEK_CUR);
	int r = 0;
	if (pos >= 0 && n <= (size_t)(INT64_MAX - pos))
		r = client_local_pwrite(f->client, f->cfd, buf, n, pos);
	if (r == 1)
		real_lseek(fd, pos + (off_t)n, SEEK_SET);
	pthread_mutex_unlock(&f->pos_lock);
	return r == 1 ? (ssize_t)n : r;
}

/* The shim's write, or 0 (and the descriptor the kernel's) if not. */
static ssize_t try_native(int fd, const void *buf, size_t n, off_t at, int *done)
{
	*done = 0;
	if (n == 0 || n > SSIZE_MAX)
		return 0;
	struct shim_file *f = shim_get(fd);
	if (!f)
		return 0;
	ssize_t r = native_write(f, fd, buf, n, at);
	if (r == 0) {
		shim_settle_pos(f, fd);
		shim_forget(fd);
	}
	shim_put(f);
	*done = r != 0;
	return r;
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	int done;
	ssize_t r = try_native(fd, buf, n, -1, &done);
	return done ? r : REAL(write, ssize_t (*)(int, const void *, size_t))(fd, buf, n);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	int done;
	ssize_t r = off >= 0 ? try_native(fd, buf, n, off, &done) : (done = 0);
	return done ? r : REAL(pwrite, ssize_t (*)(int, const void *, size_t, off_t))(fd, buf, n, off);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

/* A vectored write as one record (atomic, as the kernel's is): gathered
 * into one buffer first, unless it is one piece already. */
static ssize_t try_native_vec(int fd, const struct iovec *iov, int cnt, off_t at, int *done)
{
	*done = 0;
	if (cnt == 1)
		return try_native(fd, iov[0].iov_base, iov[0].iov_len, at, done);
	size_t total = 0;
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > GATHER_MAX - total)
			return 0;
		total += iov[i].iov_len;
	}
	if (cnt <= 0 || total == 0)
		return 0;
	struct shim_file *f = shim_get(fd);
	uint8_t *buf = f ? malloc(total) : NULL;
	shim_put(f);
	if (!buf)
		return 0;
	size_t off = 0;
	for (int i = 0; i < cnt; i++) {
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	ssize_t r = try_native(fd, buf, total, at, done);
	free(buf);
	return r;
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	int done;
	ssize_t r = try_native_vec(fd, iov, cnt, -1, &done);
	return done ? r : REAL(writev, ssize_t (*)(int, const struct iovec *, int))(fd, iov, cnt);
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	int done = 0;
	ssize_t r = off >= 0 ? try_native_vec(fd, iov, cnt, off, &done) : 0;
	return done ? r
	            : REAL(pwritev, ssize_t (*)(int, const struct iovec *, int, off_t))(fd, iov, cnt,
	                                                                                 off);
}

EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

/* pwritev2 with flags (RWF_*) asks for what the shim does not do. */
EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	int done = 0;
	ssize_t r = flags == 0 && off >= -1 ? try_native_vec(fd, iov, cnt, off, &done) : 0;
	return done ? r
	            : REAL(pwritev2, ssize_t (*)(int, const struct iovec *, int, off_t, int))(
	                  fd, iov, cnt, off, flags);
}

EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return pwritev2(fd, iov, cnt, off, flags);
}

/* ---- the kernel's position -------------------------------------------------- */

static void settle(int fd)
{
	struct shim_file *f = shim_get(fd);
	if (f)
		shim_settle_pos(f, fd);
	shim_put(f);
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	settle(fd);
	return REAL(read, ssize_t (*)(int, void *, size_t))(fd, buf, n);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	settle(fd);
	return REAL(readv, ssize_t (*)(int, const struct iovec *, int))(fd, iov, cnt);
}

EXPORT off_t lseek(int fd, off_t off, int whence)
{
	settle(fd);
	return real_lseek(fd, off, whence);
}

EXPORT off_t lseek64(int fd, off_t off, int whence)
{
	return lseek(fd, off, whence);
}

/* ---- mappings ------------------------------------------------------------------ */

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *(*real)(void *, size_t, int, int, int, off_t) =
	    REAL(mmap, void *(*)(void *, size_t, int, int, int, off_t));
	void *p = real(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED || errno != ENODEV || fd < 0 || !(flags & MAP_SHARED))
		return p;
	if (shim_reopen_for_mmap(fd)) {
		errno = ENODEV;
		return MAP_FAILED;
	}
	return real(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}
