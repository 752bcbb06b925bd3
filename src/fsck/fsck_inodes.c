/*
 * fsck_inodes.c - phase 3 of a check: every inode and its trees.
 *
 * Owns: the rules for one inode (bitmap bit, type, tree shapes, extents,
 * the blocks field) and the claims of its tree nodes and extents in the
 * volume-wide claimed bitmap.  Directory records are fsck_dirs.c's; what
 * needs every name counted (links, orphans, reachability) fsck_links.c's.
 * May call: shared (inodes, cache), btree (btree_check, btree_iter on
 * read-only handles).
 *
 * Order: the inode table is read once into struct iinfo (mode, nlink,
 * flags), so that a directory entry can be checked against its target
 * without another read; the orphan list is walked; then each inode's trees
 * are checked with btree_check and walked, claiming their blocks and
 * counting the names of each target; last come the link counts, parents
 * and reachability.
 *
 * What a damaged tree hides is unknown, so checks that need the whole
 * picture are gated: link counts and reachability need every directory
 * tree read whole (names_complete); leak reclaim needs every tree read
 * whole (claims_complete).  Such problems are then not reported at all,
 * rather than reported wrongly.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/dir.h"
#include "fs/format.h"
#include "fsck/fsck_internal.h"
#include "util/checksum.h"

/* The three tree kinds, as docs/FORMAT.md ("Tree nodes") defines them.
 * extent.c, dir.c and xattr.c keep theirs private; these must agree. */
#define EXTENT_MAX_LBLK (1ull << 40)
#define SYMLINK_MAX 4095

const struct btree_ops fsck_extent_ops = {.magic = 0x4e545843u, .min_rec = 24, .max_rec = 24};
const struct btree_ops fsck_dir_ops = {
    .magic = 0x52494443u, .min_rec = FSCK_DREC_HDR + 1, .max_rec = FSCK_DREC_HDR + DIR_NAME_MAX};
const struct btree_ops fsck_xattr_ops = {
    .magic = 0x54415843u, .min_rec = 12, .max_rec = 11 + 255 + 1024};

static const char *const tree_names[] = {"extent tree", "directory tree", "xattr tree"};

static const struct btree_ops *tree_ops(int kind)
{
	return kind == TREE_EXTENT ? &fsck_extent_ops
	       : kind == TREE_DIR  ? &fsck_dir_ops
	                           : &fsck_xattr_ops;
}

const char *fsck_type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "regular file";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symlink";
	case S_IFCHR:
		return "character device";
	case S_IFBLK:
		return "block device";
	case S_IFIFO:
		return "FIFO";
	case S_IFSOCK:
		return "socket";
	}
	return "thing of unknown type";
}

int fsck_known_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		return 1;
	}
	return 0;
}

/* ---- loading ---------------------------------------------------------------- */

int fsck_read_bitmap(struct fsck_ctx *c, uint64_t start, uint64_t blocks, void *out)
{
	for (uint64_t k = 0; k < blocks; k++) {
		struct buf *b;
		int rc = cache_get(c->sh.cache, start + k, &b);
		if (rc) {
			fsck_problem(c, FC_IO, "block %llu (bitmap): cannot be read: %s",
			             (unsigned long long)(start + k), strerror(-rc));
			return rc;
		}
		memcpy((uint8_t *)out + k * FS_BLOCK_SIZE, b->data, FS_BLOCK_SIZE);
		cache_put(c->sh.cache, b);
	}
	return 0;
}

int fsck_read_inode(struct fsck_ctx *c, uint64_t ino, struct fs_inode *out)
{
	struct iref r;
	int rc = inode_get(&c->sh, ino, &r);
	if (rc) {
		fsck_problem(c, FC_IO, "inode %llu: cannot be read: %s", (unsigned long long)ino,
		             strerror(-rc));
		return rc;
	}
	*out = *r.i;
	inode_put(&c->sh, &r);
	return 0;
}

