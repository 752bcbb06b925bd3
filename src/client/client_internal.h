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

/* The count of the mount's requests that may have left the kernel
 * holding pages of g's inode (struct clog_grant, kernel_reads). */
uint64_t client_log_kernel_reads(const struct client_log *l, const struct client_grant *g);
/* The live grant of ino in the state file, if any: 1 and *g. */
int client_log_find_grant(const struct client_log *l, uint64_t ino, struct client_grant *g);

/* CTL_CLOG_SYNC: 0 and *out, or -1 with errno. */
int client_sync(struct client *c, uint64_t seq, uint64_t want, struct ctl_clog_sync *out);

#endif
