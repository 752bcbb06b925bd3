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
#include <sys/types.h>

#include "media/media.h"

#define VOLUME_MANIFEST "cairn.volume"
#define VOLUME_PATH_MAX 4096

/* Every volume has a log and a fast tier; capacity tiers follow them as
 * parts PART_TIER1, PART_TIER1 + 1, ... (fastest first). */
enum volume_part { PART_LOG = 0, PART_FAST = 1, PART_COUNT = 2, PART_TIER1 = 2 };
#define VOLUME_MAX_TIERS 6
#define VOLUME_MAX_PARTS (PART_COUNT + VOLUME_MAX_TIERS)
#define VOLUME_TIER_NAME_MAX 15

/* The options `cairn tune` stores (option lines of the manifest): the
 * defaults of every mount, which a mount's own options override. */
enum { TUNE_UNSET = 0, TUNE_ON, TUNE_OFF };
struct manifest_tuning {
	int high_watermark, low_watermark; /* percent; 0: not stored */
	int promotion;                     /* TUNE_* */
};

struct manifest {
	unsigned format;
	uint8_t uuid[16];
	enum media_kind media; /* of the log and the fast tier */
	unsigned ntiers;       /* capacity tiers: always the file medium */
	char tier_name[VOLUME_MAX_TIERS][VOLUME_TIER_NAME_MAX + 1];
	uint32_t tier_unit[VOLUME_MAX_TIERS]; /* allocation unit, in 4 KiB blocks */
	/* A tier removed (`retired NAME` line): it keeps its number, and has
	 * no part (path empty, never opened). */
	uint8_t tier_retired[VOLUME_MAX_TIERS];
	char path[VOLUME_MAX_PARTS][VOLUME_PATH_MAX]; /* absolute */
	uint64_t size[VOLUME_MAX_PARTS];
	struct manifest_tuning tuning;
};

struct volume {
	char dir[VOLUME_PATH_MAX];
	struct manifest mf;
	struct media *part[VOLUME_MAX_PARTS];
	int lock_fd;                     /* the volume directory, flock'ed while open */
	int part_lock[VOLUME_MAX_PARTS]; /* each part's file, flock'ed the same way */
	int inherited;                   /* this copy is a child of fork's: the
	                                  * volume is its parent's */
};

/* Parts the manifest lists: PART_COUNT + its capacity tiers. */
static inline int manifest_parts(const struct manifest *mf)
{
	return PART_COUNT + (int)mf->ntiers;
}

/* "log", "fast", or the capacity tier's name. */
const char *volume_part_name(const struct manifest *mf, int p);

/* Writes dir/cairn.volume atomically (temporary file, fsync, rename); the
 * caller holds the volume lock.  The file is mode 0600. */
int manifest_write(const char *dir, const struct manifest *mf, char *err, size_t errlen);

/* Reads and checks dir/cairn.volume.  -ENOENT when there is none. */
int manifest_read(const char *dir, struct manifest *mf, char *err, size_t errlen);

/* Opens and flocks the directory dir (exclusively or shared, without
 * waiting): the lock a mount holds.  Returns the descriptor, or -EBUSY when
 * another process holds the lock, or -errno; err says which.  The
 * descriptor is closed with volume_unlock. */
int volume_lock_dir(const char *dir, int exclusive, char *err, size_t errlen);

/* open(2) of a file whose descriptor will hold a flock (a file mkfs or a
 * tier add formats), closed on exec; closed with volume_unlock, or given
 * to an open volume with volume_adopt_part_lock.  A child of fork closes
 * its copies of such descriptors, as of an open volume's (below). */
int volume_open_lockable(const char *path, int flags, mode_t mode);
void volume_unlock(int fd);

/* Whether part p is a removed tier's, which has no file. */
static inline int manifest_part_retired(const struct manifest *mf, int p)
{
	return p >= PART_TIER1 && mf->tier_retired[p - PART_TIER1];
}

/* Opens every part with the manifest's medium, or `media` if non-zero
 * (capacity tiers always with the file medium), checking that each exists
 * and has the recorded size (a capacity tier may be larger: a block device
 * that grew).  Locks the volume
 * directory (flock): exclusively to write, shared to only read, so that two
 * processes never write one volume; -EBUSY when it is taken.  Each part's
 * file is locked the same way (mkfs refuses a locked file). */
int volume_open(struct volume *v, const char *dir, enum media_kind media, int exclusive, char *err,
                size_t errlen);
void volume_close(struct volume *v);
/* A child of fork closes its copies of every open volume's lock
 * descriptors (the parent's locks stand): a child cannot use its parent's
 * mount, and must not keep the volume "in use".  So a lock descriptor is
 * set and closed through these two. */
void volume_adopt_part_lock(struct volume *v, int p, int fd);
void volume_release_part_lock(struct volume *v, int p);

/* The latest failure of any part's medium (see media_failure), with the
 * part named: "tier ssd part PATH: write of N bytes at offset X failed:
 * REASON".  Returns 0 (buf untouched) when no part has failed. */
int volume_failure(struct volume *v, char *buf, size_t len);

#endif
