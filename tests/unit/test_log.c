/*
 * test_log.c - unit tests of the operation log ring (src/log/log.c,
 * log.h, log_format.h) on the real media layer.
 *
 * Covers: format and open (superblock validation: UUID, flipped bytes,
 * size, unformatted part), the two epoch slots, recovery of an empty log
 * (epoch bump, read-only), append/commit/reopen/recover round trips with
 * multi-piece payloads on emul (/dev/shm) and file (/tmp), wrap-around with
 * PAD records and reclaim, -ENOSPC and log_room, -E2BIG and
 * log_max_payload, torn records, records with a valid checksum but a bad
 * header, stale records of an older epoch, stale records of a previously
 * formatted volume, the accessors, and log_commit from concurrent threads.
 *
 * Every part is a unique file that is unlinked right after it is first
 * opened; the test keeps a descriptor on it and reopens it through
 * /proc/self/fd, so nothing is left behind even when an assertion fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "log/log.h"
#include "log/log_format.h"
#include "media/media.h"
#include "util/checksum.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)

static const uint8_t UUID_A[16] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
                                   1,    2,    3,    4,    5,    6,    7,    8};
static const uint8_t UUID_B[16] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11,
                                   9,    10,   11,   12,   13,   14,   15,   16};

/* ---- cleanup: what a failed assertion leaves open ----------------------
 * cmocka leaves a test by longjmp when an assertion fails; the objects a
 * test uses are static and registered here, so the teardown closes and
 * frees whatever is still live (ASan's leak check stays meaningful). */

struct part;
struct recs;
#define LIVE_MAX 8
static struct log *live_logs[LIVE_MAX];
static struct part *live_parts[LIVE_MAX];
static struct recs *live_recs[LIVE_MAX];
static void *live_bufs[LIVE_MAX];

static void live_add(void **set, void *x)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (set[i] == x)
			return;
	for (int i = 0; i < LIVE_MAX; i++)
		if (!set[i]) {
			set[i] = x;
			return;
		}
	fail_msg("too many live objects");
}

static void live_del(void **set, void *x)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (set[i] == x)
			set[i] = NULL;
}

#define LIVE_ADD(set, x) live_add((void **)(set), (x))
#define LIVE_DEL(set, x) live_del((void **)(set), (x))

static void close_log(struct log *l)
{
	LIVE_DEL(live_logs, l);
	log_close(l);
}

/* ---- parts: a medium on a file that no longer has a name -------------- */

struct part {
	enum media_kind kind;
	int fd;        /* keeps the unlinked file alive */
	char proc[64]; /* /proc/self/fd/N: how it is reopened */
	struct media *m;
};

static void part_create(struct part *p, enum media_kind kind, uint64_t size)
{
	char path[64];
	const char *dir = kind == MEDIA_FILE ? "/tmp" : "/dev/shm";
	snprintf(path, sizeof(path), "%s/cairn-test-log-XXXXXX", dir);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char err[256] = "";
	struct media *m = NULL;
	int rc = media_open(&m, kind, path, size, MEDIA_CREATE, err, sizeof(err));
	unlink(path);
	if (rc)
		print_error("media_open %s: %d %s\n", path, rc, err);
	assert_int_equal(rc, 0);
	p->kind = kind;
	p->fd = fd;
	snprintf(p->proc, sizeof(p->proc), "/proc/self/fd/%d", fd);
	p->m = m;
	LIVE_ADD(live_parts, p);
}

/* Closes and reopens the medium, as a new process would after a crash. */
static void part_reopen(struct part *p)
{
	media_close(p->m);
	p->m = NULL;
	char err[256] = "";
	int rc = media_open(&p->m, p->kind, p->proc, 0, 0, err, sizeof(err));
	if (rc)
		print_error("media_open %s: %d %s\n", p->proc, rc, err);
	assert_int_equal(rc, 0);
}

/* A new part holding what p holds now: the image a crash would leave. */
static void part_copy(struct part *p, struct part *copy)
{
	uint64_t size = media_size(p->m);
	part_create(copy, p->kind, size);
	uint8_t *buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(media_read(p->m, 0, buf, size), 0);
	assert_int_equal(media_write(copy->m, 0, buf, size), 0);
	media_flush(copy->m, 0, size);
	assert_int_equal(media_fence(copy->m), 0);
	free(buf);
}

static void part_destroy(struct part *p)
{
	LIVE_DEL(live_parts, p);
	media_close(p->m);
	p->m = NULL;
	close(p->fd);
	p->fd = -1;
}

static void flip_byte(struct media *m, uint64_t off)
{
	uint8_t b;
	assert_int_equal(media_read(m, off, &b, 1), 0);
	b ^= 0x5a;
	assert_int_equal(media_store(m, off, &b, 1), 0);
	assert_int_equal(media_fence(m), 0);
}

static void format_ok(struct media *m, const uint8_t uuid[16])
{
	char err[256] = "";
	int rc = log_format(m, uuid, err, sizeof(err));
	if (rc)
		print_error("log_format: %d %s\n", rc, err);
	assert_int_equal(rc, 0);
}

static struct log *open_ok(struct media *m, const uint8_t uuid[16])
{
	char err[256] = "";
	struct log *l = NULL;
	int rc = log_open(&l, m, uuid, err, sizeof(err));
	if (rc)
		print_error("log_open: %d %s\n", rc, err);
	assert_int_equal(rc, 0);
	assert_non_null(l);
	LIVE_ADD(live_logs, l);
	return l;
}

/* log_open must fail with rc and explain why. */
static void open_fails(struct media *m, const uint8_t uuid[16], int want)
{
	char err[256] = "";
	struct log *l = NULL;
	int rc = log_open(&l, m, uuid, err, sizeof(err));
	if (rc == 0)
		log_close(l);
	assert_int_equal(rc, want);
	assert_true(strlen(err) > 0);
}

/* ---- records: what was appended and what recovery delivered ---------- */

struct rec {
	uint64_t seq, off, payload_off, next_off;
	uint16_t type;
	uint64_t args[LOG_REC_ARGS];
	uint32_t plen;
	uint8_t *payload;
};

struct recs {
	struct rec *v;
	size_t n, cap;
	struct log *l; /* for checking log_read/log_direct in the callback */
	int fail_at;   /* the callback returns -EIO at this seq (0: never) */
	int pads;      /* PAD records delivered (must stay 0) */
};

static void recs_push(struct recs *r, const struct rec *x)
{
	LIVE_ADD(live_recs, r);
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		assert_non_null(r->v);
	}
	r->v[r->n++] = *x;
}

static void recs_free(struct recs *r)
{
	LIVE_DEL(live_recs, r);
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].payload);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x2545f4914f6cdd1dull + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

static uint64_t rec_len(uint64_t plen)
{
	return (sizeof(struct log_rec_hdr) + plen + LOG_ALIGN - 1) / LOG_ALIGN * LOG_ALIGN;
}

/* Bytes between head and tail walking the ring, as log_used should say. */
static uint64_t ring_distance(struct log *l)
{
	uint64_t end = LOG_RING_START + log_capacity(l);
	uint64_t h = log_head_off(l), t = log_tail_off(l);
	if (log_head_seq(l) == log_tail_seq(l))
		return 0;
	return t > h ? t - h : (end - h) + (t - LOG_RING_START);
}

/* Appends one record of type 16+(seq%7) with plen payload bytes split into
 * up to 4 iovec pieces (some of them empty), checks the position it got,
 * and records it in exp (if not NULL).  Returns log_append's result. */
static int append_one(struct log *l, uint32_t plen, uint64_t tag, struct recs *exp)
{
	struct rec x;
	memset(&x, 0, sizeof(x));
	x.plen = plen;
	x.payload = plen ? malloc(plen) : NULL;
	if (plen)
		fill(x.payload, plen, tag);
	x.type = (uint16_t)(16 + tag % 7);
	x.args[0] = tag;
	x.args[1] = ~tag;
	x.args[2] = tag * 0x100000001ull;

	struct iovec iov[4];
	int iovcnt = 0;
	uint32_t at = 0;
	int pieces = 1 + (int)(tag % 4);
	for (int i = 0; i < pieces; i++) {
		uint32_t n = i == pieces - 1 ? plen - at : (uint32_t)(rnd() % (plen - at + 1));
		/* Empty pieces still point somewhere, as writev() callers do. */
		iov[iovcnt].iov_base = x.payload ? x.payload + at : (void *)&x;
		iov[iovcnt].iov_len = n;
		iovcnt++;
		at += n;
	}
	if (plen == 0 && tag % 2)
		iovcnt = 0; /* no iovec at all */

	uint64_t tail_off = log_tail_off(l), tail_seq = log_tail_seq(l), used = log_used(l);
	uint64_t end = LOG_RING_START + log_capacity(l);
	struct log_pos pos;
	memset(&pos, 0xff, sizeof(pos));
	int rc = log_append(l, x.type, x.args, iov, iovcnt, &pos);
	if (rc) {
		/* Nothing moved. */
		assert_int_equal(log_tail_off(l), tail_off);
		assert_int_equal(log_tail_seq(l), tail_seq);
		assert_int_equal(log_used(l), used);
		free(x.payload);
		return rc;
	}
	uint64_t len = rec_len(plen);
	int wrapped = tail_off + len > end;
	assert_int_equal(pos.seq, tail_seq + (wrapped ? 1 : 0)); /* a PAD takes a seq */
	assert_int_equal(pos.off, wrapped ? LOG_RING_START : tail_off);
	assert_int_equal(pos.payload_off, pos.off + sizeof(struct log_rec_hdr));
	assert_int_equal(pos.next_off, pos.off + len);
	assert_int_equal(log_tail_seq(l), pos.seq + 1);
	assert_int_equal(log_tail_off(l), pos.next_off == end ? LOG_RING_START : pos.next_off);
	assert_int_equal(log_used(l), used + len + (wrapped ? end - tail_off : 0));
	assert_int_equal(log_used(l), ring_distance(l));

	/* The payload is readable at payload_off at once. */
	if (plen) {
		uint8_t *back = malloc(plen);
		assert_int_equal(log_read(l, pos.payload_off, back, plen), 0);
		assert_memory_equal(back, x.payload, plen);
		free(back);
		const uint8_t *d = log_direct(l, pos.payload_off);
		if (d)
			assert_memory_equal(d, x.payload, plen);
	}
	x.seq = pos.seq;
	x.off = pos.off;
	x.payload_off = pos.payload_off;
	x.next_off = pos.next_off;
	if (exp)
		recs_push(exp, &x);
	else
		free(x.payload);
	return 0;
}

