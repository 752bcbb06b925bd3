/*
 * mount.c - volume lifetime: mkfs, mount (recovery), unmount, and the
 * calls that act on the whole volume (sync, digest, statvfs).
 *
 * Owns: creating and tearing down struct cairn_fs.
 * May call: volume, log, shared, apply (replay), digest.
 */
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
#include "fs/alloc.h"
#include "libfs/fs_internal.h"
#include "log/log_format.h"

static __thread char last_error[1024];

const char *cairn_last_error(void)
{
	return last_error;
}

static void set_error(const char *fmt, ...)
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

static int make_volume_dir(const char *dir)
{
	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	char path[VOLUME_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, VOLUME_MANIFEST);
	if (access(path, F_OK) == 0)
		return -EEXIST;
	struct stat st;
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return -ENOTDIR;
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

static int absolute(char *out, const char *path)
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

static int plan_manifest(struct manifest *mf, const char *dir, const struct cairn_mkfs_opts *o)
{
	memset(mf, 0, sizeof(*mf));
	mf->format = 1;
	uuid_generate(mf->uuid);
	char us[40];
	uuid_unparse_lower(mf->uuid, us);
	mf->media = media_of(o ? o->media : 0, MEDIA_FILE);
	mf->size[PART_LOG] = o && o->log_size ? o->log_size : 256ull << 20;
	mf->size[PART_FAST] = o && o->fast_size ? o->fast_size : 1ull << 30;
	const char *given[PART_COUNT] = {o ? o->log_path : NULL, o ? o->fast_path : NULL};
	for (int p = 0; p < PART_COUNT; p++) {
		mf->size[p] = mf->size[p] / 4096 * 4096;
		if (given[p]) {
			int rc = absolute(mf->path[p], given[p]);
			if (rc)
				return rc;
		} else {
			default_part_path(mf->path[p], dir, mf->media, us, volume_part_name(p));
		}
	}
	return 0;
}

static int format_parts(struct manifest *mf, const struct cairn_mkfs_opts *o, char *err, size_t el)
{
	struct media *m[PART_COUNT] = {0};
	int rc = 0;
	for (int p = 0; p < PART_COUNT && !rc; p++)
		rc = media_open(&m[p], mf->media, mf->path[p], mf->size[p], MEDIA_CREATE, err, el);
	if (!rc)
		rc = log_format(m[PART_LOG], mf->uuid, err, el);
	if (!rc)
		rc = shared_format(m[PART_FAST], mf->uuid, o ? o->inodes : 0, LOG_RING_START,
				   (uint64_t)now_ns(), err, el);
	for (int p = 0; p < PART_COUNT; p++)
		if (m[p])
			media_close(m[p]);
	return rc;
}

int cairn_mkfs(const char *volume_dir, const struct cairn_mkfs_opts *opts)
{
	last_error[0] = 0;
	if (!volume_dir || !*volume_dir)
		return fail(-EINVAL);
	int rc = make_volume_dir(volume_dir);
	if (rc) {
		set_error("%s: %s", volume_dir,
			  rc == -EEXIST ? "a cairn volume already exists here" : strerror(-rc));
		return fail(rc);
	}
	char dir[VOLUME_PATH_MAX];
	if (!realpath(volume_dir, dir)) {
		rc = -errno;
		set_error("%s: %s", volume_dir, strerror(-rc));
		return fail(rc);
	}
	struct manifest mf;
	rc = plan_manifest(&mf, dir, opts);
	char err[1024] = "";
	if (!rc)
		rc = format_parts(&mf, opts, err, sizeof(err));
	/* The manifest comes last: a directory without one is not a volume. */
	if (!rc)
		rc = manifest_write(dir, &mf, err, sizeof(err));
	if (rc) {
		set_error("%s", err[0] ? err : strerror(-rc));
		for (int p = 0; p < PART_COUNT; p++)
			if (mf.path[p][0])
				unlink(mf.path[p]);
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
};

static int replay_one(void *arg, const struct log_rec_hdr *h, const void *payload, uint64_t off)
{
	struct replay *rp = arg;
	int rc = apply_record(rp->fs, h, payload, off + sizeof(*h));
	if (rc) {
		rp->bad_seq = h->seq;
		rp->bad_off = off;
		rp->bad_rc = rc;
		return rc;
	}
	rp->count++;
	return 0;
}

static void init_locks(struct cairn_fs *fs)
{
	pthread_rwlock_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->fd_lock, NULL);
	pthread_mutex_init(&fs->digest_lock, NULL);
	pthread_mutex_init(&fs->dstate_lock, NULL);
	pthread_cond_init(&fs->dstate_cond, NULL);
}

static void destroy_fs(struct cairn_fs *fs)
{
	vnode_destroy_all(fs);
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
	pthread_mutex_destroy(&fs->fd_lock);
	pthread_mutex_destroy(&fs->digest_lock);
	pthread_mutex_destroy(&fs->dstate_lock);
	pthread_cond_destroy(&fs->dstate_cond);
	free(fs);
}

static int open_parts(struct cairn_fs *fs, const char *dir, char *err, size_t el)
{
	int rc = volume_open(&fs->vol, dir, media_of(fs->opts.media, 0), !fs->read_only, err, el);
	if (rc)
		return rc;
	if (fs->opts.recorder) {
		media_set_recorder(fs->vol.part[PART_LOG], fs->opts.recorder, PART_LOG);
		media_set_recorder(fs->vol.part[PART_FAST], fs->opts.recorder, PART_FAST);
	}
	rc = log_open(&fs->log, fs->vol.part[PART_LOG], fs->vol.mf.uuid, err, el);
	if (!rc)
		rc = shared_open(&fs->sh, fs->vol.part[PART_FAST], fs->vol.mf.uuid, fs->read_only,
				 err, el);
	return rc;
}

static int recover(struct cairn_fs *fs, char *err, size_t el)
{
	fs->orphan_head = fs->sh.ckpt.orphan_head;
	fs->directories = fs->sh.ckpt.directories;
	struct replay rp = {.fs = fs};
	int rc = log_recover(fs->log, fs->sh.ckpt.log_head_off, fs->sh.ckpt.log_head_seq, replay_one,
			     &rp, fs->read_only);
	if (rc && rp.bad_rc) {
		snprintf(err, el,
			 "log part %s: record %llu at offset %llu does not apply to the shared area (%s)",
			 fs->vol.mf.path[PART_LOG], (unsigned long long)rp.bad_seq,
			 (unsigned long long)rp.bad_off, strerror(-rp.bad_rc));
		return -EUCLEAN;
	}
	if (rc) {
		snprintf(err, el, "log part %s: recovery failed: %s", fs->vol.mf.path[PART_LOG],
			 strerror(-rc));
		return rc;
	}
	if (fs->read_only)
		return 0;
	/* Nothing is open yet: unlinked inodes that were open at the crash go. */
	rc = orphans_release_all(fs);
	/* Digest everything replayed, so the volume starts from a clean log. */
	if (!rc)
		rc = fs_checkpoint(fs, 1);
	if (rc)
		snprintf(err, el, "fast part %s: cannot digest the recovered log: %s",
			 fs->vol.mf.path[PART_FAST], strerror(-rc));
	return rc;
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
	int rc = open_parts(fs, volume_dir, err, sizeof(err));
	if (!rc)
		rc = recover(fs, err, sizeof(err));
	if (!rc)
		rc = digest_start(fs);
	if (rc) {
		set_error("%s", err[0] ? err : strerror(-rc));
		digest_stop(fs);
		destroy_fs(fs);
		errno = rc == -EUCLEAN ? EUCLEAN : -rc;
		return NULL;
	}
	return fs;
}

int cairn_unmount(cairn_fs *fs)
{
	if (!fs)
		return fail(-EINVAL);
	digest_stop(fs);
	int rc = 0;
	if (!fs->read_only && !fs->failed) {
		pthread_rwlock_wrlock(&fs->lock);
		rc = fs_checkpoint(fs, 1);
		pthread_rwlock_unlock(&fs->lock);
	}
	if (!rc && fs->read_only == 0)
		rc = log_commit_all(fs->log);
	destroy_fs(fs);
	return rc ? fail(rc) : 0;
}

/* ---- whole-volume calls -------------------------------------------------- */

int cairn_sync(cairn_fs *fs)
{
	if (!fs)
		return fail(-EINVAL);
	int rc = log_commit_all(fs->log);
	return rc ? fail(rc) : 0;
}

int cairn_digest(cairn_fs *fs)
{
	if (!fs)
		return fail(-EINVAL);
	if (fs->read_only)
		return fail(-EROFS);
	/* Lock order is the digest mutex, then the volume lock.  Without a
	 * digest thread, writers checkpoint inline while holding the volume
	 * lock; taking it first here keeps the same order. */
	int rc;
	if (fs->digest_thread_running) {
		rc = fs_checkpoint(fs, 0);
	} else {
		pthread_rwlock_wrlock(&fs->lock);
		rc = fs_checkpoint(fs, 1);
		pthread_rwlock_unlock(&fs->lock);
	}
	return rc ? fail(rc) : 0;
}

int cairn_statvfs(cairn_fs *fs, const char *path, struct statvfs *sv)
{
	if (!fs || !sv)
		return fail(-EFAULT);
	pthread_rwlock_rdlock(&fs->lock);
	struct lookup lk;
	int rc = path_lookup(fs, path, LOOKUP_FOLLOW, &lk);
	if (!rc) {
		memset(sv, 0, sizeof(*sv));
		const struct fs_super *sb = &fs->sh.sb;
		/* Quarantined blocks are free as soon as the next checkpoint is
		 * durable, and a writer short of space waits for one. */
		uint64_t bfree = alloc_free_count(fs->sh.balloc) + alloc_quarantined(fs->sh.balloc);
		bfree = bfree > fs->reserved_blocks ? bfree - fs->reserved_blocks : 0;
		sv->f_bsize = sv->f_frsize = FS_BLOCK_SIZE;
		sv->f_blocks = sb->total_blocks - sb->data_start;
		sv->f_bfree = sv->f_bavail = bfree;
		sv->f_files = sb->inode_count - 1; /* inode 0 is never used */
		sv->f_ffree = sv->f_favail = alloc_free_count(fs->sh.ialloc);
		memcpy(&sv->f_fsid, sb->uuid, sizeof(sv->f_fsid));
		sv->f_namemax = 255;
		sv->f_flag = fs->read_only ? ST_RDONLY : 0;
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc ? fail(rc) : 0;
}

int cairn_info(cairn_fs *fs, struct cairn_info *out)
{
	if (!fs || !out)
		return fail(-EFAULT);
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&fs->lock);
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
	out->ops_digested = fs->sh.ckpt.ops_digested;
	out->log_waits = fs->stats.log_waits;
	out->batch_ms = fs->opts.batch_ms;
	static const char *names[] = {"?", "pmem", "file", "emul"};
	enum media_kind k = media_kind(fs->vol.part[PART_LOG]);
	snprintf(out->media, sizeof(out->media), "%s", names[k <= 3 ? k : 0]);
	pthread_rwlock_unlock(&fs->lock);
	return 0;
}
