/*
 * mount.c - volume lifetime: mkfs, mount (recovery), unmount, and the
 * calls that act on the whole volume (sync, digest, statvfs).
 *
 * Owns: creating and tearing down struct cairn_fs.
 * May call: volume, log, shared, apply (replay), digest.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "digest/digest.h"
#include "tier/migrate.h"
#include "fs/alloc.h"
#include "fs/extent.h"
#include "libfs/clients.h"
#include "libfs/fs_internal.h"
#include "log/log_format.h"
#include "util/progress.h"
#include "util/spin.h"
#include "volume/target.h"

static __thread char last_error[1024];

const char *cairn_last_error(void)
{
	return last_error;
}

void fs_set_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

static enum media_kind media_of(enum cairn_media m, enum media_kind dflt)
{
	switch (m) {
	case CAIRN_MEDIA_PMEM:
		return MEDIA_PMEM;
	case CAIRN_MEDIA_FILE:
		return MEDIA_FILE;
	case CAIRN_MEDIA_EMUL:
		return MEDIA_EMUL;
	default:
		return dflt;
	}
}

/* ---- mkfs ---------------------------------------------------------------- */

/* mkfs never destroys what it was not asked to: see src/volume/target.h for
 * the rules on each part's file.  The volume directory is locked (the lock
 * a mount takes) from before the manifest is looked for until it is
 * written, so two mkfs of one directory, or a mkfs and a mount, exclude
 * each other, and a failed mkfs removes only the files it created. */

