/*
 * shared.c - superblock, checkpoint slots, redo journal and inode table of
 * the shared area.
 *
 * Owns: struct shared; the fast-tier blocks 0..data_start (superblock,
 * slots, journal, bitmaps via alloc, inode table via cache); block 0 of
 * each capacity tier (its header); which tier a data block is read from or
 * written to.
 * May call: media, cache, alloc, util/checksum.
 */
#include "fs/shared.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/alloc.h"
#include "media/media.h"
#include "util/progress.h"
#include "util/checksum.h"

#define B FS_BLOCK_SIZE

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* ---- layout and format ------------------------------------------------- */

/* Blocks of capacity tier k that mkfs laid its regions out for: its size,
 * unless it was added later (none) or grew (laid_blocks). */
static uint64_t laid(const struct fs_super *sb, unsigned k)
{
	if (sb->laid_blocks[k])
		return sb->laid_blocks[k];
	return sb->tiers[k].flags & FS_TIER_ADDED ? 0 : sb->tiers[k].total_blocks;
}

static int layout(struct fs_super *sb, uint64_t total_blocks, uint64_t inodes)
{
	sb->total_blocks = total_blocks;
	uint64_t j = total_blocks / 16;
	sb->journal_blocks = j < 64 ? 64 : j > 32768 ? 32768 : j;
	if (!inodes)
		inodes = total_blocks; /* one per 4 KiB */
	if (inodes < 64)
		inodes = 64;
	sb->inode_count = div_up(inodes, FS_INODES_PER_BLOCK) * FS_INODES_PER_BLOCK;
	sb->journal_start = 3;
	sb->ibitmap_start = sb->journal_start + sb->journal_blocks;
	sb->ibitmap_blocks = div_up(sb->inode_count, 8 * B);
	sb->itable_start = sb->ibitmap_start + sb->ibitmap_blocks;
	sb->itable_blocks = sb->inode_count / FS_INODES_PER_BLOCK;
	sb->bbitmap_start = sb->itable_start + sb->itable_blocks;
	sb->bbitmap_blocks = div_up(total_blocks, 8 * B);
	uint64_t next = sb->bbitmap_start + sb->bbitmap_blocks;
	if (sb->tier_count > FS_MAX_TIERS)
		return -EINVAL;
	/* A tier added later keeps the places it was given (FS_TIER_ADDED);
	 * one that grew keeps the room mkfs laid out for it (laid_blocks). */
	for (unsigned k = 0; k < sb->tier_count; k++) {
		struct fs_tier_desc *t = &sb->tiers[k];
		uint64_t n = laid(sb, k);
		if (!(t->flags & FS_TIER_ADDED))
			t->bitmap_start = next;
		if (!(t->flags & FS_TIER_ADDED))
			t->bitmap_blocks = div_up(n, 8 * B);
		next += div_up(n, 8 * B);
	}
	sb->sums_start = next;
	sb->sums_blocks = div_up(total_blocks, FS_SUMS_PER_BLOCK);
	next += sb->sums_blocks;
	for (unsigned k = 0; k < sb->tier_count; k++) {
		struct fs_tier_desc *t = &sb->tiers[k];
		uint64_t n = laid(sb, k);
		if (!(t->flags & FS_TIER_ADDED))
			t->sums_start = next;
		if (!(t->flags & FS_TIER_ADDED))
			t->sums_blocks = div_up(n, FS_SUMS_PER_BLOCK);
		next += div_up(n, FS_SUMS_PER_BLOCK);
	}
	sb->data_start = next;
	/* Leave room for at least a few hundred blocks of data and trees. */
	return sb->data_start + 256 <= total_blocks ? 0 : -ENOSPC;
}

static void seal_checkpoint(struct fs_checkpoint *ck)
{
	ck->magic = FS_CKPT_MAGIC;
	ck->checksum = checksum_struct(ck, sizeof(*ck));
}

static int write_slot(struct media *m, int slot, const struct fs_checkpoint *ck)
{
	int rc = media_store(m, (uint64_t)(1 + slot) * B, ck, sizeof(*ck));
	return rc ? rc : media_fence(m);
}

/* Writes every dirty cached block home, directly (mkfs only: nothing to
 * protect yet). */
static int write_snapshot_home(struct media *m, const struct cache_snapshot *snap)
{
	for (size_t i = 0; i < snap->count; i++) {
		int rc = media_store(m, snap->blknos[i] * B, snap->images + i * B, B);
		if (rc)
			return rc;
	}
	return 0;
}

static int format_root(struct cache *c, const struct fs_super *sb, uint64_t now_ns)
{
	struct buf *b;
	uint64_t blk = sb->itable_start + FS_ROOT_INO / FS_INODES_PER_BLOCK;
	int rc = cache_get(c, blk, &b);
	if (rc)
		return rc;
	struct fs_inode *root = (struct fs_inode *)b->data + FS_ROOT_INO % FS_INODES_PER_BLOCK;
	memset(root, 0, sizeof(*root));
	root->mode = S_IFDIR | 0755;
	root->nlink = 2;
	root->atime_ns = root->mtime_ns = root->ctime_ns = (int64_t)now_ns;
	root->parent = FS_ROOT_INO;
	root->generation = 1;
	cache_mark_dirty(c, b);
	cache_put(c, b);
	return 0;
}

/* Zeroed in steps of this many blocks (64 MiB), each told to the progress
 * handler: the metadata of a large fast tier (its inode table, checksum
 * and bitmap regions) takes seconds on a disk. */
#define ZERO_STEP 16384

static int zero_region(struct media *m, uint64_t start, uint64_t blocks)
{
	int rc = 0;
	for (uint64_t done = 0; done < blocks && !rc;) {
		uint64_t n = blocks - done < ZERO_STEP ? blocks - done : ZERO_STEP;
		rc = media_zero(m, (start + done) * B, n * B);
		done += n;
		progress_note("zeroing the fast tier's metadata", done * B, blocks * B);
	}
	if (!rc)
		media_flush(m, start * B, blocks * B);
	return rc;
}

