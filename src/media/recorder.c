/*
 * recorder.c - the crash-state recorder (see recorder.h for the semantics).
 *
 * Owns: the event trace (a compact event array plus an arena holding the
 * bytes of writes) and a replay cursor that rebuilds, per part, the durable
 * image D, the volatile image V and the state of every 64-byte line at any
 * crash point.  May call: libc (and pthreads, for the media layer may record
 * from several threads).
 *
 * Recording only appends: the media hot path pays a copy of the written
 * bytes and nothing else.  All the modelling happens in the cursor, which
 * moves forward event by event, so a checker that walks crash points
 * k = 0, 1, 2, ... replays the trace once in total, not once per k.  Going
 * back resets the cursor to the initial images and replays from the start.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "media/recorder.h"

#define LINE RECORDER_LINE
#define NO_INDEX UINT32_MAX
/* Events carry a 32-bit length; longer ranges are split. */
#define MAX_EVENT_LEN (1u << 30)

enum ev_type { EV_WRITE, EV_ZERO, EV_FLUSH, EV_FENCE };

struct event {
	uint64_t off;
	uint64_t data; /* arena offset of a write's bytes */
	uint32_t len;
	uint8_t type;
	uint8_t part;
	uint8_t thread; /* flush, fence: the recording thread's number (thread_no) */
	uint8_t own;    /* fence: covers only its thread's flushes */
};

/*
 * Threads.  A processor's fence waits only for the flushes that processor
 * issued, so on byte-addressable media a fence makes durable only the
 * lines its own thread flushed (recorder_fence_own); a file's fdatasync
 * covers every thread's writes (recorder_fence).  Threads are numbered in
 * the order they first record a flush or a fence; past 64 the numbers
 * repeat, which only lets a fence count for more threads than it should.
 */
#define THREAD_BITS 64
static _Thread_local int thread_no_plus1;
static atomic_int threads_seen;

static uint8_t thread_no(void)
{
	if (thread_no_plus1 == 0)
		thread_no_plus1 = atomic_fetch_add(&threads_seen, 1) % THREAD_BITS + 1;
	return (uint8_t)(thread_no_plus1 - 1);
}

/*
 * Line states in the cursor.  Every state but CLEAN is "uncertain": at a
 * crash the line may hold D's or V's content.
 *   CLEAN          D == V.
 *   DIRTY          written since it was last durable, not flushed since.
 *   FLUSHED        flushed, not written since: the next fence makes V durable.
 *   DIRTY_FLUSHED  flushed, then written again: the next fence makes the
 *                  flushed snapshot durable, the newer bytes stay uncertain.
 */
enum line_state { CLEAN, DIRTY, FLUSHED, DIRTY_FLUSHED };

struct u32vec {
	uint32_t *v;
	size_t n, cap;
};

/* One part: its initial image and the cursor's view of it. */
struct part {
	bool declared;
	uint64_t born, gone; /* trace positions between which the file exists */
	uint64_t size;
	uint64_t nlines;
	uint8_t *initial;
	/* cursor */
	uint8_t *d, *v;
	uint8_t *state;  /* enum line_state per line */
	uint32_t *upos;  /* index in uncertain, or NO_INDEX */
	uint32_t *slot;  /* DIRTY_FLUSHED: snapshot index in snaps */
	uint64_t *fmask; /* FLUSHED, DIRTY_FLUSHED: the threads whose fence persists it */
	struct u32vec uncertain;
	struct u32vec flushed; /* lines FLUSHED or DIRTY_FLUSHED */
	uint8_t *snaps;        /* flushed snapshots, emptied at each fence */
	size_t nsnaps, snapcap;
};

struct recorder {
	pthread_mutex_t lock;
	int paused;
	int error;
	struct part parts[RECORDER_MAX_PARTS];
	struct event *ev;
	size_t nev, evcap;
	uint8_t *arena;
	size_t arenalen, arenacap;
	uint64_t *fences; /* event index of each fence */
	size_t nfences, fencecap;
	/* the cursor: every event before cur has been applied */
	bool cursor_ready;
	uint64_t cur;
	uint64_t applied; /* events applied to the shadow images, ever: the work */
	void (*fence_hook)(void *arg, int part);
	void *fence_hook_arg;
};

