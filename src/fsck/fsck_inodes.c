/*
 * fsck_inodes.c - phase 3 of a check: every inode, its trees, the
 * directory entries, link counts, the orphan list and reachability.
 *
 * Owns: the rules that tie inodes, trees and entries together.
 * May call: shared (inodes, cache), btree (btree_check, btree_iter on
 * read-only handles), dir (the name hash hook), util/checksum.
 *
 * Order: the inode table is read once into struct iinfo (mode, nlink,
 * flags), so that a directory entry can be checked against its target
 * without another read; the orphan list is walked; then each inode's trees
 * are checked with btree_check and walked, claiming their blocks (tree
 * nodes and extents) in the volume-wide claimed bitmap and counting the
 * names of each target; last come the link counts, parents and
 * reachability, which need every name counted.
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
#define DREC_HDR 18
#define DIR_HASH_SEED 0x6361697264697273ull
#define DIR_BUCKET (1ull << 16)
#define DIR_KEY_MASK (((1ull << 63) - 1) & ~(DIR_BUCKET - 1))
#define SYMLINK_MAX 4095

const struct btree_ops fsck_extent_ops = {.magic = 0x4e545843u, .min_rec = 24, .max_rec = 24};
const struct btree_ops fsck_dir_ops = {.magic = 0x52494443u, .min_rec = DREC_HDR + 1,
				       .max_rec = DREC_HDR + DIR_NAME_MAX};
const struct btree_ops fsck_xattr_ops = {.magic = 0x54415843u, .min_rec = 12,
					 .max_rec = 11 + 255 + 1024};

static const char *const tree_names[] = {"extent tree", "directory tree", "xattr tree"};

static const struct btree_ops *tree_ops(int kind)
{
	return kind == TREE_EXTENT ? &fsck_extent_ops : kind == TREE_DIR ? &fsck_dir_ops
									 : &fsck_xattr_ops;
}

static uint64_t ld64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "regular file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFIFO: return "FIFO";
	case S_IFSOCK: return "socket";
	}
	return "thing of unknown type";
}

/* ---- loading ---------------------------------------------------------------- */

static int load_bitmap(struct fsck_ctx *c, uint64_t start, uint64_t blocks, uint64_t **out)
{
	uint64_t *w = calloc(blocks, FS_BLOCK_SIZE);
	if (!w)
		return -ENOMEM;
	for (uint64_t k = 0; k < blocks; k++) {
		struct buf *b;
		int rc = cache_get(c->sh.cache, start + k, &b);
		if (rc) {
			fsck_problem(c, FC_IO, "block %llu (bitmap): cannot be read: %s",
				     (unsigned long long)(start + k), strerror(-rc));
			free(w);
			return rc;
		}
		memcpy((uint8_t *)w + k * FS_BLOCK_SIZE, b->data, FS_BLOCK_SIZE);
		cache_put(c->sh.cache, b);
	}
	*out = w;
	return 0;
}

static int read_inode(struct fsck_ctx *c, uint64_t ino, struct fs_inode *out)
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
				     (unsigned long long)(c->sb->itable_start + blk), strerror(-rc));
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

/* ---- the orphan list ------------------------------------------------------- */

/* Recovery frees every inode on the list, so a link to an inode that is
 * free, linked, or already on it must not be followed: the list is cut
 * there.  What is cut off has no names and no links, and is freed as a
 * lost orphan (which is what recovery would have done). */
static void walk_orphans(struct fsck_ctx *c)
{
	uint64_t prev = 0, cur = c->orphan_head, n = c->sb->inode_count;
	while (cur) {
		char why[96] = "";
		if (cur <= FS_ROOT_INO || cur >= n)
			snprintf(why, sizeof(why), "is not a valid inode number");
		else if (c->ii[cur].mode == 0)
			snprintf(why, sizeof(why), "is free");
		else if (c->ii[cur].flags & II_ON_LIST)
			snprintf(why, sizeof(why), "is already on the list (a cycle)");
		else if (c->ii[cur].nlink != 0)
			snprintf(why, sizeof(why), "still has %u links", c->ii[cur].nlink);
		if (why[0]) {
			char from[64];
			if (prev)
				snprintf(from, sizeof(from), "inode %llu's next link", (unsigned long long)prev);
			else
				snprintf(from, sizeof(from), "the checkpoint's head");
			struct fsck_item *it = fsck_problem(c, FC_ORPHAN_LIST,
							    "orphan list: %s names inode %llu, which %s",
							    from, (unsigned long long)cur, why);
			it->fixable = 1;
			it->a = prev;
			return;
		}
		c->ii[cur].flags |= II_ON_LIST;
		if (!c->rescan)
			c->r->orphans++;
		struct fs_inode in;
		if (read_inode(c, cur, &in))
			return;
		prev = cur;
		cur = in.orphan_next;
	}
}

