/*
 * serve_ops.c - one client request served: the permission checks POSIX
 * asks for (access.c), then the same call the FUSE mount makes.
 *
 * Owns: the session's tables of descriptors and directory handles.
 * May call: access.c, include/cairn.h (calls on the volume's own
 * descriptors), src/libfs/icalls.h (calls by inode), libc.
 *
 * Names and paths go through walk_path, so that every directory searched
 * is checked; what is done to the last component is checked here, by the
 * rules of the kernel's VFS for the same system call.  Descriptors a
 * client names are indices into its own session's table: it cannot reach
 * a file another client (or the mount) opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include "libfs/icalls.h"
#include "libfs/clients.h"
#include "server/server_internal.h"

#define MAX_HANDLES 1024 /* descriptors (and directory handles) per client: EMFILE beyond */

static int64_t neg(int64_t r)
{
	return r < 0 ? -errno : r;
}

/* ---- the session's tables ------------------------------------------------ */

static int fd_add(struct session *s, int vfd, uint64_t ino, int flags)
{
	int slot = 0;
	while (slot < s->nfds && s->fds[slot].vfd >= 0)
		slot++;
	if (slot == s->nfds) {
		if (s->nfds >= MAX_HANDLES)
			return -EMFILE;
		int n = s->nfds ? s->nfds * 2 : 16;
		struct client_fd *fds = realloc(s->fds, (size_t)n * sizeof(*fds));
		if (!fds)
			return -ENOMEM;
		for (int i = s->nfds; i < n; i++)
			fds[i].vfd = -1;
		s->fds = fds;
		s->nfds = n;
	}
	s->fds[slot] = (struct client_fd){vfd, ino, flags, 0};
	return slot;
}

/* The volume's descriptor behind the client's fd, or -EBADF. */
static int fd_of(const struct session *s, int64_t fd)
{
	if (fd < 0 || fd >= s->nfds || s->fds[fd].vfd < 0)
		return -EBADF;
	return s->fds[fd].vfd;
}

/* ---- holding what a walk found ------------------------------------------- */

/* A walk returns inode numbers and holds nothing, and the volume gives a
 * freed number to the next file it makes: between the walk and the call,
 * the file judged could be deleted and the number given to another user's
 * file, which the call would then change.  So before a call changes (or
 * opens) what a walk found, each inode concerned is pinned, which keeps
 * its number from being freed (as the FUSE mount's lookups do), and is
 * checked to have still the type, mode and owners the walk judged; if not,
 * the request is walked again.  (What a call only reads - stat, readlink -
 * is not pinned: a name replaced meanwhile is read as it is then.) */
#define PIN_LOST (-100000) /* not an errno: serve_request walks again */
#define PIN_TRIES 8

static int pin(struct session *s, const struct stat *st)
{
	uint64_t ino = (uint64_t)st->st_ino;
	if (s->npins == (int)(sizeof(s->pins) / sizeof(s->pins[0])) || ic_pin(s->fs, ino, 1))
		return PIN_LOST;
	s->pins[s->npins++] = ino;
	struct stat now;
	if (ic_getattr(s->fs, ino, &now) || now.st_mode != st->st_mode ||
	    now.st_uid != st->st_uid || now.st_gid != st->st_gid)
		return PIN_LOST;
	return 0;
}

static void unpin_all(struct session *s)
{
	while (s->npins > 0)
		ic_unpin(s->fs, s->pins[--s->npins], 1);
}

/* Whether the client's fd was opened for writing: set-ID bits are cleared
 * only for a change the call may make. */
static int fd_writable(const struct session *s, int64_t fd)
{
	return (s->fds[fd].flags & O_ACCMODE) == O_WRONLY ||
	       (s->fds[fd].flags & O_ACCMODE) == O_RDWR;
}

/* ---- telling a caching front end ----------------------------------------- */

static void note_inode(const struct session *s, uint64_t ino, int64_t off, int64_t len)
{
	if (s->watch && s->watch->inode)
		s->watch->inode(s->watch->arg, ino, off, len);
}

/* After a call that changed ino's attributes (rc 0): tell, pass rc on. */
static int inode_changed(const struct session *s, int rc, uint64_t ino, int64_t off)
{
	if (rc == 0)
		note_inode(s, ino, off, 0);
	return rc;
}

/* A name in dir changed: the directory's own attributes did too, and so
 * did its listing, which a kernel may keep in the directory's pages (a
 * FUSE mount whose directories need no opendir caches their entries and
 * checks them only against changes it made itself, or an mtime it will
 * not fetch again): offset 0 drops those pages. */
static void note_entry(const struct session *s, uint64_t dir, const char *name)
{
	if (s->watch && s->watch->entry)
		s->watch->entry(s->watch->arg, dir, name);
	note_inode(s, dir, 0, 0);
}

static int entry_changed(const struct session *s, int rc, uint64_t dir, const char *name)
{
	if (rc == 0)
		note_entry(s, dir, name);
	return rc;
}

static int dir_add(struct session *s, uint64_t ino)
{
	for (int i = 0; i < s->ndirs; i++)
		if (!s->dirs[i]) {
			s->dirs[i] = ino;
			return i;
		}
	if (s->ndirs >= MAX_HANDLES)
		return -EMFILE;
	int n = s->ndirs ? s->ndirs * 2 : 8;
	uint64_t *d = realloc(s->dirs, (size_t)n * sizeof(*d));
	if (!d)
		return -ENOMEM;
	memset(d + s->ndirs, 0, (size_t)(n - s->ndirs) * sizeof(*d));
	s->dirs = d;
	int slot = s->ndirs;
	s->ndirs = n;
	s->dirs[slot] = ino;
	return slot;
}

