/*
 * fuse_scrub.c - the daemon's side of `cairn scrub MOUNTPOINT`: a thread
 * that runs cairn_scrub on the mounted volume while the mount serves
 * requests, started, cancelled and watched through an attribute of the
 * mount's root (CFUSE_SCRUB_XATTR).
 *
 * Owns: struct cfuse_scrub.  May call: the public API, pthreads.
 *
 * The channel is a trusted.* attribute, like `cairn stat`'s, because the
 * kernel lets only CAP_SYS_ADMIN set or read those: a scrub reads every
 * block of the volume, which is not for every user to start.
 */
#include <errno.h>
#include <string.h>

#include "fuse/fuse_internal.h"

void cfuse_scrub_init(struct cfuse *cf)
{
	memset(&cf->scrub, 0, sizeof(cf->scrub));
	pthread_mutex_init(&cf->scrub.lock, NULL);
}

static void *scrub_thread(void *arg)
{
	struct cfuse *cf = arg;
	int rc = cairn_scrub(cf->fs, &cf->scrub.s);
	int e = rc ? errno : 0;
	pthread_mutex_lock(&cf->scrub.lock);
	cf->scrub.error = e;
	cf->scrub.state = rc ? CFUSE_SCRUB_FAILED : CFUSE_SCRUB_DONE;
	pthread_mutex_unlock(&cf->scrub.lock);
	return NULL;
}

static int scrub_start(struct cfuse *cf)
{
	struct cfuse_scrub *x = &cf->scrub;
	if (x->state == CFUSE_SCRUB_RUNNING)
		return -EBUSY;
	if (x->started) /* the last one has ended: reap it */
		pthread_join(x->thread, NULL);
	x->started = false;
	memset(&x->s, 0, sizeof(x->s));
	x->error = 0;
	x->state = CFUSE_SCRUB_RUNNING;
	int rc = pthread_create(&x->thread, NULL, scrub_thread, cf);
	if (rc) {
		x->state = CFUSE_SCRUB_IDLE;
		return -rc;
	}
	x->started = true;
	return 0;
}

int cfuse_scrub_control(struct cfuse *cf, const char *value, size_t size)
{
	int rc = -EINVAL;
	pthread_mutex_lock(&cf->scrub.lock);
	if (size == 5 && !memcmp(value, "start", 5)) {
		rc = scrub_start(cf);
	} else if (size == 6 && !memcmp(value, "cancel", 6)) {
		__atomic_store_n(&cf->scrub.s.cancel, 1, __ATOMIC_RELAXED);
		rc = 0;
	}
	pthread_mutex_unlock(&cf->scrub.lock);
	return rc;
}

void cfuse_scrub_status(struct cfuse *cf, struct cfuse_scrub_status *out)
{
	const struct cairn_scrub *s = &cf->scrub.s;
	pthread_mutex_lock(&cf->scrub.lock);
	out->state = cf->scrub.state;
	out->error = cf->scrub.error;
	/* The thread updates the counters as it goes: atomic loads, and the
	 * list up to the count it published. */
	out->s.files_total = __atomic_load_n(&s->files_total, __ATOMIC_RELAXED);
	out->s.files_done = __atomic_load_n(&s->files_done, __ATOMIC_RELAXED);
	out->s.bytes_total = __atomic_load_n(&s->bytes_total, __ATOMIC_RELAXED);
	out->s.bytes_done = __atomic_load_n(&s->bytes_done, __ATOMIC_RELAXED);
	out->s.damaged_blocks = __atomic_load_n(&s->damaged_blocks, __ATOMIC_RELAXED);
	out->s.listed = __atomic_load_n(&s->listed, __ATOMIC_ACQUIRE);
	memcpy(out->s.damaged, s->damaged, out->s.listed * sizeof(s->damaged[0]));
	out->s.cancel = 0;
	pthread_mutex_unlock(&cf->scrub.lock);
}

void cfuse_scrub_stop(struct cfuse *cf)
{
	pthread_mutex_lock(&cf->scrub.lock);
	bool join = cf->scrub.started;
	__atomic_store_n(&cf->scrub.s.cancel, 1, __ATOMIC_RELAXED);
	cf->scrub.started = false;
	pthread_mutex_unlock(&cf->scrub.lock);
	if (join)
		pthread_join(cf->scrub.thread, NULL);
	pthread_mutex_destroy(&cf->scrub.lock);
}
