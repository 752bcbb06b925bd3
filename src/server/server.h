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

/* Starts serving fs's clients on VOLUME/cairn.sock (a stale socket file
 * left by a dead daemon is replaced: the caller holds the volume lock).
 * admit_all: every user may attach (the socket is 0666); otherwise only
 * the daemon's own user and root (0600).  say gets a sentence for each
 * event worth a log line (a refused client, a malformed request).  0 with
 * *out set, or -errno. */
int ctl_server_start(cairn_fs *fs, const char *volume_dir, int admit_all,
                     void (*say)(const char *msg), struct ctl_server **out);

/* Stops accepting, ends every session (closing what its client left
 * open), waits for them, and removes the socket.  NULL is a no-op. */
void ctl_server_stop(struct ctl_server *s);

#endif