void serve_release(struct session *s)
{
	unpin_all(s);
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i].vfd >= 0)
			cairn_close(s->fs, s->fds[i].vfd);
	for (int i = 0; i < s->ndirs; i++)
		if (s->dirs[i])
			ic_unpin(s->fs, s->dirs[i], 1);
	free(s->fds);
	free(s->dirs);
	s->fds = NULL;
	s->dirs = NULL;
	s->nfds = s->ndirs = 0;
}

/* ---- what a new inode gets ----------------------------------------------- */

/* The owner of a new inode: the caller, with the directory's group when
 * the directory is set-group-ID (which a new directory inherits). */
static struct icaller owner_in(const struct session *s, const struct walked *w, mode_t *mode)
{
	struct icaller who = {s->cred.uid, s->cred.gid};
	if (w->dir_st.st_mode & S_ISGID) {
		who.gid = w->dir_st.st_gid;
		if (S_ISDIR(*mode))
			*mode |= S_ISGID;
	}
	return who;
}

/* A name to be created: it must not exist, and the directory must let the
 * caller write. */
static int may_create(const struct session *s, const struct walked *w)
{
	if (w->exists)
		return -EEXIST;
	return may_access(&s->cred, &w->dir_st, MAY_WRITE | MAY_EXEC);
}

/* ---- files --------------------------------------------------------------- */

/* Before a write, a truncate or an fallocate by anyone but root: the file
 * loses its set-ID bits first, as the kernel makes every file system do
 * (judged on the mode as it is now, not as it was at the open). */
static int clear_setid(struct session *s, uint64_t ino)
{
	if (s->cred.uid == 0)
		return 0;
	struct stat st;
	int rc = ic_getattr(s->fs, ino, &st);
	if (rc || !S_ISREG(st.st_mode) || without_setid(st.st_mode) == st.st_mode)
		return rc;
	st.st_mode = without_setid(st.st_mode) & 07777;
	return inode_changed(s, ic_setattr(s->fs, ino, IC_SET_MODE, &st, &st), ino, -1);
}

static int open_mask(int flags)
{
	/* Access mode 3 (Linux's "ioctl only") asks for both, as the kernel
	 * does. */
	int acc = flags & O_ACCMODE, mask = 0;
	if (acc != O_WRONLY)
		mask |= MAY_READ;
	if (acc != O_RDONLY || (flags & O_TRUNC))
		mask |= MAY_WRITE;
	return mask;
}

static int open_existing(struct session *s, const struct walked *w, int flags)
{
	if ((flags & O_CREAT) && (flags & O_EXCL))
		return -EEXIST;
	if (S_ISLNK(w->st.st_mode))
		return -ELOOP; /* O_NOFOLLOW */
	if ((flags & O_DIRECTORY) && !S_ISDIR(w->st.st_mode))
		return -ENOTDIR;
	if (S_ISDIR(w->st.st_mode) && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)))
		return -EISDIR;
	int rc = may_access(&s->cred, &w->st, open_mask(flags));
	if (!rc)
		rc = pin(s, &w->st);
	if (!rc && (flags & O_TRUNC))
		rc = clear_setid(s, (uint64_t)w->st.st_ino);
	return rc ? rc : ic_open(s->fs, (uint64_t)w->st.st_ino, flags);
}

/* Creates the name w found missing.  Always exclusive: a file another
 * process created since the walk must be opened with its permissions
 * checked, so -EEXIST sends the caller back to the walk. */
static int create_new(struct session *s, const struct walked *w, int flags, mode_t mode,
                      struct stat *st)
{
	if (w->must_dir)
		return -EISDIR;
	int rc = may_create(s, w);
	if (!rc)
		rc = pin(s, &w->dir_st);
	if (rc)
		return rc;
	mode_t m = S_IFREG | (mode & 07777);
	struct icaller who = owner_in(s, w, &m);
	/* As the kernel (mode_strip_sgid): no set-group-ID file in a group
	 * the caller is not in. */
	if (s->cred.uid != 0 && !cred_in_group(&s->cred, who.gid))
		m &= ~(mode_t)S_ISGID;
	int vfd;
	rc = ic_create(s->fs, &who, w->dir, w->name, m & 07777, flags | O_EXCL, &vfd, st);
	if (rc)
		return rc;
	note_entry(s, w->dir, w->name);
	return vfd;
}

static int64_t do_open(struct session *s, const char *path, int flags, mode_t mode, int64_t want,
                       uint32_t *outlen)
{
	int excl = (flags & O_CREAT) && (flags & O_EXCL);
	int follow = (flags & O_NOFOLLOW) || excl ? 0 : WALK_FOLLOW;
	int vfd = -EEXIST;
	struct stat st = {0};
	for (int tries = 0; vfd == -EEXIST && tries < 8; tries++) {
		unpin_all(s);
		struct walked w;
		int rc = walk_path(s->fs, &s->cred, path, follow, &w);
		if (rc)
			return rc;
		if (w.exists) {
			st = w.st;
			vfd = open_existing(s, &w, flags);
			if (vfd >= 0 && (flags & O_TRUNC))
				note_inode(s, (uint64_t)st.st_ino, 0, 0);
			break;
		}
		if (!(flags & O_CREAT))
			return -ENOENT;
		else if ((vfd = create_new(s, &w, flags, mode, &st)) == -EEXIST && excl)
			return -EEXIST;
	}
	if (vfd < 0)
		return vfd;
	int slot = fd_add(s, vfd, (uint64_t)st.st_ino, flags);
	if (slot < 0)
		cairn_close(s->fs, vfd);
	else
		serve_grant(s, slot, want, st.st_mode, outlen);
	return slot;
}

