/*
 * log.c - the operation log ring: format, validation, recovery scan,
 * append, commit and reclaim.
 *
 * Owns: struct log and the log part's bytes.
 * May call: the media layer and util/checksum.
 */
#include "log/log.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/media.h"
#include "util/checksum.h"

/* Records reserved and not yet filled, at most: a reservation beyond
 * waits for the fills before it. */
#define LOG_FILLS 64

struct log {
	struct media *m;
	uint8_t uuid[16];
	uint64_t salt;      /* XXH3 of the volume UUID: seeds record checksums */
	unsigned super_bad; /* damaged superblock copies: 1 at offset 0, 2 the backup */
	char super_why[2][160];
	struct log_damage damage; /* what the last recovery found past its end */
	uint64_t ring_end;        /* = media size, rounded down to LOG_ALIGN */
	uint64_t head_off, head_seq;
	uint64_t tail_off, tail_seq;
	uint64_t used; /* bytes between head and tail, pads included */
	uint64_t epoch;
	uint64_t epoch_max;            /* the newest epoch a record may carry (see load_epoch) */
	uint64_t epoch_next;           /* the epoch the next mount writes, at least */
	int epoch_slot;                /* slot holding the current epoch */
	_Atomic uint64_t appended_seq; /* last seq appended */
	_Atomic uint64_t durable_seq;  /* last seq known durable (file media) */
	uint8_t *staging;              /* file media: one contiguous record per write */
	size_t staging_size;
	/* Reserved records not yet counted as appended (log_reserve): record
	 * s is filled once fill_mark[s % LOG_FILLS] holds s + 1 (a mark left
	 * by an earlier lap of the array never does).  appended_seq moves
	 * over the filled prefix, by whichever filler finds it can. */
	_Atomic uint64_t reserved_seq; /* last seq reserved */
	_Atomic uint64_t fill_mark[LOG_FILLS];
	atomic_int broken; /* a fill failed */
};

#define LOG_MAX_PAYLOAD (4ull << 20)

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static uint64_t ring_capacity(const struct log *l)
{
	return l->ring_end - LOG_RING_START;
}

/* The header's hash is seeded with the volume's salt, so that records left
 * in a reused part by an earlier volume never pass as this volume's. */
static uint64_t header_seed(const struct log *l, const struct log_rec_hdr *h)
{
	return checksum64_seeded(h, offsetof(struct log_rec_hdr, checksum), l->salt);
}

static uint64_t record_checksum(const struct log *l, const struct log_rec_hdr *h,
                                const void *payload)
{
	uint64_t seed = header_seed(l, h);
	return checksum64_seeded(payload, h->payload_len, seed);
}

/* ---- superblock and epoch slots ---------------------------------------- */

static int write_epoch(struct media *m, int slot, uint64_t epoch)
{
	struct log_epoch e;
	memset(&e, 0, sizeof(e));
	e.magic = LOG_EPOCH_MAGIC;
	e.epoch = epoch;
	e.checksum = checksum_struct(&e, sizeof(e));
	uint64_t off = (uint64_t)(1 + slot) * LOG_BLOCK;
	int rc = media_store(m, off, &e, sizeof(e));
	return rc ? rc : media_fence(m);
}

static void fill_super(struct log_super *s, const uint8_t uuid[16], uint64_t size)
{
	memset(s, 0, sizeof(*s));
	s->magic = LOG_SUPER_MAGIC;
	s->version = LOG_FORMAT_VERSION;
	s->block_size = LOG_BLOCK;
	memcpy(s->uuid, uuid, 16);
	s->size = size;
	s->checksum = checksum_struct(s, sizeof(*s));
}

/* Both copies of the superblock, each flushed; the caller fences. */
static int write_supers(struct media *m, const struct log_super *s)
{
	int rc = media_store(m, 0, s, sizeof(*s));
	return rc ? rc : media_store(m, LOG_BACKUP_OFF(media_size(m)), s, sizeof(*s));
}

int log_format(struct media *m, const uint8_t uuid[16], char *err, size_t errlen)
{
	uint64_t size = media_size(m);
	uint64_t least = LOG_RING_START + 64 * 1024 + LOG_BLOCK;
	if (size < least) {
		snprintf(err, errlen, "log part %s: %llu bytes is too small (at least %llu)",
		         media_path(m), (unsigned long long)size, (unsigned long long)least);
		return -EINVAL;
	}
	struct log_super *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	fill_super(s, uuid, size);
	int rc = write_supers(m, s);
	free(s);
	/* A stale record from an earlier volume at the ring start must not be
	 * taken for record 1: zero the first line, and epochs start at 1. */
	if (!rc)
		rc = media_zero(m, LOG_RING_START, LOG_BLOCK);
	if (!rc)
		media_flush(m, LOG_RING_START, LOG_BLOCK);
	if (!rc)
		rc = media_zero(m, 2 * LOG_BLOCK, LOG_BLOCK);
	if (!rc)
		media_flush(m, 2 * LOG_BLOCK, LOG_BLOCK);
	if (!rc)
		rc = write_epoch(m, 0, 1);
	if (rc)
		snprintf(err, errlen, "log part %s: cannot write: %s", media_path(m),
		         strerror(-rc));
	return rc;
}