static int collect(void *arg, const struct log_rec_hdr *h, const void *payload, uint64_t off)
{
	struct recs *r = arg;
	if (h->type == LOG_REC_PAD)
		r->pads++;
	if (r->fail_at && h->seq == (uint64_t)r->fail_at)
		return -EIO;
	struct rec x;
	memset(&x, 0, sizeof(x));
	x.seq = h->seq;
	x.off = off;
	x.payload_off = off + sizeof(*h);
	x.next_off = off + h->len;
	x.type = h->type;
	memcpy(x.args, h->args, sizeof(x.args));
	x.plen = h->payload_len;
	if (x.plen) {
		x.payload = malloc(x.plen);
		memcpy(x.payload, payload, x.plen);
		/* The payload offset given to libfs reads back the payload. */
		uint8_t *back = malloc(x.plen);
		assert_int_equal(log_read(r->l, x.payload_off, back, x.plen), 0);
		assert_memory_equal(back, payload, x.plen);
		free(back);
		const uint8_t *d = log_direct(r->l, x.payload_off);
		if (d)
			assert_memory_equal(d, payload, x.plen);
	}
	recs_push(r, &x);
	return 0;
}

/* got->v[at, at + (to - from)) must be exp->v[from, to). */
static void check_range(const struct recs *got, size_t at, const struct recs *exp, size_t from,
                        size_t to)
{
	assert_true(got->n >= at + (to - from));
	for (size_t i = 0; i < to - from; i++) {
		const struct rec *g = &got->v[at + i], *e = &exp->v[from + i];
		assert_int_equal(g->seq, e->seq);
		assert_int_equal(g->off, e->off);
		assert_int_equal(g->payload_off, e->payload_off);
		assert_int_equal(g->next_off, e->next_off);
		assert_int_equal(g->type, e->type);
		assert_memory_equal(g->args, e->args, sizeof(g->args));
		assert_int_equal(g->plen, e->plen);
		if (e->plen)
			assert_memory_equal(g->payload, e->payload, e->plen);
	}
}

/* got must be exactly exp[from, to), and no PAD was delivered. */
static void check_recs(const struct recs *got, const struct recs *exp, size_t from, size_t to)
{
	assert_int_equal(got->pads, 0);
	if (got->n != to - from)
		print_error("recovered %zu records, expected %zu\n", got->n, to - from);
	assert_int_equal(got->n, to - from);
	check_range(got, 0, exp, from, to);
}

static int count_cb(void *arg, const struct log_rec_hdr *h, const void *payload, uint64_t off)
{
	(void)h;
	(void)payload;
	(void)off;
	(*(int *)arg)++;
	return 0;
}

/* Recovers into got (emptied first). */
static int recover_into(struct log *l, uint64_t head_off, uint64_t head_seq, struct recs *got,
                        int read_only)
{
	int fail_at = got->fail_at;
	recs_free(got);
	got->l = l;
	got->fail_at = fail_at;
	return log_recover(l, head_off, head_seq, collect, got, read_only);
}

/* A formatted, opened and recovered (epoch 2) log on a new part. */
static struct log *fresh_log(struct part *p, enum media_kind kind, uint64_t size)
{
	part_create(p, kind, size);
	format_ok(p->m, UUID_A);
	struct log *l = open_ok(p->m, UUID_A);
	int n = 0;
	assert_int_equal(log_recover(l, LOG_RING_START, 1, count_cb, &n, 0), 0);
	assert_int_equal(n, 0);
	assert_int_equal(log_epoch(l), 2);
	return l;
}

/* ---- format, open and validation -------------------------------------- */

static void test_format_open(void **state)
{
	(void)state;
	static struct part p;
	part_create(&p, MEDIA_EMUL, 1 * MIB);
	format_ok(p.m, UUID_A);
	struct log *l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 1);
	/* The ring ends where the backup superblock (the last block) starts. */
	assert_int_equal(log_capacity(l), 1 * MIB - LOG_RING_START - LOG_BLOCK);
	assert_true(log_max_payload(l) > 0);
	assert_true(log_max_payload(l) <= log_capacity(l) / 4);
	assert_int_equal(log_max_payload(l) % LOG_ALIGN, 0);
	close_log(l);

	/* The superblock as FORMAT.md describes it. */
	struct log_super s;
	assert_int_equal(media_read(p.m, 0, &s, sizeof(s)), 0);
	assert_int_equal(s.magic, LOG_SUPER_MAGIC);
	assert_int_equal(s.version, LOG_FORMAT_VERSION);
	assert_int_equal(s.block_size, LOG_BLOCK);
	assert_memory_equal(s.uuid, UUID_A, 16);
	assert_int_equal(s.size, 1 * MIB);
	struct log_super b;
	assert_int_equal(LOG_BACKUP_OFF(1 * MIB), 1 * MIB - LOG_BLOCK);
	assert_int_equal(media_read(p.m, LOG_BACKUP_OFF(1 * MIB), &b, sizeof(b)), 0);
	assert_memory_equal(&b, &s, sizeof(s)); /* the backup is the same bytes */
	struct log_epoch e;
	assert_int_equal(media_read(p.m, LOG_BLOCK, &e, sizeof(e)), 0);
	assert_int_equal(e.magic, LOG_EPOCH_MAGIC);
	assert_int_equal(e.epoch, 1);

	/* It survives closing the medium. */
	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 1);
	close_log(l);
	part_destroy(&p);

	/* Too small a part is refused at mkfs. */
	part_create(&p, MEDIA_EMUL, LOG_RING_START + 32 * KIB);
	char err[256] = "";
	assert_int_equal(log_format(p.m, UUID_A, err, sizeof(err)), -EINVAL);
	assert_true(strlen(err) > 0);
	part_destroy(&p);
}

static void test_open_unformatted(void **state)
{
	(void)state;
	static struct part p;
	part_create(&p, MEDIA_EMUL, 256 * KIB);
	open_fails(p.m, UUID_A, -EUCLEAN);
	part_destroy(&p);
}

static void test_open_wrong_uuid(void **state)
{
	(void)state;
	static struct part p;
	part_create(&p, MEDIA_EMUL, 256 * KIB);
	format_ok(p.m, UUID_A);
	open_fails(p.m, UUID_B, -EUCLEAN);
	uint8_t u[16];
	memcpy(u, UUID_A, 16);
	u[15] ^= 1; /* one bit off is another volume too */
	open_fails(p.m, u, -EUCLEAN);
	close_log(open_ok(p.m, UUID_A));
	part_destroy(&p);
}

/* Opens with one damaged copy: 0, a warning naming it, and the copy
 * log_super_damaged reports. */
static struct log *open_warned(struct media *m, uint64_t bad_off, unsigned bad_mask)
{
	char err[512] = "", want[64];
	struct log *l = NULL;
	int rc = log_open(&l, m, UUID_A, err, sizeof(err));
	if (rc)
		print_error("log_open with one damaged copy: %d %s\n", rc, err);
	assert_int_equal(rc, 0);
	LIVE_ADD(live_logs, l);
	snprintf(want, sizeof(want), "copy at offset %llu is damaged", (unsigned long long)bad_off);
	if (!strstr(err, want))
		fail_msg("warning \"%s\" does not say \"%s\"", err, want);
	uint64_t off = 1;
	const char *why = NULL;
	assert_int_equal(log_super_damaged(l, &off, &why), bad_mask);
	assert_int_equal(off, bad_off);
	assert_non_null(why);
	return l;
}

/* Every byte of a superblock copy is covered by its checksum; one damaged
 * copy is worked around (and said), the pair is refused, and
 * log_super_repair rewrites the damaged copy from the other. */
static void test_open_flipped_super(void **state)
{
	(void)state;
	static struct part p;
	part_create(&p, MEDIA_EMUL, 256 * KIB);
	format_ok(p.m, UUID_A);
	const uint64_t back = LOG_BACKUP_OFF(256 * KIB);
	/* magic, version, block size, uuid, size, reserved, checksum */
	const uint64_t offs[] = {0, 7, 8, 12, 16, 31, 32, 39, 40, 200, 2000, 4087, 4088, 4095};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		flip_byte(p.m, offs[i]);
		close_log(open_warned(p.m, 0, 1));
		flip_byte(p.m, back + offs[i]);
		char err[512] = "";
		struct log *l = NULL;
		int rc = log_open(&l, p.m, UUID_A, err, sizeof(err));
		if (rc == 0) {
			print_error("flipped byte %llu in both copies went unnoticed\n",
			            (unsigned long long)offs[i]);
			close_log(l);
		}
		assert_int_equal(rc, -EUCLEAN);
		assert_non_null(strstr(err, "both superblock copies are damaged"));
		flip_byte(p.m, offs[i]); /* the first copy back: the backup is damaged */
		l = open_warned(p.m, back, 2);
		assert_int_equal(log_super_repair(l), 0);
		close_log(l);
		l = open_ok(p.m, UUID_A);
		uint64_t off;
		const char *why;
		assert_int_equal(log_super_damaged(l, &off, &why), 0);
		close_log(l);
	}
	part_destroy(&p);
}