/* The table in one pass, so entries can be checked against their targets. */
static int load_inodes(struct fsck_ctx *c)
{
	c->ii = calloc(c->sb->inode_count, sizeof(*c->ii));
	if (!c->ii)
		return -ENOMEM;
	for (uint64_t blk = 0; blk < c->sb->itable_blocks; blk++) {
		struct buf *b;
		int rc = cache_get(c->sh.cache, c->sb->itable_start + blk, &b);
		if (rc) {
			fsck_problem(c, FC_IO, "block %llu (inode table): cannot be read: %s",
			             (unsigned long long)(c->sb->itable_start + blk),
			             strerror(-rc));
			return rc;
		}
		const struct fs_inode *in = (const struct fs_inode *)b->data;
		for (unsigned j = 0; j < FS_INODES_PER_BLOCK; j++) {
			struct iinfo *x = &c->ii[blk * FS_INODES_PER_BLOCK + j];
			x->mode = in[j].mode;
			x->nlink = in[j].nlink;
			x->parent = in[j].parent;
			if (in[j].flags & FS_INODE_ORPHAN)
				x->flags |= II_ORPHAN_FLAG;
		}
		cache_put(c->sh.cache, b);
	}
	return 0;
}

/* ---- trees ----------------------------------------------------------------- */

/* Claims every node of a tree that btree_check accepted.  Levels strictly
 * decrease, so the recursion is at most BTREE_MAX_DEPTH deep. */
static int claim_nodes(struct fsck_ctx *c, uint64_t blk, uint32_t magic, int level, uint64_t *bad)
{
	if (!fsck_node_block(c, blk)) {
		*bad = blk;
		return -EUCLEAN;
	}
	struct buf *b;
	int rc = cache_get(c->sh.cache, blk, &b);
	if (rc)
		return rc;
	const uint8_t *n = b->data;
	uint32_t mg;
	uint16_t lv, count;
	memcpy(&mg, n, 4);
	memcpy(&lv, n + 4, 2);
	memcpy(&count, n + 6, 2);
	if (mg != magic || lv >= BTREE_MAX_DEPTH || (level >= 0 && lv != level)) {
		cache_put(c->sh.cache, b);
		return -EUCLEAN;
	}
	fsck_claim(c, blk, 1);
	for (unsigned i = 0; lv > 0 && i < count && !rc; i++)
		rc = claim_nodes(c, fsck_ld64(n + BTREE_HDR_SIZE + 16 * i + 8), magic, lv - 1, bad);
	cache_put(c->sh.cache, b);
	return rc;
}

/* What a tree's root node is: 0 readable, 1 unreadable (then nothing in
 * the tree can be read, and emptying it loses nothing that could be), 2 a
 * node of another kind of tree (then the inode's type or root pointer is
 * wrong, and the tree may be whole: it must not be emptied). */
static int root_state(struct fsck_ctx *c, uint64_t root, uint32_t magic)
{
	if (!fsck_node_block(c, root))
		return 1;
	struct buf *b;
	if (cache_get(c->sh.cache, root, &b))
		return 1;
	uint32_t mg;
	uint16_t lv;
	memcpy(&mg, b->data, 4);
	memcpy(&lv, b->data + 4, 2);
	cache_put(c->sh.cache, b);
	if (mg != magic &&
	    (mg == fsck_extent_ops.magic || mg == fsck_dir_ops.magic || mg == fsck_xattr_ops.magic))
		return 2;
	return mg != magic || lv >= BTREE_MAX_DEPTH;
}