static int format_metadata(struct media *m, const struct fs_super *sb, uint64_t now_ns)
{
	struct cache *c;
	int rc = cache_create(&c, m, 0);
	if (rc)
		return rc;
	rc = alloc_format(c, sb->ibitmap_start, sb->ibitmap_blocks, sb->inode_count,
	                  FS_ROOT_INO + 1);
	if (!rc)
		rc = alloc_format(c, sb->bbitmap_start, sb->bbitmap_blocks, sb->total_blocks,
		                  sb->data_start);
	for (unsigned k = 0; k < sb->tier_count && !rc; k++) /* block 0 is the header */
		rc = alloc_format(c, sb->tiers[k].bitmap_start, sb->tiers[k].bitmap_blocks,
		                  sb->tiers[k].total_blocks, 1);
	if (!rc)
		rc = format_root(c, sb, now_ns);
	struct cache_snapshot snap = {0};
	if (!rc)
		rc = cache_snapshot_dirty(c, &snap);
	if (!rc)
		rc = write_snapshot_home(m, &snap);
	cache_snapshot_free(&snap);
	cache_destroy(c);
	return rc;
}

static void shared_tier_header_fill(struct fs_tier_header *h, const struct fs_super *sb,
                                    unsigned tier)
{
	const struct fs_tier_desc *d = &sb->tiers[tier - 1];
	memset(h, 0, sizeof(*h));
	h->magic = FS_TIER_MAGIC;
	h->version = FS_FORMAT_VERSION;
	h->block_size = B;
	memcpy(h->uuid, sb->uuid, 16);
	h->tier = tier;
	h->unit_blocks = d->unit_blocks;
	h->total_blocks = d->total_blocks;
	memcpy(h->name, d->name, sizeof(h->name));
	h->created_ns = sb->created_ns;
	h->checksum = checksum_struct(h, sizeof(*h));
}

int shared_tier_header_write(const struct fs_super *sb, unsigned tier, struct media *m)
{
	struct fs_tier_header *h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	shared_tier_header_fill(h, sb, tier);
	int rc = media_store(m, 0, h, sizeof(*h));
	free(h);
	return rc ? rc : media_fence(m);
}

static int format_tier_headers(const struct fs_super *sb, const struct tier_spec *cap)
{
	int rc = 0;
	for (unsigned k = 0; k < sb->tier_count && !rc; k++)
		rc = shared_tier_header_write(sb, k + 1, cap[k].m);
	return rc;
}

static int describe_tiers(struct fs_super *sb, const struct tier_spec *cap, unsigned ncap,
                          char *err, size_t errlen)
{
	if (ncap > FS_MAX_TIERS) {
		snprintf(err, errlen, "%u capacity tiers: at most %u are supported", ncap,
		         FS_MAX_TIERS);
		return -EINVAL;
	}
	sb->tier_count = ncap;
	for (unsigned k = 0; k < ncap; k++) {
		struct fs_tier_desc *d = &sb->tiers[k];
		uint64_t size = cap[k].size ? cap[k].size : media_size(cap[k].m);
		d->total_blocks = (size < media_size(cap[k].m) ? size : media_size(cap[k].m)) / B;
		d->unit_blocks = cap[k].unit_blocks ? cap[k].unit_blocks : 1;
		snprintf(d->name, sizeof(d->name), "%s", cap[k].name);
		if (d->total_blocks < 2 || d->total_blocks > FS_PBLK_MASK) {
			snprintf(err, errlen, "tier %s part %s: %llu bytes is not a usable size",
			         d->name, media_path(cap[k].m),
			         (unsigned long long)media_size(cap[k].m));
			return -EINVAL;
		}
	}
	return 0;
}

int shared_format(struct media *m, const struct tier_spec *cap, unsigned ncap,
                  const uint8_t uuid[16], uint64_t inodes, uint64_t log_head_off, uint64_t now_ns,
                  char *err, size_t errlen)
{
	struct fs_super *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return -ENOMEM;
	int rc = describe_tiers(sb, cap, ncap, err, errlen);
	if (rc) {
		free(sb);
		return rc;
	}
	rc = media_size(m) < 2 * B ? -ENOSPC : layout(sb, FS_BACKUP_BLOCK(media_size(m)), inodes);
	if (rc) {
		snprintf(err, errlen, "fast part %s: %llu bytes is too small for %llu inodes",
		         media_path(m), (unsigned long long)media_size(m),
		         (unsigned long long)sb->inode_count);
		free(sb);
		return rc;
	}
	sb->magic = FS_SUPER_MAGIC;
	sb->version = FS_FORMAT_VERSION;
	sb->block_size = B;
	memcpy(sb->uuid, uuid, 16);
	sb->created_ns = now_ns;
	sb->checksum = checksum_struct(sb, sizeof(*sb));
	/* Metadata regions must read as zeros whatever the file held. */
	rc = zero_region(m, 1, sb->data_start - 1);
	if (!rc)
		rc = format_metadata(m, sb, now_ns);
	if (!rc)
		rc = format_tier_headers(sb, cap);
	if (!rc)
		rc = media_store(m, 0, sb, sizeof(*sb));
	if (!rc)
		rc = media_store(m, FS_BACKUP_BLOCK(media_size(m)) * B, sb, sizeof(*sb));
	if (!rc)
		rc = media_fence(m);
	struct fs_checkpoint ck = {0};
	ck.seq = 1;
	ck.log_head_off = log_head_off;
	ck.log_head_seq = 1;
	ck.free_blocks = sb->total_blocks - sb->data_start;
	ck.free_inodes = sb->inode_count - (FS_ROOT_INO + 1);
	ck.directories = 1;
	seal_checkpoint(&ck);
	if (!rc)
		rc = write_slot(m, 0, &ck);
	if (rc)
		snprintf(err, errlen, "fast part %s: cannot write: %s", media_path(m),
		         strerror(-rc));
	free(sb);
	return rc;
}

/* ---- mount ------------------------------------------------------------- */

/* Whether [start, start + n) lies in the fast tier's data area. */
static int in_data_area(const struct fs_super *sb, uint64_t start, uint64_t n)
{
	return start >= sb->data_start && start <= sb->total_blocks &&
	       n <= sb->total_blocks - start;
}

/* The descriptors layout() does not place: those of tiers added later,
 * whose regions must lie in the data area and have the sizes their tier
 * needs (zero once retired), and every unused one all zero. */