/* A part made by the previous format (one superblock, version 1) is
 * refused with a message that says so, not as damage. */
static void test_open_version1(void **state)
{
	(void)state;
	static struct part p;
	part_create(&p, MEDIA_EMUL, 256 * KIB);
	format_ok(p.m, UUID_A);
	struct log_super s;
	assert_int_equal(media_read(p.m, 0, &s, sizeof(s)), 0);
	s.version = 1;
	s.checksum = checksum_struct(&s, sizeof(s));
	assert_int_equal(media_store(p.m, 0, &s, sizeof(s)), 0);
	assert_int_equal(media_zero(p.m, LOG_BACKUP_OFF(256 * KIB), LOG_BLOCK), 0);
	char err[512] = "";
	struct log *l = NULL;
	assert_int_equal(log_open(&l, p.m, UUID_A, err, sizeof(err)), -EUCLEAN);
	assert_non_null(strstr(err, "format version 1"));
	part_destroy(&p);
}

static void test_open_wrong_size(void **state)
{
	(void)state;
	static struct part p;
	part_create(&p, MEDIA_EMUL, 256 * KIB);
	format_ok(p.m, UUID_A);
	/* The part grew (e.g. the manifest and the file disagree). */
	media_close(p.m);
	char err[256] = "";
	assert_int_equal(
	    media_open(&p.m, MEDIA_EMUL, p.proc, 512 * KIB, MEDIA_CREATE, err, sizeof(err)), 0);
	err[0] = 0;
	struct log *l = NULL;
	int rc = log_open(&l, p.m, UUID_A, err, sizeof(err));
	if (rc == 0)
		close_log(l);
	assert_true(rc == -EUCLEAN || rc == -EINVAL);
	assert_true(strlen(err) > 0);
	/* And shrinks back: the same superblock is valid again. */
	media_close(p.m);
	assert_int_equal(
	    media_open(&p.m, MEDIA_EMUL, p.proc, 256 * KIB, MEDIA_CREATE, err, sizeof(err)), 0);
	close_log(open_ok(p.m, UUID_A));
	part_destroy(&p);
}

static void test_epoch_slots(void **state)
{
	(void)state;
	static struct part p;
	part_create(&p, MEDIA_EMUL, 256 * KIB);
	format_ok(p.m, UUID_A);
	/* After mkfs only slot A is valid: damaging it leaves none. */
	flip_byte(p.m, LOG_BLOCK + 8);
	open_fails(p.m, UUID_A, -EUCLEAN);
	flip_byte(p.m, LOG_BLOCK + 8);

	struct log *l = open_ok(p.m, UUID_A);
	int n = 0;
	assert_int_equal(log_recover(l, LOG_RING_START, 1, count_cb, &n, 0), 0);
	assert_int_equal(log_epoch(l), 2);
	close_log(l);

	/* Slot A holds 1, slot B 2: the higher valid one wins. */
	l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 2);
	close_log(l);
	flip_byte(p.m, 2 * LOG_BLOCK + 63); /* B's checksum */
	l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 1);
	close_log(l);
	flip_byte(p.m, LOG_BLOCK); /* A's magic too */
	open_fails(p.m, UUID_A, -EUCLEAN);
	flip_byte(p.m, 2 * LOG_BLOCK + 63);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 2);
	/* The next mount writes the slot that is not current (A): A is whole
	 * again.  Damaged, A may have held epoch 3 (with records of it in the
	 * ring, which recovery accepts), so the new epoch is 4. */
	assert_int_equal(log_recover(l, LOG_RING_START, 1, count_cb, &n, 0), 0);
	assert_int_equal(log_epoch(l), 4);
	close_log(l);
	flip_byte(p.m, 2 * LOG_BLOCK + 8);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 4);
	close_log(l);
	assert_int_equal(n, 0);
	part_destroy(&p);
}

/* ---- recovery ---------------------------------------------------------- */

static void test_recover_empty(void **state)
{
	(void)state;
	static struct part p;
	part_create(&p, MEDIA_EMUL, 256 * KIB);
	format_ok(p.m, UUID_A);
	struct log *l = open_ok(p.m, UUID_A);
	int n = 0;
	assert_int_equal(log_recover(l, LOG_RING_START, 1, count_cb, &n, 1), 0);
	assert_int_equal(n, 0);
	assert_int_equal(log_epoch(l), 1); /* read-only: no new epoch */
	assert_int_equal(log_head_off(l), LOG_RING_START);
	assert_int_equal(log_tail_off(l), LOG_RING_START);
	assert_int_equal(log_head_seq(l), 1);
	assert_int_equal(log_tail_seq(l), 1);
	assert_int_equal(log_used(l), 0);
	close_log(l);
	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 1);
	assert_int_equal(log_recover(l, LOG_RING_START, 1, count_cb, &n, 0), 0);
	assert_int_equal(n, 0);
	assert_int_equal(log_epoch(l), 2);
	assert_int_equal(log_tail_seq(l), 1);
	assert_int_equal(log_used(l), 0);
	close_log(l);
	/* The new epoch is durable. */
	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 2);
	/* A head elsewhere in the ring with nothing there is empty too. */
	assert_int_equal(log_recover(l, LOG_RING_START + 64 * 40, 777, count_cb, &n, 0), 0);
	assert_int_equal(n, 0);
	assert_int_equal(log_epoch(l), 3);
	assert_int_equal(log_tail_seq(l), 777);
	assert_int_equal(log_tail_off(l), LOG_RING_START + 64 * 40);
	close_log(l);
	part_destroy(&p);
}

static void test_recover_bad_head(void **state)
{
	(void)state;
	static struct part p;
	struct log *l = fresh_log(&p, MEDIA_EMUL, 256 * KIB);
	uint64_t end = LOG_RING_START + log_capacity(l);
	int n = 0;
	assert_int_equal(log_recover(l, 0, 1, count_cb, &n, 1), -EUCLEAN);
	assert_int_equal(log_recover(l, LOG_RING_START - 64, 1, count_cb, &n, 1), -EUCLEAN);
	assert_int_equal(log_recover(l, LOG_RING_START + 8, 1, count_cb, &n, 1), -EUCLEAN);
	assert_int_equal(log_recover(l, end, 1, count_cb, &n, 1), -EUCLEAN);
	assert_int_equal(log_recover(l, end + 64, 1, count_cb, &n, 1), -EUCLEAN);
	assert_int_equal(n, 0);
	assert_int_equal(log_epoch(l), 2);
	close_log(l);
	part_destroy(&p);
}

static void roundtrip(enum media_kind kind)
{
	static struct part p;
	struct log *l = fresh_log(&p, kind, 4 * MIB);
	static struct recs exp, got;
	const uint32_t sizes[] = {0, 1, 7, 63, 64, 65, 100, 127, 128, 4096, 4097, 12345, 65536};
	for (int i = 0; i < 300; i++) {
		uint32_t plen = i < 13 ? sizes[i] : (uint32_t)(rnd() % (i % 10 == 0 ? 40000 : 700));
		assert_int_equal(append_one(l, plen, 1000 + (uint64_t)i, &exp), 0);
	}
	assert_int_equal(log_head_off(l), LOG_RING_START);
	assert_int_equal(log_head_seq(l), 1);
	assert_int_equal(log_tail_seq(l), 301);
	assert_int_equal(log_commit(l, exp.v[exp.n - 1].seq), 0);
	uint64_t tail_off = log_tail_off(l), used = log_used(l);
	close_log(l);

	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 2);
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	check_recs(&got, &exp, 0, exp.n);
	assert_int_equal(log_tail_seq(l), 301);
	assert_int_equal(log_tail_off(l), tail_off);
	assert_int_equal(log_used(l), used);
	assert_int_equal(log_used(l), ring_distance(l));
	assert_int_equal(log_epoch(l), 3);
	if (kind == MEDIA_FILE)
		assert_null(log_direct(l, LOG_RING_START));
	else
		assert_non_null(log_direct(l, LOG_RING_START));

	/* From a later head: only the records from there on. */
	assert_int_equal(recover_into(l, exp.v[100].off, exp.v[100].seq, &got, 1), 0);
	check_recs(&got, &exp, 100, exp.n);
	assert_int_equal(log_head_off(l), exp.v[100].off);
	assert_int_equal(log_head_seq(l), exp.v[100].seq);
	assert_int_equal(log_used(l), tail_off - exp.v[100].off);

	/* A head seq that does not match what is there finds nothing. */
	assert_int_equal(recover_into(l, exp.v[100].off, exp.v[100].seq + 1, &got, 1), 0);
	assert_int_equal(got.n, 0);

	/* Appending continues after the recovered tail, in the new epoch. */
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	assert_int_equal(log_epoch(l), 4);
	for (int i = 0; i < 20; i++)
		assert_int_equal(append_one(l, (uint32_t)(rnd() % 3000), 5000 + (uint64_t)i, &exp),
		                 0);
	assert_int_equal(log_commit_all(l), 0);
	close_log(l);
	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	check_recs(&got, &exp, 0, exp.n);
	close_log(l);
	recs_free(&got);
	recs_free(&exp);
	part_destroy(&p);
}

static void test_roundtrip_emul(void **state)
{
	(void)state;
	roundtrip(MEDIA_EMUL);
}

static void test_roundtrip_file(void **state)
{
	(void)state;
	roundtrip(MEDIA_FILE);
}

