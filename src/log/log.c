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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/media.h"
#include "util/checksum.h"

struct log {
	struct media *m;
	uint64_t salt;       /* XXH3 of the volume UUID: seeds record checksums */
	uint64_t ring_end;   /* = media size, rounded down to LOG_ALIGN */
	uint64_t head_off, head_seq;
	uint64_t tail_off, tail_seq;
	uint64_t used;       /* bytes between head and tail, pads included */
	uint64_t epoch;
	int epoch_slot;      /* slot holding the current epoch */
	_Atomic uint64_t appended_seq; /* last seq appended */
	_Atomic uint64_t durable_seq;  /* last seq known durable (file media) */
	_Atomic uint64_t appended_end; /* ring offset after the last appended record */
	pthread_mutex_t commit_lock;   /* byte-addressable media: one commit_all at a time */
	uint64_t committed_end;        /* ... and how far it has flushed */
	uint8_t *staging;    /* file media: one contiguous record per write */
	size_t staging_size;
};

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

int log_format(struct media *m, const uint8_t uuid[16], char *err, size_t errlen)
{
	uint64_t size = media_size(m);
	if (size < LOG_RING_START + 64 * 1024) {
		snprintf(err, errlen, "log part %s: %llu bytes is too small (at least %u)",
			 media_path(m), (unsigned long long)size, LOG_RING_START + 64 * 1024);
		return -EINVAL;
	}
	struct log_super *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->magic = LOG_SUPER_MAGIC;
	s->version = LOG_FORMAT_VERSION;
	s->block_size = LOG_BLOCK;
	memcpy(s->uuid, uuid, 16);
	s->size = size;
	s->checksum = checksum_struct(s, sizeof(*s));
	int rc = media_store(m, 0, s, sizeof(*s));
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
		snprintf(err, errlen, "log part %s: cannot write: %s", media_path(m), strerror(-rc));
	return rc;
}

static int check_super(struct media *m, const uint8_t uuid[16], char *err, size_t errlen)
{
	struct log_super s;
	int rc = media_read(m, 0, &s, sizeof(s));
	if (rc) {
		snprintf(err, errlen, "log part %s: cannot read superblock: %s", media_path(m),
			 strerror(-rc));
		return rc;
	}
	const char *what = NULL;
	if (s.magic != LOG_SUPER_MAGIC)
		what = "bad magic number at offset 0 (not a cairn log)";
	else if (s.checksum != checksum_struct(&s, sizeof(s)))
		what = "superblock checksum mismatch at offset 0";
	else if (s.version != LOG_FORMAT_VERSION)
		what = "unsupported format version at offset 8";
	else if (s.block_size != LOG_BLOCK)
		what = "unsupported block size at offset 12";
	else if (memcmp(s.uuid, uuid, 16) != 0)
		what = "UUID at offset 16 belongs to another volume";
	else if (s.size != media_size(m))
		what = "part size differs from the size recorded at offset 32";
	if (what) {
		snprintf(err, errlen, "log part %s: %s", media_path(m), what);
		return -EUCLEAN;
	}
	return 0;
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

static int load_epoch(struct log *l, char *err, size_t errlen)
{
	uint64_t e0 = 0, e1 = 0;
	int ok0 = read_epoch(l->m, 0, &e0) == 0;
	int ok1 = read_epoch(l->m, 1, &e1) == 0;
	if (!ok0 && !ok1) {
		snprintf(err, errlen, "log part %s: both epoch slots (offsets 4096, 8192) are damaged",
			 media_path(l->m));
		return -EUCLEAN;
	}
	l->epoch_slot = (ok1 && (!ok0 || e1 > e0)) ? 1 : 0;
	l->epoch = l->epoch_slot ? e1 : e0;
	return 0;
}

int log_open(struct log **out, struct media *m, const uint8_t uuid[16], char *err, size_t errlen)
{
	int rc = check_super(m, uuid, err, errlen);
	if (rc)
		return rc;
	struct log *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->m = m;
	pthread_mutex_init(&l->commit_lock, NULL);
	l->salt = checksum64(uuid, 16);
	l->ring_end = media_size(m) / LOG_ALIGN * LOG_ALIGN;
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
	*out = l;
	return 0;
}

void log_close(struct log *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->commit_lock);
	free(l->staging);
	free(l);
}

/* ---- recovery ---------------------------------------------------------- */

/* Reads and validates the record at off.  Returns 1 if valid (payload in
 * *buf, grown as needed), 0 if the log ends here. */