static int added_tiers_ok(const struct fs_super *sb)
{
	static const struct fs_tier_desc zero;
	for (unsigned k = 0; k < FS_MAX_TIERS; k++) {
		const struct fs_tier_desc *d = &sb->tiers[k];
		if (k >= sb->tier_count) {
			if (memcmp(d, &zero, sizeof(zero)) || sb->laid_blocks[k])
				return 0;
			continue;
		}
		if (sb->laid_blocks[k] && !(d->flags & FS_TIER_ADDED))
			return 0;
		if (d->flags & ~FS_TIER_FLAGS)
			return 0;
		if (!(d->flags & FS_TIER_ADDED))
			continue;
		if (d->flags & FS_TIER_RETIRED) {
			if (d->bitmap_start || d->bitmap_blocks || d->sums_start || d->sums_blocks)
				return 0;
			continue;
		}
		if (d->bitmap_blocks != div_up(d->total_blocks, 8 * B) ||
		    d->sums_blocks != div_up(d->total_blocks, FS_SUMS_PER_BLOCK) ||
		    !in_data_area(sb, d->bitmap_start, d->bitmap_blocks) ||
		    !in_data_area(sb, d->sums_start, d->sums_blocks) ||
		    (d->bitmap_start < d->sums_start + d->sums_blocks &&
		     d->sums_start < d->bitmap_start + d->bitmap_blocks))
			return 0;
	}
	return 1;
}

/* A fast tier that grew: its bitmap and checksum table, of the sizes its
 * blocks need, in its data area and apart. */
static int fast_moved_ok(const struct fs_super *sb)
{
	return sb->bbitmap_blocks == div_up(sb->total_blocks, 8 * B) &&
	       sb->sums_blocks == div_up(sb->total_blocks, FS_SUMS_PER_BLOCK) &&
	       in_data_area(sb, sb->bbitmap_start, sb->bbitmap_blocks) &&
	       in_data_area(sb, sb->sums_start, sb->sums_blocks) &&
	       (sb->bbitmap_start >= sb->sums_start + sb->sums_blocks ||
	        sb->sums_start >= sb->bbitmap_start + sb->bbitmap_blocks);
}

/* What is wrong with one copy of the superblock, or NULL.  The manifest is
 * the third witness: the UUID and the size must be the ones it records. */
static const char *check_super(const struct fs_super *sb, const uint8_t uuid[16], uint64_t size)
{
	if (sb->magic != FS_SUPER_MAGIC)
		return "bad magic number (not a cairn shared area)";
	if (sb->checksum != checksum_struct(sb, sizeof(*sb)))
		return "checksum mismatch";
	if (sb->version == 1)
		return "format version 1, made by an older cairn without a backup superblock: "
		       "this cairn reads version 3 only";
	if (sb->version == 2)
		return "format version 2, made by an older cairn without data checksums: "
		       "this cairn reads version 3 only";
	if (sb->version != FS_FORMAT_VERSION)
		return "unsupported format version (offset 8)";
	if (sb->block_size != B)
		return "unsupported block size (offset 12)";
	if (memcmp(sb->uuid, uuid, 16))
		return "UUID (offset 16) belongs to another volume";
	/* Fewer blocks than the part holds: a grow the next mount finishes
	 * (the manifest, which gave the size, changed before the superblock). */
	if (size < 2 * B || sb->total_blocks > FS_BACKUP_BLOCK(size))
		return "tier size differs from the block count at offset 32";
	uint64_t laid = sb->fast_laid_blocks ? sb->fast_laid_blocks : sb->total_blocks;
	if (laid > sb->total_blocks || (sb->fast_laid_blocks && !fast_moved_ok(sb)))
		return "inconsistent fast tier growth fields (offsets 32, 584)";
	/* The layout follows from the two counts (the first size, for a tier
	 * that grew, whose bitmap and checksums moved): every field must agree. */
	struct fs_super want = *sb;
	int rc = layout(&want, laid, sb->inode_count);
	if (sb->fast_laid_blocks) {
		want.bbitmap_start = sb->bbitmap_start, want.bbitmap_blocks = sb->bbitmap_blocks;
		want.sums_start = sb->sums_start, want.sums_blocks = sb->sums_blocks;
	}
	if (rc ||
	    memcmp(&want.inode_count, &sb->inode_count,
	           offsetof(struct fs_super, created_ns) - offsetof(struct fs_super, inode_count)))
		return "inconsistent layout fields (offsets 40-119)";
	if (memcmp(want.tiers, sb->tiers, sizeof(sb->tiers)) || !added_tiers_ok(sb))
		return "inconsistent capacity tier fields (offsets 136-519)";
	if (want.sums_start != sb->sums_start || want.sums_blocks != sb->sums_blocks)
		return "inconsistent data checksum fields (offsets 520-535)";
	return NULL;
}

static uint64_t super_off(const struct media *m, int copy)
{
	return copy ? FS_BACKUP_BLOCK(media_size(m)) * B : 0;
}

/* Reads copy i (0: block 0, 1: the backup) into sb; what is wrong, or NULL. */
static const char *read_super(struct media *m, int i, const uint8_t uuid[16], struct fs_super *sb)
{
	if (media_size(m) < 2 * B)
		return "the part is too small to hold a shared area";
	if (media_read(m, super_off(m, i), sb, sizeof(*sb)))
		return "cannot be read";
	return check_super(sb, uuid, media_size(m));
}

/*
 * Loads a valid copy of the superblock into s->sb.  One is enough: the
 * damaged one is remembered (a mount warns, fsck reports it,
 * shared_super_repair rewrites it).
 */
static int load_super(struct shared *s, const uint8_t uuid[16], char *err, size_t errlen)
{
	struct fs_super *other = malloc(sizeof(*other));
	if (!other)
		return -ENOMEM;
	const char *why[2];
	why[0] = read_super(s->m, 0, uuid, &s->sb);
	why[1] = read_super(s->m, 1, uuid, other);
	if (why[0] && !why[1])
		s->sb = *other;
	free(other);
	const char *path = media_path(s->m);
	unsigned long long back = super_off(s->m, 1);
	if (why[0] && why[1]) {
		if (!strncmp(why[0], "format version 1", 16))
			snprintf(err, errlen, "fast part %s: %s", path, why[0]);
		else
			snprintf(err, errlen,
			         "fast part %s: both superblock copies are damaged: offset 0: %s; "
			         "offset %llu: %s",
			         path, why[0], back, why[1]);
		return -EUCLEAN;
	}
	for (int i = 0; i < 2; i++)
		if (why[i]) {
			s->super_bad = 1u << i;
			snprintf(s->super_why, sizeof(s->super_why), "%s", why[i]);
		}
	return 0;
}

