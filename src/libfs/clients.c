/*
 * clients.c - private client logs on the daemon's side: making a slot,
 * grants and their revocation, ingestion into the volume's log, progress,
 * and recovery of the logs a dead daemon left.
 *
 * Owns: struct clients (fs->clients), struct clog, and the bytes of the
 * state files.  The client logs' bytes are the clients' (src/client); the
 * daemon only reads them, through the log module.
 * May call: libfs internals (op_log_apply, space), the log, the media layer.
 *
 * Locks: clients->lock (slots, grants, ingestion) is taken before
 * fs->lock, never after it.  The checkpoint, which holds fs->lock, reads
 * each slot's progress without clients->lock: every field it reads is
 * written with both held.
 */
#include "libfs/clients.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "libfs/clients_internal.h"
#include "libfs/fs_internal.h"
#include "libfs/oprec.h"
#include "log/clog_check.h"
#include "log/clog_format.h"
#include "log/log_format.h"
#include "media/media.h"
#include "media/recorder.h"
#include "util/checksum.h"

_Static_assert(CLOG_MAX_END == MAX_FILE_SIZE, "clients know the largest file size");

/* ---- files --------------------------------------------------------------- */

static void slot_paths(struct cairn_fs *fs, int slot, char *logp, char *statep, size_t len)
{
	snprintf(logp, len, CLOG_LOG_NAME, fs->vol.mf.path[PART_LOG], slot);
	snprintf(statep, len, CLOG_STATE_NAME, fs->vol.mf.path[PART_LOG], slot);
}

#define PATH_LEN (VOLUME_PATH_MAX + 32)

int clog_recorder_part(int slot)
{
	return VOLUME_MAX_PARTS + 2 * slot;
}

/* Reports medium m, just made as part `part`, to the recorder of a
 * recorded mount, with what the file holds now. */
static void record_made(struct cairn_fs *fs, struct media *m, int part)
{
	struct recorder *r = fs->opts.recorder;
	if (r && part < RECORDER_MAX_PARTS &&
	    recorder_add_part(r, part, media_direct(m), media_size(m)) == 0)
		media_set_recorder(m, r, part);
}

/* The recorder of a recorded mount learns that slot's files are gone. */
static void record_removed(struct cairn_fs *fs, int slot)
{
	struct recorder *r = fs->opts.recorder;
	for (int p = clog_recorder_part(slot); r && p <= clog_recorder_part(slot) + 1; p++) {
		uint64_t size, born, gone;
		if (recorder_part_span(r, p, &size, &born, &gone) == 0 && gone == UINT64_MAX)
			recorder_part_gone(r, p);
	}
}

static void remove_files(struct cairn_fs *fs, int slot)
{
	char logp[PATH_LEN], statep[PATH_LEN];
	slot_paths(fs, slot, logp, statep, sizeof(logp));
	unlink(statep);
	unlink(logp);
	record_removed(fs, slot);
}

/* Whether slot's files are there though no client uses it: kept by
 * clog_end for the next mount, which applies their records.  Making the
 * slot anew would remove them. */
static int files_kept(struct cairn_fs *fs, int slot)
{
	char logp[PATH_LEN], statep[PATH_LEN];
	slot_paths(fs, slot, logp, statep, sizeof(logp));
	return access(statep, F_OK) == 0;
}

static void clog_free(struct clog *c)
{
	if (!c)
		return;
	log_close(c->log);
	media_close(c->lm);
	media_close(c->sm);
	free(c->buf);
	free(c);
}

static int state_store(struct clog *c, uint64_t off, const void *p, size_t len)
{
	int rc = media_store(c->sm, off, p, len);
	return rc ? rc : media_fence(c->sm);
}

static uint64_t grant_off(uint32_t i)
{
	return CLOG_GRANTS_OFF + (uint64_t)i * sizeof(struct clog_grant);
}

/* One field of grant i, stored, flushed and fenced. */
static int grant_set(struct clog *c, uint32_t i, size_t field, uint64_t v)
{
	uint64_t *p = (uint64_t *)((uint8_t *)&c->grants[i] + field);
	*p = v;
	return state_store(c, grant_off(i) + field, p, sizeof(v));
}

#define G_INO offsetof(struct clog_grant, ino)
#define G_EPOCH offsetof(struct clog_grant, epoch)
#define G_LIVE offsetof(struct clog_grant, live)
#define G_KERNEL_READS offsetof(struct clog_grant, kernel_reads)

static int write_progress(struct clog *c)
{
	struct clog_progress p;
	memset(&p, 0, sizeof(p));
	p.magic = CLOG_PROGRESS_MAGIC;
	p.gen = ++c->progress_gen;
	p.seq = c->next_seq;
	p.off = c->next_off;
	memcpy(p.log_id, c->log_id, 16);
	p.checksum = checksum64(&p, offsetof(struct clog_progress, checksum));
	/* The copy not holding the current progress: a torn write leaves the
	 * other one. */
	uint64_t off = CLOG_PROGRESS_OFF + (p.gen & 1) * sizeof(p);
	return state_store(c, off, &p, sizeof(p));
}

static int write_header(struct cairn_fs *fs, struct clog *c)
{
	struct clog_header h;
	memset(&h, 0, sizeof(h));
	h.magic = CLOG_STATE_MAGIC;
	h.version = CLOG_VERSION;
	h.slot = (uint32_t)c->slot;
	memcpy(h.volume_uuid, fs->vol.mf.uuid, 16);
	memcpy(h.log_id, c->log_id, 16);
	h.log_size = media_size(c->lm);
	h.checksum = checksum64(&h, offsetof(struct clog_header, checksum));
	int rc = media_zero(c->sm, 0, CLOG_STATE_SIZE);
	if (!rc)
		media_flush(c->sm, 0, CLOG_STATE_SIZE);
	if (!rc)
		rc = media_store(c->sm, 0, &h, sizeof(h));
	return rc ? rc : write_progress(c);
}

static enum media_kind log_kind(struct cairn_fs *fs)
{
	return media_kind(fs->vol.part[PART_LOG]);
}

/* The size of a client's log file. */
static uint64_t log_file_size(struct cairn_fs *fs)
{
	uint64_t size = fs->opts.clog_size ? fs->opts.clog_size : CLOG_LOG_SIZE;
	/* Each record must fit in one record of the volume's log with its
	 * OP_CWRITE header: a client log a block smaller than the volume's
	 * has records (a quarter of its ring at most) that do. */
	uint64_t vsize = media_size(fs->vol.part[PART_LOG]);
	if (size > vsize - LOG_BLOCK)
		size = vsize - LOG_BLOCK;
	return size;
}

/* Makes slot's two files: the log formatted with a fresh id, then the
 * state file.  A crash between them leaves a log without a state file,
 * which the next mount removes.  The log's file may be there already,
 * made ahead and never used (clients_make_spare): MEDIA_CREATE then takes
 * it as it is. */
static int make_files(struct cairn_fs *fs, struct clog *c)
{
	char logp[PATH_LEN], statep[PATH_LEN], err[512];
	slot_paths(fs, c->slot, logp, statep, sizeof(logp));
	uuid_generate(c->log_id);
	enum media_kind kind = log_kind(fs);
	unlink(statep);
	int rc = media_open(&c->lm, kind, logp, log_file_size(fs), MEDIA_CREATE, err, sizeof(err));
	if (!rc)
		record_made(fs, c->lm, clog_recorder_part(c->slot));
	if (!rc)
		rc = log_format(c->lm, c->log_id, err, sizeof(err));
	if (!rc)
		rc = log_open(&c->log, c->lm, c->log_id, err, sizeof(err));
	if (!rc && log_max_payload(c->log) + sizeof(struct op_cwrite) > log_max_payload(fs->log)) {
		snprintf(err, sizeof(err), "its records would not fit in the volume's log");
		rc = -EINVAL;
	}
	if (!rc)
		rc = media_open(&c->sm, kind, statep, CLOG_STATE_SIZE, MEDIA_CREATE, err,
		                sizeof(err));
	if (!rc)
		record_made(fs, c->sm, clog_recorder_part(c->slot) + 1);
	c->next_seq = 1;
	c->next_off = LOG_RING_START;
	c->next_epoch = 1;
	if (!rc)
		rc = write_header(fs, c);
	if (rc) {
		fprintf(stderr, "cairn: client log %d: %s\n", c->slot,
		        err[0] ? err : strerror(-rc));
		remove_files(fs, c->slot);
	}
	return rc;
}

