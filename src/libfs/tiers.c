/*
 * tiers.c - cairn_tier_add, cairn_tier_evacuate, cairn_tier_keep,
 * cairn_tier_draining, cairn_tier_remove and cairn_tier_grow: the tiers
 * of a mounted volume changed while it runs, and what a crash between
 * their steps leaves, settled at mount.
 *
 * Owns: the order of the steps.  May call: the volume layer (manifest,
 * targets), the shared area (shared_tier_*), migration (evacuation), the
 * digest (checkpoints), the client (an attached process asks its daemon).
 *
 * A tier lives in two places, the manifest (which part is which tier) and
 * the superblock (the tier's blocks), written one after the other:
 *
 *  add:    the part's file made and checked; the manifest gains the
 *          tier's line (renamed into place, durable); the superblock gains
 *          the tier in the next checkpoint, made at once.  A crash between
 *          the two leaves a manifest with one tier more than the
 *          superblock: the next read-write mount adds it (tiers_settle),
 *          the same steps again; a read-only one leaves it unused.
 *  remove: the tier's data moved off (evacuation, batches of migration,
 *          each committed); the superblock marks the tier retired in a
 *          checkpoint; the manifest's line becomes `retired NAME`.  A
 *          crash between the two leaves a tier line for a retired tier:
 *          the next read-write mount rewrites it, and meanwhile the part
 *          is not used.
 *  grow:   the superblock gains the tier's new size (and the new places
 *          of its bitmap and checksums) in a checkpoint; the manifest's
 *          size, a note no mount needs, follows.  The tier's header keeps
 *          its first size.
 *          The fast tier the other way round: its part grows in place
 *          with a copy of the superblock in its new last block, then the
 *          manifest records the size (a mount opens that much of the part,
 *          and looks there for the backup), then the superblock takes the
 *          blocks in a checkpoint.  A crash before the manifest leaves a
 *          longer file, unused; after it, a read-write mount finishes the
 *          grow (tiers_settle).
 *
 * A tier the shared area refuses (no room for its bitmap) leaves the
 * manifest again, at once or at the mount that meets it: a manifest line
 * nothing can add would refuse every mount.
 * Every step runs with digest_lock and fs->lock held exclusively, so no
 * digest, migration or tune interleaves with it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client.h"
#include "libfs/fs_internal.h"
#include "media/recorder.h"
#include "proto/ctl.h"
#include "tier/migrate.h"
#include "volume/target.h"
#include "volume/volume.h"

#define B 4096ull
#define ERR_LEN (VOLUME_PATH_MAX + 256)

/* Capacity tier `name` that holds data (not removed): its number, or 0. */
static unsigned tier_named(struct cairn_fs *fs, const char *name)
{
	for (unsigned t = 1; name && t < fs->sh.ntiers; t++)
		if (shared_tier_live(&fs->sh, t) && !strcmp(fs->sh.tier[t].name, name))
			return t;
	return 0;
}

static void lock_all(struct cairn_fs *fs)
{
	pthread_mutex_lock(&fs->digest_lock);
	fs_lock_exclusive(fs);
}

static void unlock_all(struct cairn_fs *fs)
{
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->digest_lock);
}

/* An attached process's command, done by its daemon: the daemon's
 * sentence becomes this thread's last error. */
static int via_daemon(struct cairn_fs *fs, int cmd, const char *name, const char *path, uint64_t n,
                      uint64_t unit, int force, uint64_t *left)
{
	struct ctl_tier_reply r;
	if (client_tier(fs->client, cmd, name, path, n, unit, force, &r))
		return -1;
	if (left)
		*left = r.left;
	if (r.err && r.msg[0])
		fs_set_error("%s", r.msg);
	return r.err ? fail(-r.err) : 0;
}

/* ---- add -------------------------------------------------------------------- */

/* Opens the new part as mkfs would (target.h: never a symbolic link, a
 * file or device holding data only when forced, never a part of a mounted
 * volume) and sizes it: *size the bytes the tier uses. */