/* The warning a successful open leaves in err when a copy is damaged. */
static void warn_super(const struct shared *s, char *err, size_t errlen)
{
	if (!s->super_bad)
		return;
	unsigned long long bad = super_off(s->m, s->super_bad == 2u);
	unsigned long long good = super_off(s->m, s->super_bad != 2u);
	snprintf(err, errlen,
	         "fast part %s: the superblock copy at offset %llu is damaged (%s); using the "
	         "copy at offset %llu",
	         media_path(s->m), bad, s->super_why, good);
}

unsigned shared_super_damaged(const struct shared *s, uint64_t *off, const char **why)
{
	if (s->super_bad) {
		*off = super_off(s->m, s->super_bad == 2u);
		*why = s->super_why;
	}
	return s->super_bad;
}

int shared_super_repair(struct shared *s)
{
	if (!s->super_bad)
		return 0;
	/* s->sb is the valid copy, checked against the manifest. */
	int rc = media_store(s->m, super_off(s->m, s->super_bad == 2u), &s->sb, sizeof(s->sb));
	if (!rc)
		rc = media_fence(s->m);
	if (!rc)
		s->super_bad = 0;
	return rc;
}

/* Checks capacity tier t's header against the superblock; NULL if good. */
static const char *check_tier(const struct fs_super *sb, unsigned t, struct media *m)
{
	static __thread char why[160];
	const struct fs_tier_desc *d = &sb->tiers[t - 1];
	if (media_size(m) / B < d->total_blocks) {
		snprintf(
		    why, sizeof(why), "%llu bytes, smaller than the %llu the volume was made with",
		    (unsigned long long)media_size(m), (unsigned long long)(d->total_blocks * B));
		return why;
	}
	struct fs_tier_header h, want;
	if (media_read(m, 0, &h, sizeof(h)))
		return "cannot read the tier header at offset 0";
	if (h.magic != FS_TIER_MAGIC)
		return "bad magic number at offset 0 (not a cairn capacity tier)";
	if (h.checksum != checksum_struct(&h, sizeof(h)))
		return "tier header checksum mismatch at offset 0";
	if (memcmp(h.uuid, sb->uuid, 16))
		return "UUID at offset 16 belongs to another volume";
	shared_tier_header_fill(&want, sb, t);
	if (h.tier != t)
		return "tier number at offset 32 differs from the manifest's order";
	/* The header gives the tier's blocks when it was made; a grow does
	 * not rewrite it (one block, no copy: a torn rewrite would lose the
	 * tier), so it may give fewer than the superblock. */
	if (h.total_blocks < want.total_blocks)
		h.total_blocks = want.total_blocks;
	if (memcmp(&h, &want, offsetof(struct fs_tier_header, created_ns)))
		return "tier header fields (offsets 36-71) differ from the superblock";
	return NULL;
}

static int read_slot(struct media *m, int slot, struct fs_checkpoint *ck)
{
	int rc = media_read(m, (uint64_t)(1 + slot) * B, ck, sizeof(*ck));
	if (rc)
		return rc;
	if (ck->magic != FS_CKPT_MAGIC || ck->checksum != checksum_struct(ck, sizeof(*ck)))
		return -EUCLEAN;
	return 0;
}

/* Makes ck the current checkpoint. */
static void set_ckpt(struct shared *s, const struct fs_checkpoint *ck)
{
	s->ckpt = *ck;
	__atomic_store_n(&s->ops_digested, ck->ops_digested, __ATOMIC_RELAXED);
}

uint64_t shared_ops_digested(const struct shared *s)
{
	return __atomic_load_n(&s->ops_digested, __ATOMIC_RELAXED);
}

static int load_checkpoint(struct shared *s, char *err, size_t errlen)
{
	struct fs_checkpoint a, b;
	int oka = read_slot(s->m, 0, &a) == 0;
	int okb = read_slot(s->m, 1, &b) == 0;
	if (!oka && !okb) {
		snprintf(err, errlen,
		         "fast part %s: both checkpoint slots (offsets 4096, 8192) are damaged",
		         media_path(s->m));
		return -EUCLEAN;
	}
	s->ckpt_slot = (okb && (!oka || b.seq > a.seq)) ? 1 : 0;
	set_ckpt(s, s->ckpt_slot ? &b : &a);
	return 0;
}

/* ---- the journal ------------------------------------------------------- */

uint64_t shared_journal_capacity(const struct shared *s)
{
	/* header + descriptors + images <= journal_blocks */
	uint64_t room = s->sb.journal_blocks - 1;
	return room * FS_JOURNAL_DESC_PER_BLOCK / (FS_JOURNAL_DESC_PER_BLOCK + 1);
}

static uint64_t journal_desc_blocks(uint64_t n)
{
	return div_up(n, FS_JOURNAL_DESC_PER_BLOCK);
}

/* Writes descriptors and images after the header; returns their checksum. */
static int journal_write_body(struct shared *s, const struct cache_snapshot *snap, uint64_t *sum)
{
	*sum = checksum64(NULL, 0);
	if (snap->count == 0)
		return 0;
	uint64_t nd = journal_desc_blocks(snap->count);
	uint64_t at = (s->sb.journal_start + 1) * B;
	size_t dbytes = nd * B;
	uint64_t *desc = calloc(1, dbytes);
	if (!desc)
		return -ENOMEM;
	memcpy(desc, snap->blknos, snap->count * sizeof(uint64_t));
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, desc, dbytes);
	XXH3_64bits_update(&st, snap->images, snap->count * B);
	*sum = XXH3_64bits_digest(&st);
	int rc = media_store(s->m, at, desc, dbytes);
	free(desc);
	if (!rc)
		rc = media_store(s->m, at + dbytes, snap->images, snap->count * B);
	return rc;
}

static int journal_write_header(struct shared *s, uint64_t n, uint64_t sum,
                                const struct fs_checkpoint *ck)
{
	struct fs_journal_header *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->magic = FS_JOURNAL_MAGIC;
	h->nblocks = n;
	h->body_checksum = sum;
	h->ckpt = *ck;
	h->checksum = checksum_struct(h, sizeof(*h));
	int rc = media_store(s->m, s->sb.journal_start * B, h, sizeof(*h));
	free(h);
	return rc;
}

/* Whether blk is one of the superblock's two copies: a checkpoint that
 * adds or retires a tier writes them through the journal. */
