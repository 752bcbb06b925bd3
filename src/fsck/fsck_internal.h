/*
 * fsck_internal.h - what the files of src/fsck share: the state of one
 * check (struct fsck_ctx), the problem codes, and the phases.
 *
 * Owns: nothing on the media.  fsck reads the volume through the same
 * layers a mount uses (volume, log, shared area, cache, btree) and writes
 * only in repair mode, through the cache and shared_commit.
 *
 * One check = fsck_open (phase 1: parts, slots) + fsck_scan_log (phase 2)
 * + fsck_check_inodes (phase 3) + fsck_check_blocks (phase 4), then
 * fsck_close.  A repair round is a check opened read-write followed by
 * fsck_apply for each fixable problem and fsck_commit.
 */
#ifndef CAIRN_FSCK_INTERNAL_H
#define CAIRN_FSCK_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "fs/btree.h"
#include "fs/format.h"
#include "fs/shared.h"
#include "fsck/fsck.h"
#include "log/clog_format.h"
#include "log/log.h"
#include "volume/volume.h"

/* Problem codes; fsck_code_name() in fsck_report.c names each.  For the
 * fixable ones, the item's a, b, c (and name) say what the fix needs. */
enum fsck_code {
	FC_NONE = 0,
	FC_LOG_SUPER,       /* the log part is refused (log_open's sentence) */
	FC_EPOCH_SLOT,      /* an epoch slot is damaged (fixed by a mount) */
	FC_CKPT_SLOT,       /* a checkpoint slot is damaged (fixed by any commit) */
	FC_LOG_HEAD,        /* the checkpoint names a log head outside the ring */
	FC_IBIT_FREE,       /* a: inode in use but free in the inode bitmap (set) */
	FC_IBIT_LEAK,       /* a: inode free but marked in use (clear) */
	FC_INODE_RESERVED,  /* inode 0 is in use (zeroed) */
	FC_MODE,            /* a: inode, b: mode with the type its entries give */
	FC_ROOT,            /* the root inode is free or not a directory (a: 1,
	                     * b: its mode made a directory's, when in use) */
	FC_TREE,            /* a: inode, b: tree kind, c: 1 = salvage; fails
	                     * btree_check.  A tree whose root node is unreadable
	                     * is emptied (nothing in it can be read anyway); a
	                     * directory or block map is rebuilt from its readable
	                     * records */
	FC_EXTENT_BAD,      /* a: inode, b: lblk; an invalid extent record
	                     * (removed), or overlapping extents (left) */
	FC_EXTENT_OUTSIDE,  /* a: inode, b: lblk, c: len; maps blocks outside the
	                     * data area of its tier, or names no tier (the
	                     * record is removed) */
	FC_EXTENT_PAST_EOF, /* warning: an extent lies wholly beyond the size */
	FC_SYMLINK_SIZE,    /* a symlink's size is 0 or over 4095 */
	FC_SPECIAL_TREE,    /* a device, FIFO or socket has a block map */
	FC_BLOCKS,          /* a: inode, b: blocks its trees claim */
	FC_ENTRIES,         /* a: directory, b: records in its tree */
	FC_DENT_BAD,        /* a malformed directory record or an invalid name */
	FC_DENT_KEY,        /* a: directory, b: key; outside its name's bucket
	                     * (inserted again) */
	FC_DENT_DUP,        /* a name appears twice in one directory */
	FC_DENT_FREE,       /* a: directory, b: key; names a free or invalid inode
	                     * (the entry is removed) */
	FC_DENT_TYPE,       /* an entry's DT_ type disagrees with the inode */
	FC_DIR_MULTI,       /* a: directory, b: key of the entry that is not the
	                     * one the parent field names (removed) */
	FC_NLINK,           /* a: inode, b: the right link count */
	FC_PARENT,          /* a: directory, b: the directory that names it */
	FC_ORPHAN_LIST,     /* a: inode whose orphan_next is bad (0: the head in
	                     * the checkpoint); the list is cut there */
	FC_ORPHAN_FLAG,     /* a: inode, b: 1 set / 0 clear FS_INODE_ORPHAN */
	FC_ORPHAN_NAMED,    /* on the orphan list but named by entries */
	FC_UNREACHABLE,     /* a: inode, c: 1 = link into /lost+found; unreachable
	                     * from the root and not an orphan.  Freed when it
	                     * holds nothing, else linked if nothing names it */
	/* The block codes' a is a tier-tagged block number (FS_PBLK): the
	 * tier names the bitmap a fix changes.  A run never spans tiers. */
	FC_BLOCK_META_FREE, /* a: start, b: count; metadata block marked free */
	FC_BLOCK_LEAK,      /* a: start, b: count; used but claimed by nothing */
	FC_BLOCK_FREE_USED, /* a: start, b: count; claimed but marked free */
	FC_BLOCK_DUP,       /* a: start, b: count; claimed by two owners */
	FC_IO,              /* a block could not be read */
	FC_LOG_SUPER_COPY,  /* one copy of the log superblock is damaged (the
	                     * other is valid: it is rewritten from it) */
	FC_FAST_SUPER_COPY, /* one copy of the fast tier's superblock is damaged
	                     * (likewise) */
	FC_LOG_LOST,        /* a: offset, b: sequence of a damaged record that had
	                     * been durable, c: valid records after it (dropped:
	                     * the log is cut at the damage) */
	FC_DATA_CHECKSUM,   /* a: inode, b: lblk; a data block does not match its
	                     * checksum (not fixable: the bytes are lost) */
	FC_CLIENT_LOG,      /* a: slot; a client log a dead daemon left is not
	                     * whole and may hold writes (a mount refuses the
	                     * volume read-write; repair removes its files) */
	FC_CLIENT_LOG_LOST, /* a: slot; a record of a client log a dead daemon
	                     * left is damaged and acknowledged ones follow it
	                     * (a mount refuses the volume read-write; repair
	                     * cuts the log at the damage) */
	FC_COUNT
};