/* A callback error stops the scan, is returned, and makes no new epoch. */
static void test_recover_callback_error(void **state)
{
	(void)state;
	static struct part p;
	struct log *l = fresh_log(&p, MEDIA_EMUL, 256 * KIB);
	static struct recs exp, got;
	for (int i = 0; i < 10; i++)
		assert_int_equal(append_one(l, 200, (uint64_t)i, &exp), 0);
	assert_int_equal(log_commit_all(l), 0);
	close_log(l);
	l = open_ok(p.m, UUID_A);
	got.fail_at = 6;
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), -EIO);
	check_recs(&got, &exp, 0, 5);
	assert_int_equal(log_epoch(l), 2);
	close_log(l);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(log_epoch(l), 2);
	got.fail_at = 0;
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	check_recs(&got, &exp, 0, 10);
	close_log(l);
	recs_free(&got);
	recs_free(&exp);
	part_destroy(&p);
}

/* ---- wrap-around, room, reclaim ---------------------------------------- */

static void test_wraparound(void **state)
{
	(void)state;
	/* Sizes that are and are not a multiple of the record alignment. */
	const uint64_t part_sizes[] = {128 * KIB, 128 * KIB + 4096 + 100};
	for (size_t ps = 0; ps < 2; ps++) {
		static struct part p;
		struct log *l = fresh_log(&p, MEDIA_EMUL, part_sizes[ps]);
		uint64_t end = LOG_RING_START + log_capacity(l);
		assert_int_equal(end % LOG_ALIGN, 0);
		assert_true(end <= part_sizes[ps]);
		static struct recs exp, got;
		size_t head = 0; /* index in exp of the head record */
		int wraps = 0;
		/* Laps of the ring, reclaiming as a digest would. */
		for (int i = 0; wraps < 6; i++) {
			uint32_t plen = (uint32_t)(rnd() % 3000);
			uint64_t before = log_tail_off(l);
			int rc;
			while ((rc = append_one(l, plen, (uint64_t)i, &exp)) == -ENOSPC) {
				/* Digest half of what is there. */
				head += (exp.n - head) / 2 + 1;
				if (head >= exp.n) {
					head = exp.n;
					log_reclaim(l, log_tail_off(l), log_tail_seq(l));
				} else {
					log_reclaim(l, exp.v[head].off, exp.v[head].seq);
				}
				assert_int_equal(log_used(l), ring_distance(l));
			}
			assert_int_equal(rc, 0);
			if (log_tail_off(l) < before)
				wraps++;
		}
		assert_int_equal(log_commit_all(l), 0);

		/* Recover from the head, wherever it is now. */
		uint64_t tail_off = log_tail_off(l), tail_seq = log_tail_seq(l);
		uint64_t used = log_used(l);
		uint64_t hoff = log_head_off(l), hseq = log_head_seq(l);
		close_log(l);
		part_reopen(&p);
		l = open_ok(p.m, UUID_A);
		assert_int_equal(recover_into(l, hoff, hseq, &got, 0), 0);
		if (head < exp.n)
			check_recs(&got, &exp, head, exp.n);
		else
			assert_int_equal(got.n, 0);
		assert_int_equal(log_tail_off(l), tail_off);
		assert_int_equal(log_tail_seq(l), tail_seq);
		assert_int_equal(log_used(l), used);

		/* Now a head close to the end and records across it. */
		log_reclaim(l, log_tail_off(l), log_tail_seq(l));
		assert_int_equal(log_used(l), 0);
		while (log_tail_off(l) < end - 8 * KIB || log_tail_off(l) > end - 6 * KIB) {
			if (log_tail_off(l) > end - 6 * KIB) {
				/* past the window: move on to the next lap */
				assert_int_equal(append_one(l, 4000, 1, NULL), 0);
			} else {
				assert_int_equal(append_one(l, 100, 2, NULL), 0);
			}
			log_reclaim(l, log_tail_off(l), log_tail_seq(l));
		}
		recs_free(&exp);
		hoff = log_tail_off(l);
		hseq = log_tail_seq(l);
		int pad_seen = 0;
		for (int i = 0; i < 40; i++) {
			uint64_t seq_before = log_tail_seq(l);
			assert_int_equal(
			    append_one(l, 700 + 37 * (uint32_t)i, 100 + (uint64_t)i, &exp), 0);
			if (exp.v[exp.n - 1].seq != seq_before) {
				pad_seen++;
				assert_int_equal(exp.v[exp.n - 1].off, LOG_RING_START);
			}
		}
		assert_int_equal(pad_seen, 1);
		assert_true(exp.v[0].off > end - 8 * KIB - 1);
		assert_true(exp.v[exp.n - 1].off < exp.v[0].off); /* wrapped, short of the head */
		assert_int_equal(log_commit_all(l), 0);
		tail_off = log_tail_off(l);
		tail_seq = log_tail_seq(l);
		used = log_used(l);
		close_log(l);
		part_reopen(&p);
		l = open_ok(p.m, UUID_A);
		assert_int_equal(recover_into(l, hoff, hseq, &got, 0), 0);
		check_recs(&got, &exp, 0, exp.n);
		assert_int_equal(log_tail_off(l), tail_off);
		assert_int_equal(log_tail_seq(l), tail_seq);
		assert_int_equal(log_used(l), used);
		assert_int_equal(log_used(l), ring_distance(l));

		/* From the PAD itself as head: the records after the wrap. */
		size_t first_after = 0;
		while (exp.v[first_after].off != LOG_RING_START)
			first_after++;
		const struct rec *last = &exp.v[first_after - 1];
		assert_int_equal(recover_into(l, last->next_off, last->seq + 1, &got, 1), 0);
		check_recs(&got, &exp, first_after, exp.n);

		/* And reclaiming across the wrap frees the pad as well. */
		log_reclaim(l, exp.v[first_after].off, exp.v[first_after].seq);
		assert_int_equal(log_used(l), tail_off - LOG_RING_START);
		assert_int_equal(log_used(l), ring_distance(l));
		close_log(l);
		recs_free(&got);
		recs_free(&exp);
		part_destroy(&p);
	}
}

/* A record that ends exactly at the end of the ring: no PAD, the next one
 * starts at the ring's beginning. */
static void test_exact_fit_at_end(void **state)
{
	(void)state;
	static struct part p;
	struct log *l = fresh_log(&p, MEDIA_EMUL, 128 * KIB);
	uint64_t end = LOG_RING_START + log_capacity(l);
	static struct recs exp, got;
	/* Fill most of the ring, digest it all. */
	while (end - log_tail_off(l) > 4 * KIB) {
		assert_int_equal(append_one(l, 1000, 1, NULL), 0);
		log_reclaim(l, log_tail_off(l), log_tail_seq(l));
	}
	uint64_t hoff = log_tail_off(l), hseq = log_tail_seq(l);
	uint64_t left = end - hoff;
	assert_int_equal(append_one(l, (uint32_t)(left - 64), 7, &exp), 0); /* exactly to the end */
	assert_int_equal(exp.v[0].next_off, end);
	assert_int_equal(log_tail_off(l), LOG_RING_START);
	assert_int_equal(log_tail_seq(l), hseq + 1);
	assert_int_equal(append_one(l, 10, 8, &exp), 0);
	assert_int_equal(exp.v[1].off, LOG_RING_START);
	assert_int_equal(exp.v[1].seq, hseq + 1); /* no PAD in between */
	assert_int_equal(log_used(l), left + 128);
	assert_int_equal(log_commit_all(l), 0);
	close_log(l);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(recover_into(l, hoff, hseq, &got, 0), 0);
	check_recs(&got, &exp, 0, 2);
	assert_int_equal(log_used(l), left + 128);
	close_log(l);
	recs_free(&got);
	recs_free(&exp);
	part_destroy(&p);
}

static void test_enospc_and_reclaim(void **state)
{
	(void)state;
	static struct part p;
	struct log *l = fresh_log(&p, MEDIA_EMUL, 128 * KIB);
	static struct recs exp;
	/* Fill with fixed-size records: log_room predicts every append. */
	for (;;) {
		int room = log_room(l, 1000);
		int rc = append_one(l, 1000, exp.n, &exp);
		assert_int_equal(rc == 0, room != 0);
		if (rc) {
			assert_int_equal(rc, -ENOSPC);
			break;
		}
	}
	size_t full = exp.n;
	assert_true(full > 50);
	assert_true(log_used(l) + rec_len(1000) + LOG_ALIGN > log_capacity(l));
	assert_true(log_used(l) <= log_capacity(l) - LOG_ALIGN);
	/* Smaller records may still fit; then nothing does. */
	assert_int_equal(append_one(l, 1000, 0, NULL), -ENOSPC);
	while (log_room(l, 0))
		assert_int_equal(append_one(l, 0, 0, NULL), 0);
	assert_int_equal(append_one(l, 0, 0, NULL), -ENOSPC);
	assert_int_equal(log_used(l), log_capacity(l) - LOG_ALIGN);

	/* The digest frees the first 10 records: room for about 10 more. */
	log_reclaim(l, exp.v[10].off, exp.v[10].seq);
	assert_int_equal(log_head_off(l), exp.v[10].off);
	assert_int_equal(log_head_seq(l), exp.v[10].seq);
	assert_int_equal(log_used(l), ring_distance(l));
	int more = 0;
	while (log_room(l, 1000)) {
		assert_int_equal(append_one(l, 1000, 10000 + (uint64_t)more, &exp), 0);
		more++;
	}
	assert_int_equal(append_one(l, 1000, 0, NULL), -ENOSPC);
	assert_true(more >= 9 && more <= 10);

	/* Everything digested: the whole ring is free again. */
	log_reclaim(l, log_tail_off(l), log_tail_seq(l));
	assert_int_equal(log_used(l), 0);
	assert_true(log_room(l, log_max_payload(l)));

	/* Random sizes and random reclaims: log_room always agrees. */
	recs_free(&exp);
	size_t head = 0;
	for (int i = 0; i < 5000; i++) {
		uint32_t plen = (uint32_t)(rnd() % 9000);
		int room = log_room(l, plen);
		int rc = append_one(l, plen, (uint64_t)i, &exp);
		assert_int_equal(rc == 0, room != 0);
		if (rc == 0)
			continue;
		assert_int_equal(rc, -ENOSPC);
		head += rnd() % (exp.n - head + 1);
		if (head == exp.n)
			log_reclaim(l, log_tail_off(l), log_tail_seq(l));
		else
			log_reclaim(l, exp.v[head].off, exp.v[head].seq);
		assert_int_equal(log_used(l), ring_distance(l));
	}
	close_log(l);
	recs_free(&exp);
	part_destroy(&p);
}