static int super_block(const struct shared *s, uint64_t blk)
{
	return blk == 0 || blk == FS_BACKUP_BLOCK(media_size(s->m));
}

/* The images home.  The superblock's backup copy goes last, after a
 * fence of everything else: torn together, the two copies would leave
 * no valid one to find the journal by. */
static int write_home(struct shared *s, const struct cache_snapshot *snap)
{
	uint64_t backup = FS_BACKUP_BLOCK(media_size(s->m));
	size_t last = snap->count;
	for (size_t i = 0; i < snap->count; i++) {
		uint64_t blk = snap->blknos[i];
		if (!super_block(s, blk) &&
		    (blk < s->sb.ibitmap_start || blk >= s->sb.total_blocks))
			return -EUCLEAN; /* never overwrite the slots or the journal */
		if (blk == backup) {
			last = i;
			continue;
		}
		int rc = media_store(s->m, blk * B, snap->images + i * B, B);
		if (rc)
			return rc;
	}
	if (last == snap->count)
		return 0;
	int rc = media_fence(s->m);
	return rc ? rc : media_store(s->m, backup * B, snap->images + last * B, B);
}

int shared_commit(struct shared *s, const struct cache_snapshot *snap, struct fs_checkpoint *ck)
{
	if (snap->count > shared_journal_capacity(s))
		return -ENOSPC;
	ck->seq = s->ckpt.seq + 1;
	seal_checkpoint(ck);
	uint64_t sum;
	int rc = journal_write_body(s, snap, &sum);
	if (!rc) /* data on every tier is durable before the journal commits */
		rc = shared_fence(s);
	if (!rc)
		rc = journal_write_header(s, snap->count, sum, ck);
	if (!rc)
		rc = media_fence(s->m); /* committed: recovery would finish it */
	if (!rc)
		rc = write_home(s, snap);
	if (!rc)
		rc = media_fence(s->m);
	int slot = !s->ckpt_slot;
	if (!rc)
		rc = write_slot(s->m, slot, ck);
	if (rc)
		return rc;
	set_ckpt(s, ck);
	s->ckpt_slot = slot;
	return 0;
}

/* Reads a committed journal newer than the current checkpoint into a
 * snapshot.  Returns 1 if there is one, 0 if not, or -errno; the snapshot
 * holds nothing unless 1 is returned. */
static int journal_load(struct shared *s, struct cache_snapshot *snap, struct fs_checkpoint *ck)
{
	struct fs_journal_header *h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	int rc = media_read(s->m, s->sb.journal_start * B, h, sizeof(*h));
	int valid = !rc && h->magic == FS_JOURNAL_MAGIC &&
	            h->checksum == checksum_struct(h, sizeof(*h)) &&
	            h->ckpt.magic == FS_CKPT_MAGIC &&
	            h->ckpt.checksum == checksum_struct(&h->ckpt, sizeof(h->ckpt)) &&
	            h->ckpt.seq > s->ckpt.seq;
	uint64_t n = valid ? h->nblocks : 0;
	if (valid && n > shared_journal_capacity(s))
		valid = 0;
	uint64_t sum = valid ? h->body_checksum : 0;
	if (valid)
		*ck = h->ckpt;
	free(h);
	if (rc)
		return rc;
	if (!valid)
		return 0;
	if (n == 0) {
		snap->count = 0;
		snap->blknos = NULL;
		snap->images = NULL;
		return sum == checksum64(NULL, 0) ? 1 : 0;
	}
	uint64_t nd = journal_desc_blocks(n);
	uint64_t *desc = malloc(nd * B + 1);
	snap->images = malloc(n * B + 1);
	snap->blknos = malloc(n * sizeof(uint64_t) + 1);
	snap->count = n;
	if (!desc || !snap->images || !snap->blknos) {
		free(desc);
		cache_snapshot_free(snap);
		return -ENOMEM;
	}
	uint64_t at = (s->sb.journal_start + 1) * B;
	rc = media_read(s->m, at, desc, nd * B);
	if (!rc)
		rc = media_read(s->m, at + nd * B, snap->images, n * B);
	if (!rc) {
		XXH3_state_t st;
		XXH3_64bits_reset(&st);
		XXH3_64bits_update(&st, desc, nd * B);
		XXH3_64bits_update(&st, snap->images, n * B);
		/* A header only follows a fenced body, so a bad body means the
		 * header belongs to an older, overwritten journal. */
		if (XXH3_64bits_digest(&st) != sum)
			rc = 1;
	}
	if (!rc)
		memcpy(snap->blknos, desc, n * sizeof(uint64_t));
	free(desc);
	if (rc)
		cache_snapshot_free(snap);
	if (rc == 1) /* a stale journal: none to recover */
		return 0;
	return rc ? rc : 1;
}

/* Completes a checkpoint whose journal committed but whose slot was not
 * written.  Read-only mounts apply it in the cache only. */
/* A journal that changed the tiers holds the new superblock (both
 * copies): it becomes the one in use, and the copies on the media will
 * both be it once the images are home. */
static int adopt_super(struct shared *s, const struct cache_snapshot *snap, int read_only)
{
	int copies = 0;
	for (size_t i = 0; i < snap->count; i++) {
		if (!super_block(s, snap->blknos[i]))
			continue;
		const struct fs_super *img = (const void *)(snap->images + i * B);
		if (check_super(img, s->sb.uuid, media_size(s->m)))
			return -EUCLEAN;
		if (snap->blknos[i] == 0)
			s->sb = *img;
		copies++;
	}
	if (copies == 2 && !read_only)
		s->super_bad = 0;
	return 0;
}

static int journal_recover(struct shared *s, int read_only)
{
	struct cache_snapshot snap = {0};
	struct fs_checkpoint ck;
	int rc = journal_load(s, &snap, &ck);
	if (rc <= 0)
		return rc;
	rc = adopt_super(s, &snap, read_only);
	if (rc) {
		cache_snapshot_free(&snap);
		return rc;
	}
	if (read_only) {
		for (size_t i = 0; i < snap.count; i++) {
			struct buf *b;
			if (cache_get(s->cache, snap.blknos[i], &b) == 0) {
				memcpy(b->data, snap.images + i * B, B);
				cache_mark_dirty(s->cache, b); /* pinned: never reloaded */
				cache_put(s->cache, b);
			}
		}
		set_ckpt(s, &ck);
		cache_snapshot_free(&snap);
		return 0;
	}
	rc = write_home(s, &snap);
	if (!rc)
		rc = media_fence(s->m);
	int slot = !s->ckpt_slot;
	if (!rc)
		rc = write_slot(s->m, slot, &ck);
	if (!rc) {
		set_ckpt(s, &ck);
		s->ckpt_slot = slot;
	}
	cache_snapshot_free(&snap);
	return rc;
}

