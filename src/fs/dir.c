/*
 * dir.c - directories: entries in the generic B+tree, keyed by name hash.
 *
 * Owns: directory-tree nodes and the entry format
 *   {u64 key, u64 ino, u8 type, u8 namelen, name[namelen]} (19..273 bytes).
 * May call: btree, checksum (XXH3 for the name hash).
 *
 * Keys and collisions: a name's hash picks a bucket of 2^16 consecutive
 * keys, base = XXH3(name) & 0x7fffffffffff0000 (a base of 0 is moved to
 * 0x10000).  The entry takes the lowest free key of its bucket, so names
 * whose hashes collide get distinct keys, and a key never changes while
 * the entry exists.  Lookup scans the bucket's entries (almost always one)
 * and compares names.  A bucket holds at most 65536 names: beyond that
 * insert gives -ENOSPC (never with a real hash).
 *
 * Readdir cookies: the cookie after an entry is its key + 1, and a walk
 * from cookie c visits the keys >= c.  Keys are >= 0x10000 and < 2^63, so
 * cookies are >= 0x10001 (never 0..2) and positive as an off_t, and they
 * stay valid across any insert, remove or split of other entries.
 */
#include "fs/dir.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fs/btree.h"
#include "fs/format.h"
#include "fs/fsctx.h"
#include "util/checksum.h"

#define DIR_NODE_MAGIC 0x52494443u  /* "CDIR" */
#define DIR_HASH_SEED 0x6361697264697273ull
#define DIR_BUCKET_BITS 16
#define DIR_BUCKET_SIZE (1ull << DIR_BUCKET_BITS)
#define DIR_KEY_MASK (((1ull << 63) - 1) & ~(DIR_BUCKET_SIZE - 1))
#define DREC_HDR 18 /* key, ino, type, namelen */

uint64_t (*dir_hash_hook)(const char *name, size_t namelen);

static const struct btree_ops dir_ops = {
	.magic = DIR_NODE_MAGIC,
	.node_size = 0,
	.min_rec = DREC_HDR + 1,
	.max_rec = DREC_HDR + DIR_NAME_MAX,
};

/* A decoded entry; name points into the record. */
struct dent {
	uint64_t key, ino;
	uint8_t type;
	uint8_t namelen;
	const char *name;
};

static int dent_decode(const void *rec, size_t len, struct dent *d)
{
	const uint8_t *p = rec;
	if (len < DREC_HDR + 1)
		return -EUCLEAN;
	memcpy(&d->key, p, 8);
	memcpy(&d->ino, p + 8, 8);
	d->type = p[16];
	d->namelen = p[17];
	d->name = (const char *)p + DREC_HDR;
	if (d->namelen == 0 || len != DREC_HDR + (size_t)d->namelen)
		return -EUCLEAN;
	return 0;
}

static size_t dent_encode(uint8_t *p, uint64_t key, uint64_t ino, uint8_t type, const char *name,
			  size_t namelen)
{
	memcpy(p, &key, 8);
	memcpy(p + 8, &ino, 8);
	p[16] = type;
	p[17] = (uint8_t)namelen;
	memcpy(p + DREC_HDR, name, namelen);
	return DREC_HDR + namelen;
}

static uint64_t bucket_base(const char *name, size_t namelen)
{
	uint64_t h = dir_hash_hook ? dir_hash_hook(name, namelen)
				   : checksum64_seeded(name, namelen, DIR_HASH_SEED);
	uint64_t base = h & DIR_KEY_MASK;
	return base ? base : DIR_BUCKET_SIZE; /* keys stay >= 0x10000: cookies > 2 */
}

static bool name_ok(const char *name, size_t namelen)
{
	return name && namelen >= 1 && namelen <= DIR_NAME_MAX;
}

/* What a bucket scan learns: the entry for the name, and the lowest key of
 * the bucket not in use. */
struct find {
	const char *name;
	size_t namelen;
	bool found;
	struct dent d;
	uint64_t next_free;
};

static int find_cb(void *arg, const void *rec, size_t len)
{
	struct find *f = arg;
	struct dent d;
	int err = dent_decode(rec, len, &d);
	if (err)
		return err;
	/* Keys arrive in ascending order, so the first gap is final. */
	if (d.key == f->next_free)
		f->next_free++;
	if (d.namelen == f->namelen && memcmp(d.name, f->name, f->namelen) == 0) {
		f->found = true;
		f->d = d;
		return 1;
	}
	return 0;
}

