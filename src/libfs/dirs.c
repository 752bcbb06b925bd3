/*
 * dirs.c - reading directories: opendir, readdir, closedir.
 *
 * Owns: struct cairn_dir (a position and a small buffer of entries).
 * May call: path, dir (dir_walk), shared (inodes).
 *
 * Entries are fetched in batches under the shared lock; the position is
 * the directory tree's cookie, which stays valid while other entries are
 * added and removed, so an entry present throughout is returned once.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/dir.h"
#include "libfs/fs_internal.h"

#define BATCH 64

struct cairn_dir {
	cairn_fs *fs;
	uint64_t ino;    /* or, for an attached handle, the daemon's handle */
	uint64_t cookie; /* 0: ".", 1: "..", then the tree's cookies (>= 3) */
	int done;
	int count, next;
	struct cairn_dirent ent[BATCH];
	uint64_t after[BATCH]; /* cookie that resumes after ent[i] */
};

cairn_dir *cairn_opendir(cairn_fs *fs, const char *path)
{
	if (fs_inherited(fs)) {
		errno = EIO;
		return NULL;
	}
	if (!fs) {
		errno = EINVAL;
		return NULL;
	}
	struct lookup lk;
	if (fs->client) {
		int h = client_opendir(fs->client, path);
		if (h < 0)
			return NULL;
		lk.ino = (uint64_t)h;
	} else {
		pthread_rwlock_rdlock(&fs->lock);
		int rc = path_lookup(fs, path, LOOKUP_FOLLOW, &lk);
		if (!rc && lk.type != DT_DIR)
			rc = -ENOTDIR;
		pthread_rwlock_unlock(&fs->lock);
		if (rc) {
			errno = -rc;
			return NULL;
		}
	}
	cairn_dir *d = calloc(1, sizeof(*d));
	if (!d) {
		if (fs->client)
			client_closedir(fs->client, (int)lk.ino);
		errno = ENOMEM;
		return NULL;
	}
	d->fs = fs;
	d->ino = lk.ino;
	return d;
}

static void put_entry(cairn_dir *d, const char *name, size_t len, uint64_t ino, uint8_t type,
                      uint64_t after)
{
	struct cairn_dirent *e = &d->ent[d->count];
	e->d_ino = ino;
	e->d_type = type;
	memcpy(e->d_name, name, len);
	e->d_name[len] = 0;
	d->after[d->count++] = after;
}

static int collect(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
                   uint64_t next)
{
	cairn_dir *d = arg;
	put_entry(d, name, namelen, ino, type, next);
	return d->count == BATCH;
}

/* An attached handle's batch, from the daemon. */
static int refill_client(cairn_dir *d)
{
	struct ctl_dirent e[CTL_DIR_BATCH];
	int n = client_readdir(d->fs->client, (int)d->ino, d->cookie, e);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n && i < BATCH; i++)
		put_entry(d, e[i].name, e[i].namelen, e[i].ino, e[i].type, e[i].next);
	d->done = n == 0;
	return 0;
}

/* Fills the buffer with the entries after d->cookie. */
static int refill(cairn_dir *d)
{
	d->count = d->next = 0;
	struct cairn_fs *fs = d->fs;
	if (fs->client)
		return refill_client(d);
	pthread_rwlock_rdlock(&fs->lock);
	struct iref r;
	int rc = inode_get(&fs->sh, d->ino, &r);
	if (!rc && !S_ISDIR(r.i->mode)) {
		inode_put(&fs->sh, &r);
		rc = -ENOENT; /* removed while open: nothing more to read */
	}
	if (!rc) {
		if (d->cookie == 0)
			put_entry(d, ".", 1, d->ino, DT_DIR, 1);
		if (d->cookie <= 1)
			put_entry(d, "..", 2, r.i->parent ? r.i->parent : d->ino, DT_DIR, 2);
		rc = dir_walk(&fs->sh.fx, r.i, d->cookie <= 2 ? 0 : d->cookie, collect, d);
		if (rc > 0)
			rc = 0;
		else if (rc == 0)
			d->done = 1;
		inode_put(&fs->sh, &r);
	}
	pthread_rwlock_unlock(&fs->lock);
	if (rc == -ENOENT) {
		d->done = 1;
		rc = 0;
	}
	return rc;
}

struct cairn_dirent *cairn_readdir(cairn_dir *d)
{
	if (d && fs_inherited(d->fs)) {
		errno = EIO;
		return NULL;
	}
	if (!d) {
		errno = EBADF;
		return NULL;
	}
	if (d->next == d->count) {
		if (d->done)
			return NULL;
		int rc = refill(d);
		if (rc) {
			errno = -rc;
			return NULL;
		}
		if (d->count == 0)
			return NULL;
	}
	d->cookie = d->after[d->next];
	return &d->ent[d->next++];
}

int cairn_closedir(cairn_dir *d)
{
	if (d && fs_inherited(d->fs))
		return fail(-EIO);
	if (!d)
		return fail(-EBADF);
	int rc = d->fs->client ? client_closedir(d->fs->client, (int)d->ino) : 0;
	free(d);
	return rc;
}
