/*
 * target.h - the files mkfs makes into the parts of a new volume.
 *
 * Owns: the checks that keep mkfs from destroying what is already there.
 * May call: the volume lock (volume.h), libc.
 *
 * - A new file is created with O_EXCL and O_NOFOLLOW, mode 0600.
 * - A symbolic link is never followed, forced or not.
 * - An existing regular file that is not empty, or a device whose first
 *   MiB holds anything but zeros, is refused unless forced.  A forced
 *   file is emptied and set to mode 0600 (owned by the caller, if root).
 * - Even forced, a file that is a part of a mounted volume (its part lock,
 *   see volume_open) or that lies in the directory of a mounted volume is
 *   refused, and a device is opened with O_EXCL, which the kernel refuses
 *   while a file system on it is mounted.
 *
 * A target stays open from its check until the volume is written, and the
 * media layer opens it through /proc/self/fd/N (target_media_path), so the
 * file formatted is the file checked even if its name is replaced meanwhile.
 */
#ifndef CAIRN_TARGET_H
#define CAIRN_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "volume/volume.h"

struct part_target {
	const char *path;    /* absolute: the name the manifest records */
	const char *what;    /* "log part", "tier ssd": for messages */
	int fd;              /* -1 when not open */
	int created;         /* mkfs made it: removed again if mkfs fails */
	int was_empty;       /* an existing empty file: emptied again on failure */
	int device;          /* a block or character device */
	uint64_t size;       /* its size when found (0: a new or emptied file) */
	struct stat st;      /* as opened: its identity finds one file named twice */
	char media_path[40]; /* /proc/self/fd/N, or path without /proc */
};

/* Creates t->path (mode 0600), or opens what is there: never through a
 * symbolic link (-ELOOP), a block device exclusively (-EBUSY when a file
 * system on it is mounted).  On failure returns -errno and writes a
 * sentence naming the part into err. */
int target_open(struct part_target *t, char *err, size_t errlen);

/* Decides whether the opened t may become a part of the volume in
 * directory voldir, whose lock the caller holds, and locks it: -EBUSY (a
 * part of a mounted volume), -EEXIST (holds data, and not force), -EINVAL
 * (not a regular file or device).  A forced file is emptied and made 0600. */
int target_check(struct part_target *t, const char *voldir, int force, char *err, size_t errlen);

/* Closes t.  If failed: removes the file if mkfs created it, or empties
 * again a file that was empty.  Data overwritten under force is gone. */
void target_close(struct part_target *t, int failed);

/* Whether a and b (both open) are one file. */
int target_same(const struct part_target *a, const struct part_target *b);

/* Whether path names one of the files a volume keeps in its directory
 * (the manifest, its temporary copy, log.part or fast.part), which only
 * that volume's own default parts may be; `own` is the one file name
 * allowed ("log.part" for the log part, NULL for a capacity tier). */
int target_is_reserved(const char *path, const char *voldir, const char *own);

#endif
