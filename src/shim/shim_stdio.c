/*
 * shim_stdio.c - stdio streams whose writes the shim takes over.
 *
 * stdio writes a stream's buffer with libc's internal write(), which no
 * preloaded library reaches: a stream that libc's fopen() makes on a cairn
 * mount writes through the kernel, one FUSE request per buffer, however
 * fast the shim's own write() is.  So fopen() of a file under a cairn
 * mount for writing only ("w" or "a", with any of "bxemc", no "+") makes
 * the stream itself:
 *   - the descriptor comes from the shim's open(): a kernel descriptor of
 *     the file, taken over as any other (shim_files.c);
 *   - the stream is a cookie stream (fopencookie) whose writes, seeks and
 *     close are the shim's write(), lseek() and close() of it, so each
 *     buffer the stream writes is a record in the client's log, durable
 *     when fflush() or fclose() returns, as through the kernel.
 * A file the shim does not take over (the process could not attach, the
 * file is mapped...) gets libc's own stream of the descriptor (fdopen),
 * and a path that is not under a cairn mount libc's fopen().
 *
 * What libc does not do for a cookie stream the shim does here, for its
 * streams only:
 *   - fileno() answers the descriptor (libc's says -1);
 *   - wide-character output (fwide, fputwc, fputws, fwprintf and their
 *     forms) is converted to the locale's multibyte characters and
 *     written as bytes (libc's cookie streams are byte streams);
 *   - freopen() gives the stream a descriptor of the new file, at the old
 *     number (libc's fails on a cookie stream).
 * The stream is made readable and writable for libc (fopencookie "r+",
 * or "a+" for a stream that appends, so that libc's ftell knows it does):
 * the descriptor's own access mode answers a read of a write-only stream
 * (EBADF, as libc's stream does), and freopen() may give it any mode.
 *
 * Owns: the table of the shim's streams.  May call: shim.h, the shim's
 * own open, write, lseek, dup3 and close, libc.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "shim/shim.h"

#define EXPORT __attribute__((visibility("default")))

/* One of the shim's streams: the cookie fopencookie keeps. */
struct shim_stream {
	FILE *f;
	int fd;
	int orientation; /* fwide's: 0 not set, 1 wide, -1 bytes */
	mbstate_t state; /* of the conversion of wide output */
};

/* ---- the table, from a stream to its cookie ---------------------------------- */

/* Open addressing by the stream's address, with deletion by shifting back
 * (no tombstones: a program that opens and closes a stream per file would
 * fill the table with them).  Under streams_lock, taken inside the shim
 * (shim_enter) so that a signal handler's fileno() on the same thread
 * does not wait for it; held across fork by the atfork handlers, so a
 * child never finds it held. */
#define SHIM_STREAMS 1024 /* at once; more get libc's own streams */
static struct shim_stream *streams[SHIM_STREAMS];
static atomic_int nstreams; /* 0 spares the lock */
static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t streams_once = PTHREAD_ONCE_INIT;

static void streams_fork_lock(void)
{
	pthread_mutex_lock(&streams_lock);
}

static void streams_fork_unlock(void)
{
	pthread_mutex_unlock(&streams_lock);
}

static void streams_init(void)
{
	pthread_atfork(streams_fork_lock, streams_fork_unlock, streams_fork_unlock);
}

static unsigned home(const FILE *f)
{
	uint64_t k = (uint64_t)(uintptr_t)f * 0x9E3779B97F4A7C15ull;
	return (unsigned)(k >> 32) & (SHIM_STREAMS - 1);
}

static void lock_streams(void)
{
	shim_enter();
	pthread_mutex_lock(&streams_lock);
}

static void unlock_streams(void)
{
	int e = errno;
	pthread_mutex_unlock(&streams_lock);
	shim_leave();
	errno = e;
}

/* The slot of f, or of the empty slot where it would go; -1 when the
 * table is full and f is not in it.  Under streams_lock. */
static int slot_of(const FILE *f)
{
	unsigned i = home(f);
	for (int n = 0; n < SHIM_STREAMS; n++, i = (i + 1) & (SHIM_STREAMS - 1))
		if (!streams[i] || streams[i]->f == f)
			return (int)i;
	return -1;
}

static int table_add(struct shim_stream *s)
{
	lock_streams();
	int i = atomic_load(&nstreams) < SHIM_STREAMS - 1 ? slot_of(s->f) : -1;
	if (i >= 0) {
		streams[i] = s;
		atomic_fetch_add(&nstreams, 1);
	}
	unlock_streams();
	return i >= 0;
}

/* Empties slot i and moves back the entries after it that would no
 * longer be found past the hole. */