/* ---- the table ------------------------------------------------------------ */

struct clients *clients_table(struct cairn_fs *fs)
{
	return fs->clients;
}

static int table_init(struct cairn_fs *fs)
{
	if (fs->clients)
		return 0;
	struct clients *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	pthread_mutex_init(&cl->lock, NULL);
	cl->spare_slot = -1;
	fs->clients = cl;
	return 0;
}

static void slot_put(struct clients *cl, int i, struct clog *c)
{
	if (c && !cl->slot[i])
		atomic_fetch_add(&cl->active, 1);
	else if (!c && cl->slot[i])
		atomic_fetch_sub(&cl->active, 1);
	cl->slot[i] = c;
}

/* ---- ingestion ------------------------------------------------------------ */

int clog_find_grant(const struct clog *c, uint64_t ino, uint64_t epoch)
{
	if (!epoch)
		return -1;
	for (int i = 0; i < CLOG_GRANTS; i++)
		if (c->grants[i].epoch == epoch && c->grants[i].ino == ino)
			return i;
	return -1;
}

/* Whether a grant holds epoch, whatever its inode. */
static int epoch_granted(const struct clog *c, uint64_t epoch)
{
	for (int i = 0; i < CLOG_GRANTS; i++)
		if (c->grants[i].epoch == epoch)
			return 1;
	return 0;
}

void clog_forged(struct clog *c, const char *why, uint64_t seq)
{
	snprintf(c->forged, sizeof(c->forged), "client log %d: record %llu refused: %s", c->slot,
	         (unsigned long long)seq, why);
	if (c->sock >= 0)
		shutdown(c->sock, SHUT_RDWR);
}

/* What is wrong with a record under a grant, or NULL. */
static const char *record_problem(const struct clog *c, const struct log_rec_hdr *h, uint64_t cost)
{
	uint64_t off = h->args[1];
	if (h->type == CLOG_REC_TRUNCATE) {
		if (h->payload_len != 0)
			return "a truncate with a payload";
		if (off > MAX_FILE_SIZE)
			return "a size past the largest file size";
		return NULL;
	}
	if (h->type == CLOG_REC_CREATE || h->type == CLOG_REC_UNLINK)
		return !c->recovered && cost > c->credit ? "more blocks than its credit" : NULL;
	if (h->type != CLOG_REC_WRITE)
		return "of no type a client may write";
	if (h->payload_len == 0)
		return "an empty write";
	if (off != CLOG_AT_END && (off > MAX_FILE_SIZE || h->payload_len > MAX_FILE_SIZE - off))
		return "past the largest file size";
	if (!c->recovered && cost > c->credit)
		return "more blocks than its credit";
	return NULL;
}

/* The client record named in the volume's log beside its copy. */
void clog_copy_of(const struct clog *c, const struct log_rec_hdr *h, uint64_t next,
                  struct op_cwrite *cw)
{
	memset(cw, 0, sizeof(*cw));
	memcpy(cw->log_id, c->log_id, 16);
	cw->seq = h->seq;
	cw->next_off = next;
	cw->slot = (uint32_t)c->slot;
}

/* Whether ino is a regular file (perhaps unlinked but open): what a
 * client's write or truncate may change. */
static int is_regular(struct cairn_fs *fs, uint64_t ino)
{
	struct iref r;
	if (!inode_in_use(&fs->sh, ino) || inode_get(&fs->sh, ino, &r))
		return 0;
	int reg = S_ISREG(r.i->mode);
	inode_put(&fs->sh, &r);
	return reg;
}

/* Copies a truncate into the volume's log as OP_CTRUNCATE and applies it:
 * as the engine's ftruncate, it takes no block. */
static int apply_client_truncate(struct cairn_fs *fs, struct clog *c, const struct log_rec_hdr *h,
                                 uint64_t next, int *attempt)
{
	/* As the engine's truncate: room for the copy, and space for the
	 * tree changes freeing blocks may make. */
	int rc = op_begin(fs, sizeof(struct op_cwrite), 0, SPACE_FREES, attempt);
	if (rc)
		return rc;
	if (!is_regular(fs, h->args[0]))
		return -EBADF;
	struct op_cwrite cw;
	clog_copy_of(c, h, next, &cw);
	uint64_t args[3] = {h->args[0], h->args[1], (uint64_t)now_ns()};
	struct iovec iov = {&cw, sizeof(cw)};
	uint64_t seq;
	rc = op_log_apply(fs, OP_CTRUNCATE, args, &iov, 1, &seq);
	if (!rc)
		fs->stats.client_records++;
	return rc;
}

/*
 * Ingestion in batches (ingest_all).  Under fs->lock a record is checked,
 * the place of its copy in the volume's log reserved and the copy
 * applied; the bytes go into the volume's log after the lock is let go
 * (log_fill), as a writer's do, so that the digest, the mount's requests
 * and the clients' round trips do not wait for the copies and their
 * checksums.  Until then nothing relies on them: a commit, a checkpoint
 * and a reader of the bytes each wait for the fill.
 *
 * Each record's payload is first copied out of the client's log, which
 * the client can still write: checked in one place and copied from
 * another, the bytes could differ, and a copy whose checksum was taken
 * over bytes the client then changed would be damage in the volume's log.
 *
 * Reading a client's record (its checksum, over bytes the client wrote
 * past the caches) and that copy are most of what a write costs the
 * daemon, and neither needs fs->lock: under it they held up the digest,
 * the mount and the other clients' records.  So before each batch takes
 * the lock, gather_writes reads and copies the writes that will fill it,
 * with only clients->lock held (no one else moves a client's progress);
 * under fs->lock, ingest_locked finds them there.
 */
#define BATCH_RECORDS 16 /* well under the log's LOG_FILLS */
#define BATCH_BYTES (256u << 10)

/* A record of c's log at (off, seq), read and copied by gather_writes. */
struct gathered {
	struct clog *c;
	uint64_t off, seq, next;
	struct log_rec_hdr h;
	const void *data; /* its payload's copy, in the batch's bytes */
};

struct ingest_batch {
	int n;       /* records reserved and applied, not filled */
	size_t used; /* bytes of `bytes` taken, since the last gather */
	int ngot;    /* records gathered */
	int taken;   /* of those, the ones ingest_locked looked at */
	struct gathered got[BATCH_RECORDS];
	struct op_cwrite cw[BATCH_RECORDS];
	struct log_fill fill[BATCH_RECORDS];
	uint8_t bytes[BATCH_BYTES];
};

/* ingest_locked's result when b is full: fill it, then call again. */
#define BATCH_FULL 1
/* Batches one look of the catch-up thread takes at most (16 MiB). */
#define CATCH_UP_BATCHES 64

static int batch_room(const struct ingest_batch *b, uint64_t len)
{
	return b->n < BATCH_RECORDS && b->used + len <= BATCH_BYTES;
}

/* Copies the batch's records into the volume's log.  Their bytes, and
 * those gathered and not yet applied, stay where they are until the next
 * gather. */
static int batch_fill(struct cairn_fs *fs, struct ingest_batch *b)
{
	int rc = 0;
	if (b) {
		rc = log_fill_many(fs->log, b->fill, b->n);
		b->n = 0;
	}
	fs_note_failure(fs, rc);
	return rc;
}

/* Copies len bytes into the batch's bytes (batch_room said they fit). */
static const void *batch_copy(struct ingest_batch *b, const void *data, size_t len)
{
	void *at = b->bytes + b->used;
	memcpy(at, data, len);
	b->used += len;
	return at;
}