/* Opens capacity tier t, which the superblock lists and is not retired. */
static int open_tier(struct shared *s, unsigned t, struct media *m, char *err, size_t errlen)
{
	const struct fs_tier_desc *d = &s->sb.tiers[t - 1];
	struct tier *x = &s->tier[t];
	memcpy(x->name, d->name, sizeof(d->name));
	x->name[sizeof(x->name) - 1] = 0;
	const char *bad = m ? check_tier(&s->sb, t, m) : "the manifest says it was removed";
	if (bad) {
		snprintf(err, errlen, "tier %s part %s: %s", x->name, m ? media_path(m) : "-", bad);
		return -EUCLEAN;
	}
	x->m = m;
	x->total_blocks = d->total_blocks;
	x->first_block = 1;
	x->unit_blocks = d->unit_blocks ? d->unit_blocks : 1;
	int rc = alloc_open(&x->a, s->cache, d->bitmap_start, d->bitmap_blocks, d->total_blocks, 1);
	if (!rc)
		rc = sums_open(&x->sums, s->m, d->sums_start, d->total_blocks);
	if (rc) {
		snprintf(err, errlen, "tier %s: cannot load its bitmap and checksums: %s", x->name,
		         strerror(-rc));
		return rc;
	}
	alloc_set_quarantine(x->a, 1);
	s->fx.talloc[t] = x->a;
	return 0;
}

/* A retired tier keeps its number and name, and nothing else: no part,
 * no blocks, no allocator. */
static void mark_retired(struct shared *s, unsigned t)
{
	struct tier *x = &s->tier[t];
	memset(x, 0, sizeof(*x));
	memcpy(x->name, s->sb.tiers[t - 1].name, sizeof(x->name) - 1);
	x->retired = 1;
}

/*
 * The manifest's tiers against the superblock's.  They agree but for the
 * two steps a crash may split (src/libfs/tiers.c): a tier added to the
 * manifest and not yet to the superblock (its last, one more: left to the
 * caller, s->tier_pending), and a tier retired in the superblock whose
 * manifest line was not yet rewritten (its part is not used;
 * s->manifest_stale).  cap[k] is NULL for a tier the manifest says was
 * removed.
 */
static int open_tiers(struct shared *s, struct media *const *cap, unsigned ncap, char *err,
                      size_t errlen)
{
	if (ncap != s->sb.tier_count && ncap != s->sb.tier_count + 1) {
		snprintf(err, errlen,
		         "fast part %s: the superblock lists %u capacity tiers, the manifest %u",
		         media_path(s->m), s->sb.tier_count, ncap);
		return -EUCLEAN;
	}
	s->tier_pending = ncap > s->sb.tier_count;
	struct tier *f = &s->tier[0];
	f->m = s->m;
	f->a = s->balloc;
	f->total_blocks = s->sb.total_blocks;
	f->first_block = s->sb.data_start;
	f->unit_blocks = 1;
	snprintf(f->name, sizeof(f->name), "fast");
	int rc = sums_open(&f->sums, s->m, s->sb.sums_start, s->sb.total_blocks);
	if (rc) {
		snprintf(err, errlen, "fast part %s: cannot load the data checksums: %s",
		         media_path(s->m), strerror(-rc));
		return rc;
	}
	s->ntiers = 1 + s->sb.tier_count;
	for (unsigned t = 1; t < s->ntiers && !rc; t++) {
		if (s->sb.tiers[t - 1].flags & FS_TIER_RETIRED) {
			mark_retired(s, t);
			s->manifest_stale |= cap[t - 1] != NULL;
		} else {
			rc = open_tier(s, t, cap[t - 1], err, errlen);
		}
	}
	return rc;
}

int shared_open(struct shared *s, struct media *m, struct media *const *cap, unsigned ncap,
                const uint8_t uuid[16], int read_only, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->m = m;
	int rc = load_super(s, uuid, err, errlen);
	if (!rc)
		rc = load_checkpoint(s, err, errlen);
	/* Keep up to 1/16 of the tier's blocks cached (4096..65536): enough for
	 * the inner nodes and hot leaves of million-entry directories. */
	uint64_t keep = s->sb.total_blocks / 16;
	keep = keep < 4096 ? 4096 : keep > 65536 ? 65536 : keep;
	if (!rc)
		rc = cache_create(&s->cache, m, (size_t)keep);
	if (!rc) {
		rc = journal_recover(s, read_only);
		if (rc)
			snprintf(err, errlen, "fast part %s: journal at block %llu: %s",
			         media_path(m), (unsigned long long)s->sb.journal_start,
			         strerror(-rc));
	}
	if (!rc)
		rc = alloc_open(&s->ialloc, s->cache, s->sb.ibitmap_start, s->sb.ibitmap_blocks,
		                s->sb.inode_count, FS_ROOT_INO + 1);
	if (!rc)
		rc = alloc_open(&s->balloc, s->cache, s->sb.bbitmap_start, s->sb.bbitmap_blocks,
		                s->sb.total_blocks, s->sb.data_start);
	if (!rc)
		alloc_set_quarantine(s->balloc, 1);
	if (!rc)
		rc = open_tiers(s, cap, ncap, err, errlen);
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "fast part %s: cannot load allocation bitmaps: %s",
			         media_path(m), strerror(-rc));
		shared_close(s);
		return rc;
	}
	s->fx.cache = s->cache;
	s->fx.balloc = s->balloc;
	warn_super(s, err, errlen);
	return 0;
}

void shared_close(struct shared *s)
{
	for (unsigned t = 0; t <= FS_MAX_TIERS; t++)
		sums_close(&s->tier[t].sums);
	for (unsigned t = 1; t <= FS_MAX_TIERS; t++) {
		if (s->tier[t].a)
			alloc_close(s->tier[t].a);
		s->tier[t].a = NULL;
		s->fx.talloc[t] = NULL;
	}
	if (s->balloc)
		alloc_close(s->balloc);
	if (s->ialloc)
		alloc_close(s->ialloc);
	if (s->cache)
		cache_destroy(s->cache);
	s->balloc = s->ialloc = NULL;
	s->tier[0].a = NULL;
	s->cache = NULL;
}

