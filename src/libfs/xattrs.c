/*
 * xattrs.c - the extended-attribute calls: set, get, list, remove, by path
 * (native API) or by inode (icalls.h).
 *
 * Owns: the POSIX/Linux checks of these calls and the XATTR records.
 * May call: path, fs/xattr (reads), op_begin/op_log_apply/op_finish.
 */
#include <errno.h>
#include <string.h>

#include "fs/xattr.h"
#include "libfs/fs_internal.h"
#include "libfs/icalls.h"
#include "libfs/oprec.h"

/* Linux knows these namespaces; any other prefix is EOPNOTSUPP. */
static int check_name(const char *name, size_t *len)
{
	if (!name)
		return -EFAULT;
	*len = strnlen(name, XATTR_NAME_MAX + 1);
	if (*len == 0 || *len > XATTR_NAME_MAX)
		return -ERANGE;
	static const char *const spaces[] = {"user.", "trusted.", "security.", "system."};
	for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++) {
		size_t n = strlen(spaces[i]);
		if (*len >= n && !strncmp(name, spaces[i], n))
			return *len > n ? 0 : -EINVAL; /* the prefix alone, as Linux says */
	}
	return -EOPNOTSUPP;
}

/* setxattr(2) reads no value when size is 0, so NULL is an empty value
 * then; with bytes to read it is EFAULT.  *value stays NULL only for
 * removexattr, which xattr_change tells apart by it. */
static int check_value(const void **value, size_t size)
{
	static const char empty[1];
	if (*value)
		return 0;
	if (size)
		return -EFAULT;
	*value = empty;
	return 0;
}

/* Appends a SETXATTR (value != NULL) or REMOVEXATTR record under the lock,
 * after checking what the record's replay will expect. */
static int xattr_change_locked(struct cairn_fs *fs, const struct target *t, const char *name,
                               size_t namelen, const void *value, size_t size, int flags,
                               uint64_t *seq, int *attempt)
{
	int rc = op_begin(fs, sizeof(struct op_xattr) + namelen + size, 0,
	                  value ? SPACE_NAME : SPACE_NONE, attempt);
	if (rc)
		return rc;
	struct lookup lk;
	rc = target_lookup(fs, t, LOOKUP_FOLLOW, &lk);
	if (rc)
		return rc;
	struct iref r;
	rc = inode_get(&fs->sh, lk.ino, &r);
	if (rc)
		return rc;
	ssize_t have = xattr_get(&fs->sh.fx, r.i, name, namelen, NULL, 0);
	inode_put(&fs->sh, &r);
	if (have < 0 && have != -ENODATA)
		return (int)have;
	int exists = have >= 0;
	if (!value && !exists)
		return -ENODATA;
	if (value && exists && (flags & XATTR_SET_CREATE))
		return -EEXIST;
	if (value && !exists && (flags & XATTR_SET_REPLACE))
		return -ENODATA;
	struct {
		struct op_xattr p;
		char bytes[XATTR_NAME_MAX + XATTR_VALUE_MAX];
	} rec;
	memset(&rec.p, 0, sizeof(rec.p));
	rec.p.ino = lk.ino;
	rec.p.time_ns = now_ns();
	rec.p.namelen = (uint16_t)namelen;
	rec.p.valuelen = (uint16_t)(value ? size : 0);
	rec.p.flags = (uint32_t)flags;
	memcpy(rec.bytes, name, namelen);
	if (value && size)
		memcpy(rec.bytes + namelen, value, size);
	struct iovec iov = {&rec, sizeof(rec.p) + namelen + rec.p.valuelen};
	return op_log_apply(fs, value ? OP_SETXATTR : OP_REMOVEXATTR, NULL, &iov, 1, seq);
}

static int xattr_change(struct cairn_fs *fs, const struct target *t, const char *name,
                        const void *value, size_t size, int flags)
{
	if (!fs)
		return -EINVAL;
	size_t namelen;
	int rc = check_name(name, &namelen);
	if (rc)
		return rc;
	if (flags & ~(XATTR_SET_CREATE | XATTR_SET_REPLACE))
		return -EINVAL;
	if (value && size > XATTR_VALUE_MAX)
		return size > 65536 ? -E2BIG : -ENOSPC; /* Linux: too big for this fs */
	uint64_t seq = 0;
	int attempt = 0;
	fs_lock_exclusive(fs);
	do
		rc = xattr_change_locked(fs, t, name, namelen, value, size, flags, &seq, &attempt);
	while (rc == -EAGAIN);
	pthread_rwlock_unlock(&fs->lock);
	if (!rc && seq)
		rc = op_finish(fs, seq);
	return rc;
}