/* Makes the volume directory if missing; *made says whether it did. */
static int make_volume_dir(const char *dir, int *made)
{
	*made = mkdir(dir, 0755) == 0;
	if (*made)
		return 0;
	if (errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return 0;
}

/* Under the volume lock: an existing volume is replaced only when forced. */
static int check_no_volume(const char *dir, int force)
{
	char path[VOLUME_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, VOLUME_MANIFEST);
	if (!force && access(path, F_OK) == 0) {
		fs_set_error("a cairn volume already exists here (--force replaces it)");
		return -EEXIST;
	}
	return 0;
}

static int on_tmpfs(const char *dir)
{
	struct statfs sf;
	return statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

static void default_part_path(char *out, const char *dir, enum media_kind kind, const char *uuid,
                              const char *name)
{
	/* Emulated persistent memory lives in DRAM: a file in /dev/shm, unless
	 * the volume directory is already in memory. */
	if (kind == MEDIA_EMUL && !on_tmpfs(dir))
		snprintf(out, VOLUME_PATH_MAX, "/dev/shm/cairn-%s-%s", uuid, name);
	else
		snprintf(out, VOLUME_PATH_MAX, "%s/%s.part", dir, name);
}

int path_absolute(char *out, const char *path)
{
	if (path[0] == '/') {
		snprintf(out, VOLUME_PATH_MAX, "%s", path);
		return 0;
	}
	char cwd[VOLUME_PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	int n = snprintf(out, VOLUME_PATH_MAX, "%s/%s", cwd, path);
	return n >= VOLUME_PATH_MAX ? -ENAMETOOLONG : 0;
}

/* A tier's allocation unit: what suits the medium its name suggests.  A
 * disk pays a seek per discontiguous run, so runs are kept long there. */
uint32_t tier_default_unit(const char *name)
{
	return strcmp(name, "hdd") == 0 ? 256 : 1;
}

/* A capacity tier's name and unit; its name must not be a part's. */
int tier_opts_check(const struct cairn_tier_opts *t, unsigned k)
{
	size_t nl = t->name ? strlen(t->name) : 0;
	if (nl == 0 || nl > VOLUME_TIER_NAME_MAX || strpbrk(t->name, " \t\n/") || !t->path ||
	    !t->path[0] || t->unit % 4096 || t->unit / 4096 > UINT32_MAX) {
		fs_set_error("tier %u: needs a name of 1-%d characters without spaces, a path, and "
		             "a unit that is a multiple of 4096",
		             k + 1, VOLUME_TIER_NAME_MAX);
		return -EINVAL;
	}
	if (!strcmp(t->name, "log") || !strcmp(t->name, "fast")) {
		fs_set_error("tier %s: \"log\" and \"fast\" name the volume's own parts", t->name);
		return -EINVAL;
	}
	return 0;
}

/* A capacity tier of mkfs: as any, and named once. */
static int check_tier(const struct cairn_mkfs_opts *o, unsigned k)
{
	const struct cairn_tier_opts *t = &o->tiers[k];
	int rc = tier_opts_check(t, k);
	if (rc)
		return rc;
	for (unsigned j = 0; j < k; j++)
		if (!strcmp(o->tiers[j].name, t->name)) {
			fs_set_error("tier %s: named twice", t->name);
			return -EINVAL;
		}
	return 0;
}

/* The options that need no file to be judged. */
static int check_mkfs_opts(const struct cairn_mkfs_opts *o)
{
	if ((unsigned)o->media > CAIRN_MEDIA_EMUL) {
		fs_set_error("media %d: unknown (pmem, file or emul)", (int)o->media);
		return -EINVAL;
	}
	if ((o->log_size && o->log_size < 4096) || (o->fast_size && o->fast_size < 4096)) {
		fs_set_error("%s size %llu bytes: less than one 4 KiB block",
		             o->log_size && o->log_size < 4096 ? "log" : "fast tier",
		             (unsigned long long)(o->log_size && o->log_size < 4096
		                                      ? o->log_size
		                                      : o->fast_size));
		return -EINVAL;
	}
	/* Every inode takes FS_INODE_SIZE bytes of the fast tier's table. */
	uint64_t fast = o->fast_size ? o->fast_size : 1ull << 30;
	if (o->inodes > fast / FS_INODE_SIZE) {
		fs_set_error("%llu inodes do not fit in a fast tier of %llu bytes (each takes %u "
		             "bytes of it)",
		             (unsigned long long)o->inodes, (unsigned long long)fast,
		             FS_INODE_SIZE);
		return -EINVAL;
	}
	if (o->ntiers > VOLUME_MAX_TIERS) {
		fs_set_error("%u capacity tiers: at most %d are supported", o->ntiers,
		             VOLUME_MAX_TIERS);
		return -EINVAL;
	}
	int rc = 0;
	for (unsigned k = 0; k < o->ntiers && !rc; k++)
		rc = check_tier(o, k);
	return rc;
}

static int plan_tiers(struct manifest *mf, const struct cairn_mkfs_opts *o)
{
	mf->ntiers = o->ntiers;
	for (unsigned k = 0; k < o->ntiers; k++) {
		const struct cairn_tier_opts *t = &o->tiers[k];
		snprintf(mf->tier_name[k], sizeof(mf->tier_name[k]), "%s", t->name);
		mf->tier_unit[k] =
		    t->unit ? (uint32_t)(t->unit / 4096) : tier_default_unit(t->name);
		mf->size[PART_TIER1 + k] = t->size / 4096 * 4096;
		int rc = path_absolute(mf->path[PART_TIER1 + k], t->path);
		if (rc)
			return rc;
	}
	return 0;
}

static int plan_manifest(struct manifest *mf, const char *dir, const struct cairn_mkfs_opts *o)
{
	memset(mf, 0, sizeof(*mf));
	mf->format = 1;
	uuid_generate(mf->uuid);
	char us[40];
	uuid_unparse_lower(mf->uuid, us);
	mf->media = media_of(o->media, MEDIA_FILE);
	mf->size[PART_LOG] = o->log_size ? o->log_size : 256ull << 20;
	mf->size[PART_FAST] = o->fast_size ? o->fast_size : 1ull << 30;
	const char *given[PART_COUNT] = {o->log_path, o->fast_path};
	for (int p = 0; p < PART_COUNT; p++) {
		mf->size[p] = mf->size[p] / 4096 * 4096;
		if (given[p]) {
			int rc = path_absolute(mf->path[p], given[p]);
			if (rc)
				return rc;
		} else {
			default_part_path(mf->path[p], dir, mf->media, us, volume_part_name(mf, p));
		}
	}
	return plan_tiers(mf, o);
}

/* "the log part", "tier ssd": how messages name part p. */
static void part_label(char *out, size_t len, const struct manifest *mf, int p)
{
	snprintf(out, len, p < PART_TIER1 ? "%s part" : "tier %s", volume_part_name(mf, p));
}

/* Opens every part's file (target.h), refusing names a volume directory
 * keeps for itself and any file named as two parts. */
static int open_targets(const struct manifest *mf, const char *dir, int force,
                        struct part_target *t, char (*label)[32], char *err, size_t el)
{
	static const char *own[PART_COUNT] = {"log.part", "fast.part"};
	for (int p = 0; p < manifest_parts(mf); p++) {
		part_label(label[p], sizeof(label[p]), mf, p);
		t[p].path = mf->path[p];
		t[p].what = label[p];
		if (target_is_reserved(t[p].path, dir, p < PART_COUNT ? own[p] : NULL)) {
			snprintf(err, el, "%s %s: the volume directory keeps that name for itself",
			         label[p], t[p].path);
			return -EINVAL;
		}
		int rc = target_open(&t[p], err, el);
		if (rc)
			return rc;
		for (int q = 0; q < p; q++)
			if (target_same(&t[q], &t[p])) {
				snprintf(err, el,
				         "%s and %s: both are %s (one file cannot be two parts)",
				         label[q], label[p], t[p].path);
				return -EINVAL;
			}
		rc = target_check(&t[p], dir, force, err, el);
		if (rc)
			return rc;
	}
	return 0;
}

/* The path the media layer opens target t by. */
static const char *opened(const struct part_target *t)
{
	return t->media_path[0] ? t->media_path : t->path;
}

/* Opens a capacity tier for mkfs: a file of the given size (0 = the size
 * it had), or a device (0 = all of it). */
static int open_new_tier(struct media **m, struct manifest *mf, int p, const struct part_target *t,
                         char *err, size_t el)
{
	uint64_t size = t->device ? 0 : mf->size[p] ? mf->size[p] : t->size;
	if (!t->device && size == 0) {
		snprintf(err, el, "tier %s: %s is empty and no size was given",
		         volume_part_name(mf, p), mf->path[p]);
		return -EINVAL;
	}
	int rc = media_open(m, MEDIA_FILE, opened(t), size,
	                    t->device ? 0 : MEDIA_CREATE | MEDIA_SPARSE, err, el);
	if (!rc) {
		uint64_t have = media_size(*m) / 4096 * 4096;
		if (mf->size[p] && have < mf->size[p]) {
			snprintf(err, el,
			         "tier %s: %s holds %llu bytes, less than the %llu asked for",
			         volume_part_name(mf, p), mf->path[p], (unsigned long long)have,
			         (unsigned long long)mf->size[p]);
			return -ENOSPC;
		}
		mf->size[p] = mf->size[p] ? mf->size[p] : have;
	}
	return rc;
}

static int format_parts(struct manifest *mf, const struct cairn_mkfs_opts *o,
                        const struct part_target *t, char *err, size_t el)
{
	struct media *m[VOLUME_MAX_PARTS] = {0};
	int rc = 0;
	for (int p = 0; p < PART_COUNT && !rc; p++)
		rc =
		    media_open(&m[p], mf->media, opened(&t[p]), mf->size[p], MEDIA_CREATE, err, el);
	struct tier_spec cap[VOLUME_MAX_TIERS];
	for (unsigned k = 0; k < mf->ntiers && !rc; k++) {
		int p = PART_TIER1 + (int)k;
		rc = open_new_tier(&m[p], mf, p, &t[p], err, el);
		cap[k] = (struct tier_spec){m[p], mf->tier_name[k], mf->tier_unit[k], mf->size[p]};
	}
	if (!rc)
		rc = log_format(m[PART_LOG], mf->uuid, err, el);
	if (!rc)
		rc = shared_format(m[PART_FAST], cap, mf->ntiers, mf->uuid, o->inodes,
		                   LOG_RING_START, (uint64_t)now_ns(), err, el);
	if (rc == -ENOSPC && o->inodes && strstr(err, " inodes"))
		snprintf(err, el,
		         "fast part %s: %llu bytes is too small for %llu inodes and the "
		         "room a volume needs besides",
		         mf->path[PART_FAST], (unsigned long long)mf->size[PART_FAST],
		         (unsigned long long)o->inodes);
	for (int p = 0; p < VOLUME_MAX_PARTS; p++)
		if (m[p])
			media_close(m[p]);
	return rc;
}

/* A lower layer's message about a part, made the user's: the part's name
 * for /proc/self/fd/N, and no "cairn: " of its own inside ours. */
static void own_message(char *msg, size_t len, const struct part_target *t, int n)
{
	char out[1024];
	const char *s = strncmp(msg, "cairn: ", 7) ? msg : msg + 7;
	size_t o = 0;
	while (*s && o + 1 < sizeof(out)) {
		int hit = -1;
		for (int i = 0; i < n && hit < 0; i++) {
			size_t ml = strlen(t[i].media_path);
			if (ml && !strncmp(s, t[i].media_path, ml) &&
			    !isdigit((unsigned char)s[ml]))
				hit = i;
		}
		if (hit < 0) {
			out[o++] = *s++;
			continue;
		}
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", t[hit].path);
		o = o < sizeof(out) ? o : sizeof(out) - 1;
		s += strlen(t[hit].media_path);
	}
	out[o] = 0;
	snprintf(msg, len, "%s", out);
}

/* Everything after the lock: plan, open, format, and the manifest last,
 * since a directory without one is not a volume. */
static int make_volume(const char *dir, const struct cairn_mkfs_opts *o, char *err, size_t el)
{
	struct manifest mf;
	struct part_target t[VOLUME_MAX_PARTS];
	char label[VOLUME_MAX_PARTS][32];
	for (int p = 0; p < VOLUME_MAX_PARTS; p++)
		t[p] = (struct part_target){.fd = -1};
	int rc = check_no_volume(dir, o->force);
	if (!rc)
		rc = plan_manifest(&mf, dir, o);
	if (!rc)
		rc = open_targets(&mf, dir, o->force, t, label, err, el);
	if (!rc)
		rc = format_parts(&mf, o, t, err, el);
	if (!rc)
		rc = manifest_write(dir, &mf, err, el);
	if (err[0])
		own_message(err, el, t, VOLUME_MAX_PARTS);
	for (int p = 0; p < VOLUME_MAX_PARTS; p++)
		target_close(&t[p], rc != 0);
	return rc;
}

void cairn_set_progress_handler(void (*handler)(const char *what, uint64_t done, uint64_t total))
{
	progress_set_handler(handler);
}

int cairn_mkfs(const char *volume_dir, const struct cairn_mkfs_opts *opts)
{
	last_error[0] = 0;
	if (!volume_dir || !*volume_dir)
		return fail(-EINVAL);
	static const struct cairn_mkfs_opts defaults;
	const struct cairn_mkfs_opts *o = opts ? opts : &defaults;
	int rc = check_mkfs_opts(o);
	if (rc)
		return fail(rc);
	int made_dir;
	rc = make_volume_dir(volume_dir, &made_dir);
	if (rc) {
		fs_set_error("%s", strerror(-rc));
		return fail(rc);
	}
	char dir[VOLUME_PATH_MAX], err[1024] = "";
	if (!realpath(volume_dir, dir)) {
		rc = -errno;
		fs_set_error("%s", strerror(-rc));
		return fail(rc);
	}
	int lock = volume_lock_dir(dir, 1, err, sizeof(err));
	if (lock < 0) {
		fs_set_error("%s", lock == -EBUSY ? "the volume directory is in use (mounted, or "
		                                    "another mkfs is making it)"
		                                  : err);
		return fail(lock);
	}
	rc = make_volume(dir, o, err, sizeof(err));
	/* Under the lock, so no other mkfs has put files in it; the lock goes
	 * last, when the volume is whole (or gone). */
	if (rc && made_dir)
		rmdir(dir);
	volume_unlock(lock);
	if (rc) {
		if (err[0] || !last_error[0])
			fs_set_error("%s", err[0] ? err : strerror(-rc));
		return fail(rc);
	}
	return 0;
}

/* ---- mount --------------------------------------------------------------- */

struct replay {
	struct cairn_fs *fs;
	uint64_t count;
	uint64_t bad_seq, bad_off;
	int bad_rc;
	int ended; /* replay stopped at the bad record, which is dropped */
};

static int replay_one(void *arg, const struct log_rec_hdr *h, const void *payload, uint64_t off)
{
	struct replay *rp = arg;
	int rc = apply_record(rp->fs, h, payload, off + sizeof(*h));
	if (rc) {
		rp->bad_seq = h->seq;
		rp->bad_off = off;
		rp->bad_rc = rc;
		/* A call whose record could not be applied failed with EIO, and
		 * the volume took no change after it: as the last record, it
		 * is dropped.  (Volumes made before calls reserved their tree
		 * nodes can hold such a record.)  A read-only mount shows the
		 * prefix before any record that does not apply. */
		int last = rc == -ENOSPC && !log_record_follows(rp->fs->log, off, h);
		if (last || rp->fs->read_only) {
			rp->ended = 1;
			return LOG_REPLAY_END;
		}
		return rc;
	}
	rp->count++;
	return 0;
}

static void init_locks(struct cairn_fs *fs)
{
	pthread_rwlock_init(&fs->lock, NULL);
	mutex_init_brief(&fs->log_lock);
	pthread_mutex_init(&fs->pieces.lock, NULL);
	mutex_init_brief(&fs->fd_lock);
	pthread_mutex_init(&fs->digest_lock, NULL);
	pthread_mutex_init(&fs->tier_lock, NULL);
	pthread_mutex_init(&fs->dstate_lock, NULL);
	pthread_cond_init(&fs->dstate_cond, NULL);
}

static void destroy_fs(struct cairn_fs *fs)
{
	clients_destroy(fs);
	vnode_destroy_all(fs);
	heat_destroy(fs);
	for (int i = 0; i < fs->nfiles; i++) {
		if (fs->files[i])
			pthread_mutex_destroy(&fs->files[i]->pos_lock);
		free(fs->files[i]);
	}
	free(fs->files);
	shared_close(&fs->sh);
	log_close(fs->log);
	volume_close(&fs->vol);
	pthread_rwlock_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->log_lock);
	pthread_mutex_destroy(&fs->pieces.lock);
	pthread_mutex_destroy(&fs->fd_lock);
	pthread_mutex_destroy(&fs->digest_lock);
	pthread_mutex_destroy(&fs->tier_lock);
	pthread_mutex_destroy(&fs->dstate_lock);
	pthread_cond_destroy(&fs->dstate_cond);
	free(fs);
}

/* Damage a mount works around (a superblock copy, a read-only mount
 * short of damaged log records) is said on stderr and kept as the last
 * error. */
static void warn(char *msg)
{
	if (!msg[0])
		return;
	fprintf(stderr, "cairn: warning: %s\n", msg);
	fs_set_error("%s", msg);
	msg[0] = 0;
}

static int open_parts(struct cairn_fs *fs, const char *dir, char *err, size_t el)
{
	int rc = volume_open(&fs->vol, dir, media_of(fs->opts.media, 0), !fs->read_only, err, el);
	if (rc)
		return rc;
	if (fs->opts.recorder)
		for (int p = 0; p < manifest_parts(&fs->vol.mf); p++)
			if (fs->vol.part[p])
				media_set_recorder(fs->vol.part[p], fs->opts.recorder, p);
	rc = log_open(&fs->log, fs->vol.part[PART_LOG], fs->vol.mf.uuid, err, el);
	if (!rc) {
		warn(err);
		fs->writes_beside = log_fills_later(fs->log);
		rc = shared_open(&fs->sh, fs->vol.part[PART_FAST], fs->vol.part + PART_TIER1,
		                 fs->vol.mf.ntiers, fs->vol.mf.uuid, fs->read_only, err, el);
	}
	if (!rc) {
		warn(err);
		rc = heat_init(fs);
	}
	return rc;
}

static int recover(struct cairn_fs *fs, char *err, size_t el)
{
	fs->orphan_head = fs->sh.ckpt.orphan_head;
	fs->directories = fs->sh.ckpt.directories;
	/* Client logs first: replaying OP_CWRITE copies advances their
	 * progress. */
	int rc = clients_load(fs, err, el);
	if (rc)
		return rc;
	struct replay rp = {.fs = fs};
	rc = log_recover(fs->log, fs->sh.ckpt.log_head_off, fs->sh.ckpt.log_head_seq, replay_one,
	                 &rp, fs->read_only);
	fs->recovered_until = log_tail_seq(fs->log);
	if (rc && rp.bad_rc) {
		snprintf(err, el,
		         "log part %s: record %llu at offset %llu does not apply to the shared "
		         "area (%s); a read-only mount shows the volume as it was before it",
		         fs->vol.mf.path[PART_LOG], (unsigned long long)rp.bad_seq,
		         (unsigned long long)rp.bad_off, strerror(-rp.bad_rc));
		return -EUCLEAN;
	}
	struct log_damage dmg;
	if (log_damage(fs->log, &dmg)) {
		log_damage_describe(fs->log, err, el);
		size_t n = strlen(err);
		snprintf(err + n, el - n, "%s",
		         fs->read_only ? ": mounted read-only as it was before that record"
		                       : ": not mounted read-write (a read-only mount shows the "
		                         "volume as it was before that record; `cairn fsck "
		                         "--repair` drops them)");
		if (!fs->read_only)
			return -EUCLEAN;
		warn(err);
	}
	if (rp.ended) {
		snprintf(err, el,
		         "log part %s: record %llu at offset %llu does not apply to the shared "
		         "area (%s): %s",
		         fs->vol.mf.path[PART_LOG], (unsigned long long)rp.bad_seq,
		         (unsigned long long)rp.bad_off, strerror(-rp.bad_rc),
		         fs->read_only ? "the volume is shown as it was before it"
		                       : "its call had failed with EIO, so it is dropped");
		warn(err);
	}
	if (rc) {
		snprintf(err, el, "log part %s: recovery failed: %s", fs->vol.mf.path[PART_LOG],
		         strerror(-rc));
		return rc;
	}
	/* Then what the clients wrote and the volume's log has no copy of:
	 * before the orphans go, since a client may have written into one. */
	rc = clients_recover(fs, err, el);
	if (rc || fs->read_only) {
		clients_forget_recovered(fs, 0);
		return rc;
	}
	/* Nothing is open yet: unlinked inodes that were open at the crash go. */
	rc = orphans_release_all(fs);
	/* Digest everything replayed, so the volume starts from a clean log. */
	if (!rc)
		rc = fs_checkpoint(fs, 1);
	clients_forget_recovered(fs, rc == 0);
	char failure[512];
	if (rc == -EIO && fs_failure(fs, failure, sizeof(failure)))
		snprintf(err, el, "cannot digest the recovered log: %s", failure);
	else if (rc)
		snprintf(err, el, "fast part %s: cannot digest the recovered log: %s",
		         fs->vol.mf.path[PART_FAST], strerror(-rc));
	return rc;
}

/* Checks the medium a mount is given: a known media kind. */
static int check_mount_media(const struct cairn_mount_opts *o, char *err, size_t el)
{
	if ((unsigned)o->media > CAIRN_MEDIA_EMUL) {
		snprintf(err, el, "media %d: not a media kind (pmem, file or emul)", (int)o->media);
		return -EINVAL;
	}
	return 0;
}

/* The watermarks and promotion of this mount: its own options, else what
 * `cairn tune` stored in the manifest, else the defaults (80% and 60%,
 * promotion on); then checked.  Promotion stored off has no mount option
 * to turn it on: `cairn tune --promote` does. */
static int settle_tuning(struct cairn_mount_opts *o, const struct manifest_tuning *t, char *err,
                         size_t el)
{
	/* A pair: a mount that gives one watermark gets the other's default,
	 * never half of the stored pair, which it was not checked against. */
	int stored = !o->high_watermark && !o->low_watermark;
	if (!o->high_watermark)
		o->high_watermark = stored && t->high_watermark ? t->high_watermark : 80;
	if (!o->low_watermark)
		o->low_watermark = stored && t->low_watermark ? t->low_watermark : 60;
	if (t->promotion == TUNE_OFF)
		o->no_promotion = 1;
	return tuning_check(o->high_watermark, o->low_watermark, err, el);
}

cairn_fs *cairn_mount(const char *volume_dir, const struct cairn_mount_opts *opts)
{
	last_error[0] = 0;
	if (!volume_dir) {
		errno = EINVAL;
		return NULL;
	}
	struct cairn_fs *fs = calloc(1, sizeof(*fs));
	if (!fs) {
		errno = ENOMEM;
		return NULL;
	}
	if (opts)
		fs->opts = *opts;
	fs->read_only = fs->opts.read_only;
	init_locks(fs);
	char err[1024] = "";
	/* A medium failure during recovery is said by the refusal itself. */
	fs->failure_said = 1;
	int rc = check_mount_media(&fs->opts, err, sizeof(err));
	if (!rc)
		rc = open_parts(fs, volume_dir, err, sizeof(err));
	if (!rc)
		rc = settle_tuning(&fs->opts, &fs->vol.mf.tuning, err, sizeof(err));
	if (!rc)
		rc = recover(fs, err, sizeof(err));
	if (!rc)
		rc = tiers_settle(fs, err, sizeof(err));
	fs->failure_said = 0;
	if (!rc)
		rc = digest_start(fs);
	if (rc) {
		fs_set_error("%s", err[0] ? err : strerror(-rc));
		digest_stop(fs);
		destroy_fs(fs);
		errno = rc == -EUCLEAN ? EUCLEAN : -rc;
		return NULL;
	}
	return fs;
}

cairn_fs *cairn_attach(const char *path)
{
	fs_set_error("%s", "");
	if (!path) {
		fs_set_error("no path given");
		errno = EFAULT;
		return NULL;
	}
	cairn_fs *fs = calloc(1, sizeof(*fs));
	if (!fs) {
		errno = ENOMEM;
		return NULL;
	}
	fs->client = client_attach(path, last_error, sizeof(last_error));
	if (!fs->client) {
		int e = errno;
		free(fs);
		errno = e;
		return NULL;
	}
	return fs;
}

int cairn_unmount(cairn_fs *fs)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (!fs)
		return fail(-EINVAL);
	if (fs->client) {
		client_detach(fs->client);
		free(fs);
		return 0;
	}
	int had_digest_thread = fs->digest_thread_running;
	digest_stop(fs);
	int rc = 0;
	char failure[512];
	if (!fs->read_only && !fs->failed) {
		/* The locks in the order the volume used: the digest thread's
		 * (its mutex, then the volume lock), or that of writers that
		 * checkpoint inline under the volume lock. */
		if (had_digest_thread) {
			rc = fs_checkpoint(fs, 0);
		} else {
			fs_lock_exclusive(fs);
			rc = fs_checkpoint(fs, 1);
			pthread_rwlock_unlock(&fs->lock);
		}
	} else if (fs->failed && fs_failure(fs, failure, sizeof(failure))) {
		rc = -EIO; /* a medium stopped the volume: its log is not digested */
	}
	if (!rc && fs->read_only == 0)
		rc = log_commit_all(fs->log);
	/* What failed, by name: the last digest's error is only an errno. */
	if (rc == -EIO && volume_failure(&fs->vol, failure, sizeof(failure)))
		fs_set_error("%s", failure);
	destroy_fs(fs);
	return rc ? fail(rc) : 0;
}

/* ---- whole-volume calls -------------------------------------------------- */

int cairn_sync(cairn_fs *fs)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_volume_call(fs->client, CTL_SYNC);
	if (!fs)
		return fail(-EINVAL);
	int rc = log_commit_all(fs->log);
	return rc ? fail(rc) : 0;
}

