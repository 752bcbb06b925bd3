/*
 * scrub_job.c - the volume's online scrub: a thread of the daemon that runs
 * cairn_scrub while the volume goes on serving, started, cancelled and
 * watched by root through the control socket (CTL_SCRUB), whether the
 * daemon is a mount's or `cairn serve`.
 *
 * Owns: struct scrub_job.  May call: the public API, pthreads.
 *
 * A scrub reads every block of the volume, which is not for every user to
 * start: only root may (serve_ops.c checks).
 */
#include <errno.h>
#include <string.h>

#include "server/server_internal.h"

void scrub_job_init(struct scrub_job *j, cairn_fs *fs)
{
	memset(j, 0, sizeof(*j));
	j->fs = fs;
	pthread_mutex_init(&j->lock, NULL);
}

static void *scrub_thread(void *arg)
{
	struct scrub_job *j = arg;
	int rc = cairn_scrub(j->fs, &j->s);
	int e = rc ? errno : 0;
	pthread_mutex_lock(&j->lock);
	j->error = e;
	j->state = rc ? CTL_SCRUB_FAILED : CTL_SCRUB_DONE;
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

static int scrub_start(struct scrub_job *j)
{
	if (j->state == CTL_SCRUB_RUNNING)
		return -EBUSY;
	if (j->started) /* the last one has ended: reap it */
		pthread_join(j->thread, NULL);
	j->started = 0;
	memset(&j->s, 0, sizeof(j->s));
	j->error = 0;
	j->state = CTL_SCRUB_RUNNING;
	int rc = pthread_create(&j->thread, NULL, scrub_thread, j);
	if (rc) {
		j->state = CTL_SCRUB_IDLE;
		return -rc;
	}
	j->started = 1;
	return 0;
}

int scrub_job_control(struct scrub_job *j, int cmd)
{
	int rc = -EINVAL;
	pthread_mutex_lock(&j->lock);
	if (cmd == CTL_SCRUB_START_CMD) {
		rc = scrub_start(j);
	} else if (cmd == CTL_SCRUB_CANCEL_CMD) {
		__atomic_store_n(&j->s.cancel, 1, __ATOMIC_RELAXED);
		rc = 0;
	} else if (cmd == CTL_SCRUB_STATUS_CMD) {
		rc = 0;
	}
	pthread_mutex_unlock(&j->lock);
	return rc;
}

void scrub_job_status(struct scrub_job *j, struct ctl_scrub_status *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&j->lock);
	out->state = j->state;
	out->error = j->error;
	ctl_scrub_copy(&out->s, &j->s); /* the thread updates it as it goes */
	pthread_mutex_unlock(&j->lock);
}

void scrub_job_stop(struct scrub_job *j)
{
	pthread_mutex_lock(&j->lock);
	int join = j->started;
	__atomic_store_n(&j->s.cancel, 1, __ATOMIC_RELAXED);
	j->started = 0;
	pthread_mutex_unlock(&j->lock);
	if (join)
		pthread_join(j->thread, NULL);
	pthread_mutex_destroy(&j->lock);
}
