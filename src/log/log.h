/*
 * log.h - the operation log: a ring of self-validating records on the
 * fastest medium.
 *
 * Owns: the log part (its superblock, epoch slots and record area), the
 * head/tail of the ring, sequence numbers, and the durability point.
 * May call: the media layer, the checksum.
 *
 * The log knows records, not operations: the meaning of a record's type,
 * inline arguments and payload belongs to libfs (src/libfs/oprec.h).
 * Appends and reservations are serialized by the caller (the file-system
 * lock); fills and commits (waiting for durability) may run concurrently
 * outside it, which is how group commit on the file backend shares one
 * fdatasync among threads, and how threads copy payloads at once.
 */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "log/log_format.h"

struct media;
struct log;

/* mkfs: writes both copies of the log superblock and the first epoch
 * slot, and makes them durable. */
int log_format(struct media *m, const uint8_t uuid[16], char *err, size_t errlen);

/* Validates the log superblock (magic, version, checksum, UUID, size), in
 * either copy: one valid copy is enough, and then 0 is returned with a
 * warning in err naming the damaged copy.  With neither valid, returns
 * -EUCLEAN/-EINVAL with a sentence in err. */
int log_open(struct log **out, struct media *m, const uint8_t uuid[16], char *err, size_t errlen);
void log_close(struct log *l);

/* Which superblock copies log_open found damaged (bit 0: the one at offset
 * 0, bit 1: the backup at LOG_BACKUP_OFF); when any, *off and *why name
 * one of them. */
unsigned log_super_damaged(const struct log *l, uint64_t *off, const char **why);
/* Rewrites the damaged copy from the valid one, and fences. */
int log_super_repair(struct log *l);

/* Called for each valid record found by log_recover, in order. */
typedef int (*log_replay_fn)(void *arg, const struct log_rec_hdr *h, const void *payload,
                             uint64_t off);

/*
 * Recovery: scans from the head recorded by the last checkpoint, calling fn
 * for every valid record, and stops at the first record that is torn,
 * stale or of an older epoch.  The tail is set after the last valid record.
 * Then it looks past the tail for valid records that continue the sequence
 * and were written after the record at the tail was durable: if there are
 * any, that record was damaged, not torn (see log_damage), and unless
 * read_only, -EUCLEAN is returned with nothing written.  Otherwise, unless
 * read_only, a new epoch is made durable so that records written from now
 * on can never be confused with stale ones after the tail.
 * A non-zero return of fn stops the scan and is returned, except
 * LOG_REPLAY_END: the log then ends before that record, which the next
 * append overwrites (and no damage is looked for past it).
 */
#define LOG_REPLAY_END 1
int log_recover(struct log *l, uint64_t head_off, uint64_t head_seq, log_replay_fn fn, void *arg,
                int read_only);
/* A replay function that applies nothing: for a recovery that only finds
 * where a log ends (a client's, which its writer then appends to) or
 * whether it is damaged. */
int log_replay_none(void *arg, const struct log_rec_hdr *h, const void *payload, uint64_t off);

/*
 * Reading a log that another process appends to (a client's log, read by
 * the daemon): the record at off if it is valid and has sequence number
 * seq (a PAD included), with the offset of the record after it in *next.
 * The header is copied into *h; *payload points at the payload: in the
 * mapping on byte-addressable media (where the writer could still change
 * it: the caller must not rely on it beyond taking a copy), else in *buf
 * (grown as needed).  1, or 0 when there is none yet (or it is torn, or
 * of another log).  Changes nothing.
 */
int log_peek(struct log *l, uint64_t off, uint64_t seq, struct log_rec_hdr *h, const void **payload,
             uint8_t **buf, size_t *bufsz, uint64_t *next);
/* A cheap first look for log_peek: whether a header with seq is at off. */
int log_may_hold(struct log *l, uint64_t off, uint64_t seq);

/* Damage the last log_recover found: a record that had been durable is
 * invalid, and valid records after it would be lost with it. */
struct log_damage {
	uint64_t off, seq;            /* the damaged record: its offset, its seq */
	uint64_t lost;                /* valid records after it (PADs not counted) */
	uint64_t first_seq, last_seq; /* their sequence numbers */
	uint64_t end_off;             /* ring offset after the last of them */
	int acknowledged;             /* a later record proves it was durable */
};
/* 1 and *d filled if the last recovery found such damage, else 0. */
int log_damage(const struct log *l, struct log_damage *d);
/* One sentence naming the part, the offset and what would be lost. */
void log_damage_describe(const struct log *l, char *buf, size_t len);
/* Accepts the loss: zeroes the log from the damaged record to the end of
 * the last record found after it, durably, so the log ends at the damage
 * and a recovery stops there silently.  Then log_recover again. */