static int open_part(struct cairn_fs *fs, struct part_target *pt, const struct cairn_tier_opts *t,
                     int force, struct media **m, uint64_t *size, char *err, size_t el)
{
	int rc = target_open(pt, err, el);
	if (!rc)
		rc = target_check(pt, fs->vol.dir, force, err, el);
	if (rc)
		return rc;
	uint64_t want = t->size / B * B;
	uint64_t open_size = pt->device ? 0 : want ? want : pt->size;
	if (!pt->device && open_size == 0) {
		snprintf(err, el, "tier %s: %s is empty and no size was given", t->name, pt->path);
		return -EINVAL;
	}
	const char *path = pt->media_path[0] ? pt->media_path : pt->path;
	char merr[512] = "";
	rc = media_open(m, MEDIA_FILE, path, open_size,
	                pt->device ? 0 : MEDIA_CREATE | MEDIA_SPARSE, merr, sizeof(merr));
	if (rc) {
		/* The media layer names the descriptor's /proc path: name the
		 * part as the user gave it. */
		const char *why = strstr(merr, path);
		why = why ? why + strlen(path) + 2 : merr;
		snprintf(err, el, "tier %s part %s: %s", t->name, pt->path, why);
		return rc;
	}
	uint64_t have = media_size(*m) / B * B;
	if (want && have < want) {
		snprintf(err, el, "tier %s: %s holds %llu bytes, less than the %llu asked for",
		         t->name, pt->path, (unsigned long long)have, (unsigned long long)want);
		return -ENOSPC;
	}
	*size = want ? want : have;
	return 0;
}

/* The part is the volume's from now on: the volume keeps the medium, and
 * the target's descriptor as the part's lock. */
static void adopt_part(struct cairn_fs *fs, int p, struct media *m, struct part_target *pt)
{
	fs->vol.part[p] = m;
	volume_adopt_part_lock(&fs->vol, p, pt->fd);
	pt->fd = -1;
	/* A recorded mount (the crash-state checker) learns of the new part,
	 * with what its file holds now. */
	struct recorder *r = fs->opts.recorder;
	if (r && recorder_add_part(r, p, media_direct(m), media_size(m)) == 0)
		media_set_recorder(m, r, p);
}

/* The superblock's half of an add, and its checkpoint.  *refused: the
 * shared area refused the tier (no room for its bitmap, say), and nothing
 * of it changed. */
static int add_to_shared(struct cairn_fs *fs, unsigned k, struct media *m, int *refused, char *err,
                         size_t el)
{
	const struct manifest *mf = &fs->vol.mf;
	lock_all(fs);
	int rc = fs->failed ? -EIO
	                    : shared_tier_add(&fs->sh, m, mf->tier_name[k], mf->tier_unit[k],
	                                      mf->size[PART_TIER1 + k], err, el);
	unlock_all(fs);
	*refused = rc != 0;
	return rc ? rc : fs_checkpoint(fs, 0);
}

/* Part p is the volume's no more: its medium and its lock closed. */
static void release_part(struct cairn_fs *fs, int p)
{
	if (fs->vol.part[p])
		media_close(fs->vol.part[p]);
	fs->vol.part[p] = NULL;
	volume_release_part_lock(&fs->vol, p);
}

/* A tier the shared area refused leaves the manifest (its last line)
 * again, and its part the volume: as if never added.  Else the next
 * mount would try the add again, and refuse the volume with it. */
static int drop_refused(struct cairn_fs *fs, unsigned k)
{
	struct manifest mf = fs->vol.mf;
	int p = PART_TIER1 + (int)k;
	mf.ntiers = k;
	mf.path[p][0] = mf.tier_name[k][0] = 0;
	mf.size[p] = mf.tier_unit[k] = 0;
	char err[ERR_LEN];
	int rc = manifest_write(fs->vol.dir, &mf, err, sizeof(err));
	if (rc)
		return rc;
	fs->vol.mf = mf;
	release_part(fs, p);
	return 0;
}