static void table_remove_at(unsigned i)
{
	streams[i] = NULL;
	for (unsigned j = (i + 1) & (SHIM_STREAMS - 1); streams[j];
	     j = (j + 1) & (SHIM_STREAMS - 1)) {
		unsigned h = home(streams[j]->f);
		/* j's entry may fill the hole unless its home lies in (i, j]. */
		int stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
		if (!stays) {
			streams[i] = streams[j];
			streams[j] = NULL;
			i = j;
		}
	}
	atomic_fetch_sub(&nstreams, 1);
}

static void table_remove(struct shim_stream *s)
{
	lock_streams();
	int i = slot_of(s->f);
	if (i >= 0 && streams[i] == s)
		table_remove_at((unsigned)i);
	unlock_streams();
}

/* f's cookie if it is one of the shim's streams.  A signal handler that
 * interrupted its thread inside the shim does not look (the thread may
 * hold the lock): to it the stream is libc's. */
static struct shim_stream *stream_of(FILE *f)
{
	if (!f || !atomic_load_explicit(&nstreams, memory_order_acquire) || shim_busy())
		return NULL;
	lock_streams();
	int i = slot_of(f);
	struct shim_stream *s = i >= 0 ? streams[i] : NULL;
	unlock_streams();
	return s;
}

/* ---- the stream's functions ---------------------------------------------------- */

/* As libc writes a file stream's buffer: until all is written or a write
 * fails (its errno stays); libc marks the stream's error when less than
 * asked was written. */
