/*
 * icalls.c - the calls by inode number (see icalls.h): the same
 * operations as the native API, entered by (directory inode, name).
 *
 * Owns: nothing; it translates and delegates.
 * May call: names, files, attrs, dirs, path (through fs_internal.h).
 */
#include "libfs/icalls.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "fs/dir.h"
#include "libfs/clients.h"
#include "libfs/fs_internal.h"
#include "libfs/oprec.h"

static int stat_ino(cairn_fs *fs, uint64_t ino, struct stat *st)
{
	if (!st)
		return 0;
	pthread_rwlock_rdlock(&fs->lock);
	int rc = fill_stat(fs, ino, st);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int ic_lookup(cairn_fs *fs, uint64_t dir, const char *name, struct stat *st)
{
	pthread_rwlock_rdlock(&fs->lock);
	struct lookup lk;
	int rc = child_lookup(fs, dir, name, 0, &lk);
	if (!rc)
		rc = fill_stat(fs, lk.ino, st);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int ic_getattr(cairn_fs *fs, uint64_t ino, struct stat *st)
{
	return stat_ino(fs, ino, st);
}

static void setattr_from(unsigned valid, const struct stat *in, struct op_setattr *p)
{
	memset(p, 0, sizeof(*p));
	int64_t now = now_ns();
	p->ctime_ns = now;
	if (valid & IC_SET_MODE) {
		p->valid |= SETATTR_MODE;
		p->mode = in->st_mode & 07777;
	}
	if (valid & IC_SET_UID) {
		p->valid |= SETATTR_UID;
		p->uid = in->st_uid;
	}
	if (valid & IC_SET_GID) {
		p->valid |= SETATTR_GID;
		p->gid = in->st_gid;
	}
	if (valid & (IC_SET_ATIME | IC_SET_ATIME_NOW)) {
		p->valid |= SETATTR_ATIME;
		p->atime_ns = (valid & IC_SET_ATIME_NOW) ? now : ts_to_ns(&in->st_atim);
	}
	if (valid & (IC_SET_MTIME | IC_SET_MTIME_NOW)) {
		p->valid |= SETATTR_MTIME;
		p->mtime_ns = (valid & IC_SET_MTIME_NOW) ? now : ts_to_ns(&in->st_mtim);
	}
}

/* A client that holds a directory's grant changes its names without
 * asking: before anyone else changes a name there, or changes what a path
 * leads to or who may search or write a directory, the grant is revoked,
 * and none is given until the change is made (libfs/clients.h). */
int ic_setattr(cairn_fs *fs, uint64_t ino, unsigned valid, const struct stat *in, struct stat *st)
{
	int rc = 0;
	struct stat before;
	int dir_perms = (valid & (IC_SET_MODE | IC_SET_UID | IC_SET_GID)) &&
	                stat_ino(fs, ino, &before) == 0 && S_ISDIR(before.st_mode);
	if (dir_perms)
		clients_change_begin(fs, 0, 1);
	if (valid & IC_SET_SIZE)
		rc = truncate_ino(fs, ino, in->st_size);
	struct op_setattr p;
	setattr_from(valid, in, &p);
	if (valid & IC_SET_CTIME)
		p.valid |= SETATTR_CTIME;
	if (!rc && p.valid)
		rc = setattr_ino(fs, ino, &p);
	if (dir_perms)
		clients_change_end(fs);
	if (!rc)
		rc = stat_ino(fs, ino, st);
	return rc;
}

static int created(cairn_fs *fs, int rc, uint64_t ino, struct stat *st)
{
	return rc ? rc : stat_ino(fs, ino, st);
}

int ic_mknod(cairn_fs *fs, const struct icaller *who, uint64_t dir, const char *name, mode_t mode,
             dev_t rdev, struct stat *st)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	struct target t = {.dir = dir, .name = name};
	uint64_t ino = 0;
	clients_change_begin(fs, dir, 0);
	int rc = names_create(fs, &t, who, mode & (S_IFMT | 07777), rdev, NULL, &ino);
	clients_change_end(fs);
	return created(fs, rc, ino, st);
}

int ic_symlink(cairn_fs *fs, const struct icaller *who, uint64_t dir, const char *name,
               const char *target, struct stat *st)
{
	struct target t = {.dir = dir, .name = name};
	uint64_t ino = 0;
	clients_change_begin(fs, dir, 0);
	int rc = names_create(fs, &t, who, S_IFLNK | 0777, 0, target, &ino);
	clients_change_end(fs);
	return created(fs, rc, ino, st);
}

int ic_link(cairn_fs *fs, uint64_t ino, uint64_t dir, const char *name, struct stat *st)
{
	struct target from = {.ino = ino}, to = {.dir = dir, .name = name};
	clients_change_begin(fs, dir, 0);
	int rc = names_link(fs, &from, &to);
	clients_change_end(fs);
	return created(fs, rc, ino, st);
}

int ic_unlink(cairn_fs *fs, uint64_t dir, const char *name)
{
	/* A symbolic link may be a step of a path a client resolved. */
	struct stat victim;
	int link = clients_dir_grants(fs) && ic_lookup(fs, dir, name, &victim) == 0 &&
	           S_ISLNK(victim.st_mode);
	struct target t = {.dir = dir, .name = name};
	clients_change_begin(fs, dir, link);
	int rc = names_unlink(fs, &t);
	clients_change_end(fs);
	return rc;
}

int ic_rmdir(cairn_fs *fs, uint64_t dir, const char *name)
{
	struct target t = {.dir = dir, .name = name};
	clients_change_begin(fs, dir, 1);
	int rc = names_rmdir(fs, &t);
	clients_change_end(fs);
	return rc;
}

int ic_rename(cairn_fs *fs, uint64_t dir, const char *name, uint64_t newdir, const char *newname,
              unsigned flags)
{
	struct target from = {.dir = dir, .name = name}, to = {.dir = newdir, .name = newname};
	clients_change_begin(fs, dir, 1);
	int rc = names_rename(fs, &from, &to, flags);
	clients_change_end(fs);
	return rc;
}

ssize_t ic_readlink(cairn_fs *fs, uint64_t ino, char *buf, size_t size)
{
	pthread_rwlock_rdlock(&fs->lock);
	struct lookup lk;
	ssize_t n = ino_lookup(fs, ino, &lk);
	if (!n)
		n = lk.type != DT_LNK ? -EINVAL : data_read(fs, ino, buf, size, 0);
	pthread_rwlock_unlock(&fs->lock);
	return n;
}

int ic_open(cairn_fs *fs, uint64_t ino, int flags)
{
	struct target t = {.ino = ino};
	/* Opening by inode never follows or creates: the kernel did the walk. */
	return open_target(fs, &t, NULL, flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW), 0, NULL);
}