static int check_add(struct cairn_fs *fs, const struct cairn_tier_opts *t, char *err, size_t el)
{
	int rc = tier_opts_check(t, fs->vol.mf.ntiers);
	if (rc)
		return rc;
	if (tier_named(fs, t->name)) {
		snprintf(err, el, "tier %s: the volume has a tier of that name", t->name);
		return -EEXIST;
	}
	if (fs->vol.mf.ntiers >= VOLUME_MAX_TIERS) {
		snprintf(err, el,
		         "the volume has had %u capacity tiers (removed ones count: their numbers "
		         "are not used again); at most %d",
		         fs->vol.mf.ntiers, VOLUME_MAX_TIERS);
		return -ENOSPC;
	}
	return 0;
}

static int tier_add(struct cairn_fs *fs, const struct cairn_tier_opts *t, int force, char *err,
                    size_t el)
{
	int rc = check_add(fs, t, err, el);
	if (rc)
		return rc;
	struct manifest mf = fs->vol.mf;
	unsigned k = mf.ntiers;
	int p = PART_TIER1 + (int)k;
	rc = path_absolute(mf.path[p], t->path);
	if (rc)
		return rc;
	char what[32];
	snprintf(what, sizeof(what), "tier %s", t->name);
	struct part_target pt = {.path = mf.path[p], .what = what, .fd = -1};
	struct media *m = NULL;
	rc = open_part(fs, &pt, t, force, &m, &mf.size[p], err, el);
	snprintf(mf.tier_name[k], sizeof(mf.tier_name[k]), "%s", t->name);
	mf.tier_unit[k] = t->unit ? (uint32_t)(t->unit / B) : tier_default_unit(t->name);
	mf.tier_retired[k] = 0;
	mf.ntiers = k + 1;
	if (!rc)
		rc = manifest_write(fs->vol.dir, &mf, err, el);
	if (rc) {
		if (m)
			media_close(m);
		target_close(&pt, 1);
		return rc;
	}
	fs->vol.mf = mf;
	adopt_part(fs, p, m, &pt);
	/* From here the manifest names the tier: if the superblock's half
	 * fails but for a refusal, the next mount finishes it (tiers_settle). */
	int refused;
	rc = add_to_shared(fs, k, m, &refused, err, el);
	if (rc && refused && drop_refused(fs, k) == 0 && pt.created)
		unlink(mf.path[p]); /* the file this call made */
	return rc;
}

int cairn_tier_add(cairn_fs *fs, const struct cairn_tier_opts *t, int force)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (!fs)
		return fail(-EINVAL);
	if (!t)
		return fail(-EFAULT);
	if (fs->client) {
		char abs[VOLUME_PATH_MAX];
		if (!t->path || path_absolute(abs, t->path))
			return fail(-EINVAL);
		return via_daemon(fs, CTL_TIER_ADD_CMD, t->name, abs, t->size, t->unit, force,
		                  NULL);
	}
	if (fs->read_only)
		return fail(-EROFS);
	char err[ERR_LEN] = "";
	pthread_mutex_lock(&fs->tier_lock);
	int rc = tier_add(fs, t, force, err, sizeof(err));
	pthread_mutex_unlock(&fs->tier_lock);
	if (rc && err[0])
		fs_set_error("%s", err);
	return rc ? fail(rc) : 0;
}

/* ---- evacuate, keep --------------------------------------------------------- */

/* The room the other tiers have for tier t's data. */
static uint64_t room_elsewhere(struct cairn_fs *fs, unsigned t)
{
	uint64_t room = tier_data_free(fs, 0);
	for (unsigned d = 1; d < fs->sh.ntiers; d++)
		if (d != t)
			room += shared_tier_room(&fs->sh, d);
	return room;
}

/* Marks t draining, unless the other tiers could never take what it has:
 * then nothing changes. */