static void e2big(enum media_kind kind, uint64_t size)
{
	static struct part p;
	struct log *l = fresh_log(&p, kind, size);
	uint64_t max = log_max_payload(l);
	if (kind == MEDIA_FILE)
		assert_true(max <= 1 * MIB); /* one staged write per record */
	uint8_t *buf = calloc(1, max + 4096);
	assert_non_null(buf);
	LIVE_ADD(live_bufs, buf);
	struct iovec iov = {.iov_base = buf, .iov_len = max + 1};
	uint64_t args[LOG_REC_ARGS] = {1, 2, 3};
	struct log_pos pos;
	assert_int_equal(log_append(l, 20, args, &iov, 1, &pos), -E2BIG);
	iov.iov_len = max + 4096;
	assert_int_equal(log_append(l, 20, args, &iov, 1, &pos), -E2BIG);
	/* Split over two pieces, the total counts. */
	struct iovec two[2] = {{buf, max}, {buf, 1}};
	assert_int_equal(log_append(l, 20, args, two, 2, &pos), -E2BIG);
	assert_int_equal(log_tail_seq(l), 1);
	assert_int_equal(log_used(l), 0);

	/* max always fits in an otherwise empty ring, wherever the tail is. */
	static struct recs exp, got;
	int wraps = 0;
	for (int i = 0; wraps < 2; i++) {
		uint64_t before = log_tail_off(l);
		log_reclaim(l, log_tail_off(l), log_tail_seq(l));
		uint64_t hoff = log_tail_off(l), hseq = log_tail_seq(l);
		recs_free(&exp);
		assert_int_equal(append_one(l, (uint32_t)max, (uint64_t)i, &exp), 0);
		if (kind == MEDIA_FILE || i % 4 == 0) {
			assert_int_equal(log_commit_all(l), 0);
			assert_int_equal(recover_into(l, hoff, hseq, &got, 1), 0);
			check_recs(&got, &exp, 0, 1);
		}
		/* Move the tail a little so the next one lands elsewhere. */
		log_reclaim(l, log_tail_off(l), log_tail_seq(l));
		assert_int_equal(append_one(l, (uint32_t)(rnd() % 5000), 0, NULL), 0);
		if (log_tail_off(l) < before)
			wraps++;
		if (kind == MEDIA_FILE && i > 40)
			break;
	}
	close_log(l);
	LIVE_DEL(live_bufs, buf);
	free(buf);
	recs_free(&exp);
	recs_free(&got);
	part_destroy(&p);
}

static void test_e2big_emul(void **state)
{
	(void)state;
	e2big(MEDIA_EMUL, 128 * KIB);
}

static void test_e2big_file(void **state)
{
	(void)state;
	e2big(MEDIA_FILE, 8 * MIB);
}

/* ---- torn and stale records -------------------------------------------- */

enum tear {
	TEAR_PAYLOAD_FIRST,
	TEAR_PAYLOAD_LAST,
	TEAR_MAGIC,
	TEAR_TYPE,
	TEAR_LEN,
	TEAR_PLEN,
	TEAR_SEQ,
	TEAR_EPOCH,
	TEAR_ARG,
	TEAR_CHECKSUM,
	TEAR_COUNT
};

static uint64_t tear_offset(const struct rec *r, enum tear t)
{
	switch (t) {
	case TEAR_PAYLOAD_FIRST:
		return r->payload_off;
	case TEAR_PAYLOAD_LAST:
		return r->payload_off + r->plen - 1;
	case TEAR_MAGIC:
		return r->off + offsetof(struct log_rec_hdr, magic);
	case TEAR_TYPE:
		return r->off + offsetof(struct log_rec_hdr, type);
	case TEAR_LEN:
		return r->off + offsetof(struct log_rec_hdr, len);
	case TEAR_PLEN:
		return r->off + offsetof(struct log_rec_hdr, payload_len);
	case TEAR_SEQ:
		return r->off + offsetof(struct log_rec_hdr, seq);
	case TEAR_EPOCH:
		return r->off + offsetof(struct log_rec_hdr, epoch) + 1;
	case TEAR_ARG:
		return r->off + offsetof(struct log_rec_hdr, args) + 13;
	default:
		return r->off + offsetof(struct log_rec_hdr, checksum) + 7;
	}
}

static void torn(enum media_kind kind)
{
	for (int t = 0; t < TEAR_COUNT; t++) {
		static struct part p;
		struct log *l = fresh_log(&p, kind, 512 * KIB);
		static struct recs exp, got;
		for (int i = 0; i < 12; i++)
			assert_int_equal(append_one(l, 300 + 50 * (uint32_t)i, (uint64_t)i, &exp),
			                 0);
		assert_int_equal(log_commit_all(l), 0);
		close_log(l);
		const size_t k = 6; /* records 1..6 valid, 7 torn */
		flip_byte(p.m, tear_offset(&exp.v[k], (enum tear)t));
		part_reopen(&p);
		l = open_ok(p.m, UUID_A);
		assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
		if (got.n != k)
			print_error("tear %d: %zu records recovered\n", t, got.n);
		check_recs(&got, &exp, 0, k);
		assert_int_equal(log_tail_off(l), exp.v[k].off);
		assert_int_equal(log_tail_seq(l), exp.v[k].seq);
		assert_int_equal(log_used(l), exp.v[k].off - LOG_RING_START);
		close_log(l);
		recs_free(&got);
		recs_free(&exp);
		part_destroy(&p);
	}
}

static void test_torn_emul(void **state)
{
	(void)state;
	torn(MEDIA_EMUL);
}

static void test_torn_file(void **state)
{
	(void)state;
	torn(MEDIA_FILE);
}

/* ---- damage past which valid records lie --------------------------------
 * A record that had been durable (a later record was appended after its
 * commit) and is now invalid is damage, not a torn tail: recovery must say
 * so instead of silently dropping what follows. */

static void append_committed(struct log *l, uint32_t plen, uint64_t tag, struct recs *exp)
{
	assert_int_equal(append_one(l, plen, tag, exp), 0);
	assert_int_equal(log_commit_all(l), 0);
}

/* The damage recovery must report: record `bad` of exp, with every
 * non-PAD record after it (up to exp's end) valid. */
static void expect_damage(struct log *l, const struct recs *exp, size_t bad)
{
	struct log_damage d;
	if (!log_damage(l, &d))
		fail_msg("the damaged record %zu went unnoticed", bad);
	assert_int_equal(d.off, exp->v[bad].off);
	assert_int_equal(d.seq, exp->v[bad].seq);
	assert_int_equal(d.lost, exp->n - bad - 1);
	assert_int_equal(d.first_seq, exp->v[bad + 1].seq);
	assert_int_equal(d.last_seq, exp->v[exp->n - 1].seq);
	char msg[512];
	log_damage_describe(l, msg, sizeof(msg));
	char want[128];
	snprintf(want, sizeof(want),
	         "offset %llu (sequence %llu) is damaged, and %zu valid records",
	         (unsigned long long)d.off, (unsigned long long)d.seq, exp->n - bad - 1);
	if (!strstr(msg, want))
		fail_msg("\"%s\" does not say \"%s\"", msg, want);
}

static void expect_no_damage(struct log *l)
{
	struct log_damage d;
	if (log_damage(l, &d))
		fail_msg("damage reported at offset %llu (%llu records) where there is none",
		         (unsigned long long)d.off, (unsigned long long)d.lost);
}

/*
 * Damages record `bad` of exp (already durable, records after it too) and
 * checks: a read-write recovery refuses (-EUCLEAN, no new epoch) and names
 * it; a read-only one recovers the prefix and names it; log_drop_damaged
 * cuts the log there, after which a recovery is silent and appends go on
 * from the damaged record's place.
 */
static void check_damage_refused(struct part *p, struct recs *exp, size_t bad, uint64_t hoff,
                                 uint64_t hseq, size_t first, uint64_t flip_at)
{
	static struct recs got;
	flip_byte(p->m, flip_at);
	part_reopen(p);
	struct log *l = open_ok(p->m, UUID_A);
	uint64_t epoch = log_epoch(l);
	assert_int_equal(recover_into(l, hoff, hseq, &got, 0), -EUCLEAN);
	expect_damage(l, exp, bad);
	check_recs(&got, exp, first, bad);
	close_log(l);
	l = open_ok(p->m, UUID_A);
	assert_int_equal(log_epoch(l), epoch); /* nothing was written */
	assert_int_equal(recover_into(l, hoff, hseq, &got, 1), 0);
	check_recs(&got, exp, first, bad);
	expect_damage(l, exp, bad);
	assert_int_equal(log_drop_damaged(l), 0);
	close_log(l);
	part_reopen(p);
	l = open_ok(p->m, UUID_A);
	assert_int_equal(recover_into(l, hoff, hseq, &got, 0), 0);
	check_recs(&got, exp, first, bad);
	expect_no_damage(l);
	assert_int_equal(log_epoch(l), epoch + 1);
	assert_int_equal(log_tail_off(l), exp->v[bad].off);
	static struct recs more;
	assert_int_equal(append_one(l, 10, 77, &more), 0);
	assert_int_equal(more.v[0].seq, exp->v[bad].seq);
	close_log(l);
	recs_free(&more);
	recs_free(&got);
}

