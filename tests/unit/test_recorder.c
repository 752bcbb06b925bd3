/*
 * test_recorder.c - unit tests of the crash-state recorder
 * (src/media/recorder.c).
 *
 * Owns: the line semantics (unflushed and re-written lines are uncertain,
 * flush + fence makes durable; a thread's own fence, only its own
 * flushes), the variants, multiple parts, positions,
 * and a randomized comparison with a naive reference model that replays
 * from scratch for every crash point, visited in increasing, decreasing
 * and random order.  May call: the recorder only.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media/recorder.h"

#define L RECORDER_LINE
#define PART 4096

static struct recorder *new_rec(int nparts, uint8_t initial)
{
	static uint8_t init[PART];
	memset(init, initial, sizeof(init));
	struct recorder *r = recorder_new();
	assert_non_null(r);
	for (int p = 0; p < nparts; p++)
		assert_int_equal(recorder_add_part(r, p, init, PART), 0);
	return r;
}

static void write_byte(struct recorder *r, int part, uint64_t off, size_t len, uint8_t b)
{
	uint8_t buf[PART];
	memset(buf, b, len);
	recorder_write(r, part, off, buf, len);
}

/* Asserts that [off, off+len) of the image of (k, v, part) is all b. */
static void expect(struct recorder *r, uint64_t k, unsigned v, int part, uint64_t off, size_t len,
                   uint8_t b)
{
	static uint8_t img[PART];
	assert_int_equal(recorder_crash_image(r, k, v, part, img), 0);
	for (size_t i = 0; i < len; i++)
		if (img[off + i] != b)
			fail_msg("k=%llu v=%u part=%d byte %llu: %#x, expected %#x",
			         (unsigned long long)k, v, part, (unsigned long long)(off + i),
			         img[off + i], b);
}

/* ---- line semantics ---- */

static void test_unflushed_write_uncertain(void **state)
{
	struct recorder *r = new_rec(1, 0xaa);
	write_byte(r, 0, 0, 10, 0x11);
	recorder_fence(r, 0);
	assert_int_equal(recorder_fence_count(r), 1);
	for (uint64_t k = 0; k <= 1; k++) {
		/* Never flushed: uncertain before and after the fence. */
		assert_int_equal(recorder_pending_lines(r, k), 1);
		expect(r, k, 0, 0, 0, 10, 0x11);
		expect(r, k, 1, 0, 0, PART, 0xaa);
	}
	static uint8_t img[PART];
	assert_int_equal(recorder_final_image(r, 0, img), 0);
	assert_int_equal(img[9], 0x11);
	assert_int_equal(img[10], 0xaa);
	recorder_free(r);
}

static void test_flush_fence_durable(void **state)
{
	struct recorder *r = new_rec(1, 0);
	write_byte(r, 0, 100, 100, 0x22); /* lines 1..3 */
	recorder_flush(r, 0, 100, 100);
	recorder_fence(r, 0); /* fence 0 */
	recorder_fence(r, 0); /* fence 1 */
	/* Before fence 0: flushed but not fenced, still uncertain. */
	assert_int_equal(recorder_pending_lines(r, 0), 3);
	expect(r, 0, 1, 0, 100, 100, 0);
	expect(r, 0, 0, 0, 100, 100, 0x22);
	/* After it: durable in every variant. */
	for (uint64_t k = 1; k <= 2; k++) {
		assert_int_equal(recorder_pending_lines(r, k), 0);
		for (unsigned v = 0; v < 10; v++) {
			expect(r, k, v, 0, 100, 100, 0x22);
			expect(r, k, v, 0, 0, 100, 0);
		}
	}
	recorder_free(r);
}

static void test_flush_of_other_line_not_enough(void **state)
{
	struct recorder *r = new_rec(1, 0);
	write_byte(r, 0, 0, 1, 0x33);
	write_byte(r, 0, L, 1, 0x44);
	recorder_flush(r, 0, 0, 1); /* only line 0 */
	recorder_fence(r, 0);
	assert_int_equal(recorder_pending_lines(r, 1), 1);
	expect(r, 1, 1, 0, 0, 1, 0x33);
	expect(r, 1, 1, 0, L, 1, 0);
	expect(r, 1, 0, 0, L, 1, 0x44);
	recorder_free(r);
}