/* Reads and copies, without fs->lock, the writes (and pads) the next
 * batch will take: round the slots from `at`, as ingest_all_locked goes,
 * each slot's from its progress on, until the batch is full; a slot's
 * stop at its first record of another kind, or not there yet.  Called
 * with b filled (b->n == 0). */
static void gather_writes(struct clients *cl, struct ingest_batch *b, int at)
{
	b->used = 0;
	b->ngot = b->taken = 0;
	for (int k = 0; k < CLOG_SLOTS; k++) {
		struct clog *c = cl->slot[(at + k) % CLOG_SLOTS];
		if (!c || c->forged[0])
			continue;
		uint64_t off = c->next_off, seq = c->next_seq;
		while (b->ngot < BATCH_RECORDS) {
			struct gathered *g = &b->got[b->ngot];
			const void *data;
			if (!log_peek(c->log, off, seq, &g->h, &data, &c->buf, &c->bufsz, &g->next))
				break;
			if (g->h.type != CLOG_REC_WRITE && g->h.type != LOG_REC_PAD)
				break;
			if (!batch_room(b, g->h.payload_len))
				return;
			g->data = g->h.payload_len ? batch_copy(b, data, g->h.payload_len) : NULL;
			g->c = c;
			g->off = off;
			g->seq = seq;
			b->ngot++;
			off = g->next;
			seq = g->h.seq + 1;
		}
	}
}

/* c's next record: gathered, when it was (*copied), or read now. */
static int next_record(struct clog *c, struct ingest_batch *b, struct log_rec_hdr *h,
                       const void **data, uint64_t *next, int *copied)
{
	for (int i = b ? b->taken : 0; b && i < b->ngot; i++) {
		const struct gathered *g = &b->got[i];
		if (g->c == c && g->off == c->next_off && g->seq == c->next_seq) {
			*h = g->h;
			*data = g->data;
			*next = g->next;
			*copied = 1;
			b->taken = i + 1;
			return 1;
		}
	}
	*copied = 0;
	return log_peek(c->log, c->next_off, c->next_seq, h, data, &c->buf, &c->bufsz, next);
}

/* Where the record's payload is read from: a copy of the daemon's own
 * (see above), in b when b is given, or else in c->buf. */
static const void *own_copy(struct clog *c, struct ingest_batch *b, const void *data, size_t len)
{
	if (!len)
		return data;
	if (b)
		return batch_copy(b, data, len);
	if (!media_direct(c->lm))
		return data; /* log_peek read it into c->buf */
	if (c->bufsz < len) {
		uint8_t *nb = realloc(c->buf, len);
		if (!nb)
			return NULL;
		c->buf = nb;
		c->bufsz = len;
	}
	memcpy(c->buf, data, len);
	return c->buf;
}

/* Copies one record into the volume's log as OP_CWRITE (OP_CTRUNCATE)
 * and applies it; with b, its bytes are copied in by batch_fill.
 * -EAGAIN: the lock was dropped to digest; look at the record again. */
static int apply_client_record(struct cairn_fs *fs, struct clog *c, const struct log_rec_hdr *h,
                               const void *data, uint64_t next, uint64_t cost, int *attempt,
                               struct ingest_batch *b)
{
	uint64_t ino = h->args[0], off = h->args[1], len = h->payload_len;
	if (fs->failed)
		return -EIO;
	if (h->type == CLOG_REC_TRUNCATE)
		return apply_client_truncate(fs, c, h, next, attempt);
	uint64_t plen = len + sizeof(struct op_cwrite);
	/* A digest op_begin waits for would wait for the batch's fills. */
	if (b && b->n && !op_has_room(fs, plen, 0, SPACE_NONE)) {
		int frc = batch_fill(fs, b);
		if (frc)
			return frc;
	}
	/* Room for the copy; the blocks are the credit's. */
	int rc = op_begin(fs, plen, 0, SPACE_NONE, attempt);
	if (rc)
		return rc;
	struct iref r;
	rc = inode_get(&fs->sh, ino, &r);
	if (rc)
		return rc;
	if (!S_ISREG(r.i->mode)) {
		inode_put(&fs->sh, &r);
		return -EBADF; /* a grant of a directory, or of a file not made */
	}
	if (off == CLOG_AT_END)
		off = r.i->size;
	uint64_t need = 0;
	if (off > MAX_FILE_SIZE || len > MAX_FILE_SIZE - off)
		rc = -EFBIG;
	if (!rc)
		rc = data_blocks_needed(fs, r.i, NULL, off, len, &need);
	inode_put(&fs->sh, &r);
	if (rc)
		return rc;
	/* The credit held the record's blocks; they pass to its piece. */
	if (!c->recovered) {
		c->credit -= cost;
		fs->reserved_blocks -= cost;
	}
	fs->apply_resv = need;
	struct op_cwrite own;
	struct op_cwrite *cw = b ? &b->cw[b->n] : &own;
	clog_copy_of(c, h, next, cw);
	uint64_t args[3] = {ino, off, (uint64_t)now_ns()};
	struct iovec iov[2] = {{cw, sizeof(*cw)}, {(void *)data, len}};
	uint64_t seq;
	if (b) {
		rc = op_log_reserve_apply(fs, OP_CWRITE, args, iov, 2, &seq, &b->fill[b->n]);
		/* Reserved is filled, applied or not: until it is, no commit
		 * gets past it. */
		if (b->fill[b->n].pending)
			b->n++;
	} else {
		rc = op_log_apply(fs, OP_CWRITE, args, iov, 2, &seq);
	}
	if (!rc)
		fs->stats.client_records++;
	return rc;
}

/* Applies c's records from its progress on, with fs->lock held
 * exclusively.  Stops at the first record not there yet; a forged one
 * stops the log for good. */
static int ingest_locked(struct cairn_fs *fs, struct clog *c, struct ingest_batch *b)
{
	int attempt = 0;
	while (!c->forged[0]) {
		struct log_rec_hdr h;
		const void *data;
		uint64_t next;
		int copied;
		if (!next_record(c, b, &h, &data, &next, &copied))
			return 0;
		int skip = h.type == LOG_REC_PAD;
		if (!skip && clog_find_grant(c, h.args[0], h.args[2]) < 0) {
			/* Written as its grant was revoked: the client writes it
			 * again through the daemon.  An epoch never given is
			 * forged, and so is a granted one with another inode: an
			 * epoch names one inode for the log's life. */
			if (!c->recovered && (CLOG_EPOCH_COUNT(h.args[2]) == 0 ||
			                      CLOG_EPOCH_COUNT(h.args[2]) >= c->next_epoch)) {
				clog_forged(c, "no such grant", h.seq);
				return 0;
			}
			if (!c->recovered && epoch_granted(c, h.args[2])) {
				clog_forged(c, "an inode its grant does not name", h.seq);
				return 0;
			}
			skip = 1;
			c->skipped[c->nskipped++ % CLOG_SKIPPED] = h.seq;
		}
		if (!skip) {
			/* Writes join the batch while it has room; anything else
			 * waits until its records are filled. */
			struct ingest_batch *rb = NULL;
			if (b && h.type == CLOG_REC_WRITE &&
			    (copied ? b->n < BATCH_RECORDS : batch_room(b, h.payload_len)))
				rb = b;
			else if (b && b->n)
				return BATCH_FULL;
			if (!copied)
				data = own_copy(c, rb, data, h.payload_len);
			if (!data)
				return -ENOMEM;
			uint64_t cost = clog_type_cost(h.type, h.args[1], h.payload_len);
			const char *why = record_problem(c, &h, cost);
			int rc = 0;
			if (!why && (h.type == CLOG_REC_CREATE || h.type == CLOG_REC_UNLINK))
				why = clog_apply_name(fs, c, &h, data, next, &attempt, &rc);
			else if (!why)
				rc = apply_client_record(fs, c, &h, data, next, cost, &attempt, rb);
			if (rc == -EFBIG)
				why = "past the largest file size";
			if (rc == -EBADF)
				why = "a write of what is no regular file";
			if (why) {
				clog_forged(c, why, h.seq);
				return 0;
			}
			if (rc == -EAGAIN)
				continue;
			if (rc)
				return rc;
			attempt = 0; /* each record gets its own digests */
		}
		c->next_off = next;
		c->next_seq = h.seq + 1;
	}
	return 0;
}

