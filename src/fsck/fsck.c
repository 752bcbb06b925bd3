/*
 * fsck.c - fsck_run: one check, and with repair, the rounds of fixes and
 * the final check.
 *
 * Owns: the order of the phases and of the repair.
 * May call: the other src/fsck files, and the public API (cairn_mount,
 * cairn_unmount) to recover and digest a volume before repairing it.
 *
 * Repair works on a digested volume only: the shared area must be the
 * whole truth, with no log records still to apply on top of it.  So when
 * the log holds records (or a journal is pending, or an epoch slot is
 * damaged) the volume is first mounted and unmounted, which recovers and
 * digests.  Before that mount, blocks that trees use but the bitmap calls
 * free are marked used, or the digest could hand them out a second time,
 * and a log damaged in the middle is cut at the damage, or the mount would
 * refuse it.
 *
 * Then come rounds: a check opened read-write, every safe fix it found
 * applied through the cache, one journalled commit.  A fix can reveal
 * another problem (a freed inode leaves its blocks leaked; a removed entry
 * changes a link count), so rounds repeat until a check finds nothing to
 * fix.  A last read-only check, exactly what `cairn fsck` alone would do,
 * decides the result.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "fsck/fsck_internal.h"

#define MAX_ROUNDS 8

/* One check.  With keep, the context stays open (read-write) for fixes. */
static int check(const char *volume, const struct fsck_opts *o, int rw, struct fsck_report *r,
                 struct fsck_list *out, struct fsck_ctx *keep)
{
	struct fsck_ctx local, *c = keep ? keep : &local;
	memset(c, 0, sizeof(*c));
	c->volume = volume;
	c->o = o;
	c->rw = rw;
	c->r = r;
	c->out = out;
	c->progress_pct = -1;
	if (fsck_open(c)) {
		fsck_close(c);
		return -1;
	}
	fsck_scan_log(c);
	int rc = fsck_check_inodes(c);
	if (!rc)
		rc = fsck_check_blocks(c);
	fsck_progress_end(c);
	if (rc) {
		snprintf(r->refused, sizeof(r->refused), "fast part %s: the check stopped: %s",
		         c->vol.mf.path[PART_FAST], strerror(-rc));
		fsck_close(c);
		return -1;
	}
	if (!keep)
		fsck_close(c);
	return 0;
}

static int has_code(const struct fsck_list *l, int code)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].code == code)
			return 1;
	return 0;
}

/*
 * A read-write check and the fixes it found, committed.  only: a mask of
 * (1 << code) to apply just those (0 = every fixable error).  Returns the
 * number of fixes made, or -1 when repair must stop (the reason is in the
 * notes).
 */
static int repair_round(const char *volume, const struct fsck_opts *o, struct fsck_report *r,
                        uint64_t only)
{
	struct fsck_report scratch = {0};
	struct fsck_list probs = {0};
	struct fsck_ctx c;
	int made = 0;
	if (check(volume, o, 1, &scratch, &probs, &c)) {
		fsck_note(r, "repair stopped: %s", scratch.refused);
		made = -1;
	} else if (!only && scratch.undigested_records) {
		fsck_note(r, "repair stopped: the log still holds %llu undigested records",
		          (unsigned long long)scratch.undigested_records);
		made = -1;
		fsck_close(&c);
	} else {
		/* Fixes that allocate wait until no unit in use is free in a
		 * bitmap (the allocators read the bitmaps at open), and are
		 * withheld while trees share blocks (an insert could change
		 * two directories at once). */
		c.alloc_safe = !has_code(&probs, FC_IBIT_FREE) &&
		               !has_code(&probs, FC_BLOCK_FREE_USED) &&
		               !has_code(&probs, FC_BLOCK_DUP);
		for (size_t i = 0; i < probs.n; i++) {
			const struct fsck_item *p = &probs.v[i];
			if (!p->fixable || p->severity != FSCK_ERROR ||
			    (only && !(only >> p->code & 1)))
				continue;
			int rc = fsck_apply(&c, p, &r->repairs);
			if (rc == 0)
				made++;
			else if (rc != -ENOENT && rc != -EOPNOTSUPP && rc != -EAGAIN)
				fsck_note(r, "could not repair \"%s\": %s", p->msg, strerror(-rc));
		}
		int rc = fsck_commit(&c);
		if (rc) {
			fsck_note(r, "repair stopped: the commit failed: %s", strerror(-rc));
			made = -1;
		}
		fsck_close(&c);
	}
	fsck_list_free(&probs);
	fsck_report_free(&scratch);
	return made;
}

