/*
 * media_internal.h - what the media files share: struct media and the
 * per-kind operations table.  Only the files of src/media include this.
 *
 * media.c owns the public entry points: argument and range checks, the
 * recorder hooks, and dispatch through m->ops.  media_pmem.c implements the
 * byte-addressable kinds (pmem, emul), media_file.c the file kind.  The kind
 * files never talk to the recorder: reporting lives in one place.
 */
#ifndef CAIRN_MEDIA_INTERNAL_H
#define CAIRN_MEDIA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media/media.h"

struct media_ops {
	/* Sets up m->size (and the kind's fields) from m->path; writes the
	 * error sentence itself. */
	int (*open)(struct media *m, uint64_t size, int flags, char *err, size_t errlen);
	void (*close)(struct media *m);
	/* Extends the medium to size (> m->size, checked); sets m->size last. */
	int (*grow)(struct media *m, uint64_t size, char *err, size_t errlen);
	/* Range-checked by media.c before the call. */
	int (*read)(struct media *m, uint64_t off, void *buf, size_t len);
	int (*write)(struct media *m, uint64_t off, const void *buf, size_t len);
	int (*zero)(struct media *m, uint64_t off, size_t len);
	void (*flush)(struct media *m, uint64_t off, size_t len);
	/* write + flush in one, when the kind has a cheaper way than the
	 * pair; NULL otherwise. */
	int (*store)(struct media *m, uint64_t off, const void *buf, size_t len);
	int (*fence)(struct media *m);
	/* True when a completed write is already "flushed" in the pmem model
	 * (file: every pwrite before fdatasync is made durable by it). */
	bool write_implies_flush;
};

extern const struct media_ops media_pmem_ops;
extern const struct media_ops media_emul_ops;
extern const struct media_ops media_file_ops;
/* media_move_fd for the file kind. */
int media_file_move_fd(struct media *m, int min);

/* State of the file kind's group commit (see media_file.c). */
struct media_group {
	pthread_mutex_t lock;
	pthread_cond_t done;
	_Atomic uint64_t write_gen; /* writes completed so far */
	uint64_t synced_gen;        /* every write <= this is durable */
	bool syncing;               /* an fdatasync is in flight */
	int error;                  /* sticky -errno of a failed sync */
};

struct media {
	const struct media_ops *ops;
	enum media_kind kind;
	char *path;
	uint64_t size;
	int given_fd; /* media_open_given's descriptor (not owned), else -1 */
	/* Crash-state recording: NULL on the fast path. */
	struct recorder *rec;
	int part;
	/* pmem, emul */
	uint8_t *base;
	size_t mapped_len;   /* bytes mapped from the file, page-rounded up */
	size_t reserved_len; /* address space held from base (MEDIA_GROWABLE), else 0 */
	int is_pmem;
	bool by_libpmem; /* mapped by pmem_map_file (device DAX) */
	/* file */
	int fd;
	/* Held shared by every use of fd, alone to move it to another number
	 * (media_move_fd); only by a medium opened with media_open_given. */
	pthread_rwlock_t fd_lock;
	struct media_group group;
	_Atomic uint64_t syncs; /* fdatasync calls issued (file only) */
	/* The last failed write or fence (media_failure) and its number. */
	pthread_mutex_t failure_lock;
	uint64_t failure_no;
	char failure[160];
};

/* Opens (with MEDIA_CREATE: creates and sizes) m->path as a regular file, or
 * a block device when allow_blockdev, checks the size against the caller's,
 * and sets m->size.  Returns the descriptor or -errno with err written.
 * Shared by the file kind and emul (which maps the descriptor). */
int media_open_fd(struct media *m, uint64_t size, int flags, bool allow_blockdev, char *err,
                  size_t errlen);

/* Makes the file behind fd at least size bytes (allocated, and durable),
 * or checks that the device is that large.  0 or -errno with err written. */
int media_extend_fd(struct media *m, int fd, uint64_t size, char *err, size_t errlen);

/* Writes "cairn: <path>: <fmt...>" into err. */
void media_errf(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