static ssize_t stream_write(void *cookie, const char *buf, size_t n)
{
	struct shim_stream *s = cookie;
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(s->fd, buf + done, n - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static ssize_t stream_read(void *cookie, char *buf, size_t n)
{
	struct shim_stream *s = cookie;
	return read(s->fd, buf, n);
}

static int stream_seek(void *cookie, off64_t *off, int whence)
{
	struct shim_stream *s = cookie;
	off_t r = lseek(s->fd, (off_t)*off, whence);
	if (r < 0)
		return -1;
	*off = (off64_t)r;
	return 0;
}

/* fclose's last step: the descriptor goes (the shim's close gives the file
 * back to the daemon), and so does the stream's entry, before libc frees
 * the stream and its address can be another's. */
static int stream_close(void *cookie)
{
	struct shim_stream *s = cookie;
	table_remove(s);
	int rc = s->fd >= 0 ? close(s->fd) : 0;
	int e = errno;
	free(s);
	errno = e;
	return rc;
}

static const cookie_io_functions_t stream_io = {
    .read = stream_read, .write = stream_write, .seek = stream_seek, .close = stream_close};

/* ---- fopen ---------------------------------------------------------------------- */

/* The open flags of an fopen mode, or -1 for a mode libc must handle: one
 * that reads, or one this file does not know (",ccs=" among them). */
static int write_only_flags(const char *mode)
{
	int flags;
	if (!mode)
		return -1;
	if (mode[0] == 'w')
		flags = O_WRONLY | O_CREAT | O_TRUNC;
	else if (mode[0] == 'a')
		flags = O_WRONLY | O_CREAT | O_APPEND;
	else
		return -1;
	for (const char *m = mode + 1; *m; m++) {
		if (*m == 'x')
			flags |= O_EXCL;
		else if (*m == 'e')
			flags |= O_CLOEXEC;
		else if (*m != 'b' && *m != 'm' && *m != 'c')
			return -1;
	}
	return flags;
}

/* The open flags of any mode freopen may be given (libc's rules: the
 * letters after the first two are looked at up to a comma). */
static int any_flags(const char *mode)
{
	int plus = mode[0] && (mode[1] == '+' || (mode[1] && mode[2] == '+'));
	int flags;
	switch (mode[0]) {
	case 'r':
		flags = plus ? O_RDWR : O_RDONLY;
		break;
	case 'w':
		flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC;
		break;
	case 'a':
		flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
		break;
	default:
		return -1;
	}
	for (const char *m = mode + 1; *m && *m != ','; m++)
		flags |= *m == 'x' ? O_EXCL : *m == 'e' ? O_CLOEXEC : 0;
	return flags;
}

/* A stream that appends only starts at the end of the file (libc's does
 * the same): ftell then says where its first write will go. */
static void start_position(int fd, int flags)
{
	if ((flags & O_APPEND) && (flags & O_ACCMODE) == O_WRONLY)
		lseek(fd, 0, SEEK_END);
}

/* The shim's stream of descriptor fd, or NULL (the descriptor is the
 * caller's still).  A stream that appends is one for libc too ("a+"):
 * its ftell with bytes in the buffer asks where the end is and counts
 * them from there, as for libc's own streams (with "r+", `fseek` to 0 of
 * a 10-byte file and `abc` buffered told 3, not 13). */
static FILE *stream_new(int fd, int flags)
{
	pthread_once(&streams_once, streams_init);
	struct shim_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fd = fd;
	s->f = fopencookie(s, (flags & O_APPEND) ? "a+" : "r+", stream_io);
	if (!s->f) {
		free(s);
		return NULL;
	}
	if (table_add(s))
		return s->f;
	/* No room in the table: the stream goes (its close frees s), and
	 * the descriptor stays the caller's. */
	s->fd = -1;
	fclose(s->f);
	return NULL;
}

static int taken_over(int fd)
{
	struct shim_file *f = shim_get(fd);
	shim_put(f);
	return f != NULL;
}

static FILE *fopen_common(const char *path, const char *mode,
                          FILE *(*real)(const char *, const char *))
{
	int flags = write_only_flags(mode);
	if (flags < 0 || shim_busy() || !shim_on_mount(path))
		return real(path, mode);
	int fd = open(path, flags, 0666);
	if (fd < 0)
		return NULL;
	start_position(fd, flags);
	FILE *f = taken_over(fd) ? stream_new(fd, flags) : NULL;
	if (!f)
		f = REAL(fdopen, FILE * (*)(int, const char *))(fd, mode);
	if (!f) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	return fopen_common(path, mode, REAL(fopen, FILE * (*)(const char *, const char *)));
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
	return fopen_common(path, mode, REAL(fopen64, FILE * (*)(const char *, const char *)));
}

/* ---- fileno and freopen ------------------------------------------------------------ */

EXPORT int fileno(FILE *f)
{
	struct shim_stream *s = stream_of(f);
	return s ? s->fd : REAL(fileno, int (*)(FILE *))(f);
}

EXPORT int fileno_unlocked(FILE *f)
{
	struct shim_stream *s = stream_of(f);
	return s ? s->fd : REAL(fileno_unlocked, int (*)(FILE *))(f);
}

int shim_stream_owns(FILE *f)
{
	return stream_of(f) != NULL;
}

/* The descriptor opened for the stream's new file takes the old number,
 * as libc's freopen keeps it (a program that freopens a stream may hold
 * the number); the old file closes with it. */
static int take_number(int fd, int old, int flags)
{
	if (dup3(fd, old, flags & O_CLOEXEC) == old) {
		close(fd);
		return old;
	}
	close(old);
	return fd;
}

/* glibc's flag of a stream that appends (libio's _IO_IS_APPENDING), which
 * fopencookie sets from its mode once and which libc's ftell and flush
 * follow: a reopen sets it from the new mode.  Kept from "a", a stream
 * reopened "r+" told the end from ftell, and its flush wrote there. */
#define LIBIO_IS_APPENDING 0x1000

FILE *shim_stream_reopen(const char *path, const char *mode, FILE *f)
{
	struct shim_stream *s = stream_of(f);
	int flags = mode ? any_flags(mode) : -1;
	if (!s || flags < 0) {
		/* What libc does with a mode it does not know: the stream
		 * closes (POSIX: whether or not the open succeeds). */
		if (s)
			fclose(f);
		errno = EINVAL;
		return NULL;
	}
	fflush(f); /* as libc: a failure here does not stop the reopen */
	flockfile(f);
	char again[64];
	if (!path) {
		snprintf(again, sizeof(again), "/proc/self/fd/%d", s->fd);
		path = again;
	}
	int fd = open(path, flags, 0666);
	if (fd >= 0) {
		s->fd = take_number(fd, s->fd, flags);
		start_position(s->fd, flags);
		if (flags & O_APPEND)
			f->_flags |= LIBIO_IS_APPENDING;
		else
			f->_flags &= ~LIBIO_IS_APPENDING;
		s->orientation = 0;
		memset(&s->state, 0, sizeof(s->state));
		__fpurge(f);
		clearerr_unlocked(f);
	}
	int e = errno;
	funlockfile(f);
	if (fd < 0) {
		fclose(f);
		errno = e;
		return NULL;
	}
	return f;
}

/* ---- wide output ---------------------------------------------------------------------- */

EXPORT int fwide(FILE *f, int mode)
{
	struct shim_stream *s = stream_of(f);
	if (!s)
		return REAL(fwide, int (*)(FILE *, int))(f, mode);
	if (mode && !s->orientation)
		s->orientation = mode > 0 ? 1 : -1;
	return s->orientation;
}

/* n wide characters of w as the locale's multibyte characters; 0, or -1
 * with errno (EILSEQ: one has no such character; what came before it is
 * written).  caller_locked: the caller holds the stream's lock (the
 * _unlocked forms), so the bytes go with fwrite_unlocked. */
static int put_wide(struct shim_stream *s, const wchar_t *w, size_t n, int caller_locked)
{
	char buf[512];
	size_t used = 0, k = 0;
	s->orientation = 1;
	for (size_t i = 0; i < n && k != (size_t)-1; i++) {
		if (used + MB_LEN_MAX > sizeof(buf)) {
			if ((caller_locked ? fwrite_unlocked : fwrite)(buf, 1, used, s->f) != used)
				return -1;
			used = 0;
		}
		k = wcrtomb(buf + used, w[i], &s->state);
		if (k != (size_t)-1)
			used += k;
	}
	if (used && (caller_locked ? fwrite_unlocked : fwrite)(buf, 1, used, s->f) != used)
		return -1;
	return k == (size_t)-1 ? (errno = EILSEQ, -1) : 0;
}

static wint_t put_wchar(wchar_t c, FILE *f, int caller_locked, wint_t (*real)(wchar_t, FILE *))
{
	struct shim_stream *s = stream_of(f);
	if (!s)
		return real(c, f);
	return put_wide(s, &c, 1, caller_locked) ? WEOF : (wint_t)c;
}

EXPORT wint_t fputwc(wchar_t c, FILE *f)
{
	return put_wchar(c, f, 0, REAL(fputwc, wint_t(*)(wchar_t, FILE *)));
}

EXPORT wint_t putwc(wchar_t c, FILE *f)
{
	return put_wchar(c, f, 0, REAL(putwc, wint_t(*)(wchar_t, FILE *)));
}

EXPORT wint_t fputwc_unlocked(wchar_t c, FILE *f)
{
	return put_wchar(c, f, 1, REAL(fputwc_unlocked, wint_t(*)(wchar_t, FILE *)));
}

EXPORT wint_t putwc_unlocked(wchar_t c, FILE *f)
{
	return put_wchar(c, f, 1, REAL(putwc_unlocked, wint_t(*)(wchar_t, FILE *)));
}

EXPORT int fputws(const wchar_t *w, FILE *f)
{
	struct shim_stream *s = stream_of(f);
	if (!s)
		return REAL(fputws, int (*)(const wchar_t *, FILE *))(w, f);
	return put_wide(s, w, wcslen(w), 0) ? -1 : 1;
}

EXPORT int fputws_unlocked(const wchar_t *w, FILE *f)
{
	struct shim_stream *s = stream_of(f);
	if (!s)
		return REAL(fputws_unlocked, int (*)(const wchar_t *, FILE *))(w, f);
	return put_wide(s, w, wcslen(w), 1) ? -1 : 1;
}

/* The formatted text in a buffer of wide characters that grows until it
 * fits (vswprintf says only that it did not), then written. */
#define WIDE_FORMAT_MAX (16u << 20) /* wide characters */
static int format_wide(struct shim_stream *s, const wchar_t *fmt, va_list ap)
{
	wchar_t small[512], *buf = small;
	size_t size = sizeof(small) / sizeof(small[0]);
	int n;
	for (;;) {
		va_list aq;
		va_copy(aq, ap);
		n = vswprintf(buf, size, fmt, aq);
		va_end(aq);
		if (n >= 0 || size >= WIDE_FORMAT_MAX)
			break;
		size *= 4;
		wchar_t *bigger = realloc(buf == small ? NULL : buf, size * sizeof(*buf));
		if (!bigger) {
			n = -1;
			break;
		}
		buf = bigger;
	}
	if (n >= 0 && put_wide(s, buf, (size_t)n, 0))
		n = -1;
	if (buf != small)
		free(buf);
	return n;
}

EXPORT int vfwprintf(FILE *f, const wchar_t *fmt, va_list ap)
{
	struct shim_stream *s = stream_of(f);
	if (!s)
		return REAL(vfwprintf, int (*)(FILE *, const wchar_t *, va_list))(f, fmt, ap);
	return format_wide(s, fmt, ap);
}

EXPORT int fwprintf(FILE *f, const wchar_t *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vfwprintf(f, fmt, ap);
	va_end(ap);
	return n;
}

/* _FORTIFY_SOURCE's forms. */
EXPORT int __vfwprintf_chk(FILE *f, int flag, const wchar_t *fmt, va_list ap)
{
	struct shim_stream *s = stream_of(f);
	if (!s)
		return REAL(__vfwprintf_chk,
		            int (*)(FILE *, int, const wchar_t *, va_list))(f, flag, fmt, ap);
	return format_wide(s, fmt, ap);
}

EXPORT int __fwprintf_chk(FILE *f, int flag, const wchar_t *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = __vfwprintf_chk(f, flag, fmt, ap);
	va_end(ap);
	return n;
}