static void top_up(struct cairn_fs *fs, struct clog *c);

/* One round over the slots from *at.  When a slot fills the batch, the
 * next round starts at the slot after it (*at), so that a client that
 * keeps writing does not keep the others waiting. */
static int ingest_all_locked(struct cairn_fs *fs, struct clients *cl, struct ingest_batch *b,
                             int *at)
{
	int rc = 0;
	for (int k = 0; k < CLOG_SLOTS && !rc; k++) {
		int i = (*at + k) % CLOG_SLOTS;
		if (!cl->slot[i])
			continue;
		rc = ingest_locked(fs, cl->slot[i], b);
		top_up(fs, cl->slot[i]);
		if (rc == BATCH_FULL)
			*at = (i + 1) % CLOG_SLOTS;
	}
	return rc;
}

static int has_new(struct clog *c)
{
	return !c->forged[0] && log_may_hold(c->log, c->next_off, c->next_seq);
}

/* Tells the client how far its log is durably in the volume: it may write
 * over what lies before.  Only after log_commit_all: a record overwritten
 * in the client's log must have its copy durable in the volume's log. */
static void publish_head(struct clog *c)
{
	uint64_t w = CLOG_HEAD_WORD(c->next_seq, c->next_off);
	if (w != c->published && media_write(c->sm, CLOG_HEAD_OFF, &w, sizeof(w)) == 0)
		c->published = w;
}

/* Makes every copy made so far durable, then tells each client where its
 * log now starts (*rc gets a failure). */
static void publish_heads(struct cairn_fs *fs, struct clients *cl, int *rc)
{
	int crc = log_commit_all(fs->log);
	if (crc) {
		*rc = crc;
		return;
	}
	for (int i = 0; i < CLOG_SLOTS; i++)
		if (cl->slot[i])
			publish_head(cl->slot[i]);
}

/* Applies every client's new records; with durably, also makes them
 * durable and tells each client where its log now starts.  0, 1 when
 * there were records, CLIENTS_STREAMING when they filled a batch at
 * least, or -errno. */