/* ---- small helpers ---- */

/* Grows *p (n elements of size elem, capacity *cap) to hold need elements. */
static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
	void **p = pp;
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(*p, ncap * elem);
	if (np == NULL)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static int vec_push(struct u32vec *vec, uint32_t x)
{
	if (grow(&vec->v, &vec->cap, vec->n + 1, sizeof(uint32_t)) < 0)
		return -ENOMEM;
	vec->v[vec->n++] = x;
	return 0;
}

static void fail(struct recorder *r, int e)
{
	if (r->error == 0)
		r->error = e;
}

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser: cheap, and every input bit flips ~half the
	 * output bits, so (k, v, part, line) choices look independent. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* ---- construction ---- */

struct recorder *recorder_new(void)
{
	struct recorder *r = calloc(1, sizeof(*r));
	if (r != NULL)
		pthread_mutex_init(&r->lock, NULL);
	return r;
}

static void free_cursor(struct part *p)
{
	free(p->d);
	free(p->v);
	free(p->state);
	free(p->upos);
	free(p->slot);
	free(p->fmask);
	free(p->uncertain.v);
	free(p->flushed.v);
	free(p->snaps);
	p->d = p->v = p->state = p->snaps = NULL;
	p->upos = p->slot = NULL;
	p->fmask = NULL;
	p->uncertain = (struct u32vec){0};
	p->flushed = (struct u32vec){0};
	p->nsnaps = p->snapcap = 0;
}

