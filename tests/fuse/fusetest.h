/*
 * fusetest.h - helpers shared by the FUSE mount tests: running the cairn
 * command (CAIRN_BIN) and waiting for a mount to appear.
 */
#ifndef CAIRN_FUSETEST_H
#define CAIRN_FUSETEST_H

#include <sys/types.h>

/* Exits 77 (CTest: skipped) with a line saying so when the FUSE tests
 * cannot run here: not root, or no usable /dev/fuse.  Called first in
 * main(), so that a machine without FUSE shows every test of prog as not
 * run instead of passed; scripts/test.sh then fails unless told that
 * skipping is fine. */
void fuse_tests_require(const char *prog);

/* Runs CAIRN_BIN with the arguments (NULL-terminated, at most 14), its
 * standard output to /dev/null; returns its exit status (or -1). */
int run_cairn(const char *arg, ...);

/* Whether mnt is a mount point in /proc/self/mounts. */
int is_mounted_at(const char *mnt);

void sleep_ms(int ms);

/* Waits until the `cairn mount --foreground` daemon *daemon has mounted mnt;
 * fails the test if it exits first (then *daemon = 0) or after 10 s. */
void wait_for_mount(pid_t *daemon, const char *mnt);

#endif
