/*
 * apply.c - applies one operation record to the in-memory state of the
 * volume: the metadata cache of the shared area and the undigested-data
 * index.  The same code runs when a call is made and when the log is
 * replayed at mount, which is what makes recovery exact.
 *
 * Owns: the meaning of each record type (oprec.h).
 * May call: fs (shared, extent, dir), dindex, vnode, space (where
 * preallocated blocks go).
 *
 * The caller has validated the operation; a record that does not fit the
 * state (a name that exists, an inode in use) means damage and yields
 * -EUCLEAN rather than a guess.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "fs/alloc.h"
#include "fs/dir.h"
#include "fs/extent.h"
#include "fs/xattr.h"
#include "libfs/clients.h"
#include "libfs/fs_internal.h"
#include "libfs/oprec.h"
#include "log/log_format.h"

static uint8_t dtype_of(uint32_t mode)
{
	return (uint8_t)IFTODT(mode);
}

static void touch_dir(struct fs_inode *d, int64_t t)
{
	d->mtime_ns = d->ctime_ns = t;
}

/* Reads the inode and checks that it is in use. */
static int get_live(struct cairn_fs *fs, uint64_t ino, struct iref *r)
{
	int rc = inode_get(&fs->sh, ino, r);
	if (rc)
		return rc;
	if (r->i->mode == 0) {
		inode_put(&fs->sh, r);
		return -EUCLEAN;
	}
	return 0;
}

/* An inode in use of the given type (S_IFDIR, S_IFREG): a record that
 * names another kind is damage. */
static int get_typed(struct cairn_fs *fs, uint64_t ino, struct iref *r, uint32_t type)
{
	int rc = get_live(fs, ino, r);
	if (!rc && (r->i->mode & S_IFMT) != type) {
		inode_put(&fs->sh, r);
		rc = -EUCLEAN;
	}
	return rc;
}

static int get_dir(struct cairn_fs *fs, uint64_t ino, struct iref *r)
{
	return get_typed(fs, ino, r, S_IFDIR);
}

static int get_file(struct cairn_fs *fs, uint64_t ino, struct iref *r)
{
	return get_typed(fs, ino, r, S_IFREG);
}

/* ---- orphans: unlinked inodes that are still open ---------------------- */

/* The orphan list is doubly linked through the inodes, so that the last
 * close (or forget) of any of thousands of orphans unlinks it in O(1). */
static int set_orphan_link(struct cairn_fs *fs, uint64_t ino, int next, uint64_t value)
{
	struct iref r;
	int rc = inode_get(&fs->sh, ino, &r);
	if (rc)
		return rc;
	if (next)
		r.i->orphan_next = value;
	else
		r.i->orphan_prev = value;
	inode_dirty(&fs->sh, &r);
	inode_put(&fs->sh, &r);
	return 0;
}

int orphan_add(struct cairn_fs *fs, struct iref *r)
{
	if (r->i->flags & FS_INODE_ORPHAN)
		return 0;
	uint64_t head = fs->orphan_head;
	if (head) {
		int rc = set_orphan_link(fs, head, 0, r->ino);
		if (rc)
			return rc;
	}
	r->i->flags |= FS_INODE_ORPHAN;
	r->i->orphan_next = head;
	r->i->orphan_prev = 0;
	fs->orphan_head = r->ino;
	inode_dirty(&fs->sh, r);
	return 0;
}

int orphan_remove(struct cairn_fs *fs, uint64_t ino)
{
	struct iref r;
	int rc = inode_get(&fs->sh, ino, &r);
	if (rc)
		return rc;
	if (!(r.i->flags & FS_INODE_ORPHAN)) {
		inode_put(&fs->sh, &r);
		return 0;
	}
	uint64_t prev = r.i->orphan_prev, next = r.i->orphan_next;
	r.i->flags &= ~FS_INODE_ORPHAN;
	r.i->orphan_prev = r.i->orphan_next = 0;
	inode_dirty(&fs->sh, &r);
	inode_put(&fs->sh, &r);
	if (prev)
		rc = set_orphan_link(fs, prev, 1, next);
	else
		fs->orphan_head = next;
	if (!rc && next)
		rc = set_orphan_link(fs, next, 0, prev);
	return rc;
}

