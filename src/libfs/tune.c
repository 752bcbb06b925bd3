/*
 * tune.c - cairn_tune: the options of a mounted volume that may change
 * while it runs (the watermarks, promotion, the batch interval), changed
 * in place, and the first three stored in the manifest as the defaults of
 * later mounts.
 *
 * Owns: the change of fs->opts after the mount.  May call: the volume
 * layer (manifest_write), the digest (its thread, woken to migrate), the
 * client (an attached process asks its daemon).
 *
 * Order: the manifest is written first, with the volume lock held by the
 * mount and fs->lock held exclusively (so that two tunes, and a tune and a
 * mount's readers of the volume's state, do not interleave); only when the
 * new manifest is durable do the options change, each stored atomically
 * (fs_opt_set: migration and heat read them without the lock).
 * The manifest is replaced whole by a rename (manifest_write), so a crash
 * leaves the old options or the new ones, never a manifest a mount
 * refuses.
 */
#include <errno.h>
#include <stdio.h>

#include "client/client.h"
#include "digest/digest.h"
#include "libfs/fs_internal.h"
#include "volume/volume.h"

#define BATCH_MS_MAX 3600000

int tuning_check(int high, int low, char *err, size_t el)
{
	if (low < 1 || high > 100 || low >= high) {
		snprintf(err, el, "watermarks low %d%%, high %d%%: need 1 <= low < high <= 100",
		         low, high);
		return -EINVAL;
	}
	return 0;
}

/* The values of t checked alone (not yet against the volume's). */
static int tuning_in_range(const struct cairn_tuning *t)
{
	if (t->high_watermark < 0 || t->high_watermark > 100 || t->low_watermark < 0 ||
	    t->low_watermark > 100)
		return 0;
	return t->promotion >= -1 && t->promotion <= 1 && t->batch_ms >= 0 &&
	       t->batch_ms <= BATCH_MS_MAX;
}

/* The watermarks and promotion, changed and stored; fs->lock held. */
static int tune_stored(struct cairn_fs *fs, const struct cairn_tuning *t, char *err, size_t el)
{
	int high = t->high_watermark ? t->high_watermark : fs->opts.high_watermark;
	int low = t->low_watermark ? t->low_watermark : fs->opts.low_watermark;
	int rc = tuning_check(high, low, err, el);
	if (rc)
		return rc;
	struct manifest mf = fs->vol.mf;
	/* Both watermarks, so that the next mount never pairs a stored one
	 * with a default it was not checked against. */
	if (t->high_watermark || t->low_watermark) {
		mf.tuning.high_watermark = high;
		mf.tuning.low_watermark = low;
	}
	if (t->promotion)
		mf.tuning.promotion = t->promotion > 0 ? TUNE_ON : TUNE_OFF;
	rc = manifest_write(fs->vol.dir, &mf, err, el);
	if (rc)
		return rc;
	fs->vol.mf.tuning = mf.tuning;
	fs_opt_set(&fs->opts.high_watermark, high);
	fs_opt_set(&fs->opts.low_watermark, low);
	if (t->promotion)
		fs_opt_set(&fs->opts.no_promotion, t->promotion < 0);
	return 0;
}

static int fs_tune(struct cairn_fs *fs, const struct cairn_tuning *t, char *err, size_t el)
{
	if (!tuning_in_range(t)) {
		snprintf(err, el, "a value out of range");
		return -EINVAL;
	}
	if (fs->read_only)
		return -EROFS;
	if (t->batch_ms && fs->opts.batch_ms == 0) {
		snprintf(err, el, "sync mode: the mode is chosen at mount (--batch MS)");
		return -EINVAL;
	}
	int rc = 0;
	if (t->high_watermark || t->low_watermark || t->promotion) {
		/* The manifest is rewritten by one change at a time: a tier
		 * change's rewrite between this one's read and write would be
		 * lost. */
		pthread_mutex_lock(&fs->tier_lock);
		fs_lock_exclusive(fs);
		rc = tune_stored(fs, t, err, el);
		pthread_rwlock_unlock(&fs->lock);
		pthread_mutex_unlock(&fs->tier_lock);
	}
	if (!rc && t->batch_ms)
		fs_set_batch_interval(fs, t->batch_ms);
	if (!rc && fs->sh.ntiers > 1)
		fs_migrate_kick(fs); /* a lower watermark may call for it now */
	return rc;
}

int cairn_tune(cairn_fs *fs, const struct cairn_tuning *t)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (!fs)
		return fail(-EINVAL);
	if (!t)
		return fail(-EFAULT);
	if (fs->client)
		return client_tune(fs->client, t);
	char err[VOLUME_PATH_MAX + 128] = "";
	int rc = fs_tune(fs, t, err, sizeof(err));
	if (rc && err[0])
		fs_set_error("%s", err);
	return rc ? fail(rc) : 0;
}