/* ---- inodes ------------------------------------------------------------ */

int inode_get(struct shared *s, uint64_t ino, struct iref *r)
{
	if (ino == 0 || ino >= s->sb.inode_count)
		return -EUCLEAN;
	struct buf *b;
	int rc = cache_get(s->cache, s->sb.itable_start + ino / FS_INODES_PER_BLOCK, &b);
	if (rc)
		return rc;
	r->b = b;
	r->i = (struct fs_inode *)b->data + ino % FS_INODES_PER_BLOCK;
	r->ino = ino;
	return 0;
}

void inode_put(struct shared *s, struct iref *r)
{
	if (r->b)
		cache_put(s->cache, r->b);
	r->b = NULL;
	r->i = NULL;
}

void inode_dirty(struct shared *s, struct iref *r)
{
	cache_mark_dirty(s->cache, r->b);
}

void inode_keep_dirty(struct shared *s, struct iref *r)
{
	cache_keep_dirty(s->cache, r->b);
}

int inode_take(struct shared *s, uint64_t ino)
{
	if (ino <= FS_ROOT_INO || ino >= s->sb.inode_count)
		return -EUCLEAN;
	return alloc_take(s->ialloc, ino);
}

int inode_pick(struct shared *s, uint64_t hint, uint64_t *ino)
{
	uint64_t got;
	return alloc_run(s->ialloc, hint, 1, ino, &got);
}

void inode_release(struct shared *s, uint64_t ino)
{
	alloc_free(s->ialloc, ino, 1);
}

int inode_hold(struct shared *s, uint64_t hint, uint64_t *ino)
{
	int rc = inode_pick(s, hint, ino);
	if (rc)
		return rc;
	alloc_free(s->ialloc, *ino, 1);
	return alloc_hold(s->ialloc, *ino);
}

void inode_unhold(struct shared *s, uint64_t ino)
{
	alloc_unhold(s->ialloc, ino);
}

int inode_in_use(struct shared *s, uint64_t ino)
{
	return ino < s->sb.inode_count && alloc_is_used(s->ialloc, ino);
}

/* ---- data blocks ------------------------------------------------------- */

/* The tier pblk names, or NULL if there is no such tier. */
static struct tier *tier_of(const struct shared *s, uint64_t pblk)
{
	unsigned t = FS_PBLK_TIER(pblk);
	return shared_tier_live(s, t) ? (struct tier *)&s->tier[t] : NULL;
}

int shared_tier_live(const struct shared *s, unsigned t)
{
	return t < s->ntiers && s->tier[t].a != NULL;
}

int shared_blocks_ok(const struct shared *s, uint64_t pblk, uint64_t n)
{
	if (s->ntiers == 0) /* before open_tiers: the fast tier alone */
		return pblk >= s->sb.data_start && pblk <= s->sb.total_blocks &&
		       n <= s->sb.total_blocks - pblk;
	const struct tier *t = tier_of(s, pblk);
	uint64_t blk = FS_PBLK_BLK(pblk);
	return t && blk >= t->first_block && blk <= t->total_blocks && n <= t->total_blocks - blk;
}

static int data_store(struct shared *s, uint64_t pblk, const void *buf, uint64_t nblocks,
                      int damaged)
{
	if (!shared_blocks_ok(s, pblk, nblocks))
		return -EUCLEAN;
	struct tier *t = tier_of(s, pblk);
	t->dirty = 1;
	/* The entry first: a reader that sees the new entry before the new
	 * block is impossible anyway (readers of a mapped block exclude its
	 * writer), and a crash between the two is repaired by replay. */
	int rc = sums_set(&t->sums, pblk, FS_PBLK_BLK(pblk), buf, nblocks, damaged);
	return rc ? rc : media_store(t->m, FS_PBLK_BLK(pblk) * B, buf, nblocks * B);
}

int shared_data_write(struct shared *s, uint64_t pblk, const void *buf, uint64_t nblocks)
{
	return data_store(s, pblk, buf, nblocks, 0);
}

int shared_data_write_damaged(struct shared *s, uint64_t pblk, const void *buf)
{
	return data_store(s, pblk, buf, 1, 1);
}

/* Checks n whole blocks at pblk held in buf. */
static int verify(struct shared *s, uint64_t pblk, const void *buf, uint64_t n, uint64_t *bad,
                  int always)
{
	struct tier *t = tier_of(s, pblk);
	uint64_t good = sums_verify(&t->sums, pblk, FS_PBLK_BLK(pblk), buf, n, always);
	if (good == n)
		return 0;
	if (bad)
		*bad = pblk + good;
	return -SHARED_EBADSUM;
}

int shared_data_read(struct shared *s, uint64_t pblk, void *buf, uint64_t nblocks, uint64_t *bad)
{
	if (!shared_blocks_ok(s, pblk, nblocks))
		return -EUCLEAN;
	struct tier *t = tier_of(s, pblk);
	int rc = media_read(t->m, FS_PBLK_BLK(pblk) * B, buf, nblocks * B);
	return rc ? rc : verify(s, pblk, buf, nblocks, bad, 0);
}

/* The part of one block at pblk from byte `in`, through a bounce buffer:
 * the block is verified whole. */
static int pread_partial(struct shared *s, uint64_t pblk, uint64_t in, uint8_t *out, uint64_t len,
                         uint64_t *bad)
{
	uint8_t block[B];
	int rc = shared_data_read(s, pblk, block, 1, bad);
	if (!rc)
		memcpy(out, block + in, len);
	return rc;
}

/* A byte-addressable tier: each whole block is copied, then the copy is
 * verified while it is in the cache (one pass over the medium instead of
 * two); a part of a block is verified in place first. */
static int pread_direct(struct shared *s, const uint8_t *direct, uint64_t pblk, uint64_t in,
                        uint8_t *out, uint64_t len, uint64_t *bad)
{
	while (len > 0) {
		uint64_t n = B - in < len ? B - in : len;
		int rc = 0;
		if (n == B) {
			memcpy(out, direct, B);
			rc = verify(s, pblk, out, 1, bad, 0);
		} else {
			rc = verify(s, pblk, direct, 1, bad, 0);
			if (!rc)
				memcpy(out, direct + in, n);
		}
		if (rc)
			return rc;
		direct += B;
		pblk++;
		out += n;
		len -= n;
		in = 0;
	}
	return 0;
}

