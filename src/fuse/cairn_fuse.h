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
	int foreground;      /* stay in the foreground (else become a daemon) */
	int batch_ms;        /* 0 = sync mode; >0 = batch mode (group commit) */
	const char *options; /* extra comma-separated -o options for FUSE, or NULL */
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

/* Scrub of a mounted volume, run by its daemon: setting this attribute of
 * the mount's root to "start" starts one (EBUSY if one runs), "cancel"
 * stops it; reading it gives struct cfuse_scrub_status.  trusted.*: root
 * only, as the kernel enforces. */
#define CFUSE_SCRUB_XATTR "trusted.cairn.scrub"
enum { CFUSE_SCRUB_IDLE, CFUSE_SCRUB_RUNNING, CFUSE_SCRUB_DONE, CFUSE_SCRUB_FAILED };
struct cfuse_scrub_status {
	int state; /* CFUSE_SCRUB_* */
	int error; /* FAILED: the errno */
	struct cairn_scrub s;
};
/* Sends "start" or "cancel" (cmd) to the daemon serving path (mount
 * point or volume); with cmd NULL only reads the status.  On success
 * fills mp with the mount point.  0, -ENOENT when no cairn mount serves
 * path, or -errno. */
int cairn_fuse_scrub(const char *path, const char *cmd, struct cfuse_scrub_status *out,
                     char *mp, size_t mplen);

#endif
