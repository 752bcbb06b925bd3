/*
 * icalls.h - the calls of libfs by inode number, for front ends that name
 * files by inode rather than by path (the FUSE low-level API).
 *
 * Owns: nothing; these are the same operations as include/cairn.h, with
 * the same validation, records and errno values, entered by (directory
 * inode, name) instead of by path.  Returns 0 or a negative errno (never
 * sets errno), and fills *st with the attributes of the inode concerned.
 * Names are single components (no '/').  The caller identifies itself with
 * a struct icaller, whose uid and gid own what it creates.
 *
 * May call: libfs internals.  Called by: src/fuse.
 */
#ifndef CAIRN_LIBFS_ICALLS_H
#define CAIRN_LIBFS_ICALLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cairn.h"

struct icaller {
	uint32_t uid, gid;
};

#define CAIRN_ROOT_INO 1

int ic_lookup(cairn_fs *fs, uint64_t dir, const char *name, struct stat *st);
int ic_getattr(cairn_fs *fs, uint64_t ino, struct stat *st);

/* Which fields ic_setattr changes. */
#define IC_SET_MODE 1
#define IC_SET_UID 2
#define IC_SET_GID 4
#define IC_SET_SIZE 8
#define IC_SET_ATIME 16
#define IC_SET_MTIME 32
#define IC_SET_ATIME_NOW 64
#define IC_SET_MTIME_NOW 128
#define IC_SET_CTIME 256 /* only ctime (e.g. a change the kernel made) */
int ic_setattr(cairn_fs *fs, uint64_t ino, unsigned valid, const struct stat *in, struct stat *st);

/* mode carries the type: S_IFREG, S_IFDIR, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK. */
int ic_mknod(cairn_fs *fs, const struct icaller *who, uint64_t dir, const char *name, mode_t mode,
             dev_t rdev, struct stat *st);
int ic_symlink(cairn_fs *fs, const struct icaller *who, uint64_t dir, const char *name,
               const char *target, struct stat *st);
int ic_link(cairn_fs *fs, uint64_t ino, uint64_t dir, const char *name, struct stat *st);
int ic_unlink(cairn_fs *fs, uint64_t dir, const char *name);
int ic_rmdir(cairn_fs *fs, uint64_t dir, const char *name);
int ic_rename(cairn_fs *fs, uint64_t dir, const char *name, uint64_t newdir, const char *newname,
              unsigned flags);
ssize_t ic_readlink(cairn_fs *fs, uint64_t ino, char *buf, size_t size);

/* Opens an inode; returns a cairn file descriptor for cairn_pread,
 * cairn_pwrite, cairn_fsync, cairn_close. */
int ic_open(cairn_fs *fs, uint64_t ino, int flags);
/* cairn_pwrite, with the descriptor's O_APPEND set to what the kernel's
 * file flags say now (fcntl F_SETFL changes them in the kernel alone):
 * at the end, or at off, from now on. */
ssize_t ic_pwrite(cairn_fs *fs, int fd, const void *buf, size_t count, off_t off, int append);
/* Creates (O_CREAT semantics, O_EXCL honoured) and opens; fd in *fd. */
int ic_create(cairn_fs *fs, const struct icaller *who, uint64_t dir, const char *name, mode_t mode,
              int flags, int *fd, struct stat *st);

/* References a front end holds on inodes (FUSE lookup counts): while any
 * is held the inode number is not reused, and an inode that loses its last
 * name stays readable (an orphan) until the last reference and the last
 * open file are gone. */
int ic_pin(cairn_fs *fs, uint64_t ino, uint64_t n);
void ic_unpin(cairn_fs *fs, uint64_t ino, uint64_t n);

/* Extended attributes (see cairn_setxattr). */
int ic_setxattr(cairn_fs *fs, uint64_t ino, const char *name, const void *value, size_t size,
                int flags);
ssize_t ic_getxattr(cairn_fs *fs, uint64_t ino, const char *name, void *value, size_t size);
ssize_t ic_listxattr(cairn_fs *fs, uint64_t ino, char *list, size_t size);
int ic_removexattr(cairn_fs *fs, uint64_t ino, const char *name);

/* Readdir by cookie: 0 starts (".", then "..", then entries); fn gets each
 * entry and the cookie that resumes after it; a non-zero return stops. */
typedef int (*ic_dir_fn)(void *arg, const char *name, uint64_t ino, unsigned char type,
                         uint64_t next);
int ic_readdir(cairn_fs *fs, uint64_t dir, uint64_t cookie, ic_dir_fn fn, void *arg);

/* Why changes fail with EIO when a medium failed: the part and the offset
 * it failed at, copied into buf.  0 when no medium failure was met. */
int ic_failure(cairn_fs *fs, char *buf, size_t len);

#endif