/* A descriptor of a file the client made in its log: it had one from the
 * create, which its library now needs the daemon's side of (a read, a
 * write after its grant went).  The create was the entitlement. */
static int64_t do_open_ino(struct session *s, int64_t ino, int flags)
{
	if (!s->clog || ino <= 0 || !clog_made(s->fs, s->clog, (uint64_t)ino))
		return -EBADF;
	int vfd = ic_open(s->fs, (uint64_t)ino, flags & ~(O_CREAT | O_EXCL | O_TRUNC));
	if (vfd < 0)
		return vfd;
	int slot = fd_add(s, vfd, (uint64_t)ino, flags);
	if (slot < 0)
		cairn_close(s->fs, vfd);
	return slot;
}

/* A descriptor, with a grant of local writes, for an inode the client's
 * process opened for writing through the mount (a preloaded program):
 * that open, which the kernel checked, is what entitles it. */
static int64_t do_close(struct session *s, int64_t fd)
{
	int vfd = fd_of(s, fd);
	if (vfd < 0)
		return vfd;
	serve_ungrant(s, (int)fd);
	s->fds[fd].vfd = -1;
	return neg(cairn_close(s->fs, vfd));
}

static int64_t do_io(struct session *s, const struct request *rq, uint8_t *out, uint32_t *outlen)
{
	const int64_t *a = rq->h->a;
	int vfd = fd_of(s, a[0]);
	if (vfd < 0)
		return vfd;
	int op = rq->h->op;
	if (op == CTL_READ || op == CTL_PREAD) {
		if (a[1] < 0 || a[1] > CTL_MAX_DATA)
			return SERVE_END;
		if (session_out(s, (size_t)a[1]))
			return -ENOMEM;
		out = s->out;
		ssize_t n = op == CTL_READ ? cairn_read(s->fs, vfd, out, (size_t)a[1])
		                           : cairn_pread(s->fs, vfd, out, (size_t)a[1], a[2]);
		if (n > 0)
			*outlen = (uint32_t)n;
		return neg(n);
	}
	if (rq->dlen > CTL_MAX_DATA)
		return SERVE_END;
	int64_t off = op == CTL_WRITE ? -1 : a[1];
	uint64_t ino = s->fds[a[0]].ino;
	int rc = rq->dlen && fd_writable(s, a[0]) ? clear_setid(s, ino) : 0;
	if (rc)
		return rc;
	ssize_t n = op == CTL_WRITE ? cairn_write(s->fs, vfd, rq->data, rq->dlen)
	                            : cairn_pwrite(s->fs, vfd, rq->data, rq->dlen, off);
	if (n < 0)
		return -errno;
	if (n > 0) /* where write() put it is not known here: all of it */
		note_inode(s, ino, off < 0 ? 0 : off, off < 0 ? 0 : n);
	return n;
}

static int64_t do_fdcall(struct session *s, const struct request *rq, uint8_t *out,
                         uint32_t *outlen)
{
	const int64_t *a = rq->h->a;
	int vfd = fd_of(s, a[0]);
	if (vfd < 0)
		return vfd;
	int64_t r;
	switch (rq->h->op) {
	case CTL_LSEEK:
		return neg(cairn_lseek(s->fs, vfd, a[1], (int)a[2]));
	case CTL_FSYNC:
		return neg(cairn_fsync(s->fs, vfd));
	case CTL_FTRUNCATE:
		r = fd_writable(s, a[0]) ? clear_setid(s, s->fds[a[0]].ino) : 0;
		if (!r)
			r = neg(cairn_ftruncate(s->fs, vfd, a[1]));
		break;
	case CTL_FALLOCATE:
		r = fd_writable(s, a[0]) ? clear_setid(s, s->fds[a[0]].ino) : 0;
		if (!r)
			r = neg(cairn_fallocate(s->fs, vfd, (int)a[1], a[2], a[3]));
		break;
	case CTL_FSTAT:
		*outlen = sizeof(struct stat);
		return neg(cairn_fstat(s->fs, vfd, (struct stat *)out));
	default:
		return SERVE_END;
	}
	if (r == 0)
		note_inode(s, s->fds[a[0]].ino, 0, 0);
	return r;
}

/* ---- names --------------------------------------------------------------- */

/* The path's inode, which must exist (ENOENT otherwise); flags as
 * walk_path's. */
static int walk_existing(struct session *s, const char *path, int flags, struct walked *w)
{
	int rc = walk_path(s->fs, &s->cred, path, flags, w);
	return rc ? rc : w->exists ? 0 : -ENOENT;
}

/* The same, for a call that changes what it finds: pinned (see pin). */
static int walk_pinned(struct session *s, const char *path, int flags, struct walked *w)
{
	int rc = walk_existing(s, path, flags, w);
	return rc ? rc : pin(s, &w->st);
}

