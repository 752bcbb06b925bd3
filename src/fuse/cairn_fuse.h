/*
 * cairn_fuse.h - the FUSE front end: serve a cairn volume at a mount point
 * so that every unmodified program can use it.
 *
 * Owns: the FUSE session of one mount (src/fuse/).
 * May call: the public API (include/cairn.h), the inode-number calls
 * (src/libfs/icalls.h) and libfuse3.  Called by: src/cli.
 */
#ifndef CAIRN_FUSE_H
#define CAIRN_FUSE_H

#include <stddef.h>

#include "cairn.h"

struct cairn_fuse_opts {
	int foreground;                    /* stay in the foreground (else become a daemon) */
	int batch_ms;                      /* 0 = sync mode; >0 = batch mode (group commit) */
	const char *options;               /* extra comma-separated -o options for FUSE, or NULL */
	int high_watermark, low_watermark; /* tiers; 0 = the defaults */
	int no_promotion;
};

/* Mounts the volume at mountpoint and serves it until the mount point is
 * unmounted or a SIGINT/SIGTERM/SIGHUP arrives, then unmounts the volume.
 * Returns the exit code of `cairn mount`: 0 on a clean exit, 1 if the
 * volume or the mount failed (the reason is printed on stderr, as
 * "cairn: mount: WHAT: reason").  Unless o->foreground, the calling process
 * returns 0 as soon as the mount is up and a daemon serves it. */
int cairn_fuse_main(const char *volume, const char *mountpoint, const struct cairn_fuse_opts *o);

/* `cairn keeper STAT ABORT MESSAGE`, which cairn_fuse_main starts beside
 * its daemon (fuse_keeper.c): ends the mount's FUSE connection (writes to
 * ABORT, says MESSAGE in syslog and on stderr) if the daemon, whose /proc
 * stat file is STAT, dies with a thread held in the kernel.  Not for
 * people. */
int cairn_fuse_keeper_main(int argc, char **argv);

/* Unmounts a cairn FUSE mount and waits until the daemon that served it
 * has unmounted its volume (so that the volume may be mounted again at
 * once).  lazy detaches a busy mount.  Returns 0, or 1 with the reason on
 * stderr as "cairn: umount: MOUNTPOINT: reason". */
int cairn_fuse_umount(const char *mountpoint, int lazy);

/* The mount daemon answers this extended attribute of the mount's root with
 * its struct cairn_info (the same build's layout), for `cairn stat`. */
#define CFUSE_INFO_XATTR "trusted.cairn.info"

struct cairn_info;
/* The state of a mounted volume, asked of its daemon: path is the mount
 * point or the volume directory of a mounted volume.  0, or -ENOENT when
 * no cairn mount serves it. */
int cairn_fuse_info(const char *path, struct cairn_info *out);

#endif