/* Runs a whole-volume step (a checkpoint, a migration pass) for the API.
 * Lock order is the digest mutex, then the volume lock.  Without a digest
 * thread, writers checkpoint inline while holding the volume lock; taking
 * it first here keeps the same order. */
static int whole_volume(cairn_fs *fs, int (*step)(struct cairn_fs *fs, int locked))
{
	if (!fs)
		return fail(-EINVAL);
	if (fs->read_only)
		return fail(-EROFS);
	int rc;
	if (fs->digest_thread_running) {
		rc = step(fs, 0);
	} else {
		fs_lock_exclusive(fs);
		rc = step(fs, 1);
		pthread_rwlock_unlock(&fs->lock);
	}
	char failure[512];
	if (rc == -EIO && volume_failure(&fs->vol, failure, sizeof(failure)))
		fs_set_error("%s", failure);
	return rc ? fail(rc) : 0;
}

int cairn_digest(cairn_fs *fs)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_volume_call(fs->client, CTL_DIGEST);
	return whole_volume(fs, fs_checkpoint);
}

int cairn_migrate(cairn_fs *fs)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_volume_call(fs->client, CTL_MIGRATE);
	return whole_volume(fs, migrate_run);
}

int cairn_statvfs(cairn_fs *fs, const char *path, struct statvfs *sv)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_statvfs(fs->client, path, sv);
	if (!fs)
		return fail(-EINVAL);
	if (!sv || !path)
		return fail(-EFAULT);
	pthread_rwlock_rdlock(&fs->lock);
	struct lookup lk;
	int rc = path_lookup(fs, path, LOOKUP_FOLLOW, &lk);
	if (!rc) {
		memset(sv, 0, sizeof(*sv));
		const struct fs_super *sb = &fs->sh.sb;
		/* Quarantined blocks are free as soon as the next checkpoint is
		 * durable, and a writer short of space waits for one. */
		uint64_t bfree = 0, blocks = 0, quarantined = 0;
		for (unsigned t = 0; t < fs->sh.ntiers; t++) {
			bfree += shared_tier_free(&fs->sh, t);
			quarantined +=
			    shared_tier_live(&fs->sh, t) ? alloc_quarantined(fs->sh.tier[t].a) : 0;
			blocks += shared_tier_blocks(&fs->sh, t);
		}
		pthread_mutex_lock(&fs->log_lock); /* writes beside each other */
		uint64_t reserved = fs->reserved_blocks;
		pthread_mutex_unlock(&fs->log_lock);
		bfree = bfree + quarantined > reserved ? bfree + quarantined - reserved : 0;
		sv->f_bsize = sv->f_frsize = FS_BLOCK_SIZE;
		sv->f_blocks = blocks;
		/* Free counts the metadata reserve, as ext4's counts its
		 * reserved blocks; available is what a write can still take. */
		sv->f_bfree = bfree;
		sv->f_bavail = space_available(fs) + quarantined;
		if (sv->f_bavail > sv->f_bfree)
			sv->f_bavail = sv->f_bfree;
		sv->f_files = sb->inode_count - 1; /* inode 0 is never used */
		sv->f_ffree = sv->f_favail = alloc_free_count(fs->sh.ialloc);
		memcpy(&sv->f_fsid, sb->uuid, sizeof(sv->f_fsid));
		sv->f_namemax = 255;
		sv->f_flag = fs->read_only ? ST_RDONLY : 0;
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc ? fail(rc) : 0;
}

