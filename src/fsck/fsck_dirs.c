/*
 * fsck_dirs.c - phase 3, directories: every record of a directory's tree,
 * and the names it gives to other inodes.
 *
 * Owns: the rules for directory entries (record format, name, key in the
 * name's hash bucket, no duplicate name, a target in use of the type the
 * entry says) and the name counts that link counts and reachability use.
 * May call: btree (btree_iter on read-only handles), dir (the hash hook),
 * util/checksum.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/dir.h"
#include "fsck/fsck_internal.h"
#include "util/checksum.h"

#define DREC_HDR FSCK_DREC_HDR
#define DIR_HASH_SEED 0x6361697264697273ull
#define DIR_BUCKET (1ull << 16)
#define DIR_KEY_MASK (((1ull << 63) - 1) & ~(DIR_BUCKET - 1))

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
	uint64_t h =
	    dir_hash_hook ? dir_hash_hook(name, len) : checksum64_seeded(name, len, DIR_HASH_SEED);
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
/* A directory named twice: its parent field tells which name is real
 * when it matches one of the two; the other entry is removed. */
static void report_multi(struct fsck_ctx *c, uint64_t dir, uint64_t key, uint64_t t, const char *q)
{
	struct iinfo *x = &c->ii[t];
	struct fsck_item *it = fsck_problem(
	    c, FC_DIR_MULTI,
	    "directory %llu is named by more than one entry (in directories %llu and %llu, as "
	    "\"%s\"); its parent field says %llu",
	    (unsigned long long)t, (unsigned long long)x->namer, (unsigned long long)dir, q,
	    (unsigned long long)x->parent);
	int first_right = x->parent == x->namer, this_right = x->parent == dir;
	if (first_right == this_right)
		return; /* neither or both (a directory naming itself twice) */
	it->fixable = 1;
	it->a = first_right ? dir : x->namer;
	it->b = first_right ? key : x->namer_key;
	if (this_right) {
		x->namer = dir;
		x->namer_key = key;
	}
}

static void count_name(struct fsck_ctx *c, uint64_t dir, uint64_t key, uint64_t t, uint8_t type,
                       const char *q)
{
	struct iinfo *x = &c->ii[t];
	if (x->names == 0)
		x->dtype = type;
	else if (x->dtype != type)
		x->flags |= II_DT_MIXED;
	if (fsck_known_type(x->mode) && type != IFTODT(x->mode)) {
		struct fsck_item *it = fsck_problem(
		    c, FC_DENT_TYPE,
		    "directory %llu: entry \"%s\" has type %u but inode %llu is a %s (type %u)",
		    (unsigned long long)dir, q, type, (unsigned long long)t,
		    fsck_type_name(x->mode), (unsigned)IFTODT(x->mode));
		/* As e2fsck does: the inode's valid mode decides, and the
		 * entry's type is rewritten to match it.  Not when a directory
		 * is involved or the inode's tree disagrees with its mode:
		 * then the names decide what the inode is (II_UNKNOWN). */
		it->fixable = !S_ISDIR(x->mode) && type != DT_DIR && !(x->flags & II_UNKNOWN);
		it->a = dir;
		it->b = key;
		it->c = IFTODT(x->mode);
	}
	if (x->names < UINT32_MAX)
		x->names++;
	if (S_ISDIR(x->mode)) {
		c->ii[dir].subdirs++;
		if (x->namer)
			report_multi(c, dir, key, t, q);
	}
	if (!x->namer) {
		x->namer = dir;
		x->namer_key = key;
	}
}

static int dir_rec(void *arg, const void *rec, size_t len)
{
	struct dwalk *w = arg;
	struct fsck_ctx *c = w->c;
	const uint8_t *p = rec;
	unsigned long long dir = (unsigned long long)w->dir, key = fsck_ld64(p);
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
	uint64_t t = fsck_ld64(p + 8);
	uint8_t nl = p[17];
	const char *name = (const char *)p + DREC_HDR;
	char q[4 * DIR_NAME_MAX + 1];
	fsck_quote(q, sizeof(q), name, nl);
	if (memchr(name, '/', nl) || memchr(name, 0, nl)) {
		struct fsck_item *it = fsck_problem(
		    c, FC_DENT_BAD,
		    "directory %llu: entry \"%s\" has an invalid name (contains '/' or NUL)", dir,
		    q);
		/* No path can name it: repair drops the entry, and the inode, if
		 * no other name is left, goes to lost+found. */
		it->fixable = 1;
		it->a = w->dir;
		it->b = key;
	}
	uint64_t base = bucket_of(name, nl);
	if (key < base || key >= base + DIR_BUCKET) {
		struct fsck_item *it = fsck_problem(
		    c, FC_DENT_KEY,
		    "directory %llu: entry \"%s\" has key %llu, outside its name's hash bucket "
		    "(lookups cannot find it)",
		    dir, q, key);
		it->fixable = 1;
		it->a = w->dir;
		it->b = key;
	}
	check_dup_name(w, name, nl, q);
	const char *bad = NULL;
	if (t == 0 || t >= c->sb->inode_count)
		bad = "which is not a valid inode number";
	else if (t == FS_ROOT_INO)
		bad = "the root directory, which no entry may name";
	else if (c->ii[t].mode == 0)
		bad = "which is free";
	if (bad) {
		struct fsck_item *it = fsck_problem(
		    c, FC_DENT_FREE, "directory %llu: entry \"%s\" names inode %llu, %s", dir, q,
		    (unsigned long long)t, bad);
		it->fixable = 1;
		it->a = w->dir;
		it->b = key;
		return 0;
	}
	count_name(c, w->dir, key, t, p[16], q);
	return 0;
}

int fsck_check_dir(struct fsck_ctx *c, uint64_t ino, const struct fs_inode *in)
{
	uint64_t records = 0;
	if (in->tree_root) {
		if (!fsck_tree_ok(c, ino, in->tree_root, TREE_DIR)) {
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
			fsck_problem(
			    c, FC_TREE,
			    "inode %llu: directory tree (root block %llu) cannot be walked: %s",
			    (unsigned long long)ino, (unsigned long long)root, strerror(-rc));
			c->names_complete = 0;
			return 0;
		}
	}
	if (!c->rescan && in->entries != records) {
		struct fsck_item *it = fsck_problem(
		    c, FC_ENTRIES,
		    "directory %llu: entries field says %llu but its tree holds %llu names",
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
