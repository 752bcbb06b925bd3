/*
 * migrate.h - migration of file data between the tiers of the shared area.
 *
 * Owns: the migration protocol (migrate.c).
 * May call: libfs state (heat, inodes), fs (shared, extent), and the
 * digest's checkpoint, which commits each batch.  Called by the digest
 * thread (after checkpoints, when idle, when hot data waits) and by
 * cairn_migrate().
 */
#ifndef CAIRN_TIER_MIGRATE_H
#define CAIRN_TIER_MIGRATE_H

#include <stdint.h>

struct cairn_fs;

/* Whether some tier is past its high watermark (and migration is not
 * backing off after a pass that could move nothing). */
int migrate_needed(struct cairn_fs *fs);

/* A migration pass: demotions until each tier past its high watermark is
 * below its low one, then promotions of data read often; each batch is
 * committed by a checkpoint.  locked: the caller holds the volume lock
 * exclusively (no digest thread), as for fs_checkpoint. */
int migrate_run(struct cairn_fs *fs, int locked);

/* Evacuation, for the removal of capacity tier t (which the caller marked
 * draining): batches that move any file's extents off t, to the slower
 * tiers first, then the faster ones, until `want` blocks moved or none is
 * left.  *moved: the blocks moved.  -ENOSPC when no other tier has room;
 * 0 with blocks still on t when those could not move (they failed their
 * checksums).  The caller holds no lock. */
int migrate_evacuate(struct cairn_fs *fs, unsigned t, uint64_t want, uint64_t *moved);

#endif