/* btree_check, then the node claims.  Returns 1 if the tree is whole. */
int fsck_tree_ok(struct fsck_ctx *c, uint64_t ino, uint64_t root, int kind)
{
	const struct btree_ops *ops = tree_ops(kind);
	struct btree t;
	uint64_t rootv = root;
	(void)btree_init_ro(&t, &c->sh.fx, ops, &rootv);
	uint64_t bad = 0;
	int rc = btree_check(&t, NULL);
	if (!rc)
		rc = claim_nodes(c, root, ops->magic, -1, &bad);
	if (!rc)
		return 1;
	char why[160];
	int state = root_state(c, root, ops->magic), unreadable = state == 1;
	if (bad && FS_PBLK_TIER(bad))
		snprintf(why, sizeof(why),
		         "a node pointer names block %llu of tier %u, but tree "
		         "nodes live on the fast tier only",
		         (unsigned long long)FS_PBLK_BLK(bad), FS_PBLK_TIER(bad));
	else if (bad)
		snprintf(why, sizeof(why), "a node pointer names block %llu, outside the data area",
		         (unsigned long long)bad);
	else if (state == 2)
		snprintf(why, sizeof(why),
		         "its root node belongs to another kind of tree (the inode's "
		         "type or root pointer is wrong)");
	else if (unreadable)
		snprintf(why, sizeof(why),
		         "its root node is not %s %s node (bad magic, level or block)",
		         kind == TREE_DIR ? "a" : "an", tree_names[kind]);
	else
		snprintf(why, sizeof(why),
		         "a node fails the checks (magic, level, counts, key order "
		         "or bounds): %s",
		         strerror(-rc));
	struct fsck_item *it =
	    fsck_problem(c, FC_TREE, "inode %llu: %s (root block %llu) is damaged: %s",
	                 (unsigned long long)ino, tree_names[kind], (unsigned long long)root, why);
	it->a = ino;
	it->b = (uint64_t)kind;
	/* A directory's readable names and a file's readable extents are
	 * salvaged; a damaged xattr tree is dropped whole (its attributes
	 * lost, and said so), since nothing else on the volume depends on it. */
	it->fixable = unreadable || kind == TREE_XATTR || state == 0;
	it->c = !unreadable && kind != TREE_XATTR;
	if (state == 2 && kind != TREE_XATTR) {
		/* Perhaps a directory whose mode says file (or the reverse):
		 * decided with the names, as for an unknown type. */
		c->ii[ino].flags |= II_UNKNOWN;
		c->ii[ino].tree_root = root;
	}
	return 0;
}

/* ---- extended attributes: records ------------------------------------------- */

/* xattr.c's record format and keys ({u64 key, u8 namelen, u16 valuelen,
 * name, value}; a name's hash picks a bucket of 2^16 keys), kept private
 * there: these must agree. */
#define XATTR_HASH_SEED 0x78617474722d6b79ull
#define XATTR_BUCKET (1ull << 16)
#define XATTR_KEY_MASK (((1ull << 63) - 1) & ~(XATTR_BUCKET - 1))
#define XREC_HDR 11

struct xwalk {
	uint64_t bad_key;
	const char *why;
};

static int xattr_rec(void *arg, const void *rec, size_t len)
{
	struct xwalk *w = arg;
	const uint8_t *p = rec;
	uint64_t key;
	uint16_t vlen;
	memcpy(&key, p, 8);
	memcpy(&vlen, p + 9, 2);
	size_t namelen = p[8];
	if (namelen == 0 || len != XREC_HDR + namelen + vlen)
		w->why = "its lengths disagree with the record's size";
	else if (memchr(p + XREC_HDR, 0, namelen))
		w->why = "its name holds a NUL byte";
	if (!w->why) {
		uint64_t base =
		    checksum64_seeded(p + XREC_HDR, namelen, XATTR_HASH_SEED) & XATTR_KEY_MASK;
		if (!base)
			base = XATTR_BUCKET;
		if (key < base || key >= base + XATTR_BUCKET)
			w->why = "its key lies outside its name's hash bucket";
	}
	if (!w->why)
		return 0;
	w->bad_key = key;
	return 1;
}

/* Every record of a sound xattr tree must decode and sit in its name's
 * bucket, or reads of the attributes fail.  A bad one is reported as a
 * damaged tree, which repair drops whole (as for a damaged node). */
static int xattr_records_ok(struct fsck_ctx *c, uint64_t ino, uint64_t root)
{
	struct btree t;
	uint64_t rootv = root;
	(void)btree_init_ro(&t, &c->sh.fx, &fsck_xattr_ops, &rootv);
	struct xwalk w = {0, NULL};
	int rc = btree_iter(&t, 0, UINT64_MAX, 0, xattr_rec, &w);
	if (rc == 0 && !w.why)
		return 1;
	struct fsck_item *it = fsck_problem(
	    c, FC_TREE,
	    "inode %llu: xattr tree (root block %llu) is damaged: the record at key %llu: %s",
	    (unsigned long long)ino, (unsigned long long)root, (unsigned long long)w.bad_key,
	    w.why ? w.why : strerror(-rc));
	it->a = ino;
	it->b = (uint64_t)TREE_XATTR;
	it->fixable = 1;
	it->c = 0;
	return 0;
}