/* Another thread's flush, for test_own_fence. */
struct flusher {
	struct recorder *r;
	uint64_t off;
	size_t len;
	int fence; /* and its own fence after */
};

static void *flush_main(void *arg)
{
	struct flusher *f = arg;
	recorder_flush(f->r, 0, f->off, f->len);
	if (f->fence)
		recorder_fence_own(f->r, 0);
	return NULL;
}

static void on_thread(struct flusher f)
{
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flush_main, &f), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
}

/* A processor's fence waits for its own flushes only: a line another
 * thread flushed stays uncertain across this thread's own fence, until
 * that thread fences or a fence of every thread's flushes (a file's
 * sync) comes. */
static void test_own_fence(void **state)
{
	struct recorder *r = new_rec(1, 0);
	write_byte(r, 0, 0, L, 0x51);                      /* line 0 */
	write_byte(r, 0, L, L, 0x52);                      /* line 1 */
	write_byte(r, 0, 2 * L, L, 0x53);                  /* line 2 */
	recorder_flush(r, 0, 0, L);                        /* line 0: this thread */
	on_thread((struct flusher){r, L, L, 0});           /* line 1: another, no fence */
	recorder_fence_own(r, 0);                          /* fence 0 */
	assert_int_equal(recorder_pending_lines(r, 1), 2); /* lines 1 and 2 */
	expect(r, 1, 1, 0, 0, L, 0x51);
	expect(r, 1, 1, 0, L, L, 0);
	on_thread((struct flusher){r, L, L, 1}); /* line 1 again, and a fence: 1 */
	assert_int_equal(recorder_pending_lines(r, 2), 1);
	expect(r, 2, 1, 0, L, L, 0x52);
	recorder_flush(r, 0, 2 * L, L);
	on_thread((struct flusher){r, 3 * L, 1, 1}); /* fence 2: not this thread's */
	assert_int_equal(recorder_pending_lines(r, 3), 1);
	expect(r, 3, 1, 0, 2 * L, L, 0);
	recorder_fence(r, 0); /* fence 3: everyone's */
	assert_int_equal(recorder_pending_lines(r, 4), 0);
	expect(r, 4, 1, 0, 2 * L, L, 0x53);
	recorder_free(r);
}

static void test_write_after_flush_uncertain(void **state)
{
	struct recorder *r = new_rec(1, 0);
	write_byte(r, 0, 0, 8, 0xa1);
	recorder_flush(r, 0, 0, 8);
	write_byte(r, 0, 0, 8, 0xb2); /* same bytes, after the flush */
	write_byte(r, 0, 8, 8, 0xc3); /* same line, other bytes */
	recorder_fence(r, 0);         /* fence 0 */
	recorder_fence(r, 0);         /* fence 1 */
	/* The fence made the flushed content durable, the newer stays in doubt. */
	for (uint64_t k = 1; k <= 2; k++) {
		assert_int_equal(recorder_pending_lines(r, k), 1);
		expect(r, k, 1, 0, 0, 8, 0xa1);
		expect(r, k, 1, 0, 8, 8, 0);
		expect(r, k, 0, 0, 0, 8, 0xb2);
		expect(r, k, 0, 0, 8, 8, 0xc3);
	}
	expect(r, 0, 1, 0, 0, 16, 0);
	/* Flushing again and fencing settles it. */
	recorder_flush(r, 0, 0, 16);
	recorder_fence(r, 0); /* fence 2 */
	assert_int_equal(recorder_pending_lines(r, 3), 0);
	expect(r, 3, 1, 0, 0, 8, 0xb2);
	expect(r, 3, 1, 0, 8, 8, 0xc3);
	recorder_free(r);
}