/* Recovers and digests the log through an ordinary mount. */
static int recover_by_mount(const char *volume, struct fsck_report *r)
{
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = cairn_mount(volume, &mo);
	if (!fs || cairn_unmount(fs)) {
		int e = errno;
		fsck_note(r, "repair stopped: mounting the volume to recover its log failed: %s",
		          cairn_last_error()[0] ? cairn_last_error() : strerror(e));
		return -1;
	}
	fsck_note(r,
	          "the log held %llu undigested records%s: mounted and unmounted the volume to "
	          "recover and digest them before repairing",
	          (unsigned long long)r->undigested_records,
	          r->recovery_pending ? " and a committed journal was pending" : "");
	return 0;
}

/* What must be fixed before a recovery mount: blocks in use but free in
 * the bitmap (the digest would hand them out again) and a broken orphan
 * list (recovery frees everything on it, linked files included).  Both
 * fixes are valid with records still in the log: a checkpoint with the
 * same log head and a truer shared area.  And what refuses the mount
 * itself: records lost past a damaged one, a damaged client log. */
#define BEFORE_MOUNT                                                                               \
	((1ull << FC_BLOCK_FREE_USED) | (1ull << FC_ORPHAN_LIST) | (1ull << FC_LOG_LOST) |         \
	 (1ull << FC_CLIENT_LOG) | (1ull << FC_CLIENT_LOG_LOST))

static void repair(const char *volume, const struct fsck_opts *o, struct fsck_report *r)
{
	/* Each refuses a read-write mount until repaired. */
	int lost = has_code(&r->found, FC_LOG_LOST) || has_code(&r->found, FC_CLIENT_LOG) ||
	           has_code(&r->found, FC_CLIENT_LOG_LOST);
	if (r->undigested_records || r->recovery_pending || has_code(&r->found, FC_EPOCH_SLOT) ||
	    lost) {
		if ((has_code(&r->found, FC_BLOCK_FREE_USED) ||
		     has_code(&r->found, FC_ORPHAN_LIST) || lost) &&
		    repair_round(volume, o, r, BEFORE_MOUNT) < 0)
			return;
		if (recover_by_mount(volume, r))
			return;
	}
	for (int round = 0; round < MAX_ROUNDS; round++)
		if (repair_round(volume, o, r, 0) <= 0)
			return;
}

static void copy_counts(struct fsck_report *to, const struct fsck_report *from)
{
	to->inodes = from->inodes;
	to->directories = from->directories;
	to->files = from->files;
	to->symlinks = from->symlinks;
	to->others = from->others;
	to->orphans = from->orphans;
	to->blocks_in_use = from->blocks_in_use;
	to->tier_count = from->tier_count;
	memcpy(to->tiers, from->tiers, sizeof(to->tiers));
	to->undigested_records = from->undigested_records;
	to->log_head_off = from->log_head_off;
	to->log_end_off = from->log_end_off;
	to->recovery_pending = from->recovery_pending;
}

int fsck_run(const char *volume, const struct fsck_opts *o, struct fsck_report *r)
{
	static const struct fsck_opts defaults;
	memset(r, 0, sizeof(*r));
	if (!o)
		o = &defaults;
	if (!volume || !*volume) {
		snprintf(r->refused, sizeof(r->refused), "no volume given");
		return r->result = FSCK_REFUSED;
	}
	if (check(volume, o, 0, r, &r->found, NULL))
		return r->result = FSCK_REFUSED;
	r->errors = fsck_count(&r->found, FSCK_ERROR);
	r->warnings = fsck_count(&r->found, FSCK_WARNING);
	r->errors_left = r->errors;
	if (!r->errors)
		return r->result = FSCK_CLEAN;
	if (!o->repair)
		return r->result = FSCK_PROBLEMS;
	repair(volume, o, r);
	struct fsck_report fin = {0};
	if (check(volume, o, 0, &fin, &r->remaining, NULL)) {
		fsck_note(r, "the check after repair failed: %s", fin.refused);
		fsck_report_free(&fin);
		return r->result = FSCK_PROBLEMS;
	}
	copy_counts(r, &fin);
	fsck_report_free(&fin);
	r->errors_left = fsck_count(&r->remaining, FSCK_ERROR);
	return r->result = r->errors_left ? FSCK_PROBLEMS : FSCK_REPAIRED;
}