static int start_draining(struct cairn_fs *fs, unsigned t, char *err, size_t el)
{
	fs_lock_exclusive(fs);
	uint64_t used = shared_tier_used(&fs->sh, t), room = room_elsewhere(fs, t);
	int rc = 0;
	if (used > room && !fs->sh.tier[t].draining) {
		snprintf(
		    err, el,
		    "tier %s: its %llu MiB of data do not fit on the other tiers (%llu MiB free "
		    "there)",
		    fs->sh.tier[t].name, (unsigned long long)(used * B >> 20),
		    (unsigned long long)(room * B >> 20));
		rc = -ENOSPC;
	} else {
		shared_tier_set_draining(&fs->sh, t, 1);
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

static int tier_evacuate(struct cairn_fs *fs, const char *name, uint64_t max_bytes, uint64_t *left,
                         char *err, size_t el)
{
	unsigned t = tier_named(fs, name);
	if (!t) {
		snprintf(err, el, "no capacity tier named %s", name ? name : "(null)");
		return -ENOENT;
	}
	/* Blocks written again whole since they went bad move like any:
	 * what the log holds is stored first, if it can be (a tier whose
	 * medium fails is the one to empty). */
	(void)fs_digest_now(fs);
	int rc = start_draining(fs, t, err, el);
	uint64_t want = max_bytes ? (max_bytes + B - 1) / B : UINT64_MAX, moved = 0;
	if (!rc)
		rc = migrate_evacuate(fs, t, want, &moved);
	uint64_t still = shared_tier_used(&fs->sh, t);
	if (left)
		*left = still * B;
	if (rc == -ENOSPC && !err[0])
		snprintf(err, el, "tier %s: the other tiers have no room for its last %llu MiB",
		         name, (unsigned long long)(still * B >> 20));
	if (!rc && still && moved < want) {
		snprintf(err, el,
		         "tier %s: %llu blocks stay, in extents holding blocks that failed their "
		         "checksums, which do not move (cairn scrub names their files)",
		         name, (unsigned long long)still);
		rc = -EIO;
	}
	return rc;
}

int cairn_tier_evacuate(cairn_fs *fs, const char *name, uint64_t max_bytes, uint64_t *left)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (!fs)
		return fail(-EINVAL);
	if (!name)
		return fail(-EFAULT);
	if (fs->client)
		return via_daemon(fs, CTL_TIER_EVACUATE_CMD, name, NULL, max_bytes, 0, 0, left);
	if (fs->read_only)
		return fail(-EROFS);
	char err[ERR_LEN] = "";
	int rc = tier_evacuate(fs, name, max_bytes, left, err, sizeof(err));
	if (rc && err[0])
		fs_set_error("%s", err);
	return rc ? fail(rc) : 0;
}

int cairn_tier_keep(cairn_fs *fs, const char *name)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (!fs)
		return fail(-EINVAL);
	if (!name)
		return fail(-EFAULT);
	if (fs->client)
		return via_daemon(fs, CTL_TIER_KEEP_CMD, name, NULL, 0, 0, 0, NULL);
	if (fs->read_only)
		return fail(-EROFS);
	fs_lock_exclusive(fs);
	unsigned t = tier_named(fs, name);
	if (t)
		shared_tier_set_draining(&fs->sh, t, 0);
	pthread_rwlock_unlock(&fs->lock);
	if (!t)
		fs_set_error("no capacity tier named %s", name ? name : "(null)");
	return t ? 0 : fail(-ENOENT);
}

int cairn_tier_draining(cairn_fs *fs, uint32_t *mask)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (!fs)
		return fail(-EINVAL);
	if (!mask)
		return fail(-EFAULT);
	if (fs->client) {
		uint64_t m = 0;
		int rc = via_daemon(fs, CTL_TIER_DRAINING_CMD, "", NULL, 0, 0, 0, &m);
		*mask = (uint32_t)m;
		return rc;
	}
	*mask = 0;
	pthread_rwlock_rdlock(&fs->lock);
	for (unsigned t = 1; t < fs->sh.ntiers; t++)
		if (shared_tier_live(&fs->sh, t) && fs->sh.tier[t].draining)
			*mask |= 1u << t;
	pthread_rwlock_unlock(&fs->lock);
	return 0;
}