static int64_t do_stat(struct session *s, const char *path, int follow, uint8_t *out,
                       uint32_t *outlen)
{
	struct walked w;
	int rc = walk_existing(s, path, follow, &w);
	if (rc)
		return rc;
	memcpy(out, &w.st, sizeof(w.st));
	*outlen = sizeof(w.st);
	return 0;
}

static int64_t do_unlink(struct session *s, const char *path, int dir)
{
	struct walked w;
	int rc = walk_existing(s, path, 0, &w);
	if (rc)
		return rc;
	if (w.dot) {
		if (!dir)
			return -EISDIR;
		if (w.name[0] == 0 || w.st.st_ino == CAIRN_ROOT_INO)
			return -EBUSY;
		return w.name[1] == '.' ? -ENOTEMPTY : -EINVAL;
	}
	if (dir && !S_ISDIR(w.st.st_mode))
		return -ENOTDIR;
	if (!dir && S_ISDIR(w.st.st_mode))
		return -EISDIR;
	if ((rc = may_delete(&s->cred, &w.dir_st, &w.st)) || (rc = pin(s, &w.dir_st)) ||
	    (rc = pin(s, &w.st)))
		return rc;
	rc = dir ? ic_rmdir(s->fs, w.dir, w.name) : ic_unlink(s->fs, w.dir, w.name);
	inode_changed(s, rc, (uint64_t)w.st.st_ino, -1); /* its link count */
	return entry_changed(s, rc, w.dir, w.name);
}

/* The walk to a name to be made: it must not exist, its directory must
 * let the caller write, and the directory is pinned (see pin). */
static int walk_to_new(struct session *s, const char *path, struct walked *w)
{
	int rc = walk_path(s->fs, &s->cred, path, 0, w);
	if (!rc && w->dot)
		rc = -EEXIST;
	if (!rc)
		rc = may_create(s, w);
	return rc ? rc : pin(s, &w->dir_st);
}

static int64_t do_mkdir(struct session *s, const char *path, mode_t mode)
{
	struct walked w;
	int rc = walk_to_new(s, path, &w);
	if (rc)
		return rc;
	/* As the kernel: permission bits and the sticky bit from the caller,
	 * set-group-ID only from the directory (owner_in). */
	mode_t m = S_IFDIR | (mode & (S_IRWXU | S_IRWXG | S_IRWXO | S_ISVTX));
	struct icaller who = owner_in(s, &w, &m);
	struct stat st;
	return entry_changed(s, ic_mknod(s->fs, &who, w.dir, w.name, m, 0, &st), w.dir, w.name);
}

static int64_t do_symlink(struct session *s, const char *target, const char *path)
{
	struct walked w;
	int rc = walk_to_new(s, path, &w);
	if (!rc && w.must_dir)
		rc = -ENOENT; /* a symlink named with a trailing slash */
	if (rc)
		return rc;
	mode_t m = S_IFLNK | 0777;
	struct icaller who = owner_in(s, &w, &m);
	struct stat st;
	return entry_changed(s, ic_symlink(s->fs, &who, w.dir, w.name, target, &st), w.dir, w.name);
}

static int64_t do_link(struct session *s, const char *from, const char *to)
{
	/* In the order Linux finds the errors: the source, the new name's
	 * directory, the new name, then what may not have another name. */
	struct walked f, t;
	int rc = walk_existing(s, from, 0, &f);
	if (!rc)
		rc = walk_path(s->fs, &s->cred, to, 0, &t);
	if (!rc && t.dot)
		rc = -EEXIST;
	if (!rc)
		rc = may_create(s, &t);
	if (!rc && S_ISDIR(f.st.st_mode))
		rc = -EPERM;
	if (!rc && (f.must_dir || t.must_dir))
		rc = -ENOTDIR; /* a file named with a trailing slash */
	if (!rc && !(rc = pin(s, &f.st)))
		rc = pin(s, &t.dir_st);
	if (rc)
		return rc;
	struct stat st;
	rc = ic_link(s->fs, (uint64_t)f.st.st_ino, t.dir, t.name, &st);
	inode_changed(s, rc, (uint64_t)f.st.st_ino, -1);
	return entry_changed(s, rc, t.dir, t.name);
}

static int64_t do_rename(struct session *s, const char *from, const char *to, unsigned flags)
{
	/* In the order Linux finds the errors: both directories, then "." or
	 * ".." as a name, then a missing source. */
	struct walked f, t;
	int rc = walk_path(s->fs, &s->cred, from, 0, &f);
	if (!rc)
		rc = walk_path(s->fs, &s->cred, to, 0, &t);
	if (rc)
		return rc;
	if (f.dot || t.dot)
		return -EBUSY;
	if (!f.exists)
		return -ENOENT;
	if ((rc = may_delete(&s->cred, &f.dir_st, &f.st)))
		return rc;
	if (t.exists)
		rc = may_delete(&s->cred, &t.dir_st, &t.st);
	else
		rc = may_access(&s->cred, &t.dir_st, MAY_WRITE | MAY_EXEC);
	if (rc)
		return rc;
	/* A directory moved to another parent has its ".." rewritten. */
	if (S_ISDIR(f.st.st_mode) && f.dir != t.dir &&
	    (rc = may_access(&s->cred, &f.st, MAY_WRITE)))
		return rc;
	if (!S_ISDIR(f.st.st_mode) && (f.must_dir || t.must_dir))
		return -ENOTDIR; /* a file named with a trailing slash */
	if ((rc = pin(s, &f.dir_st)) || (rc = pin(s, &f.st)) || (rc = pin(s, &t.dir_st)) ||
	    (t.exists && (rc = pin(s, &t.st))))
		return rc;
	rc = ic_rename(s->fs, f.dir, f.name, t.dir, t.name, flags);
	inode_changed(s, rc, (uint64_t)f.st.st_ino, -1);
	if (t.exists)
		inode_changed(s, rc, (uint64_t)t.st.st_ino, -1);
	entry_changed(s, rc, f.dir, f.name);
	return entry_changed(s, rc, t.dir, t.name);
}