/* ---- trees ----------------------------------------------------------------- */

/* Claims every node of a tree that btree_check accepted.  Levels strictly
 * decrease, so the recursion is at most BTREE_MAX_DEPTH deep. */
static int claim_nodes(struct fsck_ctx *c, uint64_t blk, uint32_t magic, int level,
		       uint64_t *bad)
{
	if (!fsck_data_range(c, blk, 1)) {
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
		rc = claim_nodes(c, ld64(n + BTREE_HDR_SIZE + 16 * i + 8), magic, lv - 1, bad);
	cache_put(c->sh.cache, b);
	return rc;
}

/* Whether a tree's root node itself is unreadable: then nothing in the
 * tree can be read, and emptying it loses nothing that could be. */
static int root_unreadable(struct fsck_ctx *c, uint64_t root, uint32_t magic)
{
	if (!fsck_data_range(c, root, 1))
		return 1;
	struct buf *b;
	if (cache_get(c->sh.cache, root, &b))
		return 1;
	uint32_t mg;
	uint16_t lv;
	memcpy(&mg, b->data, 4);
	memcpy(&lv, b->data + 4, 2);
	int bad = mg != magic || lv >= BTREE_MAX_DEPTH;
	cache_put(c->sh.cache, b);
	return bad;
}

/* btree_check, then the node claims.  Returns 1 if the tree is whole. */
static int tree_ok(struct fsck_ctx *c, uint64_t ino, uint64_t root, int kind)
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
	int unreadable = root_unreadable(c, root, ops->magic);
	if (bad)
		snprintf(why, sizeof(why), "a node pointer names block %llu, outside the data area",
			 (unsigned long long)bad);
	else if (unreadable)
		snprintf(why, sizeof(why), "its root node is not a %s node (bad magic, level or block)",
			 tree_names[kind]);
	else
		snprintf(why, sizeof(why), "a node fails the checks (magic, level, counts, key order "
					   "or bounds): %s", strerror(-rc));
	struct fsck_item *it = fsck_problem(c, FC_TREE, "inode %llu: %s (root block %llu) is damaged: %s",
					    (unsigned long long)ino, tree_names[kind],
					    (unsigned long long)root, why);
	it->a = ino;
	it->b = (uint64_t)kind;
	it->fixable = unreadable || kind == TREE_DIR;
	it->c = !unreadable; /* a directory's readable names are salvaged */
	return 0;
}

/* ---- files and symlinks: extents -------------------------------------------- */

struct ewalk {
	struct fsck_ctx *c;
	const struct fs_inode *in;
	uint64_t ino, prev_end;
	int ok;
};

