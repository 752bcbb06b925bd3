/*
 * client_log.c - a client's private log: the data of its writes to files
 * it holds a grant for goes into a log of its own, with no message to the
 * daemon, durable when the call returns (src/libfs/clients.h has the
 * daemon's side and the rules).
 *
 * Owns: struct client_log (the mapping of the log, the read-only mapping
 * of the state file, the credit).  May call: the log and media layers,
 * and client_sync (client.c) for the rare round trip.
 *
 * One write: check the grant's live epoch, reserve the record's place
 * (under the log's mutex), fill it (outside: threads copy at once), make
 * it and every record before it durable, a full fence, check the live
 * epoch again.  If it is still the
 * grant's, the daemon's next look at the log sees the record, whatever
 * happens next.  If it changed, the grant was being revoked: the client
 * asks whether the record was applied and, if not, writes through the
 * daemon.
 */
#include "client/client_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log/clog_format.h"
#include "log/log.h"
#include "log/log_format.h"
#include "media/media.h"

/* Credit asked for when it runs out, in blocks. */
#define WANT_CREDIT 16384u

struct client_log {
	pthread_mutex_t lock; /* appends, and the round trips that change credit */
	struct media *m;
	struct log *log;
	const struct clog_grant *grants; /* the state file, mapped read-only */
	const uint64_t *head;            /* its head word */
	const uint64_t *granted_word;    /* and its credit word */
	void *state_map;
	uint64_t credit;  /* blocks it may spend */
	uint64_t granted; /* the credit word `credit` counts */
};

struct client_log *client_log_open(int log_fd, int state_fd, const struct ctl_clog *info)
{
	struct client_log *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	char err[512];
	int rc = media_open_given(&l->m, (enum media_kind)info->media_kind, log_fd, "client log",
	                          err, sizeof(err));
	if (!rc)
		rc = log_open(&l->log, l->m, info->log_id, err, sizeof(err));
	/* Empty and new: the scan only finds where appends start.  Read-only,
	 * so no epoch is written: the daemon reads the records with the
	 * epoch it found at their log's making. */
	if (!rc)
		rc = log_recover(l->log, LOG_RING_START, 1, log_replay_none, NULL, 1);
	if (!rc) {
		l->state_map = mmap(NULL, CLOG_STATE_SIZE, PROT_READ, MAP_SHARED, state_fd, 0);
		if (l->state_map == MAP_FAILED)
			rc = -errno;
	}
	if (rc) {
		log_close(l->log);
		media_close(l->m);
		free(l);
		return NULL;
	}
	l->grants = (const struct clog_grant *)((const uint8_t *)l->state_map + CLOG_GRANTS_OFF);
	l->head = (const uint64_t *)((const uint8_t *)l->state_map + CLOG_HEAD_OFF);
	l->granted_word = (const uint64_t *)((const uint8_t *)l->state_map + CLOG_GRANTED_OFF);
	/* The credit word now counts the credit the daemon's reply gave, and
	 * any it added since: taken as spent, which is never too much. */
	l->credit = info->credit;
	l->granted = __atomic_load_n(l->granted_word, __ATOMIC_ACQUIRE);
	pthread_mutex_init(&l->lock, NULL);
	client_log_move_fd(l, client_fd_floor()); /* stays where it is if it cannot */
	return l;
}

