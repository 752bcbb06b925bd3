/*
 * fsck_links.c - phase 3, once every name is counted: the orphan list,
 * link counts, parents, inodes whose type is in doubt, and reachability
 * from the root.
 *
 * Owns: the rules tying inodes to the names and lists that keep them.
 * May call: btree (btree_iter, read-only), shared (inodes).
 *
 * Everything here is gated on c->names_complete: with a directory tree
 * unread, a name count is a guess, and a guess must not change nlink or
 * free an inode.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/format.h"
#include "fsck/fsck_internal.h"

#define DREC_HDR FSCK_DREC_HDR

/* ---- the orphan list ------------------------------------------------------- */

/* Recovery frees every inode on the list, so a link to an inode that is
 * free, linked, or already on it must not be followed: the list is cut
 * there.  What is cut off has no names and no links, and is freed as a
 * lost orphan (which is what recovery would have done). */
void fsck_walk_orphans(struct fsck_ctx *c)
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
			snprintf(why, sizeof(why), "still has %u link%s", c->ii[cur].nlink,
			         c->ii[cur].nlink == 1 ? "" : "s");
		if (why[0]) {
			char from[64];
			if (prev)
				snprintf(from, sizeof(from), "inode %llu's next link",
				         (unsigned long long)prev);
			else
				snprintf(from, sizeof(from), "the checkpoint's head");
			struct fsck_item *it = fsck_problem(
			    c, FC_ORPHAN_LIST, "orphan list: %s names inode %llu, which %s", from,
			    (unsigned long long)cur, why);
			it->fixable = 1;
			it->a = prev;
			return;
		}
		c->ii[cur].flags |= II_ON_LIST;
		if (!c->rescan)
			c->r->orphans++;
		struct fs_inode in;
		if (fsck_read_inode(c, cur, &in))
			return;
		prev = cur;
		cur = in.orphan_next;
	}
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
			fsck_problem(
			    c, FC_ORPHAN_NAMED,
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
		it = fsck_problem(c, FC_NLINK,
		                  "directory %llu: nlink %u but it has %u subdirectories "
		                  "(2 + %u expected)",
		                  (unsigned long long)ino, x->nlink, x->subdirs, x->subdirs);
	else
		it = fsck_problem(c, FC_NLINK, "inode %llu: nlink %u but %u directory %s",
		                  (unsigned long long)ino, x->nlink, x->names,
		                  x->names == 1 ? "entry names it" : "entries name it");
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
	    c, FC_PARENT,
	    "directory %llu: parent field says %llu but it is named in directory %llu",
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
	uint64_t t = fsck_ld64((const uint8_t *)rec + 8);
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
		if (fsck_read_inode(c, d, &in) || !in.tree_root)
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
	if (fsck_read_inode(c, ino, &in))
		return;
	int lost_orphan = x->nlink == 0 && !S_ISDIR(x->mode);
	int empty = (x->flags & II_EMPTY) != 0;
	int garbage = (x->flags & II_UNKNOWN) && !fsck_known_type(x->mode);
	/* Only what no entry names is freed: an inode named from an
	 * unreachable directory stays with that directory. */
	int frees =
	    x->names == 0 && (garbage || ((x->flags & II_TREES_OK) && (empty || lost_orphan)));
	const char *verdict =
	    garbage && frees ? "its type is unknown (garbage): repair frees it"
	    : frees && empty ? "it holds nothing: repair frees it"
	    : frees          ? "it has no links (a lost orphan): repair frees it, as recovery would"
	    : x->names       ? "it comes back with the unreachable directory that names it"
	    : S_ISDIR(x->mode) ? "it holds names: repair links it into /lost+found"
	                       : "it holds data: repair links it into /lost+found";
	struct fsck_item *it = fsck_problem(
	    c, FC_UNREACHABLE,
	    "inode %llu: unreachable from the root and not an orphan (leak): %s, %llu bytes, nlink "
	    "%u, named by %u %s; %s",
	    (unsigned long long)ino, fsck_type_name(x->mode), (unsigned long long)in.size, x->nlink,
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
	int doubt = 0;
	for (uint64_t ino = 1; ino < c->sb->inode_count; ino++) {
		const struct iinfo *x = &c->ii[ino];
		if (!(x->flags & II_UNKNOWN) || ino == FS_ROOT_INO)
			continue; /* the root's type is FC_ROOT's */
		int known = fsck_known_type(x->mode);
		int special = known && !S_ISREG(x->mode) && !S_ISDIR(x->mode) && !S_ISLNK(x->mode);
		struct fsck_item *it;
		if (!known)
			it = fsck_problem(c, FC_MODE, "inode %llu: unknown file type in mode 0%o",
			                  (unsigned long long)ino, x->mode);
		else if (special)
			it = fsck_problem(c, FC_SPECIAL_TREE,
			                  "inode %llu: %s has a block map (root block %llu)",
			                  (unsigned long long)ino, fsck_type_name(x->mode),
			                  (unsigned long long)x->tree_root);
		else
			it = fsck_problem(c, FC_MODE,
			                  "inode %llu: its type (%s) does not match its tree",
			                  (unsigned long long)ino, fsck_type_name(x->mode));
		if (!known && !x->names && c->names_complete)
			continue; /* garbage: freed as unreachable */
		c->claims_complete = 0;
		doubt = 1;
		/* The entries naming it say what it is, if they agree (and, for
		 * a special file with a tree, if they name a type with one). */
		uint32_t mode = (x->mode & 07777) | DTTOIF(x->dtype);
		int has_tree = S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode);
		if (c->names_complete && x->names && !(x->flags & II_DT_MIXED) &&
		    fsck_known_type(mode) && (mode & S_IFMT) != (x->mode & S_IFMT) &&
		    (!special || has_tree)) {
			it->code = FC_MODE;
			it->fixable = 1;
			it->a = ino;
			it->b = mode;
			snprintf(it->msg + strlen(it->msg), sizeof(it->msg) - strlen(it->msg),
			         "; its %u %s it a %s", x->names,
			         x->names == 1 ? "entry makes" : "entries make",
			         fsck_type_name(mode));
		}
	}
	/* A named inode whose type is in doubt may be a directory whose
	 * names were not counted: link counts and reachability wait for the
	 * round after its mode is fixed, or they would orphan its children. */
	if (doubt)
		c->names_complete = 0;
}

void fsck_check_links(struct fsck_ctx *c)
{
	uint64_t n = c->sb->inode_count;
	/* Trees sharing blocks (a root pointer that names another inode's
	 * tree) count the same names twice: nothing is decided from names
	 * until a person has settled who owns what. */
	if (c->ndup)
		c->names_complete = 0;
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
