/*
 * clog_check.c - judging a client log that a dead daemon left
 * (clog_check.h).
 *
 * A slot's files are made in an order that a crash can cut anywhere: the
 * log (formatted, its ring never written), then the state file (sized,
 * then its header and progress stored), and only then is the log handed
 * to a client.  So a state file that is not whole goes either with a log
 * nobody ever wrote, which may go with nothing lost, or with damage, and
 * then the log may hold writes the client was told are durable: those
 * must never be dropped without the user's say.  A log "nobody ever
 * wrote" is one whose whole ring is zero: every client's first record
 * goes at its start, and a log is only ever made anew.  A whole slot is
 * scanned from its progress on as a mount's recovery scans the volume's
 * log, which tells a record a crash tore (nothing after it was
 * acknowledged) from one damaged after it was durable (records written
 * after it say so).  A state file whose header alone is damaged can be
 * given its header again from the rest (clog_header_rebuild).
 *
 * Owns: nothing.  May call: the media layer, the log, util/checksum.
 */
#include "log/clog_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "log/log_format.h"
#include "util/checksum.h"

#define PATH_LEN 4200

/* What is wrong with a state file's header for slot of the volume with
 * volume_uuid, or NULL. */
static const char *header_problem(const struct clog_header *h, int slot,
                                  const uint8_t volume_uuid[16])
{
	static const struct clog_header zero;
	if (!memcmp(h, &zero, sizeof(zero)))
		return "its header was never written";
	if (h->magic != CLOG_STATE_MAGIC)
		return "bad magic number";
	if (h->checksum != checksum64(h, offsetof(struct clog_header, checksum)))
		return "checksum mismatch";
	if (h->version != CLOG_VERSION && h->version != CLOG_VERSION_UNSEALED)
		return "unsupported version";
	if (h->slot != (uint32_t)slot)
		return "made for another slot";
	if (memcmp(h->volume_uuid, volume_uuid, 16))
		return "belongs to another volume";
	return NULL;
}

uint64_t clog_epoch_seal(const uint8_t log_id[16], uint64_t ino, uint64_t count)
{
	struct clog_seal s;
	memset(&s, 0, sizeof(s));
	memcpy(s.log_id, log_id, 16);
	s.ino = ino;
	s.count = count;
	uint64_t seal = checksum64(&s, sizeof(s)) >> CLOG_EPOCH_COUNT_BITS;
	return seal << CLOG_EPOCH_COUNT_BITS | CLOG_EPOCH_COUNT(count);
}

int clog_grant_whole(uint32_t version, const uint8_t log_id[16], const struct clog_grant *g)
{
	if (version == CLOG_VERSION_UNSEALED || !g->epoch)
		return 1;
	return g->ino && g->epoch == clog_epoch_seal(log_id, g->ino, CLOG_EPOCH_COUNT(g->epoch));
}

/* What is wrong with the grants in the state file m of the log with
 * header h, in problem (len bytes), or NULL. */
static const char *grants_problem(struct media *m, const struct clog_header *h, char *problem,
                                  size_t len)
{
	struct clog_grant g[CLOG_GRANTS];
	int rc = media_read(m, CLOG_GRANTS_OFF, g, sizeof(g));
	if (rc)
		return strerror(-rc);
	for (int i = 0; i < CLOG_GRANTS; i++)
		if (!clog_grant_whole(h->version, h->log_id, &g[i])) {
			snprintf(problem, len,
			         "grant %d (inode %llu, epoch %#llx) does not match its seal", i,
			         (unsigned long long)g[i].ino, (unsigned long long)g[i].epoch);
			return problem;
		}
	return NULL;
}

int clog_read_progress(struct media *m, const uint8_t log_id[16], uint64_t *gen, uint64_t *seq,
                       uint64_t *off)
{
	int found = 0;
	for (int k = 0; k < 2; k++) {
		struct clog_progress p;
		if (media_read(m, CLOG_PROGRESS_OFF + (uint64_t)k * sizeof(p), &p, sizeof(p)))
			continue;
		if (p.magic != CLOG_PROGRESS_MAGIC || memcmp(p.log_id, log_id, 16) ||
		    p.checksum != checksum64(&p, offsetof(struct clog_progress, checksum)))
			continue;
		if (!found || p.gen > *gen) {
			*gen = p.gen;
			*seq = p.seq;
			*off = p.off;
		}
		found = 1;
	}
	return found;
}

/* A slot's files, open. */
struct slot_files {
	char statep[PATH_LEN], logp[PATH_LEN];
	struct media *sm, *lm;
	struct log *log;
	uint64_t seq, off; /* the progress */
	int in_log;        /* what open_slot refused is the log */
};

