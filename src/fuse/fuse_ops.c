/*
 * fuse_ops.c - the FUSE low-level operations, each mapped onto one call of
 * libfs by inode number (src/libfs/icalls.h) or on an open cairn file
 * descriptor (include/cairn.h).
 *
 * Owns: the translation between FUSE requests and cairn calls: request
 * context to struct icaller, FUSE setattr bits to IC_SET_*, negative errno
 * to fuse_reply_err, directory cookies to FUSE offsets.
 * May call: libfuse3 (replies), src/libfs/icalls.h, include/cairn.h,
 * src/libfs/clients.h (grants), src/server/server.h (whether clients are
 * attached).
 *
 * FUSE inode numbers are cairn inode numbers: both name the root 1
 * (FUSE_ROOT_ID == CAIRN_ROOT_INO), so no table translates them.  Every
 * entry handed to the kernel pins its inode (ic_pin) until the kernel's
 * forget: a number the kernel still knows is never reused, and a removed
 * file or directory the kernel still holds (an open handle, a working
 * directory) stays readable as an orphan.  Permissions are checked by the
 * kernel (default_permissions); libfs checks none, like the native API.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h> /* RENAME_NOREPLACE */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/cairn_fuse.h"
#include "fuse/fuse_internal.h"
#include "libfs/clients.h"
#include "libfs/icalls.h"
#include "server/server.h"

_Static_assert(FUSE_ROOT_ID == CAIRN_ROOT_INO, "FUSE and cairn must name the root alike");

static cairn_fs *fs_of(fuse_req_t req)
{
	return ((struct cfuse *)fuse_req_userdata(req))->fs;
}

/* icalls return 0 or a negative errno; fuse_reply_err takes it positive,
 * and 0 is the reply of success for the calls that return no data. */
static void reply_rc(fuse_req_t req, int rc)
{
	if (rc == -EIO)
		cfuse_note_eio(fuse_req_userdata(req));
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

/* How long the kernel may keep an inode's attributes: not at all while a
 * client may change it in its own log, where the kernel hears of nothing
 * (src/libfs/clients.h), nor when a grant went while the request was
 * served: its last records, applied as it went, may be newer than the
 * attributes read (a size the kernel would take for the end of the file
 * until the timeout). */
static int grant_went(cairn_fs *fs)
{
	return clients_changes(fs) != cfuse_grant_changes_seen();
}

static double attr_timeout(cairn_fs *fs, uint64_t ino)
{
	return clients_granted(fs, ino) || grant_went(fs) ? 0.0 : CFUSE_TIMEOUT;
}

/* How long the kernel may keep the attributes an entry brings (a lookup,
 * a listing, a create): not at all while client processes are attached.
 * A client's change tells the kernel to drop the inode's attributes, and
 * the kernel drops any reply older than that for an inode it holds; but
 * an entry for an inode it does not hold yet becomes one only when the
 * process that asked runs again, after the reply is sent, and the drop
 * found nothing to drop: the inode would start with attributes from
 * before the change.  With no timeout, the next stat asks (a getattr,
 * which the kernel does protect). */
static double entry_attr_timeout(struct cfuse *cf, uint64_t ino)
{
	return ctl_server_sessions(cf->clients) ? 0.0 : attr_timeout(cf->fs, ino);
}

/* The entry of a name in directory parent: kept for the timeout, unless
 * a client holds the directory's grant and may change its names without
 * a request (libfs/clients.h, clients_entry_timeout). */
static double entry_timeout(cairn_fs *fs, uint64_t parent)
{
	/* A grant that went while the request was served may have let a
	 * client's name in after the lookup read the directory. */
	return grant_went(fs) ? 0 : clients_entry_timeout(fs, parent, CFUSE_TIMEOUT);
}

static void fill_entry(struct cfuse *cf, struct fuse_entry_param *e, uint64_t parent,
                       const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = st->st_ino;
	e->attr = *st;
	e->attr_timeout = entry_attr_timeout(cf, st->st_ino);
	e->entry_timeout = entry_timeout(cf->fs, parent);
}

/* Pins the inode for the kernel's lookup count before the reply (so a
 * forget can never come first); unpins if the reply did not arrive. */
static void reply_entry(fuse_req_t req, uint64_t parent, int rc, const struct stat *st)
{
	if (rc == 0)
		rc = ic_pin(fs_of(req), st->st_ino, 1);
	if (rc < 0) {
		reply_rc(req, rc);
		return;
	}
	struct fuse_entry_param e;
	fill_entry(fuse_req_userdata(req), &e, parent, st);
	if (fuse_reply_entry(req, &e))
		ic_unpin(fs_of(req), st->st_ino, 1);
}

static void reply_attr(fuse_req_t req, int rc, const struct stat *st)
{
	if (rc < 0)
		reply_rc(req, rc);
	else
		fuse_reply_attr(req, st, attr_timeout(fs_of(req), st->st_ino));
}

/* The creator of a new node: the caller, except that a directory with the
 * set-group-ID bit gives new nodes its group, and new directories the bit
 * (what Linux file systems do by default; libfs knows nothing of it). */
static void creator(fuse_req_t req, uint64_t parent, struct icaller *who, mode_t *mode)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	who->uid = c->uid;
	who->gid = c->gid;
	struct stat pst;
	if (ic_getattr(fs_of(req), parent, &pst) == 0 && (pst.st_mode & S_ISGID)) {
		who->gid = pst.st_gid;
		if (S_ISDIR(*mode))
			*mode |= S_ISGID;
	}
}

