/*
 * fsck_parts.c - phases 1 and 2 of a check: the manifest and the parts,
 * the log's superblock and epoch slots, the fast tier's superblock,
 * checkpoint slots and journal, each capacity tier's header; then the log,
 * scanned from the checkpoint's head.
 *
 * Owns: opening and closing a volume for fsck.
 * May call: volume, log, shared, media (reads only), util/checksum.
 *
 * The slots are read raw as well as through log_open/shared_open, because
 * those pick the valid slot silently: fsck must say which slot is damaged.
 * A damaged slot is not always damage, though: a crash may tear the write
 * of the slot not in use, and the next mount rewrites it.  That case is a
 * warning.
 *
 * A capacity tier's header is checked by shared_open against the
 * superblock (magic, checksum, UUID, number, size, name); one that is
 * missing, smaller than the volume was made with, or another volume's
 * refuses the check with a reason that names the tier, as a mount does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsck/fsck_internal.h"
#include "libfs/oprec.h"
#include "log/clog_check.h"
#include "log/clog_format.h"
#include "log/log_format.h"
#include "media/media.h"
#include "util/checksum.h"

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* NULL if the self-checksummed slot is valid, else what is wrong. */
static const char *slot_state(const void *p, size_t size, uint64_t magic, uint64_t want_magic)
{
	uint64_t sum;
	memcpy(&sum, (const uint8_t *)p + size - 8, 8);
	if (all_zero(p, size))
		return "never written (all zero)";
	if (magic != want_magic)
		return "bad magic number";
	if (sum != checksum_struct(p, size))
		return "checksum mismatch";
	return NULL;
}

/* ---- log part ------------------------------------------------------------- */

/* One damaged epoch slot beside a valid one.  Unwritten is normal while
 * the epoch is still mkfs's; a torn checksum is what a crash during a
 * mount leaves; anything else was written by something else. */
static void report_epoch_slot(struct fsck_ctx *c, int i, const char *st, uint64_t cur)
{
	const char *path = c->vol.mf.path[PART_LOG];
	int unused = !strncmp(st, "never", 5) && cur == 1;
	if (unused)
		return;
	struct fsck_item *it =
	    fsck_problem(c, FC_EPOCH_SLOT, "log part %s: offset %u: epoch slot %c: %s", path,
	                 (1 + i) * LOG_BLOCK, 'A' + i, st);
	it->fixable = 1; /* a mount writes its new epoch into the slot not in use */
	if (!strcmp(st, "checksum mismatch")) {
		it->severity = FSCK_WARNING;
		snprintf(it->msg + strlen(it->msg), sizeof(it->msg) - strlen(it->msg),
		         " (a torn write of the slot not in use: the next mount rewrites it)");
	}
}

static void check_epoch_slots(struct fsck_ctx *c)
{
	struct media *m = c->vol.part[PART_LOG];
	struct log_epoch e[2];
	const char *st[2];
	uint64_t cur = 0;
	for (int i = 0; i < 2; i++) {
		if (media_read(m, (uint64_t)(1 + i) * LOG_BLOCK, &e[i], sizeof(e[i]))) {
			st[i] = "cannot be read";
			continue;
		}
		st[i] = slot_state(&e[i], sizeof(e[i]), e[i].magic, LOG_EPOCH_MAGIC);
		if (!st[i] && e[i].epoch > cur)
			cur = e[i].epoch;
	}
	if (st[0] && st[1])
		return; /* log_open refuses the part and says so */
	for (int i = 0; i < 2; i++)
		if (st[i])
			report_epoch_slot(c, i, st[i], cur);
}

static void open_log(struct fsck_ctx *c)
{
	char err[1024] = "";
	int rc = log_open(&c->log, c->vol.part[PART_LOG], c->vol.mf.uuid, err, sizeof(err));
	if (rc) {
		c->log = NULL;
		/* The shared area can still be checked; only the log scan is lost. */
		fsck_problem(c, FC_LOG_SUPER, "%s", err[0] ? err : strerror(-rc));
		return;
	}
	uint64_t off;
	const char *why;
	if (log_super_damaged(c->log, &off, &why)) {
		struct fsck_item *it = fsck_problem(
		    c, FC_LOG_SUPER_COPY, "log part %s: offset %llu: superblock copy: %s",
		    c->vol.mf.path[PART_LOG], (unsigned long long)off, why);
		it->fixable = 1; /* from the other copy, which the manifest confirms */
	}
	check_epoch_slots(c);
}

/* ---- fast part ------------------------------------------------------------ */

struct raw_slots {
	struct fs_checkpoint ck[2];
	const char *st[2];
	uint64_t cur_seq; /* of the valid slot with the higher number */
};