static void damage_early_record(enum media_kind kind)
{
	const enum tear tears[] = {TEAR_PAYLOAD_FIRST, TEAR_MAGIC, TEAR_LEN, TEAR_SEQ,
	                           TEAR_CHECKSUM};
	for (size_t t = 0; t < sizeof(tears) / sizeof(tears[0]); t++) {
		static struct part p;
		struct log *l = fresh_log(&p, kind, 512 * KIB);
		static struct recs exp;
		for (int i = 0; i < 12; i++)
			append_committed(l, 300 + 50 * (uint32_t)i, (uint64_t)i, &exp);
		close_log(l);
		/* One byte a fifth of the way in: records 4..12 were acknowledged. */
		check_damage_refused(&p, &exp, 2, LOG_RING_START, 1, 0,
		                     tear_offset(&exp.v[2], tears[t]));
		recs_free(&exp);
		part_destroy(&p);
	}
}

static void test_damage_emul(void **state)
{
	(void)state;
	damage_early_record(MEDIA_EMUL);
}

static void test_damage_file(void **state)
{
	(void)state;
	damage_early_record(MEDIA_FILE);
}

/* What a crash leaves stays silent: the last record torn, or a record torn
 * among others appended with it before one commit (none of them was
 * acknowledged before the next was written). */
static void test_torn_tail_is_silent(void **state)
{
	(void)state;
	static struct part p;
	static struct recs exp, got;
	struct log *l = fresh_log(&p, MEDIA_EMUL, 512 * KIB);
	for (int i = 0; i < 12; i++)
		append_committed(l, 200, (uint64_t)i, &exp);
	close_log(l);
	flip_byte(p.m, exp.v[11].off); /* the last one */
	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	check_recs(&got, &exp, 0, 11);
	expect_no_damage(l);
	close_log(l);
	recs_free(&exp);
	part_destroy(&p);

	l = fresh_log(&p, MEDIA_EMUL, 512 * KIB);
	for (int i = 0; i < 6; i++)
		append_committed(l, 200, (uint64_t)i, &exp);
	for (int i = 6; i < 12; i++) /* a batch: one commit for six records */
		assert_int_equal(append_one(l, 200, (uint64_t)i, &exp), 0);
	assert_int_equal(log_commit_all(l), 0);
	close_log(l);
	flip_byte(p.m, exp.v[7].payload_off);
	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	check_recs(&got, &exp, 0, 7);
	expect_no_damage(l);
	close_log(l);
	recs_free(&got);
	recs_free(&exp);
	part_destroy(&p);
}

/* Laps of committed records, each digested at once, leave records of
 * earlier laps (older sequence numbers) everywhere past the tail; then a
 * run of committed records across the ring's end (a PAD, then the start).
 * Returns the log closed; exp holds the run, hoff and hseq its head. */
static void laps_then_run(struct part *p, struct recs *exp, uint64_t *hoff, uint64_t *hseq)
{
	struct log *l = fresh_log(p, MEDIA_EMUL, 128 * KIB);
	uint64_t end = LOG_RING_START + log_capacity(l);
	for (int i = 0; i < 300; i++) {
		append_committed(l, (uint32_t)(rnd() % 2000), (uint64_t)i, NULL);
		log_reclaim(l, log_tail_off(l), log_tail_seq(l));
	}
	while (log_tail_off(l) < end - 8 * KIB || log_tail_off(l) > end - 6 * KIB) {
		append_committed(l, log_tail_off(l) > end - 6 * KIB ? 4000 : 100, 1, NULL);
		log_reclaim(l, log_tail_off(l), log_tail_seq(l));
	}
	*hoff = log_tail_off(l);
	*hseq = log_tail_seq(l);
	for (int i = 0; i < 30; i++)
		append_committed(l, 700 + 37 * (uint32_t)i, 100 + (uint64_t)i, exp);
	assert_true(exp->v[exp->n - 1].off < *hoff); /* wrapped */
	close_log(l);
}

static size_t first_after_wrap(const struct recs *exp)
{
	size_t k = 0;
	while (exp->v[k].off != LOG_RING_START)
		k++;
	return k;
}

static void test_damage_across_wrap(void **state)
{
	(void)state;
	static struct part p;
	static struct recs exp, got;
	uint64_t hoff, hseq;
	/* The record before the PAD: the rest is found past the wrap. */
	laps_then_run(&p, &exp, &hoff, &hseq);
	size_t k = first_after_wrap(&exp);
	check_damage_refused(&p, &exp, k - 1, hoff, hseq, 0, exp.v[k - 1].payload_off);
	recs_free(&exp);
	part_destroy(&p);

	/* The PAD itself: its "payload" is stale space, records resume at the
	 * ring's start. */
	laps_then_run(&p, &exp, &hoff, &hseq);
	k = first_after_wrap(&exp);
	flip_byte(p.m, exp.v[k - 1].next_off); /* the PAD's magic */
	part_reopen(&p);
	struct log *l = open_ok(p.m, UUID_A);
	assert_int_equal(recover_into(l, hoff, hseq, &got, 0), -EUCLEAN);
	check_recs(&got, &exp, 0, k);
	struct log_damage d;
	assert_int_equal(log_damage(l, &d), 1);
	assert_int_equal(d.off, exp.v[k - 1].next_off);
	assert_int_equal(d.seq, exp.v[k - 1].seq + 1);
	assert_int_equal(d.lost, exp.n - k);
	close_log(l);
	recs_free(&exp);
	part_destroy(&p);

	/* A record after the wrap, and the last one (a torn tail: stale
	 * records of earlier laps lie right after it and are not counted). */
	laps_then_run(&p, &exp, &hoff, &hseq);
	k = first_after_wrap(&exp);
	check_damage_refused(&p, &exp, k + 2, hoff, hseq, 0, exp.v[k + 2].off + 20);
	recs_free(&exp);
	part_destroy(&p);
	laps_then_run(&p, &exp, &hoff, &hseq);
	int stale = 0; /* the trap: stale records close after the tail */
	for (uint64_t off = exp.v[exp.n - 1].next_off; off < hoff && !stale; off += LOG_ALIGN) {
		struct log_rec_hdr h;
		assert_int_equal(media_read(p.m, off, &h, sizeof(h)), 0);
		stale = h.magic == LOG_REC_MAGIC && h.seq < hseq;
	}
	assert_true(stale);
	flip_byte(p.m, exp.v[exp.n - 1].payload_off);
	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(recover_into(l, hoff, hseq, &got, 0), 0);
	check_recs(&got, &exp, 0, exp.n - 1);
	expect_no_damage(l);
	close_log(l);
	recs_free(&got);
	recs_free(&exp);
	part_destroy(&p);
}

/* Records whose checksum is right but whose header is not: recovery must
 * check the header fields itself (what a fuzzer or a stray copy of a record
 * would produce).  The first case is well formed, to show that forging
 * works at all. */
enum forge {
	FORGE_OK,
	FORGE_MAGIC,
	FORGE_SEQ,
	FORGE_EPOCH_NEWER,
	FORGE_EPOCH_OLDER,
	FORGE_LEN_SHORT,
	FORGE_LEN_UNALIGNED,
	FORGE_LEN_PAST_END,
	FORGE_PLEN_PAST_LEN,
	FORGE_COUNT
};

/* The record checksum as docs/FORMAT.md defines it: XXH3-64 of the
 * payload, seeded with the XXH3-64 of header bytes 0..55, itself seeded with
 * the XXH3-64 of the volume UUID. */
static uint64_t forge_checksum(const struct log_rec_hdr *h, const void *payload,
                               const uint8_t uuid[16])
{
	uint64_t salt = checksum64(uuid, 16);
	uint64_t seed = checksum64_seeded(h, offsetof(struct log_rec_hdr, checksum), salt);
	return checksum64_seeded(payload, h->payload_len, seed);
}