static int count_extent(void *arg, const struct extent *e)
{
	uint64_t *per_tier = arg;
	unsigned t = FS_PBLK_TIER(e->pblk);
	if (t <= FS_MAX_TIERS)
		per_tier[t]++;
	return 0;
}

struct extent_count {
	struct cairn_fs *fs;
	uint64_t *per_tier;
};

static int count_file_extents(void *arg, uint64_t ino, const struct fs_inode *i)
{
	(void)ino;
	struct extent_count *c = arg;
	extent_walk(&c->fs->sh.fx, i, 0, count_extent, c->per_tier);
	return 0;
}

/* Extents per tier: a walk of every file's map (cairn stat is rare). */
static void count_extents(struct cairn_fs *fs, uint64_t *per_tier)
{
	struct extent_count c = {fs, per_tier};
	for_each_data_file(fs, count_file_extents, &c);
}

static void fill_tier_info(struct cairn_fs *fs, struct cairn_info *out)
{
	uint64_t extents[FS_MAX_TIERS + 1] = {0};
	count_extents(fs, extents);
	out->tier_count = fs->sh.ntiers;
	for (unsigned t = 0; t < fs->sh.ntiers; t++) {
		struct cairn_tier_info *ti = &out->tiers[t];
		snprintf(ti->name, sizeof(ti->name), "%s", fs->sh.tier[t].name);
		ti->blocks = shared_tier_blocks(&fs->sh, t);
		ti->free_blocks =
		    shared_tier_free(&fs->sh, t) +
		    (shared_tier_live(&fs->sh, t) ? alloc_quarantined(fs->sh.tier[t].a) : 0);
		ti->extents = extents[t];
		ti->in_down = fs->stats.tier_in_down[t];
		ti->in_up = fs->stats.tier_in_up[t];
		ti->out = fs->stats.tier_out[t];
	}
	out->high_watermark = fs_opt_get(&fs->opts.high_watermark);
	out->low_watermark = fs_opt_get(&fs->opts.low_watermark);
	out->promotion = !fs_opt_get(&fs->opts.no_promotion);
	out->migrations = fs->stats.migrations;
	out->migrate_ns = fs->stats.migrate_ns;
	out->data_errors = __atomic_load_n(&fs->stats.data_errors, __ATOMIC_RELAXED);
}