/* Tree kinds, for FC_TREE's b. */
enum { TREE_EXTENT = 0, TREE_DIR = 1, TREE_XATTR = 2 };

/* What fsck remembers of each inode number. */
struct iinfo {
	uint32_t mode;
	uint32_t nlink;
	uint32_t names;     /* directory entries naming it */
	uint32_t subdirs;   /* directories: entries naming directories */
	uint64_t namer;     /* the directory of the first entry found naming it */
	uint64_t namer_key; /* and that entry's key */
	uint64_t parent;    /* directories: the inode's parent field */
	uint32_t flags;     /* II_* */
	uint8_t dtype;      /* the DT_ type of the entries naming it */
	uint64_t tree_root; /* kept only for inodes whose type is in doubt */
};
#define II_ORPHAN_FLAG 1u /* FS_INODE_ORPHAN is set in the inode */
#define II_ON_LIST 2u     /* found on the orphan list */
#define II_TREES_OK 4u    /* every tree of the inode was read whole */
#define II_REACH 8u       /* reachable from the root */
#define II_KNOWN 16u      /* reachability decided */
#define II_EMPTY 32u      /* holds nothing (no data, names or attributes) */
#define II_UNKNOWN 64u    /* type in doubt: unknown, or special with a tree */
#define II_DT_MIXED 128u  /* the entries naming it disagree on its type */

/* A block claimed twice: one (flat block, owner) pair per claim, gathered
 * by a second pass over the inodes once duplicates are known to exist. */
struct dup_owner {
	uint64_t blk, ino;
};

/* What the copies of one client log's records in the volume's log say. */
struct clog_copied {
	uint8_t log_id[16];
	uint64_t seq, off; /* the record after the last copy (seq 0: none) */
};

struct fsck_ctx {
	const char *volume;
	const struct fsck_opts *o;
	int rw;                /* opened to repair */
	struct fsck_report *r; /* counts and notes */
	struct fsck_list *out; /* problems of this check */
	int refused;