int shared_data_pread(struct shared *s, uint64_t pblk, uint64_t in, void *buf, uint64_t len,
                      uint64_t *bad)
{
	uint8_t *out = buf;
	pblk += in / B;
	in %= B;
	if (!shared_blocks_ok(s, pblk, (in + len + B - 1) / B))
		return -EUCLEAN;
	const uint8_t *direct = shared_data_direct(s, pblk);
	if (direct)
		return pread_direct(s, direct, pblk, in, out, len, bad);
	int rc = 0;
	if (in || len < B) { /* a head that is not a whole block */
		uint64_t n = B - in < len ? B - in : len;
		rc = pread_partial(s, pblk++, in, out, n, bad);
		out += n;
		len -= n;
	}
	if (!rc && len >= B) { /* whole blocks, straight into the caller's buffer */
		uint64_t n = len / B;
		rc = shared_data_read(s, pblk, out, n, bad);
		pblk += n;
		out += n * B;
		len -= n * B;
	}
	if (!rc && len) /* a tail */
		rc = pread_partial(s, pblk, 0, out, len, bad);
	return rc;
}

int shared_data_note_damage(struct shared *s, uint64_t pblk)
{
	if (!shared_blocks_ok(s, pblk, 1))
		return 1;
	return sums_note_damage(&tier_of(s, pblk)->sums, FS_PBLK_BLK(pblk));
}

int shared_data_known_damaged(struct shared *s, uint64_t pblk, uint64_t n)
{
	if (!shared_blocks_ok(s, pblk, n))
		return 0;
	return sums_known_damaged(&tier_of(s, pblk)->sums, FS_PBLK_BLK(pblk), n);
}

int shared_data_pread_unverified(struct shared *s, uint64_t pblk, uint64_t in, void *buf,
                                 uint64_t len)
{
	if (in + len > B || !shared_blocks_ok(s, pblk, 1))
		return -EUCLEAN;
	struct tier *t = tier_of(s, pblk);
	return media_read(t->m, FS_PBLK_BLK(pblk) * B + in, buf, len);
}

const void *shared_data_direct(struct shared *s, uint64_t pblk)
{
	if (FS_PBLK_TIER(pblk) != 0)
		return NULL;
	const uint8_t *base = media_direct(s->m);
	return base ? base + pblk * B : NULL;
}

int shared_data_verify(struct shared *s, uint64_t pblk, uint64_t n, uint64_t *bad, int always)
{
	if (!shared_blocks_ok(s, pblk, n))
		return -EUCLEAN;
	const uint8_t *direct = shared_data_direct(s, pblk);
	if (direct)
		return verify(s, pblk, direct, n, bad, always);
	struct tier *t = tier_of(s, pblk);
	if (!always && sums_known_good(&t->sums, FS_PBLK_BLK(pblk), n))
		return 0;
	enum { CHUNK = 16 }; /* 64 KiB: below malloc's mmap threshold, reused */
	uint8_t *buf = malloc((size_t)CHUNK * B);
	if (!buf)
		return -ENOMEM;
	int rc = 0;
	for (uint64_t done = 0; done < n && !rc; done += CHUNK) {
		uint64_t k = n - done < CHUNK ? n - done : CHUNK;
		rc = media_read(t->m, FS_PBLK_BLK(pblk + done) * B, buf, k * B);
		if (!rc)
			rc = verify(s, pblk + done, buf, k, bad, always);
	}
	free(buf);
	return rc;
}

/* Stores the checksum entries that sit in memory only (file medium). */
static int flush_sums(struct shared *s)
{
	for (unsigned t = 0; t < s->ntiers; t++) {
		int rc = sums_flush(&s->tier[t].sums);
		if (rc)
			return rc;
	}
	return 0;
}

int shared_fence(struct shared *s)
{
	int rc = flush_sums(s);
	if (rc)
		return rc;
	for (unsigned t = 1; t < s->ntiers; t++) {
		if (!s->tier[t].dirty)
			continue;
		rc = media_fence(s->tier[t].m);
		if (rc)
			return rc;
		s->tier[t].dirty = 0;
	}
	return media_fence(s->m);
}

int shared_alloc_data(struct shared *s, unsigned t, uint64_t hint, uint64_t want, uint64_t *pblk,
                      uint64_t *got)
{
	if (!shared_tier_live(s, t) || s->tier[t].draining)
		return -ENOSPC;
	uint64_t h = FS_PBLK_TIER(hint) == t ? FS_PBLK_BLK(hint) : 0;
	uint64_t start;
	int rc = alloc_run(s->tier[t].a, h, want, &start, got);
	if (!rc)
		*pblk = FS_PBLK(t, start);
	return rc;
}

uint64_t shared_tier_free(const struct shared *s, unsigned t)
{
	return shared_tier_live(s, t) ? alloc_free_count(s->tier[t].a) : 0;
}

uint64_t shared_tier_blocks(const struct shared *s, unsigned t)
{
	return shared_tier_live(s, t) ? s->tier[t].total_blocks - s->tier[t].first_block : 0;
}

uint64_t shared_tier_room(const struct shared *s, unsigned t)
{
	return shared_tier_live(s, t) && !s->tier[t].draining ? shared_tier_free(s, t) : 0;
}

void shared_tier_set_draining(struct shared *s, unsigned t, int on)
{
	if (t > 0 && shared_tier_live(s, t))
		s->tier[t].draining = on;
}

uint64_t shared_tier_used(const struct shared *s, unsigned t)
{
	uint64_t total = shared_tier_blocks(s, t), free_blocks = shared_tier_free(s, t);
	return total > free_blocks ? total - free_blocks : 0;
}

int shared_seal_frees(struct shared *s)
{
	for (unsigned t = 0; t < s->ntiers; t++) {
		if (!shared_tier_live(s, t))
			continue;
		int rc = alloc_seal(s->tier[t].a);
		if (rc)
			return rc;
	}
	return 0;
}

void shared_release_frees(struct shared *s)
{
	for (unsigned t = 0; t < s->ntiers; t++)
		if (shared_tier_live(s, t))
			alloc_release_sealed(s->tier[t].a);
}
