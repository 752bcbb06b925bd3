/*
 * path.c - path resolution: from "/a/b/c" to the inode and its parent,
 * following symlinks as Linux does (at most 40, ELOOP beyond), with the
 * errors POSIX names: ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP.
 *
 * Owns: nothing persistent.  May call: shared (inodes), dir, data_read
 * (symlink targets).  Caller holds fs->lock (shared is enough).
 *
 * Paths are resolved within the volume: ".." of the root is the root, and
 * an absolute symlink target starts again at the volume's root.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/pathname.h"

#include "fs/dir.h"
#include "libfs/fs_internal.h"

#define MAX_SYMLINKS 40

int dir_lookup_name(struct cairn_fs *fs, uint64_t dir, const char *name, size_t len, uint64_t *ino,
                    uint8_t *type)
{
	struct iref d;
	int rc = inode_get(&fs->sh, dir, &d);
	if (rc)
		return rc;
	if (!S_ISDIR(d.i->mode)) {
		inode_put(&fs->sh, &d);
		return -ENOTDIR;
	}
	if (len == 1 && name[0] == '.') {
		*ino = dir;
		*type = DT_DIR;
	} else if (len == 2 && name[0] == '.' && name[1] == '.') {
		*ino = d.i->parent ? d.i->parent : FS_ROOT_INO;
		*type = DT_DIR;
	} else {
		rc = dir_lookup(&fs->sh.fx, d.i, name, len, ino, type);
	}
	inode_put(&fs->sh, &d);
	return rc;
}

static int read_link(struct cairn_fs *fs, uint64_t ino, char *buf, size_t size, size_t *len)
{
	ssize_t n = data_read(fs, ino, buf, size, 0);
	if (n < 0)
		return (int)n;
	*len = (size_t)n;
	return 0;
}

/* State of one walk: the remaining path lives in buf from pos. */
struct walk {
	char buf[2 * PATH_MAX + 2];
	size_t pos, end;
	uint64_t cur;
	int links;
};

/* Replaces the consumed component by the symlink's target. */
static int splice_link(struct cairn_fs *fs, struct walk *w, uint64_t ino)
{
	char target[PATH_MAX];
	size_t tlen = 0;
	if (++w->links > MAX_SYMLINKS)
		return -ELOOP;
	int rc = read_link(fs, ino, target, sizeof(target), &tlen);
	if (rc)
		return rc;
	if (tlen == 0)
		return -ENOENT;
	rc = path_splice(w->buf, sizeof(w->buf), &w->pos, &w->end, target, tlen);
	if (rc)
		return rc;
	if (target[0] == '/')
		w->cur = FS_ROOT_INO;
	return 0;
}

static uint8_t type_of(struct cairn_fs *fs, uint64_t ino)
{
	struct iref r;
	if (inode_get(&fs->sh, ino, &r))
		return DT_UNKNOWN;
	uint8_t t = (uint8_t)IFTODT(r.i->mode);
	inode_put(&fs->sh, &r);
	return t;
}

/* Takes the next component; returns its length (0 at the end). */
static size_t next_component(struct walk *w, const char **name, int *more)
{
	return path_next_component(w->buf, &w->pos, w->end, name, more);
}

static int check_path(const char *path, size_t *len)
{
	if (!path)
		return -EFAULT;
	*len = strnlen(path, PATH_MAX);
	if (*len >= PATH_MAX)
		return -ENAMETOOLONG;
	if (*len == 0)
		return -ENOENT;
	if (path[0] != '/')
		return -EINVAL; /* paths are absolute within the volume */
	return 0;
}

int path_lookup(struct cairn_fs *fs, const char *path, int flags, struct lookup *out)
{
	size_t plen;
	int rc = check_path(path, &plen);
	if (rc)
		return rc;
	struct walk *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	memcpy(w->buf, path, plen);
	w->pos = 0;
	w->end = plen;
	w->cur = FS_ROOT_INO;
	w->links = 0;
	memset(out, 0, sizeof(*out));
	out->trailing_slash = plen > 1 && path[plen - 1] == '/';
	out->parent = FS_ROOT_INO;
	out->ino = FS_ROOT_INO;
	out->type = DT_DIR;
	out->name[0] = '/';
	out->namelen = 1;
	for (;;) {
		const char *name;
		int more;
		size_t len = next_component(w, &name, &more);
		if (len == 0)
			break; /* "/" or trailing slashes: out describes cur */
		if (len > DIR_NAME_MAX) {
			rc = -ENAMETOOLONG;
			break;
		}
		uint64_t ino;
		uint8_t type;
		rc = dir_lookup_name(fs, w->cur, name, len, &ino, &type);
		if (rc == -ENOENT && !more && (flags & LOOKUP_PARENT)) {
			out->parent = w->cur;
			out->ino = 0;
			memcpy(out->name, name, len);
			out->name[len] = 0;
			out->namelen = len;
			rc = 0;
			break;
		}
		if (rc)
			break;
		if (type == DT_LNK && (more || (flags & LOOKUP_FOLLOW) || out->trailing_slash)) {
			rc = splice_link(fs, w, ino);
			if (rc)
				break;
			continue;
		}
		if (more && type != DT_DIR) {
			rc = -ENOTDIR;
			break;
		}
		out->parent = w->cur;
		out->ino = ino;
		out->type = type == DT_UNKNOWN ? type_of(fs, ino) : type;
		memcpy(out->name, name, len);
		out->name[len] = 0;
		out->namelen = len;
		w->cur = ino;
		if (!more)
			break;
	}
	free(w);
	if (!rc && out->trailing_slash && out->ino && out->type != DT_DIR)
		rc = -ENOTDIR;
	return rc;
}

int child_lookup(struct cairn_fs *fs, uint64_t dir, const char *name, int flags, struct lookup *out)
{
	if (!name)
		return -EFAULT;
	size_t len = strnlen(name, DIR_NAME_MAX + 1);
	if (len == 0 || memchr(name, '/', len))
		return -EINVAL;
	if (len > DIR_NAME_MAX)
		return -ENAMETOOLONG;
	memset(out, 0, sizeof(*out));
	out->parent = dir;
	memcpy(out->name, name, len);
	out->name[len] = 0;
	out->namelen = len;
	int rc = dir_lookup_name(fs, dir, name, len, &out->ino, &out->type);
	if (rc == -ENOENT && (flags & LOOKUP_PARENT)) {
		out->ino = 0;
		return 0;
	}
	if (!rc && out->type == DT_UNKNOWN)
		out->type = type_of(fs, out->ino);
	return rc;
}

int ino_lookup(struct cairn_fs *fs, uint64_t ino, struct lookup *out)
{
	struct iref r;
	int rc = inode_get(&fs->sh, ino, &r);
	if (rc)
		return rc == -EUCLEAN ? -ENOENT : rc;
	uint32_t mode = r.i->mode;
	uint64_t parent = r.i->parent;
	inode_put(&fs->sh, &r);
	if (mode == 0)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->ino = ino;
	out->parent = parent;
	out->type = (uint8_t)IFTODT(mode);
	return 0;
}

int target_lookup(struct cairn_fs *fs, const struct target *t, int flags, struct lookup *out)
{
	if (t->path)
		return path_lookup(fs, t->path, flags, out);
	if (t->name)
		return child_lookup(fs, t->dir, t->name, flags, out);
	return ino_lookup(fs, t->ino, out);
}