	struct volume vol;
	int vol_open;
	struct log *log;
	struct shared sh;
	int sh_open;
	const struct fs_super *sb;
	uint64_t orphan_head; /* as the checkpoint (or a repair) says */

	/* fsck's block bitmaps cover every tier end to end, in flat block
	 * numbers: block b of tier t is flat base[t] + b (see fsck_flat).
	 * base[ntiers] is the number of flat blocks. */
	uint64_t base[FS_MAX_TIERS + 2];
	uint64_t *ibits, *bbits; /* the media bitmaps, as read (bbits: flat) */
	uint64_t *claimed, *dup; /* flat blocks the trees claim; claimed twice */
	uint64_t ndup;
	struct iinfo *ii;
	int names_complete;  /* every directory tree was read whole */
	int claims_complete; /* every tree of every inode was read whole */
	int root_ok;

	/* the inode being checked */
	uint64_t cur_ino;
	uint64_t cur_claimed; /* blocks its trees claim */
	uint64_t cur_outside; /* blocks of its extents outside any data area */

	int rescan; /* second pass: gather owners of duplicates */
	struct dup_owner *dv;
	size_t ndv, capdv;

	int need_commit;     /* a repair without cache changes (slot) */
	int alloc_safe;      /* repairs may allocate (see fsck_relink.c) */
	uint64_t lost_found; /* inode of /lost+found once found or made */
	int progress_pct;

	/* inodes that undigested log records write: their blocks may have been
	 * rewritten in place by a digest that did not reach its checkpoint,
	 * so their checksums are checked only after a mount has replayed the
	 * records (sorted, for bsearch) */
	uint64_t *written;
	size_t nwritten, capwritten;
	/* Per client log slot, the progress its copies in the volume's log
	 * record (the mount's replay moves the state file's on to it). */
	struct clog_copied copied[CLOG_SLOTS];
	uint64_t data_damaged; /* blocks found not to match their checksums */
	const char *progress_label;
};

/* ---- fsck_report.c ---- */
/* Appends a problem to c->out (nothing during a rescan: a scratch item is
 * returned so the caller may still fill it).  Severity FSCK_ERROR. */