int log_drop_damaged(struct log *l);
/* Whether a valid record follows the record h found at off (its
 * successor in sequence, in the same or a later epoch). */
int log_record_follows(struct log *l, uint64_t off, const struct log_rec_hdr *h);

/* Where a record was put. */
struct log_pos {
	uint64_t seq;
	uint64_t off;         /* of the header */
	uint64_t payload_off; /* of the payload */
	uint64_t next_off;    /* offset after the record */
};

/* Appends one record (header args + payload gathered from iov) and starts
 * its write-back; not durable before log_commit.  Returns 0, or -ENOSPC
 * when the ring has no room (the caller digests and retries), or -E2BIG
 * when the record could never fit. */
int log_append(struct log *l, uint16_t type, const uint64_t args[LOG_REC_ARGS],
               const struct iovec *iov, int iovcnt, struct log_pos *out);

/*
 * An append in two steps, so that the copy of a large payload and its
 * checksum need not run under the caller's lock: log_reserve (serialized
 * like log_append) gives the record its place and sequence number;
 * log_fill (any thread, no lock) writes it there.  Records may be filled in
 * any order, but a record counts as appended only once every record before
 * it is filled: log_commit(seq) waits for that, log_commit_all waits for
 * every record reserved before it was called, and a reader of a record's
 * payload calls log_await(seq) first.  On media that are not
 * byte-addressable, log_reserve writes the record at once (log_fill then
 * does nothing), and so it does for a payload of more than LOG_FILL_IOV
 * pieces.  The bytes the iov points at must stay until the fill.  Every
 * reservation must be filled, even when the caller gives up on the
 * operation: the records after it wait for it.
 */
#define LOG_FILL_IOV 2
struct log_fill {
	struct log_rec_hdr h;
	uint64_t off;
	struct iovec iov[LOG_FILL_IOV]; /* more pieces are written at once */
	int iovcnt;
	int pending;
};
int log_reserve(struct log *l, uint16_t type, const uint64_t args[LOG_REC_ARGS],
                const struct iovec *iov, int iovcnt, struct log_pos *out, struct log_fill *fill);
/* Whether log_reserve leaves the copy of a payload of LOG_FILL_IOV pieces
 * or fewer to log_fill (byte-addressable media), so that it needs no lock
 * but the one that orders reservations. */
int log_fills_later(const struct log *l);
/* 0, or the media error (every later commit then fails with EIO). */
int log_fill(struct log *l, struct log_fill *fill);
/* log_fill of n records at once, with one fence for them all; 0 or the
 * first failure (every later commit then fails with EIO). */
int log_fill_many(struct log *l, struct log_fill *fills, int n);
/* Returns when the record seq and every one before it are filled (0), or
 * -EIO when a fill failed. */
int log_await(struct log *l, uint64_t seq);

/* Whether a record with this payload fits in the ring now. */
int log_room(const struct log *l, uint64_t payload_len);

/* Returns when every record up to seq is durable. */
int log_commit(struct log *l, uint64_t seq);

/* Makes everything appended (or reserved) so far durable. */
int log_commit_all(struct log *l);

/* The digest made the shared area durable up to (but excluding) the record
 * at head_off with head_seq: its space is free again. */
void log_reclaim(struct log *l, uint64_t head_off, uint64_t head_seq);

/* Reads payload bytes of a record (for the undigested-data index). */
int log_read(struct log *l, uint64_t off, void *buf, size_t len);
/* A direct pointer to log bytes on byte-addressable media, else NULL. */
const void *log_direct(struct log *l, uint64_t off);

uint64_t log_capacity(const struct log *l); /* bytes of record area */
uint64_t log_used(const struct log *l);     /* bytes between head and tail */
uint64_t log_head_seq(const struct log *l);
uint64_t log_head_off(const struct log *l);
uint64_t log_tail_seq(const struct log *l); /* seq the next record gets */
uint64_t log_tail_off(const struct log *l);
uint64_t log_epoch(const struct log *l);
/* Largest record payload that always fits: a quarter of the ring, at most
 * 4 MiB (1 MiB on the file medium); larger writes take several records. */
uint64_t log_max_payload(const struct log *l);

#endif
