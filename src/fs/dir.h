/*
 * dir.h - directories: a B+tree of entries keyed by a 64-bit hash of the
 * name, rooted in the directory's inode (tree_root), so that lookup,
 * insert and remove cost O(log n) blocks with millions of entries.
 *
 * Owns: directory-tree nodes.
 * May call: btree, cache, alloc.
 *
 * "." and ".." are not stored (the inode's parent field gives ".."); the
 * caller synthesizes them.  Names are 1..255 bytes, never containing '/' or
 * NUL (the caller checks).  Functions update dir->tree_root, dir->blocks and
 * dir->entries; the caller marks the inode's block dirty.
 */
#ifndef CAIRN_FS_DIR_H
#define CAIRN_FS_DIR_H

#include <stddef.h>
#include <stdint.h>

struct fsctx;
struct fs_inode;

#define DIR_NAME_MAX 255

/* Returns 0 and the entry's inode and DT_* type, or -ENOENT, or -errno. */
int dir_lookup(struct fsctx *fx, const struct fs_inode *dir, const char *name, size_t namelen,
	       uint64_t *ino, uint8_t *type);

/* Adds an entry.  Returns 0, -EEXIST, -ENOSPC (no block for a split), -errno. */
int dir_insert(struct fsctx *fx, struct fs_inode *dir, const char *name, size_t namelen,
	       uint64_t ino, uint8_t type);

/* Removes an entry.  Returns 0 or -ENOENT. */
int dir_remove(struct fsctx *fx, struct fs_inode *dir, const char *name, size_t namelen);

/*
 * Readdir.  Calls fn for each entry after position cookie (0 = from the
 * start), in a fixed order; next is the cookie that resumes after that entry
 * and is always >= 3 (0..2 are left for the caller's start, "." and "..").
 * Entries neither added nor removed during a walk are seen exactly once.
 * Stops when fn returns non-zero and returns that value; returns 0 at end.
 */
typedef int (*dir_walk_fn)(void *arg, const char *name, size_t namelen, uint64_t ino,
			   uint8_t type, uint64_t next);
int dir_walk(struct fsctx *fx, const struct fs_inode *dir, uint64_t cookie, dir_walk_fn fn, void *arg);

/* Frees every tree node of an empty directory; sets tree_root = 0.
 * Returns 0, or -ENOTEMPTY if dir->entries != 0. */
int dir_destroy(struct fsctx *fx, struct fs_inode *dir);

/* Tests only: replaces the name hash (NULL = XXH3), e.g. to force
 * collisions.  Never set outside tests: the on-media keys depend on it. */
extern uint64_t (*dir_hash_hook)(const char *name, size_t namelen);

#endif