static void read_ckpt_slots(struct fsck_ctx *c, struct raw_slots *rs)
{
	struct media *m = c->vol.part[PART_FAST];
	rs->cur_seq = 0;
	for (int i = 0; i < 2; i++) {
		if (media_read(m, (uint64_t)(1 + i) * FS_BLOCK_SIZE, &rs->ck[i],
		               sizeof(rs->ck[i]))) {
			rs->st[i] = "cannot be read";
			continue;
		}
		rs->st[i] =
		    slot_state(&rs->ck[i], sizeof(rs->ck[i]), rs->ck[i].magic, FS_CKPT_MAGIC);
		if (!rs->st[i] && rs->ck[i].seq > rs->cur_seq)
			rs->cur_seq = rs->ck[i].seq;
	}
}

/* A slot is unused while checkpoint 1 (mkfs's) is the only one; a torn
 * slot beside a newer committed journal is what a crash during a
 * checkpoint leaves, and the mount completes it. */
static void report_ckpt_slots(struct fsck_ctx *c, const struct raw_slots *rs, int pending)
{
	for (int i = 0; i < 2; i++) {
		const char *st = rs->st[i];
		if (!st || (!strncmp(st, "never", 5) && rs->cur_seq == 1 && !pending))
			continue;
		struct fsck_item *it =
		    fsck_problem(c, FC_CKPT_SLOT, "fast part %s: offset %u: checkpoint slot %c: %s",
		                 c->vol.mf.path[PART_FAST], (1 + i) * FS_BLOCK_SIZE, 'A' + i, st);
		it->fixable = 1; /* any commit writes the slot not in use */
		if (pending) {
			it->severity = FSCK_WARNING;
			snprintf(it->msg + strlen(it->msg), sizeof(it->msg) - strlen(it->msg),
			         " (a torn checkpoint: the committed journal completes it)");
		}
	}
}

/* The capacity tiers shared_open accepted: what each is, and a part that
 * grew (a block device made larger) holding blocks the volume never uses. */
static void note_tiers(struct fsck_ctx *c)
{
	if (shared_fast_pending(&c->sh))
		fsck_note(c->r,
		          "fast part %s: %llu blocks of its %llu bytes in use: a `cairn tier grow` "
		          "cut short, which the next read-write mount finishes",
		          c->vol.mf.path[PART_FAST], (unsigned long long)c->sh.sb.total_blocks,
		          (unsigned long long)media_size(c->sh.m));
	else if (c->sh.sb.fast_laid_blocks)
		fsck_note(c->r, "fast part %s: grown from %llu blocks to %llu",
		          c->vol.mf.path[PART_FAST], (unsigned long long)c->sh.sb.fast_laid_blocks,
		          (unsigned long long)c->sh.sb.total_blocks);
	for (unsigned t = 1; t < c->sh.ntiers; t++) {
		const struct tier *x = &c->sh.tier[t];
		if (x->retired) {
			fsck_note(c->r, "tier %s: capacity tier %u of %u, removed", x->name, t,
			          c->sh.ntiers - 1);
			continue;
		}
		uint64_t bytes = media_size(x->m), used = x->total_blocks * FS_BLOCK_SIZE;
		char extra[96] = "";
		if (bytes > used)
			snprintf(extra, sizeof(extra), "; the %llu bytes past them are unused",
			         (unsigned long long)(bytes - used));
		fsck_note(c->r,
		          "tier %s part %s: capacity tier %u of %u, header valid, %llu blocks%s",
		          x->name, media_path(x->m), t, c->sh.ntiers - 1,
		          (unsigned long long)x->total_blocks, extra);
	}
}

static int open_shared(struct fsck_ctx *c)
{
	struct raw_slots rs;
	read_ckpt_slots(c, &rs);
	char err[1024] = "";
	/* Read-only, a committed journal is applied in the cache only: the
	 * check sees the volume as the next mount will. */
	int rc = shared_open(&c->sh, c->vol.part[PART_FAST], c->vol.part + PART_TIER1,
	                     c->vol.mf.ntiers, c->vol.mf.uuid, !c->rw, err, sizeof(err));
	if (rc) {
		snprintf(c->r->refused, sizeof(c->r->refused), "%s", err[0] ? err : strerror(-rc));
		return -1;
	}
	c->sh_open = 1;
	c->sb = &c->sh.sb;
	uint64_t off;
	const char *why;
	if (shared_super_damaged(&c->sh, &off, &why)) {
		struct fsck_item *it = fsck_problem(
		    c, FC_FAST_SUPER_COPY, "fast part %s: offset %llu: superblock copy: %s",
		    c->vol.mf.path[PART_FAST], (unsigned long long)off, why);
		it->fixable = 1; /* from the other copy, which the manifest confirms */
	}
	c->orphan_head = c->sh.ckpt.orphan_head;
	int pending = c->sh.ckpt.seq > rs.cur_seq;
	c->r->recovery_pending = pending && !c->rw;
	if (pending)
		fsck_note(
		    c->r,
		    "fast part %s: a committed journal (checkpoint %llu) is newer than the current "
		    "slot (checkpoint %llu): %s",
		    c->vol.mf.path[PART_FAST], (unsigned long long)c->sh.ckpt.seq,
		    (unsigned long long)rs.cur_seq,
		    c->rw ? "completed it"
		          : "recovery is pending (the next mount completes it; checked as it will "
		            "be)");
	if (!c->rw || !pending)
		report_ckpt_slots(c, &rs, pending);
	note_tiers(c);
	return 0;
}