static void test_zero_event(void **state)
{
	struct recorder *r = new_rec(1, 0x5a);
	recorder_zero(r, 0, 64, 128);
	recorder_flush(r, 0, 64, 128);
	recorder_fence(r, 0);
	expect(r, 0, 1, 0, 64, 128, 0x5a);
	expect(r, 1, 1, 0, 64, 128, 0);
	expect(r, 1, 1, 0, 192, 64, 0x5a);
	recorder_free(r);
}

/* ---- variants ---- */

/* Writes 64 lines with no flush: every line uncertain at crash point 0. */
static struct recorder *all_lines_pending(void)
{
	struct recorder *r = new_rec(1, 0);
	write_byte(r, 0, 0, PART, 0xee);
	recorder_fence(r, 0);
	assert_int_equal(recorder_pending_lines(r, 0), PART / L);
	return r;
}

static unsigned count_taken(const uint8_t *img, size_t grain)
{
	unsigned taken = 0;
	for (size_t u = 0; u < PART; u += grain) {
		bool all = true, none = true;
		for (size_t i = 0; i < grain; i++) {
			all &= img[u + i] == 0xee;
			none &= img[u + i] == 0;
		}
		/* A unit is atomic: all old or all new. */
		assert_true(all || none);
		taken += all;
	}
	return taken;
}

static void test_variants(void **state)
{
	struct recorder *r = all_lines_pending();
	static uint8_t a[PART], b[PART];
	assert_int_equal(recorder_crash_image(r, 0, 0, 0, a), 0);
	assert_int_equal(count_taken(a, L), PART / L);
	assert_int_equal(recorder_crash_image(r, 0, 1, 0, a), 0);
	assert_int_equal(count_taken(a, L), 0);
	unsigned distinct = 0, partial = 0;
	static uint8_t prev[PART];
	for (unsigned v = 2; v < 30; v++) {
		assert_int_equal(recorder_crash_image(r, 0, v, 0, a), 0);
		unsigned t = count_taken(a, L);
		partial += t > 0 && t < PART / L;
		distinct += v > 2 && memcmp(a, prev, PART) != 0;
		memcpy(prev, a, PART);
		/* Deterministic: the same (k, v) gives the same image. */
		assert_int_equal(recorder_crash_image(r, 0, v, 0, b), 0);
		assert_memory_equal(a, b, PART);
	}
	assert_true(partial >= 20);
	assert_true(distinct >= 20);
	/* Other crash points choose differently. */
	recorder_fence(r, 0);
	assert_int_equal(recorder_crash_image(r, 0, 5, 0, a), 0);
	assert_int_equal(recorder_crash_image(r, 1, 5, 0, b), 0);
	assert_memory_not_equal(a, b, PART);
	recorder_free(r);
}

static void test_torn(void **state)
{
	struct recorder *r = all_lines_pending();
	static uint8_t a[PART], b[PART];
	assert_int_equal(recorder_crash_image_torn(r, 0, 0, 0, a), 0);
	assert_int_equal(count_taken(a, 8), PART / 8);
	assert_int_equal(recorder_crash_image_torn(r, 0, 1, 0, a), 0);
	assert_int_equal(count_taken(a, 8), 0);
	unsigned torn_lines = 0;
	for (unsigned v = 2; v < 10; v++) {
		assert_int_equal(recorder_crash_image_torn(r, 0, v, 0, a), 0);
		count_taken(a, 8);
		for (size_t l = 0; l < PART; l += L) {
			unsigned t = 0;
			for (size_t w = 0; w < L; w += 8)
				t += a[l + w] == 0xee;
			torn_lines += t > 0 && t < L / 8;
		}
		assert_int_equal(recorder_crash_image_torn(r, 0, v, 0, b), 0);
		assert_memory_equal(a, b, PART);
	}
	assert_true(torn_lines > 0);
	recorder_free(r);
}

/* ---- parts, positions, errors ---- */

