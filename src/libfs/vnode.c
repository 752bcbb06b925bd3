/*
 * vnode.c - the in-memory inodes of libfs: a hash table from inode number
 * to the vnode that counts opens and holds the undigested-data index.
 *
 * Owns: struct vnode.  May call: dindex, shared (the inode buffer an open
 * vnode holds).  Caller holds fs->lock exclusively for changes (vnode_find
 * is safe under the shared lock).
 */
#include <stdlib.h>

#include "libfs/fs_internal.h"

static size_t slot(const struct cairn_fs *fs, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 20) & (fs->vtab_size - 1);
}

struct vnode *vnode_find(struct cairn_fs *fs, uint64_t ino)
{
	if (!fs->vtab)
		return NULL;
	for (struct vnode *v = fs->vtab[slot(fs, ino)]; v; v = v->hnext)
		if (v->ino == ino)
			return v;
	return NULL;
}

static int grow(struct cairn_fs *fs)
{
	size_t nsize = fs->vtab_size ? fs->vtab_size * 2 : 1024;
	struct vnode **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return -1;
	struct vnode **old = fs->vtab;
	size_t osize = fs->vtab_size;
	fs->vtab = nt;
	fs->vtab_size = nsize;
	for (size_t i = 0; i < osize; i++) {
		struct vnode *v = old[i], *n;
		for (; v; v = n) {
			n = v->hnext;
			size_t s = slot(fs, v->ino);
			v->hnext = nt[s];
			nt[s] = v;
		}
	}
	free(old);
	return 0;
}

struct vnode *vnode_get(struct cairn_fs *fs, uint64_t ino)
{
	struct vnode *v = vnode_find(fs, ino);
	if (v)
		return v;
	if (fs->vcount + 1 > fs->vtab_size / 2 && grow(fs))
		return NULL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->ino = ino;
	pthread_mutex_init(&v->lock, NULL);
	dindex_init(&v->data, &fs->pieces);
	size_t s = slot(fs, ino);
	v->hnext = fs->vtab[s];
	fs->vtab[s] = v;
	fs->vcount++;
	return v;
}

/* Its index's stash goes back to the pool. */
static void vnode_free(struct vnode *vn)
{
	dindex_clear(&vn->data);
	pthread_mutex_destroy(&vn->lock);
	free(vn);
}

int vnode_inode(struct cairn_fs *fs, struct vnode *vn, struct iref *r)
{
	if (!vn->inode.b) {
		int rc = inode_get(&fs->sh, vn->ino, &vn->inode);
		if (rc)
			return rc;
	}
	*r = vn->inode;
	return 0;
}

void vnode_let_go(struct cairn_fs *fs, struct vnode *vn)
{
	inode_put(&fs->sh, &vn->inode);
}

void vnode_maybe_free(struct cairn_fs *fs, struct vnode *vn)
{
	if (vn && vn->open_count <= 0)
		vnode_let_go(fs, vn);
	if (!vn || vn->open_count > 0 || !dindex_empty(&vn->data))
		return;
	struct vnode **pp = &fs->vtab[slot(fs, vn->ino)];
	while (*pp && *pp != vn)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = vn->hnext;
	fs->vcount--;
	vnode_free(vn);
}

void vnode_destroy_all(struct cairn_fs *fs)
{
	for (size_t i = 0; i < fs->vtab_size; i++) {
		struct vnode *v = fs->vtab[i], *n;
		for (; v; v = n) {
			n = v->hnext;
			vnode_let_go(fs, v);
			vnode_free(v);
		}
	}
	free(fs->vtab);
	fs->vtab = NULL;
	fs->vtab_size = fs->vcount = 0;
	piece_pool_drain(&fs->pieces);
}

struct vnode *vnode_lock_ino(struct cairn_fs *fs, uint64_t ino)
{
	struct vnode *vn = vnode_find(fs, ino);
	if (vn)
		pthread_mutex_lock(&vn->lock);
	return vn;
}

void vnode_unlock(struct vnode *vn)
{
	if (vn)
		pthread_mutex_unlock(&vn->lock);
}

int vnode_is_open(struct cairn_fs *fs, uint64_t ino)
{
	struct vnode *v = vnode_find(fs, ino);
	return v && v->open_count > 0;
}
