/*
 * server.h - the control plane's front door: the daemon that serves a
 * volume (`cairn mount`, `cairn serve`) accepts client processes
 * (cairn_attach) on the volume's Unix socket and serves their calls.
 *
 * Owns: the socket VOLUME/cairn.sock and the clients' sessions.
 * May call: include/cairn.h, src/libfs/icalls.h, src/proto/ctl.h, libc.
 * Called by: src/fuse (the mount daemon) and src/cli (`cairn serve`).
 */
#ifndef CAIRN_SERVER_H
#define CAIRN_SERVER_H

#include "cairn.h"

struct ctl_server;

/* A front end that caches what it serves (the FUSE mount: the kernel
 * keeps pages, attributes and names) hears of every change a client
 * makes, before the client's call returns, so that it forgets what went
 * stale: a read on the mount that starts after a client's call returned
 * sees the change.  Called from the clients' threads. */
struct ctl_watch {
	void *arg;
	/* ino's attributes changed, and its data from off for len bytes
	 * (len 0: to the end; off < 0: no data). */
	void (*inode)(void *arg, uint64_t ino, int64_t off, int64_t len);
	/* The name in directory dir appeared, went, or names another inode. */
	void (*entry)(void *arg, uint64_t dir, const char *name);
};

/* Starts serving fs's clients on VOLUME/cairn.sock (a stale socket file
 * left by a dead daemon is replaced: the caller holds the volume lock).
 * admit_all: every user may attach (the socket is 0666); otherwise only
 * the daemon's own user and root (0600).  say gets a sentence for each
 * event worth a log line (a refused client, a malformed request); watch
 * (or NULL) hears of changes.  0 with *out set, or -errno. */
int ctl_server_start(cairn_fs *fs, const char *volume_dir, int admit_all,
                     void (*say)(const char *msg), const struct ctl_watch *watch,
                     struct ctl_server **out);

/* How many client processes are attached (0 for srv NULL). */
int ctl_server_sessions(const struct ctl_server *srv);

struct ctl_scrub_status;
/* The volume's online scrub, for a front end with a channel of its own
 * (the FUSE mount's root attribute): cmd is CTL_SCRUB_*_CMD
 * (src/proto/ctl.h); fills *out (if not NULL) after it.  0, -EBUSY (one
 * runs already), or -errno. */
int ctl_server_scrub(struct ctl_server *srv, int cmd, struct ctl_scrub_status *out);

/* Stops accepting, ends every session (closing what its client left
 * open), waits for them, and removes the socket.  NULL is a no-op. */
void ctl_server_stop(struct ctl_server *s);

#endif