static void test_multiple_parts(void **state)
{
	struct recorder *r = new_rec(3, 0);
	write_byte(r, 0, 0, 64, 0x01);
	write_byte(r, 1, 0, 64, 0x02);
	recorder_flush(r, 0, 0, 64);
	recorder_flush(r, 1, 0, 64);
	recorder_fence(r, 0); /* fence 0: part 0 only */
	write_byte(r, 2, 128, 64, 0x03);
	recorder_flush(r, 2, 128, 64);
	recorder_fence(r, 1); /* fence 1: part 1 only */
	recorder_fence(r, 2); /* fence 2 */
	assert_int_equal(recorder_pending_lines(r, 0), 2);
	assert_int_equal(recorder_pending_lines(r, 1), 2); /* part 1 and 2 */
	expect(r, 1, 1, 0, 0, 64, 0x01);
	expect(r, 1, 1, 1, 0, 64, 0);
	expect(r, 1, 0, 1, 0, 64, 0x02);
	assert_int_equal(recorder_pending_lines(r, 2), 1);
	expect(r, 2, 1, 1, 0, 64, 0x02);
	expect(r, 2, 1, 2, 128, 64, 0);
	expect(r, 3, 1, 2, 128, 64, 0x03);
	assert_int_equal(recorder_pending_lines(r, 3), 0);
	/* A part's fence does not touch another's flushed lines. */
	expect(r, 1, 1, 2, 0, PART, 0);
	recorder_free(r);
}

static void test_positions(void **state)
{
	struct recorder *r = new_rec(1, 0);
	assert_int_equal(recorder_position(r), 0);
	assert_int_equal(recorder_fence_count(r), 0);
	write_byte(r, 0, 0, 1, 1);
	uint64_t p0 = recorder_position(r);
	recorder_fence(r, 0);
	recorder_flush(r, 0, 0, 1);
	uint64_t p1 = recorder_position(r);
	recorder_fence(r, 0);
	assert_int_equal(p0, 1);
	assert_int_equal(p1, 3);
	assert_int_equal(recorder_fence_count(r), 2);
	assert_int_equal(recorder_fence_position(r, 0), p0);
	assert_int_equal(recorder_fence_position(r, 1), p1);
	assert_int_equal(recorder_fence_position(r, 2), recorder_position(r));
	assert_int_equal(recorder_fence_position(r, 3), UINT64_MAX);
	static uint8_t img[PART];
	assert_int_equal(recorder_crash_image(r, 3, 0, 0, img), -EINVAL);
	assert_int_equal(recorder_crash_image(r, 0, 0, 1, img), -EINVAL); /* no part 1 */
	assert_int_equal(recorder_crash_image(r, 0, 0, -1, img), -EINVAL);
	recorder_free(r);
}

static void test_pause(void **state)
{
	struct recorder *r = new_rec(1, 0);
	recorder_pause(r, 1);
	write_byte(r, 0, 0, 64, 9);
	recorder_flush(r, 0, 0, 64);
	recorder_fence(r, 0);
	assert_int_equal(recorder_position(r), 0);
	assert_int_equal(recorder_fence_count(r), 0);
	recorder_pause(r, 0);
	recorder_fence(r, 0);
	assert_int_equal(recorder_fence_count(r), 1);
	expect(r, 1, 0, 0, 0, PART, 0);
	recorder_free(r);
}

static void test_errors(void **state)
{
	struct recorder *r = new_rec(1, 0);
	static uint8_t img[PART];
	assert_int_equal(recorder_add_part(r, 0, img, PART), -EEXIST);
	assert_int_equal(recorder_add_part(r, RECORDER_MAX_PARTS, img, PART), -EINVAL);
	assert_int_equal(recorder_add_part(r, 1, img, 0), -EINVAL);
	assert_int_equal(recorder_error(r), 0);
	write_byte(r, 0, PART - 1, 2, 1); /* past the end of the part */
	assert_int_equal(recorder_error(r), -EINVAL);
	assert_int_equal(recorder_position(r), 0);
	/* An incomplete trace must not pass for a complete one. */
	assert_int_equal(recorder_crash_image(r, 0, 0, 0, img), -EINVAL);
	assert_int_equal(recorder_final_image(r, 0, img), -EINVAL);
	recorder_free(r);

	r = new_rec(1, 0);
	recorder_fence(r, 3); /* undeclared part */
	assert_int_equal(recorder_error(r), -EINVAL);
	recorder_free(r);
}