static void close_slot(struct slot_files *f)
{
	log_close(f->log);
	media_close(f->lm);
	media_close(f->sm);
	f->log = NULL;
	f->lm = f->sm = NULL;
}

/* Opens slot's files into *f and reads the state file's header into *h:
 * NULL, or what keeps them from being used (in detail when the media or
 * the log said it). */
static const char *open_slot(struct slot_files *f, enum media_kind kind, int slot,
                             const uint8_t volume_uuid[16], struct clog_header *h, char *detail,
                             size_t len)
{
	struct stat st;
	if (stat(f->statep, &st))
		return strerror(errno);
	if (st.st_size == 0)
		return "it is empty";
	if ((uint64_t)st.st_size < CLOG_STATE_SIZE)
		return "it is cut short";
	if (media_open(&f->sm, kind, f->statep, 0, 0, detail, len))
		return detail;
	int rc = media_read(f->sm, 0, h, sizeof(*h));
	if (rc)
		return strerror(-rc);
	const char *problem = header_problem(h, slot, volume_uuid);
	uint64_t gen;
	if (!problem && !clog_read_progress(f->sm, h->log_id, &gen, &f->seq, &f->off))
		problem = "neither copy of its progress is valid";
	if (!problem)
		problem = grants_problem(f->sm, h, detail, len);
	if (problem)
		return problem;
	f->in_log = 1;
	if (media_open(&f->lm, kind, f->logp, 0, 0, detail, len) ||
	    log_open(&f->log, f->lm, h->log_id, detail, len))
		return detail;
	return NULL;
}

static void slot_paths(struct slot_files *f, const char *log_part_path, int slot)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->statep, sizeof(f->statep), CLOG_STATE_NAME, log_part_path, slot);
	snprintf(f->logp, sizeof(f->logp), CLOG_LOG_NAME, log_part_path, slot);
}

int clog_scan_damage(struct log *l, uint64_t seq, uint64_t off, char *why, size_t len)
{
	int rc = log_recover(l, off, seq, log_replay_none, NULL, 1);
	struct log_damage d;
	if (rc) {
		snprintf(why, len, "%s", strerror(-rc));
		return rc;
	}
	if (!log_damage(l, &d))
		return 0;
	log_damage_describe(l, why, len);
	return 1;
}

/* Whether the bytes [off, end) of m are all zero: 0 when they cannot be
 * read. */
static int all_zero(struct media *m, uint64_t off, uint64_t end)
{
	static const uint8_t zero[LOG_BLOCK];
	uint8_t buf[LOG_BLOCK];
	for (; off < end; off += sizeof(buf)) {
		size_t n = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
		if (media_read(m, off, buf, n) || memcmp(buf, zero, n))
			return 0;
	}
	return 1;
}

/* Whether nobody ever wrote a record into the log at logp (see above):
 * its whole ring is zero (a client's first record starts it; the ring is
 * read whole, so that damage zeroing that record's header too is not
 * taken for it); 0 when it cannot be read. */
static int never_written(const char *logp, enum media_kind kind)
{
	struct media *m = NULL;
	char ignored[256];
	if (media_open(&m, kind, logp, 0, 0, ignored, sizeof(ignored)))
		return 0;
	uint64_t size = media_size(m);
	int empty =
	    size >= LOG_RING_START + LOG_BLOCK && all_zero(m, LOG_RING_START, LOG_BACKUP_OFF(size));
	media_close(m);
	return empty;
}

enum clog_leftover clog_check_slot(const char *log_part_path, int slot, enum media_kind kind,
                                   const uint8_t volume_uuid[16], struct clog_header *header,
                                   uint64_t *seq, uint64_t *off, char *why, size_t len)
{
	struct slot_files f;
	char detail[512] = "";
	slot_paths(&f, log_part_path, slot);
	if (access(f.statep, F_OK) && errno == ENOENT)
		return CLOG_LEFT_NONE;
	const char *problem =
	    open_slot(&f, kind, slot, volume_uuid, header, detail, sizeof(detail));
	close_slot(&f);
	if (seq)
		*seq = f.seq;
	if (off)
		*off = f.off;
	if (!problem)
		return CLOG_LEFT_USABLE;
	snprintf(why, len, "its %s %s: %s", f.in_log ? "log" : "state file",
	         f.in_log ? f.logp : f.statep, problem);
	return never_written(f.logp, kind) ? CLOG_LEFT_UNFINISHED : CLOG_LEFT_DAMAGED;
}

/* Opens a slot clog_check_slot found usable and scans it from (seq, off):
 * clog_scan_damage's result; f is left open. */
