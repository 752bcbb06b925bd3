/*
 * fuse_internal.h - what the two halves of the FUSE front end share: the
 * session (cairn_fuse.c) and the low-level operations (fuse_ops.c).
 *
 * Owns: struct cfuse, the state handed to every operation as userdata.
 * May call: libfuse3, include/cairn.h, src/libfs/icalls.h.
 */
#ifndef CAIRN_FUSE_INTERNAL_H
#define CAIRN_FUSE_INTERNAL_H

/* 3.12: fuse_loop_cfg_*() and the session loop that takes them. */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cairn.h"
#include "fuse/cairn_fuse.h"

struct cfuse {
	cairn_fs *fs;
	struct fuse_session *se;
	/* Sync mode: every change is durable when its request is answered,
	 * so fsync has nothing to wait for. */
	bool sync_mode;
	/* The kernel opens and releases directories without asking. */
	bool stateless_opendir;
	/* One thread serves every request and polls for the next one for
	 * CFUSE_SPIN_NS before it sleeps (fuse_wire.c). */
	bool spin;
	/* The FUSE_HANDLE_KILLPRIV_V2 handshake (fuse_wire.c). */
	uint64_t init_unique;           /* the INIT request's number */
	bool kernel_offers_killpriv_v2; /* the kernel's INIT request has it */
	atomic_bool killpriv_v2;        /* granted: cairn clears set-ID bits */
	const char *vol;                /* the volume directory, for messages */
	atomic_bool failure_said;       /* a medium failure was reported */
	struct ctl_server *clients;     /* the client processes' socket */
};

/* A request failed with EIO: the first time a medium failure is behind it,
 * a daemon says in syslog which part failed, and where. */
void cfuse_note_eio(struct cfuse *cf);

/* Whether this mount clears set-user-ID and set-group-ID bits itself (the
 * kernel flags the requests that must) rather than the kernel. */
static inline bool cfuse_killpriv_v2(struct cfuse *cf)
{
	return atomic_load_explicit(&cf->killpriv_v2, memory_order_acquire);
}

/* Puts fuse_wire.c between the session and /dev/fuse; after
 * fuse_session_mount.  0 or a negative errno. */
int cfuse_wire_attach(struct fuse_session *se, struct cfuse *cf);

/* Whether the request this thread is handling carries the kernel's "kill
 * set-user-ID and set-group-ID" flag (the caller lacks CAP_FSETID). */
bool cfuse_request_kills_suidgid(void);
/* clients_changes() when the request this thread serves was read. */
uint64_t cfuse_grant_changes_seen(void);

/* Entry and attribute timeouts, in seconds.  Caching is safe because this
 * process is the only one that changes the volume, and every change goes
 * through the kernel, which invalidates what a change makes stale. */
#define CFUSE_TIMEOUT 1.0

/* How long a lone serving thread polls for the next request before it
 * sleeps: longer than a program under the shim takes between the requests
 * of one transaction (its writes in between make none), since a sleeping
 * thread costs the next request a wake-up across processors (docs/
 * PERFORMANCE.md: 200 us against 30 us, SQLite and varmail 1.28x).  The
 * poll yields the processor to anything else runnable on it. */
#define CFUSE_SPIN_NS 200000u

extern const struct fuse_lowlevel_ops cfuse_ops;

/* The keeper of the mount at mp (fuse_keeper.c): a child process that
 * ends the FUSE connection if this daemon dies with a thread held in the
 * kernel.  Its handle, or -1 (no fusectl, not root: none is kept). */
int cfuse_keeper_start(const char *mp);
/* This daemon is done: its keeper goes, ending nothing. */
void cfuse_keeper_stop(int keeper);

#endif
