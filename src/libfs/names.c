/*
 * names.c - the calls that change names: mkdir, rmdir, unlink, link,
 * symlink, rename, and readlink.
 *
 * Owns: the POSIX checks of each call (which errno, in which order).
 * May call: path, make_node, op_begin/op_log_apply/op_finish, shared.
 *
 * Each call validates, appends one record and applies it under the lock,
 * so a rename or an unlink is one atomic step in the log.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "libfs/fs_internal.h"
#include "libfs/oprec.h"

/* Runs fn(fs, arg, &seq, &attempt) under the lock until it stops asking to
 * retry, then waits for durability.  Returns 0 or -errno. */
typedef int (*change_fn)(struct cairn_fs *fs, const void *arg, uint64_t *seq, int *attempt);

static int run_change(cairn_fs *fs, change_fn fn, const void *arg)
{
	if (!fs)
		return -EINVAL;
	uint64_t seq = 0;
	int attempt = 0, rc;
	fs_lock_exclusive(fs);
	do
		rc = fn(fs, arg, &seq, &attempt);
	while (rc == -EAGAIN);
	pthread_rwlock_unlock(&fs->lock);
	if (!rc && seq)
		rc = op_finish(fs, seq);
	return rc;
}

/* The public calls: -1 and errno. */
static int posix_result(int rc)
{
	return rc ? fail(rc) : 0;
}

/* The native API names files by path; a target with no path would name
 * inode 0.  A NULL path is EFAULT, as the kernel answers, after the EINVAL
 * of a NULL fs.  Returns 0 or -errno. */
static int api_paths(cairn_fs *fs, const char *a, const char *b)
{
	return !fs ? -EINVAL : !a || !b ? -EFAULT : 0;
}

static int is_dot(const struct lookup *lk)
{
	return (lk->namelen == 1 && lk->name[0] == '.') ||
	       (lk->namelen == 2 && lk->name[0] == '.' && lk->name[1] == '.');
}

static uint32_t inode_nlink(struct cairn_fs *fs, uint64_t ino, uint64_t *entries)
{
	struct iref r;
	if (inode_get(&fs->sh, ino, &r))
		return 0;
	uint32_t n = r.i->nlink;
	if (entries)
		*entries = r.i->entries;
	inode_put(&fs->sh, &r);
	return n;
}

/* ---- mkdir, mknod-like creation, symlink --------------------------------- */

struct create_args {
	struct target t;
	const struct icaller *owner;
	uint32_t mode;
	uint64_t rdev;
	const char *target;
	size_t targetlen;
	uint64_t *ino;
};

static int do_create(struct cairn_fs *fs, const void *arg, uint64_t *seq, int *attempt)
{
	const struct create_args *a = arg;
	int rc = op_begin(fs, sizeof(struct op_mknod) + 256 + a->targetlen, a->targetlen ? 1 : 0,
	                  SPACE_NAME, attempt);
	if (rc)
		return rc;
	struct lookup lk;
	rc = target_lookup(fs, &a->t, LOOKUP_PARENT, &lk);
	if (rc)
		return rc;
	if (lk.ino)
		return -EEXIST;
	if (lk.trailing_slash && !S_ISDIR(a->mode))
		return -ENOENT;
	if (S_ISDIR(a->mode) && inode_nlink(fs, lk.parent, NULL) >= UINT32_MAX - 1)
		return -EMLINK;
	return make_node(fs, a->owner, lk.parent, lk.name, lk.namelen, a->mode, a->rdev, a->target,
	                 a->targetlen, a->ino, seq);
}

int names_create(struct cairn_fs *fs, const struct target *t, const struct icaller *owner,
                 uint32_t mode, uint64_t rdev, const char *target, uint64_t *ino)
{
	size_t tlen = 0;
	if (S_ISLNK(mode)) {
		if (!target)
			return -EFAULT;
		tlen = strnlen(target, PATH_MAX);
		if (tlen == 0)
			return -ENOENT;
		if (tlen >= PATH_MAX)
			return -ENAMETOOLONG;
	}
	struct create_args a = {*t, owner, mode, rdev, target, tlen, ino};
	return run_change(fs, do_create, &a);
}

