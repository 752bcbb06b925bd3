/*
 * media.c - the media layer's public entry points (see media.h).
 *
 * Owns: opening and closing a medium, argument and range checks, dispatch
 * to the kind (media_pmem.c, media_file.c), and the crash-state recorder
 * hooks.  May call: the kind files, the recorder, libc.
 *
 * Every check that is the same for all kinds lives here, so a kind only
 * implements the store, write-back and fence of its medium.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/media_internal.h"
#include "media/recorder.h"

void media_errf(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	int n = snprintf(err, errlen, "cairn: %s: ", path);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static const struct media_ops *ops_of(enum media_kind kind)
{
	switch (kind) {
	case MEDIA_PMEM:
		return &media_pmem_ops;
	case MEDIA_EMUL:
		return &media_emul_ops;
	case MEDIA_FILE:
		return &media_file_ops;
	}
	return NULL;
}

static int open_medium(struct media **out, enum media_kind kind, const char *path, int given_fd,
                       uint64_t size, int flags, char *err, size_t errlen)
{
	*out = NULL;
	const char *name = path ? path : "(null)";
	const struct media_ops *ops = ops_of(kind);
	if (ops == NULL) {
		media_errf(err, errlen, name, "unknown media kind %d", (int)kind);
		return -EINVAL;
	}
	if (path == NULL || path[0] == '\0') {
		media_errf(err, errlen, name, "no path given for the medium");
		return -EINVAL;
	}
	if ((flags & MEDIA_CREATE) && size == 0) {
		media_errf(err, errlen, name, "cannot create a medium of size 0");
		return -EINVAL;
	}
	if (size > (uint64_t)SIZE_MAX) {
		media_errf(err, errlen, name, "size %llu does not fit in memory addresses",
		           (unsigned long long)size);
		return -EINVAL;
	}
	struct media *m = calloc(1, sizeof(*m));
	if (m == NULL || (m->path = strdup(path)) == NULL) {
		free(m);
		media_errf(err, errlen, name, "out of memory");
		return -ENOMEM;
	}
	m->ops = ops;
	m->kind = kind;
	m->fd = -1;
	m->given_fd = given_fd;
	pthread_mutex_init(&m->failure_lock, NULL);
	int rc = ops->open(m, size, flags, err, errlen);
	if (rc < 0) {
		pthread_mutex_destroy(&m->failure_lock);
		free(m->path);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int media_open(struct media **out, enum media_kind kind, const char *path, uint64_t size, int flags,
               char *err, size_t errlen)
{
	return open_medium(out, kind, path, -1, size, flags, err, errlen);
}

int media_open_given(struct media **out, enum media_kind kind, int fd, const char *name, char *err,
                     size_t errlen)
{
	if (fd < 0) {
		media_errf(err, errlen, name ? name : "(null)", "no descriptor given");
		return -EBADF;
	}
	return open_medium(out, kind, name, fd, 0, 0, err, errlen);
}

void media_close(struct media *m)
{
	if (m == NULL)
		return;
	m->ops->close(m);
	pthread_mutex_destroy(&m->failure_lock);
	free(m->path);
	free(m);
}

int media_grow(struct media *m, uint64_t size, char *err, size_t errlen)
{
	if (size <= m->size || size > (uint64_t)SIZE_MAX) {
		media_errf(err, errlen, m->path, "%llu bytes is not larger than its %llu",
		           (unsigned long long)size, (unsigned long long)m->size);
		return -EINVAL;
	}
	if (m->given_fd >= 0) {
		media_errf(err, errlen, m->path, "a medium another process passed cannot grow");
		return -EINVAL;
	}
	return m->ops->grow(m, size, err, errlen);
}

int media_move_fd(struct media *m, int min)
{
	return m->kind == MEDIA_FILE ? media_file_move_fd(m, min) : 0;
}

int media_fd(const struct media *m)
{
	return m->kind == MEDIA_FILE ? __atomic_load_n(&m->fd, __ATOMIC_ACQUIRE) : -1;
}

enum media_kind media_kind(const struct media *m)
{
	return m->kind;
}

uint64_t media_size(const struct media *m)
{
	return m->size;
}

const char *media_path(const struct media *m)
{
	return m->path;
}

const void *media_direct(const struct media *m)
{
	return m->base;
}

uint64_t media_sync_count(const struct media *m)
{
	return atomic_load_explicit(&m->syncs, memory_order_relaxed);
}

/* Written so that off + len cannot overflow. */
static inline bool in_range(const struct media *m, uint64_t off, size_t len)
{
	return off <= m->size && (uint64_t)len <= m->size - off;
}