int fsck_open(struct fsck_ctx *c)
{
	char err[1024] = "";
	/* Exclusive: a volume being checked must not be mounted meanwhile. */
	int rc = volume_open(&c->vol, c->volume, 0, 1, err, sizeof(err));
	if (rc) {
		snprintf(c->r->refused, sizeof(c->r->refused), "%s", err[0] ? err : strerror(-rc));
		c->refused = 1;
		return -1;
	}
	c->vol_open = 1;
	open_log(c);
	if (open_shared(c)) {
		c->refused = 1;
		return -1;
	}
	return 0;
}

/* ---- phase 2: the log ----------------------------------------------------- */

struct log_scan {
	struct fsck_ctx *c;
	uint64_t n;
};

/* A client record's copy: the client log's progress it records. */
static void note_copy(struct fsck_ctx *c, const struct log_rec_hdr *h, const void *payload)
{
	if (h->type != OP_CWRITE && h->type != OP_CTRUNCATE && h->type != OP_CMKNOD &&
	    h->type != OP_CUNLINK)
		return;
	if (h->len < sizeof(struct op_cwrite))
		return;
	const struct op_cwrite *cw = payload;
	if (cw->slot >= CLOG_SLOTS)
		return;
	struct clog_copied *p = &c->copied[cw->slot];
	if (memcmp(p->log_id, cw->log_id, 16) || cw->seq + 1 > p->seq) {
		memcpy(p->log_id, cw->log_id, 16);
		p->seq = cw->seq + 1;
		p->off = cw->next_off;
	}
}

