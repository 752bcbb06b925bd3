/*
 * media.h - the media layer: the only code in cairn that persists bytes.
 *
 * Owns: the mapping or file descriptor of one part of a volume (log, fast
 * tier), and the rules that make a store durable on that medium.
 * May call: libpmem, the kernel, and the crash-state recorder.
 *
 * The model is persistent memory's: a write is a store that may sit in a
 * volatile cache; media_flush() starts write-back of a range; media_fence()
 * returns when every range flushed before it is durable.  The file backend
 * maps this model onto pwrite() (store) and fdatasync() (fence), with group
 * commit: threads that fence at once share one fdatasync().
 */
#ifndef CAIRN_MEDIA_H
#define CAIRN_MEDIA_H

#include <stddef.h>
#include <stdint.h>

enum media_kind {
	MEDIA_PMEM = 1, /* DAX file or device, libpmem cache flushes */
	MEDIA_FILE = 2, /* ordinary file: pwrite + fdatasync */
	MEDIA_EMUL = 3, /* DRAM file (/dev/shm), treated exactly like pmem */
};

struct media;
struct recorder;

#define MEDIA_CREATE 1 /* create (or extend) the file to the given size */
/* With MEDIA_CREATE, for the file kind: reserve the space but do not write
 * zeros over it.  For capacity tiers, whose blocks are always written
 * before they are read, and which may be far too large to fill at mkfs. */
#define MEDIA_SPARSE 2
/* The file may be larger than size: the medium is its first size bytes
 * (the fast tier's file, extended by a grow that a crash cut short). */
#define MEDIA_PREFIX 4
/* For the mapped kinds: hold address space after the mapping so that
 * media_grow can extend it in place (readers keep pointers into it). */
#define MEDIA_GROWABLE 8
/* What MEDIA_GROWABLE holds, beyond the size.  Under ThreadSanitizer,
 * whose shadow memory leaves a program less address space, a hold of
 * 1 TiB failed (ENOMEM) in 4 fresh processes of 20 here, and test_media's
 * growth in 3 runs of 12: a build with it holds 64 GiB. */
#if defined(__SANITIZE_THREAD__)
#define MEDIA_GROW_RESERVE (64ull << 30)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MEDIA_GROW_RESERVE (64ull << 30)
#endif
#endif
#ifndef MEDIA_GROW_RESERVE
#define MEDIA_GROW_RESERVE (1ull << 40)
#endif

/* Opens path as a medium of the given kind.  With MEDIA_CREATE the file is
 * created and sized; otherwise size must be 0 (take the file's size) or
 * match (or, with MEDIA_PREFIX, not exceed it).
 * On failure returns -errno and writes a sentence into err. */
int media_open(struct media **out, enum media_kind kind, const char *path, uint64_t size, int flags,
               char *err, size_t errlen);
/* Opens, as a medium of the given kind and of the file's size, the file
 * behind a descriptor another process passed (SCM_RIGHTS): a client's own
 * log, which it may not open by name.  name is for messages.  fd stays the
 * caller's. */
int media_open_given(struct media **out, enum media_kind kind, int fd, const char *name, char *err,
                     size_t errlen);
void media_close(struct media *m);

/* Makes the medium `size` bytes, larger than it is, in place: the file is
 * extended (its blocks allocated, and for the file kind written with
 * zeros, as a new part's are) and made durable; a mapping grows at the
 * same address, so pointers from media_direct stay good.  A device must
 * already be that large.  A mapped medium grows only when opened with
 * MEDIA_GROWABLE, by MEDIA_GROW_RESERVE bytes at most.  The new bytes are
 * readable once this returns.  0, or -errno with err set. */
int media_grow(struct media *m, uint64_t size, char *err, size_t errlen);

enum media_kind media_kind(const struct media *m);
uint64_t media_size(const struct media *m);
const char *media_path(const struct media *m);

/* Base of the mapping for byte-addressable kinds (pmem, emul), NULL for
 * file.  Readers may load from it directly; writers must use media_write. */
const void *media_direct(const struct media *m);
/* The descriptor a medium of the file kind does its I/O on; -1 for the
 * mapped kinds, which keep none. */
int media_fd(const struct media *m);
/* Moves the descriptor of a file-kind medium opened with media_open_given
 * to the lowest free number from min on (a client keeps its descriptors
 * out of its program's way): 0, or -errno (-EINVAL for any other medium
 * of the file kind). */
int media_move_fd(struct media *m, int min);

/* Copies len bytes at off into buf.  Returns 0 or -errno (EIO, EINVAL). */
int media_read(struct media *m, uint64_t off, void *buf, size_t len);

/* Stores len bytes at off.  Not durable until flushed and fenced. */
int media_write(struct media *m, uint64_t off, const void *buf, size_t len);

/* Stores len zero bytes at off. */
int media_zero(struct media *m, uint64_t off, size_t len);

/* Starts write-back of [off, off+len). */
void media_flush(struct media *m, uint64_t off, size_t len);

/* Returns when everything flushed (pmem/emul) or written (file) before the
 * call is durable.  Returns 0 or -errno. */
int media_fence(struct media *m);

/* write + flush, the common pair. */
int media_store(struct media *m, uint64_t off, const void *buf, size_t len);

/*
 * A medium that fails a write, a zero or a fence (the kernel's pwrite or
 * fdatasync answering ENOSPC, EIO, EROFS, ...) makes the call return -EIO:
 * every part is allocated whole when it is made, so whatever the kernel
 * calls it, the medium broke a promise, and it must not look like a full
 * volume.  media_failure() copies the description of the medium's last
 * failure, "write of N bytes at offset X failed: <the kernel's reason>",
 * into buf for the caller to name the part, and returns its number:
 * failures are numbered in order over all media, so the largest is the
 * latest.  0 (buf untouched) while the medium has not failed.
 */
uint64_t media_failure(struct media *m, char *buf, size_t len);

/* Crash-state testing: every store, flush and fence on m is reported to r
 * as events of the given part number.  NULL detaches. */
void media_set_recorder(struct media *m, struct recorder *r, int part);

/* Number of fdatasync() calls the file kind has issued (pmem and emul
 * issue none).  For tests and benchmarks: group commit shows up here. */
uint64_t media_sync_count(const struct media *m);

#endif