/* ---- files and symlinks: extents -------------------------------------------- */

struct ewalk {
	struct fsck_ctx *c;
	const struct fs_inode *in;
	uint64_t ino, prev_end;
	int ok;
};

/* An extent that maps blocks no data area holds: past its tier's end, or
 * on a tier the volume does not have. */
static struct fsck_item *extent_outside(struct fsck_ctx *c, unsigned long long ino, uint64_t lblk,
                                        uint64_t pblk, uint64_t n)
{
	unsigned t = FS_PBLK_TIER(pblk);
	unsigned long long b = (unsigned long long)FS_PBLK_BLK(pblk), lb = (unsigned long long)lblk;
	unsigned long long last = b + (unsigned long long)n - 1;
	if (t >= c->sh.ntiers)
		return fsck_problem(
		    c, FC_EXTENT_OUTSIDE,
		    "inode %llu: extent at logical block %llu maps blocks %llu..%llu of "
		    "tier %u, which the volume does not have (it has %u capacity tiers)",
		    ino, lb, b, last, t, c->sh.ntiers - 1);
	const struct tier *x = &c->sh.tier[t];
	if (x->retired)
		return fsck_problem(
		    c, FC_EXTENT_OUTSIDE,
		    "inode %llu: extent at logical block %llu maps blocks %llu..%llu "
		    "of tier %s, which was removed from the volume",
		    ino, lb, b, last, x->name);
	if (t == 0)
		return fsck_problem(
		    c, FC_EXTENT_OUTSIDE,
		    "inode %llu: extent at logical block %llu maps blocks %llu..%llu, "
		    "outside the data area [%llu, %llu)",
		    ino, lb, b, last, (unsigned long long)x->first_block,
		    (unsigned long long)x->total_blocks);
	return fsck_problem(
	    c, FC_EXTENT_OUTSIDE,
	    "inode %llu: extent at logical block %llu maps tier %s blocks %llu..%llu, "
	    "outside its data area [%llu, %llu)",
	    ino, lb, x->name, b, last, (unsigned long long)x->first_block,
	    (unsigned long long)x->total_blocks);
}

/* Reads the extent's blocks and checks them against their checksums: one
 * problem per extent, naming the first damaged block and how many are.
 * Files that undigested records write are left to the next mount (see
 * fsck_ctx.written). */
static void check_data_sums(struct fsck_ctx *c, uint64_t ino, uint64_t lblk, uint64_t pblk,
                            uint64_t n)
{
	if (fsck_written_by_log(c, ino))
		return;
	uint64_t first = 0, damaged = 0;
	for (uint64_t at = 0; at < n;) {
		uint64_t bad = 0;
		int rc = shared_data_verify(&c->sh, pblk + at, n - at, &bad, 1);
		if (rc != -SHARED_EBADSUM)
			break; /* verified to the end (or unreadable: the bitmap phase says) */
		if (!damaged++)
			first = bad;
		at = bad - pblk + 1;
	}
	if (!damaged)
		return;
	c->data_damaged += damaged;
	const struct tier *t = &c->sh.tier[FS_PBLK_TIER(first)];
	struct fsck_item *it = fsck_problem(
	    c, FC_DATA_CHECKSUM,
	    "inode %llu: %llu data block%s of the extent at file offset %llu do%s not match "
	    "%s checksum%s, the first at file offset %llu (tier %s block %llu): those bytes are "
	    "damaged; restore the file (writing the blocks whole makes them good)",
	    (unsigned long long)ino, (unsigned long long)damaged, damaged > 1 ? "s" : "",
	    (unsigned long long)(lblk * FS_BLOCK_SIZE), damaged > 1 ? "" : "es",
	    damaged > 1 ? "their" : "its", damaged > 1 ? "s" : "",
	    (unsigned long long)((lblk + (first - pblk)) * FS_BLOCK_SIZE), t->name,
	    (unsigned long long)FS_PBLK_BLK(first));
	it->a = ino;
	it->b = lblk + (first - pblk);
}