struct fsck_item *fsck_problem(struct fsck_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct fsck_item *fsck_list_add(struct fsck_list *l, int code, const char *fmt, va_list ap);
struct fsck_item *fsck_list_addf(struct fsck_list *l, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fsck_note(struct fsck_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fsck_list_free(struct fsck_list *l);
size_t fsck_count(const struct fsck_list *l, int severity);
void fsck_progress(struct fsck_ctx *c, const char *label, uint64_t done, uint64_t total);
void fsck_progress_end(struct fsck_ctx *c);
/* A name made printable for messages (bytes outside 0x20..0x7e as \xHH). */
void fsck_quote(char *out, size_t outlen, const char *name, size_t len);

/* ---- fsck_parts.c: phases 1 and 2 ---- */
int fsck_open(struct fsck_ctx *c); /* 0, or -1 when refused (c->r->refused says why) */
void fsck_scan_log(struct fsck_ctx *c);
/* Whether an undigested record writes data of inode ino (fsck_scan_log). */
int fsck_written_by_log(const struct fsck_ctx *c, uint64_t ino);
void fsck_close(struct fsck_ctx *c);

/* ---- fsck_inodes.c: phase 3 ---- */
int fsck_check_inodes(struct fsck_ctx *c);
/* Copies nbytes of the bitmap at fast-tier blocks [start, start+blocks)
 * into out (which holds at least blocks * FS_BLOCK_SIZE bytes). */
int fsck_read_bitmap(struct fsck_ctx *c, uint64_t start, uint64_t blocks, void *out);
/* The inode's trees again, claiming blocks only (for the rescan). */
void fsck_claim_inode(struct fsck_ctx *c, uint64_t ino);
/* Btree operations of the three tree kinds (docs/FORMAT.md, "Tree nodes"). */
extern const struct btree_ops fsck_extent_ops, fsck_dir_ops, fsck_xattr_ops;

/* Shared by the phase 3 files (fsck_inodes.c, fsck_dirs.c, fsck_links.c). */
#define FSCK_DREC_HDR 18 /* directory record: key, ino, type, namelen */
static inline uint64_t fsck_ld64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
const char *fsck_type_name(uint32_t mode);
int fsck_known_type(uint32_t mode);
int fsck_read_inode(struct fsck_ctx *c, uint64_t ino, struct fs_inode *out);
/* btree_check, then the node claims; 1 if the tree is whole. */
int fsck_tree_ok(struct fsck_ctx *c, uint64_t ino, uint64_t root, int kind);
int fsck_check_dir(struct fsck_ctx *c, uint64_t ino, const struct fs_inode *in); /* fsck_dirs.c */
void fsck_walk_orphans(struct fsck_ctx *c);                                      /* fsck_links.c */
void fsck_check_links(struct fsck_ctx *c);                                       /* fsck_links.c */

/* ---- fsck_blocks.c: phase 4, and the block numbering of every tier ---- */
/* Lays out the flat numbering, loads bbits from every tier's bitmap and
 * makes the empty claimed bitmap (the start of phase 3). */
int fsck_load_block_maps(struct fsck_ctx *c);
int fsck_check_blocks(struct fsck_ctx *c);
/* Marks [start, start+n) (tier-tagged, inside a data area) claimed by
 * c->cur_ino (or records owners of duplicates during a rescan). */
void fsck_claim(struct fsck_ctx *c, uint64_t start, uint64_t n);
/* Whether the tier-tagged [start, start+n) lies in the data area of a
 * tier the volume has. */
int fsck_data_range(const struct fsck_ctx *c, uint64_t start, uint64_t n);
/* Whether blk may hold a tree node: the fast tier's data area only. */
int fsck_node_block(const struct fsck_ctx *c, uint64_t blk);
/* "block N" or "blocks A-B (n blocks)", after "tier NAME " on a capacity
 * tier, for the tier-tagged run [start, start+n). */
void fsck_blocks_text(const struct fsck_ctx *c, char *out, size_t len, uint64_t start, uint64_t n);

/* Flat block numbers (fsck's bitmaps) from tier-tagged ones inside a data
 * area, and back. */
static inline uint64_t fsck_flat(const struct fsck_ctx *c, uint64_t pblk)
{
	return c->base[FS_PBLK_TIER(pblk)] + FS_PBLK_BLK(pblk);
}
static inline uint64_t fsck_flat_blocks(const struct fsck_ctx *c)
{
	return c->base[c->sh.ntiers];
}
uint64_t fsck_pblk(const struct fsck_ctx *c, uint64_t flat);

/* ---- fsck_repair.c ---- */
/* Applies the fix of one fixable problem through the cache; appends a line
 * to done.  Commits first when the journal would overflow.  0 or -errno. */
int fsck_apply(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done);
int fsck_commit(struct fsck_ctx *c);

/* ---- fsck_relink.c: the fixes that allocate (-EAGAIN unless alloc_safe) ---- */
int fsck_salvage_dir(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done);
int fsck_link_lost(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done);
int fsck_salvage_extents(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done);
int fsck_rekey_entry(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done);
/* Rewrites an entry's type to p->c (its inode's, from a valid mode). */
int fsck_retype_entry(struct fsck_ctx *c, const struct fsck_item *p, struct fsck_list *done);

/* Bit helpers over little-endian u64 word arrays (bit u = word u/64, bit u%64). */
static inline int bit_test(const uint64_t *w, uint64_t u)
{
	return (int)((w[u >> 6] >> (u & 63)) & 1);
}
static inline void bit_set(uint64_t *w, uint64_t u)
{
	w[u >> 6] |= 1ull << (u & 63);
}

#endif