/* ---- remove ----------------------------------------------------------------- */

/* The manifest's line for tier t becomes `retired NAME`, and the part
 * stops being the volume's. */
static int retire_in_manifest(struct cairn_fs *fs, unsigned t, char *err, size_t el)
{
	struct manifest mf = fs->vol.mf;
	int p = PART_TIER1 + (int)t - 1;
	mf.tier_retired[t - 1] = 1;
	mf.path[p][0] = 0;
	mf.size[p] = 0;
	mf.tier_unit[t - 1] = 0;
	int rc = manifest_write(fs->vol.dir, &mf, err, el);
	if (rc)
		return rc;
	fs->vol.mf = mf;
	release_part(fs, p);
	return 0;
}

static int tier_remove(struct cairn_fs *fs, const char *name, char *err, size_t el)
{
	unsigned t = tier_named(fs, name);
	if (!t) {
		snprintf(err, el, "no capacity tier named %s", name ? name : "(null)");
		return -ENOENT;
	}
	/* Blocks freed by the last evacuation are free once a checkpoint
	 * has made the moves durable. */
	int rc = fs_checkpoint(fs, 0);
	if (rc)
		return rc;
	lock_all(fs);
	rc = fs->failed ? -EIO : shared_tier_retire(&fs->sh, t, err, el);
	unlock_all(fs);
	if (rc == -EBUSY)
		snprintf(err + strlen(err), el - strlen(err), ": evacuate it first");
	if (!rc)
		rc = fs_checkpoint(fs, 0);
	/* Retired for good once that checkpoint is durable; a manifest left
	 * naming its part is rewritten by the next mount. */
	return rc ? rc : retire_in_manifest(fs, t, err, el);
}

int cairn_tier_remove(cairn_fs *fs, const char *name)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (!fs)
		return fail(-EINVAL);
	if (!name)
		return fail(-EFAULT);
	if (fs->client)
		return via_daemon(fs, CTL_TIER_REMOVE_CMD, name, NULL, 0, 0, 0, NULL);
	if (fs->read_only)
		return fail(-EROFS);
	char err[ERR_LEN] = "";
	pthread_mutex_lock(&fs->tier_lock);
	int rc = tier_remove(fs, name, err, sizeof(err));
	pthread_mutex_unlock(&fs->tier_lock);
	if (rc && err[0])
		fs_set_error("%s", err);
	return rc ? fail(rc) : 0;
}

/* ---- grow ------------------------------------------------------------------- */

/* Tier t's part opened again, larger: a regular file grown to `want`
 * bytes (0: as large as it is), a device as large as it is. */
static int open_larger(struct cairn_fs *fs, unsigned t, uint64_t want, struct media **m,
                       uint64_t *blocks, char *err, size_t el)
{
	const char *path = fs->vol.mf.path[PART_TIER1 + t - 1];
	struct stat st;
	if (stat(path, &st)) {
		snprintf(err, el, "tier %s part %s: %s", fs->sh.tier[t].name, path,
		         strerror(errno));
		return -errno;
	}
	int grow_file = S_ISREG(st.st_mode) && want > (uint64_t)st.st_size;
	int rc = media_open(m, MEDIA_FILE, path, grow_file ? want : 0,
	                    grow_file ? MEDIA_CREATE | MEDIA_SPARSE : 0, err, el);
	if (rc)
		return rc;
	uint64_t have = media_size(*m) / B * B;
	*blocks = (want && want < have ? want : have) / B;
	if (*blocks <= fs->sh.tier[t].total_blocks) {
		snprintf(err, el, "tier %s: %llu bytes is not larger than its %llu",
		         fs->sh.tier[t].name, (unsigned long long)(*blocks * B),
		         (unsigned long long)(fs->sh.tier[t].total_blocks * B));
		media_close(*m);
		*m = NULL;
		return -EINVAL;
	}
	return 0;
}

/* Runs step with every lock held, right after a checkpoint; again, after
 * another, while it answers -EAGAIN (at most three times): blocks freed
 * since the last checkpoint would be free at once in a copied bitmap, and
 * a checkpoint releases them. */