int cairn_mkdir(cairn_fs *fs, const char *path, mode_t mode)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_MKDIR, path, NULL, mode, 0);
	struct target t = {.path = path};
	int rc = api_paths(fs, path, path);
	return posix_result(
	    rc ? rc : names_create(fs, &t, NULL, S_IFDIR | (mode & 07777), 0, NULL, NULL));
}

int cairn_symlink(cairn_fs *fs, const char *target, const char *linkpath)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_SYMLINK, target, linkpath, 0, 0);
	struct target t = {.path = linkpath};
	int rc = api_paths(fs, target, linkpath);
	return posix_result(rc ? rc : names_create(fs, &t, NULL, S_IFLNK | 0777, 0, target, NULL));
}

ssize_t cairn_readlink(cairn_fs *fs, const char *path, char *buf, size_t size)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_readlink(fs->client, path, buf, size);
	int bad = api_paths(fs, path, buf);
	if (bad)
		return fail(bad);
	if (size == 0)
		return fail(-EINVAL);
	pthread_rwlock_rdlock(&fs->lock);
	struct lookup lk;
	ssize_t n = path_lookup(fs, path, 0, &lk);
	if (!n)
		n = lk.type != DT_LNK ? -EINVAL : data_read(fs, lk.ino, buf, size, 0);
	pthread_rwlock_unlock(&fs->lock);
	return n < 0 ? fail((int)n) : n;
}

/* ---- unlink and rmdir ---------------------------------------------------- */

static int log_unlink(struct cairn_fs *fs, const struct lookup *lk, uint64_t *seq)
{
	struct {
		struct op_unlink p;
		char name[256];
	} rec;
	memset(&rec.p, 0, sizeof(rec.p));
	rec.p.parent = lk->parent;
	rec.p.ino = lk->ino;
	rec.p.time_ns = now_ns();
	rec.p.namelen = (uint16_t)lk->namelen;
	rec.p.flags = vnode_is_open(fs, lk->ino) ? OPF_ORPHAN : 0;
	memcpy(rec.name, lk->name, lk->namelen);
	struct iovec iov = {&rec, sizeof(rec.p) + lk->namelen};
	return op_log_apply(fs, OP_UNLINK, NULL, &iov, 1, seq);
}

static int do_unlink(struct cairn_fs *fs, const void *arg, uint64_t *seq, int *attempt)
{
	int rc = op_begin(fs, sizeof(struct op_unlink) + 256, 0, SPACE_NONE, attempt);
	if (rc)
		return rc;
	struct lookup lk;
	rc = target_lookup(fs, arg, 0, &lk);
	if (rc)
		return rc;
	if (lk.type == DT_DIR)
		return -EISDIR;
	return log_unlink(fs, &lk, seq);
}

int names_unlink(struct cairn_fs *fs, const struct target *t)
{
	return run_change(fs, do_unlink, t);
}

int cairn_unlink(cairn_fs *fs, const char *path)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_UNLINK, path, NULL, 0, 0);
	struct target t = {.path = path};
	int rc = api_paths(fs, path, path);
	return posix_result(rc ? rc : names_unlink(fs, &t));
}

static int do_rmdir(struct cairn_fs *fs, const void *arg, uint64_t *seq, int *attempt)
{
	int rc = op_begin(fs, sizeof(struct op_unlink) + 256, 0, SPACE_NONE, attempt);
	if (rc)
		return rc;
	struct lookup lk;
	rc = target_lookup(fs, arg, 0, &lk);
	if (rc)
		return rc;
	if (lk.type != DT_DIR)
		return -ENOTDIR;
	if (lk.ino == FS_ROOT_INO)
		return -EBUSY;
	if (lk.namelen == 1 && lk.name[0] == '.')
		return -EINVAL;
	if (is_dot(&lk))
		return -ENOTEMPTY;
	uint64_t entries = 0;
	inode_nlink(fs, lk.ino, &entries);
	if (entries)
		return -ENOTEMPTY;
	return log_unlink(fs, &lk, seq);
}