int orphans_release_all(struct cairn_fs *fs)
{
	for (uint64_t n = 0; fs->orphan_head; n++) {
		uint64_t ino = fs->orphan_head;
		int rc = orphan_remove(fs, ino);
		if (!rc && (fs->orphan_head == ino || n > fs->sh.sb.inode_count))
			rc = -EUCLEAN; /* a damaged list: it does not advance, or loops */
		if (!rc)
			rc = apply_free_inode(fs, ino);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- freeing ----------------------------------------------------------- */

int apply_free_inode(struct cairn_fs *fs, uint64_t ino)
{
	struct iref r;
	int rc = inode_get(&fs->sh, ino, &r);
	if (rc)
		return rc;
	if (S_ISDIR(r.i->mode)) {
		rc = dir_destroy(&fs->sh.fx, r.i);
		fs->directories--;
	} else
		rc = extent_truncate(&fs->sh.fx, r.i, 0);
	int xrc = xattr_destroy(&fs->sh.fx, r.i);
	rc = rc ? rc : xrc;
	uint32_t gen = r.i->generation;
	memset(r.i, 0, sizeof(*r.i));
	r.i->generation = gen;
	inode_dirty(&fs->sh, &r);
	inode_put(&fs->sh, &r);
	struct vnode *vn = vnode_find(fs, ino);
	if (vn) {
		fs->reserved_blocks -= vn->data.resv;
		dindex_clear(&vn->data);
		vnode_maybe_free(fs, vn);
	}
	inode_release(&fs->sh, ino);
	return rc;
}

/* Drops one link of a non-directory, freeing it at zero unless it was open
 * (orphan: the record says so). */
static int drop_link(struct cairn_fs *fs, struct iref *r, int64_t t, int orphan)
{
	if (r->i->nlink == 0)
		return -EUCLEAN;
	r->i->nlink--;
	r->i->ctime_ns = t;
	inode_dirty(&fs->sh, r);
	if (r->i->nlink > 0)
		return 0;
	if (orphan)
		return orphan_add(fs, r);
	uint64_t ino = r->ino;
	inode_put(&fs->sh, r);
	return apply_free_inode(fs, ino);
}

/* Removes a directory inode (already unlinked from its parent). */
static int drop_dir(struct cairn_fs *fs, struct iref *victim, struct iref *parent, int64_t t,
                    int orphan)
{
	if (victim->i->entries != 0)
		return -EUCLEAN;
	parent->i->nlink--;
	inode_dirty(&fs->sh, parent);
	victim->i->nlink = 0;
	victim->i->ctime_ns = t;
	inode_dirty(&fs->sh, victim);
	if (orphan)
		return orphan_add(fs, victim);
	uint64_t ino = victim->ino;
	inode_put(&fs->sh, victim);
	return apply_free_inode(fs, ino);
}

/* Drops the inode a removed name pointed to. */
static int drop_victim(struct cairn_fs *fs, uint64_t ino, struct iref *parent, int64_t t,
                       int orphan)
{
	struct iref v;
	int rc = get_live(fs, ino, &v);
	if (rc)
		return rc;
	rc =
	    S_ISDIR(v.i->mode) ? drop_dir(fs, &v, parent, t, orphan) : drop_link(fs, &v, t, orphan);
	inode_put(&fs->sh, &v);
	return rc;
}

/* ---- records ----------------------------------------------------------- */

/* Copies the fixed part of a payload and checks that `extra` more bytes
 * (the names that follow) fit in the record. */
static int payload(const struct log_rec_hdr *h, const uint8_t *pl, void *p, size_t size)
{
	if (!pl || h->payload_len < size)
		return -EUCLEAN;
	memcpy(p, pl, size);
	return 0;
}

static int names_fit(const struct log_rec_hdr *h, size_t fixed, size_t a, size_t b)
{
	return a >= 1 && a <= DIR_NAME_MAX && fixed + a + b <= h->payload_len;
}

static void init_inode(struct fs_inode *i, const struct op_mknod *p)
{
	uint32_t gen = i->generation + 1;
	memset(i, 0, sizeof(*i));
	i->generation = gen;
	i->mode = p->mode;
	i->uid = p->uid;
	i->gid = p->gid;
	i->rdev = p->rdev;
	i->nlink = S_ISDIR(p->mode) ? 2 : 1;
	i->atime_ns = i->mtime_ns = i->ctime_ns = p->time_ns;
	if (S_ISDIR(p->mode))
		i->parent = p->parent;
	if (S_ISLNK(p->mode))
		i->size = p->targetlen;
}

static int add_piece(struct cairn_fs *fs, uint64_t ino, uint64_t off, uint64_t len, uint64_t src,
                     uint64_t seq, enum piece_kind kind)
{
	struct vnode *vn = vnode_get(fs, ino);
	if (!vn)
		return -ENOMEM;
	uint64_t resv = kind == PIECE_LOG ? fs->apply_resv : 0, released;
	fs->apply_resv = 0;
	int rc = dindex_insert(&vn->data, off, len, src, seq, resv, kind, &released);
	if (!rc)
		fs->reserved_blocks += resv - released;
	return rc;
}

static int apply_mknod(struct cairn_fs *fs, const struct log_rec_hdr *h, const uint8_t *pl,
                       uint64_t plo)
{
	struct op_mknod p;
	if (payload(h, pl, &p, sizeof(p)) || !names_fit(h, sizeof(p), p.namelen, p.targetlen))
		return -EUCLEAN;
	const char *name = (const char *)pl + sizeof(p);
	struct iref dir, r;
	int rc = get_dir(fs, p.parent, &dir);
	if (rc)
		return rc;
	rc = inode_take(&fs->sh, p.ino);
	if (!rc)
		rc = inode_get(&fs->sh, p.ino, &r);
	if (rc) {
		inode_put(&fs->sh, &dir);
		return rc == -EEXIST ? -EUCLEAN : rc;
	}
	init_inode(r.i, &p);
	inode_dirty(&fs->sh, &r);
	rc = dir_insert(&fs->sh.fx, dir.i, name, p.namelen, p.ino, dtype_of(p.mode));
	if (!rc) {
		if (S_ISDIR(p.mode)) {
			dir.i->nlink++;
			fs->directories++;
		}
		touch_dir(dir.i, p.time_ns);
		inode_dirty(&fs->sh, &dir);
	} else {
		/* Nothing names it: give the inode back, so a record that is
		 * refused leaves no trace. */
		r.i->mode = 0;
		r.i->nlink = 0;
		inode_dirty(&fs->sh, &r);
	}
	inode_put(&fs->sh, &r);
	inode_put(&fs->sh, &dir);
	if (rc)
		inode_release(&fs->sh, p.ino);
	if (!rc && S_ISLNK(p.mode) && p.targetlen)
		rc = add_piece(fs, p.ino, 0, p.targetlen, plo + sizeof(p) + p.namelen, h->seq,
		               PIECE_LOG);
	return rc == -EEXIST ? -EUCLEAN : rc;
}

static int apply_link(struct cairn_fs *fs, const struct log_rec_hdr *h, const uint8_t *pl)
{
	struct op_link p;
	if (payload(h, pl, &p, sizeof(p)) || !names_fit(h, sizeof(p), p.namelen, 0))
		return -EUCLEAN;
	struct iref dir, r;
	int rc = get_dir(fs, p.parent, &dir);
	if (rc)
		return rc;
	rc = get_live(fs, p.ino, &r);
	if (rc) {
		inode_put(&fs->sh, &dir);
		return rc;
	}
	rc = dir_insert(&fs->sh.fx, dir.i, (const char *)pl + sizeof(p), p.namelen, p.ino,
	                dtype_of(r.i->mode));
	if (!rc) {
		r.i->nlink++;
		r.i->ctime_ns = p.time_ns;
		inode_dirty(&fs->sh, &r);
		touch_dir(dir.i, p.time_ns);
		inode_dirty(&fs->sh, &dir);
	}
	inode_put(&fs->sh, &r);
	inode_put(&fs->sh, &dir);
	return rc == -EEXIST ? -EUCLEAN : rc;
}

static int apply_unlink(struct cairn_fs *fs, const struct log_rec_hdr *h, const uint8_t *pl)
{
	struct op_unlink p;
	if (payload(h, pl, &p, sizeof(p)) || !names_fit(h, sizeof(p), p.namelen, 0))
		return -EUCLEAN;
	const char *name = (const char *)pl + sizeof(p);
	struct iref dir;
	int rc = get_dir(fs, p.parent, &dir);
	if (rc)
		return rc;
	uint64_t ino;
	uint8_t type;
	rc = dir_lookup(&fs->sh.fx, dir.i, name, p.namelen, &ino, &type);
	if (!rc && ino != p.ino)
		rc = -EUCLEAN;
	if (!rc)
		rc = dir_remove(&fs->sh.fx, dir.i, name, p.namelen);
	if (!rc) {
		touch_dir(dir.i, p.time_ns);
		inode_dirty(&fs->sh, &dir);
		rc = drop_victim(fs, p.ino, &dir, p.time_ns, (p.flags & OPF_ORPHAN) != 0);
	}
	inode_put(&fs->sh, &dir);
	return rc == -ENOENT ? -EUCLEAN : rc;
}

static int move_entry(struct cairn_fs *fs, const struct op_rename *p, struct iref *od,
                      struct iref *nd, const char *oldname, const char *newname)
{
	struct iref r;
	int rc = get_live(fs, p->ino, &r);
	if (rc)
		return rc;
	rc = dir_remove(&fs->sh.fx, od->i, oldname, p->oldlen);
	if (!rc)
		rc = dir_insert(&fs->sh.fx, nd->i, newname, p->newlen, p->ino, dtype_of(r.i->mode));
	if (!rc && S_ISDIR(r.i->mode) && od->ino != nd->ino) {
		od->i->nlink--;
		nd->i->nlink++;
		r.i->parent = nd->ino;
	}
	if (!rc) {
		r.i->ctime_ns = p->time_ns;
		inode_dirty(&fs->sh, &r);
		touch_dir(od->i, p->time_ns);
		touch_dir(nd->i, p->time_ns);
		inode_dirty(&fs->sh, od);
		inode_dirty(&fs->sh, nd);
	}
	inode_put(&fs->sh, &r);
	return rc;
}

static int apply_rename(struct cairn_fs *fs, const struct log_rec_hdr *h, const uint8_t *pl)
{
	struct op_rename p;
	if (payload(h, pl, &p, sizeof(p)) || !names_fit(h, sizeof(p), p.oldlen, p.newlen) ||
	    !names_fit(h, sizeof(p), p.newlen, p.oldlen))
		return -EUCLEAN;
	const char *oldname = (const char *)pl + sizeof(p);
	const char *newname = oldname + p.oldlen;
	struct iref od, nd;
	int rc = get_dir(fs, p.oldparent, &od);
	if (rc)
		return rc;
	rc = get_dir(fs, p.newparent, &nd);
	if (rc) {
		inode_put(&fs->sh, &od);
		return rc;
	}
	if (p.victim) {
		rc = dir_remove(&fs->sh.fx, nd.i, newname, p.newlen);
		if (!rc)
			rc = drop_victim(fs, p.victim, &nd, p.time_ns,
			                 (p.flags & OP_RENAME_VICTIM_ORPHAN) != 0);
	}
	if (!rc)
		rc = move_entry(fs, &p, &od, &nd, oldname, newname);
	inode_put(&fs->sh, &nd);
	inode_put(&fs->sh, &od);
	return (rc == -ENOENT || rc == -EEXIST) ? -EUCLEAN : rc;
}

/* The file a write record names: through the inode buffer its vnode
 * holds while open (*held: not to be put), which every write after the
 * first of an open file finds, and checked as get_file checks it. */
static int get_file_of_write(struct cairn_fs *fs, uint64_t ino, struct iref *r, int *held)
{
	struct vnode *vn = vnode_find(fs, ino);
	*held = vn && vn->open_count > 0;
	if (!*held)
		return get_file(fs, ino, r);
	int rc = vnode_inode(fs, vn, r);
	if (!rc && (r->i->mode & S_IFMT) != S_IFREG)
		rc = -EUCLEAN; /* a free inode's mode is 0 */
	return rc;
}

/* The inode's size and times after a write ending at end. */
static void note_written(struct cairn_fs *fs, struct iref *r, uint64_t end, int64_t time_ns)
{
	if (end > r->i->size)
		r->i->size = end;
	r->i->mtime_ns = r->i->ctime_ns = time_ns;
	/* Safe without the cache's mutex when the buffer is dirty already:
	 * the checkpoint's snapshot, the only way out of that state, is taken
	 * under fs->lock held exclusively, and a write holds it at least
	 * shared. */
	inode_keep_dirty(&fs->sh, r);
}

int apply_write_to(struct cairn_fs *fs, struct vnode *vn, struct iref *r, const struct log_pos *pos,
                   uint64_t off, uint64_t len, int64_t time_ns, uint64_t resv, uint64_t *released)
{
	int rc = dindex_insert(&vn->data, off, len, pos->payload_off, pos->seq, resv, PIECE_LOG,
	                       released);
	if (!rc)
		note_written(fs, r, off + len, time_ns);
	return rc;
}

static int apply_write(struct cairn_fs *fs, const struct log_rec_hdr *h, uint64_t plo)
{
	uint64_t ino = h->args[0], off = h->args[1];
	struct iref r;
	int held;
	int rc = get_file_of_write(fs, ino, &r, &held);
	if (rc)
		return rc;
	rc = add_piece(fs, ino, off, h->payload_len, plo, h->seq, PIECE_LOG);
	if (!rc)
		note_written(fs, &r, off + h->payload_len, (int64_t)h->args[2]);
	if (!held)
		inode_put(&fs->sh, &r);
	return rc;
}

static int apply_truncate(struct cairn_fs *fs, const struct log_rec_hdr *h);

/* A client's write, truncate, create or unlink, copied from its log: the
 * client record's place (struct op_cwrite), then what the engine's own
 * record of the call carries.  Applied as that record, and the client's
 * log is ingested up to the record after it. */
static int apply_client_copy(struct cairn_fs *fs, const struct log_rec_hdr *h, const uint8_t *pl,
                             uint64_t plo)
{
	struct op_cwrite cw;
	if (h->payload_len < sizeof(cw))
		return -EUCLEAN;
	memcpy(&cw, pl, sizeof(cw));
	struct log_rec_hdr inner = *h;
	inner.payload_len -= (uint32_t)sizeof(cw);
	pl += sizeof(cw);
	plo += sizeof(cw);
	int rc;
	switch (h->type) {
	case OP_CWRITE:
		rc = inner.payload_len ? apply_write(fs, &inner, plo) : -EUCLEAN;
		break;
	case OP_CTRUNCATE:
		rc = inner.payload_len ? -EUCLEAN : apply_truncate(fs, &inner);
		break;
	case OP_CMKNOD:
		rc = inner.payload_len ? apply_mknod(fs, &inner, pl, plo) : -EUCLEAN;
		break;
	default: /* OP_CUNLINK */
		rc = inner.payload_len ? apply_unlink(fs, &inner, pl) : -EUCLEAN;
	}
	if (!rc)
		clients_note_ingested(fs, cw.slot, cw.log_id, cw.seq, cw.next_off);
	return rc;
}

static int shrink(struct cairn_fs *fs, struct iref *r, uint64_t size, uint64_t seq)
{
	struct vnode *vn = vnode_find(fs, r->ino);
	if (vn) {
		fs->reserved_blocks -= dindex_truncate(&vn->data, size);
		vnode_maybe_free(fs, vn);
	}
	int rc = extent_truncate(&fs->sh.fx, r->i, (size + FS_BLOCK_SIZE - 1) / FS_BLOCK_SIZE);
	uint64_t tail = size % FS_BLOCK_SIZE;
	/* The shared area may hold old bytes after the new end of the last
	 * block; they must read (and be digested) as zeros. */
	if (!rc && tail)
		rc = add_piece(fs, r->ino, size, FS_BLOCK_SIZE - tail, 0, seq, PIECE_ZERO);
	return rc;
}

static int apply_truncate(struct cairn_fs *fs, const struct log_rec_hdr *h)
{
	uint64_t ino = h->args[0], size = h->args[1];
	struct iref r;
	int rc = get_file(fs, ino, &r);
	if (rc)
		return rc;
	if (size < r.i->size)
		rc = shrink(fs, &r, size, h->seq);
	else if (size == r.i->size)
		/* As on ext4, a truncate that keeps the size drops the blocks
		 * fallocate set aside past the end. */
		rc = extent_truncate(&fs->sh.fx, r.i, (size + FS_BLOCK_SIZE - 1) / FS_BLOCK_SIZE);
	r.i->size = size;
	r.i->mtime_ns = r.i->ctime_ns = (int64_t)h->args[2];
	inode_dirty(&fs->sh, &r);
	inode_put(&fs->sh, &r);
	return rc;
}

/* A hole punched in [off, off+len): whole blocks leave the extent map, and
 * a ZERO piece covers the range so that partial blocks (and anything still
 * in the log) read as zeros. */
static int apply_punch(struct cairn_fs *fs, const struct log_rec_hdr *h, const uint8_t *pl)
{
	uint64_t ino = h->args[0], off = h->args[1], len = h->args[2];
	int64_t t;
	if (payload(h, pl, &t, sizeof(t)) || len == 0 || off + len < off)
		return -EUCLEAN;
	struct iref r;
	int rc = get_file(fs, ino, &r);
	if (rc)
		return rc;
	uint64_t first = (off + FS_BLOCK_SIZE - 1) / FS_BLOCK_SIZE;
	uint64_t end = (off + len) / FS_BLOCK_SIZE;
	if (end > first)
		rc = extent_punch(&fs->sh.fx, r.i, first, end - first);
	if (!rc)
		rc = add_piece(fs, ino, off, len, 0, h->seq, PIECE_ZERO);
	if (!rc) {
		r.i->mtime_ns = r.i->ctime_ns = t;
		inode_dirty(&fs->sh, &r);
	}
	inode_put(&fs->sh, &r);
	return rc;
}

/* Blocks for every hole of logical blocks [lblk, end), mapped as unwritten
 * extents: allocated here, so that no later write into them needs one.
 * The call checked that they and their extent-map nodes exist. */
static int prealloc_holes(struct cairn_fs *fs, struct fs_inode *i, uint64_t lblk, uint64_t end)
{
	struct extent e;
	uint64_t hint = 0;
	if (lblk > 0 && extent_lookup(&fs->sh.fx, i, lblk - 1, &e) == 1)
		hint = e.pblk + (lblk - e.lblk); /* right after the block before */
	while (lblk < end) {
		int rc = extent_lookup(&fs->sh.fx, i, lblk, &e);
		if (rc < 0)
			return rc;
		uint64_t n = e.lblk + e.len - lblk; /* a hole's len stops at UINT64_MAX */
		if (n > end - lblk)
			n = end - lblk;
		if (rc == 0) {
			uint64_t pblk,
			    want = n < FS_EXTENT_UNWRITTEN_MAX ? n : FS_EXTENT_UNWRITTEN_MAX;
			rc = space_place_data(fs, hint, want, &pblk, &n);
			if (rc)
				return rc;
			rc = extent_insert_unwritten(&fs->sh.fx, i, lblk, pblk, n);
			if (rc) {
				alloc_free(fs->sh.tier[FS_PBLK_TIER(pblk)].a, FS_PBLK_BLK(pblk), n);
				return rc;
			}
			hint = pblk + n;
		} else {
			hint = e.pblk + (lblk - e.lblk) + n;
		}
		lblk += n;
	}
	return 0;
}

/* fallocate (modes 0 and KEEP_SIZE): the holes of the range get blocks,
 * as unwritten extents; mode 0 extends the size; mtime and ctime change,
 * as on ext4. */
static int apply_falloc(struct cairn_fs *fs, const struct log_rec_hdr *h, const uint8_t *pl)
{
	uint64_t ino = h->args[0], off = h->args[1], len = h->args[2];
	struct op_falloc p;
	if (payload(h, pl, &p, sizeof(p)) || len == 0 || off + len < off ||
	    off + len > UINT64_MAX - FS_BLOCK_SIZE || (p.flags & ~OP_FALLOC_KEEP_SIZE))
		return -EUCLEAN;
	struct iref r;
	int rc = get_file(fs, ino, &r);
	if (rc)
		return rc;
	rc = prealloc_holes(fs, r.i, off / FS_BLOCK_SIZE,
	                    (off + len + FS_BLOCK_SIZE - 1) / FS_BLOCK_SIZE);
	if (!rc) {
		if (!(p.flags & OP_FALLOC_KEEP_SIZE) && off + len > r.i->size)
			r.i->size = off + len;
		r.i->mtime_ns = r.i->ctime_ns = p.time_ns;
	}
	inode_dirty(&fs->sh, &r); /* its block map changed, even on failure */
	inode_put(&fs->sh, &r);
	return rc;
}

static int apply_setattr(struct cairn_fs *fs, const struct log_rec_hdr *h, const uint8_t *pl)
{
	struct op_setattr p;
	if (payload(h, pl, &p, sizeof(p)))
		return -EUCLEAN;
	struct iref r;
	int rc = get_live(fs, p.ino, &r);
	if (rc)
		return rc;
	if (p.valid & SETATTR_MODE)
		r.i->mode = (r.i->mode & S_IFMT) | (p.mode & 07777);
	if (p.valid & SETATTR_UID)
		r.i->uid = p.uid;
	if (p.valid & SETATTR_GID)
		r.i->gid = p.gid;
	if (p.valid & SETATTR_ATIME)
		r.i->atime_ns = p.atime_ns;
	if (p.valid & SETATTR_MTIME)
		r.i->mtime_ns = p.mtime_ns;
	r.i->ctime_ns = p.ctime_ns;
	inode_dirty(&fs->sh, &r);
	inode_put(&fs->sh, &r);
	return 0;
}

static int apply_xattr(struct cairn_fs *fs, const struct log_rec_hdr *h, const uint8_t *pl)
{
	struct op_xattr p;
	if (payload(h, pl, &p, sizeof(p)) || !p.namelen || p.namelen > XATTR_NAME_MAX ||
	    sizeof(p) + p.namelen + p.valuelen > h->payload_len)
		return -EUCLEAN;
	const char *name = (const char *)pl + sizeof(p);
	struct iref r;
	int rc = get_live(fs, p.ino, &r);
	if (rc)
		return rc;
	if (h->type == OP_SETXATTR)
		rc = xattr_set(&fs->sh.fx, r.i, name, p.namelen, name + p.namelen, p.valuelen,
		               (int)p.flags);
	else
		rc = xattr_remove(&fs->sh.fx, r.i, name, p.namelen);
	if (!rc) {
		r.i->ctime_ns = p.time_ns;
		inode_dirty(&fs->sh, &r);
	}
	inode_put(&fs->sh, &r);
	return (rc == -EEXIST || rc == -ENODATA) ? -EUCLEAN : rc;
}

static int apply_release(struct cairn_fs *fs, const struct log_rec_hdr *h)
{
	uint64_t ino = h->args[0];
	struct iref r;
	int rc = get_live(fs, ino, &r);
	if (rc)
		return rc;
	uint32_t nlink = r.i->nlink;
	inode_put(&fs->sh, &r);
	if (nlink != 0)
		return -EUCLEAN;
	rc = orphan_remove(fs, ino);
	return rc ? rc : apply_free_inode(fs, ino);
}

int apply_record(struct cairn_fs *fs, const struct log_rec_hdr *h, const void *payload,
                 uint64_t payload_off)
{
	const uint8_t *pl = payload;
	switch (h->type) {
	case OP_MKNOD:
		return apply_mknod(fs, h, pl, payload_off);
	case OP_LINK:
		return apply_link(fs, h, pl);
	case OP_UNLINK:
		return apply_unlink(fs, h, pl);
	case OP_RENAME:
		return apply_rename(fs, h, pl);
	case OP_WRITE:
		return apply_write(fs, h, payload_off);
	case OP_CWRITE:
	case OP_CTRUNCATE:
	case OP_CMKNOD:
	case OP_CUNLINK:
		return apply_client_copy(fs, h, pl, payload_off);
	case OP_TRUNCATE:
		return apply_truncate(fs, h);
	case OP_SETATTR:
		return apply_setattr(fs, h, pl);
	case OP_RELEASE:
		return apply_release(fs, h);
	case OP_SETXATTR:
	case OP_REMOVEXATTR:
		return apply_xattr(fs, h, pl);
	case OP_PUNCH:
		return apply_punch(fs, h, pl);
	case OP_FALLOC:
		return apply_falloc(fs, h, pl);
	}
	return -EUCLEAN;
}