/* A part declared after recording started is still seen from the start. */
static void test_late_part(void **state)
{
	struct recorder *r = new_rec(1, 0);
	write_byte(r, 0, 0, 64, 1);
	recorder_flush(r, 0, 0, 64);
	recorder_fence(r, 0);
	expect(r, 1, 1, 0, 0, 64, 1); /* the cursor exists now */
	static uint8_t init[100];
	memset(init, 0x77, sizeof(init));
	assert_int_equal(recorder_add_part(r, 1, init, sizeof(init)), 0);
	write_byte(r, 1, 90, 10, 2); /* the last, partial line */
	recorder_flush(r, 1, 90, 10);
	recorder_fence(r, 1);
	static uint8_t img[100];
	assert_int_equal(recorder_crash_image(r, 0, 0, 1, img), 0);
	assert_memory_equal(img, init, sizeof(init));
	assert_int_equal(recorder_crash_image(r, 1, 1, 1, img), 0);
	assert_memory_equal(img, init, sizeof(init));
	assert_int_equal(recorder_crash_image(r, 2, 1, 1, img), 0);
	assert_memory_equal(img, init, 90);
	assert_int_equal(img[95], 2);
	expect(r, 2, 1, 0, 0, 64, 1);
	recorder_free(r);
}

/* A part made and removed while recording (a client log's file): its
 * span says between which positions it exists, and an event naming it
 * after its removal spoils the trace. */
static void test_part_span(void **state)
{
	struct recorder *r = new_rec(1, 0);
	uint64_t size, born, gone;
	assert_int_equal(recorder_part_span(r, 0, &size, &born, &gone), 0);
	assert_int_equal(size, PART);
	assert_int_equal(born, 0);
	assert_true(gone == UINT64_MAX);
	assert_int_equal(recorder_part_span(r, 9, &size, &born, &gone), -ENOENT);
	write_byte(r, 0, 0, 8, 1);
	recorder_flush(r, 0, 0, 8);
	recorder_fence(r, 0);
	assert_int_equal(recorder_add_part(r, 9, NULL, 200), 0); /* zeros */
	assert_int_equal(recorder_part_span(r, 9, &size, &born, &gone), 0);
	assert_int_equal(size, 200);
	assert_int_equal(born, 3);
	write_byte(r, 9, 0, 8, 5);
	recorder_flush(r, 9, 0, 8);
	recorder_fence(r, 9);
	recorder_part_gone(r, 9);
	assert_int_equal(recorder_part_span(r, 9, &size, &born, &gone), 0);
	assert_int_equal(gone, 6);
	static uint8_t img[PART];
	assert_int_equal(recorder_crash_image(r, 2, 0, 9, img), 0);
	assert_int_equal(img[0], 5);
	assert_int_equal(img[8], 0);
	assert_int_equal(recorder_error(r), 0);
	recorder_fence(r, 9); /* after its removal */
	assert_int_equal(recorder_error(r), -EINVAL);
	recorder_free(r);

	r = new_rec(1, 0);
	recorder_part_gone(r, 1); /* never declared */
	assert_int_equal(recorder_error(r), -EINVAL);
	recorder_free(r);
}

/* ---- randomized comparison with a naive model ---- */

#define RPART 1024 /* 16 lines: collisions are common */
#define RPARTS 2
#define NOPS 3000

enum op_kind { OP_WRITE, OP_ZERO, OP_FLUSH, OP_FENCE };

struct op {
	enum op_kind kind;
	int part;
	uint32_t off, len;
	uint8_t byte;
};

struct model {
	uint8_t d[RPARTS][RPART], v[RPARTS][RPART], snap[RPARTS][RPART];
	bool flushed[RPARTS][RPART / L];       /* flushed since the last fence */
	bool written_after[RPARTS][RPART / L]; /* written since the last flush */
	bool pending[RPARTS][RPART / L];       /* written since durable */
};

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33) % n;
}