/* What is wrong with one copy of the superblock, or NULL.  The manifest is
 * the third witness: the UUID and the size must be the ones it records. */
static const char *super_problem(const struct log_super *s, const uint8_t uuid[16], uint64_t size)
{
	if (s->magic != LOG_SUPER_MAGIC)
		return "bad magic number (not a cairn log superblock)";
	if (s->checksum != checksum_struct(s, sizeof(*s)))
		return "checksum mismatch";
	if (s->version == 1)
		return "format version 1, made by an older cairn without a backup "
		       "superblock: this cairn reads version 2 only";
	if (s->version != LOG_FORMAT_VERSION)
		return "unsupported format version (offset 8)";
	if (s->block_size != LOG_BLOCK)
		return "unsupported block size (offset 12)";
	if (memcmp(s->uuid, uuid, 16) != 0)
		return "UUID (offset 16) belongs to another volume";
	if (s->size != size)
		return "part size differs from the size recorded at offset 32";
	return NULL;
}

/* Reads copy i (0 at offset 0, 1 the backup) and says what is wrong. */
static const char *read_super(struct media *m, int i, const uint8_t uuid[16], struct log_super *s)
{
	uint64_t size = media_size(m);
	if (size < LOG_RING_START + 2 * LOG_BLOCK)
		return "the part is too small to be a log";
	if (media_read(m, i ? LOG_BACKUP_OFF(size) : 0, s, sizeof(*s)))
		return "cannot be read";
	return super_problem(s, uuid, size);
}

/*
 * Validates both copies.  One valid copy is enough: the damaged one is
 * remembered (a mount warns, fsck reports it, log_super_repair rewrites
 * it).  Neither valid refuses the part.
 */
static int check_super(struct log *l, const uint8_t uuid[16], char *err, size_t errlen)
{
	struct log_super *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	const char *why[2];
	for (int i = 0; i < 2; i++)
		why[i] = read_super(l->m, i, uuid, s);
	free(s);
	const char *path = media_path(l->m);
	unsigned long long back = LOG_BACKUP_OFF(media_size(l->m));
	for (int i = 0; i < 2; i++)
		if (why[i])
			snprintf(l->super_why[i], sizeof(l->super_why[i]), "%s", why[i]);
	if (why[0] && why[1]) {
		if (!strncmp(why[0], "format version 1", 16))
			snprintf(err, errlen, "log part %s: %s", path, why[0]);
		else
			snprintf(err, errlen,
			         "log part %s: both superblock copies are damaged: offset 0: %s; "
			         "offset %llu: %s",
			         path, why[0], back, why[1]);
		return -EUCLEAN;
	}
	l->super_bad = (why[0] ? 1u : 0u) | (why[1] ? 2u : 0u);
	return 0;
}

/* The warning a successful open leaves in err when a copy is damaged. */
static void warn_super(const struct log *l, char *err, size_t errlen)
{
	if (!l->super_bad)
		return;
	unsigned long long back = LOG_BACKUP_OFF(media_size(l->m));
	int i = l->super_bad & 1u ? 0 : 1;
	snprintf(err, errlen,
	         "log part %s: the superblock copy at offset %llu is damaged (%s); using the "
	         "copy at offset %llu",
	         media_path(l->m), i ? back : 0ull, l->super_why[i], i ? 0ull : back);
}

unsigned log_super_damaged(const struct log *l, uint64_t *off, const char **why)
{
	if (l->super_bad) {
		int i = l->super_bad & 1u ? 0 : 1;
		*off = i ? LOG_BACKUP_OFF(media_size(l->m)) : 0;
		*why = l->super_why[i];
	}
	return l->super_bad;
}

int log_super_repair(struct log *l)
{
	if (!l->super_bad)
		return 0;
	struct log_super *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* The valid copy was checked against the manifest's UUID and size, so
	 * the rebuilt one is exactly what mkfs wrote. */
	fill_super(s, l->uuid, media_size(l->m));
	uint64_t off = l->super_bad & 1u ? 0 : LOG_BACKUP_OFF(media_size(l->m));
	int rc = media_store(l->m, off, s, sizeof(*s));
	free(s);
	if (!rc)
		rc = media_fence(l->m);
	if (!rc)
		l->super_bad = 0;
	return rc;
}

static int read_epoch(struct media *m, int slot, uint64_t *epoch)
{
	struct log_epoch e;
	int rc = media_read(m, (uint64_t)(1 + slot) * LOG_BLOCK, &e, sizeof(e));
	if (rc)
		return rc;
	if (e.magic != LOG_EPOCH_MAGIC || e.checksum != checksum_struct(&e, sizeof(e)))
		return -EUCLEAN;
	*epoch = e.epoch;
	return 0;
}

