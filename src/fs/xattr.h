/*
 * xattr.h - extended attributes of an inode: a B+tree of (name, value)
 * records keyed by a hash of the name, rooted in the inode (xattr_root).
 *
 * Owns: xattr-tree nodes and the record format (docs/FORMAT.md).
 * May call: btree, checksum.
 *
 * Names are 1..255 bytes ("user.foo", "security.selinux", ...), values
 * 0..XATTR_VALUE_MAX bytes: a record lives in one tree leaf.  Functions
 * update ino->xattr_root and ino->blocks; the caller marks the inode dirty.
 */
#ifndef CAIRN_FS_XATTR_H
#define CAIRN_FS_XATTR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fsctx;
struct fs_inode;

#define XATTR_NAME_MAX 255
#define XATTR_VALUE_MAX 1024

#define XATTR_SET_CREATE 1  /* fail with -EEXIST if present (XATTR_CREATE) */
#define XATTR_SET_REPLACE 2 /* fail with -ENODATA if absent (XATTR_REPLACE) */

int xattr_set(struct fsctx *fx, struct fs_inode *ino, const char *name, size_t namelen,
	      const void *value, size_t len, int flags);
/* Copies the value into buf (if size > 0) and returns its length; -ENODATA
 * if absent, -ERANGE if size is non-zero and too small. */
ssize_t xattr_get(struct fsctx *fx, const struct fs_inode *ino, const char *name, size_t namelen,
		  void *buf, size_t size);
int xattr_remove(struct fsctx *fx, struct fs_inode *ino, const char *name, size_t namelen);
/* The names, each NUL-terminated, in buf (size 0: just the length needed). */
ssize_t xattr_list(struct fsctx *fx, const struct fs_inode *ino, char *buf, size_t size);
/* Frees the whole tree (inode being freed). */
int xattr_destroy(struct fsctx *fx, struct fs_inode *ino);

#endif
