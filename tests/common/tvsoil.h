/*
 * tvsoil.h - a test's hand inside a mounted volume: junk written straight
 * into the blocks fallocate set aside for a file, as blocks another file
 * freed would hold.  Whatever an unwritten extent's blocks hold, reads
 * must give zeros, and the digest must not let those bytes into a block
 * it writes.
 */
#ifndef CAIRN_TEST_TVSOIL_H
#define CAIRN_TEST_TVSOIL_H

#include <stdint.h>

#include "cairn.h"

/* Fills every block of path's unwritten extents with 0xee bytes; returns
 * how many blocks (fails the current test on error). */
uint64_t tv_soil_unwritten(cairn_fs *fs, const char *path);

#endif