int names_rmdir(struct cairn_fs *fs, const struct target *t)
{
	return run_change(fs, do_rmdir, t);
}

int cairn_rmdir(cairn_fs *fs, const char *path)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_RMDIR, path, NULL, 0, 0);
	struct target t = {.path = path};
	int rc = api_paths(fs, path, path);
	return posix_result(rc ? rc : names_rmdir(fs, &t));
}

/* ---- link ---------------------------------------------------------------- */

struct two_targets {
	struct target from, to;
	unsigned flags;
};

static int do_link(struct cairn_fs *fs, const void *arg, uint64_t *seq, int *attempt)
{
	const struct two_targets *a = arg;
	int rc = op_begin(fs, sizeof(struct op_link) + 256, 0, SPACE_NAME, attempt);
	if (rc)
		return rc;
	struct lookup from, to;
	rc = target_lookup(fs, &a->from, 0, &from);
	if (rc)
		return rc;
	rc = target_lookup(fs, &a->to, LOOKUP_PARENT, &to);
	if (rc)
		return rc;
	if (to.ino)
		return -EEXIST;
	if (to.trailing_slash || !dir_is_linked(fs, to.parent))
		return -ENOENT;
	/* After the new name's checks, as Linux orders them: a directory
	 * linked onto an existing name is EEXIST. */
	if (from.type == DT_DIR)
		return -EPERM;
	if (inode_nlink(fs, from.ino, NULL) >= UINT32_MAX - 1)
		return -EMLINK;
	struct {
		struct op_link p;
		char name[256];
	} rec;
	memset(&rec.p, 0, sizeof(rec.p));
	rec.p.ino = from.ino;
	rec.p.parent = to.parent;
	rec.p.time_ns = now_ns();
	rec.p.namelen = (uint16_t)to.namelen;
	memcpy(rec.name, to.name, to.namelen);
	struct iovec iov = {&rec, sizeof(rec.p) + to.namelen};
	return op_log_apply(fs, OP_LINK, NULL, &iov, 1, seq);
}

int names_link(struct cairn_fs *fs, const struct target *from, const struct target *to)
{
	struct two_targets a = {*from, *to, 0};
	return run_change(fs, do_link, &a);
}

int cairn_link(cairn_fs *fs, const char *from, const char *to)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_LINK, from, to, 0, 0);
	struct target f = {.path = from}, t = {.path = to};
	int rc = api_paths(fs, from, to);
	return posix_result(rc ? rc : names_link(fs, &f, &t));
}

/* ---- rename -------------------------------------------------------------- */

/* Whether dir `anc` is dir `ino` or one of its ancestors. */
static int is_ancestor(struct cairn_fs *fs, uint64_t anc, uint64_t ino)
{
	for (int depth = 0; depth < 100000; depth++) {
		if (ino == anc)
			return 1;
		if (ino == FS_ROOT_INO)
			return 0;
		struct iref r;
		if (inode_get(&fs->sh, ino, &r))
			return 0;
		uint64_t parent = r.i->parent;
		inode_put(&fs->sh, &r);
		if (!parent || parent == ino)
			return 0;
		ino = parent;
	}
	return 1;
}