/* Counts a record, and notes the inode an undigested write names. */
static int count_record(void *arg, const struct log_rec_hdr *h, const void *payload, uint64_t off)
{
	struct log_scan *ls = arg;
	struct fsck_ctx *c = ls->c;
	ls->n++;
	note_copy(c, h, payload);
	if (h->type != OP_WRITE && h->type != OP_CWRITE)
		return 0;
	if (c->nwritten && c->written[c->nwritten - 1] == h->args[0])
		return 0; /* the common run of writes to one file */
	if (c->nwritten == c->capwritten) {
		size_t cap = c->capwritten ? 2 * c->capwritten : 64;
		uint64_t *w = realloc(c->written, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		c->written = w;
		c->capwritten = cap;
	}
	c->written[c->nwritten++] = h->args[0];
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int fsck_written_by_log(const struct fsck_ctx *c, uint64_t ino)
{
	return c->nwritten && bsearch(&ino, c->written, c->nwritten, sizeof(ino), cmp_u64);
}

/* Valid records past a damaged one that had been durable: a mount refuses
 * the volume read-write until repair drops them. */
static void report_lost_records(struct fsck_ctx *c)
{
	struct log_damage d;
	if (!log_damage(c->log, &d))
		return;
	char what[1024];
	log_damage_describe(c->log, what, sizeof(what));
	struct fsck_item *it = fsck_problem(c, FC_LOG_LOST,
	                                    "%s (a mount refuses it read-write; repair cuts the "
	                                    "log at the damage and drops them)",
	                                    what);
	it->fixable = 1;
	it->a = d.off;
	it->b = d.seq;
	it->c = d.lost;
}

/* A whole client log: scanned from its progress, as the mount's replay of
 * the volume's log moves it on (its copies there), for damage that would
 * drop acknowledged records. */
static void judge_usable(struct fsck_ctx *c, const char *path, int i, enum media_kind kind,
                         const struct clog_header *h, uint64_t seq, uint64_t off)
{
	if (!memcmp(c->copied[i].log_id, h->log_id, 16) && c->copied[i].seq > seq) {
		seq = c->copied[i].seq;
		off = c->copied[i].off;
	}
	char why[VOLUME_PATH_MAX + 600];
	int rc = clog_find_damage(path, i, kind, c->vol.mf.uuid, seq, off, why, sizeof(why));
	if (rc == 1) {
		struct fsck_item *it = fsck_problem(
		    c, FC_CLIENT_LOG_LOST,
		    "client log %d: %s (a mount refuses it read-write; repair cuts the log at the "
		    "damage and drops them)",
		    i, why);
		it->fixable = 1;
		it->a = (uint64_t)i;
		it->b = seq;
		it->c = off;
		return;
	}
	if (rc < 0)
		fsck_note(c->r, "client log %d: cannot scan it: %s", i, strerror(-rc));
	fsck_note(c->r,
	          "client log %d: left by a daemon that did not end its client's session; the "
	          "next read-write mount applies what it holds",
	          i);
}

/* Client logs a daemon left (docs/FORMAT.md, "Client logs"), judged as a
 * mount judges them (log/clog_check.h).  What a whole one holds is not
 * the shared area's yet, and fsck does not read it. */
static void judge_client_logs(struct fsck_ctx *c, const char *path)
{
	enum media_kind kind = media_kind(c->vol.part[PART_LOG]);
	for (int i = 0; i < CLOG_SLOTS; i++) {
		char why[VOLUME_PATH_MAX + 600];
		struct clog_header h;
		uint64_t seq, off;
		switch (clog_check_slot(path, i, kind, c->vol.mf.uuid, &h, &seq, &off, why,
		                        sizeof(why))) {
		case CLOG_LEFT_NONE:
			break;
		case CLOG_LEFT_USABLE:
			judge_usable(c, path, i, kind, &h, seq, off);
			break;
		case CLOG_LEFT_UNFINISHED:
			fsck_note(c->r,
			          "client log %d: %s, and nothing was ever written in it: the next "
			          "read-write mount removes it",
			          i, why);
			break;
		case CLOG_LEFT_DAMAGED: {
			int remake = clog_header_can_rebuild(path, i, kind, c->vol.mf.uuid);
			struct fsck_item *it = fsck_problem(
			    c, FC_CLIENT_LOG,
			    "client log %d: %s; it may hold acknowledged writes (a mount refuses "
			    "the volume read-write; %s)",
			    i, why,
			    remake ? "repair makes the header again from its progress copy, its "
			             "log and its grants, and nothing is lost"
			           : "repair removes the log, and its writes are lost");
			it->fixable = 1;
			it->a = (uint64_t)i;
			it->b = (uint64_t)remake;
			break;
		}
		}
	}
}

void fsck_scan_log(struct fsck_ctx *c)
{
	c->r->log_head_off = c->sh.ckpt.log_head_off;
	if (!c->log)
		return;
	struct log_scan ls = {c, 0};
	/* read_only: no new epoch is written, nothing is applied. */
	int rc = log_recover(c->log, c->sh.ckpt.log_head_off, c->sh.ckpt.log_head_seq, count_record,
	                     &ls, 1);
	uint64_t n = ls.n;
	if (c->nwritten)
		qsort(c->written, c->nwritten, sizeof(*c->written), cmp_u64);
	if (rc) {
		fsck_problem(
		    c, FC_LOG_HEAD,
		    "fast part %s: offset %u: checkpoint slot %c names the log head at offset "
		    "%llu, which is not a record boundary inside the log's ring (%s)",
		    c->vol.mf.path[PART_FAST], (1 + c->sh.ckpt_slot) * FS_BLOCK_SIZE,
		    'A' + c->sh.ckpt_slot, (unsigned long long)c->sh.ckpt.log_head_off,
		    strerror(-rc));
		return;
	}
	c->r->undigested_records = n;
	c->r->log_end_off = log_tail_off(c->log);
	const char *path = c->vol.mf.path[PART_LOG];
	report_lost_records(c);
	if (n == 0)
		fsck_note(c->r, "log part %s: empty (everything is digested); head at offset %llu",
		          path, (unsigned long long)c->r->log_head_off);
	else
		fsck_note(
		    c->r,
		    "log part %s: %llu undigested records (sequence %llu..%llu) from offset %llu; "
		    "the valid log ends at offset %llu: the next mount replays them",
		    path, (unsigned long long)n, (unsigned long long)c->sh.ckpt.log_head_seq,
		    (unsigned long long)(log_tail_seq(c->log) - 1),
		    (unsigned long long)c->r->log_head_off, (unsigned long long)c->r->log_end_off);
	judge_client_logs(c, path);
}

void fsck_close(struct fsck_ctx *c)
{
	free(c->written);
	c->written = NULL;
	c->nwritten = c->capwritten = 0;
	free(c->ibits);
	free(c->bbits);
	free(c->claimed);
	free(c->dup);
	free(c->ii);
	free(c->dv);
	c->ibits = c->bbits = c->claimed = c->dup = NULL;
	c->ii = NULL;
	c->dv = NULL;
	if (c->sh_open)
		shared_close(&c->sh);
	c->sh_open = 0;
	if (c->log)
		log_close(c->log);
	c->log = NULL;
	if (c->vol_open)
		volume_close(&c->vol);
	c->vol_open = 0;
}