/* A slot that holds only zeros (mkfs writes slot A only). */
static int epoch_slot_blank(struct media *m, int slot)
{
	uint8_t b[sizeof(struct log_epoch)];
	if (media_read(m, (uint64_t)(1 + slot) * LOG_BLOCK, b, sizeof(b)))
		return 0;
	for (size_t i = 0; i < sizeof(b); i++)
		if (b[i])
			return 0;
	return 1;
}

static int load_epoch(struct log *l, char *err, size_t errlen)
{
	uint64_t e0 = 0, e1 = 0;
	int ok0 = read_epoch(l->m, 0, &e0) == 0;
	int ok1 = read_epoch(l->m, 1, &e1) == 0;
	if (!ok0 && !ok1) {
		snprintf(err, errlen,
		         "log part %s: both epoch slots (offsets 4096, 8192) are damaged",
		         media_path(l->m));
		return -EUCLEAN;
	}
	l->epoch_slot = (ok1 && (!ok0 || e1 > e0)) ? 1 : 0;
	l->epoch = l->epoch_slot ? e1 : e0;
	/* A slot that is not valid may have held the newest epoch (current
	 * + 1), with records of that epoch in the ring: its damage must not
	 * drop them, so they are accepted.  When it never held that epoch
	 * (torn while a mount wrote it, or the zeros mkfs leaves in slot B),
	 * no record of it exists and accepting it changes nothing.  The next
	 * mount's epoch must be newer than any record the ring may hold, so
	 * it skips current + 1 unless the slot is mkfs's zeros. */
	l->epoch_max = l->epoch;
	l->epoch_next = l->epoch + 1;
	if (!ok0 || !ok1) {
		l->epoch_max = l->epoch + 1;
		if (!(l->epoch == 1 && epoch_slot_blank(l->m, !l->epoch_slot)))
			l->epoch_next = l->epoch + 2;
	}
	return 0;
}

int log_open(struct log **out, struct media *m, const uint8_t uuid[16], char *err, size_t errlen)
{
	struct log *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->m = m;
	memcpy(l->uuid, uuid, 16);
	int rc = check_super(l, uuid, err, errlen);
	if (rc) {
		free(l);
		return rc;
	}
	l->salt = checksum64(uuid, 16);
	l->ring_end = LOG_BACKUP_OFF(media_size(m));
	rc = load_epoch(l, err, errlen);
	if (rc) {
		free(l);
		return rc;
	}
	if (!media_direct(m)) {
		l->staging_size = 1 << 20;
		l->staging = malloc(l->staging_size);
		if (!l->staging) {
			free(l);
			return -ENOMEM;
		}
	}
	warn_super(l, err, errlen);
	*out = l;
	return 0;
}

void log_close(struct log *l)
{
	if (!l)
		return;
	free(l->staging);
	free(l);
}

static void flush_ring(struct log *l, uint64_t from, uint64_t to);

/* ---- recovery ---------------------------------------------------------- */

/* Reads the header at off and checks it: a sequence number in [min_seq,
 * max_seq], an epoch in [min_epoch, the current epoch], lengths that fit. */
static int read_header(struct log *l, uint64_t off, uint64_t min_seq, uint64_t max_seq,
                       uint64_t min_epoch, struct log_rec_hdr *h)
{
	if (off + sizeof(*h) > l->ring_end || media_read(l->m, off, h, sizeof(*h)))
		return 0;
	if (h->magic != LOG_REC_MAGIC || h->seq < min_seq || h->seq > max_seq)
		return 0;
	if (h->epoch < min_epoch || h->epoch > l->epoch_max)
		return 0;
	if (h->len < sizeof(*h) || h->len % LOG_ALIGN || h->len > l->ring_end - off)
		return 0;
	return h->payload_len <= h->len - sizeof(*h);
}

/* Reads and validates the record at off (see read_header).  Returns 1 if
 * valid (payload in *buf, grown as needed), else 0. */
static int read_record(struct log *l, uint64_t off, uint64_t min_seq, uint64_t max_seq,
                       uint64_t min_epoch, struct log_rec_hdr *h, uint8_t **buf, size_t *bufsz)
{
	if (!read_header(l, off, min_seq, max_seq, min_epoch, h))
		return 0;
	if (h->payload_len > *bufsz) {
		uint8_t *nb = realloc(*buf, h->payload_len);
		if (!nb)
			return 0;
		*buf = nb;
		*bufsz = h->payload_len;
	}
	if (media_read(l->m, off + sizeof(*h), *buf, h->payload_len))
		return 0;
	return record_checksum(l, h, *buf) == h->checksum;
}

/* Where the record after one of len bytes at off starts (appends' rule:
 * after a PAD, or with no room for a header, at the ring's start). */