static int extent_rec(void *arg, const void *rec, size_t len)
{
	struct ewalk *w = arg;
	struct fsck_ctx *c = w->c;
	unsigned long long ino = (unsigned long long)w->ino;
	uint64_t lblk = ld64(rec), pblk = ld64((const uint8_t *)rec + 8);
	uint64_t n = ld64((const uint8_t *)rec + 16);
	if (len != 24 || n == 0 || lblk >= EXTENT_MAX_LBLK || n > EXTENT_MAX_LBLK - lblk || pblk == 0 ||
	    pblk + n < pblk) {
		fsck_problem(c, FC_EXTENT_BAD,
			     "inode %llu: extent at logical block %llu is invalid (block %llu, length %llu)",
			     ino, (unsigned long long)lblk, (unsigned long long)pblk, (unsigned long long)n);
		w->ok = 0;
		return 0;
	}
	if (lblk < w->prev_end) {
		fsck_problem(c, FC_EXTENT_BAD, "inode %llu: extents overlap at logical block %llu", ino,
			     (unsigned long long)lblk);
		w->ok = 0;
		return 0;
	}
	w->prev_end = lblk + n;
	if (!fsck_data_range(c, pblk, n)) {
		struct fsck_item *it = fsck_problem(
			c, FC_EXTENT_OUTSIDE,
			"inode %llu: extent at logical block %llu maps blocks %llu..%llu, outside the "
			"data area [%llu, %llu)",
			ino, (unsigned long long)lblk, (unsigned long long)pblk,
			(unsigned long long)(pblk + n - 1), (unsigned long long)c->sb->data_start,
			(unsigned long long)c->sb->total_blocks);
		it->fixable = 1; /* those blocks hold nothing of the file's anyway */
		it->a = w->ino;
		it->b = lblk;
		it->c = n;
		c->cur_outside += n;
		return 0;
	}
	fsck_claim(c, pblk, n);
	uint64_t eof = (w->in->size + FS_BLOCK_SIZE - 1) / FS_BLOCK_SIZE;
	if (lblk >= eof) {
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

static int check_file(struct fsck_ctx *c, uint64_t ino, const struct fs_inode *in)
{
	if (S_ISLNK(in->mode) && (in->size == 0 || in->size > SYMLINK_MAX))
		fsck_problem(c, FC_SYMLINK_SIZE, "inode %llu: symlink of size %llu (must be 1..%u)",
			     (unsigned long long)ino, (unsigned long long)in->size, SYMLINK_MAX);
	if (in->tree_root == 0)
		return 1;
	if (!tree_ok(c, ino, in->tree_root, TREE_EXTENT))
		return 0;
	struct btree t;
	uint64_t root = in->tree_root;
	(void)btree_init_ro(&t, &c->sh.fx, &fsck_extent_ops, &root);
	struct ewalk w = {c, in, ino, 0, 1};
	int rc = btree_iter(&t, 0, UINT64_MAX, 0, extent_rec, &w);
	if (rc < 0) {
		fsck_problem(c, FC_TREE, "inode %llu: extent tree (root block %llu) cannot be walked: %s",
			     (unsigned long long)ino, (unsigned long long)root, strerror(-rc));
		return 0;
	}
	return w.ok;
}

/* ---- directories ----------------------------------------------------------- */

#define BUCKET_NAMES 8

struct dwalk {
	struct fsck_ctx *c;
	uint64_t dir, records;
	/* the names seen in the current hash bucket, for duplicates */
	uint64_t bucket;
	unsigned nnames;
	uint8_t lens[BUCKET_NAMES];
	char names[BUCKET_NAMES][DIR_NAME_MAX];
};

static uint64_t bucket_of(const char *name, size_t len)
{
	uint64_t h = dir_hash_hook ? dir_hash_hook(name, len)
				   : checksum64_seeded(name, len, DIR_HASH_SEED);
	uint64_t base = h & DIR_KEY_MASK;
	return base ? base : DIR_BUCKET;
}

static void check_dup_name(struct dwalk *w, const char *name, uint8_t len, const char *q)
{
	uint64_t base = bucket_of(name, len);
	if (base != w->bucket) {
		w->bucket = base;
		w->nnames = 0;
	}
	for (unsigned i = 0; i < w->nnames; i++)
		if (w->lens[i] == len && !memcmp(w->names[i], name, len)) {
			fsck_problem(w->c, FC_DENT_DUP, "directory %llu: name \"%s\" appears twice",
				     (unsigned long long)w->dir, q);
			return;
		}
	if (w->nnames < BUCKET_NAMES) {
		memcpy(w->names[w->nnames], name, len);
		w->lens[w->nnames++] = len;
	}
}

/* The entry's target, counted toward its links and reachability. */
static int known_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR:
	case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		return 1;
	}
	return 0;
}