int cairn_info(cairn_fs *fs, struct cairn_info *out)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_info(fs->client, out);
	if (!fs)
		return fail(-EINVAL);
	if (!out)
		return fail(-EFAULT);
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&fs->lock);
	/* The log's tail and the counts below move under it too while the
	 * shared lock is held (files.c, "Writes beside each other"). */
	pthread_mutex_lock(&fs->log_lock);
	const struct fs_super *sb = &fs->sh.sb;
	out->block_size = FS_BLOCK_SIZE;
	out->log_capacity = log_capacity(fs->log);
	out->log_used = log_used(fs->log);
	out->undigested_records = log_tail_seq(fs->log) - log_head_seq(fs->log);
	out->fast_blocks = sb->total_blocks - sb->data_start;
	out->fast_free_blocks = alloc_free_count(fs->sh.balloc) + alloc_quarantined(fs->sh.balloc);
	out->reserved_blocks = fs->reserved_blocks;
	out->inodes = sb->inode_count - 1;
	out->directories = fs->directories;
	out->free_inodes = alloc_free_count(fs->sh.ialloc);
	out->checkpoints = fs->stats.checkpoints;
	out->ops_logged = fs->stats.ops_logged;
	out->ops_digested = shared_ops_digested(&fs->sh);
	out->log_waits = fs->stats.log_waits;
	out->client_records = fs->stats.client_records;
	pthread_mutex_unlock(&fs->log_lock);
	out->client_logs = clients_active(fs);
	out->batch_ms = fs_opt_get(&fs->opts.batch_ms);
	static const char *names[] = {"?", "pmem", "file", "emul"};
	enum media_kind k = media_kind(fs->vol.part[PART_LOG]);
	snprintf(out->media, sizeof(out->media), "%s", names[k <= 3 ? k : 0]);
	fill_tier_info(fs, out);
	pthread_rwlock_unlock(&fs->lock);
	return 0;
}