static uint64_t next_off(const struct log *l, uint64_t off, uint64_t len, int pad)
{
	off += len;
	if (pad || off + sizeof(struct log_rec_hdr) > l->ring_end)
		off = LOG_RING_START;
	return off;
}

/* Bytes walked along the ring from a to b. */
static uint64_t ring_dist(const struct log *l, uint64_t a, uint64_t b)
{
	return b > a ? b - a : (l->ring_end - a) + (b - LOG_RING_START);
}

/* The longest record there can be: how far past a damaged record the next
 * one may start. */
static uint64_t max_record(const struct log *l)
{
	return align_up(sizeof(struct log_rec_hdr) + log_max_payload(l), LOG_ALIGN);
}

/* A cheap first look at a line: on byte-addressable media the walk past
 * the tail reads up to a quarter of the ring, so it must not copy each
 * line (a 256 MiB log would cost a sizeable part of a second). */
static int may_start_record(const struct log *l, uint64_t off, uint64_t min_seq)
{
	const uint8_t *base = media_direct(l->m);
	if (!base)
		return 1; /* read_record reads it; the walk is at most 1 MiB here */
	const struct log_rec_hdr *h = (const struct log_rec_hdr *)(base + off);
	return h->magic == LOG_REC_MAGIC && h->seq >= min_seq;
}

static void note_lost(struct log_damage *d, const struct log_rec_hdr *h, uint64_t end)
{
	if (h->type != LOG_REC_PAD) {
		if (!d->lost++)
			d->first_seq = h->seq;
		d->last_seq = h->seq;
	}
	d->end_off = end;
	/* h was appended after everything up to seq - lag was durable: if that
	 * covers the damaged record, it was durable, and its loss is damage to
	 * acknowledged data, not a write a crash interrupted. */
	if (h->lag && h->lag <= h->seq && h->seq - h->lag >= d->seq)
		d->acknowledged = 1;
}

/*
 * The scan stopped at the tail.  That is normal when the record there was
 * torn by a crash; but if valid records that continue the sequence lie
 * beyond it, the record there was damaged after the fact.  Walk the free
 * part of the ring from the tail towards the head: at each line, a record
 * with a later sequence number and an epoch no older than the last valid
 * record's joins the chain, and the walk jumps over it; anything else costs
 * one line of a budget as long as the longest record, which is reset by
 * each record found (the next one can start no further away).  Records of
 * earlier laps have older sequence numbers and are never counted.
 */
static void look_ahead(struct log *l, uint64_t min_epoch, uint8_t **buf, size_t *bufsz)
{
	struct log_damage *d = &l->damage;
	memset(d, 0, sizeof(*d));
	d->off = l->tail_off;
	d->seq = l->tail_seq;
	uint64_t left = ring_capacity(l) - l->used, walked = 0;
	uint64_t pos = l->tail_off, want = l->tail_seq + 1, budget = max_record(l);
	uint64_t step = LOG_ALIGN;
	int pad = 0;
	struct log_rec_hdr h;
	for (;;) {
		uint64_t next = next_off(l, pos, step, pad);
		walked += ring_dist(l, pos, next);
		if (walked >= left)
			break;
		pos = next;
		if (may_start_record(l, pos, want) &&
		    read_record(l, pos, want, UINT64_MAX, min_epoch, &h, buf, bufsz)) {
			pad = h.type == LOG_REC_PAD;
			step = h.len;
			note_lost(d, &h, next_off(l, pos, step, pad));
			want = h.seq + 1;
			min_epoch = h.epoch;
			budget = max_record(l);
		} else {
			if (budget <= LOG_ALIGN)
				break;
			budget -= LOG_ALIGN;
			step = LOG_ALIGN;
			pad = 0;
		}
	}
}