/* get (name != NULL) or list under the shared lock.  size 0 asks for the
 * size alone and buf is not touched; a NULL buf with a size is EFAULT. */
static ssize_t xattr_read(struct cairn_fs *fs, const struct target *t, const char *name, void *buf,
                          size_t size)
{
	if (!fs)
		return -EINVAL;
	if (!buf && size)
		return -EFAULT;
	size_t namelen = 0;
	if (name) {
		int rc = check_name(name, &namelen);
		if (rc)
			return rc == -EOPNOTSUPP ? -ENODATA : rc;
	}
	pthread_rwlock_rdlock(&fs->lock);
	struct lookup lk;
	ssize_t n = target_lookup(fs, t, LOOKUP_FOLLOW, &lk);
	struct iref r;
	if (!n)
		n = inode_get(&fs->sh, lk.ino, &r);
	if (!n) {
		n = name ? xattr_get(&fs->sh.fx, r.i, name, namelen, buf, size)
		         : xattr_list(&fs->sh.fx, r.i, buf, size);
		inode_put(&fs->sh, &r);
	}
	pthread_rwlock_unlock(&fs->lock);
	return n;
}

/* ---- the native API: -1 and errno ---- */

/* A target with no path names inode 0: a NULL path is EFAULT, as the
 * kernel answers, after the EINVAL of a NULL fs. */
static int api_path(cairn_fs *fs, const char *path)
{
	return !fs ? -EINVAL : !path ? -EFAULT : 0;
}

int cairn_setxattr(cairn_fs *fs, const char *path, const char *name, const void *value, size_t size,
                   int flags)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_setxattr(fs->client, path, name, value, size, flags);
	struct target t = {.path = path};
	int rc = api_path(fs, path);
	if (!rc)
		rc = check_value(&value, size);
	if (!rc)
		rc = xattr_change(fs, &t, name, value, size, flags);
	return rc ? fail(rc) : 0;
}

ssize_t cairn_getxattr(cairn_fs *fs, const char *path, const char *name, void *value, size_t size)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_getxattr(fs->client, path, name, value, size);
	struct target t = {.path = path};
	ssize_t n = api_path(fs, path);
	if (!n && !name)
		n = -EFAULT; /* xattr_read would list */
	if (!n)
		n = xattr_read(fs, &t, name, value, size);
	return n < 0 ? fail((int)n) : n;
}

ssize_t cairn_listxattr(cairn_fs *fs, const char *path, char *list, size_t size)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_listxattr(fs->client, path, list, size);
	struct target t = {.path = path};
	ssize_t n = api_path(fs, path);
	if (!n)
		n = xattr_read(fs, &t, NULL, list, size);
	return n < 0 ? fail((int)n) : n;
}

int cairn_removexattr(cairn_fs *fs, const char *path, const char *name)
{
	if (fs_inherited(fs))
		return fail(-EIO);
	if (fs && fs->client)
		return client_path(fs->client, CTL_REMOVEXATTR, path, name, 0, 0);
	struct target t = {.path = path};
	int rc = api_path(fs, path);
	if (!rc)
		rc = xattr_change(fs, &t, name, NULL, 0, 0);
	return rc ? fail(rc) : 0;
}

/* ---- by inode: 0 or -errno ---- */

int ic_setxattr(cairn_fs *fs, uint64_t ino, const char *name, const void *value, size_t size,
                int flags)
{
	struct target t = {.ino = ino};
	int rc = check_value(&value, size);
	return rc ? rc : xattr_change(fs, &t, name, value, size, flags);
}

ssize_t ic_getxattr(cairn_fs *fs, uint64_t ino, const char *name, void *value, size_t size)
{
	struct target t = {.ino = ino};
	return name ? xattr_read(fs, &t, name, value, size) : -EFAULT; /* NULL would list */
}

ssize_t ic_listxattr(cairn_fs *fs, uint64_t ino, char *list, size_t size)
{
	struct target t = {.ino = ino};
	return xattr_read(fs, &t, NULL, list, size);
}

int ic_removexattr(cairn_fs *fs, uint64_t ino, const char *name)
{
	struct target t = {.ino = ino};
	return xattr_change(fs, &t, name, NULL, 0, 0);
}