static int64_t do_readlink(struct session *s, const char *path, int64_t size, uint8_t *out,
                           uint32_t *outlen)
{
	if (size < 0 || size > PATH_MAX)
		return SERVE_END;
	if (size == 0)
		return -EINVAL; /* as readlink(2) */
	struct walked w;
	int rc = walk_existing(s, path, 0, &w);
	if (rc)
		return rc;
	if (!S_ISLNK(w.st.st_mode))
		return -EINVAL;
	ssize_t n = ic_readlink(s->fs, (uint64_t)w.st.st_ino, (char *)out, (size_t)size);
	if (n > 0)
		*outlen = (uint32_t)n;
	return n;
}

/* ---- attributes ---------------------------------------------------------- */

static int64_t do_chmod(struct session *s, const char *path, mode_t mode)
{
	struct walked w;
	int rc = walk_pinned(s, path, WALK_FOLLOW, &w);
	if (rc)
		return rc;
	if (!is_owner(&s->cred, &w.st))
		return -EPERM;
	/* As Linux: a caller outside the file's group cannot set its
	 * set-group-ID bit. */
	if (s->cred.uid != 0 && !cred_in_group(&s->cred, w.st.st_gid))
		mode &= ~(mode_t)S_ISGID;
	struct stat in = {.st_mode = mode & 07777}, st;
	/* A client writing the file in its own log would not clear the new
	 * bits: its writes go through the daemon from now on. */
	if (without_setid(mode) != mode)
		clients_revoke(s->fs, (uint64_t)w.st.st_ino);
	return inode_changed(s, ic_setattr(s->fs, (uint64_t)w.st.st_ino, IC_SET_MODE, &in, &st),
	                     (uint64_t)w.st.st_ino, -1);
}

static int64_t do_chown(struct session *s, const char *path, int64_t uid, int64_t gid)
{
	struct walked w;
	int rc = walk_pinned(s, path, WALK_FOLLOW, &w);
	if (rc)
		return rc;
	unsigned valid = 0;
	struct stat in = {0}, st;
	if (uid < -1 || uid > UINT32_MAX - 1 || gid < -1 || gid > UINT32_MAX - 1)
		return -EINVAL;
	if (uid != -1 && (uint32_t)uid != w.st.st_uid) {
		if (s->cred.uid != 0)
			return -EPERM;
		valid |= IC_SET_UID;
		in.st_uid = (uid_t)uid;
	}
	if (gid != -1 && (uint32_t)gid != w.st.st_gid) {
		if (s->cred.uid != 0 &&
		    (s->cred.uid != w.st.st_uid || !cred_in_group(&s->cred, (uint32_t)gid)))
			return -EPERM;
		valid |= IC_SET_GID;
		in.st_gid = (gid_t)gid;
	}
	if (!valid && s->cred.uid != 0 && s->cred.uid != w.st.st_uid && (uid != -1 || gid != -1))
		return -EPERM;
	mode_t kept = without_setid(w.st.st_mode);
	if (valid && S_ISREG(w.st.st_mode) && kept != w.st.st_mode) {
		valid |= IC_SET_MODE; /* a file given away loses its set-ID bits */
		in.st_mode = kept & 07777;
	}
	return inode_changed(
	    s, ic_setattr(s->fs, (uint64_t)w.st.st_ino, valid | IC_SET_CTIME, &in, &st),
	    (uint64_t)w.st.st_ino, -1);
}

/* Times: "now" needs ownership or write permission; any other time,
 * ownership (utimensat(2)). */
static int64_t do_utimens(struct session *s, const char *path, const struct request *rq)
{
	struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	struct timespec given[2]; /* the data follows the path: not aligned */
	const struct timespec *ts = now;
	if (rq->dlen == sizeof(given))
		ts = memcpy(given, rq->data, sizeof(given));
	else if (rq->dlen)
		return SERVE_END;
	struct walked w;
	int rc = walk_pinned(s, path, WALK_FOLLOW, &w);
	if (rc)
		return rc;
	int explicit_time = 0;
	unsigned valid = 0;
	struct stat in = {0}, st;
	for (int i = 0; i < 2; i++) {
		if (ts[i].tv_nsec == UTIME_OMIT)
			continue;
		if (ts[i].tv_nsec == UTIME_NOW) {
			valid |= i ? IC_SET_MTIME_NOW : IC_SET_ATIME_NOW;
			continue;
		}
		if (ts[i].tv_nsec < 0 || ts[i].tv_nsec > 999999999)
			return -EINVAL;
		explicit_time = 1;
		valid |= i ? IC_SET_MTIME : IC_SET_ATIME;
		if (i)
			in.st_mtim = ts[i];
		else
			in.st_atim = ts[i];
	}
	if (!valid)
		return 0; /* both UTIME_OMIT: nothing to change, nothing to check */
	if (!is_owner(&s->cred, &w.st)) {
		if (explicit_time)
			return -EPERM;
		if ((rc = may_access(&s->cred, &w.st, MAY_WRITE)))
			return rc;
	}
	return inode_changed(
	    s, ic_setattr(s->fs, (uint64_t)w.st.st_ino, valid | IC_SET_CTIME, &in, &st),
	    (uint64_t)w.st.st_ino, -1);
}