static int find(struct btree *t, const char *name, size_t namelen, struct find *f)
{
	uint64_t base = bucket_base(name, namelen);
	memset(f, 0, sizeof(*f));
	f->name = name;
	f->namelen = namelen;
	f->next_free = base;
	/* No copy: find_cb does not modify the tree (f->d.name is not used
	 * after the scan). */
	int err = btree_iter(t, base, base + DIR_BUCKET_SIZE - 1, 0, find_cb, f);
	return err < 0 ? err : 0;
}

static void open_rw(struct btree *t, struct fsctx *fx, struct fs_inode *dir)
{
	(void)btree_init(t, fx, &dir_ops, &dir->tree_root, &dir->blocks);
}

static void open_ro(struct btree *t, struct fsctx *fx, const struct fs_inode *dir)
{
	(void)btree_init_ro(t, fx, &dir_ops, &dir->tree_root);
}

int dir_lookup(struct fsctx *fx, const struct fs_inode *dir, const char *name, size_t namelen,
	       uint64_t *ino, uint8_t *type)
{
	if (!name_ok(name, namelen))
		return -ENOENT;
	struct btree t;
	struct find f;
	open_ro(&t, fx, dir);
	int err = find(&t, name, namelen, &f);
	if (err)
		return err;
	if (!f.found)
		return -ENOENT;
	if (ino)
		*ino = f.d.ino;
	if (type)
		*type = f.d.type;
	return 0;
}

int dir_insert(struct fsctx *fx, struct fs_inode *dir, const char *name, size_t namelen,
	       uint64_t ino, uint8_t type)
{
	if (!name_ok(name, namelen))
		return namelen > DIR_NAME_MAX ? -ENAMETOOLONG : -EINVAL;
	struct btree t;
	struct find f;
	open_rw(&t, fx, dir);
	int err = find(&t, name, namelen, &f);
	if (err)
		return err;
	if (f.found)
		return -EEXIST;
	if (f.next_free >= bucket_base(name, namelen) + DIR_BUCKET_SIZE)
		return -ENOSPC; /* 65536 names share this hash */
	uint8_t rec[DREC_HDR + DIR_NAME_MAX];
	size_t len = dent_encode(rec, f.next_free, ino, type, name, namelen);
	err = btree_insert(&t, rec, len);
	if (err)
		return err;
	dir->entries++;
	return 0;
}

int dir_remove(struct fsctx *fx, struct fs_inode *dir, const char *name, size_t namelen)
{
	if (!name_ok(name, namelen))
		return -ENOENT;
	struct btree t;
	struct find f;
	open_rw(&t, fx, dir);
	int err = find(&t, name, namelen, &f);
	if (err)
		return err;
	if (!f.found)
		return -ENOENT;
	err = btree_delete(&t, f.d.key);
	if (err)
		return err;
	if (dir->entries)
		dir->entries--;
	return 0;
}

struct walk {
	dir_walk_fn fn;
	void *arg;
};

static int walk_cb(void *arg, const void *rec, size_t len)
{
	struct walk *w = arg;
	struct dent d;
	int err = dent_decode(rec, len, &d);
	if (err)
		return err;
	return w->fn(w->arg, d.name, d.namelen, d.ino, d.type, d.key + 1);
}

int dir_walk(struct fsctx *fx, const struct fs_inode *dir, uint64_t cookie, dir_walk_fn fn, void *arg)
{
	struct btree t;
	struct walk w = { fn, arg };
	open_ro(&t, fx, dir);
	/* The handle reads dir->tree_root afresh for every leaf, and leaves
	 * are copied, so fn may add or remove entries of this directory. */
	return btree_iter(&t, cookie < 3 ? 0 : cookie, UINT64_MAX, BTREE_ITER_COPY, walk_cb, &w);
}

int dir_destroy(struct fsctx *fx, struct fs_inode *dir)
{
	if (dir->entries != 0)
		return -ENOTEMPTY;
	struct btree t;
	open_rw(&t, fx, dir);
	return btree_destroy(&t, NULL, NULL);
}
