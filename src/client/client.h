/*
 * client.h - the process side of cairn_attach: a connection to the daemon
 * that serves a volume, and each call of include/cairn.h as one request
 * over it.
 *
 * Owns: struct client (the socket, and whether the daemon is still there).
 * May call: src/proto/ctl.h, libc.  Called by: src/libfs, whose public
 * calls hand a handle made by cairn_attach over to these.
 *
 * Every function returns as the public call does: a result, or -1 with
 * errno set.  Threads may share a client: requests are sent one at a time.
 */
#ifndef CAIRN_CLIENT_H
#define CAIRN_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "cairn.h"

struct client;
struct ctl_dirent;

/* Connects to the daemon serving path (a volume directory or a cairn
 * mount point).  NULL with errno, and a sentence in err. */
struct client *client_attach(const char *path, char *err, size_t errlen);
void client_detach(struct client *c);

int client_open(struct client *c, const char *path, int flags, mode_t mode);
int client_close(struct client *c, int fd);

/* ---- for the preload shim (src/shim): files opened through the mount ---- */
/* The process's opens for writing through the mount become this client's
 * own (on) or no longer (src/libfs/clients.h); starts the private log. */
int client_own_opens(struct client *c, int on);
/* The descriptors the client holds itself (its socket, and its log's file
 * for the file kind), up to max of them into fds; their number.  A program that closes descriptors
 * it did not open (closefrom, close_range) must leave these: without the socket the daemon ends the
 * session, and a number the program reused would get the client's bytes. */
int client_own_fds(struct client *c, int *fds, int max);
/* fd, one of the client's own, moves to another number: the program is
 * about to reuse this one (dup2 onto it).  0, or -1 with errno. */
int client_vacate_fd(struct client *c, int fd);
/* A descriptor for inode ino, which the process has open through the
 * mount for writing with flags, under the grant those opens hold (the
 * daemon gives it at the open: clients_front_open_by), found in the
 * state file with no message; -1 if there is none. */
int client_adopt_local(struct client *c, uint64_t ino, int flags);
/* Writes count bytes at off (at the end for O_APPEND) into the log,
 * durably: 1 when done, 0 when the descriptor has no grant (any longer)
 * and the caller must write another way, -1 with errno. */
int client_local_pwrite(struct client *c, int fd, const void *buf, size_t count, off_t off);
/* The same for the bytes iov gathers, written as one record: no copy is
 * made of them first, and nothing is allocated. */
int client_local_pwritev(struct client *c, int fd, const struct iovec *iov, int iovcnt, off_t off);
/* After a local write of fd: how many requests that may have left the
 * kernel holding pages of its file the daemon has served under the
 * grant (1 and *count; 0 when fd has no grant).  While the count does not
 * move, the kernel holds no page it did not hold before: a caller that
 * dropped them all after it last saw this count need not drop any. */
int client_local_kernel_reads(struct client *c, int fd, uint64_t *count);
/* ftruncate of a granted descriptor, in the log (1, 0, -1 as client_local_pwrite; a
 * negative length is the daemon's to refuse). */
int client_local_ftruncate(struct client *c, int fd, off_t length);
int client_ftruncate(struct client *c, int fd, off_t length);
ssize_t client_read(struct client *c, int fd, void *buf, size_t count);
ssize_t client_write(struct client *c, int fd, const void *buf, size_t count);
ssize_t client_pread(struct client *c, int fd, void *buf, size_t count, off_t off);
ssize_t client_pwrite(struct client *c, int fd, const void *buf, size_t count, off_t off);
off_t client_lseek(struct client *c, int fd, off_t off, int whence);
int client_fdcall(struct client *c, int op, int fd, int64_t a1, int64_t a2, int64_t a3);
int client_fstat(struct client *c, int fd, struct stat *st);
int client_stat(struct client *c, const char *path, struct stat *st, int follow);
int client_path(struct client *c, int op, const char *p1, const char *p2, int64_t a0, int64_t a1);
ssize_t client_readlink(struct client *c, const char *path, char *buf, size_t size);
int client_utimens(struct client *c, const char *path, const struct timespec times[2]);
int client_statvfs(struct client *c, const char *path, struct statvfs *sv);
int client_setxattr(struct client *c, const char *path, const char *name, const void *value,
                    size_t size, int flags);
ssize_t client_getxattr(struct client *c, const char *path, const char *name, void *value,
                        size_t size);
ssize_t client_listxattr(struct client *c, const char *path, char *list, size_t size);
int client_opendir(struct client *c, const char *path);
/* Up to CTL_DIR_BATCH entries of handle h after cookie, into e; their
 * number (0 at the end), or -1 with errno. */
int client_readdir(struct client *c, int h, uint64_t cookie, struct ctl_dirent *e);
int client_closedir(struct client *c, int h);
int client_info(struct client *c, struct cairn_info *out);
/* cairn_scrub, run by the daemon. */
int client_scrub(struct client *c, struct cairn_scrub *s);
/* A request with no arguments beyond its op (sync, digest, migrate). */
int client_volume_call(struct client *c, int op);
/* cairn_tune through the daemon (root only). */
int client_tune(struct client *c, const struct cairn_tuning *t);
/* A tier command (CTL_TIER_*_CMD) done by the daemon: 0 with *r its
 * outcome, or -1 (errno) when it could not be asked. */
struct ctl_tier_reply;
int client_tier(struct client *c, int cmd, const char *name, const char *path, uint64_t n,
                uint64_t unit, int force, struct ctl_tier_reply *r);

#endif