static struct op random_op(void)
{
	struct op o = {.part = (int)rnd(RPARTS)};
	uint32_t c = rnd(10);
	o.kind = c < 5 ? OP_WRITE : c < 6 ? OP_ZERO : c < 8 ? OP_FLUSH : OP_FENCE;
	o.off = rnd(RPART);
	o.len = 1 + rnd(c == 7 ? RPART - o.off : (RPART - o.off < 150 ? RPART - o.off : 150));
	o.byte = (uint8_t)(1 + rnd(255));
	return o;
}

static void model_apply(struct model *m, const struct op *o)
{
	int p = o->part;
	uint32_t first = o->off / L, last = (o->off + o->len - 1) / L;
	switch (o->kind) {
	case OP_WRITE:
	case OP_ZERO:
		memset(m->v[p] + o->off, o->kind == OP_WRITE ? o->byte : 0, o->len);
		for (uint32_t l = first; l <= last; l++)
			m->written_after[p][l] = m->pending[p][l] = true;
		break;
	case OP_FLUSH:
		for (uint32_t l = first; l <= last; l++) {
			if (!m->pending[p][l])
				continue;
			memcpy(m->snap[p] + l * L, m->v[p] + l * L, L);
			m->flushed[p][l] = true;
			m->written_after[p][l] = false;
		}
		break;
	case OP_FENCE:
		for (uint32_t l = 0; l < RPART / L; l++) {
			if (!m->flushed[p][l])
				continue;
			memcpy(m->d[p] + l * L, m->snap[p] + l * L, L);
			m->flushed[p][l] = false;
			m->pending[p][l] = m->written_after[p][l];
		}
		break;
	}
}

/* The model at crash point k, replayed from scratch. */
static void model_at(struct model *m, const struct op *ops, size_t nops, uint64_t k)
{
	memset(m, 0, sizeof(*m));
	for (int p = 0; p < RPARTS; p++) {
		memset(m->d[p], 0x40 + p, RPART);
		memset(m->v[p], 0x40 + p, RPART);
	}
	uint64_t fences = 0;
	for (size_t i = 0; i < nops; i++) {
		if (ops[i].kind == OP_FENCE && fences++ == k)
			break;
		model_apply(m, &ops[i]);
	}
}

static void check_point(struct recorder *r, const struct op *ops, size_t nops, uint64_t k)
{
	static struct model m;
	model_at(&m, ops, nops, k);
	uint64_t pending = 0;
	static uint8_t img[RPART];
	for (int p = 0; p < RPARTS; p++) {
		for (uint32_t l = 0; l < RPART / L; l++)
			pending += m.pending[p][l];
		assert_int_equal(recorder_crash_image(r, k, 0, p, img), 0);
		assert_memory_equal(img, m.v[p], RPART);
		assert_int_equal(recorder_crash_image(r, k, 1, p, img), 0);
		assert_memory_equal(img, m.d[p], RPART);
		/* Other variants: each line D's or V's, V only where pending. */
		for (unsigned v = 2; v < 5; v++) {
			assert_int_equal(recorder_crash_image(r, k, v, p, img), 0);
			for (uint32_t l = 0; l < RPART / L; l++) {
				bool is_d = memcmp(img + l * L, m.d[p] + l * L, L) == 0;
				bool is_v = memcmp(img + l * L, m.v[p] + l * L, L) == 0;
				assert_true(is_d || (is_v && m.pending[p][l]));
			}
		}
	}
	assert_int_equal(recorder_pending_lines(r, k), pending);
}