typedef int (*locked_step)(struct cairn_fs *fs, void *arg, char *err, size_t el);

static int after_checkpoint(struct cairn_fs *fs, locked_step step, void *arg, char *err, size_t el)
{
	int rc = -EAGAIN;
	for (int tries = 0; rc == -EAGAIN && tries < 3; tries++) {
		rc = fs_checkpoint(fs, 0);
		if (rc)
			return rc;
		lock_all(fs);
		rc = fs->failed ? -EIO : step(fs, arg, err, el);
		unlock_all(fs);
	}
	return rc;
}

struct grow_step {
	unsigned t;
	struct media *m, *old;
	uint64_t blocks;
};

/* A capacity tier's regions move, its medium is swapped. */
static int tier_grow_step(struct cairn_fs *fs, void *arg, char *err, size_t el)
{
	struct grow_step *g = arg;
	int rc = shared_tier_grow(&fs->sh, g->t, g->m, g->blocks, &g->old, err, el);
	if (g->old) {
		fs->vol.part[PART_TIER1 + g->t - 1] = g->m;
		if (rc)
			fs->failed = 1; /* moved half-way: the cached state is not whole */
	}
	return rc;
}

/* The superblock's half of a capacity tier's grow. */
static int grow_shared(struct cairn_fs *fs, unsigned t, struct media *m, uint64_t blocks, char *err,
                       size_t el)
{
	struct grow_step g = {.t = t, .m = m, .blocks = blocks};
	int rc = after_checkpoint(fs, tier_grow_step, &g, err, el);
	if (g.old)
		media_close(g.old);
	return rc;
}

/* The manifest records part p's new size. */
static int size_in_manifest(struct cairn_fs *fs, int p, uint64_t bytes, char *err, size_t el)
{
	struct manifest mf = fs->vol.mf;
	mf.size[p] = bytes;
	int rc = manifest_write(fs->vol.dir, &mf, err, el);
	if (!rc)
		fs->vol.mf = mf;
	return rc;
}

static int fast_grow_step(struct cairn_fs *fs, void *arg, char *err, size_t el)
{
	(void)arg;
	int rc = shared_fast_grow(&fs->sh, err, el);
	if (rc && rc != -EAGAIN && !shared_fast_pending(&fs->sh))
		fs->failed = 1; /* moved half-way: the cached state is not whole */
	return rc;
}

/* The superblock's half of a fast grow: the tier takes every block its
 * part has, and a checkpoint commits it. */
static int fast_take_part(struct cairn_fs *fs, char *err, size_t el)
{
	int rc = after_checkpoint(fs, fast_grow_step, NULL, err, el);
	return rc ? rc : fs_checkpoint(fs, 0);
}

/* The fast tier: its part grows in place, the manifest records the size,
 * then the superblock takes the blocks (see shared_fast_extend). */
static int fast_grow(struct cairn_fs *fs, uint64_t size, char *err, size_t el)
{
	if (!size) { /* all of it: as large as the file or device is now */
		struct media *whole = NULL;
		int rc = media_open(&whole, MEDIA_FILE, fs->vol.mf.path[PART_FAST], 0, 0, err, el);
		if (rc)
			return rc;
		size = media_size(whole) / B * B;
		media_close(whole);
	}
	/* A grow cut short after the manifest's step (at mount, or earlier
	 * by this one) goes on from there. */
	if (shared_fast_pending(&fs->sh) && size <= media_size(fs->sh.m))
		return fs->failed ? -EIO : fast_take_part(fs, err, el);
	int rc = fs_checkpoint(fs, 0);
	if (rc)
		return rc;
	/* The part's extension can take long (zeros written over a file's
	 * new bytes): the digest waits, as no checkpoint may place the backup
	 * superblock meanwhile, but reads and writes go on. */
	uint64_t had = media_size(fs->sh.m);
	pthread_mutex_lock(&fs->digest_lock);
	rc = fs->failed ? -EIO : shared_fast_extend(&fs->sh, size, err, el);
	pthread_mutex_unlock(&fs->digest_lock);
	/* From here a mount opens that much of the part, and finishes the
	 * grow if the superblock lacks it. */
	if (!rc)
		rc = size_in_manifest(fs, PART_FAST, media_size(fs->sh.m), err, el);
	/* A part grown under a manifest that does not say so: a checkpoint
	 * would write the backup superblock where no mount looks for it. */
	if (rc && media_size(fs->sh.m) != had && fs->vol.mf.size[PART_FAST] == had)
		fs->failed = 1;
	return rc ? rc : fast_take_part(fs, err, el);
}

