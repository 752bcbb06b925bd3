/*
 * client_internal.h - what client.c and client_log.c share: a descriptor's
 * grant, the private log, and the round trip that catches the daemon up.
 */
#ifndef CAIRN_CLIENT_INTERNAL_H
#define CAIRN_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "client/client.h"
#include "proto/ctl.h"

/* A descriptor's grant of local writes: where its live epoch is in the
 * state file, and the epoch its records carry.  index CLOG_GRANTS (or
 * more): none, or revoked. */
struct client_grant {
	uint32_t index;
	uint64_t epoch;
};

struct client_log;
/* Maps the log and the state file the daemon passed; NULL on failure
 * (the client then writes through the daemon). */
struct client_log *client_log_open(int log_fd, int state_fd, const struct ctl_clog *info);
void client_log_close(struct client_log *l);
/* The log's own descriptor (the file kind), or -1; moving it to the
 * lowest free number from min on. */
int client_log_fd(const struct client_log *l);
int client_log_move_fd(struct client_log *l, int min);
/* Where the client's own descriptors go: high, out of the way of a
 * program that expects open() to return the lowest free number. */
int client_fd_floor(void);

/* Writes the count bytes that iov gathers at off of inode ino under
 * grant g into the log as one record, durably: 1 when done, 0 when the
 * caller must send the write to the daemon instead (and g may have been
 * dropped), -1 with errno. */
int client_log_write(struct client *c, struct client_log *l, struct client_grant *g, uint64_t ino,
                     const struct iovec *iov, int iovcnt, size_t count, uint64_t off);
/* The same for an ftruncate of inode ino to size. */
int client_log_truncate(struct client *c, struct client_log *l, struct client_grant *g,
                        uint64_t ino, uint64_t size);

/* A create of name (len bytes) in directory dir, under the directory's
 * grant, making the file ino (set aside for it) with mode's permission
 * bits; an unlink of name, which names ino.  As client_log_write: 1, 0
 * (the daemon must do it), -1 with errno. */
int client_log_create(struct client *c, struct client_log *l, struct client_grant *dir_grant,
                      uint64_t dir, uint64_t ino, uint32_t mode, const char *name, size_t len);
int client_log_unlink(struct client *c, struct client_log *l, struct client_grant *dir_grant,
                      uint64_t dir, uint64_t ino, const char *name, size_t len);
/* Whether grant g still holds. */
int client_log_live(const struct client_log *l, const struct client_grant *g);

/* The count of the mount's requests that may have left the kernel
 * holding pages of g's inode (struct clog_grant, kernel_reads). */
uint64_t client_log_kernel_reads(const struct client_log *l, const struct client_grant *g);
/* The live grant of ino in the state file, if any: 1 and *g. */
int client_log_find_grant(const struct client_log *l, uint64_t ino, struct client_grant *g);

/* One request to the daemon (client.c): the reply's result, or -1 with
 * errno; the reply's payload into out. */
int64_t client_request(struct client *c, int op, const int64_t a[4], const char *const *strs,
                       int nstr, const void *data, size_t dlen, void *out, size_t outlen);
/* The private log, or NULL. */
struct client_log *client_log_of(struct client *c);

/* ---- names in the log (client_names.c) ---- */
struct client_names;
struct client_names *client_names_new(void);
void client_names_free(struct client_names *n);
/* A create of path in the log: 1 with *ino and *g (the new file's grant),
 * 0 when the daemon must do it, -1 with errno (EEXIST). */
int client_names_create(struct client *c, struct client_names *n, const char *path, int flags,
                        mode_t mode, uint64_t *ino, struct client_grant *g);
/* An unlink of path in the log: 1, 0 when the daemon must do it, -1 with
 * errno. */
int client_names_unlink(struct client *c, struct client_names *n, const char *path);
/* A round trip that may change a name of path's directory: the names'
 * lock is held across it (begin returns the directory's inode, 0 if the
 * client holds no grant of it, to tell the daemon), and done says how it
 * went (the name now exists: 1, is gone: 0; ino if known). */
uint64_t client_names_begin(struct client *c, struct client_names *n, const char *path);
void client_names_done(struct client_names *n, const char *path, int rc, int exists, uint64_t ino);
/* The client's descriptors of made file ino: one more, or one less. */
void client_names_opened(struct client_names *n, uint64_t ino, int delta);

/* CTL_CLOG_SYNC: 0 and *out, or -1 with errno. */
int client_sync(struct client *c, uint64_t seq, uint64_t want, struct ctl_clog_sync *out);

#endif