static int ingest_all(struct cairn_fs *fs, int durably)
{
	struct clients *cl = clients_table(fs);
	if (!cl || atomic_load(&cl->active) == 0)
		return 0;
	pthread_mutex_lock(&cl->lock);
	int any = 0;
	for (int i = 0; i < CLOG_SLOTS && !any; i++)
		any = cl->slot[i] && has_new(cl->slot[i]);
	int rc = 0, full = 0;
	if (any) {
		/* Empty between passes: each ends with its batch filled.  NULL
		 * (no memory): records are copied as they are applied. */
		if (!cl->batch)
			cl->batch = calloc(1, sizeof(*cl->batch));
		/* On byte-addressable media a commit only waits for the fills:
		 * each batch's space goes back to its client at once, where a
		 * client streaming writes used to wait for the whole pass. */
		int each = log_direct(fs->log, LOG_RING_START) != NULL;
		int at = 0;
		for (int batches = 1;; batches++) {
			if (cl->batch)
				gather_writes(cl, cl->batch, at);
			fs_lock_exclusive(fs);
			rc = ingest_all_locked(fs, cl, cl->batch, &at);
			pthread_rwlock_unlock(&fs->lock);
			int frc = batch_fill(fs, cl->batch);
			if (frc)
				rc = frc;
			if ((rc == 0 || (rc == BATCH_FULL && each)) && durably)
				publish_heads(fs, cl, &rc);
			if (rc != BATCH_FULL)
				break;
			full = 1;
			/* A client given its ring back after each batch could keep
			 * this pass going for ever, with cl->lock held.  The
			 * catch-up thread comes back soon; a request's pass gives
			 * no ring back, and ends when the logs have nothing new. */
			if (durably && batches == CATCH_UP_BATCHES) {
				rc = 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&cl->lock);
	if (any && !rc)
		fs_digest_if_due(fs);
	if (rc)
		return rc;
	return full ? CLIENTS_STREAMING : any;
}

int clients_ingest(cairn_fs *fs)
{
	int rc = ingest_all(fs, 0);
	return rc < 0 ? rc : 0;
}

int clients_catch_up(cairn_fs *fs)
{
	return ingest_all(fs, 1);
}

/* ingest_locked, then the copies made durable in the volume's log: before
 * anything may rely on them being safe there (the client's log going, or
 * being written over). */
static int ingest_committed(struct cairn_fs *fs, struct clog *c)
{
	int rc = ingest_locked(fs, c, NULL);
	return rc ? rc : log_commit_all(fs->log);
}

/* Ingests c and makes what it applied durable, with its progress:
 * before a grant's epoch may go from the state file (see revoke_grant). */
int clog_ingest_durably(struct cairn_fs *fs, struct clog *c)
{
	fs_lock_exclusive(fs);
	int rc = ingest_committed(fs, c);
	if (!rc)
		rc = write_progress(c);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

/* ---- slots ---------------------------------------------------------------- */

/* A client's credit is at most this share of the blocks still available:
 * unspent credit is space nobody else may use, so that clients that write
 * little cannot make a volume full for the others. */
#define CREDIT_SHARE 256

/* Credit for a client, reserved: up to want blocks, no more than its share
 * of the room (at least CLOG_MIN_CREDIT), halving the ask while it does not
 * fit.  A client of a small or nearly full volume still writes locally,
 * asking again sooner. */
static uint64_t credit_share(struct cairn_fs *fs, uint64_t want)
{
	uint64_t share = space_available(fs) / CREDIT_SHARE;
	if (want > share)
		want = share > CLOG_MIN_CREDIT ? share : CLOG_MIN_CREDIT;
	return want;
}

static uint64_t credit_fitting(struct cairn_fs *fs, uint64_t want)
{
	uint64_t got = 0;
	want = credit_share(fs, want);
	for (uint64_t w = want; w && !got && !fs->read_only && !fs->failed;
	     w = w > CLOG_MIN_CREDIT ? w / 2 : 0)
		if (space_check(fs, SPACE_DATA, w) == 0)
			got = w;
	return got;
}

/* Undigested writes hold a block for each block they touch, however
 * little of it they write (a hundred small appends into one block hold a
 * hundred), until a digest stores them: when no credit fits, a digest is
 * waited for once, as the engine's own writes do (op_begin). */
static uint64_t take_credit(struct cairn_fs *fs, uint64_t want)
{
	fs_lock_exclusive(fs);
	uint64_t got = credit_fitting(fs, want);
	if (!got && !fs->read_only && !fs->failed) {
		int rc = fs_digest_wait(fs);
		if (!rc || rc == -ENOSPC)
			got = credit_fitting(fs, want);
	}
	fs->reserved_blocks += got;
	pthread_rwlock_unlock(&fs->lock);
	return got;
}

/*
 * The credit word (state file, CLOG_GRANTED_OFF): all the credit the
 * client was given, which it may read at any time.  The client counts
 * what it spent; what it was given and has not spent it may spend, with
 * no round trip.  It is at most what the daemon counts as unspent, which
 * the daemon lowers only by records it ingested: a client that reads the
 * word never spends what it was not given.  Not durable: credit is the
 * session's, and a restarted daemon gives none.
 */
static void give_credit(struct clog *c, uint64_t got)
{
	if (!got)
		return;
	c->credit += got;
	c->granted += got;
	/* A word left behind would make the next one count this twice: no
	 * more top-ups then (round trips still give credit, with the total). */
	if (media_write(c->sm, CLOG_GRANTED_OFF, &c->granted, sizeof(c->granted)))
		c->word_failed = 1;
}

/* Tops up c's credit when ingestion has used half of its share, with
 * fs->lock held exclusively: a client streaming writes then never asks
 * for credit.  Never waits for a digest (the client's round trip does). */
static void top_up(struct cairn_fs *fs, struct clog *c)
{
	uint64_t want = credit_share(fs, CLOG_CREDIT);
	if (c->recovered || c->forged[0] || c->word_failed || c->credit >= want / 2)
		return;
	uint64_t got = credit_fitting(fs, want - c->credit);
	fs->reserved_blocks += got;
	give_credit(c, got);
}

static int open_for_client(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

/* The first slot other than skip that nobody uses and that holds no
 * files kept for the next mount, or -1.  With cl->lock held. */
static int free_slot(struct cairn_fs *fs, struct clients *cl, int skip)
{
	for (int i = 0; i < CLOG_SLOTS; i++)
		if (i != skip && !cl->slot[i] && !files_kept(fs, i))
			return i;
	return -1;
}

/* The slot of a client starting: the one whose log file was made ahead
 * if that file is whole, else a free one, never one whose file is still
 * being made.  Asks for the next file to be made.  With cl->lock held. */
static int take_slot(struct cairn_fs *fs, struct clients *cl)
{
	int spare = cl->spare_slot;
	atomic_store(&cl->spare_wanted, 1);
	if (spare >= 0 && cl->spare_ready) {
		cl->spare_slot = -1;
		cl->spare_ready = 0;
		if (!cl->slot[spare] && !files_kept(fs, spare))
			return spare;
	}
	return free_slot(fs, cl, cl->spare_slot);
}

void clients_make_spare(cairn_fs *fs)
{
	struct clients *cl = clients_table(fs);
	if (!cl || fs->read_only || !atomic_load(&cl->spare_wanted))
		return;
	pthread_mutex_lock(&cl->lock);
	int slot = -1;
	if (cl->spare_slot < 0 && (slot = free_slot(fs, cl, -1)) >= 0) {
		cl->spare_slot = slot;
		cl->spare_ready = 0;
	}
	atomic_store(&cl->spare_wanted, 0);
	pthread_mutex_unlock(&cl->lock);
	if (slot < 0)
		return;
	/* No client sees this file before it is whole: take_slot passes over
	 * it until then.  A failure (a full medium, say) is retried after the
	 * next client starts, whose own start then says what is wrong. */
	char logp[PATH_LEN], statep[PATH_LEN], err[512];
	slot_paths(fs, slot, logp, statep, sizeof(logp));
	struct media *m = NULL;
	int rc =
	    media_open(&m, log_kind(fs), logp, log_file_size(fs), MEDIA_CREATE, err, sizeof(err));
	media_close(m);
	pthread_mutex_lock(&cl->lock);
	if (rc) {
		unlink(logp);
		cl->spare_slot = -1;
	} else {
		cl->spare_ready = 1;
	}
	pthread_mutex_unlock(&cl->lock);
}

int clog_start(cairn_fs *fs, int sock, uint32_t uid, uint32_t gid, struct clog **out,
               struct clog_start *st)
{
	struct clients *cl = clients_table(fs);
	if (!cl || fs->read_only)
		return -EROFS;
	pthread_mutex_lock(&cl->lock);
	int slot = take_slot(fs, cl);
	int rc = slot < 0 ? -EBUSY : 0;
	struct clog *c = NULL;
	if (!rc && !(c = calloc(1, sizeof(*c))))
		rc = -ENOMEM;
	if (!rc) {
		c->slot = slot;
		c->sock = sock;
		c->uid = uid;
		c->gid = gid;
		c->has_creds = 1;
		rc = make_files(fs, c);
	}
	if (!rc)
		rc = clog_write_creds(c);
	st->log_fd = st->state_fd = -1;
	if (!rc) {
		char logp[PATH_LEN], statep[PATH_LEN];
		slot_paths(fs, slot, logp, statep, sizeof(logp));
		st->log_fd = rc = open_for_client(logp, O_RDWR);
		if (rc >= 0)
			st->state_fd = rc = open_for_client(statep, O_RDONLY);
		rc = rc < 0 ? rc : 0;
	}
	if (rc) {
		if (st->log_fd >= 0)
			close(st->log_fd);
		if (c && c->log)
			remove_files(fs, slot);
		clog_free(c);
		pthread_mutex_unlock(&cl->lock);
		return rc;
	}
	give_credit(c, take_credit(fs, CLOG_CREDIT));
	c->owner = ++cl->next_owner;
	memcpy(st->log_id, c->log_id, 16);
	st->media_kind = (int)log_kind(fs);
	st->credit = c->credit;
	fs_lock_exclusive(fs); /* the checkpoint reads the table */
	slot_put(cl, slot, c);
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&cl->lock);
	*out = c;
	return 0;
}

void clog_end(cairn_fs *fs, struct clog *c, char *why, size_t len)
{
	struct clients *cl = clients_table(fs);
	pthread_mutex_lock(&cl->lock);
	/* Its opens through the mount outlive it (a child inherits them):
	 * from now on they are anyone's, and bar every grant of their inode. */
	if (c->owner_pid)
		atomic_fetch_sub(&cl->owning, 1);
	c->owner_pid = 0;
	/* The process may outlive its session (it closed the socket, or the
	 * session was ended for a forged record): every grant stops being
	 * live before the last ingestion, as in revoke_grant, so that a
	 * record it writes from now on is one it sees revoked (and asks a
	 * daemon that is no longer there: EIO), never one left unread in a
	 * log that is about to go. */
	for (uint32_t i = 0; i < CLOG_GRANTS; i++) {
		if (c->grants[i].live && c->kind[i] == GRANT_DIR)
			clients_dir_count(cl, c->grants[i].ino, -1);
		if (c->grants[i].live)
			grant_set(c, i, G_LIVE, 0);
	}
	atomic_thread_fence(memory_order_seq_cst);
	fs_lock_exclusive(fs);
	/* The copies must be durable before the log they came from goes. */
	int rc = ingest_committed(fs, c);
	if (!rc) {
		fs->reserved_blocks -= c->credit;
		c->credit = 0;
		slot_put(cl, c->slot, NULL);
	} else {
		/* The slot stays taken, with the credit its records need:
		 * later ingestion may still apply them, and otherwise the
		 * next mount does, from the files kept. */
		c->sock = -1;
		c->recovered = 1;
	}
	pthread_rwlock_unlock(&fs->lock);
	if (!rc)
		clog_names_end(fs, c);
	snprintf(why, len, "%s", c->forged);
	if (rc) {
		fprintf(stderr,
		        "cairn: client log %d: cannot ingest (%s); kept for the next mount\n",
		        c->slot, strerror(-rc));
	} else {
		remove_files(fs, c->slot);
		clog_free(c);
	}
	atomic_fetch_add(&cl->changes, 1);
	pthread_mutex_unlock(&cl->lock);
}

/* ---- grants --------------------------------------------------------------- */

/* The mount's opens of ino that are not client c's own. */
static int64_t front_count(struct clients *cl, const struct clog *c, uint64_t ino)
{
	int64_t n = 0;
	for (size_t i = 0; i < cl->nfopen; i++)
		if (cl->fopen[i].ino == ino && cl->fopen[i].owner != c->owner)
			n += cl->fopen[i].count;
	return n;
}

static int revoke_grant(struct cairn_fs *fs, struct clog *c, uint32_t i);

/* Revokes every live grant of ino but those of client keep (NULL: all). */
void clog_revoke_others(struct cairn_fs *fs, struct clients *cl, struct clog *keep, uint64_t ino)
{
	for (int s = 0; s < CLOG_SLOTS; s++) {
		struct clog *o = cl->slot[s];
		for (uint32_t g = 0; o && o != keep && g < CLOG_GRANTS; g++)
			if (o->grants[g].ino == ino && o->grants[g].live)
				clog_revoke(fs, o, g, o->kind[g] == GRANT_DIR);
	}
}

/* clog_grant with cl->lock held. */
static int grant_locked(cairn_fs *fs, struct clients *cl, struct clog *c, uint64_t ino,
                        uint32_t *index, uint64_t *epoch)
{
	int rc = front_count(cl, c, ino) > 0 || c->forged[0] ? -EBUSY : 0;
	/* One client at a time writes an inode in its log: records of two
	 * logs would be ingested in the order of their slots, not of their
	 * writes.  The grant moves; the one who had it writes through the
	 * daemon, which ingests the new holder's log before each write. */
	if (!rc)
		clog_revoke_others(fs, cl, c, ino);
	int slot = -1;
	for (int i = 0; i < CLOG_GRANTS && !rc && slot < 0; i++)
		if (c->grants[i].ino == ino && c->grants[i].live)
			slot = i;
	if (!rc && slot >= 0) {
		c->refs[slot]++;
	} else if (!rc) {
		slot = clog_free_grant(c);
		if (slot < 0)
			rc = -EBUSY;
		if (!rc)
			rc = clog_grant_write(c, (uint32_t)slot, ino);
		if (!rc) {
			c->kind[slot] = GRANT_FILE;
			c->refs[slot] = 1;
		}
	}
	if (!rc) {
		*index = (uint32_t)slot;
		*epoch = c->grants[slot].epoch;
	}
	return rc;
}

int clog_grant(cairn_fs *fs, struct clog *c, uint64_t ino, uint32_t *index, uint64_t *epoch)
{
	struct clients *cl = clients_table(fs);
	pthread_mutex_lock(&cl->lock);
	int rc = grant_locked(fs, cl, c, ino, index, epoch);
	pthread_mutex_unlock(&cl->lock);
	return rc;
}

/*
 * Revocation without the client's help.  The client checks the live epoch
 * after its record is durable (and a full fence); the daemon stores 0
 * there, fences, and then ingests: whichever comes second sees the other.
 * A record the client saw still granted is therefore ingested here; one
 * it saw revoked it asks about, and writes through the daemon if it was
 * not.  Only once what was ingested is durable, with the progress that
 * says so, does the grant's epoch leave the state file: a record past that
 * progress and without its grant is one the client wrote again.
 */
static int revoke_grant(struct cairn_fs *fs, struct clog *c, uint32_t i)
{
	if (!c->grants[i].live)
		return 0;
	int rc = grant_set(c, i, G_LIVE, 0);
	atomic_thread_fence(memory_order_seq_cst);
	if (!rc)
		rc = clog_ingest_durably(fs, c);
	if (!rc)
		rc = grant_set(c, i, G_EPOCH, 0);
	atomic_fetch_add(&clients_table(fs)->changes, 1);
	return rc;
}

static void ungrant_locked(cairn_fs *fs, struct clog *c, uint32_t index)
{
	if (index < CLOG_GRANTS && c->refs[index] && --c->refs[index] == 0 &&
	    c->kind[index] == GRANT_FILE)
		clog_revoke(fs, c, index, 1);
}

int clog_revoke(struct cairn_fs *fs, struct clog *c, uint32_t i, int forget)
{
	if (c->kind[i] == GRANT_DIR && c->grants[i].live)
		clients_dir_count(clients_table(fs), c->grants[i].ino, -1);
	int rc = revoke_grant(fs, c, i);
	if (!rc && forget) {
		rc = grant_set(c, i, G_INO, 0);
		c->kind[i] = GRANT_FILE;
	}
	return rc;
}

/* One field of grant i, stored but not fenced: for changes of many grants
 * at once, each step fenced once (grants_fence). */
static int grant_put(struct clog *c, uint32_t i, size_t field, uint64_t v)
{
	uint64_t *p = (uint64_t *)((uint8_t *)&c->grants[i] + field);
	*p = v;
	return media_store(c->sm, grant_off(i) + field, p, sizeof(v));
}

static int grants_fence(struct clog *c)
{
	int rc = media_fence(c->sm);
	atomic_thread_fence(memory_order_seq_cst);
	return rc;
}

/* revoke_grant and forgetting, for n grants at once: each step (live,
 * then epoch, then inode) stored for all of them and fenced once. */
int clog_revoke_many(struct cairn_fs *fs, struct clog *c, const uint32_t *idx, int n)
{
	int rc = 0;
	for (int k = 0; k < n && !rc; k++) {
		if (c->kind[idx[k]] == GRANT_DIR && c->grants[idx[k]].live)
			clients_dir_count(clients_table(fs), c->grants[idx[k]].ino, -1);
		rc = grant_put(c, idx[k], G_LIVE, 0);
	}
	if (!rc)
		rc = grants_fence(c);
	if (!rc)
		rc = clog_ingest_durably(fs, c);
	for (int k = 0; k < n && !rc; k++)
		rc = grant_put(c, idx[k], G_EPOCH, 0);
	if (!rc)
		rc = grants_fence(c);
	for (int k = 0; k < n && !rc; k++) {
		rc = grant_put(c, idx[k], G_INO, 0);
		c->kind[idx[k]] = GRANT_FILE;
	}
	if (!rc)
		rc = grants_fence(c);
	atomic_fetch_add(&clients_table(fs)->changes, 1);
	return rc;
}

/* clog_grant_write for n grants at once (inos[k] into slot idx[k]). */
int clog_grant_many(struct clog *c, const uint32_t *idx, const uint64_t *inos, int n)
{
	/* Past the last count, the client writes through the daemon. */
	if (c->next_epoch + (uint64_t)n - 1 > CLOG_EPOCH_COUNT_MAX)
		return -EBUSY;
	int rc = 0;
	for (int k = 0; k < n && !rc; k++)
		rc = grant_put(c, idx[k], G_INO, inos[k]);
	if (!rc)
		rc = grants_fence(c);
	for (int k = 0; k < n && !rc; k++)
		rc = grant_put(c, idx[k], G_EPOCH,
		               clog_epoch_seal(c->log_id, inos[k], c->next_epoch + (uint64_t)k));
	if (!rc)
		rc = grants_fence(c);
	for (int k = 0; k < n && !rc; k++)
		rc = grant_put(c, idx[k], G_LIVE, c->grants[idx[k]].epoch);
	if (!rc)
		rc = grants_fence(c);
	/* Even after a failure: an epoch stored once is never given again. */
	c->next_epoch += (uint64_t)n;
	return rc;
}

int clog_free_grant(const struct clog *c)
{
	for (int i = 0; i < CLOG_GRANTS; i++)
		if (!c->grants[i].ino && !c->refs[i])
			return i;
	return -1;
}

/* Durable before the client may use it: the inode, then the epoch, then
 * (for the client's checks) the live epoch. */
int clog_grant_write(struct clog *c, uint32_t i, uint64_t ino)
{
	return clog_grant_many(c, &i, &ino, 1);
}

void clog_ungrant(cairn_fs *fs, struct clog *c, uint32_t index)
{
	struct clients *cl = clients_table(fs);
	pthread_mutex_lock(&cl->lock);
	ungrant_locked(fs, c, index);
	pthread_mutex_unlock(&cl->lock);
}

/* The entry of (ino, owner), made if make; NULL if there is none (or no
 * memory for it). */
static struct front_open *front_entry(struct clients *cl, uint64_t ino, uint64_t owner, int make)
{
	for (size_t i = 0; i < cl->nfopen; i++)
		if (cl->fopen[i].ino == ino && cl->fopen[i].owner == owner)
			return &cl->fopen[i];
	if (!make)
		return NULL;
	if (cl->nfopen == cl->capfopen) {
		size_t cap = cl->capfopen ? 2 * cl->capfopen : 16;
		struct front_open *n = realloc(cl->fopen, cap * sizeof(*n));
		if (!n)
			return NULL;
		cl->fopen = n;
		cl->capfopen = cap;
	}
	cl->fopen[cl->nfopen] = (struct front_open){ino, owner, 0, 0};
	return &cl->fopen[cl->nfopen++];
}

/* The client whose owner token is owner, with cl->lock held; NULL if it
 * is gone (its grants went with it). */
static struct clog *client_owning(struct clients *cl, uint64_t owner)
{
	for (int s = 0; s < CLOG_SLOTS && owner; s++)
		if (cl->slot[s] && cl->slot[s]->owner == owner)
			return cl->slot[s];
	return NULL;
}

/* The last of an owner's opens of ino lets go of the grant they held.
 * The entry of (ino, owner) if it is still there. */
static struct front_open *front_add(cairn_fs *fs, struct clients *cl, uint64_t ino, uint64_t owner,
                                    struct clog *keep, int delta)
{
	struct front_open *f = front_entry(cl, ino, owner, delta > 0);
	if (f) {
		f->count += delta;
		if (f->count <= 0) {
			uint32_t grant = f->grant;
			*f = cl->fopen[--cl->nfopen];
			f = NULL;
			struct clog *c = grant ? client_owning(cl, owner) : NULL;
			if (c)
				ungrant_locked(fs, c, grant - 1);
		}
	}
	if (delta > 0)
		clog_revoke_others(fs, cl, keep, ino);
	return f;
}

/* An open for writing of ino by client c's own process (f: their entry):
 * its opens of ino hold a grant of it (a new one if the last went), which
 * the client finds in its state file.  Whether a grant was given now. */
static int grant_to_opens(cairn_fs *fs, struct clients *cl, struct clog *c, struct front_open *f,
                          uint64_t ino)
{
	if (!f)
		return 0;
	if (f->grant && c->grants[f->grant - 1].live)
		return 0;
	if (f->grant)
		ungrant_locked(fs, c, f->grant - 1);
	f->grant = 0;
	uint32_t index;
	uint64_t epoch;
	if (grant_locked(fs, cl, c, ino, &index, &epoch))
		return 0;
	f->grant = index + 1;
	return 1;
}

void clients_front_open(cairn_fs *fs, uint64_t ino, int delta)
{
	struct clients *cl = clients_table(fs);
	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	front_add(fs, cl, ino, 0, NULL, delta);
	pthread_mutex_unlock(&cl->lock);
}

/* The process (thread group) that thread tid belongs to, from /proc: FUSE
 * names the calling thread, SO_PEERCRED the process.  -1 if it is gone. */
static int thread_group(int tid)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	FILE *f = fopen(path, "re");
	int tgid = -1;
	while (f && tgid < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) != 1)
			tgid = -1;
	if (f)
		fclose(f);
	return tgid;
}

/* The client that owns the opens of process pid, with cl->lock held. */
static struct clog *owner_of(struct clients *cl, int pid)
{
	for (int s = 0; s < CLOG_SLOTS && pid > 0; s++)
		if (cl->slot[s] && cl->slot[s]->owner_pid == pid)
			return cl->slot[s];
	return NULL;
}

uint64_t clients_front_open_by(cairn_fs *fs, uint64_t ino, int write, int tid, int grantable,
                               int *granted)
{
	struct clients *cl = clients_table(fs);
	*granted = 0;
	if (!cl)
		return 0;
	/* /proc is read only while some client owns its opens, and only for
	 * a thread that is not a process's first. */
	int pid = tid;
	if (write && atomic_load(&cl->owning) > 0) {
		pthread_mutex_lock(&cl->lock);
		int direct = owner_of(cl, tid) != NULL;
		pthread_mutex_unlock(&cl->lock);
		if (!direct)
			pid = thread_group(tid);
	}
	pthread_mutex_lock(&cl->lock);
	struct clog *c = write && atomic_load(&cl->owning) > 0 ? owner_of(cl, pid) : NULL;
	uint64_t owner = c ? c->owner : 0;
	struct front_open *f = front_add(fs, cl, ino, owner, c, 1);
	if (c && grantable)
		*granted = grant_to_opens(fs, cl, c, f, ino);
	pthread_mutex_unlock(&cl->lock);
	return owner;
}

void clients_front_close_by(cairn_fs *fs, uint64_t ino, uint64_t owner)
{
	struct clients *cl = clients_table(fs);
	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	front_add(fs, cl, ino, owner, NULL, -1);
	pthread_mutex_unlock(&cl->lock);
}

void clog_own_opens(cairn_fs *fs, struct clog *c, int pid)
{
	struct clients *cl = clients_table(fs);
	pthread_mutex_lock(&cl->lock);
	if (!c->owner_pid != !pid)
		atomic_fetch_add(&cl->owning, pid ? 1 : -1);
	c->owner_pid = pid;
	pthread_mutex_unlock(&cl->lock);
}

void clients_revoke(cairn_fs *fs, uint64_t ino)
{
	struct clients *cl = clients_table(fs);
	if (!cl || atomic_load(&cl->active) == 0)
		return;
	pthread_mutex_lock(&cl->lock);
	clog_revoke_others(fs, cl, NULL, ino);
	pthread_mutex_unlock(&cl->lock);
}

void clients_kernel_reads(cairn_fs *fs, uint64_t ino)
{
	struct clients *cl = clients_table(fs);
	if (!cl || atomic_load(&cl->active) == 0)
		return;
	pthread_mutex_lock(&cl->lock);
	for (int s = 0; s < CLOG_SLOTS; s++)
		for (uint32_t g = 0; cl->slot[s] && g < CLOG_GRANTS; g++) {
			struct clog *c = cl->slot[s];
			if (c->grants[g].ino != ino || !c->grants[g].live)
				continue;
			/* Not durable: only a live client reads it. */
			c->grants[g].kernel_reads++;
			media_write(c->sm, grant_off(g) + G_KERNEL_READS,
			            &c->grants[g].kernel_reads, sizeof(uint64_t));
		}
	pthread_mutex_unlock(&cl->lock);
	/* Counted before the caller looks at the client logs (the client
	 * stores its record, then looks at the count). */
	atomic_thread_fence(memory_order_seq_cst);
}

int clients_granted(cairn_fs *fs, uint64_t ino)
{
	struct clients *cl = clients_table(fs);
	if (!cl || atomic_load(&cl->active) == 0)
		return 0;
	pthread_mutex_lock(&cl->lock);
	int found = 0;
	for (int s = 0; s < CLOG_SLOTS && !found; s++)
		for (uint32_t g = 0; cl->slot[s] && g < CLOG_GRANTS && !found; g++)
			found = cl->slot[s]->grants[g].ino == ino && cl->slot[s]->grants[g].live;
	pthread_mutex_unlock(&cl->lock);
	return found;
}

uint64_t clients_active(cairn_fs *fs)
{
	struct clients *cl = clients_table(fs);
	return cl ? (uint64_t)atomic_load(&cl->active) : 0;
}

uint64_t clients_changes(cairn_fs *fs)
{
	struct clients *cl = clients_table(fs);
	return cl ? atomic_load(&cl->changes) : 0;
}

static int was_skipped(const struct clog *c, uint64_t seq)
{
	for (int i = 0; i < CLOG_SKIPPED; i++)
		if (c->skipped[i] == seq)
			return 1;
	return 0;
}

int clog_sync(cairn_fs *fs, struct clog *c, uint64_t seq, uint64_t want, uint64_t *credit,
              uint64_t *granted, uint64_t *head_off, uint64_t *head_seq, int *ingested)
{
	struct clients *cl = clients_table(fs);
	pthread_mutex_lock(&cl->lock);
	fs_lock_exclusive(fs);
	/* The client will write over the records it is told are ingested:
	 * their copies (this call's and earlier ingests') must be durable
	 * first, or a crash would find them nowhere. */
	int rc = ingest_committed(fs, c);
	if (!rc)
		publish_head(c);
	pthread_rwlock_unlock(&fs->lock);
	*ingested = seq && seq < c->next_seq && !was_skipped(c, seq);
	if (!rc && want > c->credit)
		give_credit(c, take_credit(fs, want - c->credit));
	*credit = c->credit;
	*granted = c->granted;
	*head_off = c->next_off;
	*head_seq = c->next_seq;
	pthread_mutex_unlock(&cl->lock);
	return rc ? rc : c->forged[0] ? -EPROTO : 0;
}

/* ---- the engine's side ---------------------------------------------------- */

void clients_note_ingested(struct cairn_fs *fs, uint32_t slot, const uint8_t log_id[16],
                           uint64_t seq, uint64_t next_off)
{
	struct clients *cl = clients_table(fs);
	if (!cl || slot >= CLOG_SLOTS || !cl->slot[slot])
		return;
	struct clog *c = cl->slot[slot];
	/* Copies made for an earlier client of the slot are not this one's. */
	if (memcmp(c->log_id, log_id, 16) || seq < c->next_seq)
		return;
	c->next_seq = seq + 1;
	c->next_off = next_off;
}

int clients_persist_progress(struct cairn_fs *fs)
{
	struct clients *cl = clients_table(fs);
	int rc = 0;
	for (int i = 0; cl && i < CLOG_SLOTS && !rc; i++)
		if (cl->slot[i])
			rc = write_progress(cl->slot[i]);
	return rc;
}

/* The progress the state file holds (clog_check_slot found it valid). */
static void read_progress(struct clog *c)
{
	uint64_t gen = 0, seq = 0, off = 0;
	if (clog_read_progress(c->sm, c->log_id, &gen, &seq, &off)) {
		c->progress_gen = gen;
		c->next_seq = seq;
		c->next_off = off;
	}
}

/* Opens what a dead daemon left in slot: 1 with *out, 0 when there is
 * nothing to apply, or -errno with err saying why.  A slot whose files
 * are not whole and whose log may hold writes is refused, its files kept:
 * they go only when `cairn fsck --repair` is asked to drop them. */
static int load_slot(struct cairn_fs *fs, int slot, struct clog **out, char *err, size_t el)
{
	char logp[PATH_LEN], statep[PATH_LEN], why[PATH_LEN + 512];
	slot_paths(fs, slot, logp, statep, sizeof(logp));
	enum media_kind kind = log_kind(fs);
	struct clog_header h;
	switch (clog_check_slot(fs->vol.mf.path[PART_LOG], slot, kind, fs->vol.mf.uuid, &h, NULL,
	                        NULL, why, sizeof(why))) {
	case CLOG_LEFT_NONE:
		if (!fs->read_only)
			unlink(logp); /* made by a start the crash cut short */
		return 0;
	case CLOG_LEFT_UNFINISHED:
		if (!fs->read_only)
			remove_files(fs, slot); /* never written: nothing is lost */
		return 0;
	case CLOG_LEFT_DAMAGED:
		if (fs->read_only) {
			fprintf(stderr,
			        "cairn: warning: client log %d: %s; a read-only mount does not "
			        "show its writes\n",
			        slot, why);
			return 0;
		}
		{
			int remake = clog_header_can_rebuild(fs->vol.mf.path[PART_LOG], slot, kind,
			                                     fs->vol.mf.uuid);
			snprintf(
			    err, el,
			    "client log %d: %s; it may hold acknowledged writes, so the volume "
			    "is not mounted (`cairn fsck --repair` %s)",
			    slot, why,
			    remake ? "makes the header again, losing nothing"
			           : "drops the log and its writes");
			return -EUCLEAN;
		}
	case CLOG_LEFT_USABLE:
		break;
	}
	struct clog *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->slot = slot;
	c->sock = -1;
	c->recovered = 1;
	memcpy(c->log_id, h.log_id, 16);
	why[0] = '\0';
	int rc = media_open(&c->sm, kind, statep, 0, 0, why, sizeof(why));
	if (!rc)
		rc = media_open(&c->lm, kind, logp, 0, 0, why, sizeof(why));
	if (!rc)
		rc = log_open(&c->log, c->lm, c->log_id, why, sizeof(why));
	if (!rc) {
		read_progress(c);
		clog_read_creds(c);
		rc = media_read(c->sm, CLOG_GRANTS_OFF, c->grants, sizeof(c->grants));
	}
	/* The client may outlive its daemon, and still be writing: revoked
	 * before the scan (see revoke_grant), its next write asks the dead
	 * daemon and fails, and every record it saw granted is found. */
	for (uint32_t g = 0; !rc && !fs->read_only && g < CLOG_GRANTS; g++)
		if (c->grants[g].live)
			rc = grant_set(c, g, G_LIVE, 0);
	atomic_thread_fence(memory_order_seq_cst);
	if (rc) {
		snprintf(err, el, "client log %d (%s): %s", slot, statep,
		         why[0] ? why : strerror(-rc));
		clog_free(c);
		return rc;
	}
	*out = c;
	return 1;
}

int clients_load(struct cairn_fs *fs, char *err, size_t errlen)
{
	int rc = table_init(fs);
	struct clients *cl = clients_table(fs);
	for (int i = 0; i < CLOG_SLOTS && !rc; i++) {
		struct clog *c = NULL;
		rc = load_slot(fs, i, &c, err, errlen);
		if (rc == 1) {
			slot_put(cl, i, c);
			rc = 0;
		}
	}
	return rc;
}

int clients_recover(struct cairn_fs *fs, char *err, size_t errlen)
{
	struct clients *cl = clients_table(fs);
	uint64_t applied = 0;
	for (int i = 0; cl && i < CLOG_SLOTS; i++) {
		struct clog *c = cl->slot[i];
		if (!c)
			continue;
		/* Damage past the progress (which replaying the volume's log
		 * moved on) with acknowledged records after it: applying the log
		 * would drop them without a word. */
		char why[700];
		int rc = clog_scan_damage(c->log, c->next_seq, c->next_off, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "client log %d: cannot scan it: %s", i,
			         strerror(-rc));
			return rc;
		}
		if (rc == 1 && !fs->read_only) {
			snprintf(err, errlen,
			         "client log %d: %s: not mounted read-write (a read-only mount "
			         "warns; `cairn fsck --repair` cuts the log there and drops them)",
			         i, why);
			return -EUCLEAN;
		}
		if (rc == 1)
			fprintf(stderr, "cairn: warning: client log %d: %s\n", i, why);
		uint64_t before = fs->stats.ops_logged;
		rc = fs->read_only ? 0 : ingest_locked(fs, c, NULL);
		if (rc) {
			snprintf(err, errlen, "client log %d: cannot apply its records: %s", i,
			         strerror(-rc));
			return rc;
		}
		applied += fs->stats.ops_logged - before;
		if (c->forged[0])
			fprintf(stderr,
			        "cairn: warning: %s; the records after it are not applied\n",
			        c->forged);
		else if (fs->read_only && has_new(c))
			fprintf(stderr,
			        "cairn: warning: client log %d holds writes a read-only mount does "
			        "not show; a read-write mount applies them\n",
			        i);
	}
	(void)applied;
	return 0;
}