/* Why an extent's state (the top byte of its length word) is not valid
 * for this inode, or NULL: written or unwritten, and unwritten only in a
 * regular file and up to FS_EXTENT_UNWRITTEN_MAX blocks. */
static const char *bad_state(const struct fs_inode *in, uint64_t word)
{
	uint64_t state = word & FS_EXTENT_STATE;
	if (state != 0 && state != FS_EXTENT_UNWRITTEN)
		return ", an unknown state";
	if (state && !S_ISREG(in->mode))
		return ", unwritten outside a regular file";
	if (state && (word & ~FS_EXTENT_STATE) > FS_EXTENT_UNWRITTEN_MAX)
		return ", unwritten and longer than allowed";
	return NULL;
}

static int extent_rec(void *arg, const void *rec, size_t len)
{
	struct ewalk *w = arg;
	struct fsck_ctx *c = w->c;
	unsigned long long ino = (unsigned long long)w->ino;
	uint64_t lblk = fsck_ld64(rec), pblk = fsck_ld64((const uint8_t *)rec + 8);
	uint64_t word = fsck_ld64((const uint8_t *)rec + 16), n = word & ~FS_EXTENT_STATE;
	const char *why = bad_state(w->in, word);
	if (len != 24 || why || n == 0 || lblk >= EXTENT_MAX_LBLK || n > EXTENT_MAX_LBLK - lblk ||
	    pblk == 0 || pblk + n < pblk) {
		struct fsck_item *it =
		    fsck_problem(c, FC_EXTENT_BAD,
		                 "inode %llu: extent at logical block %llu is invalid (block %llu, "
		                 "length %llu%s)",
		                 ino, (unsigned long long)lblk, (unsigned long long)pblk,
		                 (unsigned long long)n, why ? why : "");
		/* The tree is sound, the record is not: it goes (its blocks,
		 * if any, are leaks afterwards). */
		it->fixable = 1;
		it->a = w->ino;
		it->b = lblk;
		c->claims_complete = 0; /* what it maps is unknown until then */
		return 0;
	}
	if (lblk < w->prev_end) {
		fsck_problem(c, FC_EXTENT_BAD, "inode %llu: extents overlap at logical block %llu",
		             ino, (unsigned long long)lblk);
		w->ok = 0;
		return 0;
	}
	w->prev_end = lblk + n;
	if (!fsck_data_range(c, pblk, n)) {
		struct fsck_item *it = extent_outside(c, ino, lblk, pblk, n);
		it->fixable = 1; /* those blocks hold nothing of the file's anyway */
		it->a = w->ino;
		it->b = lblk;
		it->c = n;
		c->cur_outside += n;
		return 0;
	}
	fsck_claim(c, pblk, n);
	if (!(word & FS_EXTENT_STATE))
		check_data_sums(c, w->ino, lblk, pblk,
		                n); /* unwritten blocks hold nothing to check */
	uint64_t eof = (w->in->size + FS_BLOCK_SIZE - 1) / FS_BLOCK_SIZE;
	/* Unwritten extents past the end are what fallocate's KEEP_SIZE
	 * leaves: normal, as on ext4. */
	if (lblk >= eof && !(word & FS_EXTENT_STATE)) {
		struct fsck_item *it = fsck_problem(
		    c, FC_EXTENT_PAST_EOF,
		    "inode %llu: extent at logical blocks %llu..%llu lies wholly beyond the size "
		    "(%llu bytes)",
		    ino, (unsigned long long)lblk, (unsigned long long)(lblk + n - 1),
		    (unsigned long long)w->in->size);
		it->severity = FSCK_WARNING;
	}
	return 0;
}

/* A map of one extent kept in the inode: checked as a tree record would
 * be.  A tree root beside it is damage (which map is right is unknown). */
static int check_inline_extent(struct fsck_ctx *c, uint64_t ino, const struct fs_inode *in)
{
	if (in->tree_root) {
		fsck_problem(
		    c, FC_TREE,
		    "inode %llu: has an inline extent and an extent tree (root block %llu)",
		    (unsigned long long)ino, (unsigned long long)in->tree_root);
		return 0;
	}
	uint8_t rec[24];
	/* The inode's state bits (FS_INODE_INLINE_STATE) are the record's
	 * state byte: 0xa5 in either place means unwritten. */
	uint64_t state = (uint64_t)((in->flags & FS_INODE_INLINE_STATE) >> 8) << 56;
	uint64_t f[3] = {in->inline_lblk, in->rdev, in->inline_len | state};
	memcpy(rec, f, sizeof(rec));
	struct ewalk w = {c, in, ino, 0, 1};
	extent_rec(&w, rec, sizeof(rec));
	return w.ok;
}