void client_log_close(struct client_log *l)
{
	if (!l)
		return;
	munmap(l->state_map, CLOG_STATE_SIZE);
	log_close(l->log);
	media_close(l->m);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

int client_log_fd(const struct client_log *l)
{
	return media_fd(l->m);
}

int client_log_move_fd(struct client_log *l, int min)
{
	int rc = media_move_fd(l->m, min);
	return rc ? (errno = -rc, -1) : 0;
}

int client_log_live(const struct client_log *l, const struct client_grant *g)
{
	uint32_t i = __atomic_load_n(&g->index, __ATOMIC_RELAXED);
	if (i >= CLOG_GRANTS)
		return 0;
	return __atomic_load_n(&l->grants[i].live, __ATOMIC_ACQUIRE) == g->epoch;
}

uint64_t client_log_kernel_reads(const struct client_log *l, const struct client_grant *g)
{
	uint32_t i = __atomic_load_n(&g->index, __ATOMIC_RELAXED);
	return i < CLOG_GRANTS ? __atomic_load_n(&l->grants[i].kernel_reads, __ATOMIC_ACQUIRE) : 0;
}

int client_log_find_grant(const struct client_log *l, uint64_t ino, struct client_grant *g)
{
	for (uint32_t i = 0; i < CLOG_GRANTS; i++) {
		/* The daemon sets ino, then epoch, then live, each fenced. */
		uint64_t live = __atomic_load_n(&l->grants[i].live, __ATOMIC_ACQUIRE);
		if (live && __atomic_load_n(&l->grants[i].ino, __ATOMIC_RELAXED) == ino &&
		    __atomic_load_n(&l->grants[i].epoch, __ATOMIC_RELAXED) == live) {
			*g = (struct client_grant){i, live};
			return 1;
		}
	}
	return 0;
}

static void drop_grant(struct client_grant *g)
{
	__atomic_store_n(&g->index, CLOG_GRANTS, __ATOMIC_RELAXED);
}

/* A round trip with l->lock held: everything is ingested, the log's space
 * reclaimed and the credit topped up.  Whether record seq was applied in
 * *ingested. */
static int sync_locked(struct client *c, struct client_log *l, uint64_t seq, int *ingested)
{
	/* Records other threads reserved (their cost taken from l->credit)
	 * but have not filled yet would not be ingested by this round trip,
	 * yet the credit it returns does not count them: the client would
	 * spend their blocks twice, and the daemon refuse the log as forged.
	 * So every reserved record is filled and durable first (no thread
	 * reserves meanwhile: l->lock is held). */
	if (log_commit_all(l->log))
		return errno = EIO, -1;
	struct ctl_clog_sync r;
	if (client_sync(c, seq, WANT_CREDIT, &r))
		return -1;
	log_reclaim(l->log, r.head_off, r.head_seq);
	l->credit = r.credit;
	l->granted = r.granted;
	if (ingested)
		*ingested = r.ingested != 0;
	return 0;
}

/* Reuses the space the daemon says it has durably copied (the head word,
 * kept up to date by a thread of the daemon): no round trip.  1 if the
 * head moved. */
static int reclaim_published(struct client_log *l)
{
	uint64_t w = __atomic_load_n(l->head, __ATOMIC_ACQUIRE);
	uint64_t seq = CLOG_HEAD_SEQ(w), off = CLOG_HEAD_POS(w);
	if (seq <= log_head_seq(l->log) || seq > log_tail_seq(l->log))
		return 0;
	log_reclaim(l->log, off, seq);
	return 1;
}

/* Takes the credit the daemon gave since the client last looked (the
 * credit word, kept up to date as the daemon ingests): no round trip. */
static void credit_published(struct client_log *l)
{
	uint64_t w = __atomic_load_n(l->granted_word, __ATOMIC_ACQUIRE);
	if (w > l->granted) {
		l->credit += w - l->granted;
		l->granted = w;
	}
}

/* One record for the log: its type, inode, second argument (the offset
 * of a write, the size of a truncate) and payload. */
struct clog_rec {
	uint32_t type;
	uint64_t ino, arg;
	const struct iovec *iov;
	int iovcnt;
	size_t count;
};

/* Reserves the record's place under l->lock: 1 and *seq, or 0 when it
 * must go through the daemon (grant gone, no credit, too large), or -1
 * with errno.  The caller fills it after letting go of the lock. */
static int append(struct client *c, struct client_log *l, struct client_grant *g,
                  const struct clog_rec *r, uint64_t *seq, struct log_fill *fill)
{
	if (!client_log_live(l, g))
		return 0;
	uint64_t cost = clog_type_cost(r->type, r->arg, r->count);
	if (l->credit < cost)
		credit_published(l);
	if (l->credit < cost && sync_locked(c, l, 0, NULL))
		return -1;
	if (l->credit < cost)
		return 0; /* the volume is (nearly) full: the daemon says ENOSPC */
	uint64_t args[LOG_REC_ARGS] = {r->ino, r->arg, g->epoch};
	struct log_pos pos;
	uint16_t type = (uint16_t)r->type;
	int rc = log_reserve(l->log, type, args, r->iov, r->iovcnt, &pos, fill);
	if (rc == -ENOSPC && reclaim_published(l))
		rc = log_reserve(l->log, type, args, r->iov, r->iovcnt, &pos, fill);
	if (rc == -ENOSPC) {
		if (sync_locked(c, l, 0, NULL))
			return -1;
		rc = log_reserve(l->log, type, args, r->iov, r->iovcnt, &pos, fill);
	}
	if (rc)
		return 0;
	l->credit -= cost;
	*seq = pos.seq;
	return 1;
}

/* Puts r in the log durably under grant g: 1, 0 when the caller must ask
 * the daemon instead (and g may have been dropped), -1 with errno. */
static int put_record(struct client *c, struct client_log *l, struct client_grant *g,
                      const struct clog_rec *r)
{
	uint64_t seq = 0;
	struct log_fill fill = {.pending = 0};
	pthread_mutex_lock(&l->lock);
	int rc = append(c, l, g, r, &seq, &fill);
	pthread_mutex_unlock(&l->lock);
	/* The copy and its checksum run here, beside the client's other
	 * threads; the commit waits for the records before this one. */
	int frc = log_fill(l->log, &fill);
	if (rc <= 0) {
		if (rc == 0 && !client_log_live(l, g))
			drop_grant(g); /* revoked: through the daemon from now on */
		return rc;
	}
	if (frc || log_commit(l->log, seq))
		return errno = EIO, -1;
	atomic_thread_fence(memory_order_seq_cst);
	if (client_log_live(l, g))
		return 1;
	/* Revoked while the record was being written: applied or skipped? */
	drop_grant(g);
	int ingested = 0;
	pthread_mutex_lock(&l->lock);
	int s = sync_locked(c, l, seq, &ingested);
	pthread_mutex_unlock(&l->lock);
	if (s)
		return -1;
	return ingested ? 1 : 0;
}

int client_log_write(struct client *c, struct client_log *l, struct client_grant *g, uint64_t ino,
                     const struct iovec *iov, int iovcnt, size_t count, uint64_t off)
{
	if (count == 0 || count > log_max_payload(l->log))
		return 0;
	if (off != CLOG_AT_END && (off > CLOG_MAX_END || count > CLOG_MAX_END - off))
		return 0; /* the daemon says EFBIG */
	struct clog_rec r = {CLOG_REC_WRITE, ino, off, iov, iovcnt, count};
	return put_record(c, l, g, &r);
}

int client_log_truncate(struct client *c, struct client_log *l, struct client_grant *g,
                        uint64_t ino, uint64_t size)
{
	if (size > CLOG_MAX_END)
		return 0; /* the daemon says EFBIG */
	struct clog_rec r = {CLOG_REC_TRUNCATE, ino, size, NULL, 0, 0};
	return put_record(c, l, g, &r);
}

int client_log_create(struct client *c, struct client_log *l, struct client_grant *dir_grant,
                      uint64_t dir, uint64_t ino, uint32_t mode, const char *name, size_t len)
{
	struct clog_create cc = {mode, 0};
	struct iovec iov[2] = {{&cc, sizeof(cc)}, {(void *)name, len}};
	struct clog_rec r = {CLOG_REC_CREATE, dir, ino, iov, 2, sizeof(cc) + len};
	return put_record(c, l, dir_grant, &r);
}

int client_log_unlink(struct client *c, struct client_log *l, struct client_grant *dir_grant,
                      uint64_t dir, uint64_t ino, const char *name, size_t len)
{
	struct iovec iov = {(void *)name, len};
	struct clog_rec r = {CLOG_REC_UNLINK, dir, ino, &iov, 1, len};
	return put_record(c, l, dir_grant, &r);
}