static void test_forged_headers(void **state)
{
	(void)state;
	static struct part p;
	struct log *l = fresh_log(&p, MEDIA_EMUL, 256 * KIB);
	static struct recs exp, got;
	for (int i = 0; i < 3; i++)
		assert_int_equal(append_one(l, 300, (uint64_t)i, &exp), 0);
	assert_int_equal(log_commit_all(l), 0);
	uint64_t at = log_tail_off(l), end = LOG_RING_START + log_capacity(l);
	uint64_t epoch = log_epoch(l);
	for (int f = 0; f < FORGE_COUNT; f++) {
		struct {
			struct log_rec_hdr h;
			uint8_t payload[256];
		} r;
		memset(&r, 0, sizeof(r));
		fill(r.payload, sizeof(r.payload), 77);
		r.h.magic = LOG_REC_MAGIC;
		r.h.type = 20;
		r.h.len = 192;
		r.h.payload_len = 100;
		r.h.seq = 4;
		r.h.epoch = epoch;
		r.h.args[0] = 4;
		switch ((enum forge)f) {
		case FORGE_OK:
			break;
		case FORGE_MAGIC:
			r.h.magic ^= 1;
			break;
		case FORGE_SEQ:
			r.h.seq = 5;
			break;
		case FORGE_EPOCH_NEWER:
			r.h.epoch = epoch + 1;
			break;
		case FORGE_EPOCH_OLDER: /* older than record 3 before it */
			r.h.epoch = epoch - 1;
			break;
		case FORGE_LEN_SHORT:
			r.h.len = 32;
			r.h.payload_len = 0;
			break;
		case FORGE_LEN_UNALIGNED:
			r.h.len = 200;
			break;
		case FORGE_LEN_PAST_END:
			r.h.len = (uint32_t)(end - at + LOG_ALIGN);
			break;
		case FORGE_PLEN_PAST_LEN:
			r.h.payload_len = 129; /* len 192 holds 128 */
			break;
		default:
			break;
		}
		r.h.checksum = forge_checksum(&r.h, r.payload, UUID_A);
		assert_int_equal(media_store(p.m, at, &r, sizeof(r)), 0);
		assert_int_equal(media_fence(p.m), 0);
		assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 1), 0);
		size_t want = f == FORGE_OK ? 4 : 3;
		if (got.n != want)
			print_error(
			    "forged header %d: %zu records recovered%s\n", f, got.n,
			    f == FORGE_OK ? " (is forge_checksum still what FORMAT.md says?)" : "");
		assert_int_equal(got.n, want);
		check_range(&got, 0, &exp, 0, 3);
		assert_int_equal(log_tail_seq(l), want + 1);
		if (f == FORGE_OK) {
			assert_int_equal(got.v[3].plen, 100);
			assert_memory_equal(got.v[3].payload, r.payload, 100);
		}
	}
	close_log(l);
	recs_free(&got);
	recs_free(&exp);
	part_destroy(&p);
}

/* Records 1..5, record 3 torn; recovery sets the tail at 3 and a new epoch;
 * a new record 3 of the same length is appended and the process dies.  Old
 * records 4 and 5 still sit right after it with the seqs that would come
 * next: only their older epoch tells them apart. */
static void test_stale_epoch(void **state)
{
	(void)state;
	static struct part p;
	struct log *l = fresh_log(&p, MEDIA_EMUL, 256 * KIB);
	static struct recs exp, got;
	for (int i = 0; i < 5; i++)
		assert_int_equal(append_one(l, 500, (uint64_t)i, &exp), 0);
	assert_int_equal(log_commit_all(l), 0);
	uint64_t old_epoch = log_epoch(l);
	close_log(l);
	flip_byte(p.m, exp.v[2].payload_off + 100);

	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	check_recs(&got, &exp, 0, 2);
	assert_int_equal(log_epoch(l), old_epoch + 1);
	assert_int_equal(log_tail_seq(l), 3);
	assert_int_equal(log_tail_off(l), exp.v[2].off);

	static struct recs exp2;
	assert_int_equal(append_one(l, 500, 99, &exp2), 0);
	assert_int_equal(exp2.v[0].seq, 3);
	assert_int_equal(exp2.v[0].off, exp.v[2].off);
	assert_int_equal(exp2.v[0].next_off, exp.v[3].off);
	assert_int_equal(log_commit_all(l), 0);
	close_log(l); /* crash */

	/* The trap is armed: old record 4 is intact and has seq 4. */
	struct log_rec_hdr h;
	assert_int_equal(media_read(p.m, exp.v[3].off, &h, sizeof(h)), 0);
	assert_int_equal(h.magic, LOG_REC_MAGIC);
	assert_int_equal(h.seq, 4);
	assert_int_equal(h.epoch, old_epoch);

	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	if (got.n != 3)
		print_error("recovered %zu records: old records 4, 5 of epoch %llu came back\n",
		            got.n, (unsigned long long)old_epoch);
	assert_int_equal(got.n, 3);
	assert_int_equal(got.pads, 0);
	check_range(&got, 0, &exp, 0, 2);
	check_range(&got, 2, &exp2, 0, 1);
	assert_int_equal(log_tail_seq(l), 4);
	assert_int_equal(log_tail_off(l), exp.v[3].off);
	assert_int_equal(log_epoch(l), old_epoch + 2);
	close_log(l);
	recs_free(&got);
	recs_free(&exp);
	recs_free(&exp2);
	part_destroy(&p);
}

/* A new volume formatted over an old log part: records of the old volume
 * that sit where the new volume's next records would go must not be
 * recovered as the new volume's, even when seq and epoch happen to match
 * (both volumes wrote their first records in epoch 2). */
static void test_reformat_stale(void **state)
{
	(void)state;
	static struct part p;
	struct log *l = fresh_log(&p, MEDIA_EMUL, 256 * KIB);
	for (int i = 0; i < 40; i++)
		assert_int_equal(append_one(l, 1000, 0xdead00 + (uint64_t)i, NULL), 0);
	assert_int_equal(log_commit_all(l), 0);
	close_log(l);

	/* mkfs of another volume on the same part. */
	format_ok(p.m, UUID_B);
	l = open_ok(p.m, UUID_B);
	static struct recs exp, got;
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	assert_int_equal(got.n, 0);
	assert_int_equal(log_epoch(l), 2);
	for (int i = 0; i < 10; i++)
		assert_int_equal(append_one(l, 1000, (uint64_t)i, &exp), 0);
	assert_int_equal(log_commit_all(l), 0);
	close_log(l); /* crash */

	part_reopen(&p);
	l = open_ok(p.m, UUID_B);
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	if (got.n != exp.n)
		print_error("recovered %zu records, the new volume wrote %zu: records of the "
		            "old volume were taken for the new one's\n",
		            got.n, exp.n);
	check_recs(&got, &exp, 0, exp.n);
	close_log(l);
	recs_free(&got);
	recs_free(&exp);
	part_destroy(&p);
}

/* ---- commit -------------------------------------------------------------- */

static void test_commit_file_syncs(void **state)
{
	(void)state;
	static struct part p;
	struct log *l = fresh_log(&p, MEDIA_FILE, 1 * MIB);
	static struct recs exp;
	assert_int_equal(append_one(l, 100, 1, &exp), 0);
	uint64_t s0 = media_sync_count(p.m);
	assert_int_equal(log_commit(l, exp.v[0].seq), 0);
	uint64_t s1 = media_sync_count(p.m);
	assert_true(s1 > s0);
	/* Already durable: no second fdatasync. */
	assert_int_equal(log_commit(l, exp.v[0].seq), 0);
	assert_int_equal(log_commit_all(l), 0);
	assert_int_equal(media_sync_count(p.m), s1);
	assert_int_equal(append_one(l, 100, 2, &exp), 0);
	assert_int_equal(append_one(l, 100, 3, &exp), 0);
	/* One commit covers everything appended before it. */
	assert_int_equal(log_commit(l, exp.v[1].seq), 0);
	uint64_t s2 = media_sync_count(p.m);
	assert_true(s2 > s1);
	assert_int_equal(log_commit(l, exp.v[2].seq), 0);
	assert_int_equal(media_sync_count(p.m), s2);
	close_log(l);
	recs_free(&exp);
	part_destroy(&p);
}

#define THREADS 4

struct writer {
	struct log *l;
	pthread_mutex_t *lock;
	int id, count;
	int reserve;   /* reserve under the lock, fill outside it */
	int rc;        /* first failure */
	uint64_t last; /* last seq it committed */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t buf[600];
	for (int i = 0; i < w->count && !w->rc; i++) {
		uint32_t plen = (uint32_t)((w->id * 131 + i * 17) % sizeof(buf));
		fill(buf, plen, (uint64_t)w->id << 32 | (uint64_t)i);
		struct iovec iov[2] = {{buf, plen / 2}, {buf + plen / 2, plen - plen / 2}};
		uint64_t args[LOG_REC_ARGS] = {(uint64_t)w->id, (uint64_t)i, plen};
		struct log_pos pos;
		struct log_fill f;
		pthread_mutex_lock(w->lock);
		int rc = w->reserve ? log_reserve(w->l, 16, args, iov, 2, &pos, &f)
		                    : log_append(w->l, 16, args, iov, 2, &pos);
		pthread_mutex_unlock(w->lock);
		if (!rc && w->reserve)
			rc = log_fill(w->l, &f);
		if (!rc)
			rc = log_commit(w->l, pos.seq);
		if (rc)
			w->rc = rc;
		else
			w->last = pos.seq;
	}
	return NULL;
}

struct seen {
	int next[THREADS];
	int bad;
};

static int check_thread_rec(void *arg, const struct log_rec_hdr *h, const void *payload,
                            uint64_t off)
{
	(void)off;
	struct seen *s = arg;
	uint8_t buf[600];
	uint64_t id = h->args[0], i = h->args[1];
	if (id >= THREADS || i != (uint64_t)s->next[id] || h->payload_len != h->args[2]) {
		s->bad++;
		return 0;
	}
	fill(buf, h->payload_len, id << 32 | i);
	/* An empty payload may come as NULL. */
	if (h->payload_len && memcmp(buf, payload, h->payload_len) != 0)
		s->bad++;
	s->next[id]++;
	return 0;
}

static void concurrent(enum media_kind kind, int per_thread, int reserve)
{
	static struct part p;
	struct log *l = fresh_log(&p, kind, 8 * MIB);
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct writer w[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){
		    .l = l, .lock = &lock, .id = i, .count = per_thread, .reserve = reserve};
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].rc, 0);
		assert_true(w[i].last > 0);
	}
	uint64_t total = (uint64_t)THREADS * (uint64_t)per_thread;
	assert_int_equal(log_tail_seq(l), total + 1);
	if (kind == MEDIA_FILE)
		assert_true(media_sync_count(p.m) <= total + 2);
	close_log(l);
	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	struct seen s = {0};
	assert_int_equal(log_recover(l, LOG_RING_START, 1, check_thread_rec, &s, 0), 0);
	assert_int_equal(s.bad, 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(s.next[i], per_thread);
	assert_int_equal(log_tail_seq(l), total + 1);
	close_log(l);
	part_destroy(&p);
}