static int64_t do_truncate(struct session *s, const char *path, int64_t length)
{
	struct walked w;
	int rc = walk_pinned(s, path, WALK_FOLLOW, &w);
	if (rc)
		return rc;
	if (S_ISDIR(w.st.st_mode))
		return -EISDIR;
	if (length < 0)
		return -EINVAL;
	if ((rc = may_access(&s->cred, &w.st, MAY_WRITE)) ||
	    (rc = clear_setid(s, (uint64_t)w.st.st_ino)))
		return rc;
	struct stat in = {.st_size = length}, st;
	return inode_changed(s, ic_setattr(s->fs, (uint64_t)w.st.st_ino, IC_SET_SIZE, &in, &st),
	                     (uint64_t)w.st.st_ino, 0);
}

/* ---- extended attributes ------------------------------------------------- */

static int is_prefix(const char *name, const char *prefix)
{
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* May the caller set (write) or read an attribute called name of st? */
static int may_xattr(const struct session *s, const struct stat *st, const char *name, int write)
{
	if (is_prefix(name, "trusted."))
		return s->cred.uid == 0 ? 0 : write ? -EPERM : -ENODATA;
	if (is_prefix(name, "security."))
		return !write || s->cred.uid == 0 ? 0 : -EPERM;
	if (is_prefix(name, "user.")) {
		if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
			return write ? -EPERM : -ENODATA;
		return may_access(&s->cred, st, write ? MAY_WRITE : MAY_READ);
	}
	if (is_prefix(name, "system.posix_acl_"))
		return -EOPNOTSUPP; /* ACLs are not enforced: not stored either, as on the mount */
	if (is_prefix(name, "system."))
		return !write || is_owner(&s->cred, st) ? 0 : -EPERM;
	return 0; /* other namespaces: the volume answers (EOPNOTSUPP) */
}

static int64_t do_xattr(struct session *s, const struct request *rq, uint8_t *out, uint32_t *outlen)
{
	const int64_t *a = rq->h->a;
	int op = rq->h->op;
	struct walked w;
	int rc = walk_pinned(s, rq->str[0], WALK_FOLLOW, &w);
	if (rc)
		return rc;
	uint64_t ino = (uint64_t)w.st.st_ino;
	const char *name = rq->str[1];
	if (op == CTL_LISTXATTR) {
		if (a[0] < 0 || a[0] > 65536)
			return SERVE_END;
		ssize_t n = ic_listxattr(s->fs, ino, (char *)out, (size_t)a[0]);
		if (n > 0 && a[0] > 0 && s->cred.uid != 0) { /* trusted.* is root's */
			size_t kept = 0;
			for (size_t i = 0; i < (size_t)n; i += strlen((char *)out + i) + 1) {
				size_t len = strlen((char *)out + i) + 1;
				if (!is_prefix((char *)out + i, "trusted."))
					memmove(out + kept, out + i, len), kept += len;
			}
			n = (ssize_t)kept;
		}
		if (n > 0 && a[0] > 0)
			*outlen = (uint32_t)n;
		return n;
	}
	if ((rc = may_xattr(s, &w.st, name, op != CTL_GETXATTR)))
		return rc;
	switch (op) {
	case CTL_SETXATTR:
		return inode_changed(
		    s, ic_setxattr(s->fs, ino, name, rq->data, rq->dlen, (int)a[0]), ino, -1);
	case CTL_REMOVEXATTR:
		return inode_changed(s, ic_removexattr(s->fs, ino, name), ino, -1);
	default: { /* CTL_GETXATTR */
		if (a[0] < 0 || a[0] > 65536)
			return SERVE_END;
		ssize_t n = ic_getxattr(s->fs, ino, name, out, (size_t)a[0]);
		if (n > 0 && a[0] > 0)
			*outlen = (uint32_t)n;
		return n;
	}
	}
}

/* ---- directories --------------------------------------------------------- */

static int64_t do_opendir(struct session *s, const char *path)
{
	struct walked w;
	int rc = walk_existing(s, path, WALK_FOLLOW, &w);
	if (rc)
		return rc;
	if (!S_ISDIR(w.st.st_mode))
		return -ENOTDIR;
	if ((rc = may_access(&s->cred, &w.st, MAY_READ)) || (rc = pin(s, &w.st)))
		return rc;
	/* The handle keeps the pin, so that its number never names another
	 * directory, until closedir (or the client's end). */
	int h = dir_add(s, (uint64_t)w.st.st_ino);
	if (h >= 0)
		s->npins--;
	return h;
}

struct dir_batch {
	struct ctl_dirent *e;
	int n;
};

static int collect(void *arg, const char *name, uint64_t ino, unsigned char type, uint64_t next)
{
	struct dir_batch *b = arg;
	struct ctl_dirent *e = &b->e[b->n++];
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->next = next;
	e->type = type;
	size_t len = strlen(name);
	e->namelen = (uint8_t)len;
	memcpy(e->name, name, len);
	return b->n == CTL_DIR_BATCH;
}

static int64_t do_readdir(struct session *s, const int64_t *a, uint8_t *out, uint32_t *outlen)
{
	if (a[0] < 0 || a[0] >= s->ndirs || !s->dirs[a[0]])
		return -EBADF;
	struct dir_batch b = {(struct ctl_dirent *)out, 0};
	int rc = ic_readdir(s->fs, s->dirs[a[0]], (uint64_t)a[1], collect, &b);
	if (rc < 0)
		return rc;
	*outlen = (uint32_t)((size_t)b.n * sizeof(struct ctl_dirent));
	return b.n;
}

static int64_t do_closedir(struct session *s, int64_t h)
{
	if (h < 0 || h >= s->ndirs || !s->dirs[h])
		return -EBADF;
	ic_unpin(s->fs, s->dirs[h], 1);
	s->dirs[h] = 0;
	return 0;
}

/* ---- the table ----------------------------------------------------------- */

/* Strings each request carries. */
static const uint8_t strings_of[CTL_OP_END] = {
    [CTL_OPEN] = 1,      [CTL_TRUNCATE] = 1,  [CTL_STAT] = 1,        [CTL_LSTAT] = 1,
    [CTL_UNLINK] = 1,    [CTL_RENAME] = 2,    [CTL_MKDIR] = 1,       [CTL_RMDIR] = 1,
    [CTL_LINK] = 2,      [CTL_SYMLINK] = 2,   [CTL_READLINK] = 1,    [CTL_CHMOD] = 1,
    [CTL_CHOWN] = 1,     [CTL_UTIMENS] = 1,   [CTL_STATVFS] = 1,     [CTL_SETXATTR] = 2,
    [CTL_GETXATTR] = 2,  [CTL_LISTXATTR] = 1, [CTL_REMOVEXATTR] = 2, [CTL_OPENDIR] = 1,
    [CTL_DIR_GRANT] = 1, [CTL_TIER] = 2,
};

static int64_t volume_call(struct session *s, int op, uint8_t *out, uint32_t *outlen)
{
	switch (op) {
	case CTL_SYNC:
		return neg(cairn_sync(s->fs));
	case CTL_INFO:
		*outlen = sizeof(struct cairn_info);
		return neg(cairn_info(s->fs, (struct cairn_info *)out));
	case CTL_DIGEST:
		return neg(cairn_digest(s->fs));
	case CTL_MIGRATE:
		return neg(cairn_migrate(s->fs));
	default: /* CTL_SCRUB */
		return SERVE_END;
	}
}

/* Root's alone: a scrub reads every block of the volume. */
static int64_t do_scrub(struct session *s, int64_t cmd, uint8_t *out, uint32_t *outlen)
{
	if (cmd < CTL_SCRUB_STATUS_CMD || cmd > CTL_SCRUB_CANCEL_CMD)
		return SERVE_END;
	if (s->cred.uid != 0)
		return -EPERM;
	int rc = ctl_server_scrub(s->srv, (int)cmd, (struct ctl_scrub_status *)out);
	if (!rc)
		*outlen = sizeof(struct ctl_scrub_status);
	return rc;
}

/* Root's alone: the options are the whole volume's. */
static int64_t do_tune(struct session *s, const int64_t *a)
{
	if (s->cred.uid != 0)
		return -EPERM;
	for (int i = 0; i < 4; i++)
		if (a[i] < INT32_MIN || a[i] > INT32_MAX)
			return -EINVAL;
	struct cairn_tuning t = {(int)a[0], (int)a[1], (int)a[2], (int)a[3]};
	return neg(cairn_tune(s->fs, &t));
}

void serve_tier_draining(struct session *s, const char *name)
{
	for (int i = 0; i < s->ndrained; i++)
		if (!strcmp(s->drained[i], name))
			return;
	if (s->ndrained < CAIRN_MAX_TIERS && strlen(name) < sizeof(s->drained[0]))
		snprintf(s->drained[s->ndrained++], sizeof(s->drained[0]), "%s", name);
}

void serve_tiers_end(struct session *s)
{
	for (int i = 0; i < s->ndrained; i++)
		cairn_tier_keep(s->fs, s->drained[i]); /* ENOENT: removed meanwhile */
	s->ndrained = 0;
}

/* A tier command of root's (but the question which tiers drain), its
 * outcome in the reply whatever it is.  A tier this session drains is
 * taken back when the session ends, unless removed (serve_tiers_end). */
static int64_t do_tier(struct session *s, const struct request *rq, uint32_t *outlen)
{
	const int64_t *a = rq->h->a;
	const char *name = rq->str[0], *path = rq->str[1];
	if (s->cred.uid != 0 && a[0] != CTL_TIER_DRAINING_CMD)
		return -EPERM;
	if (a[1] < 0 || a[2] < 0)
		return -EINVAL;
	struct ctl_tier_reply *r = (struct ctl_tier_reply *)s->out;
	memset(r, 0, sizeof(*r));
	*outlen = sizeof(*r);
	int rc;
	switch (a[0]) {
	case CTL_TIER_ADD_CMD: {
		struct cairn_tier_opts t = {name, path, (uint64_t)a[1], (uint64_t)a[2]};
		rc = cairn_tier_add(s->fs, &t, a[3] != 0);
		break;
	}
	case CTL_TIER_EVACUATE_CMD:
		rc = cairn_tier_evacuate(s->fs, name, (uint64_t)a[1], &r->left);
		serve_tier_draining(s, name);
		break;
	case CTL_TIER_KEEP_CMD:
		rc = cairn_tier_keep(s->fs, name);
		break;
	case CTL_TIER_REMOVE_CMD:
		rc = cairn_tier_remove(s->fs, name);
		break;
	case CTL_TIER_GROW_CMD:
		rc = cairn_tier_grow(s->fs, name, (uint64_t)a[1]);
		break;
	case CTL_TIER_DRAINING_CMD: {
		uint32_t mask = 0;
		rc = cairn_tier_draining(s->fs, &mask);
		r->left = mask;
		break;
	}
	default:
		return -EINVAL;
	}
	if (rc) {
		r->err = errno;
		snprintf(r->msg, sizeof(r->msg), "%s", cairn_last_error());
	}
	return 0;
}

static int64_t dispatch(struct session *s, const struct request *rq, uint32_t *outlen)
{
	uint8_t *out = s->out;
	int op = rq->h->op;
	const int64_t *a = rq->h->a;
	const char *p = rq->str[0];
	*outlen = 0;
	if (op <= CTL_HELLO || op >= CTL_OP_END || rq->h->nstr != strings_of[op])
		return SERVE_END;
	switch (op) {
	case CTL_OPEN:
		return do_open(s, p, (int)a[0], (mode_t)a[1], a[2], outlen);
	case CTL_CLOG_START:
	case CTL_CLOG_SYNC:
	case CTL_OWN_OPENS:
		return serve_clog(s, rq, outlen);
	case CTL_CLOSE:
		return do_close(s, a[0]);
	case CTL_READ:
	case CTL_WRITE:
	case CTL_PREAD:
	case CTL_PWRITE:
		return do_io(s, rq, out, outlen);
	case CTL_LSEEK:
	case CTL_FSYNC:
	case CTL_FTRUNCATE:
	case CTL_FALLOCATE:
	case CTL_FSTAT:
		return do_fdcall(s, rq, out, outlen);
	case CTL_TRUNCATE:
		return do_truncate(s, p, a[0]);
	case CTL_STAT:
	case CTL_LSTAT:
		return do_stat(s, p, op == CTL_STAT ? WALK_FOLLOW : 0, out, outlen);
	case CTL_UNLINK:
	case CTL_RMDIR:
		return do_unlink(s, p, op == CTL_RMDIR);
	case CTL_RENAME:
		return do_rename(s, p, rq->str[1], (unsigned)a[0]);
	case CTL_MKDIR:
		return do_mkdir(s, p, (mode_t)a[0]);
	case CTL_LINK:
		return do_link(s, p, rq->str[1]);
	case CTL_SYMLINK:
		return do_symlink(s, p, rq->str[1]);
	case CTL_READLINK:
		return do_readlink(s, p, a[0], out, outlen);
	case CTL_CHMOD:
		return do_chmod(s, p, (mode_t)a[0]);
	case CTL_CHOWN:
		return do_chown(s, p, a[0], a[1]);
	case CTL_UTIMENS:
		return do_utimens(s, p, rq);
	case CTL_STATVFS: {
		struct walked w;
		int rc = walk_existing(s, p, WALK_FOLLOW, &w);
		*outlen = rc ? 0 : sizeof(struct statvfs);
		return rc ? rc : neg(cairn_statvfs(s->fs, "/", (struct statvfs *)out));
	}
	case CTL_SETXATTR:
	case CTL_GETXATTR:
	case CTL_LISTXATTR:
	case CTL_REMOVEXATTR:
		return do_xattr(s, rq, out, outlen);
	case CTL_OPENDIR:
		return do_opendir(s, p);
	case CTL_READDIR:
		return do_readdir(s, a, out, outlen);
	case CTL_CLOSEDIR:
		return do_closedir(s, a[0]);
	case CTL_SCRUB:
		return do_scrub(s, a[0], out, outlen);
	case CTL_DIR_GRANT: {
		struct walked w;
		uint64_t gen = clients_names_gen(s->fs);
		int rc = walk_pinned(s, p, WALK_FOLLOW, &w);
		return rc ? rc : serve_dir_grant(s, &w, gen, outlen);
	}
	case CTL_SET_ASIDE:
		return serve_set_aside(s, rq, outlen);
	case CTL_OPEN_INO:
		return do_open_ino(s, a[0], (int)a[1]);
	case CTL_TUNE:
		return do_tune(s, a);
	case CTL_TIER:
		return do_tier(s, rq, outlen);
	default:
		return volume_call(s, op, out, outlen);
	}
}

int64_t serve_request(struct session *s, const struct request *rq, uint32_t *outlen)
{
	/* Whatever a client wrote in its own log before this request began
	 * is applied first (src/libfs/clients.h). */
	int rc = clients_ingest(s->fs);
	if (rc)
		return rc;
	/* An unlink or a create may say which granted directory the client
	 * keeps the names of itself (src/client/client_names.c). */
	int op = rq->h->op;
	if (s->clog && (op == CTL_UNLINK || op == CTL_OPEN) && rq->h->a[3] > 0)
		clients_acting(s->clog, (uint64_t)rq->h->a[3]);
	int64_t r = PIN_LOST;
	for (int tries = 0; r == PIN_LOST && tries < PIN_TRIES; tries++) {
		r = dispatch(s, rq, outlen);
		unpin_all(s);
	}
	clients_acting(NULL, 0);
	/* A name that another process keeps replacing under the walk. */
	return r == PIN_LOST ? -EAGAIN : r;
}