static int check_file(struct fsck_ctx *c, uint64_t ino, const struct fs_inode *in)
{
	if (S_ISLNK(in->mode) && (in->size == 0 || in->size > SYMLINK_MAX))
		fsck_problem(c, FC_SYMLINK_SIZE, "inode %llu: symlink of size %llu (must be 1..%u)",
		             (unsigned long long)ino, (unsigned long long)in->size, SYMLINK_MAX);
	if (in->flags & FS_INODE_INLINE_EXTENT)
		return check_inline_extent(c, ino, in);
	if (in->tree_root == 0)
		return 1;
	if (!fsck_tree_ok(c, ino, in->tree_root, TREE_EXTENT))
		return 0;
	struct btree t;
	uint64_t root = in->tree_root;
	(void)btree_init_ro(&t, &c->sh.fx, &fsck_extent_ops, &root);
	struct ewalk w = {c, in, ino, 0, 1};
	int rc = btree_iter(&t, 0, UINT64_MAX, 0, extent_rec, &w);
	if (rc < 0) {
		fsck_problem(c, FC_TREE,
		             "inode %llu: extent tree (root block %llu) cannot be walked: %s",
		             (unsigned long long)ino, (unsigned long long)root, strerror(-rc));
		return 0;
	}
	return w.ok;
}

/* ---- one inode ------------------------------------------------------------- */

static void check_ibit(struct fsck_ctx *c, uint64_t ino, const struct fs_inode *in)
{
	int used = bit_test(c->ibits, ino);
	struct fsck_item *it = NULL;
	if (ino == 0) {
		if (!used)
			it = fsck_problem(c, FC_IBIT_FREE,
			                  "inode 0: reserved but free in the inode bitmap");
		if (in->mode) {
			struct fsck_item *z =
			    fsck_problem(c, FC_INODE_RESERVED,
			                 "inode 0: reserved but in use (mode 0%o)", in->mode);
			z->fixable = 1;
		}
	} else if (ino == FS_ROOT_INO && !S_ISDIR(in->mode)) {
		/* Its tree was not read as a directory: every name below it is
		 * unknown, and so are its blocks. */
		c->names_complete = c->claims_complete = 0;
		struct fsck_item *rt =
		    fsck_problem(c, FC_ROOT, "inode 1: the root directory is %s (mode 0%o)",
		                 in->mode ? "not a directory" : "free", in->mode);
		if (in->mode) { /* the root is a directory by definition */
			rt->fixable = 1;
			rt->a = ino;
			rt->b = S_IFDIR | (in->mode & 07777);
		}
		if (!used)
			it = fsck_problem(c, FC_IBIT_FREE,
			                  "inode 1: reserved but free in the inode bitmap");
	} else if (in->mode && !used) {
		it = fsck_problem(c, FC_IBIT_FREE,
		                  "inode %llu: in use (mode 0%o) but free in the inode bitmap",
		                  (unsigned long long)ino, in->mode);
	} else if (!in->mode && used) {
		it = fsck_problem(c, FC_IBIT_LEAK,
		                  "inode %llu: free but marked in use in the inode bitmap (leak)",
		                  (unsigned long long)ino);
	}
	if (it) {
		it->fixable = 1;
		it->a = ino;
	}
}

static void count_inode(struct fsck_ctx *c, uint32_t mode)
{
	c->r->inodes++;
	if (S_ISDIR(mode))
		c->r->directories++;
	else if (S_ISREG(mode))
		c->r->files++;
	else if (S_ISLNK(mode))
		c->r->symlinks++;
	else
		c->r->others++;
}

