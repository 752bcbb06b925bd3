/*
 * clog_check.h - what a client log left by a daemon that did not end its
 * session is: usable, never used (a start a crash cut short), or damaged.
 * The mount (src/libfs/clients.c) and fsck (src/fsck/fsck_parts.c) judge
 * a slot's files the same way.
 *
 * Owns: nothing on the media; reads the two files of a slot.
 * May call: the media layer, the log formats, util/checksum.
 */
#ifndef CAIRN_CLOG_CHECK_H
#define CAIRN_CLOG_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "log/clog_format.h"
#include "log/log.h"
#include "media/media.h"

enum clog_leftover {
	CLOG_LEFT_NONE,       /* no state file: nothing was ever handed out */
	CLOG_LEFT_USABLE,     /* a whole state file: the mount applies the log */
	CLOG_LEFT_UNFINISHED, /* the state file is not whole, and the log has
	                       * never been written: a start cut short, which
	                       * may go with nothing lost */
	CLOG_LEFT_DAMAGED,    /* the state file is not whole (or its log is
	                       * refused) and the log may hold acknowledged
	                       * writes: nothing may remove it unasked */
};

/* Judges slot's files beside the log part at log_part_path, of medium
 * kind.  USABLE fills *header, and *seq and *off (when not NULL) with the
 * progress the state file holds; UNFINISHED and DAMAGED say why in why ("its state
 * file PATH: checksum mismatch", say). */
enum clog_leftover clog_check_slot(const char *log_part_path, int slot, enum media_kind kind,
                                   const uint8_t volume_uuid[16], struct clog_header *header,
                                   uint64_t *seq, uint64_t *off, char *why, size_t len);

/* The sealed epoch of grant count for ino in the log with log_id
 * (clog_format.h). */
uint64_t clog_epoch_seal(const uint8_t log_id[16], uint64_t ino, uint64_t count);

/* Whether grant g of a state file of version (header's) is whole: free or
 * removed, or an inode with an epoch whose seal matches it. */
int clog_grant_whole(uint32_t version, const uint8_t log_id[16], const struct clog_grant *g);

/* Scans the log l from its record (seq, off) on - its progress, as far as
 * the volume's log holds its copies - as a mount's recovery scans the
 * volume's log: a record a crash tore has nothing acknowledged after it,
 * while one damaged after it was durable has records that say so
 * (log_damage).  1 when there is such damage (why describes it and what
 * applying the log would drop), 0 when there is none, or -errno. */
int clog_scan_damage(struct log *l, uint64_t seq, uint64_t off, char *why, size_t len);

/* clog_scan_damage of a USABLE slot's log, opened here. */
int clog_find_damage(const char *log_part_path, int slot, enum media_kind kind,
                     const uint8_t volume_uuid[16], uint64_t seq, uint64_t off, char *why,
                     size_t len);

/* The valid progress copy with the higher generation in the state file
 * m, of the log with log_id: 1 with *gen, *seq and *off, or 0 when
 * neither copy is valid. */
int clog_read_progress(struct media *m, const uint8_t log_id[16], uint64_t *gen, uint64_t *seq,
                       uint64_t *off);

/* Accepts the loss clog_find_damage reported, with the same (seq, off):
 * the log is cut at the damaged record (log_drop_damaged), so that the
 * next mount applies the records before it.  0, or -errno with why said
 * in why. */
int clog_drop_damaged(const char *log_part_path, int slot, enum media_kind kind,
                      const uint8_t volume_uuid[16], uint64_t seq, uint64_t off, char *why,
                      size_t len);

/* Whether the header of slot's state file, damaged, can be made again
 * from the rest of the slot: a progress copy names the log's id, the log
 * opens with it, and every grant's epoch matches its seal under it (so
 * the file is this log's, of version 2); a header that is whole but names
 * another slot or volume cannot.  1 if it can, 0 if not.  With write, it
 * is then stored (the volume's UUID, this slot) and made durable: 1, or
 * -errno with why said in why. */
int clog_header_rebuild(const char *log_part_path, int slot, enum media_kind kind,
                        const uint8_t volume_uuid[16], int write, char *why, size_t len);

/* clog_header_rebuild without writing: whether it can. */
int clog_header_can_rebuild(const char *log_part_path, int slot, enum media_kind kind,
                            const uint8_t volume_uuid[16]);

#endif