static int check_rename(struct cairn_fs *fs, const struct lookup *from, const struct lookup *to,
                        unsigned flags)
{
	if (from->ino == FS_ROOT_INO || is_dot(from))
		return from->ino == FS_ROOT_INO ? -EBUSY : -EINVAL;
	if (to->ino == FS_ROOT_INO || is_dot(to))
		return to->ino == FS_ROOT_INO ? -EBUSY : -EINVAL;
	/* In Linux's order: an existing target under NOREPLACE, then a
	 * source that is an ancestor of the target (EINVAL), then a target
	 * that is an ancestor of the source (ENOTEMPTY, whatever the types),
	 * then the types. */
	if (to->ino && (flags & CAIRN_RENAME_NOREPLACE))
		return -EEXIST;
	if (from->type == DT_DIR && is_ancestor(fs, from->ino, to->parent))
		return -EINVAL;
	if (!to->ino)
		return (to->trailing_slash && from->type != DT_DIR) ? -ENOTDIR : 0;
	if (to->type == DT_DIR && is_ancestor(fs, to->ino, from->parent))
		return -ENOTEMPTY;
	if (from->type == DT_DIR && to->type != DT_DIR)
		return -ENOTDIR;
	if (from->type != DT_DIR && to->type == DT_DIR)
		return -EISDIR;
	if (to->type == DT_DIR) {
		uint64_t entries = 0;
		inode_nlink(fs, to->ino, &entries);
		if (entries)
			return -ENOTEMPTY;
	}
	return 0;
}

static int do_rename(struct cairn_fs *fs, const void *arg, uint64_t *seq, int *attempt)
{
	const struct two_targets *a = arg;
	int rc = op_begin(fs, sizeof(struct op_rename) + 512, 0, SPACE_FREES, attempt);
	if (rc)
		return rc;
	/* Both parents first, then the source's entry, as Linux resolves
	 * them: a bad new path outranks a missing source. */
	struct lookup from, to;
	rc = target_lookup(fs, &a->from, LOOKUP_PARENT, &from);
	if (!rc)
		rc = target_lookup(fs, &a->to, LOOKUP_PARENT, &to);
	if (!rc && !from.ino)
		rc = -ENOENT;
	if (rc)
		return rc;
	if (to.ino && to.ino == from.ino)
		return (a->flags & CAIRN_RENAME_NOREPLACE) ? -EEXIST : 0; /* same file: no-op */
	rc = check_rename(fs, &from, &to, a->flags);
	if (!rc && !dir_is_linked(fs, to.parent))
		rc = -ENOENT;
	if (rc)
		return rc;
	struct {
		struct op_rename p;
		char names[512];
	} rec;
	memset(&rec.p, 0, sizeof(rec.p));
	rec.p.oldparent = from.parent;
	rec.p.newparent = to.parent;
	rec.p.ino = from.ino;
	rec.p.victim = to.ino;
	rec.p.time_ns = now_ns();
	rec.p.oldlen = (uint16_t)from.namelen;
	rec.p.newlen = (uint16_t)to.namelen;
	rec.p.flags = a->flags;
	if (to.ino && vnode_is_open(fs, to.ino))
		rec.p.flags |= OP_RENAME_VICTIM_ORPHAN;
	memcpy(rec.names, from.name, from.namelen);
	memcpy(rec.names + from.namelen, to.name, to.namelen);
	struct iovec iov = {&rec, sizeof(rec.p) + from.namelen + to.namelen};
	return op_log_apply(fs, OP_RENAME, NULL, &iov, 1, seq);
}

int names_rename(struct cairn_fs *fs, const struct target *from, const struct target *to,
                 unsigned flags)
{
	if (flags & ~CAIRN_RENAME_NOREPLACE)
		return -EINVAL;
	struct two_targets a = {*from, *to, flags};
	return run_change(fs, do_rename, &a);
}

int cairn_rename(cairn_fs *fs, const char *from, const char *to, unsigned flags)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_RENAME, from, to, flags, 0);
	struct target f = {.path = from}, t = {.path = to};
	int rc = api_paths(fs, from, to);
	return posix_result(rc ? rc : names_rename(fs, &f, &t, flags));
}