static void test_concurrent_commit_emul(void **state)
{
	(void)state;
	concurrent(MEDIA_EMUL, 2000, 0);
}

static void test_concurrent_commit_file(void **state)
{
	(void)state;
	concurrent(MEDIA_FILE, 150, 0);
}

/* Records filled outside the lock, in whatever order the threads get to
 * them: every one is found, in order, whole. */
static void test_concurrent_fill_emul(void **state)
{
	(void)state;
	concurrent(MEDIA_EMUL, 2000, 1);
}

static void test_concurrent_fill_file(void **state)
{
	(void)state;
	concurrent(MEDIA_FILE, 150, 1);
}

struct committer {
	struct log *l;
	uint64_t seq;
	int rc, done;
};

static void *commit_main(void *arg)
{
	struct committer *c = arg;
	c->rc = log_commit(c->l, c->seq);
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* What recovery finds in the image a crash would leave of p now: its
 * records into got (which the caller frees). */
static void recover_crash_image(struct part *p, struct recs *got)
{
	struct part copy;
	part_copy(p, &copy);
	struct log *lc = open_ok(copy.m, UUID_A);
	assert_int_equal(recover_into(lc, LOG_RING_START, 1, got, 0), 0);
	close_log(lc);
	part_destroy(&copy);
}

/* A record filled before the one reserved ahead of it is not appended
 * yet: its commit waits for the earlier fill, and a crash before that
 * fill recovers neither (the earlier one is torn, the later one is not
 * taken for damage). */
static void test_fill_out_of_order(void **state)
{
	(void)state;
	static struct part p;
	struct log *l = fresh_log(&p, MEDIA_EMUL, 256 * KIB);
	uint8_t a[3000], b[2000];
	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	struct iovec ia = {a, sizeof(a)}, ib = {b, sizeof(b)};
	uint64_t args[LOG_REC_ARGS] = {0};
	struct log_pos pa, pb;
	struct log_fill fa, fb;
	assert_int_equal(log_append(l, 16, args, &ia, 1, &pa), 0); /* seq 1, whole */
	assert_int_equal(log_commit(l, pa.seq), 0);
	assert_int_equal(log_reserve(l, 16, args, &ia, 1, &pa, &fa), 0); /* seq 2 */
	assert_int_equal(log_reserve(l, 16, args, &ib, 1, &pb, &fb), 0); /* seq 3 */
	assert_int_equal(log_fill(l, &fb), 0);
	struct committer c = {.l = l, .seq = pb.seq};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, commit_main, &c), 0);
	usleep(20000);
	assert_int_equal(__atomic_load_n(&c.done, __ATOMIC_ACQUIRE), 0);

	/* The crash, here: seq 3 whole in the medium, seq 2 not written. */
	struct recs got = {0};
	recover_crash_image(&p, &got);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.v[0].seq, 1);
	recs_free(&got);

	assert_int_equal(log_fill(l, &fa), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(c.rc, 0);
	close_log(l);
	part_reopen(&p);
	l = open_ok(p.m, UUID_A);
	assert_int_equal(recover_into(l, LOG_RING_START, 1, &got, 0), 0);
	assert_int_equal(got.n, 3);
	assert_int_equal(log_tail_seq(l), 4);
	close_log(l);
	recs_free(&got);
	part_destroy(&p);
}

/* A batch filled with one fence (log_fill_many): nothing of it is
 * appended before the call, so a commit of its last record waits and a
 * crash then recovers none of it; after the call every record is appended,
 * durable and whole, a record the reservation had already written (more
 * pieces than a fill holds) is not written twice, and on a file medium
 * (where each reservation wrote its record) the call has nothing to do. */
static void fill_many_on(enum media_kind kind)
{
	static struct part p;
	struct log *l = fresh_log(&p, kind, 256 * KIB);
	enum { N = 4 };
	uint8_t data[N][1500];
	struct iovec iov[N][LOG_FILL_IOV + 1];
	struct log_fill fills[N];
	struct log_pos pos[N];
	uint64_t args[LOG_REC_ARGS] = {0};
	for (int i = 0; i < N; i++) {
		fill(data[i], sizeof(data[i]), 10 + (uint64_t)i);
		/* Record 2 in LOG_FILL_IOV + 1 pieces: written at its reservation. */
		int pieces = i == 2 ? LOG_FILL_IOV + 1 : 1;
		size_t each = sizeof(data[i]) / (size_t)pieces;
		for (int k = 0; k < pieces; k++)
			iov[i][k] =
			    (struct iovec){data[i] + k * each,
			                   k == pieces - 1 ? sizeof(data[i]) - k * each : each};
		args[0] = (uint64_t)i;
		assert_int_equal(log_reserve(l, 16, args, iov[i], pieces, &pos[i], &fills[i]), 0);
	}
	int direct = kind != MEDIA_FILE;
	assert_int_equal(fills[2].pending, 0);
	assert_int_equal(fills[0].pending, direct);
	struct committer c = {.l = l, .seq = pos[N - 1].seq};
	pthread_t th;
	if (direct) {
		assert_int_equal(pthread_create(&th, NULL, commit_main, &c), 0);
		usleep(20000);
		assert_int_equal(__atomic_load_n(&c.done, __ATOMIC_ACQUIRE), 0);
		/* The crash, here: records 0, 1 and 3 not written. */
		struct recs got = {0};
		recover_crash_image(&p, &got);
		assert_int_equal(got.n, 0);
		recs_free(&got);
	}
	assert_int_equal(log_fill_many(l, fills, N), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(fills[i].pending, 0);
	if (direct) {
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(c.rc, 0);
	} else {
		assert_int_equal(log_commit(l, pos[N - 1].seq), 0);
	}
	/* The crash, now: every record whole. */
	struct recs got = {0};
	recover_crash_image(&p, &got);
	assert_int_equal(got.n, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(got.v[i].seq, pos[i].seq);
		assert_int_equal(got.v[i].args[0], (uint64_t)i);
		assert_int_equal(got.v[i].plen, sizeof(data[i]));
		assert_memory_equal(got.v[i].payload, data[i], sizeof(data[i]));
	}
	recs_free(&got);
	close_log(l);
	part_destroy(&p);
}

static void test_fill_many_emul(void **state)
{
	(void)state;
	fill_many_on(MEDIA_EMUL);
}

static void test_fill_many_file(void **state)
{
	(void)state;
	fill_many_on(MEDIA_FILE);
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < LIVE_MAX; i++)
		if (live_logs[i])
			close_log(live_logs[i]);
	for (int i = 0; i < LIVE_MAX; i++)
		if (live_parts[i])
			part_destroy(live_parts[i]);
	for (int i = 0; i < LIVE_MAX; i++)
		if (live_recs[i])
			recs_free(live_recs[i]);
	for (int i = 0; i < LIVE_MAX; i++) {
		free(live_bufs[i]);
		live_bufs[i] = NULL;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_format_open, teardown),
	    cmocka_unit_test_teardown(test_open_unformatted, teardown),
	    cmocka_unit_test_teardown(test_open_wrong_uuid, teardown),
	    cmocka_unit_test_teardown(test_open_flipped_super, teardown),
	    cmocka_unit_test_teardown(test_open_version1, teardown),
	    cmocka_unit_test_teardown(test_open_wrong_size, teardown),
	    cmocka_unit_test_teardown(test_epoch_slots, teardown),
	    cmocka_unit_test_teardown(test_recover_empty, teardown),
	    cmocka_unit_test_teardown(test_recover_bad_head, teardown),
	    cmocka_unit_test_teardown(test_roundtrip_emul, teardown),
	    cmocka_unit_test_teardown(test_roundtrip_file, teardown),
	    cmocka_unit_test_teardown(test_recover_callback_error, teardown),
	    cmocka_unit_test_teardown(test_wraparound, teardown),
	    cmocka_unit_test_teardown(test_exact_fit_at_end, teardown),
	    cmocka_unit_test_teardown(test_enospc_and_reclaim, teardown),
	    cmocka_unit_test_teardown(test_e2big_emul, teardown),
	    cmocka_unit_test_teardown(test_e2big_file, teardown),
	    cmocka_unit_test_teardown(test_torn_emul, teardown),
	    cmocka_unit_test_teardown(test_torn_file, teardown),
	    cmocka_unit_test_teardown(test_damage_emul, teardown),
	    cmocka_unit_test_teardown(test_damage_file, teardown),
	    cmocka_unit_test_teardown(test_torn_tail_is_silent, teardown),
	    cmocka_unit_test_teardown(test_damage_across_wrap, teardown),
	    cmocka_unit_test_teardown(test_forged_headers, teardown),
	    cmocka_unit_test_teardown(test_stale_epoch, teardown),
	    cmocka_unit_test_teardown(test_reformat_stale, teardown),
	    cmocka_unit_test_teardown(test_commit_file_syncs, teardown),
	    cmocka_unit_test_teardown(test_concurrent_commit_emul, teardown),
	    cmocka_unit_test_teardown(test_concurrent_commit_file, teardown),
	    cmocka_unit_test_teardown(test_concurrent_fill_emul, teardown),
	    cmocka_unit_test_teardown(test_concurrent_fill_file, teardown),
	    cmocka_unit_test_teardown(test_fill_out_of_order, teardown),
	    cmocka_unit_test_teardown(test_fill_many_emul, teardown),
	    cmocka_unit_test_teardown(test_fill_many_file, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