int log_recover(struct log *l, uint64_t head_off, uint64_t head_seq, log_replay_fn fn, void *arg,
                int read_only)
{
	memset(&l->damage, 0, sizeof(l->damage));
	if (head_off < LOG_RING_START || head_off >= l->ring_end || head_off % LOG_ALIGN)
		return -EUCLEAN;
	l->head_off = l->tail_off = head_off;
	l->head_seq = l->tail_seq = head_seq;
	l->used = 0;
	uint8_t *buf = NULL;
	size_t bufsz = 0;
	uint64_t min_epoch = 0;
	int rc = 0, ended = 0;
	struct log_rec_hdr h;
	while (l->used < ring_capacity(l) &&
	       read_record(l, l->tail_off, l->tail_seq, l->tail_seq, min_epoch, &h, &buf, &bufsz)) {
		if (h.type != LOG_REC_PAD) {
			rc = fn(arg, &h, buf, l->tail_off);
			if (rc == LOG_REPLAY_END) {
				rc = 0; /* the log ends before this record */
				ended = 1;
				break;
			}
			if (rc)
				break;
		}
		min_epoch = h.epoch;
		uint64_t next = next_off(l, l->tail_off, h.len, h.type == LOG_REC_PAD);
		l->used += ring_dist(l, l->tail_off, next);
		l->tail_off = next;
		l->tail_seq++;
	}
	/* A record the caller ended the log at is valid, not damaged. */
	if (!rc && !ended && l->used < ring_capacity(l))
		look_ahead(l, min_epoch, &buf, &bufsz);
	free(buf);
	for (int i = 0; i < LOG_FILLS; i++)
		atomic_store(&l->fill_mark[i], 0);
	atomic_store(&l->appended_seq, l->tail_seq - 1);
	atomic_store(&l->reserved_seq, l->tail_seq - 1);
	atomic_store(&l->durable_seq, l->tail_seq - 1);
	if (rc || read_only)
		return rc;
	/* Acknowledged records would be dropped: the caller must decide. */
	if (l->damage.acknowledged)
		return -EUCLEAN;
	/* What was recovered is the durable prefix later records' lag claims
	 * (the epoch's fence below covers this flush). */
	if (media_direct(l->m))
		flush_ring(l, l->head_off, l->tail_off);
	/* Newer than any record the ring may hold, so that a record left by
	 * an earlier mount never continues this one's. */
	int next = !l->epoch_slot;
	uint64_t epoch = l->epoch_next > min_epoch ? l->epoch_next : min_epoch + 1;
	rc = write_epoch(l->m, next, epoch);
	if (!rc) {
		l->epoch = l->epoch_max = epoch;
		l->epoch_next = epoch + 1;
		l->epoch_slot = next;
	}
	return rc;
}

int log_replay_none(void *arg, const struct log_rec_hdr *h, const void *payload, uint64_t off)
{
	(void)arg;
	(void)h;
	(void)payload;
	(void)off;
	return 0;
}

int log_peek(struct log *l, uint64_t off, uint64_t seq, struct log_rec_hdr *h, const void **payload,
             uint8_t **buf, size_t *bufsz, uint64_t *next)
{
	if (off < LOG_RING_START || off >= l->ring_end || off % LOG_ALIGN)
		return 0;
	const uint8_t *base = media_direct(l->m);
	if (base) {
		/* Checked where it lies, not copied: the header is a copy, and
		 * the payload's bytes mean nothing to the log. */
		if (!read_header(l, off, seq, seq, 0, h))
			return 0;
		*payload = base + off + sizeof(*h);
		if (record_checksum(l, h, *payload) != h->checksum)
			return 0;
	} else {
		if (!read_record(l, off, seq, seq, 0, h, buf, bufsz))
			return 0;
		*payload = *buf;
	}
	*next = next_off(l, off, h->len, h->type == LOG_REC_PAD);
	return 1;
}

int log_may_hold(struct log *l, uint64_t off, uint64_t seq)
{
	struct log_rec_hdr h;
	if (off < LOG_RING_START || off + sizeof(h) > l->ring_end || off % LOG_ALIGN)
		return 0;
	if (media_read(l->m, off, &h, sizeof(h)))
		return 0;
	return h.magic == LOG_REC_MAGIC && h.seq == seq;
}

int log_damage(const struct log *l, struct log_damage *d)
{
	if (!l->damage.acknowledged)
		return 0;
	*d = l->damage;
	return 1;
}

void log_damage_describe(const struct log *l, char *buf, size_t len)
{
	const struct log_damage *d = &l->damage;
	snprintf(buf, len,
	         "log part %s: the record at offset %llu (sequence %llu) is damaged, and %llu "
	         "valid records after it (sequence %llu..%llu, written after it was durable) "
	         "would be lost",
	         media_path(l->m), (unsigned long long)d->off, (unsigned long long)d->seq,
	         (unsigned long long)d->lost, (unsigned long long)d->first_seq,
	         (unsigned long long)d->last_seq);
}

static int zero_range(struct log *l, uint64_t off, uint64_t len)
{
	int rc = len ? media_zero(l->m, off, len) : 0;
	if (!rc && len)
		media_flush(l->m, off, len);
	return rc;
}

int log_drop_damaged(struct log *l)
{
	struct log_damage *d = &l->damage;
	if (!d->acknowledged)
		return 0;
	int rc;
	if (d->end_off > d->off) {
		rc = zero_range(l, d->off, d->end_off - d->off);
	} else {
		rc = zero_range(l, d->off, l->ring_end - d->off);
		if (!rc)
			rc = zero_range(l, LOG_RING_START, d->end_off - LOG_RING_START);
	}
	if (!rc)
		rc = media_fence(l->m);
	if (!rc)
		memset(d, 0, sizeof(*d));
	return rc;
}