static void count_name(struct fsck_ctx *c, uint64_t dir, uint64_t t, uint8_t type, const char *q)
{
	struct iinfo *x = &c->ii[t];
	if (x->names == 0)
		x->dtype = type;
	else if (x->dtype != type)
		x->flags |= II_DT_MIXED;
	if (known_type(x->mode) && type != IFTODT(x->mode))
		fsck_problem(c, FC_DENT_TYPE,
			     "directory %llu: entry \"%s\" has type %u but inode %llu is a %s (type %u)",
			     (unsigned long long)dir, q, type, (unsigned long long)t, type_name(x->mode),
			     (unsigned)IFTODT(x->mode));
	if (x->names < UINT32_MAX)
		x->names++;
	if (S_ISDIR(x->mode)) {
		c->ii[dir].subdirs++;
		if (x->namer)
			fsck_problem(c, FC_DIR_MULTI,
				     "directory %llu is named by more than one entry (in directories %llu "
				     "and %llu)",
				     (unsigned long long)t, (unsigned long long)x->namer,
				     (unsigned long long)dir);
	}
	if (!x->namer)
		x->namer = dir;
}

static int dir_rec(void *arg, const void *rec, size_t len)
{
	struct dwalk *w = arg;
	struct fsck_ctx *c = w->c;
	const uint8_t *p = rec;
	unsigned long long dir = (unsigned long long)w->dir, key = ld64(p);
	w->records++;
	if (len < DREC_HDR + 1 || p[17] == 0 || len != DREC_HDR + (size_t)p[17]) {
		struct fsck_item *it = fsck_problem(
			c, FC_DENT_BAD, "directory %llu: record with key %llu is malformed (%zu bytes)",
			dir, key, len);
		it->fixable = 1; /* its name and target cannot be known: drop it */
		it->a = w->dir;
		it->b = key;
		c->names_complete = 0;
		return 0;
	}
	uint64_t t = ld64(p + 8);
	uint8_t nl = p[17];
	const char *name = (const char *)p + DREC_HDR;
	char q[4 * DIR_NAME_MAX + 1];
	fsck_quote(q, sizeof(q), name, nl);
	if (memchr(name, '/', nl) || memchr(name, 0, nl))
		fsck_problem(c, FC_DENT_BAD,
			     "directory %llu: entry \"%s\" has an invalid name (contains '/' or NUL)", dir,
			     q);
	uint64_t base = bucket_of(name, nl);
	if (key < base || key >= base + DIR_BUCKET)
		fsck_problem(c, FC_DENT_KEY,
			     "directory %llu: entry \"%s\" has key %llu, outside its name's hash bucket "
			     "(lookups cannot find it)",
			     dir, q, key);
	check_dup_name(w, name, nl, q);
	const char *bad = NULL;
	if (t == 0 || t >= c->sb->inode_count)
		bad = "which is not a valid inode number";
	else if (t == FS_ROOT_INO)
		bad = "the root directory, which no entry may name";
	else if (c->ii[t].mode == 0)
		bad = "which is free";
	if (bad) {
		struct fsck_item *it = fsck_problem(c, FC_DENT_FREE,
						    "directory %llu: entry \"%s\" names inode %llu, %s",
						    dir, q, (unsigned long long)t, bad);
		it->fixable = 1;
		it->a = w->dir;
		it->b = key;
		return 0;
	}
	count_name(c, w->dir, t, p[16], q);
	return 0;
}

static int check_dir(struct fsck_ctx *c, uint64_t ino, const struct fs_inode *in)
{
	uint64_t records = 0;
	if (in->tree_root) {
		if (!tree_ok(c, ino, in->tree_root, TREE_DIR)) {
			c->names_complete = 0;
			return 0;
		}
		if (c->rescan)
			return 1; /* names were counted by the first pass */
		struct btree t;
		uint64_t root = in->tree_root;
		(void)btree_init_ro(&t, &c->sh.fx, &fsck_dir_ops, &root);
		struct dwalk *w = calloc(1, sizeof(*w));
		if (!w)
			return 0;
		w->c = c;
		w->dir = ino;
		int rc = btree_iter(&t, 0, UINT64_MAX, 0, dir_rec, w);
		records = w->records;
		free(w);
		if (rc < 0) {
			fsck_problem(c, FC_TREE,
				     "inode %llu: directory tree (root block %llu) cannot be walked: %s",
				     (unsigned long long)ino, (unsigned long long)root, strerror(-rc));
			c->names_complete = 0;
			return 0;
		}
	}
	if (!c->rescan && in->entries != records) {
		struct fsck_item *it = fsck_problem(
			c, FC_ENTRIES, "directory %llu: entries field says %llu but its tree holds %llu names",
			(unsigned long long)ino, (unsigned long long)in->entries,
			(unsigned long long)records);
		it->fixable = 1;
		it->a = ino;
		it->b = records;
	}
	if (records == 0)
		c->ii[ino].flags |= II_EMPTY;
	return 1;
}