void recorder_free(struct recorder *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < RECORDER_MAX_PARTS; i++) {
		free_cursor(&r->parts[i]);
		free(r->parts[i].initial);
	}
	free(r->ev);
	free(r->arena);
	free(r->fences);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int recorder_add_part(struct recorder *r, int part, const void *image, uint64_t size)
{
	if (part < 0 || part >= RECORDER_MAX_PARTS || size == 0 || size > SIZE_MAX ||
	    size / LINE >= NO_INDEX)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	struct part *p = &r->parts[part];
	int rc = 0;
	if (p->declared) {
		rc = -EEXIST;
	} else if ((p->initial = malloc((size_t)size)) == NULL) {
		rc = -ENOMEM;
	} else {
		if (image != NULL)
			memcpy(p->initial, image, (size_t)size);
		else
			memset(p->initial, 0, (size_t)size);
		p->declared = true;
		p->born = r->nev;
		p->gone = UINT64_MAX;
		p->size = size;
		p->nlines = (size + LINE - 1) / LINE;
		/* No event touches this part yet, so its initial image holds
		 * at every earlier position; the cursor just needs the part. */
		r->cursor_ready = false;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void recorder_part_gone(struct recorder *r, int part)
{
	if (part < 0 || part >= RECORDER_MAX_PARTS)
		return;
	pthread_mutex_lock(&r->lock);
	struct part *p = &r->parts[part];
	if (!p->declared || p->gone != UINT64_MAX)
		fail(r, -EINVAL);
	else
		p->gone = r->nev;
	pthread_mutex_unlock(&r->lock);
}

int recorder_part_span(struct recorder *r, int part, uint64_t *size, uint64_t *born, uint64_t *gone)
{
	if (part < 0 || part >= RECORDER_MAX_PARTS)
		return -ENOENT;
	pthread_mutex_lock(&r->lock);
	struct part *p = &r->parts[part];
	int rc = p->declared ? 0 : -ENOENT;
	if (!rc) {
		*size = p->size;
		*born = p->born;
		*gone = p->gone;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* ---- recording (called by the media layer) ---- */

static bool event_ok(struct recorder *r, int part, uint64_t off, size_t len)
{
	/* A removed part's file is no more: an event naming it is a bug. */
	if (part < 0 || part >= RECORDER_MAX_PARTS || !r->parts[part].declared ||
	    r->parts[part].gone != UINT64_MAX) {
		fail(r, -EINVAL);
		return false;
	}
	uint64_t size = r->parts[part].size;
	if (off > size || (uint64_t)len > size - off) {
		fail(r, -EINVAL);
		return false;
	}
	return true;
}

static struct event *append(struct recorder *r, enum ev_type type, int part, uint64_t off,
                            uint32_t len)
{
	if (grow(&r->ev, &r->evcap, r->nev + 1, sizeof(struct event)) < 0) {
		fail(r, -ENOMEM);
		return NULL;
	}
	struct event *e = &r->ev[r->nev];
	*e = (struct event){.off = off,
	                    .len = len,
	                    .type = (uint8_t)type,
	                    .part = (uint8_t)part,
	                    .thread = type == EV_FLUSH || type == EV_FENCE ? thread_no() : 0};
	/* Atomic so that recorder_position() may be read without the lock. */
	__atomic_store_n(&r->nev, r->nev + 1, __ATOMIC_RELEASE);
	return e;
}

static void append_write(struct recorder *r, int part, uint64_t off, const uint8_t *data,
                         uint32_t len)
{
	if (grow(&r->arena, &r->arenacap, r->arenalen + len, 1) < 0) {
		fail(r, -ENOMEM);
		return;
	}
	struct event *e = append(r, EV_WRITE, part, off, len);
	if (e == NULL)
		return;
	e->data = r->arenalen;
	memcpy(r->arena + r->arenalen, data, len);
	r->arenalen += len;
}

/* Records a ranged event (data == NULL: zero or flush), split to fit. */
static void record_range(struct recorder *r, enum ev_type type, int part, uint64_t off,
                         const void *data, size_t len)
{
	pthread_mutex_lock(&r->lock);
	if (!r->paused && len > 0 && event_ok(r, part, off, len)) {
		const uint8_t *d = data;
		while (len > 0) {
			uint32_t n = len > MAX_EVENT_LEN ? MAX_EVENT_LEN : (uint32_t)len;
			if (type == EV_WRITE) {
				append_write(r, part, off, d, n);
				d += n;
			} else {
				append(r, type, part, off, n);
			}
			off += n;
			len -= n;
		}
	}
	pthread_mutex_unlock(&r->lock);
}

void recorder_write(struct recorder *r, int part, uint64_t off, const void *data, size_t len)
{
	record_range(r, EV_WRITE, part, off, data, len);
}

void recorder_zero(struct recorder *r, int part, uint64_t off, size_t len)
{
	record_range(r, EV_ZERO, part, off, NULL, len);
}

void recorder_flush(struct recorder *r, int part, uint64_t off, size_t len)
{
	record_range(r, EV_FLUSH, part, off, NULL, len);
}

static void record_fence(struct recorder *r, int part, int own)
{
	pthread_mutex_lock(&r->lock);
	if (!r->paused && event_ok(r, part, 0, 0)) {
		if (grow(&r->fences, &r->fencecap, r->nfences + 1, sizeof(uint64_t)) < 0) {
			fail(r, -ENOMEM);
		} else {
			uint64_t pos = r->nev;
			struct event *e = append(r, EV_FENCE, part, 0, 0);
			if (e != NULL) {
				e->own = (uint8_t)own;
				r->fences[r->nfences] = pos;
				__atomic_store_n(&r->nfences, r->nfences + 1, __ATOMIC_RELEASE);
			}
		}
	}
	void (*hook)(void *, int) = r->paused ? NULL : r->fence_hook;
	void *arg = r->fence_hook_arg;
	pthread_mutex_unlock(&r->lock);
	if (hook != NULL)
		hook(arg, part);
}

void recorder_fence(struct recorder *r, int part)
{
	record_fence(r, part, 0);
}

void recorder_fence_own(struct recorder *r, int part)
{
	record_fence(r, part, 1);
}

void recorder_set_fence_hook(struct recorder *r, void (*fn)(void *arg, int part), void *arg)
{
	pthread_mutex_lock(&r->lock);
	r->fence_hook = fn;
	r->fence_hook_arg = arg;
	pthread_mutex_unlock(&r->lock);
}

uint64_t recorder_position(const struct recorder *r)
{
	return __atomic_load_n(&r->nev, __ATOMIC_ACQUIRE);
}

void recorder_pause(struct recorder *r, int paused)
{
	pthread_mutex_lock(&r->lock);
	r->paused = paused;
	pthread_mutex_unlock(&r->lock);
}

int recorder_error(const struct recorder *r)
{
	return __atomic_load_n(&r->error, __ATOMIC_ACQUIRE);
}

uint64_t recorder_events_applied(const struct recorder *r)
{
	return r->applied;
}

uint64_t recorder_fence_count(const struct recorder *r)
{
	return __atomic_load_n(&r->nfences, __ATOMIC_ACQUIRE);
}

uint64_t recorder_fence_position(const struct recorder *r, uint64_t k)
{
	struct recorder *w = (struct recorder *)r; /* the lock is not state */
	pthread_mutex_lock(&w->lock);
	uint64_t pos = k < r->nfences ? r->fences[k] : k == r->nfences ? r->nev : UINT64_MAX;
	pthread_mutex_unlock(&w->lock);
	return pos;
}

/* ---- the cursor: line state machine ---- */

static void uncertain_add(struct part *p, uint32_t line, struct recorder *r)
{
	p->upos[line] = (uint32_t)p->uncertain.n;
	if (vec_push(&p->uncertain, line) < 0)
		fail(r, -ENOMEM);
}

static void uncertain_remove(struct part *p, uint32_t line)
{
	uint32_t i = p->upos[line];
	uint32_t last = p->uncertain.v[--p->uncertain.n];
	p->uncertain.v[i] = last;
	p->upos[last] = i;
	p->upos[line] = NO_INDEX;
}

static size_t line_len(const struct part *p, uint64_t line)
{
	uint64_t rest = p->size - line * LINE;
	return rest < LINE ? (size_t)rest : LINE;
}

/* A FLUSHED line is about to be overwritten: keep the flushed bytes, they
 * are what the next fence makes durable. */
static void snapshot(struct recorder *r, struct part *p, uint32_t line)
{
	if (grow(&p->snaps, &p->snapcap, (p->nsnaps + 1) * LINE, 1) < 0) {
		fail(r, -ENOMEM);
		return;
	}
	memcpy(p->snaps + p->nsnaps * LINE, p->v + (uint64_t)line * LINE, line_len(p, line));
	p->slot[line] = (uint32_t)p->nsnaps++;
}

static void line_written(struct recorder *r, struct part *p, uint32_t line)
{
	switch (p->state[line]) {
	case CLEAN:
		p->state[line] = DIRTY;
		uncertain_add(p, line, r);
		break;
	case FLUSHED:
		snapshot(r, p, line);
		p->state[line] = DIRTY_FLUSHED;
		break;
	default:
		break;
	}
}

static void line_flushed(struct recorder *r, struct part *p, uint32_t line, uint64_t thread)
{
	switch (p->state[line]) {
	case DIRTY:
		p->state[line] = FLUSHED;
		p->fmask[line] = thread;
		if (vec_push(&p->flushed, line) < 0)
			fail(r, -ENOMEM);
		break;
	case FLUSHED:
		/* The same bytes, flushed by one more thread: either's fence. */
		p->fmask[line] |= thread;
		break;
	case DIRTY_FLUSHED:
		/* Already listed; the newer V is what gets flushed now, and
		 * only this thread's fence is sure to make it durable.  (The
		 * older snapshot's flushers lose their claim: a fence of theirs
		 * then persists less than the processor would, never more.) */
		p->state[line] = FLUSHED;
		p->fmask[line] = thread;
		break;
	default:
		break;
	}
}

static void apply_write(struct recorder *r, struct part *p, const struct event *e)
{
	uint64_t first = e->off / LINE, last = (e->off + e->len - 1) / LINE;
	for (uint64_t l = first; l <= last; l++)
		line_written(r, p, (uint32_t)l);
	if (e->type == EV_WRITE)
		memcpy(p->v + e->off, r->arena + e->data, e->len);
	else
		memset(p->v + e->off, 0, e->len);
}

static void apply_flush(struct recorder *r, struct part *p, const struct event *e)
{
	uint64_t first = e->off / LINE, last = (e->off + e->len - 1) / LINE;
	for (uint64_t l = first; l <= last; l++)
		line_flushed(r, p, (uint32_t)l, 1ull << e->thread);
}

/* The flushed lines of the threads in mask become durable; the others
 * stay flushed, waiting for a fence of theirs. */
static void apply_fence(struct part *p, uint64_t mask)
{
	size_t kept = 0;
	for (size_t i = 0; i < p->flushed.n; i++) {
		uint32_t line = p->flushed.v[i];
		if (!(p->fmask[line] & mask)) {
			p->flushed.v[kept++] = line;
			continue;
		}
		uint64_t off = (uint64_t)line * LINE;
		size_t n = line_len(p, line);
		if (p->state[line] == FLUSHED) {
			memcpy(p->d + off, p->v + off, n);
			p->state[line] = CLEAN;
			uncertain_remove(p, line);
		} else { /* DIRTY_FLUSHED */
			memcpy(p->d + off, p->snaps + (size_t)p->slot[line] * LINE, n);
			p->state[line] = DIRTY;
		}
	}
	p->flushed.n = kept;
	if (kept == 0)
		p->nsnaps = 0; /* no line left refers to a snapshot */
}

static void apply(struct recorder *r, const struct event *e)
{
	struct part *p = &r->parts[e->part];
	switch (e->type) {
	case EV_WRITE:
	case EV_ZERO:
		apply_write(r, p, e);
		break;
	case EV_FLUSH:
		apply_flush(r, p, e);
		break;
	case EV_FENCE:
		apply_fence(p, e->own ? 1ull << e->thread : UINT64_MAX);
		break;
	}
}

/* ---- the cursor: positioning ---- */

static int reset_part(struct part *p)
{
	size_t size = (size_t)p->size, nl = (size_t)p->nlines;
	if (p->d == NULL) {
		p->d = malloc(size);
		p->v = malloc(size);
		p->state = malloc(nl);
		p->upos = malloc(nl * sizeof(uint32_t));
		p->slot = malloc(nl * sizeof(uint32_t));
		p->fmask = malloc(nl * sizeof(uint64_t));
		if (!p->d || !p->v || !p->state || !p->upos || !p->slot || !p->fmask) {
			free_cursor(p);
			return -ENOMEM;
		}
	}
	memcpy(p->d, p->initial, size);
	memcpy(p->v, p->initial, size);
	memset(p->state, CLEAN, nl);
	memset(p->upos, 0xff, nl * sizeof(uint32_t));
	p->uncertain.n = 0;
	p->flushed.n = 0;
	p->nsnaps = 0;
	return 0;
}

static int reset_cursor(struct recorder *r)
{
	for (int i = 0; i < RECORDER_MAX_PARTS; i++) {
		if (!r->parts[i].declared)
			continue;
		int rc = reset_part(&r->parts[i]);
		if (rc < 0)
			return rc;
	}
	r->cur = 0;
	r->cursor_ready = true;
	return 0;
}

/* Applies events until every event before pos (and none after) is in. */
static int seek(struct recorder *r, uint64_t pos)
{
	if (r->error != 0)
		return r->error;
	if (!r->cursor_ready || pos < r->cur) {
		int rc = reset_cursor(r);
		if (rc < 0)
			return rc;
	}
	while (r->cur < pos && r->error == 0) {
		apply(r, &r->ev[r->cur++]);
		r->applied++;
	}
	/* An allocation failure while applying leaves the cursor unusable. */
	if (r->error != 0)
		r->cursor_ready = false;
	return r->error;
}

/* Crash point k: just before fence k; k == nfences is the end of the trace. */
static int seek_crash_point(struct recorder *r, uint64_t k)
{
	if (k > r->nfences)
		return -EINVAL;
	return seek(r, k < r->nfences ? r->fences[k] : r->nev);
}

/* ---- the images ---- */

/* Variant v >= 2 takes each uncertain unit with probability d/8, where the
 * density d = 1..7 cycles with v: some variants keep almost nothing, some
 * almost everything, which finds more bugs than always one half. */
static bool take(uint64_t k, unsigned v, int part, uint64_t unit)
{
	if (v == 0)
		return true;
	if (v == 1)
		return false;
	uint64_t h = mix64(mix64(k * 0x9e3779b97f4a7c15ull ^ v) ^ ((uint64_t)part << 56) ^ unit);
	unsigned density = (v - 2) % 7 + 1;
	return (h & 7) < density;
}

static void copy_line(const struct part *p, uint8_t *out, uint32_t line, uint64_t k, unsigned v,
                      int part, bool torn)
{
	uint64_t off = (uint64_t)line * LINE;
	size_t n = line_len(p, line);
	if (!torn) {
		if (take(k, v, part, line))
			memcpy(out + off, p->v + off, n);
		return;
	}
	/* Word units are numbered apart from line units so that the torn and
	 * untorn variants do not simply mirror each other. */
	for (size_t w = 0; w < n; w += 8) {
		uint64_t unit = (1ull << 62) | ((off + w) / 8);
		if (take(k, v, part, unit)) {
			size_t wn = n - w < 8 ? n - w : 8;
			memcpy(out + off + w, p->v + off + w, wn);
		}
	}
}

static int image(struct recorder *r, uint64_t k, unsigned v, int part, void *out, bool torn)
{
	if (part < 0 || part >= RECORDER_MAX_PARTS || out == NULL)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	struct part *p = &r->parts[part];
	int rc = p->declared ? seek_crash_point(r, k) : -EINVAL;
	if (rc == 0) {
		memcpy(out, p->d, (size_t)p->size);
		for (size_t i = 0; i < p->uncertain.n; i++)
			copy_line(p, out, p->uncertain.v[i], k, v, part, torn);
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int recorder_crash_image_range(struct recorder *r, uint64_t k, int part, uint64_t lo, uint64_t hi,
                               void *out)
{
	if (part < 0 || part >= RECORDER_MAX_PARTS || out == NULL)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	struct part *p = &r->parts[part];
	int rc = p->declared ? seek_crash_point(r, k) : -EINVAL;
	if (rc == 0) {
		memcpy(out, p->d, (size_t)p->size);
		for (size_t i = 0; i < p->uncertain.n; i++) {
			uint64_t off = (uint64_t)p->uncertain.v[i] * LINE;
			if (off >= lo && off < hi)
				memcpy((uint8_t *)out + off, p->v + off,
				       line_len(p, p->uncertain.v[i]));
		}
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int recorder_crash_image(struct recorder *r, uint64_t k, unsigned v, int part, void *out)
{
	return image(r, k, v, part, out, false);
}

int recorder_crash_image_torn(struct recorder *r, uint64_t k, unsigned v, int part, void *out)
{
	return image(r, k, v, part, out, true);
}

uint64_t recorder_pending_lines(struct recorder *r, uint64_t k)
{
	pthread_mutex_lock(&r->lock);
	uint64_t n = 0;
	if (seek_crash_point(r, k) == 0)
		for (int i = 0; i < RECORDER_MAX_PARTS; i++)
			n += r->parts[i].declared ? r->parts[i].uncertain.n : 0;
	pthread_mutex_unlock(&r->lock);
	return n;
}

int recorder_final_image(struct recorder *r, int part, void *out)
{
	if (part < 0 || part >= RECORDER_MAX_PARTS || out == NULL)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	struct part *p = &r->parts[part];
	int rc = p->declared ? seek(r, r->nev) : -EINVAL;
	if (rc == 0)
		memcpy(out, p->v, (size_t)p->size);
	pthread_mutex_unlock(&r->lock);
	return rc;
}