int log_record_follows(struct log *l, uint64_t off, const struct log_rec_hdr *h)
{
	uint64_t next = next_off(l, off, h->len, h->type == LOG_REC_PAD);
	struct log_rec_hdr nh;
	uint8_t *buf = NULL;
	size_t bufsz = 0;
	int valid = read_record(l, next, h->seq + 1, h->seq + 1, h->epoch, &nh, &buf, &bufsz);
	free(buf);
	return valid;
}

/* ---- append and commit ------------------------------------------------- */

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;
	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

uint64_t log_max_payload(const struct log *l)
{
	/* A record must fit even after a pad at the worst position.  It is also
	 * how far past a damaged record recovery must look for the next one
	 * (look_ahead), at every mount: 4 MiB keeps that walk to a few
	 * milliseconds, where a quarter of a 256 MiB ring took 0.15 s. */
	uint64_t cap = ring_capacity(l) / 4;
	if (cap > LOG_MAX_PAYLOAD)
		cap = LOG_MAX_PAYLOAD;
	if (!media_direct(l->m) && cap > l->staging_size - sizeof(struct log_rec_hdr))
		cap = l->staging_size - sizeof(struct log_rec_hdr);
	return cap / LOG_ALIGN * LOG_ALIGN;
}

static void fill_header(struct log *l, struct log_rec_hdr *h, uint16_t type,
                        const uint64_t args[LOG_REC_ARGS], uint32_t len, uint32_t plen)
{
	memset(h, 0, sizeof(*h));
	h->magic = LOG_REC_MAGIC;
	h->type = type;
	h->len = len;
	h->payload_len = plen;
	h->seq = l->tail_seq;
	h->epoch = l->epoch;
	/* Recovery tells a torn tail from damage by this claim. */
	uint64_t lag = l->tail_seq - atomic_load(&l->durable_seq);
	h->lag = lag <= UINT16_MAX ? (uint16_t)lag : 0;
	if (args)
		memcpy(h->args, args, sizeof(h->args));
}

/* Record seq is written whole: the appended prefix grows over it and over
 * the filled records after it.  No lock: each filler marks its record, then
 * moves the prefix while the next record is marked.  Of two fillers of
 * neighbouring records, each marks before it looks at the other's mark
 * (sequentially consistent), so at least one sees both and moves the
 * prefix over both. */
static void filled(struct log *l, uint64_t seq)
{
	atomic_store(&l->fill_mark[seq % LOG_FILLS], seq + 1);
	uint64_t a = atomic_load(&l->appended_seq);
	while (atomic_load(&l->fill_mark[(a + 1) % LOG_FILLS]) == a + 2)
		if (atomic_compare_exchange_weak(&l->appended_seq, &a, a + 1))
			a++;
}

int log_await(struct log *l, uint64_t seq)
{
	while (atomic_load(&l->appended_seq) < seq) {
		if (atomic_load(&l->broken))
			return -EIO;
		sched_yield();
	}
	return 0;
}

/*
 * Byte-addressable media: the thread that fills a record flushes its
 * lines and fences before it counts the record as filled, so the
 * appended prefix is also the durable one and a commit has nothing left
 * to flush.  Threads filling records at once so flush them at once, each
 * on its own core, where a commit that flushed every record appended
 * since the last one did it on one thread while the others waited for
 * it.  A fence orders only its own thread's flushes, which is why each
 * filler fences its own: a committer that sees the record appended (the
 * marks and the prefix are sequentially consistent) sees it durable.
 */
static int flush_own(struct log *l, uint64_t off, uint64_t len)
{
	media_flush(l->m, off, len);
	return media_fence(l->m);
}

/* Pads the rest of the ring so the next record starts at the beginning. */
static int write_pad(struct log *l)
{
	uint64_t left = l->ring_end - l->tail_off;
	struct log_rec_hdr h;
	fill_header(l, &h, LOG_REC_PAD, NULL, (uint32_t)left, 0);
	h.checksum = record_checksum(l, &h, NULL);
	int rc = media_write(l->m, l->tail_off, &h, sizeof(h));
	if (!rc && media_direct(l->m))
		rc = flush_own(l, l->tail_off, sizeof(h));
	if (rc)
		return rc;
	l->used += left;
	l->tail_off = LOG_RING_START;
	l->tail_seq++;
	atomic_store(&l->reserved_seq, h.seq);
	filled(l, h.seq);
	return 0;
}

static uint64_t checksum_iov(const struct log *l, const struct log_rec_hdr *h,
                             const struct iovec *iov, int iovcnt)
{
	uint64_t seed = header_seed(l, h);
	if (iovcnt == 0)
		return checksum64_seeded(NULL, 0, seed);
	if (iovcnt == 1)
		return checksum64_seeded(iov[0].iov_base, iov[0].iov_len, seed);
	XXH3_state_t st;
	XXH3_64bits_reset_withSeed(&st, seed);
	for (int i = 0; i < iovcnt; i++)
		XXH3_64bits_update(&st, iov[i].iov_base, iov[i].iov_len);
	return XXH3_64bits_digest(&st);
}