/* ---- set-user-ID and set-group-ID ---------------------------------------- */

/* Whether the caller of req is a member of group gid (its file-system gid
 * or one of its supplementary groups). */
static bool caller_in_group(fuse_req_t req, gid_t gid)
{
	if (fuse_req_ctx(req)->gid == gid)
		return true;
	gid_t groups[64];
	int n = fuse_req_getgroups(req, 64, groups);
	if (n > 64) {
		gid_t *all = malloc((size_t)n * sizeof(gid_t));
		int got = all ? fuse_req_getgroups(req, n, all) : -1;
		bool in = false;
		for (int i = 0; i < got && i < n; i++)
			in |= all[i] == gid;
		free(all);
		return in;
	}
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* The set-ID bits of a regular file that Linux clears on a change by a
 * caller without CAP_FSETID (the kernel flags such requests: see
 * fuse_wire.c): set-user-ID, and set-group-ID when group-execute is set or
 * the caller is not in the file's group (setattr_should_drop_suidgid).
 * A chown clears them whoever makes it, except that set-group-ID without
 * group-execute stays for a caller in the group or privileged; its request
 * is flagged whatever the caller's capabilities, so uid 0 stands for
 * CAP_FSETID there. */
static mode_t setid_to_clear(fuse_req_t req, const struct stat *st, bool chown)
{
	mode_t m = st->st_mode, clear = 0;
	if (!S_ISREG(m))
		return 0;
	if (m & S_ISUID)
		clear |= S_ISUID;
	if ((m & S_ISGID) && ((m & S_IXGRP) || !((chown && fuse_req_ctx(req)->uid == 0) ||
	                                         caller_in_group(req, st->st_gid))))
		clear |= S_ISGID;
	return clear;
}

/* Before a flagged write or O_TRUNC open (flagged is the request's flag),
 * or a fallocate: clears what setid_to_clear says, as its own change
 * (Linux too changes the mode before the data). */
static int clear_setid(fuse_req_t req, fuse_ino_t ino, bool flagged)
{
	struct cfuse *cf = fuse_req_userdata(req);
	if (!cfuse_killpriv_v2(cf) || !flagged)
		return 0;
	struct stat st;
	int rc = ic_getattr(cf->fs, ino, &st);
	if (rc < 0)
		return rc;
	mode_t clear = setid_to_clear(req, &st, false);
	if (!clear)
		return 0;
	st.st_mode &= ~clear;
	rc = ic_setattr(cf->fs, ino, IC_SET_MODE, &st, &st);
	/* After an O_TRUNC open or a fallocate the kernel drops the times
	 * and the size it keeps, not the mode: `stat -c %a` (the mode
	 * alone) showed the set-ID bits for a second more.  Only the
	 * attributes (off -1), which the kernel drops without waiting for
	 * this request. */
	if (rc == 0 && cf->se)
		fuse_lowlevel_notify_inval_inode(cf->se, ino, -1, 0);
	return rc;
}

/* ---- names --------------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* The first protocol to clear set-ID bits in the file system: the
	 * kernel still asks getxattr("security.capability") before each
	 * write.  cairn takes the second (fuse_wire.c) when the kernel
	 * offers it, and otherwise leaves the clearing to the kernel, which
	 * sends the new mode through setattr. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* Writes must reach cairn when write() is called: that is when they
	 * become durable.  A write-back cache would defer them. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* Every change of a file's data goes through this kernel, so its
	 * page cache is never stale: no need to drop a file's pages whenever
	 * its mtime changes (which every write does). */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* One write() of up to 1 MiB is one WRITE request, so one record
	 * (set_open_flags): libfuse 3.14's default, the most its buffer
	 * holds, and the kernel's default limit of 256 pages.  libfuse
	 * derives max_pages from it. */
	conn->max_write = 1u << 20;
	/* Directory streams need no state (see op_opendir): the kernel may
	 * open and release directories without asking. */
	struct cfuse *cf = userdata;
	cf->stateless_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int rc = ic_lookup(fs_of(req), parent, name, &st);
	if (rc == -ENOENT) {
		/* A negative entry, cached for the timeout (none in a directory
		 * a client holds): the kernel forgets it when this process
		 * creates the name. */
		struct fuse_entry_param e = {.ino = 0,
		                             .entry_timeout = entry_timeout(fs_of(req), parent)};
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, parent, rc, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	if (ino != FUSE_ROOT_ID)
		ic_unpin(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		if (forgets[i].ino != FUSE_ROOT_ID)
			ic_unpin(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	reply_attr(req, ic_getattr(fs_of(req), ino, &st), &st);
}

/* FUSE_SET_ATTR_* to IC_SET_*.  The kernel sends ATIME together with
 * ATIME_NOW (MTIME likewise); NOW wins, so that cairn takes its own clock. */
static unsigned ic_valid(int to_set)
{
	static const struct {
		int fuse;
		unsigned ic;
	} map[] = {
	    {FUSE_SET_ATTR_MODE, IC_SET_MODE},
	    {FUSE_SET_ATTR_UID, IC_SET_UID},
	    {FUSE_SET_ATTR_GID, IC_SET_GID},
	    {FUSE_SET_ATTR_SIZE, IC_SET_SIZE},
	};
	unsigned v = 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (to_set & map[i].fuse)
			v |= map[i].ic;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		v |= IC_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		v |= IC_SET_ATIME;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		v |= IC_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		v |= IC_SET_MTIME;
	if (!v && (to_set & FUSE_SET_ATTR_CTIME))
		v |= IC_SET_CTIME;
	return v;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	struct stat st;
	unsigned valid = ic_valid(to_set);
	struct cfuse *cf = fuse_req_userdata(req);
	/* A flagged truncate or chown (see setid_to_clear) clears set-ID bits
	 * in the same record as the change. */
	if (cfuse_killpriv_v2(cf) && cfuse_request_kills_suidgid() &&
	    (valid & (IC_SET_SIZE | IC_SET_UID | IC_SET_GID))) {
		int rc = ic_getattr(cf->fs, ino, &st);
		if (rc < 0) {
			reply_rc(req, rc);
			return;
		}
		mode_t clear = setid_to_clear(req, &st, valid & (IC_SET_UID | IC_SET_GID));
		if (clear) {
			if (!(valid & IC_SET_MODE))
				attr->st_mode = st.st_mode;
			attr->st_mode &= ~clear;
			valid |= IC_SET_MODE;
		}
	}
	/* A client writing the file in its own log would not clear new
	 * set-ID bits: its writes go through the daemon from now on. */
	mode_t m = attr->st_mode;
	if ((valid & IC_SET_MODE) &&
	    ((m & S_ISUID) || (m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)))
		clients_revoke(cf->fs, ino);
	/* An empty setattr is a change the kernel did not spell out, such as
	 * chown(f, -1, -1): Linux still updates ctime. */
	int rc = ic_setattr(cf->fs, ino, valid ? valid : IC_SET_CTIME, attr, &st);
	reply_attr(req, rc, &st);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = ic_readlink(fs_of(req), ino, buf, sizeof(buf) - 1);
	if (n < 0) {
		reply_rc(req, (int)n);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct icaller who;
	struct stat st;
	creator(req, parent, &who, &mode);
	reply_entry(req, parent, ic_mknod(fs_of(req), &who, parent, name, mode, rdev, &st), &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	/* The kernel sends the permission bits only. */
	op_mknod(req, parent, name, S_IFDIR | (mode & 07777), 0);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct icaller who;
	struct stat st;
	mode_t mode = S_IFLNK;
	creator(req, parent, &who, &mode);
	reply_entry(req, parent, ic_symlink(fs_of(req), &who, parent, name, link, &st), &st);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct stat st;
	reply_entry(req, newparent, ic_link(fs_of(req), ino, newparent, newname, &st), &st);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_rc(req, ic_unlink(fs_of(req), parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_rc(req, ic_rmdir(fs_of(req), parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	/* RENAME_EXCHANGE (and any flag but NOREPLACE) is not supported:
	 * EINVAL is what Linux file systems answer for a flag they lack. */
	if (flags & ~(unsigned)RENAME_NOREPLACE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	unsigned cflags = (flags & RENAME_NOREPLACE) ? CAIRN_RENAME_NOREPLACE : 0;
	reply_rc(req, ic_rename(fs_of(req), parent, name, newparent, newname, cflags));
}

/* ---- open files ---------------------------------------------------------- */

/* keep_cache: the kernel keeps a file's cached pages across opens.  They
 * are never stale (every change goes through the kernel), and never those
 * of another file: cairn reuses an inode number only after the kernel has
 * forgotten it (ic_pin), which it does when it evicts the inode and its
 * pages.
 *
 * direct_io, for descriptors opened write-only: one write() must arrive
 * as one WRITE request, because each request becomes one record, atomic
 * after a crash.  Through the page cache the kernel ends a request after
 * a partly written page that is not cached (a write at offset 3507 of a
 * file not read since it was opened arrives as 589 bytes, then the rest),
 * and a crash between the two requests would leave half the write.  With
 * direct_io the kernel sends the caller's buffer itself, in requests of
 * max_write bytes (1 MiB) and at most max_pages pages of the buffer, and
 * drops the cached pages the write covers.  Reads through such a
 * descriptor would bypass the page cache too, each one a request: a
 * write-only descriptor cannot read, so it alone pays nothing for it. */
static void set_open_flags(struct fuse_file_info *fi, int fd, uint64_t owner, int granted)
{
	fi->fh = (uint64_t)(uint32_t)fd | owner << 32;
	/* A grant given by this open: what the kernel keeps of the file may
	 * not stay (the client's writes will not pass through it). */
	fi->keep_cache = !granted;
	fi->noflush = 1; /* flush does nothing: spare the kernel the request */
	/* An open a client owns (a preloaded program's) keeps the page cache:
	 * the client drops the pages each of its local writes covers
	 * (src/shim/shim.h) before the write returns. */
	fi->direct_io = (fi->flags & O_ACCMODE) == O_WRONLY;
}

/* The volume's descriptor behind an open, and the client that owns it
 * (clients_front_open_by), both kept in the handle. */
static int vfd_of(const struct fuse_file_info *fi)
{
	return (int)(uint32_t)fi->fh;
}

/* The grant the open held goes first: its last records are applied while
 * the file is still open, which an unlinked file needs to still be
 * there. */
static void front_close(fuse_req_t req, uint64_t ino, uint64_t fh)
{
	clients_front_close_by(fs_of(req), ino, fh >> 32);
	cairn_close(fs_of(req), (int)(uint32_t)fh);
}

/* Whether a client's process may write ino in its own log: a regular
 * file whose set-ID bits its writes need not clear (only the daemon
 * clears them; root's writes clear none). */
static int grantable(fuse_req_t req, const struct stat *st)
{
	return S_ISREG(st->st_mode) &&
	       (fuse_req_ctx(req)->uid == 0 || !(st->st_mode & (S_ISUID | S_ISGID)));
}

/* *granted: the opener's client was granted ino by this open. */
static uint64_t front_open(fuse_req_t req, uint64_t ino, int flags, const struct stat *st,
                           int *granted)
{
	return clients_front_open_by(fs_of(req), ino, (flags & O_ACCMODE) != O_RDONLY,
	                             (int)fuse_req_ctx(req)->pid, st && grantable(req, st),
	                             granted);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Only an open for writing may bring a grant: only it needs the
	 * file's type and mode. */
	struct stat st;
	int granted, write = (fi->flags & O_ACCMODE) != O_RDONLY;
	uint64_t owner =
	    front_open(req, ino, fi->flags,
	               write && ic_getattr(fs_of(req), ino, &st) == 0 ? &st : NULL, &granted);
	/* Its attributes too (the client's writes change the size): only
	 * them, which the kernel drops without waiting for this request. */
	struct cfuse *cf = fuse_req_userdata(req);
	if (granted && cf->se)
		fuse_lowlevel_notify_inval_inode(cf->se, ino, -1, 0);
	/* Only an O_TRUNC open is flagged. */
	int fd = clear_setid(req, ino, cfuse_request_kills_suidgid());
	if (fd == 0)
		fd = ic_open(fs_of(req), ino, fi->flags);
	if (fd < 0) {
		clients_front_close_by(fs_of(req), ino, owner);
		reply_rc(req, fd);
		return;
	}
	set_open_flags(fi, fd, owner, granted);
	/* A reply that fails means the request was interrupted: the kernel
	 * will send no release for this open, so close it here. */
	if (fuse_reply_open(req, fi))
		front_close(req, ino, fi->fh);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct icaller who;
	struct stat st;
	int fd;
	/* The kernel flags an O_TRUNC create by a caller without CAP_FSETID
	 * to clear set-ID bits, but it creates only names it found missing:
	 * the file is new, and its bits are the ones the caller just chose. */
	creator(req, parent, &who, &mode);
	int rc = ic_create(fs_of(req), &who, parent, name, mode, fi->flags, &fd, &st);
	if (rc < 0) {
		reply_rc(req, rc);
		return;
	}
	int granted;
	uint64_t owner = front_open(req, st.st_ino, fi->flags, &st, &granted);
	struct fuse_entry_param e;
	fill_entry(fuse_req_userdata(req), &e, parent,
	           &st); /* a granted inode's attributes: no timeout */
	set_open_flags(fi, fd, owner, granted);
	if (ic_pin(fs_of(req), st.st_ino, 1) < 0) {
		front_close(req, st.st_ino, fi->fh);
		reply_rc(req, -ENOENT);
		return;
	}
	if (fuse_reply_create(req, &e, fi)) {
		ic_unpin(fs_of(req), st.st_ino, 1);
		front_close(req, st.st_ino, fi->fh);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = cairn_pread(fs_of(req), vfd_of(fi), buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	int rc = clear_setid(req, ino, cfuse_request_kills_suidgid());
	if (rc < 0) {
		reply_rc(req, rc);
		return;
	}
	/* In sync mode the write is durable when it returns, so the reply
	 * (which lets write() return) must come after it.  fcntl(F_SETFL)
	 * changes O_APPEND in the kernel only: each write says what the
	 * file's flags are now. */
	ssize_t n = ic_pwrite(fs_of(req), vfd_of(fi), buf, size, off, (fi->flags & O_APPEND) != 0);
	if (n < 0)
		reply_rc(req, -errno);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Every write already reached cairn; close() promises nothing more. */
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* The kernel ignores the result of release. */
	front_close(req, ino, fi->fh);
	fuse_reply_err(req, 0);
}

/* In sync mode every change is durable before its request is answered,
 * so fsync and fsyncdir have nothing to wait for.  ENOSYS tells the kernel
 * so: it then answers every later fsync (fsyncdir) of the mount itself,
 * without a round trip to this process. */
static bool fsync_is_free(fuse_req_t req)
{
	return ((struct cfuse *)fuse_req_userdata(req))->sync_mode;
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	if (fsync_is_free(req)) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fuse_reply_err(req, cairn_fsync(fs_of(req), vfd_of(fi)) ? errno : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
	/* Linux clears set-ID bits on fallocate as on write, but the kernel
	 * flags no fallocate request: uid 0 stands for CAP_FSETID. */
	int rc = clear_setid(req, ino, fuse_req_ctx(req)->uid != 0);
	if (rc < 0) {
		reply_rc(req, rc);
		return;
	}
	/* cairn_fallocate knows the modes: 0 and KEEP_SIZE set blocks aside
	 * (0 extends the size), PUNCH_HOLE|KEEP_SIZE frees; others EOPNOTSUPP. */
	rc = cairn_fallocate(fs_of(req), vfd_of(fi), mode, off, len);
	fuse_reply_err(req, rc ? errno : 0);
}

/* ---- directories --------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Directory streams need no state: the FUSE offset is cairn's cookie.
	 * ENOSYS tells a kernel that can do without opendir and releasedir
	 * requests to stop sending them. */
	if (((struct cfuse *)fuse_req_userdata(req))->stateless_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

struct dirbuf {
	fuse_req_t req;
	cairn_fs *fs;
	uint64_t dir;
	int plus;
	char *buf;
	size_t size, used;
};

/* The entry readdirplus sends for one name.  "." and ".." get no lookup
 * (the kernel takes no lookup count for them), nor does an entry whose
 * name changed since the directory was read: ino 0 tells the kernel to
 * take only the name. */
/* An entry without attributes: the kernel will look the name up itself. */
static void bare_entry(struct fuse_entry_param *e, uint64_t ino, unsigned char type)
{
	memset(e, 0, sizeof(*e));
	e->attr.st_ino = ino;
	e->attr.st_mode = (mode_t)type << 12;
}

static void plus_entry(struct dirbuf *d, const char *name, uint64_t ino, unsigned char type,
                       struct fuse_entry_param *e)
{
	struct stat st;
	int dot = !strcmp(name, ".") || !strcmp(name, "..");
	if (!dot && ic_lookup(d->fs, d->dir, name, &st) == 0 && (uint64_t)st.st_ino == ino) {
		fill_entry(fuse_req_userdata(d->req), e, d->dir, &st);
		return;
	}
	bare_entry(e, ino, type);
}

/* ic_readdir's callback (called without the volume lock): adds one entry
 * if it fits; `next` becomes the entry's offset, so that the kernel
 * resumes after it.  Returns 1 when the buffer is full. */
static int add_entry(void *arg, const char *name, uint64_t ino, unsigned char type, uint64_t next)
{
	struct dirbuf *d = arg;
	char *at = d->buf + d->used;
	size_t room = d->size - d->used, n;
	if (d->plus) {
		if (fuse_add_direntry_plus(d->req, NULL, 0, name, NULL, 0) > room)
			return 1;
		struct fuse_entry_param e;
		plus_entry(d, name, ino, type, &e);
		/* A filled entry counts as a lookup: pin it like one. */
		if (e.ino && ic_pin(d->fs, e.ino, 1) < 0)
			bare_entry(&e, ino, type);
		n = fuse_add_direntry_plus(d->req, at, room, name, &e, (off_t)next);
		if (n > room && e.ino)
			ic_unpin(d->fs, e.ino, 1);
	} else {
		struct stat st = {.st_ino = ino, .st_mode = (mode_t)type << 12};
		n = fuse_add_direntry(d->req, at, room, name, &st, (off_t)next);
	}
	if (n > room)
		return 1;
	d->used += n;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct dirbuf d = {.req = req, .fs = fs_of(req), .dir = ino, .plus = plus, .size = size};
	d.buf = malloc(size ? size : 1);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = ic_readdir(d.fs, ino, (uint64_t)off, add_entry, &d);
	/* An error after some entries were added: send those, the next call
	 * reports it. */
	if (rc < 0 && d.used == 0)
		reply_rc(req, rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	if (fsync_is_free(req)) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* Batch mode: this makes every logged change durable, which covers
	 * the directory's. */
	fuse_reply_err(req, cairn_sync(fs_of(req)) ? errno : 0);
}

/* ---- the volume, permissions, extended attributes ------------------------ */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	if (cairn_statvfs(fs_of(req), "/", &sv))
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* With default_permissions the kernel checks access() itself and does not
 * ask; this answers anyway if asked (F_OK, and the mode bits for the
 * caller's uid and primary gid). */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct stat st;
	int rc = ic_getattr(fs_of(req), ino, &st);
	if (rc < 0 || mask == F_OK) {
		reply_rc(req, rc);
		return;
	}
	const struct fuse_ctx *c = fuse_req_ctx(req);
	mode_t bits;
	if (c->uid == 0)
		bits = (mask & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111) ? 6 : 7;
	else if (c->uid == st.st_uid)
		bits = (st.st_mode >> 6) & 7;
	else if (c->gid == st.st_gid)
		bits = (st.st_mode >> 3) & 7;
	else
		bits = st.st_mode & 7;
	fuse_reply_err(req, ((unsigned)mask & ~bits & 7) ? EACCES : 0);
}

/* POSIX ACLs are xattrs to libfs, but the kernel would not enforce them
 * (no FUSE_CAP_POSIX_ACL: it checks the mode bits only), so an ACL set
 * here would promise an access control that does not happen.  Refused, as
 * by a file system without ACL support. */
static int is_acl(const char *name)
{
	return !strncmp(name, "system.posix_acl_", 17);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	if (is_acl(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	/* XATTR_CREATE and XATTR_REPLACE have cairn's values (1 and 2). */
	reply_rc(req, ic_setxattr(fs_of(req), ino, name, value ? value : "", size, flags));
}

/* getxattr and listxattr: with size 0 the caller asks how big the value
 * is; otherwise the value, or ERANGE if it does not fit. */
static void reply_xattr_value(fuse_req_t req, size_t size, ssize_t n, const char *buf)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

/* `cairn stat MOUNTPOINT`: the daemon's view of the volume. */
static void reply_info(fuse_req_t req, size_t size)
{
	struct cairn_info in;
	if (cairn_info(fs_of(req), &in)) {
		fuse_reply_err(req, EIO);
		return;
	}
	reply_xattr_value(req, size, size && size < sizeof(in) ? -ERANGE : (ssize_t)sizeof(in),
	                  (const char *)&in);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (is_acl(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (ino == FUSE_ROOT_ID && !strcmp(name, CFUSE_INFO_XATTR)) {
		reply_info(req, size);
		return;
	}
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_xattr_value(req, size, ic_getxattr(fs_of(req), ino, name, buf, size), buf);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_xattr_value(req, size, ic_listxattr(fs_of(req), ino, buf, size), buf);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (is_acl(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	reply_rc(req, ic_removexattr(fs_of(req), ino, name));
}

const struct fuse_lowlevel_ops cfuse_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .access = op_access,
    .create = op_create,
    .fallocate = op_fallocate,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
};
