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

#include "cairn.h"

struct cfuse {
	cairn_fs *fs;
};

/* Entry and attribute timeouts, in seconds.  Caching is safe because this
 * process is the only one that changes the volume, and every change goes
 * through the kernel, which invalidates what a change makes stale. */
#define CFUSE_TIMEOUT 1.0

extern const struct fuse_lowlevel_ops cfuse_ops;

#endif
