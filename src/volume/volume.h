/*
 * volume.h - a volume on disk: the directory, its manifest and its parts.
 *
 * Owns: the manifest file (cairn.volume) and the choice of medium for each
 * part.  May call: the media layer.
 *
 * The manifest is a small text file, written once by mkfs (atomically, by
 * rename) and read by mount; see docs/FORMAT.md.  A directory without a
 * manifest is not a volume.
 */
#ifndef CAIRN_VOLUME_H
#define CAIRN_VOLUME_H

#include <stddef.h>
#include <stdint.h>

#include "media/media.h"

#define VOLUME_MANIFEST "cairn.volume"
#define VOLUME_PATH_MAX 4096

enum volume_part { PART_LOG = 0, PART_FAST = 1, PART_COUNT = 2 };

struct manifest {
	unsigned format;
	uint8_t uuid[16];
	enum media_kind media;
	char path[PART_COUNT][VOLUME_PATH_MAX]; /* absolute */
	uint64_t size[PART_COUNT];
};

struct volume {
	char dir[VOLUME_PATH_MAX];
	struct manifest mf;
	struct media *part[PART_COUNT];
	int lock_fd; /* the volume directory, flock'ed while open */
};

const char *volume_part_name(enum volume_part p);

/* Writes dir/cairn.volume atomically (temporary file, fsync, rename). */
int manifest_write(const char *dir, const struct manifest *mf, char *err, size_t errlen);

/* Reads and checks dir/cairn.volume.  -ENOENT when there is none. */
int manifest_read(const char *dir, struct manifest *mf, char *err, size_t errlen);

/* Opens every part with the manifest's medium, or `media` if non-zero,
 * checking that each exists and has the recorded size.  Locks the volume
 * directory (flock): exclusively to write, shared to only read, so that two
 * processes never write one volume; -EBUSY when it is taken. */
int volume_open(struct volume *v, const char *dir, enum media_kind media, int exclusive,
		char *err, size_t errlen);
void volume_close(struct volume *v);

#endif