static int open_and_scan(struct slot_files *f, const char *log_part_path, int slot,
                         enum media_kind kind, const uint8_t volume_uuid[16], uint64_t seq,
                         uint64_t off, char *why, size_t len)
{
	struct clog_header h;
	slot_paths(f, log_part_path, slot);
	const char *problem = open_slot(f, kind, slot, volume_uuid, &h, why, len);
	if (problem) {
		if (problem != why)
			snprintf(why, len, "%s", problem);
		return -EUCLEAN;
	}
	return clog_scan_damage(f->log, seq, off, why, len);
}

int clog_find_damage(const char *log_part_path, int slot, enum media_kind kind,
                     const uint8_t volume_uuid[16], uint64_t seq, uint64_t off, char *why,
                     size_t len)
{
	struct slot_files f;
	int rc = open_and_scan(&f, log_part_path, slot, kind, volume_uuid, seq, off, why, len);
	close_slot(&f);
	return rc;
}

int clog_drop_damaged(const char *log_part_path, int slot, enum media_kind kind,
                      const uint8_t volume_uuid[16], uint64_t seq, uint64_t off, char *why,
                      size_t len)
{
	struct slot_files f;
	int rc = open_and_scan(&f, log_part_path, slot, kind, volume_uuid, seq, off, why, len);
	if (rc == 1) {
		rc = log_drop_damaged(f.log);
		if (rc)
			snprintf(why, len, "%s", strerror(-rc));
	}
	close_slot(&f);
	return rc;
}

/* The log id of the valid progress copies of the state file m: 1 when
 * there is one id (both valid copies name it), 0 when none or two. */
static int progress_log_id(struct media *m, uint8_t log_id[16])
{
	int found = 0;
	for (int k = 0; k < 2; k++) {
		struct clog_progress p;
		if (media_read(m, CLOG_PROGRESS_OFF + (uint64_t)k * sizeof(p), &p, sizeof(p)) ||
		    p.magic != CLOG_PROGRESS_MAGIC ||
		    p.checksum != checksum64(&p, offsetof(struct clog_progress, checksum)))
			continue;
		if (found && memcmp(log_id, p.log_id, 16))
			return 0;
		memcpy(log_id, p.log_id, 16);
		found = 1;
	}
	return found;
}

/* Whether the header h that header_problem refused is damage rather than
 * a whole header of another slot or volume, which is not this slot's to
 * remake. */
static int header_damaged(const struct clog_header *h)
{
	return h->magic != CLOG_STATE_MAGIC ||
	       h->checksum != checksum64(h, offsetof(struct clog_header, checksum)) ||
	       (h->version != CLOG_VERSION && h->version != CLOG_VERSION_UNSEALED);
}

int clog_header_rebuild(const char *log_part_path, int slot, enum media_kind kind,
                        const uint8_t volume_uuid[16], int write, char *why, size_t len)
{
	struct slot_files f;
	slot_paths(&f, log_part_path, slot);
	struct clog_header h;
	int ok = 0, rc = 0;
	struct stat st;
	if (stat(f.statep, &st) || (uint64_t)st.st_size < CLOG_STATE_SIZE ||
	    media_open(&f.sm, kind, f.statep, 0, 0, why, len))
		goto out;
	if (media_read(f.sm, 0, &h, sizeof(h)) || !header_damaged(&h) ||
	    !progress_log_id(f.sm, h.log_id))
		goto out;
	h.version = CLOG_VERSION; /* only a version 2 file's grants can say whose it is */
	if (grants_problem(f.sm, &h, why, len) || media_open(&f.lm, kind, f.logp, 0, 0, why, len) ||
	    log_open(&f.log, f.lm, h.log_id, why, len))
		goto out;
	ok = 1;
	if (!write)
		goto out;
	struct clog_header n;
	memset(&n, 0, sizeof(n));
	n.magic = CLOG_STATE_MAGIC;
	n.version = CLOG_VERSION;
	n.slot = (uint32_t)slot;
	memcpy(n.volume_uuid, volume_uuid, 16);
	memcpy(n.log_id, h.log_id, 16);
	n.log_size = media_size(f.lm);
	n.checksum = checksum64(&n, offsetof(struct clog_header, checksum));
	rc = media_store(f.sm, 0, &n, sizeof(n));
	if (!rc)
		rc = media_fence(f.sm);
	if (rc)
		snprintf(why, len, "%s", strerror(-rc));
out:
	close_slot(&f);
	return rc ? rc : ok;
}

int clog_header_can_rebuild(const char *log_part_path, int slot, enum media_kind kind,
                            const uint8_t volume_uuid[16])
{
	char ignored[256];
	return clog_header_rebuild(log_part_path, slot, kind, volume_uuid, 0, ignored,
	                           sizeof(ignored)) == 1;
}