void clients_forget_recovered(struct cairn_fs *fs, int remove)
{
	struct clients *cl = clients_table(fs);
	for (int i = 0; cl && i < CLOG_SLOTS; i++) {
		struct clog *c = cl->slot[i];
		if (!c || !c->recovered)
			continue;
		slot_put(cl, i, NULL);
		if (remove && !fs->read_only)
			remove_files(fs, i);
		clog_free(c);
	}
}

void clients_destroy(struct cairn_fs *fs)
{
	struct clients *cl = clients_table(fs);
	if (!cl)
		return;
	for (int i = 0; i < CLOG_SLOTS; i++)
		clog_free(cl->slot[i]); /* a session not ended keeps its files */
	/* A log file made ahead goes (a mount would remove it anyway: a log
	 * without its state file is a start the crash cut short). */
	if (cl->spare_slot >= 0 && cl->spare_ready && !cl->slot[cl->spare_slot] && !fs->read_only) {
		char logp[PATH_LEN], statep[PATH_LEN];
		slot_paths(fs, cl->spare_slot, logp, statep, sizeof(logp));
		unlink(logp);
	}
	pthread_mutex_destroy(&cl->lock);
	free(cl->fopen);
	free(cl->batch);
	free(cl);
	fs->clients = NULL;
}
