/*
 * access.c - POSIX permission checks for clients, and the path walk that
 * makes them (see access.h).
 *
 * Owns: nothing persistent.  May call: src/libfs/icalls.h, libc.
 *
 * The rules are the kernel's (generic_permission, may_delete): root may
 * read and write anything and search any directory, and execute a file
 * when some execute bit is set; everyone else is judged by the owner
 * bits if they own the inode, else by the group bits if they are in its
 * group, else by the other bits.  The walk is not atomic with the call
 * that follows it, exactly as a kernel lookup followed by a FUSE request
 * is not: a name renamed between the two gives the same answers a FUSE
 * mount gives.
 */
#include "server/access.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "util/pathname.h"

#include "libfs/icalls.h"

#define MAX_SYMLINKS 40

int cred_in_group(const struct cred *c, uint32_t gid)
{
	if (c->gid == gid)
		return 1;
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return 1;
	return 0;
}

int may_access(const struct cred *c, const struct stat *st, int mask)
{
	if (c->uid == 0) {
		if (!(mask & MAY_EXEC) || S_ISDIR(st->st_mode) || (st->st_mode & 0111))
			return 0;
		return -EACCES;
	}
	unsigned bits = st->st_mode & 7;
	if (c->uid == st->st_uid)
		bits = (st->st_mode >> 6) & 7;
	else if (cred_in_group(c, st->st_gid))
		bits = (st->st_mode >> 3) & 7;
	return ((int)bits & mask) == mask ? 0 : -EACCES;
}

int is_owner(const struct cred *c, const struct stat *st)
{
	return c->uid == 0 || c->uid == st->st_uid;
}

int may_delete(const struct cred *c, const struct stat *dir, const struct stat *victim)
{
	int rc = may_access(c, dir, MAY_WRITE | MAY_EXEC);
	if (rc)
		return rc;
	if ((dir->st_mode & S_ISVTX) && c->uid != 0 && c->uid != dir->st_uid &&
	    c->uid != victim->st_uid)
		return -EPERM;
	return 0;
}

/* ---- the walk ------------------------------------------------------------ */

struct walk_state {
	char buf[2 * PATH_MAX + 2]; /* what is left of the path, from pos */
	size_t pos, end;
	uint64_t cur;
	struct stat cur_st;
	int links;
};

/* Takes the next component; returns its length (0 at the end). */
static size_t next_component(struct walk_state *w, const char **name, int *more)
{
	return path_next_component(w->buf, &w->pos, w->end, name, more);
}

/* Puts the target of the symlink ino in front of what is left. */
static int splice_link(cairn_fs *fs, struct walk_state *w, uint64_t ino)
{
	char target[PATH_MAX];
	if (++w->links > MAX_SYMLINKS)
		return -ELOOP;
	ssize_t n = ic_readlink(fs, ino, target, sizeof(target));
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ENOENT;
	int rc = path_splice(w->buf, sizeof(w->buf), &w->pos, &w->end, target, (size_t)n);
	if (rc)
		return rc;
	if (target[0] == '/') {
		w->cur = CAIRN_ROOT_INO;
		return ic_getattr(fs, w->cur, &w->cur_st);
	}
	return 0;
}

/* The last component is the directory itself ("/", "x/.", "x/.."). */
static int end_at_dir(cairn_fs *fs, struct walk_state *w, const char *name, size_t len,
                      struct walked *out)
{
	out->dot = 1;
	out->exists = 1;
	if (len == 0 || (len == 1 && name[0] == '.')) {
		out->st = w->cur_st;
	} else {
		int rc = ic_lookup(fs, w->cur, "..", &out->st);
		if (rc)
			return rc;
	}
	out->dir = (uint64_t)out->st.st_ino;
	out->dir_st = out->st;
	memcpy(out->name, name, len);
	out->name[len] = 0;
	return 0;
}

static int is_dot_name(const char *name, size_t len)
{
	return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

int walk_path(cairn_fs *fs, const struct cred *c, const char *path, int flags, struct walked *out)
{
	static __thread struct walk_state w;
	size_t len = strnlen(path, PATH_MAX);
	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	if (len == 0)
		return -ENOENT;
	if (path[0] != '/')
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->must_dir = path[len - 1] == '/';
	memcpy(w.buf, path, len);
	w.pos = 0;
	w.end = len;
	w.links = 0;
	w.cur = CAIRN_ROOT_INO;
	int rc = ic_getattr(fs, w.cur, &w.cur_st);
	for (;;) {
		if (rc)
			return rc;
		const char *name;
		int more;
		size_t n = next_component(&w, &name, &more);
		if (n > 255)
			return -ENAMETOOLONG;
		if (!S_ISDIR(w.cur_st.st_mode))
			return -ENOTDIR;
		if ((rc = may_access(c, &w.cur_st, MAY_EXEC)))
			return rc;
		if (!more && (n == 0 || is_dot_name(name, n)))
			return end_at_dir(fs, &w, name, n, out);
		char comp[256];
		memcpy(comp, name, n);
		comp[n] = 0;
		struct stat st;
		rc = ic_lookup(fs, w.cur, comp, &st);
		if (!more) {
			if (rc && rc != -ENOENT)
				return rc;
			int follow = (flags & WALK_FOLLOW) || out->must_dir;
			if (!rc && S_ISLNK(st.st_mode) && follow) {
				rc = splice_link(fs, &w, (uint64_t)st.st_ino);
				continue;
			}
			out->dir = w.cur;
			out->dir_st = w.cur_st;
			memcpy(out->name, comp, n + 1);
			out->exists = !rc;
			if (!rc)
				out->st = st;
			if (out->exists && out->must_dir && !S_ISDIR(st.st_mode))
				return -ENOTDIR;
			return 0;
		}
		if (rc)
			return rc;
		if (S_ISLNK(st.st_mode)) {
			rc = splice_link(fs, &w, (uint64_t)st.st_ino);
			continue;
		}
		w.cur = (uint64_t)st.st_ino;
		w.cur_st = st;
	}
}