int ic_create(cairn_fs *fs, const struct icaller *who, uint64_t dir, const char *name, mode_t mode,
              int flags, int *fd, struct stat *st)
{
	struct target t = {.dir = dir, .name = name};
	uint64_t ino = 0;
	clients_change_begin(fs, dir, 0);
	int rc = open_target(fs, &t, who, flags | O_CREAT, mode, &ino);
	clients_change_end(fs);
	if (rc < 0)
		return rc;
	*fd = rc;
	rc = stat_ino(fs, ino, st);
	if (rc)
		cairn_close(fs, *fd);
	return rc;
}

/* ---- readdir: batches gathered under the lock, handed out without it ---- */

#define IC_BATCH 128

struct ic_entry {
	uint64_t ino, next;
	unsigned char type;
	char name[DIR_NAME_MAX + 1];
};

struct ic_batch {
	struct ic_entry e[IC_BATCH];
	int n;
};

static void batch_add(struct ic_batch *b, const char *name, size_t len, uint64_t ino,
                      unsigned char type, uint64_t next)
{
	struct ic_entry *e = &b->e[b->n++];
	memcpy(e->name, name, len);
	e->name[len] = 0;
	e->ino = ino;
	e->type = type;
	e->next = next;
}

static int batch_collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type,
                         uint64_t next)
{
	struct ic_batch *b = arg;
	batch_add(b, name, len, ino, type, next);
	return b->n == IC_BATCH;
}

/* Fills b with the entries after cookie; *end when the directory is done. */
static int gather(cairn_fs *fs, uint64_t dir, uint64_t cookie, struct ic_batch *b, int *end)
{
	b->n = 0;
	pthread_rwlock_rdlock(&fs->lock);
	struct iref r;
	int rc = inode_get(&fs->sh, dir, &r);
	if (!rc && !S_ISDIR(r.i->mode)) {
		rc = r.i->mode ? -ENOTDIR : -ENOENT;
		inode_put(&fs->sh, &r);
	}
	if (!rc) {
		if (cookie == 0)
			batch_add(b, ".", 1, dir, DT_DIR, 1);
		if (cookie <= 1)
			batch_add(b, "..", 2, r.i->parent ? r.i->parent : dir, DT_DIR, 2);
		rc = dir_walk(&fs->sh.fx, r.i, cookie <= 2 ? 0 : cookie, batch_collect, b);
		*end = rc == 0;
		rc = rc > 0 ? 0 : rc;
		inode_put(&fs->sh, &r);
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int ic_readdir(cairn_fs *fs, uint64_t dir, uint64_t cookie, ic_dir_fn fn, void *arg)
{
	struct ic_batch *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	int end = 0, rc = 0, stop = 0;
	while (!rc && !stop && !end) {
		rc = gather(fs, dir, cookie, b, &end);
		for (int i = 0; !rc && i < b->n && !stop; i++) {
			stop = fn(arg, b->e[i].name, b->e[i].ino, b->e[i].type, b->e[i].next);
			cookie = b->e[i].next;
		}
	}
	free(b);
	return rc;
}

int ic_failure(cairn_fs *fs, char *buf, size_t len)
{
	return fs_failure(fs, buf, len);
}