static int read_record(struct log *l, uint64_t off, uint64_t seq, uint64_t min_epoch,
		       struct log_rec_hdr *h, uint8_t **buf, size_t *bufsz)
{
	if (off + sizeof(*h) > l->ring_end || media_read(l->m, off, h, sizeof(*h)))
		return 0;
	if (h->magic != LOG_REC_MAGIC || h->seq != seq)
		return 0;
	if (h->epoch < min_epoch || h->epoch > l->epoch)
		return 0;
	if (h->len < sizeof(*h) || h->len % LOG_ALIGN || h->len > l->ring_end - off)
		return 0;
	if (h->payload_len > h->len - sizeof(*h))
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

int log_recover(struct log *l, uint64_t head_off, uint64_t head_seq, log_replay_fn fn, void *arg,
		int read_only)
{
	if (head_off < LOG_RING_START || head_off >= l->ring_end || head_off % LOG_ALIGN)
		return -EUCLEAN;
	l->head_off = l->tail_off = head_off;
	l->head_seq = l->tail_seq = head_seq;
	l->used = 0;
	uint8_t *buf = NULL;
	size_t bufsz = 0;
	uint64_t min_epoch = 0;
	int rc = 0;
	struct log_rec_hdr h;
	while (l->used < ring_capacity(l) &&
	       read_record(l, l->tail_off, l->tail_seq, min_epoch, &h, &buf, &bufsz)) {
		if (h.type != LOG_REC_PAD) {
			rc = fn(arg, &h, buf, l->tail_off);
			if (rc == LOG_REPLAY_END) {
				rc = 0; /* the log ends before this record */
				break;
			}
			if (rc)
				break;
		}
		min_epoch = h.epoch;
		l->used += h.len;
		l->tail_off += h.len;
		if (h.type == LOG_REC_PAD || l->tail_off + sizeof(h) > l->ring_end) {
			l->used += l->ring_end - l->tail_off;
			l->tail_off = LOG_RING_START;
		}
		l->tail_seq++;
	}
	free(buf);
	atomic_store(&l->appended_seq, l->tail_seq - 1);
	atomic_store(&l->durable_seq, l->tail_seq - 1);
	atomic_store(&l->appended_end, l->tail_off);
	l->committed_end = l->tail_off;
	if (rc || read_only)
		return rc;
	int next = !l->epoch_slot;
	rc = write_epoch(l->m, next, l->epoch + 1);
	if (!rc) {
		l->epoch++;
		l->epoch_slot = next;
	}
	return rc;
}

int log_record_follows(struct log *l, uint64_t off, const struct log_rec_hdr *h)
{
	uint64_t next = off + h->len;
	if (h->type == LOG_REC_PAD || next + sizeof(*h) > l->ring_end)
		next = LOG_RING_START;
	struct log_rec_hdr nh;
	uint8_t *buf = NULL;
	size_t bufsz = 0;
	int valid = read_record(l, next, h->seq + 1, h->epoch, &nh, &buf, &bufsz);
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
	/* A record must fit even after a pad at the worst position. */
	uint64_t cap = ring_capacity(l) / 4;
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
	if (args)
		memcpy(h->args, args, sizeof(h->args));
}

/* Pads the rest of the ring so the next record starts at the beginning. */
static int write_pad(struct log *l)
{
	uint64_t left = l->ring_end - l->tail_off;
	struct log_rec_hdr h;
	fill_header(l, &h, LOG_REC_PAD, NULL, (uint32_t)left, 0);
	h.checksum = record_checksum(l, &h, NULL);
	int rc = media_store(l->m, l->tail_off, &h, sizeof(h));
	if (rc)
		return rc;
	l->used += left;
	l->tail_off = LOG_RING_START;
	l->tail_seq++;
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

static int write_record(struct log *l, const struct log_rec_hdr *h, const struct iovec *iov,
			int iovcnt)
{
	uint64_t off = l->tail_off;
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
	int rc = 0;
	uint64_t at = off + sizeof(*h);
	for (int i = 0; i < iovcnt && !rc; i++) {
		rc = media_write(l->m, at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	/* No flush here: the commit flushes everything appended before it,
	 * on its own thread (see log_commit). */
	if (!rc)
		rc = media_write(l->m, off, h, sizeof(*h));
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

int log_append(struct log *l, uint16_t type, const uint64_t args[LOG_REC_ARGS],
	       const struct iovec *iov, int iovcnt, struct log_pos *out)
{
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
	if (wrap) {
		int rc = write_pad(l);
		if (rc)
			return rc;
	}
	struct log_rec_hdr h;
	fill_header(l, &h, type, args, (uint32_t)len, (uint32_t)plen);
	h.checksum = checksum_iov(l, &h, iov, iovcnt);
	int rc = write_record(l, &h, iov, iovcnt);
	if (rc)
		return rc;
	if (out) {
		out->seq = h.seq;
		out->off = l->tail_off;
		out->payload_off = l->tail_off + sizeof(h);
		out->next_off = l->tail_off + len;
	}
	l->used += len;
	l->tail_off += len;
	if (l->tail_off + sizeof(h) > l->ring_end) {
		l->used += l->ring_end - l->tail_off;
		l->tail_off = LOG_RING_START;
	}
	l->tail_seq++;
	atomic_store(&l->appended_end, l->tail_off);
	atomic_store(&l->appended_seq, h.seq);
	return 0;
}

/*
 * Durability differs by medium.  On a file, fdatasync makes every completed
 * pwrite durable, whoever wrote it, so one thread's sync serves all
 * (group commit).  On persistent memory a fence only waits for the calling
 * core's own cache-line write-backs, so a commit flushes, on its own
 * thread, every line appended since the last commit - other threads'
 * records included - and then fences.  That also keeps the prefix rule: a
 * record is never durable while one before it may still be torn.
 */
int log_commit(struct log *l, uint64_t seq)
{
	if (media_direct(l->m))
		return log_commit_all(l);
	if (atomic_load(&l->durable_seq) >= seq)
		return 0;
	/* Whatever is appended now is covered by this fence. */
	uint64_t upto = atomic_load(&l->appended_seq);
	int rc = media_fence(l->m);
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
	if (!media_direct(l->m))
		return log_commit(l, atomic_load(&l->appended_seq));
	pthread_mutex_lock(&l->commit_lock);
	uint64_t end = atomic_load(&l->appended_end);
	flush_ring(l, l->committed_end, end);
	int rc = media_fence(l->m);
	if (!rc)
		l->committed_end = end;
	pthread_mutex_unlock(&l->commit_lock);
	return rc;
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
