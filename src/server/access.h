/*
 * access.h - who a client is and what POSIX lets it do: credentials, the
 * permission checks of the kernel's VFS, and a path walk that checks
 * search permission on every directory it passes.
 *
 * Owns: struct cred, struct walked.  May call: the inode-number calls
 * (src/libfs/icalls.h).  Called by: the rest of src/server.
 *
 * The FUSE mount leaves these checks to the kernel (default_permissions);
 * a client's requests reach the daemon without a kernel between, so the
 * daemon makes the same checks itself, with the credentials the kernel
 * gave it for the client's socket.
 */
#ifndef CAIRN_SERVER_ACCESS_H
#define CAIRN_SERVER_ACCESS_H

#include <stdint.h>
#include <sys/stat.h>

#include "cairn.h"

struct cred {
	uint32_t uid, gid;
	uint32_t *groups; /* supplementary groups */
	int ngroups;
	int32_t pid; /* for messages */
};

#define MAY_READ 4
#define MAY_WRITE 2
#define MAY_EXEC 1

int cred_in_group(const struct cred *c, uint32_t gid);
/* 0, or -EACCES when c may not access st as mask (MAY_*) says. */
int may_access(const struct cred *c, const struct stat *st, int mask);
/* Whether c owns st (or is root), as chmod and explicit times need. */
int is_owner(const struct cred *c, const struct stat *st);
/* Whether c may remove or replace the name of victim in dir: write and
 * search on dir, and under the sticky bit ownership of dir or victim. */
int may_delete(const struct cred *c, const struct stat *dir, const struct stat *victim);

/* A path walked: the directory that holds (or would hold) the last
 * component, its name, and what the name is when it exists. */
struct walked {
	uint64_t dir;
	struct stat dir_st;
	char name[256];
	int exists;
	int dot;        /* the last component is ".", ".." or the root itself */
	int must_dir;   /* the path ended with '/' */
	struct stat st; /* when it exists */
};

#define WALK_FOLLOW 1 /* follow a symlink in the last component */

/* Walks an absolute path within the volume, with search permission
 * checked on every directory; symlinks in the middle are always followed
 * (40 at most: ELOOP).  0 with *w filled (w->exists says whether the last
 * component names anything), or -errno: ENOENT, ENOTDIR, EACCES, ELOOP,
 * ENAMETOOLONG. */
int walk_path(cairn_fs *fs, const struct cred *c, const char *path, int flags, struct walked *w);

#endif