int media_read(struct media *m, uint64_t off, void *buf, size_t len)
{
	if (!in_range(m, off, len))
		return -EINVAL;
	if (len == 0)
		return 0;
	return m->ops->read(m, off, buf, len);
}

/* Out of line so that the fast path stays a single untaken branch. */
static void report_write(struct media *m, uint64_t off, const void *buf, size_t len)
{
	if (buf != NULL)
		recorder_write(m->rec, m->part, off, buf, len);
	else
		recorder_zero(m->rec, m->part, off, len);
	if (m->ops->write_implies_flush)
		recorder_flush(m->rec, m->part, off, len);
}

static _Atomic uint64_t failures; /* numbers media failures, over all media */

/* The kind's write or fence failed with rc: kept for media_failure, and EIO
 * for the caller (see media.h). */
static int failed(struct media *m, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failed(struct media *m, int rc, const char *fmt, ...)
{
	pthread_mutex_lock(&m->failure_lock);
	m->failure_no = atomic_fetch_add(&failures, 1) + 1;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(m->failure, sizeof(m->failure), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(m->failure))
		snprintf(m->failure + n, sizeof(m->failure) - (size_t)n, ": %s", strerror(-rc));
	pthread_mutex_unlock(&m->failure_lock);
	return -EIO;
}

uint64_t media_failure(struct media *m, char *buf, size_t len)
{
	pthread_mutex_lock(&m->failure_lock);
	uint64_t no = m->failure_no;
	if (no && len)
		snprintf(buf, len, "%s", m->failure);
	pthread_mutex_unlock(&m->failure_lock);
	return no;
}

int media_write(struct media *m, uint64_t off, const void *buf, size_t len)
{
	if (!in_range(m, off, len))
		return -EINVAL;
	if (len == 0)
		return 0;
	int rc = m->ops->write(m, off, buf, len);
	if (__builtin_expect(rc != 0, 0))
		return failed(m, rc, "write of %zu bytes at offset %llu failed", len,
		              (unsigned long long)off);
	if (__builtin_expect(m->rec != NULL, 0))
		report_write(m, off, buf, len);
	return 0;
}

int media_zero(struct media *m, uint64_t off, size_t len)
{
	if (!in_range(m, off, len))
		return -EINVAL;
	if (len == 0)
		return 0;
	int rc = m->ops->zero(m, off, len);
	if (__builtin_expect(rc != 0, 0))
		return failed(m, rc, "write of %zu zero bytes at offset %llu failed", len,
		              (unsigned long long)off);
	if (__builtin_expect(m->rec != NULL, 0))
		report_write(m, off, NULL, len);
	return 0;
}

void media_flush(struct media *m, uint64_t off, size_t len)
{
	/* void: a range past the end is clipped rather than reported. */
	if (off >= m->size || len == 0)
		return;
	if ((uint64_t)len > m->size - off)
		len = (size_t)(m->size - off);
	m->ops->flush(m, off, len);
	if (__builtin_expect(m->rec != NULL, 0))
		recorder_flush(m->rec, m->part, off, len);
}

int media_fence(struct media *m)
{
	int rc = m->ops->fence(m);
	if (__builtin_expect(rc != 0, 0))
		return failed(m, rc, "sync failed");
	/* A processor's fence covers its own flushes; a file's sync, every
	 * write to the file. */
	if (__builtin_expect(m->rec != NULL, 0)) {
		if (m->ops->write_implies_flush)
			recorder_fence(m->rec, m->part);
		else
			recorder_fence_own(m->rec, m->part);
	}
	return 0;
}

int media_store(struct media *m, uint64_t off, const void *buf, size_t len)
{
	if (!m->ops->store || len == 0 || !in_range(m, off, len)) {
		int rc = media_write(m, off, buf, len);
		if (rc == 0)
			media_flush(m, off, len);
		return rc;
	}
	int rc = m->ops->store(m, off, buf, len);
	if (__builtin_expect(rc != 0, 0))
		return failed(m, rc, "write of %zu bytes at offset %llu failed", len,
		              (unsigned long long)off);
	if (__builtin_expect(m->rec != NULL, 0)) {
		report_write(m, off, buf, len);
		recorder_flush(m->rec, m->part, off, len);
	}
	return 0;
}

void media_set_recorder(struct media *m, struct recorder *r, int part)
{
	m->rec = r;
	m->part = part;
}