static void test_against_model(void **state)
{
	static struct op ops[NOPS];
	rng_state = 12345;
	static uint8_t init[RPART];
	struct recorder *r = recorder_new();
	for (int p = 0; p < RPARTS; p++) {
		memset(init, 0x40 + p, RPART);
		assert_int_equal(recorder_add_part(r, p, init, RPART), 0);
	}
	uint64_t nfences = 0;
	static uint8_t buf[RPART];
	for (size_t i = 0; i < NOPS; i++) {
		ops[i] = random_op();
		const struct op *o = &ops[i];
		switch (o->kind) {
		case OP_WRITE:
			memset(buf, o->byte, o->len);
			recorder_write(r, o->part, o->off, buf, o->len);
			break;
		case OP_ZERO:
			recorder_zero(r, o->part, o->off, o->len);
			break;
		case OP_FLUSH:
			recorder_flush(r, o->part, o->off, o->len);
			break;
		case OP_FENCE:
			recorder_fence(r, o->part);
			nfences++;
			break;
		}
	}
	assert_int_equal(recorder_fence_count(r), nfences);
	assert_true(nfences > 100);
	for (uint64_t k = 0; k <= nfences; k++) /* the checker's order */
		check_point(r, ops, NOPS, k);
	for (uint64_t k = nfences;; k -= 37) { /* backwards: resets */
		check_point(r, ops, NOPS, k);
		if (k < 37)
			break;
	}
	for (int i = 0; i < 50; i++) /* anywhere */
		check_point(r, ops, NOPS, rnd((uint32_t)nfences + 1));
	static struct model m;
	model_at(&m, ops, NOPS, UINT64_MAX);
	for (int p = 0; p < RPARTS; p++) {
		assert_int_equal(recorder_final_image(r, p, buf), 0);
		assert_memory_equal(buf, m.v[p], RPART);
	}
	recorder_free(r);
}

/* Walking every crash point of a long trace must cost about one replay of
 * it, not one per point (that would take minutes here): counted in events
 * applied, so that a slow machine or a sanitizer cannot fail it and a
 * quadratic walk fails at once. */
static void test_incremental_cost(void **state)
{
	enum { BIG = 4 << 20, FENCES = 100000 };
	struct recorder *r = recorder_new();
	uint8_t *img = calloc(1, BIG);
	assert_non_null(img);
	assert_int_equal(recorder_add_part(r, 0, img, BIG), 0);
	uint8_t line[L];
	for (uint32_t i = 0; i < FENCES; i++) {
		memset(line, (int)(i & 0xff), L);
		uint64_t off = ((uint64_t)i * 7919 * L) % BIG;
		recorder_write(r, 0, off, line, L);
		recorder_flush(r, 0, off, L);
		recorder_write(r, 0, (off + L) % BIG, line, 8); /* left unflushed */
		recorder_fence(r, 0);
	}
	const uint64_t events = 4 * (uint64_t)FENCES; /* write, flush, write, fence */
	uint64_t sum = 0;
	for (uint64_t k = 0; k <= FENCES; k++) {
		sum += recorder_pending_lines(r, k);
		assert_true(recorder_events_applied(r) <= events); /* one replay */
	}
	/* Forward again from the start: one more replay. */
	for (uint64_t k = 0; k <= FENCES; k += FENCES / 100) {
		assert_int_equal(recorder_crash_image(r, k, 1, 0, img), 0);
		assert_true(recorder_events_applied(r) <= 2 * events);
	}
	print_message("%d crash points walked with %llu events applied (%llu in the trace)\n",
	              FENCES + 1, (unsigned long long)recorder_events_applied(r),
	              (unsigned long long)events);
	assert_true(sum > 0);
	free(img);
	recorder_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unflushed_write_uncertain),
	    cmocka_unit_test(test_flush_fence_durable),
	    cmocka_unit_test(test_flush_of_other_line_not_enough),
	    cmocka_unit_test(test_own_fence),
	    cmocka_unit_test(test_write_after_flush_uncertain),
	    cmocka_unit_test(test_zero_event),
	    cmocka_unit_test(test_variants),
	    cmocka_unit_test(test_torn),
	    cmocka_unit_test(test_multiple_parts),
	    cmocka_unit_test(test_positions),
	    cmocka_unit_test(test_pause),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_late_part),
	    cmocka_unit_test(test_part_span),
	    cmocka_unit_test(test_against_model),
	    cmocka_unit_test(test_incremental_cost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
