/*
 * fsck_repair.c - the fixes fsck knows to be safe, applied through the
 * shared area's metadata cache and made durable by shared_commit (the
 * redo journal), so a crash during a repair leaves either the state
 * before a commit or the state after it.
 *
 * Owns: the repair of one problem at a time, and the repair's commits.
 * May call: shared (inodes, cache, commit), btree (delete on a read-write
 * handle), cache.
 *
 * No fix allocates anything: fixes clear or set bitmap bits, set inode
 * fields, zero freed inodes, and delete tree records (which only frees
 * nodes).  So a block bitmap that is still wrong can never make a repair
 * hand out a block that is in use.  Blocks and inodes a fix leaves
 * unreferenced are reclaimed as leaks by the next round's check.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/cache.h"
#include "fs/extent.h"
#include "fs/format.h"
#include "fsck/fsck_internal.h"
#include "log/clog_check.h"
#include "log/clog_format.h"

#define UNITS_PER_BLOCK ((uint64_t)FS_BLOCK_SIZE * 8)

/* A line of the repairs list: the problem, then what was done. */
static void done_line(struct fsck_list *done, const struct fsck_item *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void done_line(struct fsck_list *done, const struct fsck_item *p, const char *fmt, ...)
{
	char what[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fsck_list_addf(done, p->code, "%s -> %s", p->msg, what);
}

/* ---- commits ---------------------------------------------------------------- */

/* Free units of a bitmap in [first, nunits), from the cache's copy (the
 * one about to be committed).  Informational fields of the checkpoint. */
static uint64_t count_free(struct fsck_ctx *c, uint64_t start, uint64_t nunits, uint64_t first)
{
	uint64_t used = 0;
	for (uint64_t k = 0; k * UNITS_PER_BLOCK < nunits; k++) {
		struct buf *b;
		if (cache_get(c->sh.cache, start + k, &b))
			return 0;
		const uint64_t *w = (const uint64_t *)b->data;
		for (uint64_t u = k * UNITS_PER_BLOCK; u < nunits && u < (k + 1) * UNITS_PER_BLOCK;
		     u++)
			used += u >= first && bit_test(w, u - k * UNITS_PER_BLOCK);
		cache_put(c->sh.cache, b);
	}
	return nunits - first - used;
}

int fsck_commit(struct fsck_ctx *c)
{
	if (!cache_dirty_count(c->sh.cache) && !c->need_commit &&
	    c->orphan_head == c->sh.ckpt.orphan_head)
		return 0;
	const struct fs_super *sb = c->sb;
	/* The same log head: the repair digests nothing, it only corrects. */
	struct fs_checkpoint ck = c->sh.ckpt;
	ck.orphan_head = c->orphan_head;
	/* As a digest counts it: the free data blocks of every tier. */
	ck.free_blocks = count_free(c, sb->bbitmap_start, sb->total_blocks, sb->data_start);
	for (unsigned k = 0; k < sb->tier_count; k++)
		if (shared_tier_live(&c->sh, k + 1))
			ck.free_blocks +=
			    count_free(c, sb->tiers[k].bitmap_start, sb->tiers[k].total_blocks,
			               c->sh.tier[k + 1].first_block);
	ck.free_inodes = count_free(c, sb->ibitmap_start, sb->inode_count, FS_ROOT_INO + 1);
	struct cache_snapshot snap = {0};
	int rc = cache_snapshot_dirty(c->sh.cache, &snap);
	if (!rc)
		rc = shared_commit(&c->sh, &snap, &ck);
	if (!rc)
		cache_snapshot_commit(c->sh.cache, &snap);
	else
		cache_snapshot_restore(c->sh.cache, &snap);
	cache_snapshot_free(&snap);
	if (!rc)
		c->need_commit = 0;
	return rc;
}

/* One fix dirties at most a tree path, an inode block and a few bitmap
 * blocks; commit before the journal could overflow. */
static int maybe_commit(struct fsck_ctx *c)
{
	uint64_t cap = shared_journal_capacity(&c->sh);
	uint64_t limit = cap > 64 ? cap - 32 : cap / 2;
	return cache_dirty_count(c->sh.cache) >= limit ? fsck_commit(c) : 0;
}

/* ---- bitmaps ------------------------------------------------------------------ */

static int bitmap_edit(struct fsck_ctx *c, uint64_t bitmap_start, uint64_t unit, uint64_t n,
                       int set)
{
	while (n) {
		int rc = maybe_commit(c);
		uint64_t k = unit / UNITS_PER_BLOCK, off = unit % UNITS_PER_BLOCK;
		uint64_t m = n < UNITS_PER_BLOCK - off ? n : UNITS_PER_BLOCK - off;
		struct buf *b;
		if (!rc)
			rc = cache_get(c->sh.cache, bitmap_start + k, &b);
		if (rc)
			return rc;
		uint64_t *w = (uint64_t *)b->data;
		for (uint64_t i = off; i < off + m; i++) {
			if (set)
				bit_set(w, i);
			else
				w[i >> 6] &= ~(1ull << (i & 63));
		}
		cache_mark_dirty(c->sh.cache, b);
		cache_put(c->sh.cache, b);
		unit += m;
		n -= m;
	}
	return 0;
}

/* Inode bits, or a run of block bits in the bitmap of the tier p->a names
 * (the capacity tiers' bitmaps are fast-tier metadata like the others, so
 * the same cache and journal carry the fix). */
static int fix_bits(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	const struct fs_super *sb = c->sb;
	int inode = p->code == FC_IBIT_FREE || p->code == FC_IBIT_LEAK;
	int set = p->code == FC_IBIT_FREE || p->code == FC_BLOCK_META_FREE ||
	          p->code == FC_BLOCK_FREE_USED;
	uint64_t start = sb->ibitmap_start, unit = p->a, n = 1;
	if (!inode) {
		unsigned t = FS_PBLK_TIER(p->a);
		if (t > sb->tier_count)
			return -EINVAL;
		start = t ? sb->tiers[t - 1].bitmap_start : sb->bbitmap_start;
		unit = FS_PBLK_BLK(p->a);
		n = p->b;
	}
	int rc = bitmap_edit(c, start, unit, n, set);
	if (!rc)
		done_line(done, p, "marked %s", set ? "in use" : "free");
	return rc;
}

/* ---- inodes ------------------------------------------------------------------ */

/* The inode, if still in use (a fix found by the check may have been made
 * moot by an earlier fix of the same round). */
static int get_live(struct fsck_ctx *c, uint64_t ino, struct iref *r)
{
	int rc = inode_get(&c->sh, ino, r);
	if (rc)
		return rc;
	if (r->i->mode == 0) {
		inode_put(&c->sh, r);
		return -ENOENT;
	}
	return 0;
}

static int fix_field(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	struct iref r;
	int rc = get_live(c, p->a, &r);
	if (rc)
		return rc;
	const char *what = "";
	switch (p->code) {
	case FC_NLINK:
		r.i->nlink = (uint32_t)p->b;
		what = "nlink";
		break;
	case FC_ENTRIES:
		r.i->entries = p->b;
		what = "entries";
		break;
	case FC_BLOCKS:
		r.i->blocks = p->b;
		what = "blocks";
		break;
	case FC_PARENT:
		r.i->parent = p->b;
		what = "parent";
		break;
	case FC_MODE:
	case FC_ROOT:
		r.i->mode = (uint32_t)p->b;
		done_line(done, p, "mode set to 0%o", (unsigned)p->b);
		inode_dirty(&c->sh, &r);
		inode_put(&c->sh, &r);
		return 0;
	}
	inode_dirty(&c->sh, &r);
	inode_put(&c->sh, &r);
	done_line(done, p, "%s set to %llu", what, (unsigned long long)p->b);
	return 0;
}

static int fix_orphan_flag(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	struct iref r;
	int rc = get_live(c, p->a, &r);
	if (rc)
		return rc;
	if (p->b) {
		r.i->flags |= FS_INODE_ORPHAN;
	} else {
		r.i->flags &= ~FS_INODE_ORPHAN;
		r.i->orphan_next = 0;
	}
	inode_dirty(&c->sh, &r);
	inode_put(&c->sh, &r);
	done_line(done, p, "orphan flag %s", p->b ? "set" : "cleared");
	return 0;
}

/* Cuts the list at the bad link.  What followed is freed by a later
 * round as lost orphans (no names, no links), as recovery would. */
static int fix_orphan_list(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	if (p->a == 0) {
		c->orphan_head = 0;
	} else {
		struct iref r;
		int rc = get_live(c, p->a, &r);
		if (rc)
			return rc;
		r.i->orphan_next = 0;
		inode_dirty(&c->sh, &r);
		inode_put(&c->sh, &r);
	}
	done_line(done, p, "list cut there");
	return 0;
}

/* Frees an inode that nothing names and that holds nothing (or that was
 * an unlinked orphan).  Its tree blocks, if any, are leaks afterwards and
 * go back to the bitmap in the next round. */
static int fix_free_inode(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	struct iref r;
	int rc = get_live(c, p->a, &r);
	if (rc)
		return rc;
	uint32_t gen = r.i->generation;
	memset(r.i, 0, sizeof(*r.i));
	r.i->generation = gen; /* a reuse of the number still bumps it */
	inode_dirty(&c->sh, &r);
	inode_put(&c->sh, &r);
	rc = bitmap_edit(c, c->sb->ibitmap_start, p->a, 1, 0);
	if (!rc)
		done_line(done, p, "inode freed");
	return rc;
}

/* Inode 0 is never handed out, and inode_get refuses it: its slot is
 * zeroed in the inode table block directly (through the cache). */
static int fix_inode_zero(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	struct buf *b;
	int rc = cache_get(c->sh.cache, c->sb->itable_start, &b);
	if (rc)
		return rc;
	memset(b->data, 0, FS_INODE_SIZE);
	cache_mark_dirty(c->sh.cache, b);
	cache_put(c->sh.cache, b);
	done_line(done, p, "inode 0 zeroed");
	return 0;
}

/* ---- trees ------------------------------------------------------------------- */

/* Deletes one record by key from a tree rooted in an inode: a directory
 * entry naming a free inode, a malformed one, or an extent outside the
 * data area.  btree_delete never allocates. */
static int fix_delete_record(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	struct iref r;
	int rc = get_live(c, p->a, &r);
	if (rc)
		return rc;
	int ext = p->code == FC_EXTENT_OUTSIDE || p->code == FC_EXTENT_BAD;
	if (ext ? !(S_ISREG(r.i->mode) || S_ISLNK(r.i->mode)) : !S_ISDIR(r.i->mode)) {
		inode_put(&c->sh, &r);
		return -EINVAL;
	}
	struct btree t;
	(void)btree_init(&t, &c->sh.fx, ext ? &fsck_extent_ops : &fsck_dir_ops, &r.i->tree_root,
	                 &r.i->blocks);
	if (ext && (r.i->flags & FS_INODE_INLINE_EXTENT)) {
		/* The extent kept in the inode: it goes the same way. */
		extent_clear_inline(r.i);
		rc = 0;
	} else {
		rc = btree_delete(&t, p->b);
	}
	if (!rc && ext)
		r.i->blocks = r.i->blocks >= p->c ? r.i->blocks - p->c : 0;
	else if (!rc && r.i->entries)
		r.i->entries--;
	inode_dirty(&c->sh, &r);
	inode_put(&c->sh, &r);
	if (!rc)
		done_line(done, p,
		          ext ? "extent removed (those blocks now read as zeros)"
		              : "entry removed");
	return rc;
}

/* A tree whose root node cannot be read loses nothing readable by being
 * emptied.  A directory's former names leave their inodes unreachable:
 * they are reported (and freed only if they hold nothing); a file keeps
 * its size and reads as zeros; the nodes and blocks become leaks. */
static int fix_clear_tree(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	struct iref r;
	int rc = get_live(c, p->a, &r);
	if (rc)
		return rc;
	const char *what;
	if (p->b == TREE_XATTR) {
		r.i->xattr_root = 0;
		what = "extended attributes dropped (they could not be read)";
	} else if (p->b == TREE_DIR && S_ISDIR(r.i->mode)) {
		r.i->tree_root = 0;
		r.i->entries = 0;
		what = "directory emptied (its names could not be read)";
	} else if (p->b == TREE_EXTENT && (S_ISREG(r.i->mode) || S_ISLNK(r.i->mode))) {
		r.i->tree_root = 0;
		what = "block map emptied (its data could not be found; it reads as zeros)";
	} else {
		inode_put(&c->sh, &r);
		return -EINVAL;
	}
	inode_dirty(&c->sh, &r);
	inode_put(&c->sh, &r);
	done_line(done, p, "%s", what);
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------ */

/* ---- the log and the superblocks ---------------------------------------------- */

/* A superblock copy is written once by mkfs and never changes: rewriting
 * it from the valid copy (through the media layer, fenced) is the repair. */
static int fix_super_copy(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done,
                          int rc)
{
	(void)c;
	if (!rc)
		done_line(done, p, "rewritten from the valid copy");
	return rc;
}

/* The loss is accepted explicitly: the log is cut at the damaged record
 * (it and the records found after it are zeroed), so the recovery mount
 * that follows replays and digests the records before it. */
static int fix_lost_records(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	struct log_damage d;
	if (!c->log || !log_damage(c->log, &d) || d.off != p->a)
		return -EAGAIN;
	int rc = log_drop_damaged(c->log);
	if (!rc)
		done_line(done, p,
		          "dropped the damaged record (sequence %llu) and the %llu records after "
		          "it (sequence %llu..%llu, offsets %llu..%llu)",
		          (unsigned long long)d.seq, (unsigned long long)d.lost,
		          (unsigned long long)d.first_seq, (unsigned long long)d.last_seq,
		          (unsigned long long)d.off, (unsigned long long)d.end_off);
	return rc;
}

/* A damaged client log goes: the state file first, as a daemon removes
 * them, so that a log without one is what is left if this is cut short
 * (a mount removes that). */
static int fix_client_log(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	char statep[VOLUME_PATH_MAX + 32], logp[VOLUME_PATH_MAX + 32];
	snprintf(statep, sizeof(statep), CLOG_STATE_NAME, c->vol.mf.path[PART_LOG], (int)p->a);
	snprintf(logp, sizeof(logp), CLOG_LOG_NAME, c->vol.mf.path[PART_LOG], (int)p->a);
	if (p->b) {
		char why[600] = "";
		int rc = clog_header_rebuild(c->vol.mf.path[PART_LOG], (int)p->a,
		                             media_kind(c->vol.part[PART_LOG]), c->vol.mf.uuid, 1,
		                             why, sizeof(why));
		if (rc < 0) {
			fprintf(stderr, "cairn: fsck: client log %d: %s\n", (int)p->a, why);
			return rc;
		}
		if (rc == 1) {
			done_line(done, p,
			          "made the header of %s again; the next mount applies the log",
			          statep);
			return 0;
		}
	}
	if (unlink(statep) && errno != ENOENT)
		return -errno;
	if (unlink(logp) && errno != ENOENT)
		return -errno;
	done_line(done, p, "removed client log %d (%s and its state file); its writes are lost",
	          (int)p->a, logp);
	return 0;
}

static int fix_client_log_lost(struct fsck_ctx *c, const struct fsck_item *p,
                               struct fsck_list *done)
{
	char why[600];
	int rc = clog_drop_damaged(c->vol.mf.path[PART_LOG], (int)p->a,
	                           media_kind(c->vol.part[PART_LOG]), c->vol.mf.uuid, p->b, p->c,
	                           why, sizeof(why));
	if (rc) {
		fprintf(stderr, "cairn: fsck: client log %d: %s\n", (int)p->a, why);
		return rc;
	}
	done_line(done, p,
	          "cut client log %d at the damaged record; the records after it are "
	          "dropped",
	          (int)p->a);
	return 0;
}

int fsck_apply(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done)
{
	int rc = maybe_commit(c);
	if (rc)
		return rc;
	switch (p->code) {
	case FC_IBIT_FREE:
	case FC_IBIT_LEAK:
	case FC_BLOCK_META_FREE:
	case FC_BLOCK_LEAK:
	case FC_BLOCK_FREE_USED:
		return fix_bits(c, p, done);
	case FC_NLINK:
	case FC_ENTRIES:
	case FC_BLOCKS:
	case FC_PARENT:
	case FC_MODE:
	case FC_ROOT:
		return fix_field(c, p, done);
	case FC_ORPHAN_FLAG:
		return fix_orphan_flag(c, p, done);
	case FC_ORPHAN_LIST:
		return fix_orphan_list(c, p, done);
	case FC_UNREACHABLE:
		return p->c ? fsck_link_lost(c, p, done) : fix_free_inode(c, p, done);
	case FC_INODE_RESERVED:
		return fix_inode_zero(c, p, done);
	case FC_DENT_FREE:
	case FC_DENT_BAD:
	case FC_DIR_MULTI:
	case FC_EXTENT_OUTSIDE:
	case FC_EXTENT_BAD:
		return fix_delete_record(c, p, done);
	case FC_TREE:
		if (!p->c)
			return fix_clear_tree(c, p, done);
		return p->b == TREE_DIR ? fsck_salvage_dir(c, p, done)
		                        : fsck_salvage_extents(c, p, done);
	case FC_DENT_KEY:
		return fsck_rekey_entry(c, p, done);
	case FC_DENT_TYPE:
		return fsck_retype_entry(c, p, done);
	case FC_CKPT_SLOT:
		c->need_commit = 1; /* the commit writes the slot not in use */
		done_line(done, p, "slot rewritten by the repair's checkpoint");
		return 0;
	case FC_LOG_SUPER_COPY:
		return fix_super_copy(c, p, done, log_super_repair(c->log));
	case FC_FAST_SUPER_COPY:
		return fix_super_copy(c, p, done, shared_super_repair(&c->sh));
	case FC_LOG_LOST:
		return fix_lost_records(c, p, done);
	case FC_CLIENT_LOG:
		return fix_client_log(c, p, done);
	case FC_CLIENT_LOG_LOST:
		return fix_client_log_lost(c, p, done);
	}
	return -EOPNOTSUPP; /* e.g. an epoch slot: only a mount rewrites it */
}