static int write_record(struct log *l, uint64_t off, const struct log_rec_hdr *h,
                        const struct iovec *iov, int iovcnt)
{
	if (l->staging) {
		/* File media: one pwrite per record. */
		memcpy(l->staging, h, sizeof(*h));
		size_t at = sizeof(*h);
		for (int i = 0; i < iovcnt; i++) {
			memcpy(l->staging + at, iov[i].iov_base, iov[i].iov_len);
			at += iov[i].iov_len;
		}
		return media_write(l->m, off, l->staging, at);
	}
	/* Byte-addressable media: each piece is stored and flushed as it is
	 * copied (media_store), which costs less than copying it all and
	 * flushing the lines after; the filler then only fences. */
	int rc = 0;
	uint64_t at = off + sizeof(*h);
	for (int i = 0; i < iovcnt && !rc; i++) {
		rc = media_store(l->m, at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	if (!rc)
		rc = media_store(l->m, off, h, sizeof(*h));
	return rc;
}

static uint64_t space_needed(const struct log *l, uint64_t plen)
{
	uint64_t len = align_up(sizeof(struct log_rec_hdr) + plen, LOG_ALIGN);
	if (l->tail_off + len > l->ring_end)
		len += l->ring_end - l->tail_off;
	return len;
}

int log_room(const struct log *l, uint64_t payload_len)
{
	return l->used + space_needed(l, payload_len) + LOG_ALIGN <= ring_capacity(l);
}

/* Writes the reserved record from iov (on byte-addressable media, its
 * lines flushed but not fenced). */
static int store_fill(struct log *l, struct log_fill *fill, const struct iovec *iov, int iovcnt)
{
	fill->h.checksum = checksum_iov(l, &fill->h, iov, iovcnt);
	return write_record(l, fill->off, &fill->h, iov, iovcnt);
}

/* Writes the reserved record from iov and counts it as filled. */
static int fill_now(struct log *l, struct log_fill *fill, const struct iovec *iov, int iovcnt)
{
	fill->pending = 0;
	int rc = store_fill(l, fill, iov, iovcnt);
	if (!rc && media_direct(l->m))
		rc = media_fence(l->m); /* write_record flushed what it wrote */
	if (rc) {
		atomic_store(&l->broken, 1);
		return rc;
	}
	filled(l, fill->h.seq);
	return 0;
}

int log_reserve(struct log *l, uint16_t type, const uint64_t args[LOG_REC_ARGS],
                const struct iovec *iov, int iovcnt, struct log_pos *out, struct log_fill *fill)
{
	fill->pending = 0;
	size_t plen = iov_total(iov, iovcnt);
	if (plen > log_max_payload(l))
		return -E2BIG;
	uint64_t len = align_up(sizeof(struct log_rec_hdr) + plen, LOG_ALIGN);
	uint64_t need = len;
	int wrap = l->tail_off + len > l->ring_end;
	if (wrap)
		need += l->ring_end - l->tail_off;
	/* Keep one line free so a full ring never looks empty. */
	if (l->used + need + LOG_ALIGN > ring_capacity(l))
		return -ENOSPC;
	/* The pad and this record must find free marks in fill_mark. */
	int rc = log_await(l, l->tail_seq + 1 >= LOG_FILLS ? l->tail_seq + 1 - LOG_FILLS : 0);
	if (!rc && wrap)
		rc = write_pad(l);
	if (rc)
		return rc;
	fill_header(l, &fill->h, type, args, (uint32_t)len, (uint32_t)plen);
	fill->off = l->tail_off;
	fill->iovcnt = iovcnt <= LOG_FILL_IOV ? iovcnt : 0;
	for (int i = 0; i < fill->iovcnt; i++)
		fill->iov[i] = iov[i];
	if (out) {
		out->seq = fill->h.seq;
		out->off = l->tail_off;
		out->payload_off = l->tail_off + sizeof(fill->h);
		out->next_off = l->tail_off + len;
	}
	l->used += len;
	l->tail_off += len;
	if (l->tail_off + sizeof(fill->h) > l->ring_end) {
		l->used += l->ring_end - l->tail_off;
		l->tail_off = LOG_RING_START;
	}
	l->tail_seq++;
	fill->pending = 1;
	atomic_store(&l->reserved_seq, fill->h.seq);
	/* File media: the staging buffer is the caller's lock's. */
	if (l->staging || iovcnt > LOG_FILL_IOV)
		return fill_now(l, fill, iov, iovcnt);
	return 0;
}

int log_fills_later(const struct log *l)
{
	return l->staging == NULL;
}

int log_fill(struct log *l, struct log_fill *fill)
{
	return fill->pending ? fill_now(l, fill, fill->iov, fill->iovcnt) : 0;
}

/* Every pending record is stored and flushed, then one fence serves them
 * all before any is counted as filled.  A record is counted only after
 * the fence, as fill_now counts it, so a commit or a reader that sees it
 * appended sees it durable.  Only byte-addressable media leave records
 * pending (log_reserve writes the others at once), and a batch with none
 * pending costs no fence. */
int log_fill_many(struct log *l, struct log_fill *fills, int n)
{
	int rc = 0, stored = 0;
	for (int i = 0; i < n && !rc; i++) {
		if (!fills[i].pending)
			continue;
		rc = store_fill(l, &fills[i], fills[i].iov, fills[i].iovcnt);
		stored = 1;
	}
	if (!rc && stored)
		rc = media_fence(l->m);
	if (rc) {
		atomic_store(&l->broken, 1);
		return rc;
	}
	for (int i = 0; i < n; i++)
		if (fills[i].pending) {
			fills[i].pending = 0;
			filled(l, fills[i].h.seq);
		}
	return 0;
}

int log_append(struct log *l, uint16_t type, const uint64_t args[LOG_REC_ARGS],
               const struct iovec *iov, int iovcnt, struct log_pos *out)
{
	struct log_fill fill;
	int rc = log_reserve(l, type, args, iov, iovcnt, out, &fill);
	return rc ? rc : log_fill(l, &fill);
}

/*
 * Durability differs by medium.  On a file, fdatasync makes every completed
 * pwrite durable, whoever wrote it, so one thread's sync serves all
 * (group commit).  On persistent memory a fence only waits for the calling
 * core's own cache-line write-backs, so each record's filler flushes and
 * fences it (flush_own) and a commit waits for the appended prefix.  That
 * also keeps the prefix rule: a record counts as durable only once every
 * record before it is.
 */
static int commit_appended(struct log *l);

int log_commit(struct log *l, uint64_t seq)
{
	int rc = log_await(l, seq);
	if (rc)
		return rc;
	if (media_direct(l->m))
		return commit_appended(l);
	if (atomic_load(&l->durable_seq) >= seq)
		return 0;
	/* Whatever is appended now is covered by this fence. */
	uint64_t upto = atomic_load(&l->appended_seq);
	rc = media_fence(l->m);
	if (rc)
		return rc;
	uint64_t cur = atomic_load(&l->durable_seq);
	while (cur < upto && !atomic_compare_exchange_weak(&l->durable_seq, &cur, upto))
		;
	return 0;
}

/* Flushes the ring from `from` to `to` (it may wrap) on this thread. */
static void flush_ring(struct log *l, uint64_t from, uint64_t to)
{
	if (from == to)
		return;
	if (from < to) {
		media_flush(l->m, from, to - from);
		return;
	}
	media_flush(l->m, from, l->ring_end - from);
	media_flush(l->m, LOG_RING_START, to - LOG_RING_START);
}

int log_commit_all(struct log *l)
{
	uint64_t upto = atomic_load(&l->reserved_seq);
	if (!media_direct(l->m))
		return log_commit(l, upto);
	int rc = log_await(l, upto);
	return rc ? rc : commit_appended(l);
}

/* Byte-addressable media: every record appended is durable already (its
 * filler flushed and fenced it, flush_own), so a commit, once log_await
 * saw its record appended, only says so. */
static int commit_appended(struct log *l)
{
	uint64_t upto = atomic_load(&l->appended_seq);
	uint64_t cur = atomic_load(&l->durable_seq);
	while (cur < upto && !atomic_compare_exchange_weak(&l->durable_seq, &cur, upto))
		;
	return 0;
}

void log_reclaim(struct log *l, uint64_t head_off, uint64_t head_seq)
{
	/* Space between the old head and the new one, walking the ring. */
	uint64_t freed;
	if (head_off >= l->head_off)
		freed = head_off - l->head_off;
	else
		freed = (l->ring_end - l->head_off) + (head_off - LOG_RING_START);
	if (head_seq == l->tail_seq)
		freed = l->used; /* everything: pads at the end included */
	l->used -= freed > l->used ? l->used : freed;
	l->head_off = head_off;
	l->head_seq = head_seq;
}

int log_read(struct log *l, uint64_t off, void *buf, size_t len)
{
	return media_read(l->m, off, buf, len);
}

const void *log_direct(struct log *l, uint64_t off)
{
	const uint8_t *base = media_direct(l->m);
	return base ? base + off : NULL;
}

uint64_t log_capacity(const struct log *l)
{
	return ring_capacity(l);
}
uint64_t log_used(const struct log *l)
{
	return l->used;
}
uint64_t log_head_seq(const struct log *l)
{
	return l->head_seq;
}
uint64_t log_head_off(const struct log *l)
{
	return l->head_off;
}
uint64_t log_tail_seq(const struct log *l)
{
	return l->tail_seq;
}
uint64_t log_tail_off(const struct log *l)
{
	return l->tail_off;
}
uint64_t log_epoch(const struct log *l)
{
	return l->epoch;
}
