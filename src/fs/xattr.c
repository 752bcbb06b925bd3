/*
 * xattr.c - extended attributes in the generic B+tree.
 *
 * Owns: xattr-tree nodes and the record format
 *   {u64 key, u8 namelen, u16 valuelen, name[namelen], value[valuelen]}.
 * May call: btree, checksum.
 *
 * Keys work as in directories (dir.c): a name's hash picks a bucket of
 * 2^16 keys and the record takes the lowest free key of its bucket, so
 * colliding names get distinct keys; lookup scans the bucket.
 */
#include "fs/xattr.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#include "fs/btree.h"
#include "fs/format.h"
#include "util/checksum.h"

#define XATTR_NODE_MAGIC 0x54415843u /* "CXAT" */
#define XATTR_HASH_SEED 0x78617474722d6b79ull
#define BUCKET (1ull << 16)
#define KEY_MASK (((1ull << 63) - 1) & ~(BUCKET - 1))
#define XREC_HDR 11 /* key, namelen, valuelen */

static const struct btree_ops xattr_ops = {
	.magic = XATTR_NODE_MAGIC,
	.node_size = 0,
	.min_rec = XREC_HDR + 1,
	.max_rec = XREC_HDR + XATTR_NAME_MAX + XATTR_VALUE_MAX,
};

struct xrec {
	uint64_t key;
	size_t namelen, vlen;
	const char *name;
	const uint8_t *value;
};

static int decode(const void *rec, size_t len, struct xrec *x)
{
	const uint8_t *p = rec;
	if (len < XREC_HDR + 1)
		return -EUCLEAN;
	uint16_t vlen;
	memcpy(&x->key, p, 8);
	memcpy(&vlen, p + 9, 2);
	x->namelen = p[8];
	x->vlen = vlen;
	x->name = (const char *)p + XREC_HDR;
	x->value = p + XREC_HDR + x->namelen;
	if (x->namelen == 0 || len != XREC_HDR + x->namelen + x->vlen)
		return -EUCLEAN;
	return 0;
}

static uint64_t bucket_of(const char *name, size_t namelen)
{
	uint64_t base = checksum64_seeded(name, namelen, XATTR_HASH_SEED) & KEY_MASK;
	return base ? base : BUCKET;
}

struct xfind {
	const char *name;
	size_t namelen;
	bool found;
	uint64_t key, next_free;
	void *buf; /* where to copy the value, if found */
	size_t size;
	ssize_t vlen;
};

static int find_cb(void *arg, const void *rec, size_t len)
{
	struct xfind *f = arg;
	struct xrec x;
	int err = decode(rec, len, &x);
	if (err)
		return err;
	if (x.key == f->next_free)
		f->next_free++;
	if (x.namelen != f->namelen || memcmp(x.name, f->name, x.namelen))
		return 0;
	f->found = true;
	f->key = x.key;
	f->vlen = (ssize_t)x.vlen;
	if (f->buf && f->size >= x.vlen)
		memcpy(f->buf, x.value, x.vlen);
	return 1;
}

static int find(struct btree *t, const char *name, size_t namelen, struct xfind *f)
{
	uint64_t base = bucket_of(name, namelen);
	f->name = name;
	f->namelen = namelen;
	f->next_free = base;
	int err = btree_iter(t, base, base + BUCKET - 1, 0, find_cb, f);
	return err < 0 ? err : 0;
}

static bool name_ok(size_t namelen)
{
	return namelen >= 1 && namelen <= XATTR_NAME_MAX;
}

int xattr_set(struct fsctx *fx, struct fs_inode *ino, const char *name, size_t namelen,
	      const void *value, size_t len, int flags)
{
	if (!name_ok(namelen))
		return namelen ? -ERANGE : -EINVAL;
	if (len > XATTR_VALUE_MAX)
		return -E2BIG;
	struct btree t;
	(void)btree_init(&t, fx, &xattr_ops, &ino->xattr_root, &ino->blocks);
	struct xfind f = {0};
	int err = find(&t, name, namelen, &f);
	if (err)
		return err;
	if (f.found && (flags & XATTR_SET_CREATE))
		return -EEXIST;
	if (!f.found && (flags & XATTR_SET_REPLACE))
		return -ENODATA;
	uint64_t key = f.found ? f.key : f.next_free;
	if (!f.found && key >= bucket_of(name, namelen) + BUCKET)
		return -ENOSPC;
	uint8_t rec[XREC_HDR + XATTR_NAME_MAX + XATTR_VALUE_MAX];
	uint16_t vlen = (uint16_t)len;
	memcpy(rec, &key, 8);
	rec[8] = (uint8_t)namelen;
	memcpy(rec + 9, &vlen, 2);
	memcpy(rec + XREC_HDR, name, namelen);
	if (len)
		memcpy(rec + XREC_HDR + namelen, value, len);
	size_t rlen = XREC_HDR + namelen + len;
	if (!f.found)
		return btree_insert(&t, rec, rlen);
	if ((size_t)f.vlen == len)
		return btree_update(&t, key, rec, rlen);
	/* Another length: delete, then insert (the key stays free meanwhile). */
	err = btree_delete(&t, key);
	return err ? err : btree_insert(&t, rec, rlen);
}

ssize_t xattr_get(struct fsctx *fx, const struct fs_inode *ino, const char *name, size_t namelen,
		  void *buf, size_t size)
{
	if (!name_ok(namelen))
		return namelen ? -ERANGE : -EINVAL;
	struct btree t;
	(void)btree_init_ro(&t, fx, &xattr_ops, &ino->xattr_root);
	struct xfind f = {.buf = buf, .size = size};
	int err = find(&t, name, namelen, &f);
	if (err)
		return err;
	if (!f.found)
		return -ENODATA;
	if (size && (size_t)f.vlen > size)
		return -ERANGE;
	return f.vlen;
}

int xattr_remove(struct fsctx *fx, struct fs_inode *ino, const char *name, size_t namelen)
{
	if (!name_ok(namelen))
		return namelen ? -ERANGE : -EINVAL;
	struct btree t;
	(void)btree_init(&t, fx, &xattr_ops, &ino->xattr_root, &ino->blocks);
	struct xfind f = {0};
	int err = find(&t, name, namelen, &f);
	if (err)
		return err;
	return f.found ? btree_delete(&t, f.key) : -ENODATA;
}

struct xlist {
	char *buf;
	size_t size, used;
};

static int list_cb(void *arg, const void *rec, size_t len)
{
	struct xlist *l = arg;
	struct xrec x;
	int err = decode(rec, len, &x);
	if (err)
		return err;
	if (l->size && l->used + x.namelen + 1 <= l->size) {
		memcpy(l->buf + l->used, x.name, x.namelen);
		l->buf[l->used + x.namelen] = 0;
	}
	l->used += x.namelen + 1;
	return 0;
}

ssize_t xattr_list(struct fsctx *fx, const struct fs_inode *ino, char *buf, size_t size)
{
	struct btree t;
	(void)btree_init_ro(&t, fx, &xattr_ops, &ino->xattr_root);
	struct xlist l = {buf, size, 0};
	int err = btree_iter(&t, 0, UINT64_MAX, 0, list_cb, &l);
	if (err < 0)
		return err;
	if (size && l.used > size)
		return -ERANGE;
	return (ssize_t)l.used;
}

int xattr_destroy(struct fsctx *fx, struct fs_inode *ino)
{
	struct btree t;
	(void)btree_init(&t, fx, &xattr_ops, &ino->xattr_root, &ino->blocks);
	return btree_destroy(&t, NULL, NULL);
}