/* The type's own checks; returns 1 if the type's tree was read whole. */
static int check_type(struct fsck_ctx *c, uint64_t ino, const struct fs_inode *in)
{
	switch (in->mode & S_IFMT) {
	case S_IFREG:
	case S_IFLNK:
		return check_file(c, ino, in);
	case S_IFDIR:
		return fsck_check_dir(c, ino, in);
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		if (in->tree_root == 0)
			return 1;
		/* Its mode or its tree root is wrong: decided with the names
		 * (check_unknown), as for an unknown type. */
		c->ii[ino].flags |= II_UNKNOWN;
		c->ii[ino].tree_root = in->tree_root;
		return 1;
	}
	/* Reported once names are counted (check_unknown): a named inode is
	 * a file with a damaged mode; an unnamed one is garbage in a free
	 * slot. */
	c->ii[ino].flags |= II_UNKNOWN;
	return 1;
}

static int is_empty(const struct fs_inode *in, const struct iinfo *x)
{
	if (in->xattr_root)
		return 0;
	if (S_ISDIR(in->mode))
		return (x->flags & II_EMPTY) != 0;
	if (S_ISREG(in->mode))
		return in->tree_root == 0 && !(in->flags & FS_INODE_INLINE_EXTENT) && in->size == 0;
	if (S_ISLNK(in->mode))
		return 0; /* its target is data */
	return 1;
}

static void check_one(struct fsck_ctx *c, uint64_t ino)
{
	struct fs_inode in = {.mode = c->ii[ino].mode};
	if (ino == 0) { /* never handed out: inode_get refuses it, the table load read it */
		if (!c->rescan)
			check_ibit(c, ino, &in);
		return;
	}
	if (fsck_read_inode(c, ino, &in))
		return;
	if (!c->rescan)
		check_ibit(c, ino, &in);
	if (in.mode == 0)
		return;
	if (!c->rescan)
		count_inode(c, in.mode);
	c->cur_ino = ino;
	c->cur_claimed = c->cur_outside = 0;
	int ok = check_type(c, ino, &in);
	struct iinfo *x = &c->ii[ino];
	if (x->flags & II_UNKNOWN)
		return; /* nothing of it is claimed (see check_unknown) */
	if (in.xattr_root && (!fsck_tree_ok(c, ino, in.xattr_root, TREE_XATTR) ||
	                      !xattr_records_ok(c, ino, in.xattr_root)))
		ok = 0;
	if (!ok) {
		c->claims_complete = 0;
		return;
	}
	x->flags |= II_TREES_OK;
	if (is_empty(&in, x))
		x->flags |= II_EMPTY;
	else
		x->flags &= ~II_EMPTY;
	uint64_t held = c->cur_claimed + c->cur_outside;
	if (!c->rescan && in.blocks != held) {
		struct fsck_item *it = fsck_problem(
		    c, FC_BLOCKS,
		    "inode %llu: blocks field says %llu but its trees hold %llu blocks",
		    (unsigned long long)ino, (unsigned long long)in.blocks,
		    (unsigned long long)held);
		it->fixable = 1;
		/* Extents outside the data area are removed by their own fix,
		 * applied before this one. */
		it->a = ino;
		it->b = c->cur_claimed;
	}
}

void fsck_claim_inode(struct fsck_ctx *c, uint64_t ino)
{
	check_one(c, ino);
}

/* ---- phase 3 --------------------------------------------------------------- */

int fsck_check_inodes(struct fsck_ctx *c)
{
	const struct fs_super *sb = c->sb;
	c->ibits = calloc(sb->ibitmap_blocks, FS_BLOCK_SIZE);
	int rc = c->ibits ? fsck_read_bitmap(c, sb->ibitmap_start, sb->ibitmap_blocks, c->ibits)
	                  : -ENOMEM;
	if (!rc)
		rc = fsck_load_block_maps(c);
	if (!rc)
		rc = load_inodes(c);
	if (rc)
		return rc;
	c->names_complete = c->claims_complete = 1;
	c->root_ok = S_ISDIR(c->ii[FS_ROOT_INO].mode);
	fsck_walk_orphans(c);
	for (uint64_t ino = 0; ino < sb->inode_count; ino++) {
		check_one(c, ino);
		fsck_progress(c, "inodes", ino + 1, sb->inode_count);
	}
	fsck_check_links(c);
	return 0;
}