/* ---- one inode ------------------------------------------------------------- */

static void check_ibit(struct fsck_ctx *c, uint64_t ino, const struct fs_inode *in)
{
	int used = bit_test(c->ibits, ino);
	struct fsck_item *it = NULL;
	if (ino == 0) {
		if (!used)
			it = fsck_problem(c, FC_IBIT_FREE, "inode 0: reserved but free in the inode bitmap");
		if (in->mode) {
			struct fsck_item *z = fsck_problem(c, FC_INODE_RESERVED,
							   "inode 0: reserved but in use (mode 0%o)", in->mode);
			z->fixable = 1;
		}
	} else if (ino == FS_ROOT_INO && !S_ISDIR(in->mode)) {
		fsck_problem(c, FC_ROOT, "inode 1: the root directory is %s (mode 0%o)",
			     in->mode ? "not a directory" : "free", in->mode);
		if (!used)
			it = fsck_problem(c, FC_IBIT_FREE, "inode 1: reserved but free in the inode bitmap");
	} else if (in->mode && !used) {
		it = fsck_problem(c, FC_IBIT_FREE, "inode %llu: in use (mode 0%o) but free in the inode bitmap",
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
		return check_dir(c, ino, in);
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		if (in->tree_root == 0)
			return 1;
		fsck_problem(c, FC_SPECIAL_TREE, "inode %llu: %s has a block map (root block %llu)",
			     (unsigned long long)ino, type_name(in->mode),
			     (unsigned long long)in->tree_root);
		return 0;
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
		return in->tree_root == 0 && in->size == 0;
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
	if (read_inode(c, ino, &in))
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
	if (in.xattr_root && !tree_ok(c, ino, in.xattr_root, TREE_XATTR))
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
			c, FC_BLOCKS, "inode %llu: blocks field says %llu but its trees hold %llu blocks",
			(unsigned long long)ino, (unsigned long long)in.blocks, (unsigned long long)held);
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

/* ---- links, parents, orphans ------------------------------------------------- */

static void check_orphan_flag(struct fsck_ctx *c, uint64_t ino, const struct iinfo *x)
{
	int on_list = (x->flags & II_ON_LIST) != 0, flagged = (x->flags & II_ORPHAN_FLAG) != 0;
	struct fsck_item *it = NULL;
	if (on_list && !flagged)
		it = fsck_problem(c, FC_ORPHAN_FLAG,
				  "inode %llu: on the orphan list but not flagged as an orphan",
				  (unsigned long long)ino);
	else if (!on_list && flagged && c->names_complete && x->names > 0)
		it = fsck_problem(c, FC_ORPHAN_FLAG,
				  "inode %llu: flagged as an orphan but not on the orphan list",
				  (unsigned long long)ino);
	if (it) {
		it->fixable = 1;
		it->a = ino;
		it->b = on_list;
	}
}

static void check_nlink(struct fsck_ctx *c, uint64_t ino, const struct iinfo *x)
{
	if (x->flags & II_ON_LIST) {
		if (x->names)
			fsck_problem(c, FC_ORPHAN_NAMED,
				     "inode %llu: on the orphan list but %u directory entries name it",
				     (unsigned long long)ino, x->names);
		return;
	}
	/* Nothing names it: it is unreachable, reported as such; its link
	 * count tells whether it was a lost orphan, so it stays. */
	if (x->names == 0 && ino != FS_ROOT_INO)
		return;
	int dir = S_ISDIR(x->mode);
	uint64_t want = dir ? 2ull + x->subdirs : x->names;
	if (x->nlink == want)
		return;
	struct fsck_item *it;
	if (dir)
		it = fsck_problem(c, FC_NLINK, "directory %llu: nlink %u but it has %u subdirectories "
					       "(2 + %u expected)",
				  (unsigned long long)ino, x->nlink, x->subdirs, x->subdirs);
	else
		it = fsck_problem(c, FC_NLINK, "inode %llu: nlink %u but %u directory %s", (unsigned long long)ino,
				  x->nlink, x->names, x->names == 1 ? "entry names it" : "entries name it");
	if (want <= UINT32_MAX) {
		it->fixable = 1;
		it->a = ino;
		it->b = want;
	}
}

static void check_parent(struct fsck_ctx *c, uint64_t ino, const struct iinfo *x)
{
	if (!S_ISDIR(x->mode) || (x->flags & II_ON_LIST))
		return;
	uint64_t want = ino == FS_ROOT_INO ? FS_ROOT_INO : x->namer;
	if (!want || x->parent == want)
		return;
	struct fsck_item *it = fsck_problem(
		c, FC_PARENT, "directory %llu: parent field says %llu but it is named in directory %llu",
		(unsigned long long)ino, (unsigned long long)x->parent, (unsigned long long)want);
	it->fixable = 1;
	it->a = ino;
	it->b = want;
}

/* ---- reachability ------------------------------------------------------------ */

/* A directory is reachable when the chain of directories naming it leads
 * to the root.  The verdict is found, then written along the chain, so
 * each directory is walked once; a chain longer than the inode count is a
 * cycle. */
static int dir_reachable(struct fsck_ctx *c, uint64_t ino)
{
	uint64_t n = c->sb->inode_count, cur = ino, steps = 0;
	int verdict = 0;
	for (;;) {
		struct iinfo *x = &c->ii[cur];
		if (x->flags & II_KNOWN) {
			verdict = (x->flags & II_REACH) != 0;
			break;
		}
		if (!x->namer || ++steps > n)
			break;
		cur = x->namer;
	}
	cur = ino;
	for (steps = 0; cur && steps <= n && !(c->ii[cur].flags & II_KNOWN); steps++) {
		c->ii[cur].flags |= II_KNOWN | (verdict ? II_REACH : 0);
		cur = c->ii[cur].namer;
	}
	return verdict;
}

static int mark_named(void *arg, const void *rec, size_t len)
{
	struct fsck_ctx *c = arg;
	uint64_t t = ld64((const uint8_t *)rec + 8);
	if (len >= DREC_HDR + 1 && t > 0 && t < c->sb->inode_count && c->ii[t].mode)
		c->ii[t].flags |= II_REACH | II_KNOWN;
	return 0;
}

/* A file with several names is reachable if any of its directories is:
 * only then are the reachable directories walked again. */
static void mark_hard_links(struct fsck_ctx *c)
{
	uint64_t n = c->sb->inode_count;
	for (uint64_t d = 1; d < n; d++) {
		const struct iinfo *x = &c->ii[d];
		if (!S_ISDIR(x->mode) || !(x->flags & II_REACH))
			continue;
		struct fs_inode in;
		if (read_inode(c, d, &in) || !in.tree_root)
			continue;
		struct btree t;
		(void)btree_init_ro(&t, &c->sh.fx, &fsck_dir_ops, &in.tree_root);
		(void)btree_iter(&t, 0, UINT64_MAX, 0, mark_named, c);
		fsck_progress(c, "hard links", d, n);
	}
}

static void report_unreachable(struct fsck_ctx *c, uint64_t ino, const struct iinfo *x)
{
	struct fs_inode in;
	if (read_inode(c, ino, &in))
		return;
	int lost_orphan = x->nlink == 0 && !S_ISDIR(x->mode);
	int empty = (x->flags & II_EMPTY) != 0, garbage = (x->flags & II_UNKNOWN) != 0;
	/* Only what no entry names is freed: an inode named from an
	 * unreachable directory stays with that directory. */
	int frees = x->names == 0 &&
		    (garbage || ((x->flags & II_TREES_OK) && (empty || lost_orphan)));
	const char *verdict = garbage && frees ? "its type is unknown (garbage): repair frees it"
			      : frees && empty ? "it holds nothing: repair frees it"
			      : frees ? "it has no links (a lost orphan): repair frees it, as recovery would"
			      : x->names ? "it comes back with the unreachable directory that names it"
					 : S_ISDIR(x->mode) ? "it holds names: repair links it into /lost+found"
							    : "it holds data: repair links it into /lost+found";
	struct fsck_item *it = fsck_problem(
		c, FC_UNREACHABLE,
		"inode %llu: unreachable from the root and not an orphan (leak): %s, %llu bytes, nlink "
		"%u, named by %u %s; %s",
		(unsigned long long)ino, type_name(x->mode), (unsigned long long)in.size, x->nlink,
		x->names, x->names == 1 ? "entry" : "entries", verdict);
	/* What nothing names but holds something is never destroyed: it is
	 * given a name instead (the top of a detached subtree brings the
	 * rest back with it). */
	it->fixable = x->names == 0;
	it->c = !frees;
	it->a = ino;
}

static void check_reachability(struct fsck_ctx *c)
{
	uint64_t n = c->sb->inode_count, uncertain = 0;
	c->ii[FS_ROOT_INO].flags |= II_KNOWN | II_REACH;
	for (uint64_t ino = 2; ino < n; ino++) {
		struct iinfo *x = &c->ii[ino];
		if (!x->mode)
			continue;
		if (S_ISDIR(x->mode))
			dir_reachable(c, ino);
		else if (x->namer && dir_reachable(c, x->namer))
			x->flags |= II_KNOWN | II_REACH;
		else if (x->names > 1)
			uncertain++;
	}
	if (uncertain)
		mark_hard_links(c);
	for (uint64_t ino = 2; ino < n; ino++) {
		const struct iinfo *x = &c->ii[ino];
		if (x->mode && !(x->flags & (II_REACH | II_ON_LIST)))
			report_unreachable(c, ino, x);
	}
}

/* An inode of unknown type claims nothing.  That is right for garbage in
 * a free slot (nothing names it: it is freed as unreachable), but a named
 * one may be a file whose mode alone is damaged, and its blocks must not
 * be taken for leaks. */
static void check_unknown(struct fsck_ctx *c)
{
	for (uint64_t ino = 1; ino < c->sb->inode_count; ino++) {
		const struct iinfo *x = &c->ii[ino];
		if (!(x->flags & II_UNKNOWN))
			continue;
		struct fsck_item *it = fsck_problem(c, FC_MODE, "inode %llu: unknown file type in mode 0%o",
						    (unsigned long long)ino, x->mode);
		if (!x->names && c->names_complete)
			continue; /* garbage: freed as unreachable */
		c->claims_complete = 0;
		/* The entries naming it say what it is, if they agree. */
		uint32_t mode = (x->mode & 07777) | DTTOIF(x->dtype);
		if (c->names_complete && !(x->flags & II_DT_MIXED) && known_type(mode)) {
			it->fixable = 1;
			it->a = ino;
			it->b = mode;
			snprintf(it->msg + strlen(it->msg), sizeof(it->msg) - strlen(it->msg),
				 "; its %u %s it a %s", x->names, x->names == 1 ? "entry makes" : "entries make",
				 type_name(mode));
		}
	}
}

static void check_links(struct fsck_ctx *c)
{
	uint64_t n = c->sb->inode_count;
	check_unknown(c);
	for (uint64_t ino = 1; ino < n; ino++) {
		const struct iinfo *x = &c->ii[ino];
		if (!x->mode)
			continue;
		check_orphan_flag(c, ino, x);
		if (!c->names_complete)
			continue;
		check_nlink(c, ino, x);
		check_parent(c, ino, x);
	}
	if (c->names_complete && c->root_ok)
		check_reachability(c);
}

/* ---- phase 3 --------------------------------------------------------------- */

int fsck_check_inodes(struct fsck_ctx *c)
{
	const struct fs_super *sb = c->sb;
	int rc = load_bitmap(c, sb->ibitmap_start, sb->ibitmap_blocks, &c->ibits);
	if (!rc)
		rc = load_bitmap(c, sb->bbitmap_start, sb->bbitmap_blocks, &c->bbits);
	if (!rc)
		rc = load_inodes(c);
	c->claimed = calloc((sb->total_blocks + 63) / 64, 8);
	if (!rc && !c->claimed)
		rc = -ENOMEM;
	if (rc)
		return rc;
	c->names_complete = c->claims_complete = 1;
	c->root_ok = S_ISDIR(c->ii[FS_ROOT_INO].mode);
	walk_orphans(c);
	for (uint64_t ino = 0; ino < sb->inode_count; ino++) {
		check_one(c, ino);
		fsck_progress(c, "inodes", ino + 1, sb->inode_count);
	}
	check_links(c);
	return 0;
}