static int tier_grow(struct cairn_fs *fs, const char *name, uint64_t size, char *err, size_t el)
{
	if (!strcmp(name, "fast"))
		return fast_grow(fs, size / B * B, err, el);
	unsigned t = tier_named(fs, name);
	if (!t) {
		snprintf(err, el, "no capacity tier named %s", name);
		return -ENOENT;
	}
	struct media *m = NULL;
	uint64_t blocks = 0;
	int rc = open_larger(fs, t, size / B * B, &m, &blocks, err, el);
	if (rc)
		return rc;
	/* A recorded mount's part was declared with room to grow into. */
	if (fs->opts.recorder)
		media_set_recorder(m, fs->opts.recorder, PART_TIER1 + (int)t - 1);
	rc = grow_shared(fs, t, m, blocks, err, el);
	if (rc && fs->vol.part[PART_TIER1 + t - 1] != m)
		media_close(m);
	if (!rc)
		rc = fs_checkpoint(fs, 0);
	/* Durable now.  The manifest's size says so after it; a mount does
	 * not need it (a tier's part may be larger than the manifest says). */
	return rc ? rc : size_in_manifest(fs, PART_TIER1 + (int)t - 1, blocks * B, err, el);
}

int cairn_tier_grow(cairn_fs *fs, const char *name, uint64_t size)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (!fs)
		return fail(-EINVAL);
	if (!name)
		return fail(-EFAULT);
	if (fs->client)
		return via_daemon(fs, CTL_TIER_GROW_CMD, name, NULL, size, 0, 0, NULL);
	if (fs->read_only)
		return fail(-EROFS);
	char err[ERR_LEN] = "";
	pthread_mutex_lock(&fs->tier_lock);
	int rc = tier_grow(fs, name, size, err, sizeof(err));
	pthread_mutex_unlock(&fs->tier_lock);
	if (rc && err[0])
		fs_set_error("%s", err);
	return rc ? fail(rc) : 0;
}

/* ---- at mount --------------------------------------------------------------- */

int tiers_settle(struct cairn_fs *fs, char *err, size_t el)
{
	if (fs->read_only)
		return 0; /* a pending tier stays unused; nothing is written */
	int rc = 0;
	if (fs->sh.tier_pending) {
		unsigned k = fs->vol.mf.ntiers - 1;
		int refused;
		rc = add_to_shared(fs, k, fs->vol.part[PART_TIER1 + k], &refused, err, el);
		if (rc && refused) {
			/* The volume mounts without it, and says so. */
			fprintf(
			    stderr,
			    "cairn: warning: tier %s, which a cut-short `cairn tier add` left in "
			    "the manifest, cannot be added (%s): the manifest no longer names it\n",
			    fs->vol.mf.tier_name[k], err);
			err[0] = 0;
			rc = drop_refused(fs, k);
		}
	}
	for (unsigned t = 1; !rc && fs->sh.manifest_stale && t < fs->sh.ntiers; t++)
		if (fs->sh.tier[t].retired && !fs->vol.mf.tier_retired[t - 1])
			rc = retire_in_manifest(fs, t, err, el);
	/* The manifest has the fast part's new size, the superblock not yet. */
	if (!rc && shared_fast_pending(&fs->sh))
		rc = fast_take_part(fs, err, el);
	if (!rc)
		shared_tiers_settled(&fs->sh);
	return rc;
}
