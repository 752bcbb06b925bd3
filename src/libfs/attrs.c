/*
 * attrs.c - the calls that change attributes: chmod, chown, utimens.
 *
 * Owns: the SETATTR record's construction.
 * May call: path, op_begin/op_log_apply/op_finish.
 */
#include <errno.h>
#include <string.h>

#include "libfs/fs_internal.h"
#include "libfs/oprec.h"

/* Linux drops set-user-ID (and set-group-ID when group-executable) of a
 * non-directory whose owner changes. */
static void kill_suid(struct cairn_fs *fs, uint64_t ino, struct op_setattr *p)
{
	struct stat st;
	if (fill_stat(fs, ino, &st) || S_ISDIR(st.st_mode))
		return;
	uint32_t mode = st.st_mode & 07777;
	uint32_t kill = S_ISUID | ((mode & S_IXGRP) ? S_ISGID : 0);
	if (mode & kill) {
		p->valid |= SETATTR_MODE;
		p->mode = mode & ~kill;
	}
}

/* Appends the SETATTR record under the lock; ino = 0 resolves path. */
static int setattr_locked(struct cairn_fs *fs, uint64_t ino, const char *path, struct op_setattr *p,
                          uint64_t *seq)
{
	int attempt = 0, rc;
	while ((rc = op_begin(fs, sizeof(*p), 0, SPACE_NONE, &attempt)) == -EAGAIN)
		;
	if (rc)
		return rc;
	if (!ino) {
		struct lookup lk;
		rc = path_lookup(fs, path, LOOKUP_FOLLOW, &lk);
		if (rc)
			return rc;
		ino = lk.ino;
	} else if (!inode_in_use(&fs->sh, ino)) {
		return -ENOENT;
	}
	if (p->valid == 0)
		return 0; /* nothing to change, not even ctime */
	if (p->valid & (SETATTR_UID | SETATTR_GID))
		kill_suid(fs, ino, p);
	p->ino = ino;
	/* A caller that set a time to "now" gives ctime the same now, as
	 * Linux does (touch left ctime a few microseconds after mtime). */
	if (!p->ctime_ns)
		p->ctime_ns = now_ns();
	struct iovec iov = {p, sizeof(*p)};
	return op_log_apply(fs, OP_SETATTR, NULL, &iov, 1, seq);
}

static int setattr_any(struct cairn_fs *fs, uint64_t ino, const char *path, struct op_setattr *p)
{
	if (!fs)
		return -EINVAL;
	uint64_t seq = 0;
	fs_lock_exclusive(fs);
	int rc = setattr_locked(fs, ino, path, p, &seq);
	pthread_rwlock_unlock(&fs->lock);
	if (!rc && seq)
		rc = op_finish(fs, seq);
	return rc;
}

int setattr_ino(struct cairn_fs *fs, uint64_t ino, struct op_setattr *p)
{
	return setattr_any(fs, ino, NULL, p);
}

static int setattr_path(cairn_fs *fs, const char *path, struct op_setattr *p)
{
	int rc = setattr_any(fs, 0, path, p);
	return rc ? fail(rc) : 0;
}

int cairn_chmod(cairn_fs *fs, const char *path, mode_t mode)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_CHMOD, path, NULL, mode, 0);
	struct op_setattr p;
	memset(&p, 0, sizeof(p));
	p.valid = SETATTR_MODE;
	p.mode = mode & 07777;
	return setattr_path(fs, path, &p);
}

int cairn_chown(cairn_fs *fs, const char *path, uid_t uid, gid_t gid)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_CHOWN, path, NULL,
		                   uid == (uid_t)-1 ? -1 : (int64_t)uid,
		                   gid == (gid_t)-1 ? -1 : (int64_t)gid);
	struct op_setattr p;
	memset(&p, 0, sizeof(p));
	if (uid != (uid_t)-1) {
		p.valid |= SETATTR_UID;
		p.uid = uid;
	}
	if (gid != (gid_t)-1) {
		p.valid |= SETATTR_GID;
		p.gid = gid;
	}
	return setattr_path(fs, path, &p);
}

static int valid_time(const struct timespec *t)
{
	return t->tv_nsec == UTIME_NOW || t->tv_nsec == UTIME_OMIT ||
	       (t->tv_nsec >= 0 && t->tv_nsec < 1000000000);
}

int cairn_utimens(cairn_fs *fs, const char *path, const struct timespec times[2])
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_utimens(fs->client, path, times);
	struct op_setattr p;
	memset(&p, 0, sizeof(p));
	int64_t now = now_ns();
	struct timespec both_now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	if (!times)
		times = both_now;
	if (!valid_time(&times[0]) || !valid_time(&times[1]))
		return fail(-EINVAL);
	const uint32_t bit[2] = {SETATTR_ATIME, SETATTR_MTIME};
	int64_t *field[2] = {&p.atime_ns, &p.mtime_ns};
	for (int k = 0; k < 2; k++) {
		if (times[k].tv_nsec == UTIME_OMIT)
			continue;
		p.valid |= bit[k];
		*field[k] = times[k].tv_nsec == UTIME_NOW ? now : ts_to_ns(&times[k]);
	}
	p.ctime_ns = now;
	return setattr_path(fs, path, &p);
}
